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

/// DER of the Intel SGX Root CA, the single trust anchor of SGX and TDX attestation.
const INTEL_ROOT_CA_DER: &[u8] = include_bytes!("intel_sgx_root_ca.der");
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
        let j: CollateralJson = serde_json::from_str(text)
            .map_err(|e| Error::Collateral(format!("not QuoteCollateralV3 JSON: {e}")))?;
        let unhex = |field: &str, v: &str| {
            hex::decode(v.trim())
                .map_err(|e| Error::Collateral(format!("field `{field}` is not hex: {e}")))
        };
        // The signed TCB info body (PCS also serves it wrapped as {"tcbInfo": …}).
        let tcb: serde_json::Value = serde_json::from_str(&j.tcb_info).map_err(|e| {
            Error::Collateral(format!("field `tcb_info` is not TCB info JSON: {e}"))
        })?;
        let fmspc_text = tcb
            .get("fmspc")
            .or_else(|| tcb.get("tcbInfo").and_then(|t| t.get("fmspc")))
            .and_then(|f| f.as_str())
            .ok_or_else(|| Error::Collateral("field `tcb_info` has no `fmspc`".into()))?;
        let mut fmspc = [0u8; 6];
        hex::decode_to_slice(fmspc_text, &mut fmspc).map_err(|_| {
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
        Collateral::from_json(&text)
            .map_err(|e| Error::Collateral(format!("{}: {e}", path.display())))
    }

    /// The platform (FMSPC) this collateral's TCB info is for.
    pub fn fmspc(&self) -> [u8; 6] {
        self.fmspc
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
        let raw = &quote[..parsed.len()];
        let verifier = dcap_qvl::verify::QuoteVerifier::new(self.root_ca_der.clone())
            .allow_debug(true)
            .allow_service_td(true);
        let claims = verifier
            .verify_with_policy(raw, collateral.inner.clone(), now_unix, &AcceptAll)
            .map_err(|e| engine_error(format!("{e:#}"), now_unix))?;
        // dcap-qvl checks each piece at `now`; ward refuses the whole window's edges too.
        if now_unix > claims.earliest_expiration_date {
            return Err(Error::Collateral(format!(
                "expired: the earliest-expiring piece of collateral expired at {} (unix {}), before the verification time {}; fetch fresh collateral",
                rfc3339(claims.earliest_expiration_date),
                claims.earliest_expiration_date,
                rfc3339(now_unix)
            )));
        }
        if now_unix < claims.latest_issue_date {
            return Err(Error::Collateral(format!(
                "not yet valid: a piece of collateral was issued at {} (unix {}), after the verification time {}; check the clock",
                rfc3339(claims.latest_issue_date),
                claims.latest_issue_date,
                rfc3339(now_unix)
            )));
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

/// Turns the engine's message into an error that says what to do: stale or future-dated
/// collateral is an operator problem (fetch fresh collateral, check the clock), not tampering.
fn engine_error(detail: String, now: u64) -> Error {
    let at = format!("verification time {} (unix {now})", rfc3339(now));
    if detail.contains("Expired") || detail.contains("expired") {
        Error::Collateral(format!(
            "expired at the {at}: {detail}; fetch current collateral from your PCCS/Intel PCS (it is valid ~30 days), or pass an earlier time for a historical check"
        ))
    } else if detail.contains("NotValidYet") || detail.contains("in the future") {
        Error::Collateral(format!(
            "not yet valid at the {at}: {detail}; check the clock"
        ))
    } else {
        Error::Verification {
            step: "DCAP quote verification",
            detail,
        }
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

/// Formats unix seconds as RFC 3339 UTC.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
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
