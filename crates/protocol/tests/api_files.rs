//! Files: the multipart upload, get, list, delete and download.
#![allow(clippy::unwrap_used)]

mod api_support;

use api_support::{build, cfg, check_pagination, fixture, parse_fixture, render, response};
use insta::{assert_json_snapshot, assert_snapshot};
use replicate_protocol::api::files::{MAX_FILENAME_LEN, content_type_for};
use replicate_protocol::api::{CreateFile, DeleteFile, DownloadFile, GetFile, ListFiles};
use replicate_protocol::{Endpoint, Error, RetryClass};
use serde_json::json;

const ID: &str = "cneqzikepnug6xezperrr4z55o";

/// One part of a multipart body.
#[derive(Debug)]
struct Part {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Part {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A strict RFC 7578 parser: the body must start with the first delimiter, parts must be
/// separated by CRLF + delimiter, header lines must end in CRLF, and the close delimiter must end
/// the body.
fn parse_multipart(body: &[u8], boundary: &str) -> Vec<Part> {
    let delimiter = format!("--{boundary}");
    let first = format!("{delimiter}\r\n");
    assert!(
        body.starts_with(first.as_bytes()),
        "starts with the delimiter"
    );
    let close = format!("\r\n{delimiter}--\r\n");
    assert!(
        body.ends_with(close.as_bytes()),
        "ends with the close delimiter"
    );
    let separator = format!("\r\n{delimiter}\r\n");
    let inner = &body[first.len()..body.len() - close.len()];
    let mut parts = Vec::new();
    let mut start = 0;
    loop {
        let end = find(inner, separator.as_bytes(), start).unwrap_or(inner.len());
        let raw = &inner[start..end];
        let split = find(raw, b"\r\n\r\n", 0).expect("a blank line after the part headers");
        let headers = std::str::from_utf8(&raw[..split])
            .unwrap()
            .split("\r\n")
            .map(|line| {
                let (k, v) = line.split_once(": ").expect("a header line");
                (k.to_owned(), v.to_owned())
            })
            .collect();
        parts.push(Part {
            headers,
            body: raw[split + 4..].to_vec(),
        });
        if end == inner.len() {
            break;
        }
        start = end + separator.len();
    }
    parts
}

fn boundary_of(req: &http::Request<Vec<u8>>) -> String {
    let ct = req.headers()["content-type"].to_str().unwrap();
    ct.strip_prefix("multipart/form-data; boundary=")
        .expect("a multipart content type")
        .to_owned()
}

fn upload() -> CreateFile {
    CreateFile::new(b"PK\x03\x04 zip bytes".to_vec(), "example.zip")
        .metadata(json!({"customer_reference_id": 123}))
        .boundary("replicate-test-boundary")
}

#[test]
fn request_create_file() {
    let create = upload();
    assert_eq!(create.retry_class(), RetryClass::CreateOnce);
    assert_snapshot!(render(&build(&create)));
}

#[test]
fn multipart_body_is_well_formed() {
    // Binary content with CRLFs, dashes and every byte value.
    let mut content: Vec<u8> = (0..=255u8).collect();
    content.extend_from_slice(b"\r\n--not-the-boundary\r\n\r\n");
    let create = CreateFile::new(content.clone(), "data \"raw\".bin")
        .content_type("application/x-custom")
        .metadata(json!({"a": [1, "two"], "é": null}));
    let req = build(&create);
    assert_eq!(req.method(), "POST");
    assert_eq!(req.uri(), "https://proxy.example/replicate/v1/files");
    let boundary = boundary_of(&req);
    assert!(boundary.len() <= 70);
    let parts = parse_multipart(req.body(), &boundary);
    assert_eq!(parts.len(), 4);

    let c = &parts[0];
    assert_eq!(
        c.header("content-disposition"),
        Some(r#"form-data; name="content"; filename="data %22raw%22.bin""#)
    );
    assert_eq!(c.header("content-type"), Some("application/x-custom"));
    assert_eq!(c.body, content, "the content is carried byte for byte");

    assert_eq!(
        parts[1].header("content-disposition"),
        Some(r#"form-data; name="filename""#)
    );
    assert_eq!(parts[1].body, b"data \"raw\".bin");
    assert_eq!(
        parts[2].header("content-disposition"),
        Some(r#"form-data; name="type""#)
    );
    assert_eq!(parts[2].body, b"application/x-custom");

    let m = &parts[3];
    assert_eq!(
        m.header("content-disposition"),
        Some(r#"form-data; name="metadata""#)
    );
    assert_eq!(m.header("content-type"), Some("application/json"));
    let metadata: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
    assert_eq!(metadata, json!({"a": [1, "two"], "é": null}));
}

#[test]
fn default_metadata_and_content_type() {
    let create = CreateFile::new(b"\x89PNG".to_vec(), "cat.PNG");
    assert_eq!(create.content_type, "image/png");
    let req = build(&create);
    let parts = parse_multipart(req.body(), &boundary_of(&req));
    assert_eq!(parts[0].header("content-type"), Some("image/png"));
    assert_eq!(parts[3].body, b"{}");
    assert_eq!(content_type_for("archive.tar.gz"), "application/gzip");
    assert_eq!(content_type_for("noext"), "application/octet-stream");
    assert_eq!(content_type_for("x.JPEG"), "image/jpeg");
}

#[test]
fn counter_boundaries_avoid_the_content() {
    let a = build(&CreateFile::new(b"x".to_vec(), "a.txt"));
    let b = build(&CreateFile::new(b"x".to_vec(), "a.txt"));
    let (ba, bb) = (boundary_of(&a), boundary_of(&b));
    assert!(ba.starts_with("replicate-rust-boundary-"));
    assert_ne!(ba, bb, "each request takes the next counter value");

    // Content that contains many counter boundaries: the chosen one is not among them.
    let mut content = Vec::new();
    for n in 0..400u64 {
        content.extend_from_slice(format!("--replicate-rust-boundary-{n:016x}\r\n").as_bytes());
    }
    let req = build(&CreateFile::new(content.clone(), "tricky.txt"));
    let boundary = boundary_of(&req);
    assert!(!String::from_utf8_lossy(&content).contains(&format!("--{boundary}")));
    let parts = parse_multipart(req.body(), &boundary);
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[0].body, content);
}

#[test]
fn upload_file_names_with_control_characters_are_sanitised_not_refused() {
    let req = build(&CreateFile::new(
        b"a".to_vec(),
        "line\r\nbreak\u{202e}gpj.txt",
    ));
    let boundary = boundary_of(&req);
    let body = String::from_utf8_lossy(req.body()).into_owned();
    assert!(body.contains("filename=\"line__break_gpj.txt\""), "{body}");
    let parts = parse_multipart(req.body(), &boundary);
    assert_eq!(parts[1].body, b"line__break_gpj.txt");
    assert!(!body.contains('\u{202e}'));
}

#[test]
fn invalid_uploads_are_rejected() {
    let invalid = |c: CreateFile| {
        let err = c.request(&cfg()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    };
    // A fixed boundary that occurs in the content.
    invalid(CreateFile::new(b"a--XYZ b".to_vec(), "f").boundary("XYZ"));
    // Boundaries that are not allowed.
    invalid(CreateFile::new(b"a".to_vec(), "f").boundary(""));
    invalid(CreateFile::new(b"a".to_vec(), "f").boundary("has space"));
    invalid(CreateFile::new(b"a".to_vec(), "f").boundary("x".repeat(71)));
    // File names.
    invalid(CreateFile::new(b"a".to_vec(), ""));
    invalid(CreateFile::new(
        b"a".to_vec(),
        "x".repeat(MAX_FILENAME_LEN + 1),
    ));
    // Content type and metadata.
    invalid(CreateFile::new(b"a".to_vec(), "f").content_type("text/plain\r\nX-Evil: 1"));
    invalid(CreateFile::new(b"a".to_vec(), "f").content_type(""));
    invalid(CreateFile::new(b"a".to_vec(), "f").metadata(json!("not an object")));
    // The longest name is fine, and multi-byte names count bytes.
    build(&CreateFile::new(
        b"a".to_vec(),
        "x".repeat(MAX_FILENAME_LEN),
    ));
    invalid(CreateFile::new(b"a".to_vec(), "é".repeat(128)));
}

#[test]
fn create_file_debug_hides_the_content() {
    let debug = format!("{:?}", CreateFile::new(vec![7; 1000], "f.bin"));
    assert!(debug.contains("[1000 bytes]"), "{debug}");
    assert!(debug.len() < 300, "{debug}");
}

#[test]
fn request_get_list_delete_download() {
    assert_snapshot!("request_get_file", render(&build(&GetFile::new(ID))));
    assert_snapshot!("request_list_files", render(&build(&ListFiles::new())));
    assert_snapshot!("request_delete_file", render(&build(&DeleteFile::new(ID))));
    let download = DownloadFile::new(
        ID,
        "mattt",
        1708515345,
        "zuoghqlrcnw8YHywkpaXQlHsVhWen/DZ4aal76dLiOo=",
    );
    assert_snapshot!("request_download_file", render(&build(&download)));
}

#[test]
fn parse_file() {
    let create = upload();
    let file = create.parse(response(201, fixture("file.json"))).unwrap();
    assert_eq!(file.id, ID);
    assert_eq!(file.size, Some(69420));
    assert_eq!(
        file.checksums.sha256.as_deref(),
        Some("f047f8e745f9996c6e386064e06cb2007b8e6bc0a968a334fc0d2b2d64012066")
    );
    assert_eq!(
        file.checksums.extra["md5"],
        "d41d8cd98f00b204e9800998ecf8427e"
    );
    assert_eq!(file.metadata["customer_reference_id"], 123);
    assert_eq!(file.created_at.unwrap().unix_timestamp(), 1708520058);
    assert_eq!(file, parse_fixture(&GetFile::new(ID), "file.json"));
    assert_json_snapshot!(file);
}

#[test]
fn parse_list_files() {
    let page = parse_fixture(&ListFiles::new(), "files_list.json");
    assert_eq!(page.results.len(), 2);
    assert_eq!(page.next_cursor().as_deref(), Some("cD0yMDI0LTAyLTIx"));
    assert_json_snapshot!(page);
}

#[test]
fn parse_delete_and_download() {
    DeleteFile::new(ID)
        .parse(response(204, Vec::new()))
        .unwrap();
    let err = DeleteFile::new(ID)
        .parse(response(404, r#"{"detail":"File not found"}"#))
        .unwrap_err();
    assert_eq!(err.status(), Some(404));

    let download = DownloadFile::new(ID, "mattt", 1708515345, "sig");
    let bytes: Vec<u8> = (0..=255u8).collect();
    let resp = http::Response::builder()
        .status(200)
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .unwrap();
    assert_eq!(download.parse(resp).unwrap(), bytes);
    let req = build(&download);
    assert_eq!(req.headers()["accept"], "*/*");
}

#[test]
fn upload_too_large_is_an_api_error() {
    let err = upload()
        .parse(response(
            413,
            r#"{"detail":"Files must be less than 100MB in size","status":413}"#,
        ))
        .unwrap_err();
    assert_eq!(err.status(), Some(413));
    assert!(err.to_string().contains("100MB"), "{err}");
}

#[test]
fn files_paginate_through_the_proxy() {
    check_pagination(ListFiles::new());
}
