//! Body of the `open_untrusted` target: untrusted bytes as a protected file (`ward-pf`).
//!
//! Each input is used twice:
//!
//! 1. **Raw**: the input bytes themselves are the protected file. This mostly exercises the header
//!    checks, but a seed that is a real protected file under [`KEY`] (Gramine's test vectors use
//!    the same key) opens and decrypts fully.
//! 2. **Built**: a valid file is encrypted with [`KEY`] (once per size, then cached), and the rest of
//!    the input says how to damage it: optionally re-encrypt the metadata with fuzzer-chosen fields
//!    ("forged": authenticated but malformed metadata — a wrong size, a path with no NUL, a 1.0
//!    layout, flags, padding), then byte flips, truncations, appends, node copies and zeroed ranges.
//!
//! Then every public read entry point runs on the result — `header_info`, `info`, `verify`,
//! `decrypt` (into a `Vec`), `decrypt_to_vec` and `ProtectedFile::open(.., Mode::Read)` with `read_at` over several
//! ranges — and these must hold:
//! - nothing panics, and every error displays;
//! - `info`, `verify`, `decrypt` and `open` agree with each other about success, size and nodes;
//! - `read_at` returns exactly the bytes `decrypt` returned, and never fails on a file `decrypt`
//!   accepted;
//! - for an un-forged file, anything that decrypts is exactly the original plaintext, and a failed
//!   decrypt has written at most a prefix of it (no unauthenticated plaintext escapes);
//! - a read-only handle refuses writes; progress reports never go backwards or past the size.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use ward_pf::{Error, FileInfo, Mode, Options, ProtectedFile, WrapKey};

/// The wrap key of every file: 00 01 .. 0f, the same as Gramine's test vectors.
pub const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
/// The path templates are bound to.
pub const BOUND: &str = "fuzz/template.bin";

const NODE: usize = 4096;
const INLINE: u64 = 3072;
const PER_MHT: u64 = 96 * NODE as u64;

/// Plaintext sizes of the templates: around every layout boundary.
const SIZES: [u64; 16] = [
    0,
    1,
    INLINE - 1,
    INLINE,
    INLINE + 1,
    4096,
    INLINE + 4096,
    INLINE + 4096 + 1,
    100_000,
    INLINE + PER_MHT - 1,
    INLINE + PER_MHT,
    INLINE + PER_MHT + 1,
    INLINE + PER_MHT + 4096 + 17,
    INLINE + 2 * PER_MHT + 5,
    INLINE + 8 * PER_MHT + 1, // one whole decrypt batch plus one node
    2_000_000,
];
/// 3169 data nodes, 34 MHT nodes: MHT 33 is a child of MHT 1, a grandchild of the root (~13 MB,
/// so only selector byte 0xff picks it).
const DEEP: u64 = INLINE + 33 * PER_MHT + 1;

struct Template {
    plain: Vec<u8>,
    cipher: Vec<u8>,
}

/// Deterministic plaintext of `len` bytes, different at every offset of a node.
pub fn plaintext(len: u64) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect()
}

fn template(size: u64) -> &'static Template {
    static CACHE: OnceLock<Mutex<HashMap<u64, &'static Template>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(size).or_insert_with(|| {
        let plain = plaintext(size);
        let mut cipher = Vec::new();
        let key = WrapKey::from_bytes(KEY);
        ward_pf::encrypt(
            &mut &plain[..],
            &key,
            BOUND,
            &mut cipher,
            Options::default(),
        )
        .expect("encrypting a template");
        Box::leak(Box::new(Template { plain, cipher }))
    })
}

/// Reads the fuzz input as a stream of small numbers; zeros once it runs out.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        (self.u32() as u64) | (self.u32() as u64) << 32
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
    fn left(&self) -> bool {
        self.pos < self.data.len()
    }
}

/// What happened to one input, for the replay runner's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The input as a file: "ok" or the error variant of `decrypt`.
    pub raw: String,
    /// The built file, if the input was long enough to build one.
    pub built: Option<String>,
}

