//! Outputs (data URIs, download requests, expired links, file names) and file inputs.
#![allow(missing_docs, clippy::unwrap_used)]

use http::{HeaderMap, HeaderValue, StatusCode};
use replicate_protocol::download::{check_download_response, download_request, redirect_location};
use replicate_protocol::input::{self, DEFAULT_UPLOAD_THRESHOLD, guess_mime};
use replicate_protocol::output::{self, FileNames, file_name_for, output_refs, sanitize_file_name};
use replicate_protocol::{
    Config, DownloadLimits, Error, FileInput, OutputRef, Prediction, Prepared, TransportErrorKind,
};
use serde_json::json;

fn data(mime: &str, bytes: &[u8]) -> OutputRef {
    OutputRef::DataUri {
        mime: mime.to_owned(),
        bytes: bytes.to_vec(),
    }
}

#[test]
fn data_uri_variants() {
    let cases: &[(&str, OutputRef)] = &[
        (
            "data:image/png;base64,iVBORw==",
            data("image/png", b"\x89PNG"),
        ),
        // Unpadded, whitespace, upper-case scheme and marker.
        (
            "DATA:image/png;BASE64,iVBO Rw",
            data("image/png", b"\x89PNG"),
        ),
        // URL-safe alphabet.
        (
            "data:application/octet-stream;base64,-_8=",
            data("application/octet-stream", &[0xfb, 0xff]),
        ),
        // Percent-encoded base64.
        ("data:text/plain;base64,aGk%3D", data("text/plain", b"hi")),
        // Percent-encoded text, with parameters kept.
        (
            "data:text/plain;charset=utf-8,caf%C3%A9%2C%20ok",
            data("text/plain;charset=utf-8", "café, ok".as_bytes()),
        ),
        (
            "data:,Hello%2C%20World!",
            data("text/plain;charset=US-ASCII", b"Hello, World!"),
        ),
        (
            "data:;charset=utf-8,x",
            data("text/plain;charset=utf-8", b"x"),
        ),
        ("data:text/plain,", data("text/plain", b"")),
    ];
    for (uri, want) in cases {
        assert_eq!(&OutputRef::parse(uri).unwrap(), want, "{uri}");
    }
}

#[test]
fn bad_data_uris_and_references() {
    for bad in [
        "data:image/png;base64,@@@@",
        "data:image/png;base64,a",
        "data:image/png;base64",
        "ftp://host/x",
        "file:///etc/passwd",
        "/relative/path.png",
        "https://",
        "just text",
    ] {
        let e = OutputRef::parse(bad).unwrap_err();
        assert!(matches!(e, Error::Output(_)), "{bad}: {e:?}");
    }
    let e = OutputRef::parse("data:image/png;base64,@@@@").unwrap_err();
    assert!(e.to_string().contains("base64"), "{e}");
    assert_eq!(
        OutputRef::parse(" https://replicate.delivery/a/out-0.png ").unwrap(),
        OutputRef::Url("https://replicate.delivery/a/out-0.png".into())
    );
}

