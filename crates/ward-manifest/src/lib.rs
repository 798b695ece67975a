//! The ward workload manifest: schema, validation, trusted-file hashing, measurement, signing.
//!
//! A manifest (TOML, in the spirit of Gramine's) says what a workload is: the built-in it runs and
//! its arguments (`[loader]`), what its file system holds (`[[fs.mounts]]`: `chroot` host files,
//! `encrypted` protected files with a `key_name`, `tmpfs`), which host files are trusted (pinned
//! by SHA-256) or allowed (`[sgx]`), which protected files are pinned (`[[fs.pinned]]`), and where
//! its keys come from (`[provision]`). `ward sign` hashes the trusted files, computes the
//! measurement, signs it and writes the result atomically ([`sign_to_file`]; see [`signing`]); the runtime verifies the result with
//! [`SignedManifest::verify`].
//!
//! ```toml
//! [loader]
//! entrypoint = "ward:checksum"
//! argv = ["--output", "/out/digests.txt", "/data/input.bin"]
//!
//! [[fs.mounts]]
//! type = "encrypted"
//! path = "/data"
//! uri = "file:encrypted"
//! key_name = "default"
//!
//! [sgx]
//! isv_prod_id = 1
//! isv_svn = 3
//! trusted_files = ["file:labels.txt"]
//!
//! [provision]
//! servers = ["localhost:4433"]
//! ca_chain = "file:ca.pem"
//! secrets = [{ name = "default", key_name = "default" }]
//! ```
//!
//! This crate parses, checks, hashes and signs. It does not run anything, open protected files or
//! talk to servers: that is `ward-runtime`'s job. Every error about a manifest names the line and
//! key; unknown keys are refused, so a typo is never silently ignored.

pub mod error;
pub mod hashing;
pub mod schema;
mod sign_file;
pub mod signing;
pub mod tree;
mod validate;

pub use error::{Error, Problem};
pub use hashing::{resolve, sha256_file, Hashed};
pub use schema::*;
pub use sign_file::{
    check_dev_key_files, identity, sign_to_file, signed_name, trees_name, workload_identity, Check,
    SignOptions, SignStats,
};
pub use signing::{
    canonical, measurement, Signature, SignedManifest, SignerKey, SignerPublicKey, VerifiedManifest,
};

use serde::Deserialize;
use std::path::Path;

/// The largest manifest read (a manifest is a few KiB; this bounds a hostile file).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

// A manifest document, signed or not (the `[signature]` table is optional here).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    loader: Loader,
    #[serde(default)]
    fs: Fs,
    #[serde(default)]
    libos: Option<Libos>,
    #[serde(default)]
    network: Option<Network>,
    #[serde(default)]
    sgx: Sgx,
    #[serde(default)]
    provision: Option<Provision>,
    #[serde(default)]
    signature: Option<Signature>,
}

fn parse(text: &str) -> Result<(Manifest, Option<Signature>), Error> {
    let doc: Document = toml::from_str(text).map_err(|e| Error::from_toml(&e, text))?;
    let manifest = Manifest {
        loader: doc.loader,
        libos: doc.libos,
        network: doc.network,
        fs: doc.fs,
        sgx: doc.sgx,
        provision: doc.provision,
    };
    let problems = validate::check(&manifest, Some(text));
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    Ok((manifest, doc.signature))
}

fn read(path: &Path) -> Result<String, Error> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_MANIFEST_BYTES + 1).read_to_string(&mut text))
        .map_err(Error::io(format!("reading manifest {}", path.display())))?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(Error::Io {
            context: format!(
                "{} is larger than {} MiB: not a manifest",
                path.display(),
                MAX_MANIFEST_BYTES >> 20
            ),
            source: std::io::ErrorKind::InvalidData.into(),
        });
    }
    Ok(text)
}

impl Manifest {
    /// Parses and checks a manifest; a `[signature]` table, if present, is ignored (re-signing).
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        parse(text).map(|(m, _)| m)
    }

    /// Reads [`Manifest::from_toml`] from a file; errors name the file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        Manifest::from_toml(&read(path)?).map_err(|e| e.in_file(path))
    }

    /// Checks the cross-key rules (also run by [`Manifest::from_toml`]).
    pub fn problems(&self) -> Vec<Problem> {
        validate::check(self, None)
    }
}

impl SignedManifest {
    /// Parses a signed manifest; refuses one without `[signature]`. Does not verify it.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        match parse(text)? {
            (manifest, Some(signature)) => Ok(SignedManifest {
                manifest,
                signature,
            }),
            (_, None) => Err(Error::Unsigned(
                "it has no [signature] table; sign it with `ward sign --key SIGNER_KEY \
                 MANIFEST`, then run the .signed.toml file it writes"
                    .into(),
            )),
        }
    }

    /// Reads [`SignedManifest::from_toml`] from a file; errors name the file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        SignedManifest::from_toml(&read(path)?).map_err(|e| e.in_file(path))
    }
}