/// Runs one input. Panics if ward-pf panics or an invariant in the module docs fails.
pub fn run(data: &[u8]) -> Outcome {
    let key = WrapKey::from_bytes(KEY);
    let raw_file = data.to_vec();
    let raw = exercise(&raw_file, &key, None, None, 1, &[]);
    // The raw file under a path expectation goes through the path check too.
    let _ = ward_pf::info(&raw_file, &key, Some(BOUND)).map_err(|e| e.to_string());

    if data.len() < 2 {
        return Outcome { raw, built: None };
    }
    let mut c = Cursor { data, pos: 0 };
    let selector = c.u8();
    let flags = c.u8();
    let size = match selector {
        0xff => DEEP,
        s => SIZES[s as usize % SIZES.len()],
    };
    let t = template(size);
    let mut file = t.cipher.clone();
    let forged = flags & 0x08 != 0;
    if forged {
        forge(&mut file, &mut c);
    }
    mutate(&mut file, &mut c);
    let expected = match flags & 0x03 {
        0 => None,
        1 => Some(BOUND),
        2 => Some("./fuzz//x/../template.bin"),
        _ => Some("other.bin"),
    };
    let threads = if flags & 0x04 != 0 { 0 } else { 1 };
    let mut reads = Vec::new();
    while c.left() && reads.len() < 4 {
        let span = size + 2 * NODE as u64;
        let off = c.u32() as u64 % span;
        let len = c.u16() as usize;
        reads.push((off, len));
    }
    let oracle = (!forged).then_some(&t.plain[..]);
    let built = exercise(&file, &key, expected, oracle, threads, &reads);
    if !forged && flags & 0x03 == 3 {
        assert_ne!(
            built, "ok",
            "a file bound to {BOUND:?} opened as \"other.bin\""
        );
    }
    Outcome {
        raw,
        built: Some(built),
    }
}

fn kind(e: &Error) -> String {
    // Every error must display; the statistics use the variant name.
    let _ = e.to_string();
    let dbg = format!("{e:?}");
    dbg.split(|ch: char| !ch.is_alphanumeric())
        .next()
        .unwrap_or("?")
        .to_string()
}

