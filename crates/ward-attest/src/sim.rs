//! ward's simulated TEE, for development and tests, honest about being one.
//!
//! # A simulated quote proves nothing about hardware
//!
//! **Anyone who holds the simulated platform key can forge a quote for any identity with any
//! report data.** There is no CPU, no enclave, no memory encryption and no Intel in the loop: the
//! "platform" is an ordinary ECDSA key in an ordinary file. A simulated quote shows only that
//! whoever made it held that key. Verification therefore reports [`TeeKind::Sim`], no TCB status
//! and the platform key that signed ([`VerifiedClaims::sim_platform_key`]); whether that key, and
//! the simulated TEE at all, is acceptable is the policy's decision, never [`SimQuote::verify`]'s.
//! Never accept simulated evidence for data that a real TEE is supposed to protect.
//!
//! # Binary format (version 1)
//!
//! All integers are little-endian (as in SGX structures). The length is exact: 241 bytes, and
//! trailing bytes are refused (unlike DCAP quotes, which arrive in padded buffers, this format is
//! ward's own and has one encoding).
//!
//! | offset | size | field          | contents                                                  |
//! | -----: | ---: | -------------- | --------------------------------------------------------- |
//! |      0 |    8 | `magic`        | `b"WARDSIM\0"`                                            |
//! |      8 |    2 | `version`      | `1`                                                       |
//! |     10 |    2 | `flags`        | bit 0: debug enclave; every other bit must be zero        |
//! |     12 |   32 | `mr_enclave`   | simulated MRENCLAVE                                       |
//! |     44 |   32 | `mr_signer`    | simulated MRSIGNER                                        |
//! |     76 |    2 | `isv_prod_id`  | ISV product id                                            |
//! |     78 |    2 | `isv_svn`      | ISV security version                                      |
//! |     80 |   64 | `report_data`  | the 64 bytes the workload binds (e.g. a key hash)         |
//! |    144 |   33 | `platform_key` | signer's P-256 public key, SEC1 compressed (`02`/`03`…)   |
//! |    177 |   64 | `signature`    | ECDSA P-256 / SHA-256 over bytes `0..177`, `r ‖ s`        |
//!
//! The signature is written in low-S form and parsing refuses a high-S one, so a quote has exactly
//! one valid encoding. The platform key is embedded so a verifier can name the key that signed;
//! it does not make the quote trustworthy.

use crate::claims::{SgxIdentity, TeeKind, VerifiedClaims};
use crate::error::{Error, Result};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::rand_core::OsRng;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// The first 8 bytes of every simulated quote.
pub const MAGIC: [u8; 8] = *b"WARDSIM\0";
/// The format version this module writes and reads.
pub const VERSION: u16 = 1;
/// Length in bytes of an encoded simulated quote (exact).
pub const QUOTE_LEN: usize = SIGNATURE_OFFSET + SIGNATURE_LEN;

/// `flags` bit 0: the simulated enclave is a debug enclave.
const FLAG_DEBUG: u16 = 1 << 0;
const KNOWN_FLAGS: u16 = FLAG_DEBUG;

/// SGX ATTRIBUTES.FLAGS bits reported for the simulated enclave (byte 0 of `attributes`).
const ATTR_INIT: u8 = 1 << 0;
const ATTR_DEBUG: u8 = 1 << 1;
const ATTR_MODE64: u8 = 1 << 2;

const PUBLIC_KEY_LEN: usize = 33;
const SIGNATURE_LEN: usize = 64;
const SIGNATURE_OFFSET: usize = 8 + 2 + 2 + 32 + 32 + 2 + 2 + 64 + PUBLIC_KEY_LEN;

const WHAT: &str = "simulated quote";

/// The simulated platform's signing key (ECDSA P-256).
///
/// Whoever holds it can produce simulated quotes for any identity: keep it as you would any
/// signing key. `Debug` never shows the secret, and the secret scalar is zeroized on drop.
pub struct SimPlatformKey {
    key: SigningKey,
}

