//! Measurement and signing: ward's MRENCLAVE and SIGSTRUCT.
//!
//! - The **canonical form** of a manifest is its compact JSON serialisation (field order fixed by
//!   the schema, maps sorted), so layout, comments and key order in the TOML do not change it.
//! - **Measurement** = SHA-256(`"ward measurement v1\0"` ‖ SHA-256(canonical) ‖ runtime digest).
//!   Covering the runtime binary means a modified ward measures differently, as Gramine's
//!   MRENCLAVE covers the LibOS. A manifest with development keys ([`Manifest::has_dev_keys`])
//!   is measured under its own tag, `"ward measurement v1 insecure dev keys\0"`: the keys are
//!   in the canonical form anyway, but the separate domain means no measurement of such a
//!   manifest can ever equal one of a manifest without them, whatever its content.
//! - The **signature** is ECDSA P-256 / SHA-256 over `"ward sigstruct v1\0"` ‖ measurement ‖
//!   isv_prod_id (LE) ‖ isv_svn (LE) ‖ debug (1 byte), like SGX's SIGSTRUCT.
//! - **MRSIGNER** = SHA-256 of the signer's public key, SEC1 uncompressed (65 bytes).

use crate::error::Error;
use crate::schema::{Manifest, Sha256, TrustedFile};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature as EcdsaSignature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fmt;
use std::path::Path;

const MEASUREMENT_TAG: &[u8] = b"ward measurement v1\0";
const DEV_MEASUREMENT_TAG: &[u8] = b"ward measurement v1 insecure dev keys\0";
const SIGSTRUCT_TAG: &[u8] = b"ward sigstruct v1\0";

/// The canonical bytes of a manifest (what the measurement covers).
pub fn canonical(m: &Manifest) -> Vec<u8> {
    // Serialising plain data structures to JSON cannot fail.
    serde_json::to_vec(m).expect("manifest serialises")
}

/// The workload's measurement: manifest content and runtime binary.
pub fn measurement(m: &Manifest, runtime_digest: &Sha256) -> Sha256 {
    let mut h = sha2::Sha256::new();
    h.update(if m.has_dev_keys() {
        DEV_MEASUREMENT_TAG
    } else {
        MEASUREMENT_TAG
    });
    h.update(sha2::Sha256::digest(canonical(m)));
    h.update(runtime_digest.0);
    Sha256(h.finalize().into())
}

fn sigstruct(measurement: &Sha256, m: &Manifest) -> Vec<u8> {
    let mut out = SIGSTRUCT_TAG.to_vec();
    out.extend_from_slice(&measurement.0);
    out.extend_from_slice(&m.sgx.isv_prod_id.to_le_bytes());
    out.extend_from_slice(&m.sgx.isv_svn.to_le_bytes());
    out.push(m.is_debug() as u8);
    out
}

/// A manifest signer's private key (ECDSA P-256).
pub struct SignerKey {
    key: SigningKey,
}

impl SignerKey {
    /// A fresh key from the OS random number generator.
    pub fn generate() -> Self {
        SignerKey {
            key: SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
        }
    }

    /// Writes the key as PKCS#8 PEM, mode 0600; never overwrites an existing file.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        ward_attest::keyfile::save(&self.key, path).map_err(Error::KeyFile)
    }

    /// Reads a PKCS#8 PEM P-256 private key.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let key = ward_attest::keyfile::load(path).map_err(Error::KeyFile)?;
        Ok(SignerKey { key })
    }

    /// The public half.
    pub fn public(&self) -> SignerPublicKey {
        SignerPublicKey {
            key: *self.key.verifying_key(),
        }
    }

    /// Signs a manifest whose trusted files are all hashed, for the runtime with this hash.
    pub fn sign(
        &self,
        manifest: Manifest,
        runtime_digest: Sha256,
    ) -> Result<SignedManifest, Error> {
        require_hashed(&manifest)?;
        let measurement = measurement(&manifest, &runtime_digest);
        let sig: EcdsaSignature = self.key.sign(&sigstruct(&measurement, &manifest));
        let public = self.public();
        Ok(SignedManifest {
            manifest,
            signature: Signature {
                runtime_digest,
                measurement,
                mr_signer: public.mr_signer(),
                signer_public_key: public.to_hex(),
                signature: hex::encode(sig.to_bytes()),
            },
        })
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("public", &self.public().to_hex())
            .finish_non_exhaustive()
    }
}

/// A signer's public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignerPublicKey {
    key: VerifyingKey,
}

impl SignerPublicKey {
    /// SEC1 uncompressed point, hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key.to_encoded_point(false).as_bytes())
    }
    /// Parses [`SignerPublicKey::to_hex`]'s form.
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let bytes = hex::decode(s.trim())
            .map_err(|_| Error::Signature("signer_public_key is not hex".into()))?;
        let key = VerifyingKey::from_sec1_bytes(&bytes)
            .map_err(|_| Error::Signature("signer_public_key is not a P-256 point".into()))?;
        Ok(SignerPublicKey { key })
    }
    /// MRSIGNER: SHA-256 of the SEC1 uncompressed point.
    pub fn mr_signer(&self) -> Sha256 {
        Sha256(sha2::Sha256::digest(self.key.to_encoded_point(false).as_bytes()).into())
    }
}

impl fmt::Debug for SignerPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerPublicKey({})", self.to_hex())
    }
}

