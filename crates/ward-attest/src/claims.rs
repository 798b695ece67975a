//! What verified evidence proves about a workload.

use serde::Serialize;
use std::fmt;

/// The kind of TEE that produced evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TeeKind {
    /// Intel SGX enclave.
    Sgx,
    /// Intel TDX trust domain.
    Tdx,
    /// ward's simulated TEE: no hardware protection at all.
    Sim,
}

impl fmt::Display for TeeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TeeKind::Sgx => "sgx",
            TeeKind::Tdx => "tdx",
            TeeKind::Sim => "sim",
        })
    }
}

/// Intel's TCB status of the platform (and QE), in Intel's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum TcbStatus {
    /// Fully patched.
    UpToDate,
    /// Patched, but software mitigations for advisories are needed in the enclave.
    SWHardeningNeeded,
    /// Patched, but the platform configuration (e.g. BIOS settings) needs changes.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSWHardeningNeeded,
    /// A newer TCB (microcode/firmware) exists: the platform is missing security fixes.
    OutOfDate,
    /// Out of date, and its configuration also needs changes.
    OutOfDateConfigurationNeeded,
    /// The platform's keys were revoked: never trust it.
    Revoked,
    /// TDX 1.5: the TD launched on an out-of-date TCB that was since updated in place; relaunch it.
    TDRelaunchAdvised,
    /// As `TDRelaunchAdvised`, and the configuration needs changes.
    TDRelaunchAdvisedConfigurationNeeded,
}

impl TcbStatus {
    /// Parses Intel's spelling.
    pub fn from_intel(s: &str) -> Option<TcbStatus> {
        Some(match s {
            "UpToDate" => TcbStatus::UpToDate,
            "SWHardeningNeeded" => TcbStatus::SWHardeningNeeded,
            "ConfigurationNeeded" => TcbStatus::ConfigurationNeeded,
            "ConfigurationAndSWHardeningNeeded" => TcbStatus::ConfigurationAndSWHardeningNeeded,
            "OutOfDate" => TcbStatus::OutOfDate,
            "OutOfDateConfigurationNeeded" => TcbStatus::OutOfDateConfigurationNeeded,
            "Revoked" => TcbStatus::Revoked,
            "TDRelaunchAdvised" => TcbStatus::TDRelaunchAdvised,
            "TDRelaunchAdvisedConfigurationNeeded" => {
                TcbStatus::TDRelaunchAdvisedConfigurationNeeded
            }
            _ => return None,
        })
    }

    /// Intel's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SWHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::Revoked => "Revoked",
            TcbStatus::TDRelaunchAdvised => "TDRelaunchAdvised",
            TcbStatus::TDRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
        }
    }

    /// What the status means for someone deciding whether to trust the platform.
    pub fn meaning(&self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "the platform has every security fix Intel has published",
            TcbStatus::SWHardeningNeeded => "the platform is patched, but the listed advisories need software mitigations inside the enclave/TD; accept only if the workload is built with them",
            TcbStatus::ConfigurationNeeded => "the platform is patched, but its configuration (BIOS/firmware settings) must change to be fully protected",
            TcbStatus::ConfigurationAndSWHardeningNeeded => "the platform needs configuration changes and the workload needs software mitigations for the listed advisories",
            TcbStatus::OutOfDate => "the platform lacks microcode/firmware security fixes for the listed advisories; it should be updated before it is trusted",
            TcbStatus::OutOfDateConfigurationNeeded => "the platform lacks security fixes and needs configuration changes",
            TcbStatus::Revoked => "the platform's attestation keys were revoked by Intel; it must not be trusted",
            TcbStatus::TDRelaunchAdvised => "the TDX module was updated in place since the TD launched on an out-of-date TCB; relaunch the TD to run on the current one",
            TcbStatus::TDRelaunchAdvisedConfigurationNeeded => "relaunch the TD (see TDRelaunchAdvised), and the platform configuration needs changes",
        }
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity of an SGX enclave (also what the simulated TEE reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SgxIdentity {
    /// MRENCLAVE: hash of the enclave's code and initial data.
    #[serde(with = "hex_bytes")]
    pub mr_enclave: [u8; 32],
    /// MRSIGNER: hash of the key that signed the enclave.
    #[serde(with = "hex_bytes")]
    pub mr_signer: [u8; 32],
    /// ISV product id.
    pub isv_prod_id: u16,
    /// ISV security version number.
    pub isv_svn: u16,
    /// ATTRIBUTES (flags and XFRM).
    #[serde(with = "hex_bytes")]
    pub attributes: [u8; 16],
    /// The DEBUG attribute: a debugger can read the enclave's memory.
    pub debug: bool,
}

/// Identity of a TDX trust domain. Serialised flat, with the RTMRs as `rtmr0`..`rtmr3` (the
/// names policies use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxIdentity {
    /// MRTD: hash of the TD's initial contents (firmware).
    pub mr_td: [u8; 48],
    /// RTMR0..3: runtime-extended measurements (firmware config, kernel, command line, app).
    pub rtmr: [[u8; 48]; 4],
    /// MRCONFIGID, MROWNER, MROWNERCONFIG: software-defined identities set at TD creation.
    pub mr_config_id: [u8; 48],
    /// See `mr_config_id`.
    pub mr_owner: [u8; 48],
    /// See `mr_config_id`.
    pub mr_owner_config: [u8; 48],
    /// MRSEAM: hash of the TDX module.
    pub mr_seam: [u8; 48],
    /// MR_SERVICETD (TDX 1.5 quotes): hash of bound service TDs; zero when none.
    pub mr_servicetd: Option<[u8; 48]>,
    /// TD attributes.
    pub td_attributes: [u8; 8],
    /// A debug-class TD attribute is set (TUD or TUP group, see
    /// [`crate::quote::TD_ATTRIBUTES_DEBUG_CLASS`]): the host can read, change or profile the TD.
    pub debug: bool,
}