impl SimPlatformKey {
    /// Generates a fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        SimPlatformKey {
            key: SigningKey::random(&mut OsRng),
        }
    }

    /// Writes the key to `path` as PKCS#8 PEM with mode 0600.
    ///
    /// Never overwrites: if `path` exists the call fails and the existing file is untouched. If
    /// writing fails part-way, the partial file is removed.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::keyfile::save(&self.key, path).map_err(|source| Error::KeyFile {
            what: "simulated platform key",
            source,
        })
    }

    /// Reads a key written by [`SimPlatformKey::save`] (any PKCS#8 PEM P-256 private key).
    pub fn load(path: &Path) -> Result<Self> {
        let key = crate::keyfile::load(path).map_err(|source| Error::KeyFile {
            what: "simulated platform key",
            source,
        })?;
        Ok(SimPlatformKey { key })
    }

    /// The public half, which verifiers may be configured to trust.
    pub fn public(&self) -> SimPlatformPublicKey {
        SimPlatformPublicKey {
            key: *self.key.verifying_key(),
        }
    }
}

impl fmt::Debug for SimPlatformKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimPlatformKey")
            .field("public", &self.public().to_hex())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The public key of a simulated platform (ECDSA P-256).
///
/// Its canonical text form is the SEC1 compressed point in lowercase hex (66 characters), which is
/// also how [`VerifiedClaims::sim_platform_key`] names it. Compare keys as values (parse with
/// [`SimPlatformPublicKey::from_hex`]) rather than as strings.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SimPlatformPublicKey {
    key: VerifyingKey,
}

impl SimPlatformPublicKey {
    /// SEC1 compressed encoding (33 bytes).
    pub fn to_bytes(&self) -> [u8; 33] {
        let point = self.key.to_encoded_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// Parses a SEC1 compressed encoding (33 bytes, first byte `02` or `03`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != PUBLIC_KEY_LEN {
            return Err(Error::Key(format!(
                "a simulated platform public key is a 33-byte SEC1 compressed P-256 point; got \
                 {} bytes",
                bytes.len()
            )));
        }
        if !matches!(bytes[0], 0x02 | 0x03) {
            return Err(Error::Key(format!(
                "a simulated platform public key is a SEC1 compressed P-256 point, starting 02 \
                 or 03; this one starts {:02x}",
                bytes[0]
            )));
        }
        let key = VerifyingKey::from_sec1_bytes(bytes)
            .map_err(|_| Error::Key("the bytes are not a point on the P-256 curve".to_string()))?;
        Ok(SimPlatformPublicKey { key })
    }

    /// SEC1 compressed encoding in lowercase hex (66 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// Parses [`SimPlatformPublicKey::to_hex`]'s form (either case; surrounding whitespace is
    /// ignored).
    pub fn from_hex(text: &str) -> Result<Self> {
        let text = text.trim();
        let mut bytes = [0u8; PUBLIC_KEY_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|e| {
            Error::Key(format!(
                "simulated platform public key {text:?} is not 66 hex characters \
                 (SEC1 compressed P-256): {e}"
            ))
        })?;
        Self::from_bytes(&bytes)
    }

    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), for tools that expect it.
    pub fn to_pem(&self) -> String {
        // Encoding a valid P-256 key as SPKI cannot fail.
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("SPKI encoding of a P-256 public key")
    }

    /// Parses SubjectPublicKeyInfo PEM holding a P-256 key.
    pub fn from_pem(text: &str) -> Result<Self> {
        let key = VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
            Error::Key(format!(
                "not a PEM P-256 public key (SubjectPublicKeyInfo): {e}"
            ))
        })?;
        Ok(SimPlatformPublicKey { key })
    }
}

impl fmt::Display for SimPlatformPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SimPlatformPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimPlatformPublicKey({})", self.to_hex())
    }
}

impl FromStr for SimPlatformPublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_hex(s)
    }
}

/// The identity a simulated enclave claims. Nothing measures it: it is whatever the holder of
/// the platform key chose to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimIdentity {
    /// Simulated MRENCLAVE.
    pub mr_enclave: [u8; 32],
    /// Simulated MRSIGNER.
    pub mr_signer: [u8; 32],
    /// ISV product id.
    pub isv_prod_id: u16,
    /// ISV security version number.
    pub isv_svn: u16,
    /// Whether the simulated enclave is a debug enclave.
    pub debug: bool,
}

