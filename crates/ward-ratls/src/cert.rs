//! RA-TLS certificates in Gramine's format: producing them and reading them back.
//!
//! A certificate is self-signed with a fresh EC key; the evidence (a quote) sits in a
//! non-critical extension and binds that key through the quote's report data:
//!
//! - **TCG DICE tagged evidence** (Gramine ≥ 1.8), OID 2.23.133.5.4.9: CBOR tag 60000 over
//!   `[bstr quote, bstr claims]`, where claims is the CBOR map
//!   `{"pubkey-hash": bstr(CBOR [hash-alg, bstr digest])}` with the digest taken over the DER
//!   SubjectPublicKeyInfo, and the quote's `report_data[0..32]` is SHA-256 of the claims bytes.
//! - **Legacy** (Gramine 1.0 – 1.7): the raw quote, with `report_data[0..32]` = SHA-256 of the
//!   DER SubjectPublicKeyInfo and the rest zero. Gramine has always written this extension's OID
//!   with its ASN.1 tag and length bytes inside the OID value, so in its certificates the OID
//!   decodes as `0.6.9.42.840.113741.1337.6` rather than the intended
//!   `1.2.840.113741.1337.6` ([`GRAMINE_LEGACY_QUOTE_OID`]). ward writes the OID exactly as
//!   Gramine does and reads both spellings.
//!
//! ward's runtime adds one claim of its own to the DICE map, `"ward-workload"`, naming the
//! verified ward manifest it runs (see [`WorkloadIdentity`]); other verifiers ignore claims they
//! do not know, as Gramine's do. Evidence carrying it must have ward's
//! [`WORKLOAD_REPORT_DATA_TAG`] in `report_data[32..64]`, which ward never lets a confined program
//! request (its `/dev/attestation` refuses those bytes), so a program cannot obtain evidence
//! naming a manifest other than the one it runs under.
//!
//! When both extensions are present the DICE one is used, and if it is malformed the certificate
//! is refused: there is no falling back to the legacy one.

use crate::error::{dice_err, legacy_err, RaTlsError, Result};
use ciborium::value::Value;
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, KeyPair, PublicKeyData,
};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;
use ward_attest::attester::Attester;
use ward_attest::{TeeKind, WorkloadIdentity, WORKLOAD_REPORT_DATA_TAG};
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::{Zeroize, Zeroizing};

/// OID of the TCG DICE "tagged evidence" (conceptual message wrapper) extension.
pub const DICE_EVIDENCE_OID: &[u64] = &[2, 23, 133, 5, 4, 9];
/// The OID Gramine's legacy SGX quote extension was meant to have.
pub const LEGACY_QUOTE_OID: &[u64] = &[1, 2, 840, 113741, 1337, 6];
/// The OID Gramine's legacy SGX quote extension actually has in its certificates (its ASN.1 tag
/// and length `06 09` ended up inside the value); ward writes this one, for byte compatibility.
pub const GRAMINE_LEGACY_QUOTE_OID: &[u64] = &[0, 6, 9, 42, 840, 113741, 1337, 6];
/// The CBOR tag of DICE tagged evidence holding a TEE quote (IANA CBOR tag registry).
pub const DICE_TEE_QUOTE_CBOR_TAG: u64 = 60000;
/// The claim that binds the certificate's public key.
pub const PUBKEY_HASH_CLAIM: &str = "pubkey-hash";
/// ward's claim naming the workload: a CBOR map `{"measurement": bstr .size 32, "signer": bstr
/// .size 32, "isv-prod-id": uint, "isv-svn": uint, "debug": bool}`.
pub const WORKLOAD_CLAIM: &str = "ward-workload";
/// The subject (and issuer) common name of certificates ward generates.
pub const SUBJECT_COMMON_NAME: &str = "ward RA-TLS";

/// Contents (without tag and length) of the DER encodings of the OIDs above.
const DICE_OID_DER: &[u8] = &[0x67, 0x81, 0x05, 0x05, 0x04, 0x09];
const LEGACY_OID_DER: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x8A, 0x39, 0x06];
const GRAMINE_LEGACY_OID_DER: &[u8] = &[
    0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x8A, 0x39, 0x06,
];
/// id-ecPublicKey, prime256v1 and secp384r1.
const EC_PUBLIC_KEY_OID_DER: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const P256_OID_DER: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const P384_OID_DER: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];

/// Lifetime of a certificate made by [`RaTlsIdentity::generate`].
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// How far before "now" [`Validity::starting_now`] backdates notBefore (clock skew).
pub const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// Which evidence extension(s) a generated certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvidenceForm {
    /// TCG DICE tagged evidence (Gramine ≥ 1.8 verifies it); the default.
    #[default]
    Dice,
    /// Gramine's legacy raw-quote extension only (understood by every Gramine version).
    Legacy,
    /// Both, as Gramine ≥ 1.8 itself writes them: two quotes, one per extension. Verifiers use
    /// the DICE one when they know it, older Gramine versions the legacy one.
    DiceAndLegacy,
}

