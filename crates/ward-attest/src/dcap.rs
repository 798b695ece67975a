//! Offline Intel SGX/TDX DCAP verification.
//!
//! The engine is the `dcap-qvl` crate (pure Rust, MIT): it checks the quote signature by the
//! attestation key, the QE report signature by the PCK key and the QE report-data binding, the
//! PCK chain and the TCB-info/QE-identity signing chains up to the root, the CRLs, the TCB info
//! and QE identity signatures and validity, the FMSPC match, and derives the TCB status and
//! advisories from the PCK certificate's SVNs (TDX module identities included). ward adds what a
//! key holder needs around it: the root pinned by its SHA-256, the quote parsed into typed claims
//! at the boundary, the whole collateral validity window checked against the caller's clock,
//! and claims for a [`crate::Policy`] to judge — debug and service-TD decisions are left to the
//! policy rather than refused inside the engine.

use crate::claims::{SgxIdentity, TcbStatus, TdxIdentity, TeeKind, VerifiedClaims};
use crate::error::{io_err, Error, Result};
use crate::quote::{Quote, QuoteBody};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;

pub use crate::time::rfc3339;

/// DER of the Intel SGX Root CA, the single trust anchor of SGX and TDX attestation.
const INTEL_ROOT_CA_DER: &[u8] = include_bytes!("intel_sgx_root_ca.der");
/// The QE vendor ID of Intel's quoting enclave, the only one whose quotes ward verifies
/// (`939a7233-f79c-4ca9-940a-0db3957f0607`, header bytes 12..28).
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];

/// SHA-256 of [`INTEL_ROOT_CA_DER`], pinned.
pub const INTEL_ROOT_CA_SHA256: &str =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

/// Intel's collateral for one platform (FMSPC): TCB info, QE identity, CRLs and their chains.
#[derive(Clone)]
pub struct Collateral {
    inner: dcap_qvl::QuoteCollateralV3,
    fmspc: [u8; 6],
}

/// The QuoteCollateralV3 JSON layout with binary fields in hex (dcap-qvl's and PCCS's spelling).
#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct CollateralJson {
    pck_crl_issuer_chain: String,
    root_ca_crl: String,
    pck_crl: String,
    tcb_info_issuer_chain: String,
    tcb_info: String,
    tcb_info_signature: String,
    qe_identity_issuer_chain: String,
    qe_identity: String,
    qe_identity_signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pck_certificate_chain: Option<String>,
}

/// The pieces of collateral as a PCCS or Intel PCS serves them.
#[derive(Debug, Clone)]
pub struct CollateralParts {
    /// PEM chain that issued the PCK CRL (the `SGX-PCK-CRL-Issuer-Chain` header).
    pub pck_crl_issuer_chain: String,
    /// DER of the Intel SGX Root CA's CRL.
    pub root_ca_crl: Vec<u8>,
    /// DER of the PCK CRL (Processor or Platform CA, as the PCK certificate says).
    pub pck_crl: Vec<u8>,
    /// PEM chain that signed the TCB info (`TCB-Info-Issuer-Chain` header).
    pub tcb_info_issuer_chain: String,
    /// The exact signed text of the `tcbInfo` object.
    pub tcb_info: String,
    /// Its ECDSA signature, r||s.
    pub tcb_info_signature: Vec<u8>,
    /// PEM chain that signed the QE identity (`SGX-Enclave-Identity-Issuer-Chain` header).
    pub qe_identity_issuer_chain: String,
    /// The exact signed text of the `enclaveIdentity` object.
    pub qe_identity: String,
    /// Its ECDSA signature, r||s.
    pub qe_identity_signature: Vec<u8>,
}

