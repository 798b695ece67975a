//! Verifying the evidence in an RA-TLS certificate, and the whole certificate against a policy.

use crate::cert::parse_certificate;
use crate::error::{RaTlsError, Result};
use std::fmt;
use ward_attest::dcap::{Collateral, DcapVerifier};
use ward_attest::quote::Quote;
use ward_attest::sim::{is_sim_quote, SimQuote};
use ward_attest::{Policy, VerifiedClaims};

/// Verifies a quote and says what it proves. It does not judge the claims: a
/// [`ward_attest::Policy`] does.
pub trait EvidenceVerifier: Send + Sync + fmt::Debug {
    /// Verifies `quote` and returns its claims.
    fn verify(&self, quote: &[u8]) -> Result<VerifiedClaims>;
}

/// Verifies ward's simulated quotes ([`ward_attest::sim`]).
///
/// A simulated quote proves only that the holder of a simulated platform key signed it; the
/// policy must explicitly allow simulation and trust that key.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimVerifier;

impl SimVerifier {
    /// A verifier of simulated quotes.
    pub fn new() -> Self {
        SimVerifier
    }
}

impl EvidenceVerifier for SimVerifier {
    fn verify(&self, quote: &[u8]) -> Result<VerifiedClaims> {
        SimQuote::parse(quote)
            .and_then(|q| q.verify())
            .map_err(RaTlsError::Evidence)
    }
}

/// Where a [`DcapEvidenceVerifier`] gets collateral for a quote (typically from a PCCS, or a
/// cache of it, by the FMSPC in the quote's PCK certificate).
pub type CollateralSource =
    Box<dyn Fn(&Quote) -> ward_attest::Result<Collateral> + Send + Sync + 'static>;

/// The caller's clock, in unix seconds: the time at which collateral must be valid.
pub type Clock = Box<dyn Fn() -> u64 + Send + Sync + 'static>;

/// Verifies Intel SGX/TDX DCAP quotes offline against the pinned Intel root
/// ([`ward_attest::dcap::DcapVerifier`]), with collateral and a clock the caller supplies.
///
/// This library never reads the wall clock for verification; the clock is the caller's.
pub struct DcapEvidenceVerifier {
    engine: DcapVerifier,
    collateral: CollateralSource,
    clock: Clock,
}

impl fmt::Debug for DcapEvidenceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DcapEvidenceVerifier")
            .field("root", &ward_attest::dcap::INTEL_ROOT_CA_SHA256)
            .finish_non_exhaustive()
    }
}

impl DcapEvidenceVerifier {
    /// A verifier that asks `collateral` for each quote's collateral and `clock` for the time.
    pub fn new(
        collateral: impl Fn(&Quote) -> ward_attest::Result<Collateral> + Send + Sync + 'static,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Self {
        DcapEvidenceVerifier {
            engine: DcapVerifier::intel(),
            collateral: Box::new(collateral),
            clock: Box::new(clock),
        }
    }

    /// A verifier that uses the same collateral for every quote (one platform, or tests).
    pub fn with_collateral(
        collateral: Collateral,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Self {
        Self::new(move |_| Ok(collateral.clone()), clock)
    }
}

impl EvidenceVerifier for DcapEvidenceVerifier {
    fn verify(&self, quote: &[u8]) -> Result<VerifiedClaims> {
        let parsed = Quote::parse(quote).map_err(RaTlsError::Evidence)?;
        let collateral = (self.collateral)(&parsed).map_err(RaTlsError::Evidence)?;
        let now = (self.clock)();
        self.engine
            .verify(quote, &collateral, now)
            .map_err(RaTlsError::Evidence)
    }
}

/// Routes each quote to the simulated or the DCAP verifier by its form
/// ([`ward_attest::sim::is_sim_quote`]); a kind without a configured verifier is refused.
#[derive(Debug, Default)]
pub struct AnyVerifier {
    /// Verifier for simulated quotes; `None` refuses them.
    pub sim: Option<SimVerifier>,
    /// Verifier for DCAP quotes; `None` refuses them.
    pub dcap: Option<DcapEvidenceVerifier>,
}

impl AnyVerifier {
    /// Routes to the given verifiers.
    pub fn new(sim: Option<SimVerifier>, dcap: Option<DcapEvidenceVerifier>) -> Self {
        AnyVerifier { sim, dcap }
    }
}

impl EvidenceVerifier for AnyVerifier {
    fn verify(&self, quote: &[u8]) -> Result<VerifiedClaims> {
        if is_sim_quote(quote) {
            match &self.sim {
                Some(v) => v.verify(quote),
                None => Err(RaTlsError::NoVerifier(
                    "simulated evidence (ward's simulated TEE)",
                )),
            }
        } else {
            match &self.dcap {
                Some(v) => v.verify(quote),
                None => Err(RaTlsError::NoVerifier(
                    "DCAP (SGX/TDX) evidence: no collateral source is configured",
                )),
            }
        }
    }
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
    let cert = parse_certificate(der)?;
    let claims = verifier.verify(cert.quote())?;
    cert.check_binding(&claims.report_data)?;
    policy.evaluate(&claims).map_err(RaTlsError::Refused)?;
    Ok(claims)
}
