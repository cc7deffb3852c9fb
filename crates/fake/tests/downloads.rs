//! Output files and file downloads: synthetic large outputs, `Range`/`If-Range`, content-hash
//! `ETag`s, cut and corrupted bodies, and per-connection pacing.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Api, Conn, fast, get_to_close, request, split_url, start};
use replicate_fake::{
    BlockingFakeServer, Fault, FaultRule, MAX_OUTPUT_BYTES, Matcher, ModelScript, Options, Origin,
    Output, SyntheticFile, synthetic_bytes,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// SHA-256 in lowercase hex, by another implementation than the server's.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

/// Runs `fake/large-files` with this input; returns the output URLs.
fn large_files(api: &Api, input: Value) -> Vec<String> {
    let r = api.post(
        "/v1/models/fake/large-files/predictions",
        &json!({ "input": input }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let p = api.wait(&id, Duration::from_secs(20));
    assert_eq!(p["status"], "succeeded", "{p}");
    p["output"]
        .as_array()
        .unwrap_or_else(|| panic!("a list output: {p}"))
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect()
}

fn get(url: &str, headers: &[(&str, &str)]) -> common::Resp {
    request("GET", url, headers, b"").unwrap()
}

/// Uploads `data` with `POST /v1/files`; returns the file object.
fn upload(s: &BlockingFakeServer, data: &[u8]) -> Value {
    let boundary = "----downloadsboundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"data.bin\"\r\nContent-Type: application/x-test\r\n\r\n").as_bytes());
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let auth = format!("Bearer {}", s.token());
    let r = request(
        "POST",
        &format!("{}/v1/files", s.base_url()),
        &[("Authorization", &auth), ("Content-Type", &ct)],
        &body,
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

#[test]
fn large_files_outputs_synthetic_files_with_their_digest_as_etag() {
    let s = start(fast());
    let api = Api::new(&s);
    let urls = large_files(
        &api,
        json!({"num_outputs": 3, "output_bytes": 100_000, "seed": 5}),
    );
    assert_eq!(urls.len(), 3);
    for (i, url) in urls.iter().enumerate() {
        assert!(url.starts_with(&s.files_base_url()), "{url}");
        assert!(url.ends_with(&format!("/out-{i}.bin")), "{url}");
        let file = SyntheticFile::new(5 + i as u64, 100_000);
        assert_eq!(s.synthetic_file(url), Some(file));
        let r = get(url, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.header("content-length"), Some("100000"));
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.body, synthetic_bytes(5 + i as u64, 0, 100_000));
        // The ETag is the digest of the bytes served, and what the test computes alone.
        let digest = sha256_hex(&r.body);
        assert_eq!(r.header("etag"), Some(quoted(&digest).as_str()));
        assert_eq!(file.sha256_hex(), digest);
        assert_eq!(file.etag(), quoted(&digest));
    }
    // Distinct seeds, distinct files.
    assert_ne!(
        s.synthetic_file(&urls[0]).unwrap().sha256(),
        s.synthetic_file(&urls[1]).unwrap().sha256()
    );
    assert_eq!(s.synthetic_file("http://elsewhere/x.bin"), None);

    // The defaults: one file of 1 MiB with seed 0; the path alone finds it too.
    let urls = large_files(&api, json!({"prompt": "x", "seed": null}));
    assert_eq!(urls.len(), 1);
    let (_, path) = split_url(&urls[0]);
    let file = SyntheticFile::new(0, replicate_fake::LARGE_FILES_DEFAULT_BYTES);
    assert_eq!(s.synthetic_file(&path), Some(file));
    let r = get(&urls[0], &[]);
    assert_eq!(r.body.len() as u64, file.len());
    assert_eq!(sha256_hex(&r.body), file.sha256_hex());

    // An empty file.
    let urls = large_files(&api, json!({"output_bytes": 0}));
    let r = get(&urls[0], &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(
        r.header("etag"),
        Some(quoted(&sha256_hex(b"")).as_str()),
        "{:?}",
        r.headers
    );
}

#[test]
fn synthetic_models_validate_their_input_and_list_it_in_their_schema() {
    let s = start(fast());
    let api = Api::new(&s);
    let max = MAX_OUTPUT_BYTES;
    for (input, message) in [
        (
            json!({"output_bytes": -1}),
            format!("input.output_bytes: Must be an integer from 0 to {max}"),
        ),
        (
            json!({"output_bytes": max + 1}),
            format!("input.output_bytes: Must be an integer from 0 to {max}"),
        ),
        (
            json!({"output_bytes": "1GiB"}),
            "input.output_bytes: Invalid type. Expected: integer, given: string".to_owned(),
        ),
        (
            json!({"seed": 1.5}),
            format!("input.seed: Must be an integer from 0 to {}", u64::MAX),
        ),
        (
            json!({"num_outputs": 11}),
            "input.num_outputs: Must be an integer from 1 to 10".to_owned(),
        ),
    ] {
        let r = api.post(
            "/v1/models/fake/large-files/predictions",
            &json!({ "input": input }),
        );
        assert_eq!(r.status, 422, "{input}: {}", r.text());
        assert_eq!(r.json()["detail"], format!("- {message}\n"), "{input}");
    }
    assert_eq!(s.prediction_count(), 0);

    let m = api.get("/v1/models/fake/large-files").json();
    let schemas = &m["latest_version"]["openapi_schema"]["components"]["schemas"];
    let props = &schemas["Input"]["properties"];
    assert_eq!(props["output_bytes"]["maximum"], max);
    assert_eq!(props["output_bytes"]["default"], 1 << 20);
    assert_eq!(props["num_outputs"]["default"], 1);
    assert_eq!(props["seed"]["type"], "integer");
    assert_eq!(schemas["Output"]["type"], "array");

    // A scripted synthetic model: its defaults, and the input `seed`.
    s.set_model(
        "acme/weights",
        ModelScript::succeed(Output::Synthetic {
            files: 2,
            bytes: 4096,
        }),
    );
    let r = api.post(
        "/v1/models/acme/weights/predictions",
        &json!({"input": {"seed": u64::MAX}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let p = api.wait(r.json()["id"].as_str().unwrap(), Duration::from_secs(20));
    let urls: Vec<&str> = p["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), 2);
    // Seeds wrap around.
    assert_eq!(
        s.synthetic_file(urls[0]),
        Some(SyntheticFile::new(u64::MAX, 4096))
    );
    assert_eq!(s.synthetic_file(urls[1]), Some(SyntheticFile::new(0, 4096)));
}

/// Checks the range answers on a file of 10 000 bytes with these contents.
fn check_ranges(url: &str, all: &[u8], auth: &[(&str, &str)]) {
    assert_eq!(all.len(), 10_000);
    let etag = quoted(&sha256_hex(all));
    let with = |range: &str| {
        let mut h = auth.to_vec();
        h.push(("Range", range));
        get(url, &h)
    };
    for (range, start, end) in [
        ("bytes=0-99", 0, 100),
        ("bytes=100-", 100, 10_000),
        ("bytes=-500", 9_500, 10_000),
        ("bytes=9999-99999", 9_999, 10_000),
        ("bytes=0-0", 0, 1),
        ("bytes=-20000", 0, 10_000),
    ] {
        let r = with(range);
        assert_eq!(r.status, 206, "{range}: {}", r.text());
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{}/10000", end - 1).as_str()),
            "{range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((end - start).to_string().as_str())
        );
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        // The ETag names the whole file, not the part.
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(r.body, &all[start..end], "{range}");
    }
    for range in ["bytes=10000-", "bytes=10000-10001", "bytes=-0"] {
        let r = with(range);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */10000"), "{range}");
    }
    // Ranges the server does not handle are ignored: the whole file.
    for range in ["bytes=0-1,5-6", "bytes=5-2", "lines=0-1", "bytes=x-"] {
        let r = with(range);
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.header("content-range"), None);
        assert_eq!(r.body, all, "{range}");
    }
}

#[test]
fn output_files_and_downloads_answer_ranges() {
    let s = start(fast());
    let api = Api::new(&s);
    let url = large_files(&api, json!({"output_bytes": 10_000, "seed": 1}))
        .pop()
        .unwrap();
    check_ranges(&url, &synthetic_bytes(1, 0, 10_000), &[]);

    // An uploaded file, on the API origin.
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let f = upload(&s, &data);
    let download = format!(
        "{}/v1/files/{}/download",
        s.base_url(),
        f["id"].as_str().unwrap()
    );
    let auth = api.auth();
    check_ranges(&download, &data, &[("Authorization", &auth)]);

    // A small output file of another model.
    let p = api.create("black-forest-labs/flux-schnell");
    let p = api.wait(p["id"].as_str().unwrap(), Duration::from_secs(20));
    let jpeg = p["output"][0].as_str().unwrap();
    let whole = get(jpeg, &[]);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(
        whole.header("etag"),
        Some(quoted(&sha256_hex(&whole.body)).as_str())
    );
    let r = get(jpeg, &[("Range", "bytes=0-2")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, [0xFF, 0xD8, 0xFF]);

    // HEAD: the headers of the whole file, no body; a range is not for HEAD.
    for headers in [&[][..], &[("Range", "bytes=0-9")][..]] {
        let (host, target) = split_url(&url);
        let r = Conn::open(&host)
            .unwrap()
            .send("HEAD", &target, headers, b"")
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("10000"));
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert!(r.header("etag").is_some());
        assert!(r.body.is_empty());
    }
}

#[test]
fn if_range_honours_only_the_current_etag() {
    let s = start(fast());
    let api = Api::new(&s);
    let url = large_files(&api, json!({"output_bytes": 5_000, "seed": 2}))
        .pop()
        .unwrap();
    let all = synthetic_bytes(2, 0, 5_000);
    let etag = get(&url, &[]).header("etag").unwrap().to_owned();
    let r = get(&url, &[("Range", "bytes=4000-"), ("If-Range", &etag)]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &all[4000..]);
    let weak = format!("W/{etag}");
    let other = quoted(&"0".repeat(64));
    for if_range in [
        weak.as_str(),
        other.as_str(),
        "Wed, 21 Oct 2015 07:28:00 GMT",
        etag.trim_matches('"'),
    ] {
        let r = get(&url, &[("Range", "bytes=4000-"), ("If-Range", if_range)]);
        assert_eq!(r.status, 200, "{if_range}");
        assert_eq!(r.header("content-range"), None);
        assert_eq!(r.body, all, "{if_range}");
    }
    // If-Range without Range changes nothing; with an unsatisfiable range and a stale tag, the
    // whole file comes too.
    assert_eq!(get(&url, &[("If-Range", &etag)]).status, 200);
    let r = get(&url, &[("Range", "bytes=9000-"), ("If-Range", &other)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, all);
}

#[test]
fn uploaded_files_download_with_their_checksum_as_etag() {
    let s = start(fast());
    let api = Api::new(&s);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let f = upload(&s, &data);
    let sha = f["checksums"]["sha256"].as_str().unwrap();
    assert_eq!(sha, sha256_hex(&data));
    let r = api.get(&format!("/v1/files/{}/download", f["id"].as_str().unwrap()));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-test"));
    assert_eq!(r.header("etag"), Some(quoted(sha).as_str()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-length"), Some("300000"));
    assert_eq!(sha256_hex(&r.body), sha);
}

#[test]
fn a_cut_download_resumes_with_a_range() {
    let s = start(fast());
    let api = Api::new(&s);
    let len = 3 * 1024 * 1024 + 123;
    let url = large_files(&api, json!({"output_bytes": len, "seed": 9}))
        .pop()
        .unwrap();
    let file = s.synthetic_file(&url).unwrap();
    let cut = 1_000_003usize;
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/xezq/").origin(Origin::Files),
        Fault::CutAfter(cut),
    ));
    // The whole length is announced; the connection ends after `cut` bytes.
    let first = get_to_close(&url, &[]).unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert_eq!(first.body.len(), cut);
    let etag = first.header("etag").unwrap().to_owned();
    assert_eq!(etag, file.etag());

    // Resume: the rest, cut again after 10 bytes of this response.
    let from = format!("bytes={cut}-");
    s.push_fault(FaultRule::new(
        Matcher::any().origin(Origin::Files),
        Fault::CutAfter(10),
    ));
    let second = get_to_close(&url, &[("Range", &from), ("If-Range", &etag)]).unwrap();
    assert_eq!(second.status, 206);
    assert_eq!(
        second.header("content-range"),
        Some(format!("bytes {cut}-{}/{len}", len - 1).as_str())
    );
    assert_eq!(second.body, file.bytes(cut as u64, 10));

    // And the rest without a fault.
    let have = cut + 10;
    let from = format!("bytes={have}-");
    let third = get(&url, &[("Range", &from), ("If-Range", &etag)]);
    assert_eq!(third.status, 206);
    let mut all = first.body;
    all.extend_from_slice(&second.body);
    all.extend_from_slice(&third.body);
    assert_eq!(all.len(), len);
    assert_eq!(sha256_hex(&all), file.sha256_hex());
    assert_eq!(quoted(&sha256_hex(&all)), etag);

    // The same on the files API's download.
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 249) as u8).collect();
    let f = upload(&s, &data);
    let download = format!(
        "{}/v1/files/{}/download",
        s.base_url(),
        f["id"].as_str().unwrap()
    );
    let auth = api.auth();
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/download"),
        Fault::CutAfter(65_537),
    ));
    let first = get_to_close(&download, &[("Authorization", &auth)]).unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-length"), Some("200000"));
    assert_eq!(first.body, &data[..65_537]);
    let etag = first.header("etag").unwrap().to_owned();
    let rest = get(
        &download,
        &[
            ("Authorization", &auth),
            ("Range", "bytes=65537-"),
            ("If-Range", &etag),
        ],
    );
    assert_eq!(rest.status, 206);
    let mut all = first.body;
    all.extend_from_slice(&rest.body);
    assert_eq!(sha256_hex(&all), f["checksums"]["sha256"].as_str().unwrap());
}

#[test]
fn a_corrupt_download_fails_its_checksum() {
    let s = start(fast());
    let api = Api::new(&s);
    let url = large_files(&api, json!({"output_bytes": 200_000, "seed": 3}))
        .pop()
        .unwrap();
    let file = s.synthetic_file(&url).unwrap();
    let good = file.bytes(0, 200_000);
    s.push_fault(FaultRule::new(
        Matcher::any().origin(Origin::Files),
        Fault::Corrupt(150_000),
    ));
    let r = get(&url, &[]);
    assert_eq!(r.status, 200);
    // The headers describe the real file ...
    assert_eq!(r.header("content-length"), Some("200000"));
    assert_eq!(r.header("etag"), Some(file.etag().as_str()));
    // ... the body differs in one byte, so its digest does not match.
    assert_eq!(r.body.len(), good.len());
    let diffs: Vec<usize> = (0..good.len()).filter(|&i| r.body[i] != good[i]).collect();
    assert_eq!(diffs, [150_000]);
    assert_eq!(r.body[150_000], !good[150_000]);
    assert_ne!(quoted(&sha256_hex(&r.body)), file.etag());
    // Only once.
    assert_eq!(get(&url, &[]).body, good);

    // On a range, the offset counts from the range's start; past the end, the last byte.
    s.push_fault(FaultRule::new(
        Matcher::any().origin(Origin::Files),
        Fault::Corrupt(5),
    ));
    let r = get(&url, &[("Range", "bytes=1000-1099")]);
    assert_eq!(r.status, 206);
    let diffs: Vec<usize> = (0..100).filter(|&i| r.body[i] != good[1000 + i]).collect();
    assert_eq!(diffs, [5]);
    s.push_fault(FaultRule::new(
        Matcher::any().origin(Origin::Files),
        Fault::Corrupt(u64::MAX),
    ));
    let r = get(&url, &[("Range", "bytes=-10")]);
    let diffs: Vec<usize> = (0..10)
        .filter(|&i| r.body[i] != good[199_990 + i])
        .collect();
    assert_eq!(diffs, [9]);

    // A file download: the checksum of the files API does not match either.
    let data = vec![42u8; 70_000];
    let f = upload(&s, &data);
    s.push_fault("GET:/download:corrupt".parse::<FaultRule>().unwrap());
    let r = api.get(&format!("/v1/files/{}/download", f["id"].as_str().unwrap()));
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), data.len());
    assert_eq!(r.body[0], !42);
    assert_eq!(&r.body[1..], &data[1..]);
    assert_ne!(
        sha256_hex(&r.body),
        f["checksums"]["sha256"].as_str().unwrap()
    );
}