impl Serialize for TdxIdentity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("TdxIdentity", 12)?;
        st.serialize_field("mr_td", &hex::encode(self.mr_td))?;
        for (name, r) in ["rtmr0", "rtmr1", "rtmr2", "rtmr3"]
            .into_iter()
            .zip(&self.rtmr)
        {
            st.serialize_field(name, &hex::encode(r))?;
        }
        st.serialize_field("mr_config_id", &hex::encode(self.mr_config_id))?;
        st.serialize_field("mr_owner", &hex::encode(self.mr_owner))?;
        st.serialize_field("mr_owner_config", &hex::encode(self.mr_owner_config))?;
        st.serialize_field("mr_seam", &hex::encode(self.mr_seam))?;
        st.serialize_field("mr_servicetd", &self.mr_servicetd.map(hex::encode))?;
        st.serialize_field("td_attributes", &hex::encode(self.td_attributes))?;
        st.serialize_field("debug", &self.debug)?;
        st.end()
    }
}

/// The ward workload that evidence names: the verified signed manifest's identity, as ward's
/// runtime put it in the RA-TLS claims that the quote's report data covers.
///
/// On hardware the quote's own measurements (MRENCLAVE, MRTD, …) name the outer layer (a
/// Gramine enclave running ward, a confidential VM); this names the ward manifest running in it.
/// It is only as trustworthy as that outer layer: a policy pins both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WorkloadIdentity {
    /// The manifest's measurement (what `ward sign` prints as MRENCLAVE).
    #[serde(with = "hex_bytes")]
    pub measurement: [u8; 32],
    /// The manifest signer (what `ward sign` prints as MRSIGNER).
    #[serde(with = "hex_bytes")]
    pub signer: [u8; 32],
    /// The manifest's `sgx.isv_prod_id`.
    pub isv_prod_id: u16,
    /// The manifest's `sgx.isv_svn`.
    pub isv_svn: u16,
    /// The manifest's `sgx.debug`.
    pub debug: bool,
}

/// `report_data[32..64]` of evidence that ward's runtime makes for an RA-TLS certificate naming
/// its workload: SHA-256 of `"ward workload evidence v1"`. ward refuses to let a confined program
/// ask for report data ending in these bytes, so evidence carrying them comes from ward itself.
pub const WORKLOAD_REPORT_DATA_TAG: [u8; 32] = [
    0x70, 0xef, 0x04, 0x32, 0x16, 0x38, 0xaf, 0x11, 0x83, 0x61, 0xd7, 0x6d, 0xa3, 0x46, 0x19, 0xb3,
    0xf6, 0x5c, 0xeb, 0xef, 0x61, 0x64, 0xab, 0xdf, 0xc0, 0x18, 0x44, 0x9b, 0x4c, 0x8f, 0x5d, 0x7c,
];

