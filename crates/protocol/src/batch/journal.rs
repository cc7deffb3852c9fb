//! The batch journal: an append-only JSON Lines file that makes a batch resumable without ever
//! creating an item twice. Pure functions: the driver writes and reads the file.
//!
//! ```text
//! {"type":"header","format":1,"target":"owner/name","inputs":"sha256:…","items":1000}
//! {"type":"intent","item":0,"at":"2025-01-15T10:03:39.896Z"}    before the create is sent
//! {"type":"created","item":0,"id":"p1","outcome":"created"}      as soon as it is answered
//! {"type":"done","item":0,"id":"p1","status":"succeeded"}        once it is over
//! {"type":"done","item":7,"error":"invalid input: …"}             an item that ended in an error
//! ```
//!
//! Each record is one line ending in `\n` ([`JournalRecord::to_line`]). A line counts only once
//! its `\n` is there: a process killed mid-write leaves a torn last line, which
//! [`Journal::parse`] drops (and [`Journal::valid_len`] says where to truncate the file before
//! appending to it).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::CreateOutcome;

/// The journal format this version writes and reads.
pub const JOURNAL_FORMAT: u32 = 1;

/// The first record of a journal: which batch it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalHeader {
    /// The format version ([`JOURNAL_FORMAT`]).
    pub format: u32,
    /// The target, as [`Target`](crate::Target)'s `Display` writes it (`owner/name`, a version
    /// id, `deployment owner/name`).
    pub target: String,
    /// What identifies the inputs, chosen by the caller: [`inputs_digest`] of the inputs, or the
    /// identity of an inputs file.
    pub inputs: String,
    /// How many items the batch has.
    pub items: usize,
}

/// One line of a journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JournalRecord {
    /// The first line.
    Header(JournalHeader),
    /// A create of this item is about to be sent (written, and flushed, before it is).
    Intent {
        /// The item's index.
        item: usize,
        /// The wall-clock time the record was made: the create goes after it.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The item's prediction exists.
    Created {
        /// The item's index.
        item: usize,
        /// The prediction's id.
        id: String,
        /// How it was obtained.
        outcome: CreateOutcome,
    },
    /// The item is over: a terminal prediction, or an error.
    Done {
        /// The item's index.
        item: usize,
        /// The prediction's id, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The terminal status (`succeeded`, `failed`, `canceled`, `aborted`), when it ended with
        /// a prediction.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        /// The error, when it ended with one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl JournalRecord {
    /// The record as one line of JSON, `\n` included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned());
        line.push('\n');
        line
    }

    /// The item this record is about (`None` for the header).
    pub fn item(&self) -> Option<usize> {
        match self {
            JournalRecord::Header(_) => None,
            JournalRecord::Intent { item, .. }
            | JournalRecord::Created { item, .. }
            | JournalRecord::Done { item, .. } => Some(*item),
        }
    }
}

/// Why a journal cannot be used.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JournalError {
    /// No complete header line.
    #[error("the journal has no header")]
    MissingHeader,
    /// A line that is complete (it ends in a newline) but not a record.
    #[error("journal line {line} is not a record: {reason}")]
    Corrupt {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A format this version does not read.
    #[error("journal format {0} is not supported (this version reads format {JOURNAL_FORMAT})")]
    UnsupportedFormat(u32),
    /// The journal belongs to another batch.
    #[error(
        "the journal is for another batch: its {field} is {journal:?}, this batch's is {expected:?}"
    )]
    Mismatch {
        /// Which header field differs: `target`, `inputs` or `items`.
        field: &'static str,
        /// The journal's value.
        journal: String,
        /// This batch's value.
        expected: String,
    },
    /// The batch's options or spec are invalid (see [`Batch::new`](super::Batch::new)).
    #[error("{0}")]
    Invalid(crate::Error),
    /// A record about an item the batch does not have.
    #[error("journal line {line} is about item {item}, past the batch's {items} items")]
    ItemOutOfRange {
        /// The line number, from 1.
        line: usize,
        /// The item.
        item: usize,
        /// How many items the batch has.
        items: usize,
    },
}

/// A journal read back ([`Journal::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Journal {
    /// Its header.
    pub header: JournalHeader,
    /// The records after the header, in order.
    pub records: Vec<JournalRecord>,
    /// How many bytes of the file are complete records: truncate the file to this length
    /// before appending to it (a torn last line would otherwise run into the next record).
    pub valid_len: usize,
    /// Whether a torn last line was dropped.
    pub torn: bool,
}

impl Journal {
    /// Reads a journal. A last line without its `\n` (a write cut short) is dropped; any other
    /// line that is not a record is an error.
    pub fn parse(bytes: &[u8]) -> Result<Journal, JournalError> {
        let mut header = None;
        let mut records = Vec::new();
        let mut valid_len = 0;
        let mut torn = false;
        let mut start = 0;
        let mut line_no = 0;
        while start < bytes.len() {
            let Some(len) = bytes[start..].iter().position(|&b| b == b'\n') else {
                torn = true;
                break;
            };
            line_no += 1;
            let line = &bytes[start..start + len];
            start += len + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                valid_len = start;
                continue;
            }
            let record: JournalRecord =
                serde_json::from_slice(line).map_err(|e| JournalError::Corrupt {
                    line: line_no,
                    reason: e.to_string(),
                })?;
            match (record, &header) {
                (JournalRecord::Header(h), None) => {
                    if h.format != JOURNAL_FORMAT {
                        return Err(JournalError::UnsupportedFormat(h.format));
                    }
                    header = Some(h);
                }
                (JournalRecord::Header(_), Some(_)) => {
                    return Err(JournalError::Corrupt {
                        line: line_no,
                        reason: "a second header".to_owned(),
                    });
                }
                (_, None) => return Err(JournalError::MissingHeader),
                (record, Some(h)) => {
                    if let Some(item) = record.item()
                        && item >= h.items
                    {
                        return Err(JournalError::ItemOutOfRange {
                            line: line_no,
                            item,
                            items: h.items,
                        });
                    }
                    records.push(record);
                }
            }
            valid_len = start;
        }
        let header = header.ok_or(JournalError::MissingHeader)?;
        Ok(Journal {
            header,
            records,
            valid_len,
            torn,
        })
    }

    /// Checks that this journal belongs to the batch whose header is `expected`.
    pub fn check(&self, expected: &JournalHeader) -> Result<(), JournalError> {
        let h = &self.header;
        let mismatch = |field, journal: String, expected: String| {
            Err(JournalError::Mismatch {
                field,
                journal,
                expected,
            })
        };
        if h.target != expected.target {
            return mismatch("target", h.target.clone(), expected.target.clone());
        }
        if h.inputs != expected.inputs {
            return mismatch("inputs", h.inputs.clone(), expected.inputs.clone());
        }
        if h.items != expected.items {
            return mismatch("items", h.items.to_string(), expected.items.to_string());
        }
        Ok(())
    }
}

/// A digest of a batch's inputs for [`JournalHeader::inputs`]: `sha256:` and the hex SHA-256 of
/// every input's compact JSON, each followed by `\n`. Inputs are compared as written (key order
/// included).
pub fn inputs_digest(inputs: &[serde_json::Value]) -> String {
    let mut h = Sha256::new();
    for input in inputs {
        h.update(serde_json::to_vec(input).unwrap_or_default());
        h.update(b"\n");
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
