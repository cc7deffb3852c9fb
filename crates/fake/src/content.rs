//! The bytes of a file served by the fake: in memory, or computed on demand.

use bytes::Bytes;

use crate::synthetic::SyntheticFile;

/// The bytes of a file: in memory, or computed on demand.
#[derive(Clone, Debug)]
pub(crate) enum Content {
    Memory(Bytes),
    Synthetic(SyntheticFile),
}

impl Content {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Content::Memory(b) => b.len() as u64,
            Content::Synthetic(f) => f.len(),
        }
    }

    /// The bytes at `offset..offset + n` (the caller keeps within the content).
    pub(crate) fn chunk(&self, offset: u64, n: usize) -> Bytes {
        match self {
            Content::Memory(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let end = start.saturating_add(n).min(b.len());
                b.slice(start..end)
            }
            Content::Synthetic(f) => Bytes::from(f.bytes(offset, n)),
        }
    }
}
