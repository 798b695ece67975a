//! Verifying evidence of any kind ward knows: the [`EvidenceVerifier`] trait, one verifier per
//! TEE kind ([`SimVerifier`], [`DcapEvidenceVerifier`]), and [`AnyVerifier`], which routes each
//! quote to the verifier for its kind.
//!
//! DCAP verification needs Intel's collateral for the quote's platform; it comes from a
//! [`CollateralSource`] the caller supplies (the `ward-pccs` crate implements one that fetches
//! from a PCCS and caches on disk). Nothing here does network I/O, and nothing reads the wall
//! clock: the time comes from the caller's [`Clock`].

use crate::dcap::{Collateral, DcapVerifier};
use crate::quote::Quote;
use crate::sim::{is_sim_quote, SimQuote};
use crate::{Error, Result, TeeKind, VerifiedClaims};
use std::fmt;

/// Verifies a quote and says what it proves. It does not judge the claims: a
/// [`crate::Policy`] does.
pub trait EvidenceVerifier: Send + Sync + fmt::Debug {
    /// Verifies `quote` and returns its claims.
    fn verify(&self, quote: &[u8]) -> Result<VerifiedClaims>;
}

/// Where a [`DcapEvidenceVerifier`] gets collateral for a quote: a PCCS (or a cache of it), by
/// the FMSPC in the quote's PCK certificate, or fixed collateral for one platform.
pub trait CollateralSource: Send + Sync {
    /// The collateral that verifies `quote` at unix time `now`.
    ///
    /// A failure is the source's own error; the verifier wraps it in
    /// [`Error::CollateralSource`], keeping it as the cause.
    fn collateral_for(
        &self,
        quote: &Quote,
        now: u64,
    ) -> std::result::Result<Collateral, Box<dyn std::error::Error + Send + Sync>>;
}

/// The same collateral for every quote (one platform, or tests).
impl CollateralSource for Collateral {
    fn collateral_for(
        &self,
        _quote: &Quote,
        _now: u64,
    ) -> std::result::Result<Collateral, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.clone())
    }
}

/// The caller's clock, in unix seconds: the time at which collateral must be valid.
pub type Clock = Box<dyn Fn() -> u64 + Send + Sync + 'static>;

/// Verifies ward's simulated quotes ([`crate::sim`]).
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
        SimQuote::parse(quote).and_then(|q| q.verify())
    }
}

/// Verifies Intel SGX/TDX DCAP quotes offline against the pinned Intel root
/// ([`DcapVerifier`]), with collateral from a [`CollateralSource`] and the caller's clock.
pub struct DcapEvidenceVerifier {
    engine: DcapVerifier,
    collateral: Box<dyn CollateralSource>,
    clock: Clock,
}

impl fmt::Debug for DcapEvidenceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DcapEvidenceVerifier")
            .field("root", &crate::dcap::INTEL_ROOT_CA_SHA256)
            .finish_non_exhaustive()
    }
}

impl DcapEvidenceVerifier {
    /// A verifier that asks `collateral` for each quote's collateral and `clock` for the time.
    pub fn new(
        collateral: impl CollateralSource + 'static,
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
        Self::new(collateral, clock)
    }
}

impl EvidenceVerifier for DcapEvidenceVerifier {
    fn verify(&self, quote: &[u8]) -> Result<VerifiedClaims> {
        let parsed = Quote::parse(quote)?;
        let now = (self.clock)();
        let collateral = self
            .collateral
            .collateral_for(&parsed, now)
            .map_err(|source| Error::CollateralSource { source })?;
        self.engine.verify(quote, &collateral, now)
    }
}

/// The kind of evidence a quote is, by its form: which verifier [`AnyVerifier`] routes it to.
pub fn evidence_kind(quote: &[u8]) -> TeeKind {
    if is_sim_quote(quote) {
        TeeKind::Sim
    } else {
        // SGX or TDX: the DCAP verifier tells them apart (and refuses anything else).
        match Quote::parse(quote) {
            Ok(q) if q.tee() == TeeKind::Tdx => TeeKind::Tdx,
            _ => TeeKind::Sgx,
        }
    }
}

/// Routes each quote to the simulated or the DCAP verifier by its form
/// ([`crate::sim::is_sim_quote`]); a kind without a configured verifier is refused with
/// [`Error::NoVerifier`].
///
/// One constructor per set of TEE kinds: [`AnyVerifier::sim`], [`AnyVerifier::dcap`],
/// [`AnyVerifier::sim_and_dcap`].
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

    /// Simulated evidence only (development); DCAP quotes are refused.
    pub fn sim() -> Self {
        AnyVerifier::new(Some(SimVerifier), None)
    }

    /// SGX/TDX DCAP evidence only, with collateral from `collateral` as of `clock`.
    pub fn dcap(
        collateral: impl CollateralSource + 'static,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Self {
        AnyVerifier::new(None, Some(DcapEvidenceVerifier::new(collateral, clock)))
    }

    /// Both simulated and DCAP evidence.
    pub fn sim_and_dcap(
        collateral: impl CollateralSource + 'static,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Self {
        AnyVerifier::new(
            Some(SimVerifier),
            Some(DcapEvidenceVerifier::new(collateral, clock)),
        )
    }
}

impl EvidenceVerifier for AnyVerifier {
    fn verify(&self, quote: &[u8]) -> Result<VerifiedClaims> {
        if is_sim_quote(quote) {
            match &self.sim {
                Some(v) => v.verify(quote),
                None => Err(Error::NoVerifier(
                    "simulated evidence (ward's simulated TEE)",
                )),
            }
        } else {
            match &self.dcap {
                Some(v) => v.verify(quote),
                None => Err(Error::NoVerifier(
                    "DCAP (SGX/TDX) evidence: no collateral source is configured",
                )),
            }
        }
    }
}

/// A function from a quote and the verification time to its collateral.
impl<F> CollateralSource for F
where
    F: Fn(&Quote, u64) -> std::result::Result<Collateral, Box<dyn std::error::Error + Send + Sync>>
        + Send
        + Sync,
{
    fn collateral_for(
        &self,
        quote: &Quote,
        now: u64,
    ) -> std::result::Result<Collateral, Box<dyn std::error::Error + Send + Sync>> {
        self(quote, now)
    }
}
