//! A prediction's outputs: URLs and `data:` URIs ([`output_refs`]), how many may be saved
//! ([`SaveOptions`]), and safe local file names ([`FileNames`], [`sanitize_file_name`]).
//! Fetching them is [`crate::download`].
//!
//! Output files live on another host than the API (`replicate.delivery`) and are kept about one
//! hour after the prediction finished; small outputs may come back inline as `data:` URIs.

use std::collections::HashSet;

use base64::Engine as _;
use serde_json::Value;

use crate::config::check_url;
use crate::error::OutputErrorKind;
use crate::{Error, Prediction};

/// One output of a prediction: a URL to fetch, or inline data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputRef {
    /// An `http` or `https` URL.
    Url(String),
    /// A `data:` URI, decoded.
    DataUri {
        /// The media type as written, parameters included (`text/plain;charset=US-ASCII` when
        /// the URI gives none).
        mime: String,
        /// The decoded content.
        bytes: Vec<u8>,
    },
}

impl OutputRef {
    /// Parses an output string: an absolute `http`/`https` URL, or a
    /// `data:[<mediatype>][;base64],<data>` URI (base64, or percent-encoded text).
    ///
    /// ```
    /// use replicate_protocol::output::OutputRef;
    /// let r = OutputRef::parse("data:text/plain;base64,aGk=").unwrap();
    /// assert_eq!(r, OutputRef::DataUri { mime: "text/plain".into(), bytes: b"hi".to_vec() });
    /// let r = OutputRef::parse("data:,a%20b").unwrap();
    /// assert_eq!(r, OutputRef::DataUri { mime: "text/plain;charset=US-ASCII".into(), bytes: b"a b".to_vec() });
    /// assert!(OutputRef::parse("https://replicate.delivery/x/out-0.png").is_ok());
    /// assert!(OutputRef::parse("file:///etc/passwd").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<OutputRef, Error> {
        let s = s.trim();
        if has_prefix_ignore_case(s, "data:") {
            return parse_data_uri(s);
        }
        if has_prefix_ignore_case(s, "http://") || has_prefix_ignore_case(s, "https://") {
            check_url(s).map_err(|_| {
                Error::output(
                    OutputErrorKind::InvalidReference,
                    format!("invalid output URL {s:?}"),
                )
            })?;
            return Ok(OutputRef::Url(s.to_owned()));
        }
        Err(Error::output(
            OutputErrorKind::InvalidReference,
            format!(
                "unsupported output reference {:?}: expected an http(s) URL or a data: URI",
                short(s)
            ),
        ))
    }

    /// The URL, when this is one.
    pub fn url(&self) -> Option<&str> {
        match self {
            OutputRef::Url(u) => Some(u),
            OutputRef::DataUri { .. } => None,
        }
    }
}

pub(crate) fn has_prefix_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// The first 60 characters, for messages.
pub(crate) fn short(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn parse_data_uri(s: &str) -> Result<OutputRef, Error> {
    let rest = s.get(5..).unwrap_or_default();
    let (header, data) = rest.split_once(',').ok_or_else(|| {
        Error::output(
            OutputErrorKind::InvalidReference,
            "invalid data: URI: no ',' before the data".to_owned(),
        )
    })?;
    let (mime, base64) = match header.get(header.len().saturating_sub(7)..) {
        Some(tail) if tail.eq_ignore_ascii_case(";base64") => {
            (header.get(..header.len() - 7).unwrap_or_default(), true)
        }
        _ => (header, false),
    };
    let mime = mime.trim();
    let mime = if mime.is_empty() {
        "text/plain;charset=US-ASCII".to_owned()
    } else if let Some(params) = mime.strip_prefix(';') {
        format!("text/plain;{params}")
    } else {
        mime.to_owned()
    };
    let raw: Vec<u8> = percent_encoding::percent_decode_str(data).collect();
    let bytes = if base64 {
        let compact: Vec<u8> = raw
            .into_iter()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        decode_base64(&compact).ok_or_else(|| {
            Error::output(
                OutputErrorKind::InvalidReference,
                format!(
                    "invalid base64 in a data: URI ({} bytes of {mime})",
                    compact.len()
                ),
            )
        })?
    } else {
        raw
    };
    Ok(OutputRef::DataUri { mime, bytes })
}

/// Standard or URL-safe base64, padded or not.
fn decode_base64(data: &[u8]) -> Option<Vec<u8>> {
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&STANDARD, config)
        .decode(data)
        .or_else(|_| GeneralPurpose::new(&URL_SAFE, config).decode(data))
        .ok()
}

