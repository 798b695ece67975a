//! Evidence verifiers wired to a PCCS in one call: what a relying party (the provisioning
//! server, `ward attest verify --pccs`) needs to verify SGX/TDX DCAP quotes as of now.

use crate::{Cache, CachingSource, Pccs, Result};
use std::path::Path;
use ward_attest::{AnyVerifier, DcapEvidenceVerifier};

/// The system clock in unix seconds (0 if it is before 1970, which no collateral accepts).
pub fn system_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A DCAP verifier with collateral fetched from the PCCS/PCS at `url` and cached in
/// `cache_dir` (created when first written), verifying as of the system clock.
pub fn dcap_verifier(url: &str, cache_dir: &Path) -> Result<DcapEvidenceVerifier> {
    let source = CachingSource::new(Pccs::new(url)?, Cache::new(cache_dir));
    Ok(DcapEvidenceVerifier::new(source, system_clock))
}

/// A verifier of simulated evidence and, when `pccs_url` is given, of SGX/TDX DCAP evidence
/// with collateral from that PCCS (see [`dcap_verifier`]). Whether simulated evidence is then
/// accepted is the policy's decision (`allow_simulated`).
pub fn sim_and_dcap_verifier(pccs_url: Option<&str>, cache_dir: &Path) -> Result<AnyVerifier> {
    let dcap = pccs_url
        .map(|url| dcap_verifier(url, cache_dir))
        .transpose()?;
    Ok(AnyVerifier::new(Some(ward_attest::SimVerifier), dcap))
}