impl EvidenceForm {
    fn has_dice(self) -> bool {
        matches!(self, EvidenceForm::Dice | EvidenceForm::DiceAndLegacy)
    }

    fn has_legacy(self) -> bool {
        matches!(self, EvidenceForm::Legacy | EvidenceForm::DiceAndLegacy)
    }
}

impl fmt::Display for EvidenceForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EvidenceForm::Dice => "TCG DICE tagged evidence",
            EvidenceForm::Legacy => "legacy SGX quote",
            EvidenceForm::DiceAndLegacy => "TCG DICE tagged evidence and legacy SGX quote",
        })
    }
}

/// The certificate's validity period, in unix seconds.
///
/// RA-TLS verifiers (ward's and Gramine's) do not enforce it: what makes evidence acceptable is
/// the quote and its collateral, checked at handshake time. It is informative for people and
/// tools that look at the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before: u64,
    /// notAfter.
    pub not_after: u64,
}

impl Validity {
    /// From an hour ago (clock skew) until `lifetime` from now, by the system clock.
    pub fn starting_now(lifetime: Duration) -> Validity {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Validity {
            not_before: now.saturating_sub(BACKDATE.as_secs()),
            not_after: now.saturating_add(lifetime.as_secs()),
        }
    }
}

/// An RA-TLS certificate and its private key, ready to be presented in a TLS handshake.
///
/// The private key (PKCS#8 DER) is zeroized when the identity is dropped. `Debug` never shows it.
pub struct RaTlsIdentity {
    cert_der: Vec<u8>,
    key_pkcs8: Zeroizing<Vec<u8>>,
    form: EvidenceForm,
    tee: TeeKind,
}

impl fmt::Debug for RaTlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaTlsIdentity")
            .field("cert_der", &format_args!("<{} bytes>", self.cert_der.len()))
            .field("key", &"<redacted>")
            .field("form", &self.form)
            .field("tee", &self.tee)
            .finish()
    }
}

impl RaTlsIdentity {
    /// Generates a fresh EC P-384 key and a self-signed certificate carrying evidence from
    /// `attester` that binds the key, valid (informatively; see [`Validity`]) from an hour ago
    /// until [`DEFAULT_LIFETIME`] from now by the system clock.
    pub fn generate(attester: &dyn Attester, form: EvidenceForm) -> Result<RaTlsIdentity> {
        Self::generate_with_validity(attester, form, Validity::starting_now(DEFAULT_LIFETIME))
    }

    /// As [`RaTlsIdentity::generate`], with the given validity period.
    pub fn generate_with_validity(
        attester: &dyn Attester,
        form: EvidenceForm,
        validity: Validity,
    ) -> Result<RaTlsIdentity> {
        Self::build(attester, form, validity, None)
    }

    /// As [`RaTlsIdentity::generate`] (DICE form), with evidence that also names the ward
    /// workload `workload` (the `"ward-workload"` claim, with ward's report-data tag). Only
    /// ward's runtime, after verifying the signed manifest, should call this.
    pub fn generate_for_workload(
        attester: &dyn Attester,
        workload: &WorkloadIdentity,
    ) -> Result<RaTlsIdentity> {
        Self::build(
            attester,
            EvidenceForm::Dice,
            Validity::starting_now(DEFAULT_LIFETIME),
            Some(workload),
        )
    }

    fn build(
        attester: &dyn Attester,
        form: EvidenceForm,
        validity: Validity,
        workload: Option<&WorkloadIdentity>,
    ) -> Result<RaTlsIdentity> {
        if workload.is_some() && form.has_legacy() {
            return Err(RaTlsError::Generation(
                "the legacy evidence form has no claims, so it cannot name the workload; use the \
                 DICE form"
                    .into(),
            ));
        }
        if validity.not_after <= validity.not_before {
            return Err(RaTlsError::Generation(format!(
                "the validity period is empty (notBefore {} is not before notAfter {})",
                validity.not_before, validity.not_after
            )));
        }
        let mut key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .map_err(|e| RaTlsError::Generation(format!("generating an EC P-384 key: {e}")))?;
        let spki = key.subject_public_key_info();

        let mut extensions = Vec::new();
        let mut tee = None;
        // Gramine writes the legacy extension first, then the DICE one.
        if form.has_legacy() {
            let report_data = legacy_report_data(&spki);
            let evidence = attest(attester, &report_data)?;
            tee = Some(evidence.tee);
            extensions.push(CustomExtension::from_oid_content(
                GRAMINE_LEGACY_QUOTE_OID,
                evidence.quote,
            ));
        }
        if form.has_dice() {
            let claims = encode_claims(&spki, workload)?;
            let mut report_data = dice_report_data(&claims);
            if workload.is_some() {
                report_data[32..].copy_from_slice(&WORKLOAD_REPORT_DATA_TAG);
            }
            let evidence = attest(attester, &report_data)?;
            tee = Some(evidence.tee);
            let value = encode_dice_evidence(evidence.quote, claims)?;
            extensions.push(CustomExtension::from_oid_content(DICE_EVIDENCE_OID, value));
        }
        let tee = tee.ok_or_else(|| RaTlsError::Generation("no evidence form chosen".into()))?;

        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, SUBJECT_COMMON_NAME);
        params.distinguished_name = name;
        params.not_before = datetime(validity.not_before)?;
        params.not_after = datetime(validity.not_after)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.custom_extensions = extensions;
        let cert = params
            .self_signed(&key)
            .map_err(|e| RaTlsError::Generation(format!("signing the certificate: {e}")))?;
        let cert_der = cert.der().to_vec();
        let key_pkcs8 = Zeroizing::new(key.serialize_der());
        key.zeroize();