/// Every output of a prediction that is a file: each string of its output (at any depth of lists
/// and objects) that is an `http(s)` URL or a `data:` URI, in order. Other strings (text output)
/// are skipped, so a text or JSON output gives an empty list.
///
/// Fails before anything is downloaded when the prediction's data was removed
/// (`data_removed: true`), and on a malformed `data:` URI.
pub fn output_refs(prediction: &Prediction) -> Result<Vec<OutputRef>, Error> {
    output_refs_capped(prediction, usize::MAX)
}

/// The default cap on how many files one prediction's outputs may write
/// ([`SaveOptions::max_files`]).
pub const DEFAULT_MAX_OUTPUT_FILES: usize = 1_000;

/// [`output_refs`], failing before anything is decoded when the output holds more than
/// `max_files` files (a runaway output list would otherwise write thousands of files).
pub fn output_refs_capped(
    prediction: &Prediction,
    max_files: usize,
) -> Result<Vec<OutputRef>, Error> {
    check_outputs_available(prediction)?;
    let count = count_refs(&prediction.output, 0);
    if count > max_files {
        return Err(Error::output(
            OutputErrorKind::TooManyFiles,
            format!(
                "prediction {} has {count} output files, more than the cap of {max_files}: nothing was written (raise the cap to save them)",
                prediction.id
            ),
        ));
    }
    let mut refs = Vec::with_capacity(count);
    collect_refs(&prediction.output, &mut refs, 0)?;
    Ok(refs)
}

/// How outputs are saved to a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveOptions {
    /// Replace an existing file of the same name (default: no: the output is written as
    /// `name-1.ext`, `name-2.ext`, ... instead, and the path actually written is returned).
    pub overwrite: bool,
    /// The most files one prediction may write (default [`DEFAULT_MAX_OUTPUT_FILES`]); over it,
    /// nothing is written and the save fails.
    pub max_files: usize,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            overwrite: false,
            max_files: DEFAULT_MAX_OUTPUT_FILES,
        }
    }
}

fn is_file_ref(s: &str) -> bool {
    let t = s.trim();
    has_prefix_ignore_case(t, "data:")
        || has_prefix_ignore_case(t, "http://")
        || has_prefix_ignore_case(t, "https://")
}

fn count_refs(value: &Value, depth: usize) -> usize {
    if depth > 64 {
        return 0;
    }
    match value {
        Value::String(s) => usize::from(is_file_ref(s)),
        Value::Array(items) => items.iter().map(|v| count_refs(v, depth + 1)).sum(),
        Value::Object(map) => map.values().map(|v| count_refs(v, depth + 1)).sum(),
        _ => 0,
    }
}

/// Fails with a clear message when the prediction's output was removed (`data_removed`).
pub fn check_outputs_available(prediction: &Prediction) -> Result<(), Error> {
    if prediction.data_removed {
        return Err(Error::output(
            OutputErrorKind::Expired,
            format!(
                "the outputs of prediction {} were removed (data_removed: true): outputs are kept about \
             one hour after the prediction finished; run the model again",
                prediction.id
            ),
        ));
    }
    Ok(())
}