/// Runs every read entry point on `file` and checks they agree. Returns "ok" or the error kind.
fn exercise(
    file: &Vec<u8>,
    key: &WrapKey,
    expected: Option<&str>,
    oracle: Option<&[u8]>,
    threads: usize,
    reads: &[(u64, usize)],
) -> String {
    let header = ward_pf::header_info(file);
    let info = ward_pf::info(file, key, expected);
    if let Ok(i) = &info {
        let h = header
            .as_ref()
            .expect("info succeeded but header_info failed");
        assert_eq!((h.version, h.nodes), (i.version, i.nodes));
    }

    let seen = AtomicU64::new(0);
    let progress = |done: u64| {
        let before = seen.swap(done, Ordering::Relaxed);
        assert!(
            done >= before,
            "progress went backwards: {before} -> {done}"
        );
    };
    let opts = Options {
        threads,
        progress: Some(&progress),
        ..Options::default()
    };
    let verified = ward_pf::verify(file, key, expected, opts);
    let mut out = Vec::new();
    seen.store(0, Ordering::Relaxed);
    let decrypted = ward_pf::decrypt(file, key, expected, &mut out, opts);

    match (&verified, &decrypted) {
        (Ok(v), Ok(d)) => assert_eq!(v, d),
        (Err(_), Err(_)) => {}
        (v, d) => panic!("verify and decrypt disagree: {v:?} vs {d:?}"),
    }
    // The in-memory whole-file read (the runtime's) accepts and refuses exactly what `decrypt`
    // does, with the same bytes.
    match (
        ward_pf::decrypt_to_vec(
            file,
            key,
            expected,
            Options {
                threads,
                progress: None,
                ..Options::default()
            },
        ),
        &decrypted,
    ) {
        (Ok((bytes, i)), Ok(d)) => {
            assert_eq!(&i, d);
            assert!(
                *bytes == out,
                "decrypt_to_vec and decrypt returned different bytes"
            );
        }
        // Both refuse; with several damaged nodes they may name different ones (the in-memory
        // read opens every MHT node before any data node).
        (Err(_), Err(_)) => {}
        (a, d) => panic!(
            "decrypt_to_vec and decrypt disagree: {:?} vs {d:?}",
            a.map(|(_, i)| i)
        ),
    }
    let result = match &decrypted {
        Ok(d) => {
            let i: &FileInfo = info.as_ref().expect("decrypt succeeded but info failed");
            assert_eq!(i, d);
            assert_eq!(out.len() as u64, d.size, "decrypt wrote a wrong length");
            assert_eq!(
                seen.load(Ordering::Relaxed),
                d.size,
                "progress did not end at the size"
            );
            if let Some(p) = oracle {
                assert!(
                    out == p,
                    "decrypt accepted a file that is not the original plaintext"
                );
            }
            "ok".to_string()
        }
        Err(e) => {
            if let Some(p) = oracle {
                assert!(
                    p.starts_with(&out),
                    "a failed decrypt wrote bytes that are not a prefix of the plaintext"
                );
            }
            kind(e)
        }
    };
    assert!(seen.load(Ordering::Relaxed) <= info.as_ref().map_or(u64::MAX, |i| i.size));

    match ProtectedFile::open(file.clone(), key, expected, Mode::Read) {
        Ok(mut pf) => {
            let i = info.as_ref().expect("open succeeded but info failed");
            assert_eq!(pf.len(), i.size);
            let size = i.size;
            let fixed = [
                (0, 4096),
                (INLINE - 2, 8),
                (INLINE, 4096),
                (size.saturating_sub(1), 2),
                (size.saturating_sub(5000), 10_000),
                (size, 1),
                (u64::MAX - 1, 8),
                (0, 0),
            ];
            for &(off, len) in reads.iter().chain(fixed.iter()) {
                let mut buf = vec![0u8; len];
                match pf.read_at(off, &mut buf) {
                    Ok(n) => {
                        let want = (len as u64).min(size.saturating_sub(off)) as usize;
                        assert_eq!(n, want, "read_at({off}, {len}) returned {n}");
                        let o = off as usize;
                        if n == 0 {
                            continue;
                        }
                        if decrypted.is_ok() {
                            assert!(buf[..n] == out[o..o + n], "read_at differs from decrypt");
                        }
                        if let Some(p) = oracle {
                            assert!(buf[..n] == p[o..o + n], "read_at returned wrong plaintext");
                        }
                    }
                    Err(e) => {
                        let _ = e.to_string();
                        assert!(
                            decrypted.is_err(),
                            "read_at({off}, {len}) failed on a file decrypt accepted: {e}"
                        );
                    }
                }
            }
            assert!(matches!(pf.write_at(0, b"x"), Err(Error::ReadOnly)));
            assert!(matches!(pf.set_len(0), Err(Error::ReadOnly)));
            assert_eq!(&pf.info(), i);
            let _ = format!("{pf:?}");
        }
        Err(e) => {
            let _ = e.to_string();
            assert!(info.is_err(), "info succeeded but open failed: {e}");
        }
    }
    result
}

// --- Forging authenticated metadata (the fuzzer knows the key) ----------------------------------

const ENC_LEN: usize = 3884;

fn metadata_key(nonce: &[u8]) -> [u8; 16] {
    use cmac::{Cmac, Mac};
    let mut msg = [0u8; 104];
    msg[0..4].copy_from_slice(&1u32.to_le_bytes());
    let label = b"SGX-PROTECTED-FS-METADATA-KEY";
    msg[4..4 + label.len()].copy_from_slice(label);
    msg[68..100].copy_from_slice(nonce);
    msg[100..104].copy_from_slice(&128u32.to_le_bytes());
    let mut mac = <Cmac<aes::Aes128> as Mac>::new_from_slice(&KEY).expect("16-byte key");
    mac.update(&msg);
    mac.finalize().into_bytes().into()
}

fn gcm(key: &[u8; 16]) -> ring::aead::LessSafeKey {
    ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, key).expect("16-byte key"),
    )
}

fn zero_nonce() -> ring::aead::Nonce {
    ring::aead::Nonce::assume_unique_for_key([0; 12])
}

