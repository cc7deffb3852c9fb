//! Synthetic files: large, deterministic contents computed from `(seed, offset)`, so that any
//! byte range of a file of any size can be produced without storing it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::digest;

use crate::util::{hex, lock};

/// Synthetic files are made of blocks of this many bytes.
pub(crate) const BLOCK: usize = 64 * 1024;

/// The key of a seed's ChaCha20 stream: `SHA-256("replicate-fake synthetic file" || seed_le)`.
fn key_of(seed: u64) -> LessSafeKey {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"replicate-fake synthetic file");
    ctx.update(&seed.to_le_bytes());
    let d = ctx.finish();
    match UnboundKey::new(&CHACHA20_POLY1305, d.as_ref()) {
        Ok(k) => LessSafeKey::new(k),
        // A 32-byte key is always accepted.
        Err(_) => unreachable!("a ChaCha20 key is 32 bytes"),
    }
}

/// Writes block `b` of the stream (`buf` is [`BLOCK`] bytes or fewer, a prefix of it).
fn block(key: &LessSafeKey, b: u64, buf: &mut [u8]) {
    buf.fill(0);
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&b.to_le_bytes());
    // Encrypting zeros leaves the keystream; the tag is not used.
    let _ = key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), buf);
}

/// Fills `buf` with the bytes at `offset..offset + buf.len()` of every synthetic file with
/// this seed (see [`SyntheticFile`]).
fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    if buf.is_empty() {
        return;
    }
    let key = key_of(seed);
    let mut scratch: Vec<u8> = Vec::new();
    let mut pos = offset;
    let mut rest = buf;
    while !rest.is_empty() {
        let b = pos / BLOCK as u64;
        let within = (pos % BLOCK as u64) as usize;
        let n = (BLOCK - within).min(rest.len());
        let (head, tail) = rest.split_at_mut(n);
        if within == 0 {
            block(&key, b, head);
        } else {
            scratch.resize(within + n, 0);
            block(&key, b, &mut scratch);
            head.copy_from_slice(&scratch[within..]);
        }
        pos = pos.wrapping_add(n as u64);
        rest = tail;
    }
}

/// The bytes at `offset..offset + len` of the synthetic files with this seed: the same as
/// [`SyntheticFile::bytes`] on any file with this seed that is long enough (a synthetic file's
/// bytes do not depend on its length).
///
/// ```
/// let all = replicate_fake::synthetic_bytes(7, 0, 100);
/// assert_eq!(replicate_fake::synthetic_bytes(7, 10, 5), all[10..15]);
/// ```
pub fn synthetic_bytes(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill(seed, offset, &mut v);
    v
}

/// A large file whose bytes are computed on demand, never stored: a deterministic
/// pseudo-random stream of [`len`](Self::len) bytes chosen by a [`seed`](Self::seed).
///
/// The file is cut in blocks of 64 KiB: byte `p` of the file with seed `s` is byte
/// `p % 65536` of the ChaCha20 keystream (RFC 8439, starting at block counter 1, as
/// ChaCha20-Poly1305 encrypts) with key `SHA-256("replicate-fake synthetic file" ||
/// s as 8 little-endian bytes)` and nonce `0u32 || (p / 65536) as 8 little-endian bytes`. It
/// does not depend on the length: a shorter file with the same seed is a prefix of a longer
/// one. Any range costs only its own length to produce (a few hundred MB/s even in debug
/// builds), so the fake serves files of gigabytes in constant memory, and a test computes the
/// expected bytes ([`bytes`](Self::bytes), [`reader`](Self::reader), [`synthetic_bytes`]) or
/// [`sha256`](Self::sha256) itself.
///
/// The fake serves these as the outputs of models whose output is
/// [`Output::Synthetic`](crate::Output::Synthetic) (such as the built-in `fake/large-files`); see
/// [`FakeHandle::synthetic_file`](crate::FakeHandle::synthetic_file).
///
/// ```
/// use replicate_fake::SyntheticFile;
/// let f = SyntheticFile::new(3, 1000);
/// assert_eq!(f.bytes(0, 1000).len(), 1000);
/// assert_eq!(f.bytes(990, 100).len(), 10); // cut at the end
/// assert_eq!(f.sha256_hex().len(), 64);
/// assert_eq!(f.etag(), format!("\"{}\"", f.sha256_hex()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SyntheticFile {
    seed: u64,
    len: u64,
}