        // What we wrote must read back, with a valid binding.
        let parsed = parse_certificate(&cert_der)?;
        let report_data = quote_report_data(attester, parsed.quote())?;
        parsed.check_binding(&report_data)?;

        Ok(RaTlsIdentity {
            cert_der,
            key_pkcs8,
            form,
            tee,
        })
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate as rustls takes it.
    pub fn certificate(&self) -> rustls::pki_types::CertificateDer<'static> {
        rustls::pki_types::CertificateDer::from(self.cert_der.clone())
    }

    /// A copy of the private key (PKCS#8) as rustls takes it.
    ///
    /// The copy is not zeroized when dropped (rustls' key types do not do that); prefer
    /// [`RaTlsIdentity::certified_key`] or the config helpers, which do not hand it out.
    pub fn private_key(&self) -> rustls::pki_types::PrivateKeyDer<'static> {
        rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
            self.key_pkcs8.to_vec(),
        ))
    }

    /// Which evidence extension(s) the certificate carries.
    pub fn form(&self) -> EvidenceForm {
        self.form
    }

    /// The kind of TEE that produced the evidence.
    pub fn tee(&self) -> TeeKind {
        self.tee
    }

    /// Signs `message` with the certificate's key: ECDSA P-384 with SHA-384, the signature
    /// ASN.1 DER-encoded. What the key signs is bound to the evidence the certificate carries, so
    /// a verifier that accepts the certificate ([`crate::verify_certificate`]) and then the
    /// signature ([`RaTlsCertificate::verify_signature`]) knows the attested workload signed it.
    ///
    /// Callers should prefix `message` with a context string of their own, so a signature made
    /// for one purpose can never be taken for another.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        use ring::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_ASN1_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &self.key_pkcs8, &rng)
            .map_err(|e| RaTlsError::Generation(format!("loading the signing key: {e}")))?;
        let signature = key
            .sign(&rng, message)
            .map_err(|e| RaTlsError::Generation(format!("signing: {e}")))?;
        Ok(signature.as_ref().to_vec())
    }

    pub(crate) fn key_pkcs8(&self) -> &[u8] {
        &self.key_pkcs8
    }
}

fn datetime(unix: u64) -> Result<time::OffsetDateTime> {
    i64::try_from(unix)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| {
            RaTlsError::Generation(format!("{unix} is not a representable certificate time"))
        })
}

fn attest(
    attester: &dyn Attester,
    report_data: &[u8; 64],
) -> Result<ward_attest::attester::Evidence> {
    let evidence = attester
        .attest(report_data)
        .map_err(|source| RaTlsError::Attestation {
            attester: attester.name(),
            source,
        })?;
    let carried = quote_report_data(attester, &evidence.quote)?;
    if carried != *report_data {
        return Err(RaTlsError::Generation(format!(
            "the {} attester returned a quote that does not carry the requested report data",
            attester.name()
        )));
    }
    Ok(evidence)
}

/// The report data a quote carries, read without verifying it.
fn quote_report_data(attester: &dyn Attester, quote: &[u8]) -> Result<[u8; 64]> {
    let parsed = if ward_attest::sim::is_sim_quote(quote) {
        ward_attest::sim::SimQuote::parse(quote).map(|q| q.report_data)
    } else {
        ward_attest::quote::Quote::parse(quote).map(|q| *q.report_data())
    };
    parsed.map_err(|source| RaTlsError::Attestation {
        attester: attester.name(),
        source,
    })
}

fn legacy_report_data(spki: &[u8]) -> [u8; 64] {
    let mut rd = [0u8; 64];
    rd[..32].copy_from_slice(&Sha256::digest(spki));
    rd
}

fn dice_report_data(claims: &[u8]) -> [u8; 64] {
    let mut rd = [0u8; 64];
    rd[..32].copy_from_slice(&Sha256::digest(claims));
    rd
}

fn to_cbor(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out)
        .map_err(|e| RaTlsError::Generation(format!("encoding CBOR: {e}")))?;
    Ok(out)
}