impl SimIdentity {
    /// The SGX ATTRIBUTES reported for this identity: INIT and MODE64 always, DEBUG iff
    /// [`SimIdentity::debug`]; XFRM is zero.
    pub fn attributes(&self) -> [u8; 16] {
        let mut attributes = [0u8; 16];
        attributes[0] = ATTR_INIT | ATTR_MODE64 | if self.debug { ATTR_DEBUG } else { 0 };
        attributes
    }

    /// The identity as claims report it.
    pub fn to_sgx_identity(&self) -> SgxIdentity {
        SgxIdentity {
            mr_enclave: self.mr_enclave,
            mr_signer: self.mr_signer,
            isv_prod_id: self.isv_prod_id,
            isv_svn: self.isv_svn,
            attributes: self.attributes(),
            debug: self.debug,
        }
    }
}

/// A simulated quote: an identity and report data signed by a simulated platform key.
///
/// See the [module documentation](self) for the format and for what it does not prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimQuote {
    /// The identity the quote claims.
    pub identity: SimIdentity,
    /// The 64 bytes of report data bound into the quote.
    pub report_data: [u8; 64],
    /// The key that (the quote claims) signed it; [`SimQuote::verify`] checks that it did.
    pub platform_key: SimPlatformPublicKey,
    signature: Signature,
}

impl SimQuote {
    /// Signs `identity` and `report_data` with `key`.
    pub fn sign(key: &SimPlatformKey, identity: &SimIdentity, report_data: &[u8; 64]) -> SimQuote {
        let platform_key = key.public();
        let signed = encode_signed_part(identity, report_data, &platform_key);
        let signature: Signature = key.key.sign(&signed);
        let signature = signature.normalize_s().unwrap_or(signature);
        SimQuote {
            identity: identity.clone(),
            report_data: *report_data,
            platform_key,
            signature,
        }
    }

    /// The signature, `r ‖ s` (64 bytes).
    pub fn signature(&self) -> [u8; 64] {
        self.signature.to_bytes().into()
    }

