//! Tiny output files.

use base64::Engine as _;

/// An 8×8 blue JPEG.
pub const JPEG: &[u8] = include_bytes!("../assets/out.jpg");
/// A 1×1 blue PNG.
pub const PNG: &[u8] = include_bytes!("../assets/out.png");

/// The bytes and content type served for an output file with this path.
pub(crate) fn file_for(path: &str) -> (&'static [u8], &'static str) {
    let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => (JPEG, "image/jpeg"),
        "png" => (PNG, "image/png"),
        "txt" => (b"Hello from replicate-fake\n", "text/plain"),
        "json" => (b"{\"fake\":true}\n", "application/json"),
        _ => (PNG, "application/octet-stream"),
    }
}

/// The PNG as a `data:` URI.
pub(crate) fn png_data_uri() -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(PNG)
    )
}