impl Collateral {
    /// Parses QuoteCollateralV3 JSON (CRLs and signatures as hex).
    pub fn from_json(text: &str) -> Result<Collateral> {
        let j: CollateralJson = serde_json::from_str(text).map_err(|e| Error::CollateralField {
            field: "(document)",
            expected: "QuoteCollateralV3 JSON",
            source: e.into(),
        })?;
        let unhex = |field: &'static str, v: &str| {
            hex::decode(v.trim()).map_err(|e| Error::CollateralField {
                field,
                expected: "hex",
                source: e.into(),
            })
        };
        let fmspc_text = signed_body(&j.tcb_info, "tcb_info", "tcbInfo")?
            .fmspc
            .ok_or_else(|| Error::Collateral("field `tcb_info` has no `fmspc`".into()))?;
        let mut fmspc = [0u8; 6];
        hex::decode_to_slice(&fmspc_text, &mut fmspc).map_err(|_| {
            Error::Collateral(format!("TCB info FMSPC {fmspc_text:?} is not 6 hex bytes"))
        })?;
        Ok(Collateral {
            inner: dcap_qvl::QuoteCollateralV3 {
                root_ca_crl: unhex("root_ca_crl", &j.root_ca_crl)?,
                pck_crl: unhex("pck_crl", &j.pck_crl)?,
                tcb_info_signature: unhex("tcb_info_signature", &j.tcb_info_signature)?,
                qe_identity_signature: unhex("qe_identity_signature", &j.qe_identity_signature)?,
                pck_crl_issuer_chain: j.pck_crl_issuer_chain,
                tcb_info_issuer_chain: j.tcb_info_issuer_chain,
                tcb_info: j.tcb_info,
                qe_identity_issuer_chain: j.qe_identity_issuer_chain,
                qe_identity: j.qe_identity,
                pck_certificate_chain: j.pck_certificate_chain,
            },
            fmspc,
        })
    }

    /// When each piece (TCB info, QE identity, PCK CRL, root CA CRL) was issued and when it is
    /// due to be replaced, as the pieces themselves say (their signatures are the engine's job).
    pub fn validity(&self) -> Result<Validity> {
        let c = &self.inner;
        let json = |text: &str, field, wrapper, piece| -> Result<PieceValidity> {
            let body = signed_body(text, field, wrapper)?;
            let time = |value: Option<String>, name: &str| {
                let value = value
                    .ok_or_else(|| Error::Collateral(format!("field `{field}` has no `{name}`")))?;
                crate::time::parse_rfc3339(&value).ok_or_else(|| {
                    Error::Collateral(format!(
                        "field `{field}`: `{name}` {value:?} is not an RFC 3339 time"
                    ))
                })
            };
            Ok(PieceValidity {
                piece,
                issued: time(body.issue_date, "issueDate")?,
                next_update: time(body.next_update, "nextUpdate")?,
            })
        };
        let crl = |der: &[u8], field, piece| -> Result<PieceValidity> {
            use x509_cert::der::Decode;
            let crl: x509_cert::crl::CertificateList =
                x509_cert::crl::CertificateList::from_der(der).map_err(|e| {
                    Error::CollateralField {
                        field,
                        expected: "a DER X.509 CRL",
                        source: e.into(),
                    }
                })?;
            let tbs = crl.tbs_cert_list;
            let next = tbs.next_update.ok_or_else(|| {
                Error::Collateral(format!("field `{field}`: CRL has no nextUpdate"))
            })?;
            Ok(PieceValidity {
                piece,
                issued: tbs.this_update.to_unix_duration().as_secs(),
                next_update: next.to_unix_duration().as_secs(),
            })
        };
        Ok(Validity {
            pieces: [
                json(&c.tcb_info, "tcb_info", "tcbInfo", CollateralPiece::TcbInfo)?,
                json(
                    &c.qe_identity,
                    "qe_identity",
                    "enclaveIdentity",
                    CollateralPiece::QeIdentity,
                )?,
                crl(&c.pck_crl, "pck_crl", CollateralPiece::PckCrl)?,
                crl(&c.root_ca_crl, "root_ca_crl", CollateralPiece::RootCaCrl)?,
            ],
        })
    }

    /// Assembles collateral from fetched pieces (checks that the TCB info names an FMSPC).
    pub fn from_parts(p: CollateralParts) -> Result<Collateral> {
        let json = CollateralJson {
            pck_crl_issuer_chain: p.pck_crl_issuer_chain,
            root_ca_crl: hex::encode(p.root_ca_crl),
            pck_crl: hex::encode(p.pck_crl),
            tcb_info_issuer_chain: p.tcb_info_issuer_chain,
            tcb_info: p.tcb_info,
            tcb_info_signature: hex::encode(p.tcb_info_signature),
            qe_identity_issuer_chain: p.qe_identity_issuer_chain,
            qe_identity: p.qe_identity,
            qe_identity_signature: hex::encode(p.qe_identity_signature),
            pck_certificate_chain: None,
        };
        Collateral::from_json(&serde_json::to_string(&json).expect("serialisable"))
    }

    /// Serialises as QuoteCollateralV3 JSON (the format [`Collateral::from_json`] reads).
    pub fn to_json(&self) -> String {
        let c = &self.inner;
        let json = CollateralJson {
            pck_crl_issuer_chain: c.pck_crl_issuer_chain.clone(),
            root_ca_crl: hex::encode(&c.root_ca_crl),
            pck_crl: hex::encode(&c.pck_crl),
            tcb_info_issuer_chain: c.tcb_info_issuer_chain.clone(),
            tcb_info: c.tcb_info.clone(),
            tcb_info_signature: hex::encode(&c.tcb_info_signature),
            qe_identity_issuer_chain: c.qe_identity_issuer_chain.clone(),
            qe_identity: c.qe_identity.clone(),
            qe_identity_signature: hex::encode(&c.qe_identity_signature),
            pck_certificate_chain: c.pck_certificate_chain.clone(),
        };
        serde_json::to_string_pretty(&json).expect("serialisable")
    }

    /// Reads a QuoteCollateralV3 JSON file.
    pub fn load(path: &Path) -> Result<Collateral> {
        let text = std::fs::read_to_string(path)
            .map_err(io_err(format!("reading collateral {}", path.display())))?;
        Collateral::from_json(&text).map_err(|e| Error::CollateralFile {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// The platform (FMSPC) this collateral's TCB info is for.
    pub fn fmspc(&self) -> [u8; 6] {
        self.fmspc
    }
}

/// The fields of a signed TCB info or QE identity body that ward reads itself.
#[derive(Deserialize)]
struct SignedBody {
    #[serde(rename = "issueDate")]
    issue_date: Option<String>,
    #[serde(rename = "nextUpdate")]
    next_update: Option<String>,
    fmspc: Option<String>,
}

/// The body of a signed TCB info or QE identity, bare or wrapped (`{"tcbInfo": …}`, as PCS
/// serves it).
fn signed_body(text: &str, field: &'static str, wrapper: &str) -> Result<SignedBody> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::CollateralField {
            field,
            expected: "JSON",
            source: e.into(),
        })?;
    let body = value.get(wrapper).cloned().unwrap_or(value);
    serde_json::from_value(body).map_err(|e| Error::CollateralField {
        field,
        expected: "a signed TCB info or QE identity body",
        source: e.into(),
    })
}

