//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ward_pf::Options;

/// Options with `threads` workers and no progress callback.
pub(crate) fn opts(threads: usize) -> Options<'static> {
    Options {
        threads,
        ..Options::default()
    }
}

/// Deterministic, node-distinguishing content (xorshift64), so a node swapped or misplaced by the
/// implementation shows up as a mismatch.
pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(len);
    out
}