/// Bytes hashed at a time by [`SyntheticFile::sha256`].
const HASH_BLOCK: usize = 1 << 20;

/// How many digests the process keeps (they cost a full pass over the file to compute).
const DIGEST_CACHE: usize = 256;

/// The digest of one file: known, or being computed by whoever holds `computing`.
#[derive(Default)]
struct DigestSlot {
    computing: Mutex<()>,
    /// Someone computes it or is about to (see [`SyntheticFile::claim_digest`]).
    pending: AtomicBool,
    value: OnceLock<[u8; 32]>,
}

type Digests = VecDeque<(SyntheticFile, Arc<DigestSlot>)>;

/// Digests computed or being computed, shared by the whole process (tests and the server).
static DIGESTS: Mutex<Digests> = Mutex::new(VecDeque::new());

impl SyntheticFile {
    /// The file of `len` bytes with this seed.
    pub fn new(seed: u64, len: u64) -> Self {
        SyntheticFile { seed, len }
    }

    /// Its seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Its length in bytes (its `Content-Length`).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills `buf` with the bytes from `offset`, and returns how many it wrote: fewer than
    /// `buf.len()` at the end of the file (none from `len` on).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        let n = usize::try_from(self.len.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        fill(self.seed, offset, &mut buf[..n]);
        n
    }

    /// The bytes at `offset..offset + len`, cut at the end of the file.
    pub fn bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        let n = usize::try_from(self.len.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(len);
        synthetic_bytes(self.seed, offset, n)
    }

    /// A reader of the whole file (its memory is one small buffer).
    pub fn reader(&self) -> SyntheticReader {
        SyntheticReader {
            file: *self,
            pos: 0,
        }
    }

    /// The SHA-256 of the whole file. The first call for a file computes it (a pass over the
    /// file: a few seconds per GiB), and the process keeps the last few hundred digests, so
    /// the server and a test in the same process compute it once; concurrent callers wait for
    /// one computation.
    pub fn sha256(&self) -> [u8; 32] {
        match self.sha256_until(&|| false) {
            Some(d) => d,
            None => unreachable!("never stopped"),
        }
    }

    /// The slot of this file's digest in the process-wide cache.
    fn slot(&self) -> Arc<DigestSlot> {
        let mut cache = lock(&DIGESTS);
        if let Some((_, s)) = cache.iter().find(|(f, _)| f == self) {
            return s.clone();
        }
        let s = Arc::new(DigestSlot::default());
        if cache.len() >= DIGEST_CACHE {
            cache.pop_front();
        }
        cache.push_back((*self, s.clone()));
        s
    }

    /// [`sha256`](Self::sha256), giving up (`None`) when `stop` says so (checked every MiB).
    pub(crate) fn sha256_until(&self, stop: &dyn Fn() -> bool) -> Option<[u8; 32]> {
        let slot = self.slot();
        if let Some(d) = slot.value.get() {
            return Some(*d);
        }
        let _computing = lock(&slot.computing);
        if let Some(d) = slot.value.get() {
            return Some(*d);
        }
        slot.pending.store(true, Ordering::Release);
        let d = self.compute_sha256(stop);
        let d = d.map(|d| *slot.value.get_or_init(|| d));
        slot.pending.store(false, Ordering::Release);
        d
    }

    /// Whether the caller should compute the digest: `false` if it is known or someone is
    /// computing it (then poll [`cached_sha256`](Self::cached_sha256)); `true` marks it as
    /// being computed, and the caller must then call [`sha256_until`](Self::sha256_until).
    pub(crate) fn claim_digest(&self) -> bool {
        let slot = self.slot();
        slot.value.get().is_none()
            && slot
                .pending
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// The digest if it is already known, without computing it.
    pub(crate) fn cached_sha256(&self) -> Option<[u8; 32]> {
        let cache = lock(&DIGESTS);
        cache
            .iter()
            .find(|(f, _)| f == self)
            .and_then(|(_, s)| s.value.get().copied())
    }

    fn compute_sha256(&self, stop: &dyn Fn() -> bool) -> Option<[u8; 32]> {
        let mut h = digest::Context::new(&digest::SHA256);
        let mut buf = vec![0u8; HASH_BLOCK];
        let mut off = 0u64;
        while off < self.len {
            if stop() {
                return None;
            }
            let n = self.read_at(off, &mut buf);
            h.update(&buf[..n]);
            off += n as u64;
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(h.finish().as_ref());
        Some(out)
    }

    /// [`sha256`](Self::sha256) in lowercase hex (like `checksums.sha256` of the files API).
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256())
    }

    /// The `ETag` the fake sends with this file: its SHA-256 in lowercase hex, quoted
    /// (`"<64 hex digits>"`), a strong validator.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.sha256_hex())
    }
}

