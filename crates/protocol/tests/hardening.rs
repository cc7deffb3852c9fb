//! What a hostile server and a careless caller must not break, at the protocol level: an echoed
//! token, cursor cycles, redirect chains into the API origin, dripped bodies, terminal escapes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Reply, drive, drive_collect, pred_body, proxy_cfg, resp, resp_with};
use http::{HeaderMap, StatusCode};
use proptest::prelude::*;
use replicate_protocol::download::{Download, DownloadItem};
use replicate_protocol::output::{self, SaveOptions};
use replicate_protocol::text::{clean_line, clean_text, redact};
use replicate_protocol::{
    Call, Config, CreatePrediction, Error, Flow, GetPrediction, ListPredictions, Pager,
    PaginationError, Prediction, RetryPolicy, Run, Step, Target, TransportError,
    TransportErrorKind, WaitOptions,
};

const TOKEN: &str = "r8_Secr3tTokenValue42";

fn cfg() -> Config {
    Config::new(TOKEN)
        .with_base_url("https://proxy.example/replicate")
        .unwrap()
}

fn no_token(err: &Error) {
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            !text
                .to_ascii_lowercase()
                .contains(&TOKEN.to_ascii_lowercase()),
            "the token leaked: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. An echoed token never reaches an error.

#[test]
fn token_echoed_in_a_401_detail_is_redacted() {
    let body = format!(
        r#"{{"title":"Unauthenticated","detail":"bad credentials: Bearer {TOKEN}","status":401}}"#
    );
    let mut call = Call::new(GetPrediction::new("abc"), cfg());
    let t = drive(
        &mut call,
        Instant::now(),
        vec![Reply::Http(resp(401, body))],
    );
    let err = t.result.unwrap_err();
    no_token(&err);
    assert!(err.to_string().contains("Bearer ***"), "{err}");
}

#[test]
fn token_echoed_in_a_502_html_page_or_a_200_non_json_body_is_redacted() {
    let html = format!(
        "<html><body><h1>502</h1><pre>authorization: Bearer {}</pre></body></html>",
        TOKEN.to_uppercase()
    );
    let text = format!("not json; you sent {TOKEN}");
    for reply in [resp(502, html), resp(200, text)] {
        let mut call =
            Call::with_policy(GetPrediction::new("abc"), cfg(), RetryPolicy::none(), None);
        let t = drive(&mut call, Instant::now(), vec![Reply::Http(reply)]);
        no_token(&t.result.unwrap_err());
    }
}

#[test]
fn token_echoed_in_a_failed_prediction_or_its_logs_is_redacted() {
    let body = serde_json::json!({
        "id": "abc", "status": "failed",
        "error": format!("auth header was Bearer {TOKEN}"),
        "logs": format!("env: REPLICATE_API_TOKEN={TOKEN}\n"),
    });
    let create = CreatePrediction::new(Target::parse("a/b").unwrap());
    let mut run = Run::new(cfg(), create, WaitOptions::default());
    let t = drive(
        &mut run,
        Instant::now(),
        vec![Reply::Http(resp(201, body.to_string()))],
    );
    let p = t.result.unwrap();
    assert!(!p.logs.as_deref().unwrap().contains(TOKEN));
    let err = p.into_result().unwrap_err();
    no_token(&err);
}

proptest! {
    /// Whatever surrounds it and however its letters are cased, the token is gone from every
    /// text an API error carries.
    #[test]
    fn redaction_removes_the_token_in_any_shape(
        prefix in "[ -~]{0,40}",
        suffix in "[ -~]{0,40}",
        upper in proptest::collection::vec(any::<bool>(), TOKEN.len()),
        status in prop::sample::select(vec![400u16, 401, 403, 404, 422, 500, 502]),
        shape in 0usize..4,
    ) {
        let cased: String = TOKEN.chars().zip(&upper).map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }).collect();
        let echoed = format!("{prefix}{cased}{suffix}");
        let body = match shape {
            0 => serde_json::json!({"detail": echoed, "status": status}).to_string(),
            1 => serde_json::json!({"title": echoed}).to_string(),
            2 => serde_json::json!({"detail": "x", "errors": [{"header": echoed}]}).to_string(),
            _ => echoed.clone(),
        };
        let mut call = Call::with_policy(GetPrediction::new("abc"), cfg(), RetryPolicy::none(), None);
        let t = drive(&mut call, Instant::now(), vec![Reply::Http(resp(status, body))]);
        let err = t.result.unwrap_err();
        let shown = format!("{err} {err:?}").to_ascii_lowercase();
        prop_assert!(!shown.contains(&TOKEN.to_ascii_lowercase()), "{}", shown);
    }

    #[test]
    fn redact_never_panics_and_leaves_no_token(text in "\\PC{0,80}", at in 0usize..80) {
        let mut s = text.clone();
        let cut = (0..=at.min(s.len())).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        s.insert_str(cut, TOKEN);
        prop_assert!(!redact(&s, TOKEN).contains(TOKEN));
        let _ = clean_text(&text);
        let _ = clean_line(&text);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Cursor cycles and the page cap.

fn page_body(next: Option<&str>) -> String {
    let next = next.map_or("null".to_owned(), |c| {
        format!("\"https://proxy.example/replicate/v1/predictions?cursor={c}\"")
    });
    format!(
        r#"{{"results":[{}],"next":{next},"previous":null}}"#,
        String::from_utf8(pred_body("p", "succeeded")).unwrap()
    )
}

#[test]
fn a_pager_detects_a_cursor_cycle() {
    // A → B → A: three pages are fetched, the third names A again.
    let mut pager = Pager::new(cfg(), ListPredictions::new());
    let (t, items) = drive_collect(
        &mut pager,
        Instant::now(),
        vec![
            Reply::Http(resp(200, page_body(Some("A")))),
            Reply::Http(resp(200, page_body(Some("B")))),
            Reply::Http(resp(200, page_body(Some("A")))),
        ],
    );
    assert_eq!(
        items.len(),
        3,
        "the items read before the cycle are handed out"
    );
    assert_eq!(t.sent.len(), 3);
    assert!(t.sent[1].1.uri().query().unwrap().contains("cursor=A"));
    assert!(matches!(
        &t.result,
        Err(Error::Pagination(PaginationError::CursorCycle { cursor, .. })) if cursor == "A"
    ));
}

#[test]
fn a_pager_stops_at_its_page_cap() {
    let mut pager = Pager::new(cfg(), ListPredictions::new()).max_pages(5);
    let replies = (1..=5)
        .map(|n| Reply::Http(resp(200, page_body(Some(&format!("c{n}"))))))
        .collect();
    let (t, items) = drive_collect(&mut pager, Instant::now(), replies);
    assert_eq!(t.sent.len(), 5);
    assert_eq!(items.len(), 5);
    let err = t.result.unwrap_err();
    assert_eq!(
        err,
        Error::Pagination(PaginationError::TooManyPages { max_pages: 5 })
    );
    assert!(err.to_string().contains("more than 5 pages"));
}

#[test]
fn a_pager_retries_a_page_and_ends_after_the_last() {
    let mut pager = Pager::new(cfg(), ListPredictions::new())
        .retry_policy(RetryPolicy::default().without_jitter());
    let (t, items) = drive_collect(
        &mut pager,
        Instant::now(),
        vec![
            Reply::Http(resp(200, page_body(Some("A")))),
            Reply::Http(resp(503, "")),
            Reply::Http(resp(200, page_body(None))),
        ],
    );
    assert_eq!(items.len(), 2);
    assert_eq!(t.sleeps.len(), 1);
    assert_eq!(t.result, Ok(()));
}

// ---------------------------------------------------------------------------------------------
// 14. A redirect chain that starts off the API origin never gets the token.

fn redirect_to(url: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("location", url.parse().unwrap());
    h
}

#[test]
fn a_redirect_from_an_output_host_into_the_api_origin_gets_no_token() {
    let cfg = cfg();
    let now = Instant::now();
    let send = |plan: &mut Download| match plan.poll(now) {
        Step::Send(out) => out.request,
        other => panic!("{other:?}"),
    };
    let mut plan = Download::new(&cfg, "https://replicate.delivery/x/out.png").unwrap();
    assert!(send(&mut plan).headers().get("authorization").is_none());
    plan.handle_head(
        StatusCode::FOUND,
        &redirect_to("https://proxy.example/replicate/v1/account"),
        now,
    );
    let req = send(&mut plan);
    assert_eq!(req.uri(), "https://proxy.example/replicate/v1/account");
    assert!(req.headers().get("authorization").is_none());
    assert!(!plan.sends_token());

    // A chain that starts on the API origin, leaves it and comes back: no token either.
    let mut plan =
        Download::new(&cfg, "https://proxy.example/replicate/v1/files/f/download").unwrap();
    assert!(send(&mut plan).headers().get("authorization").is_some());
    plan.handle_head(
        StatusCode::FOUND,
        &redirect_to("https://cdn.example/f"),
        now,
    );
    assert!(send(&mut plan).headers().get("authorization").is_none());
    plan.handle_head(
        StatusCode::FOUND,
        &redirect_to("https://proxy.example/replicate/v1/account"),
        now,
    );
    assert!(send(&mut plan).headers().get("authorization").is_none());
}

// ---------------------------------------------------------------------------------------------
// 6. A dripped download ends.

#[test]
fn a_dripped_download_fails_the_minimum_progress_rule() {
    let open = |plan: &mut Download, t: Instant| {
        let Step::Send(_) = plan.poll(t) else {
            panic!()
        };
        plan.handle_head(StatusCode::OK, &HeaderMap::new(), t);
    };
    let t0 = Instant::now();
    let mut plan = Download::new(&cfg(), "https://replicate.delivery/x/out.png")
        .unwrap()
        .retry_policy(RetryPolicy::none());
    open(&mut plan, t0);
    let mut end = None;
    // One byte every 5 s: each read arrives well within any idle timeout.
    for i in 0..20u64 {
        let t = t0 + Duration::from_secs(5 * i);
        match plan.poll(t) {
            Step::Receive => plan.handle_chunk(b"x", t),
            Step::Yield(DownloadItem::Chunk(_)) => {
                assert!(matches!(plan.poll(t), Step::Receive));
                plan.handle_chunk(b"x", t);
            }
            Step::Done(r) => {
                end = Some((i, r));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let (i, result) = end.expect("a drip of 1 byte per 5 s never failed");
    assert_eq!(i, 7, "fails once the first 30 s window is over");
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Timeout),
        "{err:?}"
    );
    // A steady download passes.
    let mut plan = Download::new(&cfg(), "https://replicate.delivery/x/out.png").unwrap();
    open(&mut plan, t0);
    for i in 0..100u64 {
        let t = t0 + Duration::from_secs(i);
        assert!(matches!(plan.poll(t), Step::Receive));
        plan.handle_chunk(&[0; 8192], t);
        assert!(matches!(plan.poll(t), Step::Yield(DownloadItem::Chunk(_))));
    }
    plan.handle_end(t0);
}

// ---------------------------------------------------------------------------------------------
// 8, 10. Server text meets a terminal or a file name; runaway output lists.

#[test]
fn escape_sequences_and_bidi_overrides_are_made_inert() {
    let hostile = "ok\x1b]0;title\x07 \x1b[2J \x1b]52;c;cHduZWQ=\x07 \u{9b}1m \u{202e}gpj.exe";
    let cleaned = clean_text(hostile);
    assert!(
        !cleaned
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    );
    assert!(!cleaned.contains('\u{202e}'));
    assert!(cleaned.contains("\\u{1b}]52;c;"));
    let name = output::file_name_for("https://h/x/evil\u{202e}gnp.exe", 0);
    assert!(!name.contains('\u{202e}'), "{name}");
    assert!(!output::file_name_for("https://h/x/a%1B%5B2Jb.png", 0).contains('\x1b'));
}

#[test]
fn a_runaway_output_list_is_refused_before_anything_is_decoded() {
    let outputs: Vec<String> = (0..5_000)
        .map(|_| "data:text/plain;base64,aGk=".to_owned())
        .collect();
    let p: Prediction = serde_json::from_value(serde_json::json!({
        "id": "abc", "status": "succeeded", "output": outputs,
    }))
    .unwrap();
    let err = output::output_refs_capped(&p, SaveOptions::default().max_files).unwrap_err();
    assert!(err.to_string().contains("5000 output files"), "{err}");
    assert_eq!(output::output_refs_capped(&p, 5_000).unwrap().len(), 5_000);
}

// ---------------------------------------------------------------------------------------------
// 13. A redirect from the API says where it pointed.

#[test]
fn an_api_redirect_says_where_it_pointed() {
    let mut call = Call::new(GetPrediction::new("abc"), proxy_cfg());
    let t = drive(
        &mut call,
        Instant::now(),
        vec![Reply::Http(resp_with(
            302,
            &[("location", "https://login.example/sso")],
            "",
        ))],
    );
    let msg = t.result.unwrap_err().to_string();
    assert!(msg.contains("302 Found"), "{msg}");
    assert!(msg.contains("https://login.example/sso"), "{msg}");
}

#[test]
fn transport_errors_read_as_sentences() {
    let e = Error::Transport(TransportError::new(TransportErrorKind::Connect, "refused"));
    assert_eq!(e.to_string(), "could not connect: refused");
}