#[test]
fn download_requests_never_carry_the_token_to_other_hosts() {
    let cfg = Config::new("r8_secret");
    let req = download_request(&cfg, "https://replicate.delivery/xezq/abc/out-0.jpg").unwrap();
    assert_eq!(req.method(), "GET");
    assert!(req.headers().get("authorization").is_none());
    assert!(
        req.headers()["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("replicate-rust/")
    );
    assert_eq!(req.headers()["accept"], "*/*");

    // A host that merely contains the API host is another origin.
    for url in [
        "https://api.replicate.com.evil.example/x",
        "http://api.replicate.com/v1/files/x/download",
        "https://api.replicate.com:8443/x",
        "https://stream.replicate.com/x",
    ] {
        let req = download_request(&cfg, url).unwrap();
        assert!(req.headers().get("authorization").is_none(), "{url}");
    }

    // The API's own origin (files download endpoint, a proxy serving outputs) gets it.
    let req = download_request(
        &cfg,
        "https://api.replicate.com/v1/files/f1/download?owner=a",
    )
    .unwrap();
    assert_eq!(req.headers()["authorization"], "Bearer r8_secret");
    assert!(req.headers()["authorization"].is_sensitive());
    let proxy = cfg
        .with_base_url("https://proxy.example/replicate")
        .unwrap();
    let req = download_request(&proxy, "https://proxy.example/outputs/a.png").unwrap();
    assert_eq!(req.headers()["authorization"], "Bearer r8_secret");
    let req = download_request(&proxy, "https://api.replicate.com/v1/files/x").unwrap();
    assert!(req.headers().get("authorization").is_none());

    assert!(download_request(&cfg, "data:text/plain,hi").is_err());
    assert!(download_request(&cfg, "file:///etc/passwd").is_err());
    assert!(download_request(&cfg, "https://user:pw@replicate.delivery/x").is_err());
}

#[test]
fn redirects_are_resolved() {
    let loc = |status: u16, location: Option<&str>| {
        let mut h = HeaderMap::new();
        if let Some(l) = location {
            h.insert("location", HeaderValue::from_str(l).unwrap());
        }
        redirect_location(
            "https://a.example/dir/file.png?x=1",
            StatusCode::from_u16(status).unwrap(),
            &h,
        )
    };
    assert!(loc(200, Some("/x")).is_none());
    assert!(loc(404, None).is_none());
    assert_eq!(
        loc(302, Some("https://cdn.example/y.png"))
            .unwrap()
            .unwrap(),
        "https://cdn.example/y.png"
    );
    assert_eq!(
        loc(301, Some("/other/z.png")).unwrap().unwrap(),
        "https://a.example/other/z.png"
    );
    assert_eq!(
        loc(307, Some("z.png")).unwrap().unwrap(),
        "https://a.example/dir/z.png"
    );
    assert_eq!(
        loc(308, Some("//cdn.example/q")).unwrap().unwrap(),
        "https://cdn.example/q"
    );
    assert!(loc(302, None).unwrap().is_err());
    assert!(loc(302, Some("file:///etc/passwd")).unwrap().is_err());
    assert!(loc(303, Some("javascript:alert(1)")).unwrap().is_err());
}

fn prediction(v: serde_json::Value) -> Prediction {
    serde_json::from_value(v).unwrap()
}

#[test]
fn expired_links_are_explained() {
    let p = prediction(json!({
        "id": "ctdw", "status": "succeeded", "data_removed": false,
        "completed_at": "2025-01-15T10:03:41.142386377Z",
        "output": ["https://replicate.delivery/xezq/a/out-0.jpg"]
    }));
    for status in [403, 404, 410] {
        let e = check_download_response(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            Some(&p),
        )
        .unwrap_err();
        let Error::Output(msg) = &e else {
            panic!("{e:?}")
        };
        assert!(
            msg.message.contains("output link expired or removed"),
            "{msg}"
        );
        assert!(msg.message.contains("one hour"), "{msg}");
        assert!(msg.message.contains("ctdw"), "{msg}");
        assert!(msg.message.contains("data_removed"), "{msg}");
    }
    let e = check_download_response(StatusCode::NOT_FOUND, &HeaderMap::new(), None).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");

    // 429 and 5xx are API-like errors that the retry policy retries.
    let mut h = HeaderMap::new();
    h.insert("retry-after", HeaderValue::from_static("3"));
    let e = check_download_response(StatusCode::SERVICE_UNAVAILABLE, &h, None).unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert_eq!(
        e.api().unwrap().retry_delay(),
        Some(std::time::Duration::from_secs(3))
    );
    let e = check_download_response(StatusCode::BAD_REQUEST, &h, None).unwrap_err();
    assert!(matches!(e, Error::Output(_)));
    assert!(check_download_response(StatusCode::OK, &h, None).is_ok());
}

#[test]
fn removed_data_fails_before_any_download() {
    let p = prediction(json!({
        "id": "old", "status": "succeeded", "data_removed": true, "output": null, "input": {}
    }));
    let e = output_refs(&p).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("data_removed"), "{msg}");
    assert!(msg.contains("one hour"), "{msg}");
}