/// One piece of DCAP collateral, as messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CollateralPiece {
    /// The platform's TCB info.
    TcbInfo,
    /// The quoting enclave's identity.
    QeIdentity,
    /// The PCK certificate revocation list.
    PckCrl,
    /// The Intel root CA's revocation list.
    RootCaCrl,
    /// Some part of the set (certificates included), as the engine reports it.
    Earliest,
}

impl std::fmt::Display for CollateralPiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CollateralPiece::TcbInfo => "TCB info",
            CollateralPiece::QeIdentity => "QE identity",
            CollateralPiece::PckCrl => "PCK CRL",
            CollateralPiece::RootCaCrl => "root CA CRL",
            CollateralPiece::Earliest => "earliest-expiring piece of collateral",
        })
    }
}

/// When one piece of collateral is valid, in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceValidity {
    /// The piece.
    pub piece: CollateralPiece,
    /// `issueDate` (JSON) or `thisUpdate` (CRL).
    pub issued: u64,
    /// `nextUpdate`.
    pub next_update: u64,
}

/// When a set of collateral is valid: each of its four dated pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    /// TCB info, QE identity, PCK CRL, root CA CRL.
    pub pieces: [PieceValidity; 4],
}

impl Validity {
    /// The piece due to be replaced first: the set stops being current then.
    pub fn earliest_next_update(&self) -> PieceValidity {
        *self
            .pieces
            .iter()
            .min_by_key(|p| p.next_update)
            .expect("four pieces")
    }

    /// The piece issued last: the set is valid only from then.
    pub fn latest_issued(&self) -> PieceValidity {
        *self
            .pieces
            .iter()
            .max_by_key(|p| p.issued)
            .expect("four pieces")
    }

    /// Checks that `at` (unix seconds) lies inside every piece's window.
    pub fn check(&self, at: u64) -> Result<()> {
        let first = self.earliest_next_update();
        if at > first.next_update {
            return Err(Error::CollateralExpired {
                piece: first.piece,
                expired_at: first.next_update,
                at,
            });
        }
        let last = self.latest_issued();
        if at < last.issued {
            return Err(Error::CollateralNotYetValid {
                piece: last.piece,
                issued_at: last.issued,
                at,
            });
        }
        Ok(())
    }
}

/// Verifies DCAP quotes against the pinned Intel SGX Root CA.
pub struct DcapVerifier {
    root_ca_der: Vec<u8>,
}

impl Default for DcapVerifier {
    fn default() -> Self {
        DcapVerifier::intel()
    }
}

impl DcapVerifier {
    /// A verifier anchored at the Intel SGX Root CA (SHA-256 `44a0196b…74d3`).
    pub fn intel() -> DcapVerifier {
        debug_assert_eq!(
            hex::encode(Sha256::digest(INTEL_ROOT_CA_DER)),
            INTEL_ROOT_CA_SHA256
        );
        DcapVerifier {
            root_ca_der: INTEL_ROOT_CA_DER.to_vec(),
        }
    }

