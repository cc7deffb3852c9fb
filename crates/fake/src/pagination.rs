//! Cursor pagination of list endpoints: opaque cursors, pages newest first, and the page
//! answer with absolute `next`/`previous` URLs.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::http::Resp;
use crate::request::Req;
use crate::state::Shared;
use crate::util;

/// A page of a list, newest first.
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
    previous: Option<String>,
}

fn encode_cursor(kind: char, seq: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{seq}"))
}

/// Whether `c` is a cursor the fake made (of any list).
pub(crate) fn valid_cursor(c: &str) -> bool {
    decode_cursor(c).is_some()
}

fn decode_cursor(c: &str) -> Option<(char, usize)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (k, n) = s.split_once(':')?;
    let kind = match k {
        "n" => 'n',
        "p" => 'p',
        _ => return None,
    };
    Some((kind, n.parse().ok()?))
}

/// Cursor pagination over `items` (ascending by `seq`), newest first.
fn paginate<T: Clone>(
    items: &[T],
    seq: impl Fn(&T) -> usize,
    cursor: Option<&str>,
    page_size: usize,
) -> Result<Page<T>, ()> {
    let page: Vec<T> = match cursor {
        None => items.iter().rev().take(page_size).cloned().collect(),
        Some(c) => match decode_cursor(c).ok_or(())? {
            ('n', x) => {
                let end = items.partition_point(|it| seq(it) < x);
                items[..end].iter().rev().take(page_size).cloned().collect()
            }
            (_, x) => {
                let start = items.partition_point(|it| seq(it) <= x);
                let mut v: Vec<T> = items[start..].iter().take(page_size).cloned().collect();
                v.reverse();
                v
            }
        },
    };
    let (next, previous) = match (page.first(), page.last()) {
        (Some(first), Some(last)) => {
            let (fs, ls) = (seq(first), seq(last));
            let older = items.first().is_some_and(|it| seq(it) < ls);
            let newer = items.last().is_some_and(|it| seq(it) > fs);
            (
                older.then(|| encode_cursor('n', ls)),
                newer.then(|| encode_cursor('p', fs)),
            )
        }
        _ => (None, None),
    };
    Ok(Page {
        items: page,
        next,
        previous,
    })
}

/// Answers one page of `items` (ascending by `seq`), newest first, with absolute `next` and
/// `previous` URLs naming `path` on the body host, followed by `keep` (e.g. `&sort_by=...`).
pub(crate) fn page_resp<T: Clone>(
    shared: &Shared,
    req: &Req,
    items: &[T],
    seq: impl Fn(&T) -> usize,
    path: &str,
    keep: &str,
    render: impl Fn(&T) -> Value,
) -> Resp {
    let cursor = util::query_param(req.query.as_deref(), "cursor");
    let Ok(page) = paginate(items, &seq, cursor.as_deref(), shared.opts.page_size) else {
        return Resp::problem(400, "Invalid cursor", "The cursor is not valid");
    };
    let host = shared.body_host();
    let url = |c: String| format!("{host}{path}?cursor={c}{keep}");
    let results: Vec<Value> = page.items.iter().map(render).collect();
    Resp::json(
        200,
        &json!({
            "previous": page.previous.map(url),
            "next": page.next.map(url),
            "results": results,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_walks_both_ways() {
        let items: Vec<usize> = (0..7).collect();
        let p1 = paginate(&items, |x| *x, None, 3).expect("page");
        assert_eq!(p1.items, vec![6, 5, 4]);
        assert!(p1.previous.is_none());
        let p2 = paginate(&items, |x| *x, p1.next.as_deref(), 3).expect("page");
        assert_eq!(p2.items, vec![3, 2, 1]);
        let p3 = paginate(&items, |x| *x, p2.next.as_deref(), 3).expect("page");
        assert_eq!(p3.items, vec![0]);
        assert!(p3.next.is_none());
        let back = paginate(&items, |x| *x, p3.previous.as_deref(), 3).expect("page");
        assert_eq!(back.items, vec![3, 2, 1]);
        assert!(paginate(&items, |x| *x, Some("!!"), 3).is_err());
    }
}