/// Reads a [`SyntheticFile`] from its start ([`std::io::Read`]; [`std::io::Seek`] moves it).
#[derive(Clone, Debug)]
pub struct SyntheticReader {
    file: SyntheticFile,
    pos: u64,
}

impl std::io::Read for SyntheticReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(self.pos, buf);
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for SyntheticReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => self.file.len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn any_range_matches_the_whole() {
        let all = synthetic_bytes(42, 0, 1000);
        for off in 0..40u64 {
            for len in [0usize, 1, 3, 7, 8, 9, 15, 16, 17, 100] {
                let o = off as usize;
                assert_eq!(
                    synthetic_bytes(42, off, len),
                    all[o..o + len],
                    "{off} {len}"
                );
            }
        }
        assert_ne!(synthetic_bytes(43, 0, 64), all[..64]);
        assert_ne!(synthetic_bytes(0, 0, 64), synthetic_bytes(1, 0, 64));
    }

    #[test]
    fn files_end_at_their_length() {
        let f = SyntheticFile::new(1, 10);
        let mut buf = [0u8; 16];
        assert_eq!(f.read_at(4, &mut buf), 6);
        assert_eq!(f.read_at(10, &mut buf), 0);
        assert_eq!(f.read_at(u64::MAX, &mut buf), 0);
        let mut all = Vec::new();
        f.reader().read_to_end(&mut all).expect("read");
        assert_eq!(all, synthetic_bytes(1, 0, 10));
        assert!(SyntheticFile::new(1, 0).is_empty());
    }

    #[test]
    fn digests_match_the_bytes() {
        for len in [0u64, 1, 1000, HASH_BLOCK as u64 + 3] {
            let f = SyntheticFile::new(9, len);
            let bytes = f.bytes(0, len as usize);
            // Checked against another implementation.
            use sha2::Digest as _;
            assert_eq!(f.sha256(), <[u8; 32]>::from(sha2::Sha256::digest(&bytes)));
            assert_eq!(f.sha256_hex(), crate::util::sha256_hex(&bytes));
            assert_eq!(f.cached_sha256(), Some(f.sha256()));
        }
    }

    #[test]
    fn one_caller_claims_a_digest() {
        let f = SyntheticFile::new(0xC1A1, 4096);
        assert_eq!(f.cached_sha256(), None);
        assert!(f.claim_digest());
        assert!(!f.claim_digest(), "claimed already");
        // A computation stopped at once leaves it unknown and unclaimed.
        assert_eq!(f.sha256_until(&|| true), None);
        assert!(f.claim_digest());
        let d = f.sha256_until(&|| false);
        assert!(d.is_some());
        assert_eq!(f.cached_sha256(), d);
        assert!(!f.claim_digest(), "known");
    }

    #[test]
    fn blocks_are_the_rfc_8439_chacha20_keystream() {
        // RFC 8439 section 2.4.2: key 00..1f, nonce 000000000000004a00000000, counter 1.
        let key: Vec<u8> = (0..32).collect();
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key).expect("key"));
        let plain: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let cipher = "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b\
                      f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8\
                      07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736\
                      5af90bbf74a35be6b40b8eedf2785e42874d";
        let cipher: Vec<u8> = (0..cipher.len() / 2)
            .map(|i| u8::from_str_radix(&cipher[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        let mut stream = vec![0u8; plain.len()];
        // The nonce's last 8 bytes, 00 00 00 4a 00 00 00 00, as a little-endian block number.
        block(&key, 0x4A00_0000, &mut stream);
        let xored: Vec<u8> = stream.iter().zip(plain).map(|(k, p)| k ^ p).collect();
        assert_eq!(xored, cipher);
    }
}
