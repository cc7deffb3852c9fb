//! `--web`: a prediction's web page, checked before it is printed, and opened in a browser when
//! one is at hand.

use std::io::IsTerminal;

use replicate_ureq::Prediction;

use crate::output::note;
use crate::text::safe_line;

/// Set (to anything) to never open a browser; the URL is still printed.
pub const NO_BROWSER_ENV: &str = "REPLICATE_NO_BROWSER";

/// The longest web URL accepted.
const MAX_URL_LEN: usize = 2048;

/// The prediction's web page (`urls.web`), checked: an absolute `http` or `https` URL with a
/// host, at most 2048 characters of printable ASCII (so nothing in it can drive a terminal or
/// a shell). An error says why there is none to show.
pub fn web_url(p: &Prediction) -> Result<String, String> {
    let id = safe_line(&p.id);
    let raw = p
        .urls
        .as_ref()
        .and_then(|u| u.web.as_deref())
        .ok_or_else(|| format!("prediction {id} has no web page (no urls.web)"))?;
    checked_url(raw).map_err(|why| format!("prediction {id}: the server's web URL {why}"))
}

/// `raw` when it is an absolute http(s) URL with a host, of printable ASCII, at most
/// [`MAX_URL_LEN`] long.
pub fn checked_url(raw: &str) -> Result<String, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("is longer than {MAX_URL_LEN} characters"));
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{:?} holds spaces, control or non-ASCII characters",
            safe_line(raw)
        ));
    }
    let uri: http::Uri = raw
        .parse()
        .map_err(|_| format!("{:?} is not a URL", safe_line(raw)))?;
    let scheme_ok = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) {
        return Err(format!(
            "{:?} is not an http(s) URL with a host",
            safe_line(raw)
        ));
    }
    Ok(safe_line(raw))
}

/// Whether to open a browser: only when stdout is a terminal (someone is looking: never in a
/// pipe, a script or a test) and [`NO_BROWSER_ENV`] is not set.
fn wants_browser(stdout_is_terminal: bool, no_browser: bool) -> bool {
    stdout_is_terminal && !no_browser
}

/// Opens `url` (checked by [`checked_url`]) in the default browser when [`wants_browser`] and
/// a browser is available; a failure is noted on stderr and is not an error (the URL was
/// printed).
pub fn open(url: &str) {
    let no_browser = std::env::var_os(NO_BROWSER_ENV).is_some();
    if !wants_browser(std::io::stdout().is_terminal(), no_browser)
        || !webbrowser::Browser::is_available()
    {
        return;
    }
    if let Err(e) = webbrowser::open(url) {
        note(&format!("could not open a browser: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prediction(urls: serde_json::Value) -> Prediction {
        serde_json::from_value(json!({"id": "p1", "status": "starting", "urls": urls}))
            .expect("prediction")
    }

    #[test]
    fn only_clean_http_urls_are_shown() {
        assert_eq!(
            checked_url("https://replicate.com/p/abc"),
            Ok("https://replicate.com/p/abc".to_owned())
        );
        assert!(checked_url("http://127.0.0.1:8080/p/abc").is_ok());
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://x/\u{1b}[2J",
            "https://x/a b",
            "/p/abc",
            "https://replicate.com/p/é",
            "",
        ] {
            assert!(checked_url(bad).is_err(), "{bad:?}");
        }
        assert!(checked_url(&format!("https://x/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn the_web_url_of_a_prediction() {
        let p = prediction(json!({"web": "https://replicate.com/p/p1"}));
        assert_eq!(web_url(&p), Ok("https://replicate.com/p/p1".to_owned()));
        let p = prediction(json!({"get": "https://api/x"}));
        assert!(web_url(&p).is_err_and(|e| e.contains("no web page")));
        let p = prediction(json!({"web": "ftp://replicate.com/p/p1"}));
        assert!(web_url(&p).is_err_and(|e| e.contains("not an http(s) URL")));
    }

    #[test]
    fn a_browser_only_for_a_terminal() {
        assert!(wants_browser(true, false));
        assert!(!wants_browser(false, false));
        assert!(!wants_browser(true, true));
    }
}