/// `{"pubkey-hash": bstr(CBOR [1, bstr SHA-256(spki)])}`, as Gramine writes it, plus ward's
/// `"ward-workload"` claim when there is a workload to name.
fn encode_claims(spki: &[u8], workload: Option<&WorkloadIdentity>) -> Result<Vec<u8>> {
    let hash_entry = to_cbor(&Value::Array(vec![
        Value::Integer(PubkeyHashAlg::Sha256.iana_id().into()),
        Value::Bytes(Sha256::digest(spki).to_vec()),
    ]))?;
    let mut map = vec![(
        Value::Text(PUBKEY_HASH_CLAIM.into()),
        Value::Bytes(hash_entry),
    )];
    if let Some(w) = workload {
        let text = |s: &str| Value::Text(s.into());
        map.push((
            text(WORKLOAD_CLAIM),
            Value::Map(vec![
                (text("measurement"), Value::Bytes(w.measurement.to_vec())),
                (text("signer"), Value::Bytes(w.signer.to_vec())),
                (text("isv-prod-id"), Value::Integer(w.isv_prod_id.into())),
                (text("isv-svn"), Value::Integer(w.isv_svn.into())),
                (text("debug"), Value::Bool(w.debug)),
            ]),
        ));
    }
    to_cbor(&Value::Map(map))
}

/// `tag 60000 ([bstr quote, bstr claims])`.
fn encode_dice_evidence(quote: Vec<u8>, claims: Vec<u8>) -> Result<Vec<u8>> {
    to_cbor(&Value::Tag(
        DICE_TEE_QUOTE_CBOR_TAG,
        Box::new(Value::Array(vec![
            Value::Bytes(quote),
            Value::Bytes(claims),
        ])),
    ))
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A hash algorithm for the `pubkey-hash` claim, by its IANA "Named Information" id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubkeyHashAlg {
    /// SHA-256 (id 1); what Gramine and ward write.
    Sha256,
    /// SHA-384 (id 7).
    Sha384,
    /// SHA-512 (id 8).
    Sha512,
}

impl PubkeyHashAlg {
    /// The IANA Named Information hash algorithm id.
    pub fn iana_id(self) -> u64 {
        match self {
            PubkeyHashAlg::Sha256 => 1,
            PubkeyHashAlg::Sha384 => 7,
            PubkeyHashAlg::Sha512 => 8,
        }
    }

    /// The algorithm with this IANA id, if it is one RA-TLS accepts.
    pub fn from_iana_id(id: u64) -> Option<PubkeyHashAlg> {
        match id {
            1 => Some(PubkeyHashAlg::Sha256),
            7 => Some(PubkeyHashAlg::Sha384),
            8 => Some(PubkeyHashAlg::Sha512),
            _ => None,
        }
    }

    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            PubkeyHashAlg::Sha256 => 32,
            PubkeyHashAlg::Sha384 => 48,
            PubkeyHashAlg::Sha512 => 64,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            PubkeyHashAlg::Sha256 => Sha256::digest(data).to_vec(),
            PubkeyHashAlg::Sha384 => Sha384::digest(data).to_vec(),
            PubkeyHashAlg::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

impl fmt::Display for PubkeyHashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PubkeyHashAlg::Sha256 => "SHA-256",
            PubkeyHashAlg::Sha384 => "SHA-384",
            PubkeyHashAlg::Sha512 => "SHA-512",
        })
    }
}

/// The `pubkey-hash` claim: a hash of the DER SubjectPublicKeyInfo the evidence binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubkeyHash {
    /// The hash algorithm.
    pub alg: PubkeyHashAlg,
    /// The digest (its length matches `alg`).
    pub digest: Vec<u8>,
}

/// The evidence a certificate carries, in the form it was found. Nothing in it is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmbeddedEvidence {
    /// TCG DICE tagged evidence.
    Dice {
        /// The quote.
        quote: Vec<u8>,
        /// The claims, exactly as serialized in the certificate (their SHA-256 is bound by the
        /// quote).
        claims: Vec<u8>,
        /// The parsed `pubkey-hash` claim.
        pubkey_hash: PubkeyHash,
        /// The parsed `"ward-workload"` claim, when present (unverified until
        /// [`RaTlsCertificate::check_binding`] passes).
        workload: Option<WorkloadIdentity>,
    },
    /// Gramine's legacy raw quote.
    Legacy {
        /// The quote.
        quote: Vec<u8>,
    },
}

/// A parsed RA-TLS certificate: its public key and the evidence it carries, unverified.
#[derive(Clone, PartialEq, Eq)]
pub struct RaTlsCertificate {
    spki_der: Vec<u8>,
    /// The SubjectPublicKeyInfo's key bits (an uncompressed EC point).
    public_key: Vec<u8>,
    curve: Curve,
    evidence: EmbeddedEvidence,
}

/// The EC curve of an RA-TLS certificate's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

impl fmt::Debug for RaTlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaTlsCertificate")
            .field("form", &self.form())
            .field("spki_der", &format_args!("<{} bytes>", self.spki_der.len()))
            .field("quote", &format_args!("<{} bytes>", self.quote().len()))
            .finish()
    }
}