/// The `[signature]` table of a signed manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Digest of the ward runtime binary this was signed for (`ward_runtime::bootstrap::file_digest`).
    pub runtime_digest: Sha256,
    /// The measurement (MRENCLAVE).
    pub measurement: Sha256,
    /// SHA-256 of the signer's public key (MRSIGNER).
    pub mr_signer: Sha256,
    /// The signer's public key, SEC1 uncompressed, hex.
    pub signer_public_key: String,
    /// ECDSA P-256 `r ‖ s`, hex.
    pub signature: String,
}

/// A manifest with its signature, as `ward sign` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedManifest {
    /// The content.
    pub manifest: Manifest,
    /// The signature.
    pub signature: Signature,
}

/// A signed manifest whose signature and measurement have been checked for this runtime.
#[derive(Debug, Clone)]
pub struct VerifiedManifest {
    /// The content.
    pub manifest: Manifest,
    /// MRENCLAVE.
    pub measurement: Sha256,
    /// MRSIGNER.
    pub mr_signer: Sha256,
}

impl VerifiedManifest {
    /// The workload identity ward's runtime names in its evidence for this manifest.
    ///
    /// `debug` is [`Manifest::is_debug`]: a manifest with development keys is named as a debug
    /// workload, so every policy refuses it unless it sets `allow_debug` (its keys are readable
    /// by the host, as a debug enclave's memory is).
    pub fn workload(&self) -> ward_attest::WorkloadIdentity {
        ward_attest::WorkloadIdentity {
            measurement: self.measurement.0,
            signer: self.mr_signer.0,
            isv_prod_id: self.manifest.sgx.isv_prod_id,
            isv_svn: self.manifest.sgx.isv_svn,
            debug: self.manifest.is_debug(),
        }
    }
}

#[derive(Serialize)]
struct SignedFileOut<'a> {
    #[serde(flatten)]
    manifest: &'a Manifest,
    signature: &'a Signature,
}

impl SignedManifest {
    /// The file `ward sign` writes: the manifest as TOML, then `[signature]`.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(&SignedFileOut {
            manifest: &self.manifest,
            signature: &self.signature,
        })
        .expect("manifest serialises to TOML");
        format!(
            "# Signed by `ward sign`. Any change to this file breaks its signature; edit the\n\
             # unsigned manifest and sign again.\n\
             # measurement (MRENCLAVE): {}\n# signer (MRSIGNER):       {}\n\n{body}",
            self.signature.measurement, self.signature.mr_signer
        )
    }

    /// Checks the signature and that the content and `runtime_digest` give the signed
    /// measurement.
    pub fn verify(&self, runtime_digest: &Sha256) -> Result<VerifiedManifest, Error> {
        require_hashed(&self.manifest)?;
        let s = &self.signature;
        let public = SignerPublicKey::from_hex(&s.signer_public_key)?;
        if public.mr_signer() != s.mr_signer {
            return Err(Error::Signature(
                "mr_signer is not the hash of signer_public_key".into(),
            ));
        }
        let mut sig_bytes = [0u8; 64];
        hex::decode_to_slice(s.signature.trim(), &mut sig_bytes)
            .map_err(|_| Error::Signature("signature is not 64 bytes of hex".into()))?;
        let sig = EcdsaSignature::from_slice(&sig_bytes)
            .map_err(|_| Error::Signature("signature is not a valid ECDSA value".into()))?;
        public
            .key
            .verify(&sigstruct(&s.measurement, &self.manifest), &sig)
            .map_err(|_| {
                Error::Signature(
                    "the signature does not verify with signer_public_key: the [signature] \
                     table was altered"
                        .into(),
                )
            })?;
        let content = measurement(&self.manifest, &s.runtime_digest);
        if content != s.measurement {
            return Err(Error::Signature(
                "the manifest's content does not give its signed measurement: it was edited \
                 after signing; edit the unsigned manifest and run `ward sign` again"
                    .into(),
            ));
        }
        if s.runtime_digest != *runtime_digest {
            return Err(Error::RuntimeMismatch {
                signed_for: s.runtime_digest.to_string(),
                this: runtime_digest.to_string(),
            });
        }
        Ok(VerifiedManifest {
            manifest: self.manifest.clone(),
            measurement: s.measurement,
            mr_signer: s.mr_signer,
        })
    }
}

fn require_hashed(m: &Manifest) -> Result<(), Error> {
    if let Some(TrustedFile::Uri(u)) = m
        .sgx
        .trusted_files
        .iter()
        .find(|t| matches!(t, TrustedFile::Uri(_)))
    {
        return Err(Error::Unsigned(format!(
            "trusted file {u} has no sha256 (only `ward sign` output is complete)"
        )));
    }
    let has_trees = m
        .sgx
        .trusted_files
        .iter()
        .any(|t| matches!(t, TrustedFile::Tree(_)));
    if has_trees && m.sgx.trusted_trees.is_none() {
        return Err(Error::Unsigned(
            "trusted directories are pinned by tree but sgx.trusted_trees names no sidecar \
             (only `ward sign` output is complete)"
                .into(),
        ));
    }
    if let Some(pr) = &m.provision {
        if let Some(ca) = pr
            .ca_chains()
            .find(|c| !matches!(c, TrustedFile::Hashed(_)))
        {
            let u = ca.uri();
            return Err(Error::Unsigned(format!(
                "provisioning CA chain {u} has no sha256 (only `ward sign` output is complete)"
            )));
        }
    }
    Ok(())
}
