//! `/v1/files`: uploads (multipart), listing, metadata, download and delete.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::download::{self, Content};
use crate::http::Resp;
use crate::multipart;
use crate::pagination::page_resp;
use crate::request::Req;
use crate::state::{Shared, Upload, lock};
use crate::util;

/// The uploaded file with this id.
pub(crate) fn find_file(shared: &Shared, id: &str) -> Option<Arc<Upload>> {
    lock(&shared.state).files.get(id).cloned()
}

/// `GET /v1/files`: newest first.
pub(crate) fn list_files(shared: &Arc<Shared>, req: &Req) -> Resp {
    let all: Vec<Arc<Upload>> = lock(&shared.state).file_order.clone();
    page_resp(
        shared,
        req,
        &all,
        |f| f.seq,
        "/v1/files",
        "",
        |f| file_json(shared, f),
    )
}

/// A file object.
pub(crate) fn file_json(shared: &Shared, f: &Upload) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "content_type": f.content_type,
        "size": f.data.len(),
        "etag": format!("\"{}\"", &f.sha256[..32]),
        "checksums": {"sha256": f.sha256},
        "metadata": f.metadata,
        "created_at": util::rfc3339_ns(f.created),
        "expires_at": util::rfc3339_ns(util::wall_after(f.created, Duration::from_secs(24 * 3600))),
        "urls": {"get": format!("{}/v1/files/{}", shared.body_host(), f.id)},
    })
}

/// `POST /v1/files`: a multipart body with `content`, and optional `filename`, `type` and
/// `metadata`.
pub(crate) fn create_file(shared: &Arc<Shared>, req: &Req) -> Resp {
    let Some(ct) = req.header("content-type") else {
        return Resp::problem(
            415,
            "Unsupported Media Type",
            "Expected a multipart/form-data body",
        );
    };
    let Some(boundary) = multipart::boundary(ct) else {
        return Resp::problem(
            415,
            "Unsupported Media Type",
            "Expected a multipart/form-data body with a boundary",
        );
    };
    let parts = match multipart::parse(&req.body, &boundary) {
        Ok(p) => p,
        Err(e) => return Resp::problem(400, "Invalid multipart body", &e),
    };
    let Some(content) = parts.iter().find(|p| p.name == "content") else {
        return Resp::invalid(&["content: content is required".to_owned()]);
    };
    if content.data.len() > 100 * 1024 * 1024 {
        return Resp::problem(
            413,
            "Content Too Large",
            "Files must be less than 100MB in size",
        );
    }
    let text_part = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
    };
    let name = text_part("filename")
        .or_else(|| content.filename.clone())
        .unwrap_or_else(|| "file".to_owned());
    if name.len() > 255 {
        return Resp::invalid(&["filename: must be at most 255 bytes".to_owned()]);
    }
    let content_type = text_part("type")
        .or_else(|| content.content_type.clone())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let metadata = match text_part("metadata") {
        None => json!({}),
        Some(s) => match serde_json::from_str::<Value>(&s) {
            Ok(v) => v,
            Err(_) => return Resp::invalid(&["metadata: must be valid JSON".to_owned()]),
        },
    };
    let upload = {
        let mut st = lock(&shared.state);
        let seq = st.file_order.last().map_or(0, |f| f.seq + 1);
        let f = Arc::new(Upload {
            seq,
            id: util::new_id(),
            name,
            content_type,
            sha256: util::sha256_hex(&content.data),
            data: Bytes::copy_from_slice(&content.data),
            metadata,
            created: SystemTime::now(),
        });
        st.files.insert(f.id.clone(), f.clone());
        st.file_order.push(f.clone());
        f
    };
    Resp::json(201, &file_json(shared, &upload))
}

/// `DELETE /v1/files/{id}`.
pub(crate) fn delete_file(shared: &Shared, id: &str) -> Resp {
    let mut st = lock(&shared.state);
    match st.files.remove(id) {
        Some(f) => {
            st.file_order.retain(|x| x.seq != f.seq);
            Resp::empty(204)
        }
        None => Resp::problem(404, "Not found", "File not found"),
    }
}

/// `GET /v1/files/{id}`.
pub(crate) fn get_file(shared: &Shared, id: &str) -> Resp {
    match find_file(shared, id) {
        Some(f) => Resp::json(200, &file_json(shared, &f)),
        None => Resp::problem(404, "Not found", "File not found"),
    }
}

/// `GET /v1/files/{id}/download`: the bytes, with the file's content type, `Range` support
/// and `ETag: "<checksums.sha256>"`.
pub(crate) fn download_file(shared: &Shared, req: &Req, id: &str) -> Resp {
    match find_file(shared, id) {
        Some(f) => download::serve(
            shared,
            req,
            Content::Memory(f.data.clone()),
            &f.sha256,
            &f.content_type,
        ),
        None => Resp::problem(404, "Not found", "File not found"),
    }
}