    /// Encodes the quote ([`QUOTE_LEN`] bytes; format in the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = encode_signed_part(&self.identity, &self.report_data, &self.platform_key);
        out.extend_from_slice(&self.signature.to_bytes());
        debug_assert_eq!(out.len(), QUOTE_LEN);
        out
    }

    /// Parses an encoded quote, refusing anything but the exact format with the field and offset
    /// that were wrong. Does not check the signature: call [`SimQuote::verify`].
    pub fn parse(bytes: &[u8]) -> Result<SimQuote> {
        let mut r = Reader { bytes, offset: 0 };

        let (offset, magic) = r.take("magic", MAGIC.len())?;
        if magic != MAGIC {
            return Err(malformed(
                "magic",
                offset,
                format!(
                    "expected b\"WARDSIM\\0\" (a ward simulated quote), found {}",
                    hex::encode(magic)
                ),
            ));
        }
        let (offset, version) = r.u16("version")?;
        if version != VERSION {
            return Err(malformed(
                "version",
                offset,
                format!("version {version} is not supported (this ward reads version {VERSION})"),
            ));
        }
        let (offset, flags) = r.u16("flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(malformed(
                "flags",
                offset,
                format!(
                    "unknown flag bits {:#06x} are set (only bit 0, debug, is defined)",
                    flags & !KNOWN_FLAGS
                ),
            ));
        }
        let mr_enclave = r.array::<32>("mr_enclave")?;
        let mr_signer = r.array::<32>("mr_signer")?;
        let (_, isv_prod_id) = r.u16("isv_prod_id")?;
        let (_, isv_svn) = r.u16("isv_svn")?;
        let report_data = r.array::<64>("report_data")?;

        let (offset, key_bytes) = r.take("platform_key", PUBLIC_KEY_LEN)?;
        let platform_key = SimPlatformPublicKey::from_bytes(key_bytes).map_err(|_| {
            malformed(
                "platform_key",
                offset,
                format!(
                    "not a SEC1 compressed P-256 public key: {}",
                    hex::encode(key_bytes)
                ),
            )
        })?;

        let (offset, sig_bytes) = r.take("signature", SIGNATURE_LEN)?;
        let signature = Signature::from_slice(sig_bytes).map_err(|_| {
            malformed(
                "signature",
                offset,
                "r or s is zero or not below the P-256 group order".to_string(),
            )
        })?;
        if signature.normalize_s().is_some() {
            return Err(malformed(
                "signature",
                offset,
                "s is not in low-S form (ward writes only low-S signatures)".to_string(),
            ));
        }

        if r.offset != bytes.len() {
            return Err(malformed(
                "end",
                r.offset,
                format!(
                    "{} trailing bytes after the signature (a simulated quote is exactly \
                     {QUOTE_LEN} bytes)",
                    bytes.len() - r.offset
                ),
            ));
        }

        Ok(SimQuote {
            identity: SimIdentity {
                mr_enclave,
                mr_signer,
                isv_prod_id,
                isv_svn,
                debug: flags & FLAG_DEBUG != 0,
            },
            report_data,
            platform_key,
            signature,
        })
    }

    /// Checks the signature with the embedded platform key and returns what the quote claims.
    ///
    /// This proves only that the holder of [`SimQuote::platform_key`]'s private half signed these
    /// contents. Whether that key is trusted — and whether simulated evidence is acceptable at
    /// all — is the policy's decision.
    pub fn verify(&self) -> Result<VerifiedClaims> {
        let signed = encode_signed_part(&self.identity, &self.report_data, &self.platform_key);
        self.platform_key
            .key
            .verify(&signed, &self.signature)
            .map_err(|_| Error::Verification {
                step: "simulated quote signature",
                detail: format!(
                    "the signature does not match the quote's contents and its platform key {}: \
                     the quote was altered, or was not signed by that key",
                    self.platform_key
                ),
            })?;
        Ok(VerifiedClaims {
            tee: TeeKind::Sim,
            sgx: Some(self.identity.to_sgx_identity()),
            tdx: None,
            report_data: self.report_data,
            tcb_status: None,
            advisory_ids: Vec::new(),
            fmspc: None,
            collateral_expires: None,
            sim_platform_key: Some(self.platform_key.to_hex()),
            workload: None,
        })
    }
}

/// Whether `bytes` starts like a simulated quote (the magic), to route evidence to the right
/// verifier. Says nothing about validity.
pub fn is_sim_quote(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Every byte the signature covers, in format order.
fn encode_signed_part(
    identity: &SimIdentity,
    report_data: &[u8; 64],
    platform_key: &SimPlatformPublicKey,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(QUOTE_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    let flags = if identity.debug { FLAG_DEBUG } else { 0 };
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&identity.mr_enclave);
    out.extend_from_slice(&identity.mr_signer);
    out.extend_from_slice(&identity.isv_prod_id.to_le_bytes());
    out.extend_from_slice(&identity.isv_svn.to_le_bytes());
    out.extend_from_slice(report_data);
    out.extend_from_slice(&platform_key.to_bytes());
    debug_assert_eq!(out.len(), SIGNATURE_OFFSET);
    out
}

fn malformed(field: &'static str, offset: usize, problem: String) -> Error {
    Error::Malformed {
        what: WHAT,
        field,
        offset,
        problem,
    }
}

/// A cursor that refuses to read past the end, naming the field it was reading.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, len: usize) -> Result<(usize, &'a [u8])> {
        let start = self.offset;
        let remaining = self.bytes.len() - start;
        if remaining < len {
            return Err(malformed(
                field,
                start,
                format!(
                    "needs {len} bytes but only {remaining} remain (the quote is truncated: \
                     {} of {QUOTE_LEN} bytes)",
                    self.bytes.len()
                ),
            ));
        }
        self.offset += len;
        Ok((start, &self.bytes[start..start + len]))
    }

    fn u16(&mut self, field: &'static str) -> Result<(usize, u16)> {
        let (offset, b) = self.take(field, 2)?;
        Ok((offset, u16::from_le_bytes([b[0], b[1]])))
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let (_, b) = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }
}
