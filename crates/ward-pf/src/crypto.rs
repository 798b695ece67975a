//! Keys and the two primitives of the format: AES-128-CMAC for the metadata key, AES-128-GCM
//! (zero IV, no AAD) for every node.
//!
//! ring does the GCM: its assembly is within a few percent of OpenSSL, which matters because the
//! format sets up a fresh key for every 4 KiB node. CMAC runs once per file open, so the RustCrypto
//! `cmac` crate is plenty.

use crate::error::{Error, Result};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use ring::aead;
use std::fmt;
use std::path::Path;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of every key and tag in the format.
pub const KEY_LEN: usize = 16;

/// The user's 128-bit key: it wraps (derives the key of) each file's metadata node.
///
/// Gramine calls it the key derivation key; its key file is exactly 16 raw bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct WrapKey([u8; KEY_LEN]);

impl WrapKey {
    /// A key from its 16 raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> WrapKey {
        WrapKey(bytes)
    }

    /// A key from a slice that must be exactly 16 bytes (a key file's content).
    pub fn from_slice(bytes: &[u8]) -> Result<WrapKey> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::InvalidKey("a wrap key file must hold exactly 16 raw bytes"))?;
        Ok(WrapKey(arr))
    }

    /// A key from 32 hex characters (the manifest spelling).
    pub fn from_hex(text: &str) -> Result<WrapKey> {
        let mut bytes = [0u8; KEY_LEN];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| Error::InvalidKey("expected 32 hexadecimal characters"))?;
        let key = WrapKey(bytes);
        bytes.zeroize();
        Ok(key)
    }

    /// A fresh random key from the operating system.
    pub fn generate() -> Result<WrapKey> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom(&mut bytes)?;
        Ok(WrapKey(bytes))
    }

    /// Reads a key file: exactly 16 raw bytes (never more than 17 are read, into zeroized
    /// memory). A file of another size is [`Error::KeyFile`], naming the size found.
    pub fn load(path: &Path) -> Result<WrapKey> {
        let bytes = ward_fsio::read_secret_exact(path, KEY_LEN)
            .map_err(|source| Error::KeyFile { source })?;
        WrapKey::from_slice(&bytes)
    }

    /// The raw key bytes. Handle with care: they are the secret.
    pub fn expose_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Derives the key of a metadata node from the nonce stored in its plaintext header
    /// (NIST SP 800-108 counter mode with AES-128-CMAC, as Gramine and the SGX SDK do).
    pub(crate) fn metadata_key(&self, nonce: &[u8; 32]) -> NodeKey {
        use cmac::{Cmac, Mac};
        const LABEL: &[u8] = b"SGX-PROTECTED-FS-METADATA-KEY";
        let mut input = [0u8; 104];
        input[0..4].copy_from_slice(&1u32.to_le_bytes());
        input[4..4 + LABEL.len()].copy_from_slice(LABEL);
        input[68..100].copy_from_slice(nonce);
        input[100..104].copy_from_slice(&128u32.to_le_bytes());
        let mut mac = <Cmac<aes::Aes128> as Mac>::new_from_slice(&self.0)
            .expect("AES-128-CMAC takes a 16-byte key");
        mac.update(&input);
        let mut out = mac.finalize().into_bytes();
        let key = NodeKey(out.into());
        out.zeroize();
        input.zeroize();
        key
    }
}

impl PartialEq for WrapKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for WrapKey {}

impl fmt::Debug for WrapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrapKey(<redacted>)")
    }
}

/// A node's AES-128-GCM key (fresh and random on every write of the node).
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct NodeKey(pub(crate) [u8; KEY_LEN]);

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeKey(<redacted>)")
    }
}

/// A GCM authentication tag.
pub(crate) type Tag = [u8; KEY_LEN];

/// Encrypts `buf` in place with `key`, zero IV, no AAD; returns the tag.
pub(crate) fn seal(key: &NodeKey, buf: &mut [u8]) -> Tag {
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &key.0).expect("16-byte AES-128-GCM key"),
    );
    let tag = key
        .seal_in_place_separate_tag(zero_nonce(), aead::Aad::empty(), buf)
        .expect("a node is far below GCM's length limit");
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Decrypts and authenticates `buf` in place. On failure the buffer is zeroed, so no
/// unauthenticated plaintext can escape, and `false` is returned.
#[must_use]
pub(crate) fn open(key: &NodeKey, tag: &Tag, buf: &mut [u8]) -> bool {
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &key.0).expect("16-byte AES-128-GCM key"),
    );
    let tag = aead::Tag::from(*tag);
    let ok = key
        .open_in_place_separate_tag(zero_nonce(), aead::Aad::empty(), tag, buf, 0..)
        .is_ok();
    if !ok {
        buf.zeroize();
    }
    ok
}

fn zero_nonce() -> aead::Nonce {
    // Safe only because every key is used for exactly one encryption: a node gets a fresh random
    // key each time it is written (the format's design, not ours to change).
    aead::Nonce::assume_unique_for_key([0u8; 12])
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    let mut rng = rand_core::OsRng;
    rand_core::TryRngCore::try_fill_bytes(&mut rng, buf).map_err(|e| Error::Random {
        source: Box::new(e),
    })
}

/// Source of node keys and metadata nonces: ChaCha20 seeded once from the OS, so drawing a key
/// per node costs no system call.
pub struct KeyRng(ChaCha20Rng);

impl KeyRng {
    /// A generator seeded from the operating system.
    pub fn from_os() -> Result<KeyRng> {
        let mut seed = [0u8; 32];
        getrandom(&mut seed)?;
        let rng = ChaCha20Rng::from_seed(seed);
        seed.zeroize();
        Ok(KeyRng(rng))
    }

    /// A fresh node key.
    pub fn node_key(&mut self) -> NodeKey {
        let mut k = NodeKey::default();
        self.0.fill_bytes(&mut k.0);
        k
    }

    /// A fresh 32-byte metadata nonce.
    pub fn nonce(&mut self) -> [u8; 32] {
        let mut n = [0u8; 32];
        self.0.fill_bytes(&mut n);
        n
    }
}

impl fmt::Debug for KeyRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyRng(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let mut rng = KeyRng::from_os().unwrap();
        let key = rng.node_key();
        let mut buf = [7u8; 4096];
        let tag = seal(&key, &mut buf);
        assert_ne!(buf, [7u8; 4096]);
        let mut copy = buf;
        assert!(open(&key, &tag, &mut copy));
        assert_eq!(copy, [7u8; 4096]);
        buf[100] ^= 1;
        assert!(!open(&key, &tag, &mut buf));
        assert_eq!(
            buf, [0u8; 4096],
            "failed open must not leave plaintext behind"
        );
    }

    #[test]
    fn key_parsing() {
        assert!(WrapKey::from_slice(&[0u8; 15]).is_err());
        assert!(WrapKey::from_slice(&[0u8; 17]).is_err());
        let k = WrapKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
        assert_eq!(k.expose_bytes()[15], 15);
        assert!(WrapKey::from_hex("00").is_err());
        assert!(!format!("{k:?}").contains("0f"));
    }
}
