//! Doc comments from schema text.
//!
//! A description is the model author's text: it may hold Markdown, HTML, code fences, indented
//! blocks (which rustdoc would compile as doctests), bare URLs, terminal escapes or bidi
//! overrides (which rustc refuses in comments). [`doc_lines`] makes it plain text: control
//! and direction characters shown escaped, every line trimmed, Markdown's active characters
//! escaped, URLs made autolinks, and the whole cut to [`MAX_DOC_CHARS`].

use replicate_protocol::text::clean_text;

/// The most characters of a description kept in a doc comment.
pub(crate) const MAX_DOC_CHARS: usize = 2000;

/// The most characters of a value shown in a doc comment (a default, an enum value).
pub(crate) const MAX_VALUE_CHARS: usize = 200;

/// Characters CommonMark gives a meaning to, escaped with a backslash.
const MARKDOWN_ACTIVE: &[char] = &[
    '\\', '`', '*', '_', '[', ']', '<', '>', '#', '|', '~', '&', '{', '}', '$',
];

/// The lines of a doc comment showing `text` as plain text (see the module docs); no leading or
/// trailing empty line, at most one empty line in a row.
pub(crate) fn doc_lines(text: &str) -> Vec<String> {
    let text = truncate(text, MAX_DOC_CHARS);
    let cleaned = clean_text(&text).replace('\t', " ");
    let mut lines: Vec<String> = Vec::new();
    for line in cleaned.lines() {
        let line = line.trim();
        if line.is_empty() {
            if lines.last().is_some_and(|l| !l.is_empty()) {
                lines.push(String::new());
            }
        } else {
            lines.push(escape_line(line));
        }
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// `value` shown inline: as a code span when it can be one, otherwise as escaped text.
pub(crate) fn code(value: &str) -> String {
    let value = truncate(value, MAX_VALUE_CHARS);
    let cleaned = clean_text(&value).replace(['\n', '\t'], " ");
    if cleaned.is_empty() {
        "\"\"".to_owned()
    } else if cleaned.contains('`') || cleaned.trim() != cleaned {
        escape_line(&cleaned)
    } else {
        format!("`{cleaned}`")
    }
}

/// `text` cut to `max` characters, with `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// One line with Markdown's active characters escaped and `http(s)://` URLs as autolinks.
fn escape_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match autolink(word) {
            Some(link) => out.push_str(&link),
            None => escape_into(word, &mut out),
        }
    }
    out
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        if MARKDOWN_ACTIVE.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// `word` as `<url>` (plus its trailing punctuation) when it is an `http(s)` URL made of
/// characters an autolink can hold.
fn autolink(word: &str) -> Option<String> {
    if !(word.starts_with("https://") || word.starts_with("http://")) {
        return None;
    }
    let url = word.trim_end_matches(['.', ',', ';', ':', ')', '!', '?', '\'', '"']);
    let rest = &word[url.len()..];
    let host_and_path = url.split_once("://").map_or("", |(_, r)| r);
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~:/?#@!$&'()*+,;=%".contains(c);
    if host_and_path.is_empty() || !url.chars().all(allowed) {
        return None;
    }
    let mut out = format!("<{url}>");
    escape_into(rest, &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_code_are_made_plain() {
        let text = "  Use `x` **bold** [link](y) <b>html</b> &amp;\n\n\n    indented code\n```rust\nfn f() {}\n```\n";
        assert_eq!(
            doc_lines(text),
            [
                r"Use \`x\` \*\*bold\*\* \[link\](y) \<b\>html\</b\> \&amp;",
                "",
                "indented code",
                r"\`\`\`rust",
                r"fn f() \{\}",
                r"\`\`\`",
            ]
        );
    }

    #[test]
    fn controls_and_bidi_are_escaped() {
        let lines = doc_lines("a\u{202e}b\x1b[2J\r\nc */ d");
        assert_eq!(lines, [r"a\\u\{202e\}b\\u\{1b\}\[2J", "c \\*/ d"]);
        assert!(lines.iter().all(|l| !l.chars().any(char::is_control)));
    }

    #[test]
    fn urls_become_autolinks() {
        assert_eq!(
            doc_lines("See https://example.com/a_b?x=1. Or http://x"),
            ["See <https://example.com/a_b?x=1>. Or <http://x>"]
        );
        assert_eq!(doc_lines("https://a.b/<x>"), [r"https://a.b/\<x\>"]);
    }

    #[test]
    fn long_text_is_cut() {
        let lines = doc_lines(&"a".repeat(MAX_DOC_CHARS + 10));
        assert_eq!(lines[0].chars().count(), MAX_DOC_CHARS + 1);
        assert!(lines[0].ends_with('…'));
    }

    #[test]
    fn values_are_code_spans_when_they_can_be() {
        assert_eq!(code("1:1"), "`1:1`");
        assert_eq!(code("a`b"), r"a\`b");
        assert_eq!(code(""), "\"\"");
        assert_eq!(code(" x"), " x");
    }
}