#[test]
fn output_refs_collects_files_at_any_depth() {
    let p = prediction(json!({
        "id": "p", "status": "succeeded",
        "output": {
            "images": ["https://replicate.delivery/a/out-0.png", "https://replicate.delivery/a/out-1.png"],
            "mask": "data:image/png;base64,AAAA",
            "caption": "a cat on a mat",
            "score": 0.9
        }
    }));
    let refs = output_refs(&p).unwrap();
    assert_eq!(refs.len(), 3);
    assert_eq!(
        refs[0].url(),
        Some("https://replicate.delivery/a/out-0.png")
    );
    assert!(
        matches!(&refs[2], OutputRef::DataUri { mime, bytes } if mime == "image/png" && bytes == &[0, 0, 0])
    );

    let text = prediction(json!({"id": "p", "status": "succeeded", "output": ["Hello", " world"]}));
    assert!(output_refs(&text).unwrap().is_empty());
    let bad =
        prediction(json!({"id": "p", "status": "succeeded", "output": "data:image/png;base64,!!"}));
    assert!(output_refs(&bad).is_err());
}

#[test]
fn file_names_are_safe() {
    let cases = [
        ("https://replicate.delivery/xezq/abc/out-0.jpg", "out-0.jpg"),
        ("https://h/a/out.png?sig=..%2F..#frag", "out.png"),
        ("https://h/../../etc/passwd", "passwd"),
        ("../../etc/passwd", "passwd"),
        ("https://h/a/..%2F..%2Fetc%2Fpasswd", "_.._etc_passwd"),
        ("https://h/a/..", "output-4"),
        ("https://h/a/.", "output-4"),
        ("https://h/a/.hidden", "hidden"),
        ("https://h/a/%2E%2E", "output-4"),
        ("https://h/a/b%5Cc%00d.png", "b_c_d.png"),
        ("https://h/a/x%0A%0Dy.txt", "x__y.txt"),
        ("https://h/a/C%3A%5Cwin.ini", "C__win.ini"),
        ("https://h/a/CON.txt", "_CON.txt"),
        ("https://h/a/com1", "_com1"),
        ("https://h/a/trailing...", "trailing"),
        ("https://h", "output-4"),
        ("https://h/", "output-4"),
        ("https://h/dir/", "dir"),
        ("data:video/mp4;base64,AAAA", "output-4.mp4"),
        ("data:application/x-unknown,zz", "output-4"),
    ];
    for (url, want) in cases {
        let got = file_name_for(url, 4);
        assert_eq!(got, want, "{url}");
        assert!(!got.contains('/') && !got.contains('\\') && !got.starts_with('.'));
        assert!(!got.chars().any(char::is_control));
    }
    let long = format!("https://h/{}.png", "a".repeat(500));
    let name = file_name_for(&long, 0);
    assert!(name.len() <= output::MAX_FILE_NAME_BYTES);
    assert!(name.ends_with(".png"));
    let long_utf8 = format!("https://h/{}.webp", "é".repeat(300));
    let name = file_name_for(&long_utf8, 0);
    assert!(name.len() <= output::MAX_FILE_NAME_BYTES && name.ends_with(".webp"));
    assert_eq!(sanitize_file_name(" .. "), None);
    assert_eq!(sanitize_file_name(""), None);
}

#[test]
fn file_names_are_unique_in_a_batch() {
    let mut names = FileNames::new();
    let urls = [
        "https://a/1/output.png",
        "https://a/2/output.png",
        "https://a/3/Output.PNG",
        "https://a/4/output-1.png",
        "https://a/",
        "https://b/",
        "https://a/7/README",
    ];
    let got: Vec<String> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| names.name_for(u, i, Some("image/png")))
        .collect();
    assert_eq!(
        got,
        [
            "output.png",
            "output-1.png",
            "Output-2.PNG",
            "output-1-1.png",
            "output-4.png",
            "output-5.png",
            "README.png",
        ]
    );
}