/// What verification proved. Produced only by a verifier; a [`crate::Policy`] decides whether
/// it is acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedClaims {
    /// The TEE kind.
    pub tee: TeeKind,
    /// Enclave identity (SGX and the simulated TEE); serialised flat, beside the other fields.
    #[serde(flatten)]
    pub sgx: Option<SgxIdentity>,
    /// Trust-domain identity (TDX); serialised flat, beside the other fields.
    #[serde(flatten)]
    pub tdx: Option<TdxIdentity>,
    /// The 64 bytes of report data the workload bound into its evidence.
    #[serde(with = "hex_bytes")]
    pub report_data: [u8; 64],
    /// Intel's TCB status (None for the simulated TEE, which has no TCB).
    pub tcb_status: Option<TcbStatus>,
    /// Intel security advisories that apply to this platform.
    pub advisory_ids: Vec<String>,
    /// Platform FMSPC from the PCK certificate (hardware evidence only).
    #[serde(with = "hex_opt")]
    pub fmspc: Option<[u8; 6]>,
    /// Earliest time (unix seconds) at which any piece of the collateral stops being valid.
    pub collateral_expires: Option<u64>,
    /// Public key (SEC1 hex) of the simulated platform that signed the evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim_platform_key: Option<String>,
    /// The ward workload the evidence names, when it came in an RA-TLS certificate made by
    /// ward's runtime (`None` for a bare quote, or a certificate from anything else).
    pub workload: Option<WorkloadIdentity>,
}

/// The outcome of verifying evidence at a time and, optionally, judging it by a policy, as one
/// serialisable object (what `ward attest verify --json` prints).
#[derive(Debug, Clone, Serialize)]
pub struct VerificationReport<'a> {
    /// Always true: the evidence verified.
    pub valid: bool,
    /// The verification time (unix seconds).
    pub verified_at: u64,
    /// What the evidence proved.
    #[serde(flatten)]
    pub claims: &'a VerifiedClaims,
    /// `collateral_expires` as RFC 3339 UTC.
    pub collateral_expires_utc: Option<String>,
    /// The policy's decision, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
    /// The policy's refusal, when it refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

impl<'a> VerificationReport<'a> {
    /// The report for `claims` verified at `verified_at`, judged by a policy when `verdict` is
    /// given.
    pub fn new(
        claims: &'a VerifiedClaims,
        verified_at: u64,
        verdict: Option<&Result<(), crate::Refusal>>,
    ) -> Self {
        VerificationReport {
            valid: true,
            verified_at,
            claims,
            collateral_expires_utc: claims.collateral_expires.map(crate::dcap::rfc3339),
            accepted: verdict.map(|v| v.is_ok()),
            refusal: verdict.and_then(|v| v.as_ref().err().map(|r| r.to_string())),
        }
    }
}