/// Decrypts a template's metadata, changes fields as the input says, and re-encrypts it so that it
/// authenticates: exercises everything behind the metadata tag.
fn forge(file: &mut [u8], c: &mut Cursor<'_>) {
    let nonce: [u8; 32] = file[10..42].try_into().expect("32 bytes");
    let tag: [u8; 16] = file[42..58].try_into().expect("16 bytes");
    let mut plain = file[59..59 + ENC_LEN].to_vec();
    gcm(&metadata_key(&nonce))
        .open_in_place_separate_tag(
            zero_nonce(),
            ring::aead::Aad::empty(),
            ring::aead::Tag::from(tag),
            &mut plain,
            0..,
        )
        .expect("a template's metadata opens");

    let what = c.u8();
    if what & 0x01 != 0 {
        // Path field: arbitrary bytes, possibly without a NUL.
        let n = c.u16() as usize % 773;
        plain[..772].fill(0);
        let bytes = c.bytes(n);
        plain[..n].copy_from_slice(&bytes);
    }
    if what & 0x02 != 0 {
        let size = u64::from_le_bytes(plain[772..780].try_into().expect("8 bytes"));
        let new = match c.u8() % 4 {
            0 => size.wrapping_add(c.u8() as i8 as u64),
            1 => c.u64(),
            2 => size ^ (1 << (c.u8() % 64)),
            _ => (size & !4095).wrapping_add(c.u16() as u64 % 8192),
        };
        plain[772..780].copy_from_slice(&new.to_le_bytes());
    }
    if what & 0x04 != 0 {
        // Root MHT key and tag.
        plain[780 + c.u8() as usize % 32] ^= c.u8() | 1;
    }
    if what & 0x08 != 0 {
        // Inline data, including the part past the size that should be zero.
        plain[812 + c.u16() as usize % 3072] = c.u8();
    }
    let v1 = what & 0x10 != 0;
    let flags = if what & 0x20 != 0 { c.u8() } else { 0 };
    let nonce = if what & 0x40 != 0 {
        c.bytes(32)
    } else {
        nonce.to_vec()
    };
    let tag = gcm(&metadata_key(&nonce))
        .seal_in_place_separate_tag(zero_nonce(), ring::aead::Aad::empty(), &mut plain)
        .expect("seal");
    file[..NODE].fill(0);
    file[0..8].copy_from_slice(b"GRAFS_PF");
    file[8] = if v1 { 1 } else { 2 };
    file[10..42].copy_from_slice(&nonce);
    file[42..58].copy_from_slice(tag.as_ref());
    let start = if v1 { 58 } else { 59 };
    if !v1 {
        file[58] = flags;
    }
    file[start..start + ENC_LEN].copy_from_slice(&plain);
    if what & 0x80 != 0 {
        // Padding is not authenticated.
        file[start + ENC_LEN + c.u8() as usize % (NODE - start - ENC_LEN)] = c.u8();
    }
}

// --- Damage -------------------------------------------------------------------------------------

/// Applies up to 8 edits chosen by the input.
fn mutate(file: &mut Vec<u8>, c: &mut Cursor<'_>) {
    let ops = c.u8() % 9;
    for _ in 0..ops {
        let op = c.u8();
        let nodes = file.len().div_ceil(NODE).max(1);
        // A position: a node, then an offset in it (hits headers and boundaries more often).
        let node = c.u16() as usize % nodes;
        let within = match c.u8() % 4 {
            0 => c.u8() as usize % 64,
            1 => NODE - 1 - c.u8() as usize % 64,
            _ => c.u16() as usize % NODE,
        };
        let pos = node * NODE + within;
        match op % 8 {
            0 => {
                let x = c.u8() | 1;
                if let Some(b) = file.get_mut(pos) {
                    *b ^= x;
                }
            }
            1 => {
                let v = c.u8();
                if let Some(b) = file.get_mut(pos) {
                    *b = v;
                }
            }
            2 => file.truncate(pos),
            3 => {
                let k = 1 + c.u8() as usize % 3;
                file.truncate(file.len().saturating_sub(k * NODE));
            }
            4 => {
                let n = c.u16() as usize % (2 * NODE + 1);
                let fill = c.u8();
                file.resize(file.len() + n, fill);
            }
            5 => {
                // Append a copy of an existing node (replayed ciphertext).
                let src = node * NODE;
                if src + NODE <= file.len() {
                    let copy = file[src..src + NODE].to_vec();
                    file.extend_from_slice(&copy);
                }
            }
            6 => {
                // Copy node `node` over node `dst` (a moved or swapped node).
                let dst = c.u16() as usize % nodes;
                let (s, d) = (node * NODE, dst * NODE);
                if s + NODE <= file.len() && d + NODE <= file.len() {
                    file.copy_within(s..s + NODE, d);
                }
            }
            _ => {
                let n = c.u16() as usize % (2 * NODE);
                let end = (pos + n).min(file.len());
                if pos < end {
                    file[pos..end].fill(0);
                }
            }
        }
    }
}