#[test]
fn download_limits() {
    let limits = DownloadLimits {
        max_bytes: 10,
        ..DownloadLimits::default()
    };
    assert_eq!(DownloadLimits::default().max_bytes, 512 * 1024 * 1024);
    assert_eq!(DownloadLimits::default().max_redirects, 5);
    let mut h = HeaderMap::new();
    h.insert("content-length", HeaderValue::from_static("10"));
    assert!(limits.check_content_length(&h).is_ok());
    h.insert("content-length", HeaderValue::from_static("11"));
    let e = limits.check_content_length(&h).unwrap_err();
    assert!(matches!(e, Error::Transport(ref t) if t.kind == TransportErrorKind::BodyTooLarge));
    assert!(limits.check_received(10).is_ok());
    assert!(limits.check_received(11).is_err());
    assert!(limits.check_content_length(&HeaderMap::new()).is_ok());
}

#[test]
fn input_threshold_boundary() {
    let t = 4;
    assert_eq!(
        input::prepare(b"abcd", "text/plain", t),
        Prepared::DataUrl("data:text/plain;base64,YWJjZA==".into())
    );
    assert_eq!(input::prepare(b"abcde", "text/plain", t), Prepared::Upload);
    assert_eq!(
        input::prepare(b"", "text/plain", 0),
        Prepared::DataUrl("data:text/plain;base64,".into())
    );
    assert_eq!(DEFAULT_UPLOAD_THRESHOLD, 256 * 1024);
    let at = FileInput::from_bytes(
        "a.bin",
        "application/octet-stream",
        vec![7; DEFAULT_UPLOAD_THRESHOLD],
    );
    assert!(matches!(
        at.prepare(DEFAULT_UPLOAD_THRESHOLD),
        Prepared::DataUrl(_)
    ));
    let over = FileInput::from_bytes(
        "a.bin",
        "application/octet-stream",
        vec![7; DEFAULT_UPLOAD_THRESHOLD + 1],
    );
    assert_eq!(over.prepare(DEFAULT_UPLOAD_THRESHOLD), Prepared::Upload);

    // The data URL decodes back to the bytes.
    let f = FileInput::from_bytes("x.png", "image/png", vec![0, 1, 2, 250, 255]);
    let Prepared::DataUrl(url) = f.prepare(DEFAULT_UPLOAD_THRESHOLD) else {
        panic!()
    };
    assert_eq!(
        OutputRef::parse(&url).unwrap(),
        data("image/png", &[0, 1, 2, 250, 255])
    );

    // Bad media types cannot break the URL.
    let f = FileInput::from_bytes("x", "text/plain,evil", b"a".to_vec());
    assert_eq!(f.mime, "application/octet-stream");
    let up = f.into_upload();
    assert_eq!(up.filename, "x");
    assert_eq!(up.content_type, "application/octet-stream");
    assert_eq!(
        FileInput::from_bytes("", "", vec![]).into_upload().filename,
        "file"
    );
}

#[test]
fn mime_guesses() {
    let cases = [
        ("a.png", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("dir/A.JPEG", "image/jpeg"),
        ("a.webp", "image/webp"),
        ("a.gif", "image/gif"),
        ("a.mp3", "audio/mpeg"),
        ("a.wav", "audio/wav"),
        ("a.mp4", "video/mp4"),
        ("a.json", "application/json"),
        ("a.txt", "text/plain"),
        ("a.pdf", "application/pdf"),
        ("a.zip", "application/zip"),
        ("a.xyz", "application/octet-stream"),
        ("noext", "application/octet-stream"),
        ("dir.png/", "image/png"),
        ("", "application/octet-stream"),
    ];
    for (path, want) in cases {
        assert_eq!(guess_mime(path), want, "{path}");
    }
}