#[test]
fn drip_slows_a_file_download() {
    let s = start(fast());
    let api = Api::new(&s);
    let url = large_files(&api, json!({"output_bytes": 5_000, "seed": 4}))
        .pop()
        .unwrap();
    s.push_fault(FaultRule::new(
        Matcher::any().origin(Origin::Files),
        Fault::Drip {
            interval: Duration::from_millis(10),
            chunk: 1_000,
        },
    ));
    let t = Instant::now();
    let r = get(&url, &[("Range", "bytes=1000-")]);
    // Four chunks, three intervals.
    assert!(
        t.elapsed() >= Duration::from_millis(30),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, synthetic_bytes(4, 1000, 4000));
}

#[test]
fn connection_rate_paces_each_file_body() {
    let rate = 400_000u64;
    let s = start(Options {
        connection_rate: Some(rate),
        ..fast()
    });
    let api = Api::new(&s);
    let len = 200_000u64;
    let urls = large_files(
        &api,
        json!({"output_bytes": len, "num_outputs": 3, "seed": 11}),
    );
    // Warm the digests up, so that the timings below measure the bodies alone.
    for url in &urls {
        s.synthetic_file(url).unwrap().sha256();
    }
    let at_least = Duration::from_secs_f64(len as f64 / rate as f64);

    // One body of `len` bytes takes at least len / rate.
    let t = Instant::now();
    let r = get(&urls[0], &[]);
    let took = t.elapsed();
    assert_eq!(r.body, synthetic_bytes(11, 0, len as usize));
    assert!(took >= at_least, "{took:?} < {at_least:?}");

    // Each of three connections at once is paced alike, and gets its own file.
    let t = Instant::now();
    let handles: Vec<_> = urls
        .iter()
        .map(|u| {
            let u = u.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let r = get(&u, &[]);
                (r, t.elapsed())
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let (r, took) = h.join().unwrap();
        assert!(took >= at_least, "{took:?} < {at_least:?}");
        assert_eq!(
            sha256_hex(&r.body),
            SyntheticFile::new(11 + i as u64, len).sha256_hex()
        );
    }
    assert!(t.elapsed() >= at_least);

    // A range is paced by its own length; a file download too.
    let t = Instant::now();
    let r = get(&urls[1], &[("Range", "bytes=-100000")]);
    assert_eq!(r.status, 206);
    assert!(t.elapsed() >= at_least / 2, "{:?}", t.elapsed());
    let data = vec![7u8; len as usize];
    let f = upload(&s, &data);
    let t = Instant::now();
    let r = api.get(&format!("/v1/files/{}/download", f["id"].as_str().unwrap()));
    assert_eq!(r.body, data);
    assert!(t.elapsed() >= at_least, "{:?}", t.elapsed());
}

#[test]
fn a_paced_body_stops_when_the_client_leaves() {
    let s = start(Options {
        connection_rate: Some(10_000),
        ..fast()
    });
    let api = Api::new(&s);
    let url = large_files(&api, json!({"output_bytes": 10_000_000}))
        .pop()
        .unwrap();
    let (host, target) = split_url(&url);
    let mut conn = Conn::open(&host).unwrap();
    conn.write_request("GET", &target, &[], b"").unwrap();
    let (status, _) = conn.read_head().unwrap();
    assert_eq!(status, 200);
    let mut got = 0;
    conn.stream_body(1_000, |b| got += b.len()).unwrap();
    assert_eq!(got, 1_000);
    drop(conn);
    // The body would take 1000 s; the server notices the client left at its next write.
    let until = Instant::now() + Duration::from_secs(20);
    while s.open_connections() > 0 {
        assert!(Instant::now() < until, "the paced connection is still open");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn expired_outputs_are_gone() {
    let s = start(Options {
        output_ttl: Duration::from_millis(200),
        ..fast()
    });
    let api = Api::new(&s);
    let url = large_files(&api, json!({"output_bytes": 1000}))
        .pop()
        .unwrap();
    assert!(s.synthetic_file(&url).is_some());
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(&url, &[("Range", "bytes=0-9")]);
        if r.status == 404 {
            break;
        }
        assert_eq!(r.status, 206);
        assert!(Instant::now() < until, "still served");
        std::thread::sleep(Duration::from_millis(20));
    }
}