fn collect_refs(value: &Value, refs: &mut Vec<OutputRef>, depth: usize) -> Result<(), Error> {
    if depth > 64 {
        return Ok(());
    }
    match value {
        Value::String(s) if is_file_ref(s) => refs.push(OutputRef::parse(s.trim())?),
        Value::Array(items) => {
            for item in items {
                collect_refs(item, refs, depth + 1)?;
            }
        }
        Value::Object(map) => {
            for item in map.values() {
                collect_refs(item, refs, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A safe local file name for an output: the last segment of the URL's path, percent-decoded
/// and sanitized ([`sanitize_file_name`]); `output-{index}` (plus an extension from the media
/// type of a `data:` URI) when there is none. Never contains a path separator, never `.` or
/// `..`, never starts with a dot.
///
/// ```
/// use replicate_protocol::output::file_name_for;
/// assert_eq!(file_name_for("https://replicate.delivery/xezq/abc/out-0.jpg?x=1", 0), "out-0.jpg");
/// assert_eq!(file_name_for("https://h/a/..%2F..%2Fetc%2Fpasswd", 0), "_.._etc_passwd");
/// assert_eq!(file_name_for("https://h/", 3), "output-3");
/// assert_eq!(file_name_for("data:image/png;base64,AAAA", 1), "output-1.png");
/// ```
pub fn file_name_for(url: &str, index: usize) -> String {
    let url = url.trim();
    if has_prefix_ignore_case(url, "data:") {
        let mime = url
            .get(5..)
            .and_then(|r| r.split([',', ';']).next())
            .unwrap_or_default();
        return match extension_for_mime(mime) {
            Some(ext) => format!("output-{index}.{ext}"),
            None => format!("output-{index}"),
        };
    }
    let no_fragment = url.split('#').next().unwrap_or_default();
    let no_query = no_fragment.split('?').next().unwrap_or_default();
    let path = match no_query.find("://") {
        Some(i) => {
            let after = no_query.get(i + 3..).unwrap_or_default();
            after.find('/').and_then(|p| after.get(p..)).unwrap_or("")
        }
        None => no_query,
    };
    path.rsplit(['/', '\\'])
        .find(|s| !s.is_empty())
        .and_then(|segment| {
            let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
            sanitize_file_name(&decoded)
        })
        .unwrap_or_else(|| format!("output-{index}"))
}

/// The longest file name [`sanitize_file_name`] returns, in bytes.
pub const MAX_FILE_NAME_BYTES: usize = 200;

/// Makes a string safe as one local file name, or `None` when nothing usable is left.
///
/// Path separators, control characters, invisible direction overrides (U+202E...) and characters Windows forbids (`<>:"|?*`) become `_`;
/// leading dots (so `.`, `..` and hidden files), surrounding spaces and trailing dots are
/// removed; Windows device names (`CON`, `NUL`, `COM1`, ...) get a `_` prefix; names are cut to
/// [`MAX_FILE_NAME_BYTES`], keeping a short extension.
pub fn sanitize_file_name(name: &str) -> Option<String> {
    let mapped: String = name
        .chars()
        .map(|c| {
            if crate::text::is_unsafe_char(c)
                || matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*')
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = mapped
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(['.', ' '])
        .trim_start();
    if trimmed.is_empty() {
        return None;
    }
    let mut out = trimmed.to_owned();
    let stem = out
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes().get(3).is_some_and(u8::is_ascii_digit));
    if reserved {
        out.insert(0, '_');
    }
    if out.len() > MAX_FILE_NAME_BYTES {
        let ext = out
            .rsplit_once('.')
            .map(|(_, e)| e)
            .filter(|e| !e.is_empty() && e.len() <= 16)
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let mut cut = MAX_FILE_NAME_BYTES - ext.len();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(&ext);
    }
    Some(out)
}

/// The usual file extension of a media type (`image/png` → `png`), for the small set of types
/// models output.
pub fn extension_for_mime(mime: &str) -> Option<&'static str> {
    let essence = mime.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    Some(match essence.as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "image/svg+xml" => "svg",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/ogg" => "ogg",
        "audio/flac" => "flac",
        "video/mp4" => "mp4",
        "video/webm" => "webm",
        "video/quicktime" => "mov",
        "application/json" => "json",
        "text/plain" => "txt",
        "text/csv" => "csv",
        "application/pdf" => "pdf",
        "application/zip" => "zip",
        _ => return None,
    })
}

/// Names the files of one download batch uniquely: the second `out.png` becomes `out-1.png`,
/// the third `out-2.png` (compared case-insensitively, as on macOS and Windows).
///
/// ```
/// use replicate_protocol::output::FileNames;
/// let mut names = FileNames::new();
/// assert_eq!(names.name_for("https://a/x/out.png", 0, None), "out.png");
/// assert_eq!(names.name_for("https://b/y/OUT.png", 1, None), "OUT-1.png");
/// assert_eq!(names.name_for("https://c/", 2, Some("image/webp")), "output-2.webp");
/// ```
#[derive(Debug, Clone, Default)]
pub struct FileNames {
    used: HashSet<String>,
}

impl FileNames {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// The name of output number `index` at `url` (a URL or `data:` URI): [`file_name_for`],
    /// plus an extension from `content_type` when the name has none, made unique in the batch.
    pub fn name_for(&mut self, url: &str, index: usize, content_type: Option<&str>) -> String {
        let mut name = file_name_for(url, index);
        if !name.contains('.')
            && let Some(ext) = content_type.and_then(extension_for_mime)
        {
            name = format!("{name}.{ext}");
        }
        self.unique(name)
    }

    /// `name`, or `name` with `-1`, `-2`, ... before its extension when already used.
    pub fn unique(&mut self, name: String) -> String {
        if self.used.insert(name.to_lowercase()) {
            return name;
        }
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
            _ => (name.clone(), String::new()),
        };
        let mut n = 1u64;
        loop {
            let candidate = format!("{stem}-{n}{ext}");
            if self.used.insert(candidate.to_lowercase()) {
                return candidate;
            }
            n += 1;
        }
    }
}