impl RaTlsCertificate {
    /// The certificate's DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Checks that `signature` (ASN.1 DER ECDSA, as [`RaTlsIdentity::sign`] makes) is this
    /// certificate's key's signature over `message`: SHA-384 for a P-384 key, SHA-256 for P-256.
    ///
    /// This says only that the key holder signed; the key is trustworthy only once the
    /// certificate's evidence was verified ([`crate::verify_certificate`]).
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1};
        let alg = match self.curve {
            Curve::P256 => &ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &ECDSA_P384_SHA384_ASN1,
        };
        UnparsedPublicKey::new(alg, &self.public_key)
            .verify(message, signature)
            .map_err(|_| RaTlsError::Signature)
    }

    /// The evidence, as found.
    pub fn evidence(&self) -> &EmbeddedEvidence {
        &self.evidence
    }

    /// The quote, unverified.
    pub fn quote(&self) -> &[u8] {
        match &self.evidence {
            EmbeddedEvidence::Dice { quote, .. } | EmbeddedEvidence::Legacy { quote } => quote,
        }
    }

    /// Which extension the evidence came from ([`EvidenceForm::Dice`] or
    /// [`EvidenceForm::Legacy`]).
    pub fn form(&self) -> EvidenceForm {
        match &self.evidence {
            EmbeddedEvidence::Dice { .. } => EvidenceForm::Dice,
            EmbeddedEvidence::Legacy { .. } => EvidenceForm::Legacy,
        }
    }

    /// The ward workload the claims name, if any. Trust it only after
    /// [`RaTlsCertificate::check_binding`] passed for the verified quote's report data
    /// ([`crate::verify_evidence`] does both).
    pub fn workload(&self) -> Option<&WorkloadIdentity> {
        match &self.evidence {
            EmbeddedEvidence::Dice { workload, .. } => workload.as_ref(),
            EmbeddedEvidence::Legacy { .. } => None,
        }
    }

    /// Checks that `report_data` (from the *verified* quote) binds this certificate's key.
    ///
    /// DICE: `report_data[0..32]` is SHA-256 of the claims bytes, and the claims' `pubkey-hash`
    /// is the hash of the SubjectPublicKeyInfo; claims naming a ward workload also need ward's
    /// [`WORKLOAD_REPORT_DATA_TAG`] in `report_data[32..64]`. Legacy: `report_data[0..32]` is SHA-256 of the
    /// SubjectPublicKeyInfo and `report_data[32..64]` is zero.
    pub fn check_binding(&self, report_data: &[u8; 64]) -> Result<()> {
        match &self.evidence {
            EmbeddedEvidence::Dice {
                claims,
                pubkey_hash,
                workload,
                ..
            } => {
                let claims_hash = Sha256::digest(claims);
                let claims_ok = report_data[..32].ct_eq(claims_hash.as_slice());
                let key_hash = pubkey_hash.alg.digest(&self.spki_der);
                let key_ok = pubkey_hash.digest.as_slice().ct_eq(key_hash.as_slice());
                if !bool::from(claims_ok) {
                    return Err(RaTlsError::Binding(format!(
                        "the quote's report_data[0..32] is {}, but SHA-256 of the certificate's \
                         DICE claims is {}: the quote was produced for other claims",
                        hex::encode(&report_data[..32]),
                        hex::encode(claims_hash)
                    )));
                }
                if !bool::from(key_ok) {
                    return Err(RaTlsError::Binding(format!(
                        "the claims' pubkey-hash ({}) is {}, but the certificate's public key \
                         hashes to {}: the evidence was made for another key",
                        pubkey_hash.alg,
                        hex::encode(&pubkey_hash.digest),
                        hex::encode(&key_hash)
                    )));
                }
                let tagged = bool::from(report_data[32..].ct_eq(&WORKLOAD_REPORT_DATA_TAG));
                if workload.is_some() && !tagged {
                    return Err(RaTlsError::Binding(format!(
                        "the claims name a ward workload, but the quote's report_data[32..64] is \
                         {}, not ward's workload tag: this evidence was not made by ward's \
                         runtime (a program asking for a quote over claims it chose)",
                        hex::encode(&report_data[32..])
                    )));
                }
                Ok(())
            }
            EmbeddedEvidence::Legacy { .. } => {
                let key_hash = Sha256::digest(&self.spki_der);
                let key_ok = report_data[..32].ct_eq(key_hash.as_slice());
                let rest_ok = report_data[32..].ct_eq(&[0u8; 32]);
                if !bool::from(key_ok) {
                    return Err(RaTlsError::Binding(format!(
                        "the quote's report_data[0..32] is {}, but SHA-256 of the certificate's \
                         public key is {}: the quote was produced for another key",
                        hex::encode(&report_data[..32]),
                        hex::encode(key_hash)
                    )));
                }
                if !bool::from(rest_ok) {
                    return Err(RaTlsError::Binding(format!(
                        "the quote's report_data[32..64] is {}, but the legacy format requires \
                         zeros there",
                        hex::encode(&report_data[32..])
                    )));
                }
                Ok(())
            }
        }
    }
}

