//! Verifying a whole RA-TLS certificate against a policy. The evidence verifiers themselves
//! live in [`ward_attest::verify`].

use crate::cert::parse_certificate;
use crate::error::{RaTlsError, Result};
use ward_attest::{EvidenceVerifier, Policy, VerifiedClaims};

/// Verifies an RA-TLS certificate's evidence and its binding to the certificate's key, without
/// any policy: what the certificate proves.
pub fn verify_evidence(der: &[u8], verifier: &dyn EvidenceVerifier) -> Result<VerifiedClaims> {
    let cert = parse_certificate(der)?;
    let claims = verifier
        .verify(cert.quote())
        .map_err(RaTlsError::Evidence)?;
    let mut claims = claims;
    cert.check_binding(&claims.report_data)?;
    // Bound by the report data just checked (with ward's tag), so now a verified claim.
    claims.workload = cert.workload().copied();
    Ok(claims)
}

/// Verifies an RA-TLS certificate: parses it, verifies its evidence with `verifier`, checks that
/// the evidence binds the certificate's key, and applies `policy`.
///
/// A policy refusal is [`RaTlsError::Refused`], carrying the [`ward_attest::Refusal`] to show
/// or log. On success, returns what the evidence proves.
pub fn verify_certificate(
    der: &[u8],
    verifier: &dyn EvidenceVerifier,
    policy: &Policy,
) -> Result<VerifiedClaims> {
    let claims = verify_evidence(der, verifier)?;
    policy.evaluate(&claims).map_err(RaTlsError::Refused)?;
    Ok(claims)
}