    /// Verifies `quote` (trailing bytes after the signature data are ignored) with `collateral`
    /// at `now_unix` seconds. Returns the claims; it does not judge them (see [`crate::Policy`]).
    pub fn verify(
        &self,
        quote: &[u8],
        collateral: &Collateral,
        now_unix: u64,
    ) -> Result<VerifiedClaims> {
        let parsed = Quote::parse(quote)?;
        // Before any signature: the QE report only proves *a* quoting enclave signed, and the
        // QE identity in the collateral is Intel's, so a quote naming another vendor's QE is
        // not evidence ward can judge (dcap-qvl does not check this field).
        if parsed.header.qe_vendor_id != INTEL_QE_VENDOR_ID {
            return Err(Error::QeVendor {
                found: parsed.header.qe_vendor_id,
            });
        }
        let raw = &quote[..parsed.len()];
        // Dated pieces first, so stale collateral is named as such rather than as the engine's
        // first failing check.
        collateral.validity()?.check(now_unix)?;
        let verifier = dcap_qvl::verify::QuoteVerifier::new(self.root_ca_der.clone())
            .allow_debug(true)
            .allow_service_td(true);
        let claims = verifier
            .verify_with_policy(raw, collateral.inner.clone(), now_unix, &AcceptAll)
            .map_err(|e| Error::Dcap { source: e.into() })?;
        // dcap-qvl checks each piece at `now`; ward refuses the whole window's edges too
        // (certificates included).
        if now_unix > claims.earliest_expiration_date {
            return Err(Error::CollateralExpired {
                piece: CollateralPiece::Earliest,
                expired_at: claims.earliest_expiration_date,
                at: now_unix,
            });
        }
        if now_unix < claims.latest_issue_date {
            return Err(Error::CollateralNotYetValid {
                piece: CollateralPiece::Earliest,
                issued_at: claims.latest_issue_date,
                at: now_unix,
            });
        }
        let tcb_status =
            TcbStatus::from_intel(&claims.tcb.status.to_string()).ok_or_else(|| {
                Error::Unsupported(format!("TCB status {:?}", claims.tcb.status.to_string()))
            })?;
        let fmspc: [u8; 6] = claims.platform.pck.fmspc;
        Ok(claims_from_quote(
            &parsed,
            tcb_status,
            claims.tcb.advisory_ids.clone(),
            fmspc,
            claims.earliest_expiration_date,
        ))
    }
}

fn claims_from_quote(
    quote: &Quote,
    tcb_status: TcbStatus,
    advisory_ids: Vec<String>,
    fmspc: [u8; 6],
    expires: u64,
) -> VerifiedClaims {
    let (tee, sgx, tdx) = match &quote.body {
        QuoteBody::Sgx(r) => (
            TeeKind::Sgx,
            Some(SgxIdentity {
                mr_enclave: r.mr_enclave,
                mr_signer: r.mr_signer,
                isv_prod_id: r.isv_prod_id,
                isv_svn: r.isv_svn,
                attributes: r.attributes,
                debug: r.debug(),
            }),
            None,
        ),
        QuoteBody::Td(r) => (
            TeeKind::Tdx,
            None,
            Some(TdxIdentity {
                mr_td: r.mr_td,
                rtmr: r.rtmr,
                mr_config_id: r.mr_config_id,
                mr_owner: r.mr_owner,
                mr_owner_config: r.mr_owner_config,
                mr_seam: r.mr_seam,
                mr_servicetd: r.mr_servicetd,
                td_attributes: r.td_attributes,
                debug: r.debug(),
            }),
        ),
    };
    VerifiedClaims {
        tee,
        sgx,
        tdx,
        report_data: *quote.report_data(),
        tcb_status: Some(tcb_status),
        advisory_ids,
        fmspc: Some(fmspc),
        collateral_expires: Some(expires),
        sim_platform_key: None,
        workload: None,
    }
}

/// dcap-qvl's policy hook, accepting everything: ward's own [`crate::Policy`] decides.
struct AcceptAll;

impl dcap_qvl::Policy for AcceptAll {
    // dcap-qvl's trait speaks anyhow; nothing of it escapes this crate.
    fn validate(&self, _: &dcap_qvl::QuoteClaims) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pinned_root() {
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(super::INTEL_ROOT_CA_DER)),
            super::INTEL_ROOT_CA_SHA256
        );
        assert_eq!(super::rfc3339(1749945600), "2025-06-15T00:00:00Z");
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
