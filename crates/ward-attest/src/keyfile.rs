//! P-256 private keys in files (PKCS#8 PEM, mode 0600, never overwritten): the simulated
//! platform key here and the manifest signer's key in `ward-manifest` share this one
//! implementation.

use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use std::path::{Path, PathBuf};

/// The largest key file read: a PKCS#8 PEM P-256 key is ~240 bytes.
pub const MAX_KEY_FILE: u64 = 16 * 1024;

/// Why a key file could not be written or read. Never contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file exists: keys are never overwritten.
    #[error("{} already exists; refusing to overwrite a key (remove it first, or choose another path)", .0.display())]
    Exists(PathBuf),
    /// Creating, writing or reading the file failed (or it is larger than [`MAX_KEY_FILE`]).
    #[error("key file")]
    File(#[source] ward_fsio::Error),
    /// The key could not be encoded (does not happen for a valid key).
    #[error("encoding the key as PKCS#8 PEM")]
    Encoding,
    /// The file is not a PKCS#8 PEM P-256 private key.
    #[error("{} is not a PKCS#8 PEM P-256 private key", .0.display())]
    NotAKey(PathBuf),
}

/// Writes `key` to a new file at `path` (PKCS#8 PEM, mode 0600, synced); never overwrites.
pub fn save(key: &SigningKey, path: &Path) -> Result<(), KeyFileError> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| KeyFileError::Encoding)?;
    ward_fsio::create_secret_file(path, pem.as_bytes()).map_err(|e| match e {
        ward_fsio::Error::AlreadyExists { .. } => KeyFileError::Exists(path.to_owned()),
        e => KeyFileError::File(e),
    })
}

/// Reads a key written by [`save`] (any PKCS#8 PEM P-256 private key), at most
/// [`MAX_KEY_FILE`] bytes, into memory that is wiped afterwards.
pub fn load(path: &Path) -> Result<SigningKey, KeyFileError> {
    // Allocated once, wiped on drop: no copy of the key is left in freed memory.
    let bytes =
        ward_fsio::read_secret_bounded(path, MAX_KEY_FILE as usize).map_err(KeyFileError::File)?;
    let pem = std::str::from_utf8(&bytes).map_err(|_| KeyFileError::NotAKey(path.to_owned()))?;
    SigningKey::from_pkcs8_pem(pem).map_err(|_| KeyFileError::NotAKey(path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("k.pem");
        let key = SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        save(&key, &path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(&path).unwrap(), key);
        let before = std::fs::read(&path).unwrap();
        let other = SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        assert!(matches!(save(&other, &path), Err(KeyFileError::Exists(_))));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        std::fs::write(&path, b"not a key").unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::NotAKey(_))));
        std::fs::write(&path, vec![b'A'; MAX_KEY_FILE as usize + 1]).unwrap();
        assert!(matches!(
            load(&path),
            Err(KeyFileError::File(ward_fsio::Error::TooLarge { .. }))
        ));
    }
}