/// Parses an RA-TLS certificate: its public key and its evidence, unverified.
///
/// The DICE extension is used when present (and if it is malformed, that is an error); the legacy
/// one only when the DICE one is absent. The key must be EC P-256 or P-384, as Gramine's
/// verifiers require. The certificate's self-signature and validity dates are not checked (an
/// RA-TLS certificate's trust comes from its evidence, and possession of its key from the TLS
/// handshake), as in Gramine.
pub fn parse_certificate(der: &[u8]) -> Result<RaTlsCertificate> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| RaTlsError::Certificate(format!("not a DER X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(RaTlsError::Certificate(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    let spki = &cert.tbs_certificate.subject_pki;
    let curve = check_key_type(spki)?;

    let mut dice: Option<&[u8]> = None;
    let mut legacy: Vec<&[u8]> = Vec::new();
    for ext in cert.extensions() {
        let oid = ext.oid.as_bytes();
        if oid == DICE_OID_DER {
            if dice.replace(ext.value).is_some() {
                return Err(dice_err("the extension appears more than once"));
            }
        } else if oid == LEGACY_OID_DER || oid == GRAMINE_LEGACY_OID_DER {
            legacy.push(ext.value);
        }
    }
    let evidence = match (dice, legacy.as_slice()) {
        (Some(value), _) => parse_dice(value)?,
        (None, [value]) => {
            if value.is_empty() {
                return Err(legacy_err("the extension is empty"));
            }
            EmbeddedEvidence::Legacy {
                quote: value.to_vec(),
            }
        }
        (None, []) => return Err(RaTlsError::NotRaTls),
        (None, _) => return Err(legacy_err("the extension appears more than once")),
    };
    Ok(RaTlsCertificate {
        spki_der: spki.raw.to_vec(),
        public_key: spki.subject_public_key.data.to_vec(),
        curve,
        evidence,
    })
}

fn check_key_type(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<Curve> {
    let alg = &spki.algorithm;
    if alg.algorithm.as_bytes() != EC_PUBLIC_KEY_OID_DER {
        return Err(RaTlsError::Certificate(format!(
            "the public key's algorithm is {}; RA-TLS certificates use EC P-256 or P-384 keys",
            alg.algorithm
        )));
    }
    let curve = alg.parameters.as_ref().and_then(|p| p.as_oid().ok());
    match curve {
        Some(c) if c.as_bytes() == P256_OID_DER => Ok(Curve::P256),
        Some(c) if c.as_bytes() == P384_OID_DER => Ok(Curve::P384),
        Some(c) => Err(RaTlsError::Certificate(format!(
            "the EC public key is on curve {c}; RA-TLS certificates use P-256 or P-384"
        ))),
        None => Err(RaTlsError::Certificate(
            "the EC public key names no curve; RA-TLS certificates use P-256 or P-384".into(),
        )),
    }
}

/// Decodes exactly one CBOR item from `bytes`.
fn decode_cbor(bytes: &[u8], what: &str) -> Result<Value> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader(&mut rest)
        .map_err(|e| dice_err(format!("{what} is not valid CBOR: {e}")))?;
    if !rest.is_empty() {
        return Err(dice_err(format!(
            "{what} has {} trailing bytes after its CBOR item",
            rest.len()
        )));
    }
    Ok(value)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "an integer",
        Value::Bytes(_) => "a byte string",
        Value::Float(_) => "a float",
        Value::Text(_) => "a text string",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Tag(..) => "a tagged item",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        _ => "an unknown CBOR item",
    }
}

fn parse_dice(value: &[u8]) -> Result<EmbeddedEvidence> {
    let (tag, inner) = match decode_cbor(value, "the extension value")? {
        Value::Tag(tag, inner) => (tag, *inner),
        other => {
            return Err(dice_err(format!(
                "expected CBOR tag {DICE_TEE_QUOTE_CBOR_TAG} (TEE quote), found {}",
                kind(&other)
            )))
        }
    };
    if tag != DICE_TEE_QUOTE_CBOR_TAG {
        return Err(dice_err(format!(
            "CBOR tag {tag}; only tag {DICE_TEE_QUOTE_CBOR_TAG} (TEE quote) is supported"
        )));
    }
    let items = match inner {
        Value::Array(items) => items,
        other => {
            return Err(dice_err(format!(
                "the tagged item is {}, expected an array [quote, claims]",
                kind(&other)
            )))
        }
    };
    let [quote, claims]: [Value; 2] = items.try_into().map_err(|items: Vec<Value>| {
        dice_err(format!(
            "the tagged array has {} items, expected 2 [quote, claims]",
            items.len()
        ))
    })?;
    let quote = match quote {
        Value::Bytes(q) if !q.is_empty() => q,
        Value::Bytes(_) => return Err(dice_err("the quote is empty")),
        other => {
            return Err(dice_err(format!(
                "the quote is {}, expected a byte string",
                kind(&other)
            )))
        }
    };
    let claims = match claims {
        Value::Bytes(c) if !c.is_empty() => c,
        Value::Bytes(_) => return Err(dice_err("the claims are empty")),
        other => {
            return Err(dice_err(format!(
                "the claims are {}, expected a byte string (a serialized CBOR map)",
                kind(&other)
            )))
        }
    };
    let (pubkey_hash, workload) = parse_claims(&claims)?;
    Ok(EmbeddedEvidence::Dice {
        quote,
        claims,
        pubkey_hash,
        workload,
    })
}