/// The human explanation of verified evidence: what kind it is, each measurement with what it
/// means, the platform's TCB status and how long the collateral stays valid (what `ward attest
/// verify` prints). The policy's decision is left to the caller.
impl fmt::Display for VerificationReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.claims;
        let now = self.verified_at;
        let kind = match c.tee {
            TeeKind::Sgx => "an Intel SGX enclave quote (DCAP, ECDSA P-256)",
            TeeKind::Tdx => "an Intel TDX trust-domain quote (DCAP, ECDSA P-256)",
            TeeKind::Sim => "ward SIMULATED TEE evidence — no hardware protection; anyone with the platform key can forge it",
        };
        writeln!(f, "Evidence: {kind}")?;
        writeln!(
            f,
            "Verified: signatures and chain OK as of {} (unix {now})",
            crate::dcap::rfc3339(now)
        )?;
        let mut row = |name: &str, value: String, what: &str| {
            writeln!(f, "  {name:<14} {value}\n  {:<14} {what}", "")
        };
        if let Some(s) = &c.sgx {
            row(
                "MRENCLAVE",
                hex::encode(s.mr_enclave),
                "hash of the enclave's code and initial data (the workload's measurement)",
            )?;
            row(
                "MRSIGNER",
                hex::encode(s.mr_signer),
                "hash of the key that signed the enclave (who vouches for it)",
            )?;
            row(
                "ISV_PROD_ID",
                s.isv_prod_id.to_string(),
                "product id the signer assigned",
            )?;
            row(
                "ISV_SVN",
                s.isv_svn.to_string(),
                "security version; policies set a minimum to refuse superseded builds",
            )?;
            row(
                "ATTRIBUTES",
                hex::encode(s.attributes),
                "enclave flags and enabled CPU features",
            )?;
            row(
                "DEBUG",
                if s.debug { "YES".into() } else { "no".into() },
                if s.debug {
                    "a debug enclave: the host can read its memory, so it must not get secrets"
                } else {
                    "production enclave"
                },
            )?;
        }
        if let Some(t) = &c.tdx {
            row(
                "MRTD",
                hex::encode(t.mr_td),
                "hash of the TD's initial memory (virtual firmware)",
            )?;
            let rtmr_what = [
                "RTMR0: firmware configuration (TD HOB, ACPI tables)",
                "RTMR1: the OS loader and kernel",
                "RTMR2: kernel command line and initrd",
                "RTMR3: extended by the running workload (application-defined)",
            ];
            for (i, (r, what)) in t.rtmr.iter().zip(rtmr_what).enumerate() {
                row(&format!("RTMR{i}"), hex::encode(r), what)?;
            }
            row(
                "MRSEAM",
                hex::encode(t.mr_seam),
                "hash of the TDX module that manages the TD",
            )?;
            if let Some(s) = t.mr_servicetd {
                row(
                    "MR_SERVICETD",
                    hex::encode(s),
                    "service TDs bound to this TD (zero: none)",
                )?;
            }
            row(
                "DEBUG",
                if t.debug { "YES".into() } else { "no".into() },
                if t.debug {
                    "a debug TD: the host can read and change it, so it must not get secrets"
                } else {
                    "production TD"
                },
            )?;
        }
        match &c.workload {
            Some(w) => {
                row(
                    "WARD MANIFEST",
                    hex::encode(w.measurement),
                    "the signed ward manifest running in it (bound by the report data)",
                )?;
                row(
                    "WARD SIGNER",
                    hex::encode(w.signer),
                    "who signed that manifest",
                )?;
                row(
                    "WARD ISV",
                    format!(
                        "isv_prod_id {}, isv_svn {}{}",
                        w.isv_prod_id,
                        w.isv_svn,
                        if w.debug { ", DEBUG" } else { "" }
                    ),
                    "the manifest's product id and security version",
                )?;
            }
            None => row(
                "WARD MANIFEST",
                "none".into(),
                "the evidence does not name a ward manifest (a bare quote, or not made by ward)",
            )?,
        }
        row(
            "REPORT_DATA",
            hex::encode(c.report_data),
            "64 bytes the workload bound into the evidence (RA-TLS: hash of its TLS key)",
        )?;
        if let Some(status) = c.tcb_status {
            writeln!(
                f,
                "Platform: FMSPC {}, TCB status {status}: {}",
                c.fmspc.map(hex::encode).unwrap_or_default(),
                status.meaning()
            )?;
            if !c.advisory_ids.is_empty() {
                writeln!(f, "  advisories: {}", c.advisory_ids.join(", "))?;
            }
        } else {
            writeln!(
                f,
                "Platform: simulated (key {}); no TCB to evaluate",
                c.sim_platform_key.as_deref().unwrap_or("?")
            )?;
        }
        if let Some(exp) = c.collateral_expires {
            let days = (exp as i64 - now as i64) as f64 / 86_400.0;
            writeln!(
                f,
                "Collateral: valid until {} ({days:.1} days after the verification time)",
                crate::dcap::rfc3339(exp)
            )?;
        }
        Ok(())
    }
}

mod hex_bytes {
    pub(super) fn serialize<S: serde::Serializer, const N: usize>(
        v: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

mod hex_opt {
    pub(super) fn serialize<S: serde::Serializer, const N: usize>(
        v: &Option<[u8; N]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&hex::encode(v)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn workload_tag_is_the_documented_hash() {
        assert_eq!(
            Sha256::digest(b"ward workload evidence v1").as_slice(),
            WORKLOAD_REPORT_DATA_TAG
        );
    }
}
