//! Reading a request's image into memory that is wiped, within the size limit.

use bytes::Bytes;
use zeroize::{Zeroize, Zeroizing};

/// A growing buffer whose every allocation is wiped when replaced or dropped (a `Vec` that grows
/// frees its old allocation unwiped).
pub(crate) struct WipedBuf {
    buf: Zeroizing<Vec<u8>>,
    limit: usize,
}

/// The body passed the size limit.
#[derive(Debug)]
pub(crate) struct TooLarge;

impl WipedBuf {
    /// An empty buffer, with room for `expected` bytes (e.g. from Content-Length, capped by
    /// `limit`).
    pub(crate) fn new(expected: usize, limit: usize) -> WipedBuf {
        WipedBuf {
            buf: Zeroizing::new(Vec::with_capacity(expected.min(limit))),
            limit,
        }
    }

    /// Appends `data`, or refuses if the total would pass the limit.
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<(), TooLarge> {
        let need = self.buf.len() + data.len();
        if need > self.limit {
            return Err(TooLarge);
        }
        if need > self.buf.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                need.max(self.buf.capacity() * 2).min(self.limit),
            ));
            bigger.extend_from_slice(&self.buf);
            // The old allocation is wiped as it is dropped.
            self.buf = bigger;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The bytes read.
    pub(crate) fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.buf
    }
}

/// Wipes a chunk hyper handed over, when this is its only reference (hyper's read buffers are
/// split off uniquely; a shared one is left as it is).
pub(crate) fn wipe(chunk: Bytes) {
    if let Ok(mut m) = chunk.try_into_mut() {
        m[..].zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_the_limit_and_refuses_past_it() {
        let mut b = WipedBuf::new(0, 10);
        b.push(b"hello").unwrap();
        b.push(b"world").unwrap();
        assert!(b.push(b"!").is_err());
        assert_eq!(&b.into_inner()[..], b"helloworld");
    }

    #[test]
    fn a_huge_content_length_does_not_reserve_past_the_limit() {
        let b = WipedBuf::new(usize::MAX, 16);
        assert!(b.buf.capacity() <= 16);
    }
}