fn parse_claims(claims: &[u8]) -> Result<(PubkeyHash, Option<WorkloadIdentity>)> {
    let entries = match decode_cbor(claims, "the claims")? {
        Value::Map(entries) => entries,
        other => {
            return Err(dice_err(format!(
                "the claims are {}, expected a map",
                kind(&other)
            )))
        }
    };
    let mut found = None;
    let mut workload = None;
    for (key, value) in entries {
        let key = match key {
            Value::Text(k) if !k.is_empty() => k,
            other => {
                return Err(dice_err(format!(
                    "a claim's name is {}, expected a non-empty text string",
                    kind(&other)
                )))
            }
        };
        if key == WORKLOAD_CLAIM {
            if workload.is_some() {
                return Err(dice_err(
                    "the claim \"ward-workload\" appears more than once",
                ));
            }
            workload = Some(parse_workload(value)?);
            continue;
        }
        if key != PUBKEY_HASH_CLAIM {
            tracing::debug!(claim = %key, "ignoring an unrecognised claim in RA-TLS evidence");
            continue;
        }
        if found.is_some() {
            return Err(dice_err("the claim \"pubkey-hash\" appears more than once"));
        }
        let entry = match value {
            Value::Bytes(b) if !b.is_empty() => b,
            other => {
                return Err(dice_err(format!(
                    "the claim \"pubkey-hash\" is {}, expected a non-empty byte string (a \
                     serialized CBOR [hash-alg, digest])",
                    kind(&other)
                )))
            }
        };
        found = Some(parse_hash_entry(&entry)?);
    }
    let found = found.ok_or_else(|| {
        dice_err("the claims have no \"pubkey-hash\", so they do not bind the certificate's key")
    })?;
    Ok((found, workload))
}

/// The `"ward-workload"` claim: exactly its five fields, each of its type and size.
fn parse_workload(value: Value) -> Result<WorkloadIdentity> {
    let bad = |problem: String| dice_err(format!("the claim \"ward-workload\" {problem}"));
    let Value::Map(entries) = value else {
        return Err(bad(format!("is {}, expected a map", kind(&value))));
    };
    let (mut measurement, mut signer, mut prod_id, mut svn, mut debug) =
        (None, None, None, None, None);
    for (key, value) in entries {
        let Value::Text(key) = key else {
            return Err(bad(format!(
                "has a key that is {}, expected text",
                kind(&key)
            )));
        };
        let digest = |v: &Value| match v {
            Value::Bytes(b) => <[u8; 32]>::try_from(b.as_slice()).ok(),
            _ => None,
        };
        let number = |v: &Value| match v {
            Value::Integer(i) => u16::try_from(*i).ok(),
            _ => None,
        };
        let slot_ok = match key.as_str() {
            "measurement" => measurement.replace(digest(&value)).is_none(),
            "signer" => signer.replace(digest(&value)).is_none(),
            "isv-prod-id" => prod_id.replace(number(&value)).is_none(),
            "isv-svn" => svn.replace(number(&value)).is_none(),
            "debug" => debug
                .replace(match value {
                    Value::Bool(b) => Some(b),
                    _ => None,
                })
                .is_none(),
            other => return Err(bad(format!("has an unknown field {other:?}"))),
        };
        if !slot_ok {
            return Err(bad(format!("has the field {key:?} more than once")));
        }
    }
    fn need<T>(name: &str, v: Option<Option<T>>, what: &str) -> std::result::Result<T, String> {
        match v {
            Some(Some(v)) => Ok(v),
            Some(None) => Err(format!("has a {name:?} that is not {what}")),
            None => Err(format!("has no {name:?}")),
        }
    }
    Ok(WorkloadIdentity {
        measurement: need("measurement", measurement, "32 bytes").map_err(bad)?,
        signer: need("signer", signer, "32 bytes").map_err(bad)?,
        isv_prod_id: need("isv-prod-id", prod_id, "an integer 0..=65535").map_err(bad)?,
        isv_svn: need("isv-svn", svn, "an integer 0..=65535").map_err(bad)?,
        debug: need("debug", debug, "a boolean").map_err(bad)?,
    })
}

fn parse_hash_entry(entry: &[u8]) -> Result<PubkeyHash> {
    let items = match decode_cbor(entry, "the pubkey-hash entry")? {
        Value::Array(items) => items,
        other => {
            return Err(dice_err(format!(
                "the pubkey-hash entry is {}, expected an array [hash-alg, digest]",
                kind(&other)
            )))
        }
    };
    let [alg, digest]: [Value; 2] = items.try_into().map_err(|items: Vec<Value>| {
        dice_err(format!(
            "the pubkey-hash entry has {} items, expected 2 [hash-alg, digest]",
            items.len()
        ))
    })?;
    let alg_id = match alg {
        Value::Integer(i) => u64::try_from(i).ok(),
        _ => None,
    }
    .ok_or_else(|| dice_err("the pubkey-hash algorithm is not an unsigned integer"))?;
    let alg = PubkeyHashAlg::from_iana_id(alg_id).ok_or_else(|| {
        dice_err(format!(
            "the pubkey-hash algorithm is {alg_id}; supported are 1 (SHA-256), 7 (SHA-384) and \
             8 (SHA-512)"
        ))
    })?;
    let digest = match digest {
        Value::Bytes(d) => d,
        other => {
            return Err(dice_err(format!(
                "the pubkey-hash digest is {}, expected a byte string",
                kind(&other)
            )))
        }
    };
    if digest.len() != alg.digest_len() {
        return Err(dice_err(format!(
            "the pubkey-hash digest is {} bytes, but {alg} digests are {}",
            digest.len(),
            alg.digest_len()
        )));
    }
    Ok(PubkeyHash { alg, digest })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dice_value(quote: Vec<u8>, claims: Vec<u8>) -> Vec<u8> {
        encode_dice_evidence(quote, claims).unwrap()
    }

    #[test]
    fn large_quote_round_trips_through_cbor() {
        // DCAP quotes are several KiB, more than ciborium's scratch buffer.
        let quote: Vec<u8> = (0..9000u32).map(|i| i as u8).collect();
        let claims = encode_claims(b"spki", None).unwrap();
        match parse_dice(&dice_value(quote.clone(), claims.clone())).unwrap() {
            EmbeddedEvidence::Dice {
                quote: q,
                claims: c,
                pubkey_hash,
                workload: None,
            } => {
                assert_eq!(q, quote);
                assert_eq!(c, claims);
                assert_eq!(pubkey_hash.alg, PubkeyHashAlg::Sha256);
                assert_eq!(pubkey_hash.digest, Sha256::digest(b"spki").to_vec());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn claims_encoding_matches_gramine() {
        // a1 6b "pubkey-hash" 58 24 (82 01 58 20 <32 bytes>)
        let claims = encode_claims(b"k", None).unwrap();
        assert_eq!(&claims[..13], b"\xa1\x6bpubkey-hash");
        assert_eq!(&claims[13..19], &[0x58, 0x24, 0x82, 0x01, 0x58, 0x20]);
        assert_eq!(claims.len(), 19 + 32);
        let ev = dice_value(vec![1, 2, 3], claims);
        // tag 60000 = d9 ea60, array(2) = 82
        assert_eq!(&ev[..4], &[0xd9, 0xea, 0x60, 0x82]);
    }

    #[test]
    fn malformed_dice_values_are_errors() {
        let claims = encode_claims(b"k", None).unwrap();
        let good = dice_value(vec![1], claims.clone());
        let mut trailing = good.clone();
        trailing.push(0);
        let other_tag = to_cbor(&Value::Tag(
            60001,
            Box::new(Value::Array(vec![
                Value::Bytes(vec![1]),
                Value::Bytes(claims.clone()),
            ])),
        ))
        .unwrap();
        let three = to_cbor(&Value::Tag(
            60000,
            Box::new(Value::Array(vec![
                Value::Bytes(vec![1]),
                Value::Bytes(claims.clone()),
                Value::Null,
            ])),
        ))
        .unwrap();
        let no_pubkey_hash = dice_value(
            vec![1],
            to_cbor(&Value::Map(vec![(
                Value::Text("nonce".into()),
                Value::Bytes(vec![1]),
            )]))
            .unwrap(),
        );
        let bad_alg = dice_value(
            vec![1],
            to_cbor(&Value::Map(vec![(
                Value::Text(PUBKEY_HASH_CLAIM.into()),
                Value::Bytes(
                    to_cbor(&Value::Array(vec![
                        Value::Integer(2u64.into()),
                        Value::Bytes(vec![0; 32]),
                    ]))
                    .unwrap(),
                ),
            )]))
            .unwrap(),
        );
        let short_digest = dice_value(
            vec![1],
            to_cbor(&Value::Map(vec![(
                Value::Text(PUBKEY_HASH_CLAIM.into()),
                Value::Bytes(
                    to_cbor(&Value::Array(vec![
                        Value::Integer(7u64.into()),
                        Value::Bytes(vec![0; 32]),
                    ]))
                    .unwrap(),
                ),
            )]))
            .unwrap(),
        );
        let duplicate = dice_value(
            vec![1],
            to_cbor(&Value::Map(vec![
                (
                    Value::Text(PUBKEY_HASH_CLAIM.into()),
                    Value::Bytes(claims[13 + 2..].to_vec()),
                ),
                (
                    Value::Text(PUBKEY_HASH_CLAIM.into()),
                    Value::Bytes(claims[13 + 2..].to_vec()),
                ),
            ]))
            .unwrap(),
        );
        assert!(parse_dice(&good).is_ok());
        for (name, bad) in [
            ("empty", vec![]),
            ("garbage", vec![0xff, 0x00]),
            ("truncated", good[..good.len() - 3].to_vec()),
            ("trailing", trailing),
            ("other tag", other_tag),
            ("three items", three),
            ("no pubkey-hash", no_pubkey_hash),
            ("bad alg", bad_alg),
            ("short digest", short_digest),
            ("duplicate", duplicate),
        ] {
            let err = parse_dice(&bad).expect_err(name);
            assert!(
                matches!(err, RaTlsError::MalformedEvidence { .. }),
                "{name}: {err}"
            );
        }
    }
}
