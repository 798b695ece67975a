//! A key holder's rules for accepting verified evidence, written in TOML, and refusals that
//! say which rule failed, what the evidence had, what the policy expected and what to do.
//!
//! ```toml
//! allowed_tcb_statuses = ["UpToDate"]               # the default
//! allowed_advisories = ["INTEL-SA-00615"]           # every advisory present must be listed ("*": any)
//! allow_debug = false                               # the default
//! allow_service_td = false                          # TDX: non-zero MR_SERVICETD
//! allow_simulated = false                           # the default; true only for development
//! simulated_platform_keys = ["02ab…"]               # sim platforms trusted when allowed
//!
//! # Any one identity may match; every field given in it must match.
//! [[identity]]
//! name = "classifier v3"          # used in messages
//! tee = "sgx"                     # sgx | tdx | sim (optional)
//! mr_enclave = "3a9f…"            # one value or a list: any of several measurements
//! mr_signer = "c0ff…"
//! isv_prod_id = 1
//! min_isv_svn = 2
//!
//! [[identity]]
//! tee = "tdx"
//! mr_td = "…"                     # also rtmr0..rtmr3, mr_config_id, mr_owner, mr_owner_config
//! # The ward manifest running in that TD, as ward's runtime names it in its RA-TLS evidence
//! # (bound by the quote's report data). Goes with a platform identity: on hardware, any TD or
//! # enclave could claim any manifest, so an identity of workload_* fields alone is refused
//! # unless tee = "sim".
//! workload_measurement = "…"      # what `ward sign` prints as the measurement
//! workload_signer = "…"
//! workload_isv_prod_id = 1
//! workload_min_isv_svn = 1
//! ```
//!
//! Top-level keys must come before the first `[[identity]]` table in a TOML file.

use crate::claims::{TcbStatus, TeeKind, VerifiedClaims};
use crate::sim::SimPlatformPublicKey;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// A policy that cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[error("policy {source_name}: {problem}")]
pub struct PolicyError {
    source_name: String,
    problem: String,
    /// The underlying cause (a TOML syntax error, an I/O error), when there is one.
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Why a policy refused evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The policy rule that failed (its TOML key).
    pub rule: &'static str,
    /// What the evidence had.
    pub found: String,
    /// What the policy expected.
    pub expected: String,
    /// What the operator can do.
    pub hint: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused by policy rule `{}`: the evidence has {}, the policy expects {}. {}",
            self.rule, self.found, self.expected, self.hint
        )
    }
}

impl std::error::Error for Refusal {}

/// One or several accepted values.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

// The TOML form. Serialising writes only what differs from the defaults, with the top-level keys
// before the `[[identity]]` tables (TOML needs them first).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct IdentityToml {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mr_enclave: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mr_signer: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    isv_prod_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_isv_svn: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mr_td: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtmr0: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtmr1: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtmr2: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtmr3: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mr_config_id: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mr_owner: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mr_owner_config: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workload_measurement: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workload_signer: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workload_isv_prod_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workload_min_isv_svn: Option<u16>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PolicyToml {
    #[serde(default, skip_serializing_if = "is_false")]
    accept_any_identity: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_tcb_statuses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_advisories: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    allow_debug: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    allow_service_td: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    allow_simulated: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    simulated_platform_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    identity: Vec<IdentityToml>,
}

/// A measurement field of an identity and the values it accepts (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Accepted {
    field: &'static str,
    label: &'static str,
    values: Vec<String>,
}

/// One accepted workload identity: every field it names must match. Built from a policy file,
/// or in code with [`Identity::sgx`] and its builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    name: Option<String>,
    tee: Option<TeeKind>,
    measurements: Vec<Accepted>,
    isv_prod_id: Option<u16>,
    min_isv_svn: Option<u16>,
    workload_isv_prod_id: Option<u16>,
    workload_min_isv_svn: Option<u16>,
}

/// The hex fields an `[[identity]]` may name: field, label in refusals, length in bytes.
const HEX_FIELDS: [(&str, &str, usize); 12] = [
    ("mr_enclave", "MRENCLAVE", 32),
    ("mr_signer", "MRSIGNER", 32),
    ("mr_td", "MRTD", 48),
    ("rtmr0", "RTMR0", 48),
    ("rtmr1", "RTMR1", 48),
    ("rtmr2", "RTMR2", 48),
    ("rtmr3", "RTMR3", 48),
    ("mr_config_id", "MRCONFIGID", 48),
    ("mr_owner", "MROWNER", 48),
    ("mr_owner_config", "MROWNERCONFIG", 48),
    ("workload_measurement", "ward measurement", 32),
    ("workload_signer", "ward signer", 32),
];

/// Whether `field` judges the ward workload's claim rather than the platform's evidence.
fn is_workload_field(field: &str) -> bool {
    field.starts_with("workload_")
}

/// A key holder's acceptance rules. Read from TOML with [`Policy::from_toml`] or [`Policy::load`],
/// built in code with [`Policy::for_workload`] or [`Policy::dev_sim`], and written back with
/// [`Policy::to_toml`] (or any serde format: it is `Serialize`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    identities: Vec<Identity>,
    accept_any_identity: bool,
    allowed_tcb_statuses: Vec<TcbStatus>,
    allowed_advisories: Vec<String>,
    allow_debug: bool,
    allow_service_td: bool,
    allow_simulated: bool,
    simulated_platform_keys: Vec<String>,
}

impl Default for Policy {
    /// The strictest policy: no identity accepted, UpToDate only, no debug, no simulation.
    fn default() -> Self {
        Policy {
            identities: Vec::new(),
            accept_any_identity: false,
            allowed_tcb_statuses: vec![TcbStatus::UpToDate],
            allowed_advisories: Vec::new(),
            allow_debug: false,
            allow_service_td: false,
            allow_simulated: false,
            simulated_platform_keys: Vec::new(),
        }
    }
}

fn measurement(
    field: &'static str,
    label: &'static str,
    bytes: usize,
    v: &Option<OneOrMany>,
    err: &dyn Fn(String) -> PolicyError,
) -> Result<Option<Accepted>, PolicyError> {
    let Some(v) = v else { return Ok(None) };
    let mut values = Vec::new();
    for s in v.values() {
        let s = s.trim().to_ascii_lowercase();
        let ok = s.len() == 2 * bytes && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(err(format!(
                "`{field}` = {s:?} is not {bytes} bytes of hex ({} hex characters)",
                2 * bytes
            )));
        }
        values.push(s);
    }
    if values.is_empty() {
        return Err(err(format!("`{field}` lists no values")));
    }
    Ok(Some(Accepted {
        field,
        label,
        values,
    }))
}

impl Identity {
    /// An SGX identity (also matched by simulated evidence, which carries SGX fields) that
    /// accepts exactly this MRENCLAVE.
    pub fn sgx(mr_enclave: [u8; 32]) -> Identity {
        Identity {
            name: None,
            tee: None,
            measurements: vec![Accepted {
                field: "mr_enclave",
                label: "MRENCLAVE",
                values: vec![hex::encode(mr_enclave)],
            }],
            isv_prod_id: None,
            min_isv_svn: None,
            workload_isv_prod_id: None,
            workload_min_isv_svn: None,
        }
    }

    /// Also requires the evidence to name the ward workload of this signed manifest: its
    /// measurement, signer and product id, and at least its SVN (see [`WorkloadIdentity`]).
    ///
    /// [`WorkloadIdentity`]: crate::WorkloadIdentity
    pub fn workload(mut self, w: &crate::WorkloadIdentity) -> Identity {
        self.measurements.retain(|m| !is_workload_field(m.field));
        self.measurements.push(Accepted {
            field: "workload_measurement",
            label: "ward measurement",
            values: vec![hex::encode(w.measurement)],
        });
        self.measurements.push(Accepted {
            field: "workload_signer",
            label: "ward signer",
            values: vec![hex::encode(w.signer)],
        });
        self.workload_isv_prod_id = Some(w.isv_prod_id);
        self.workload_min_isv_svn = Some(w.isv_svn);
        self
    }

    /// An identity accepting the `values` (hex) of one policy field (`mr_enclave`, `mr_signer`,
    /// `mr_td`, `rtmr0`–`rtmr3`, `mr_config_id`, `mr_owner`, `mr_owner_config`,
    /// `workload_measurement`, `workload_signer`); add more with [`Identity::accept`]. The
    /// combination is judged when a policy file holding it is loaded (e.g. an identity of
    /// `workload_*` fields alone is refused there unless its `tee` is `sim`).
    pub fn accepting(field: &str, values: &[&str]) -> Result<Identity, PolicyError> {
        Identity {
            name: None,
            tee: None,
            measurements: Vec::new(),
            isv_prod_id: None,
            min_isv_svn: None,
            workload_isv_prod_id: None,
            workload_min_isv_svn: None,
        }
        .accept(field, values)
    }

    /// Also requires one of `values` (hex) for `field` (see [`Identity::accepting`]), replacing
    /// what it accepted for that field before.
    pub fn accept(mut self, field: &str, values: &[&str]) -> Result<Identity, PolicyError> {
        let err = |problem: String| PolicyError {
            source_name: "identity".into(),
            problem,
            source: None,
        };
        let Some(&(field, label, bytes)) = HEX_FIELDS.iter().find(|f| f.0 == field) else {
            return Err(err(format!(
                "`{field}` is not a measurement field (expected one of {})",
                HEX_FIELDS.map(|f| f.0).join(", ")
            )));
        };
        let v = Some(OneOrMany::Many(
            values.iter().map(|s| s.to_string()).collect(),
        ));
        if let Some(a) = measurement(field, label, bytes, &v, &err)? {
            self.measurements.retain(|m| m.field != field);
            self.measurements.push(a);
        }
        Ok(self)
    }

    /// Only evidence from this kind of TEE matches.
    pub fn tee(mut self, tee: TeeKind) -> Identity {
        self.tee = Some(tee);
        self
    }

    /// Also requires the ward workload's product id.
    pub fn workload_isv_prod_id(mut self, id: u16) -> Identity {
        self.workload_isv_prod_id = Some(id);
        self
    }

    /// Also requires a ward workload SVN of at least `svn`.
    pub fn workload_min_isv_svn(mut self, svn: u16) -> Identity {
        self.workload_min_isv_svn = Some(svn);
        self
    }

    /// Its name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The body of its `[[identity]]` table in a policy file (`key = value` lines).
    pub fn to_toml(&self) -> String {
        // Only strings, integers and arrays of strings: serialising cannot fail.
        toml::to_string(&self.to_raw()).unwrap_or_default()
    }

    /// An identity of the ward workload layer alone: this manifest's measurement and signer, its
    /// product id and at least its SVN. On hardware a policy file refuses it unless the platform
    /// layer is added ([`Identity::accept`]) or its `tee` is `sim`.
    pub fn of_workload(w: &crate::WorkloadIdentity) -> Identity {
        Identity {
            name: None,
            tee: None,
            measurements: Vec::new(),
            isv_prod_id: None,
            min_isv_svn: None,
            workload_isv_prod_id: None,
            workload_min_isv_svn: None,
        }
        .workload(w)
    }

    /// Names the identity in refusals.
    pub fn named(mut self, name: impl Into<String>) -> Identity {
        self.name = Some(name.into());
        self
    }

    /// Also requires this MRSIGNER.
    pub fn mr_signer(mut self, mr_signer: [u8; 32]) -> Identity {
        self.measurements.retain(|m| m.field != "mr_signer");
        self.measurements.push(Accepted {
            field: "mr_signer",
            label: "MRSIGNER",
            values: vec![hex::encode(mr_signer)],
        });
        self
    }

    /// Also requires this ISV_PROD_ID.
    pub fn isv_prod_id(mut self, id: u16) -> Identity {
        self.isv_prod_id = Some(id);
        self
    }

    /// Also requires an ISV_SVN of at least `svn`.
    pub fn min_isv_svn(mut self, svn: u16) -> Identity {
        self.min_isv_svn = Some(svn);
        self
    }

    fn to_raw(&self) -> IdentityToml {
        let mut raw = IdentityToml {
            name: self.name.clone(),
            tee: self.tee.map(|t| t.to_string()),
            isv_prod_id: self.isv_prod_id,
            min_isv_svn: self.min_isv_svn,
            workload_isv_prod_id: self.workload_isv_prod_id,
            workload_min_isv_svn: self.workload_min_isv_svn,
            ..IdentityToml::default()
        };
        for m in &self.measurements {
            let v = Some(if m.values.len() == 1 {
                OneOrMany::One(m.values[0].clone())
            } else {
                OneOrMany::Many(m.values.clone())
            });
            let slot = match m.field {
                "mr_enclave" => &mut raw.mr_enclave,
                "mr_signer" => &mut raw.mr_signer,
                "mr_td" => &mut raw.mr_td,
                "rtmr0" => &mut raw.rtmr0,
                "rtmr1" => &mut raw.rtmr1,
                "rtmr2" => &mut raw.rtmr2,
                "rtmr3" => &mut raw.rtmr3,
                "mr_config_id" => &mut raw.mr_config_id,
                "mr_owner" => &mut raw.mr_owner,
                "workload_measurement" => &mut raw.workload_measurement,
                "workload_signer" => &mut raw.workload_signer,
                _ => &mut raw.mr_owner_config,
            };
            *slot = v;
        }
        raw
    }
}

impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_raw().serialize(s)
    }
}

impl Policy {
    /// The strict policy (UpToDate hardware only, no debug) that accepts one workload identity.
    pub fn for_workload(identity: Identity) -> Policy {
        Policy {
            identities: vec![identity],
            ..Policy::default()
        }
    }

    /// The rules evidence is judged by when no policy is given (`ward attest verify` without
    /// `--policy`): any workload identity, but only an UpToDate platform, no debug enclave or
    /// TD, no service TD and no simulated evidence. It says whether the platform can be trusted
    /// at all, not whether the workload is the one expected: that needs a policy naming it.
    pub fn default_rules() -> Policy {
        Policy {
            accept_any_identity: true,
            ..Policy::default()
        }
    }

    /// A development policy: evidence from the simulated platform with this public key is
    /// accepted, for the workload with `mr_enclave`, or for any workload on it when `None`.
    /// It proves nothing about hardware; never use it for secrets that matter.
    pub fn dev_sim(platform_key: &SimPlatformPublicKey, mr_enclave: Option<[u8; 32]>) -> Policy {
        let policy = match mr_enclave {
            Some(m) => Policy::for_workload(Identity::sgx(m).named("the workload")),
            None => Policy {
                accept_any_identity: true,
                ..Policy::default()
            },
        };
        policy.trust_simulated_platform(platform_key)
    }

    /// The same policy, also accepting simulated evidence from this platform (development only).
    pub fn trust_simulated_platform(mut self, platform_key: &SimPlatformPublicKey) -> Policy {
        self.allow_simulated = true;
        let key = platform_key.to_hex();
        if !self.simulated_platform_keys.contains(&key) {
            self.simulated_platform_keys.push(key);
        }
        self
    }

    /// The policy as TOML that [`Policy::from_toml`] reads back to the same value. A policy that
    /// trusts simulated evidence starts with a comment saying it is for development only.
    pub fn to_toml(&self) -> String {
        // The TOML form has only strings, integers, booleans and tables: serialising cannot fail.
        let body = toml::to_string(&self.to_raw()).unwrap_or_default();
        if self.allow_simulated {
            format!(
                "# DEVELOPMENT ONLY: evidence from ward's simulated TEE proves nothing about hardware.\n{body}"
            )
        } else {
            body
        }
    }

    fn to_raw(&self) -> PolicyToml {
        let statuses: Vec<String> = self
            .allowed_tcb_statuses
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        PolicyToml {
            identity: self.identities.iter().map(Identity::to_raw).collect(),
            accept_any_identity: self.accept_any_identity,
            allowed_tcb_statuses: (statuses != ["UpToDate"]).then_some(statuses),
            allowed_advisories: self.allowed_advisories.clone(),
            allow_debug: self.allow_debug,
            allow_service_td: self.allow_service_td,
            allow_simulated: self.allow_simulated,
            simulated_platform_keys: self.simulated_platform_keys.clone(),
        }
    }

    /// Parses a policy from TOML text; `source_name` names it in errors.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Policy, PolicyError> {
        let err = |problem: String| PolicyError {
            source_name: source_name.to_owned(),
            problem,
            source: None,
        };
        let raw: PolicyToml = toml::from_str(text).map_err(|e| PolicyError {
            source_name: source_name.to_owned(),
            problem: "is not a valid policy".into(),
            source: Some(Box::new(e)),
        })?;
        let mut identities = Vec::new();
        for (i, id) in raw.identity.iter().enumerate() {
            let at = |p: String| err(format!("[[identity]] #{}: {p}", i + 1));
            let tee = match id.tee.as_deref() {
                None => None,
                Some("sgx") => Some(TeeKind::Sgx),
                Some("tdx") => Some(TeeKind::Tdx),
                Some("sim") => Some(TeeKind::Sim),
                Some(other) => {
                    return Err(at(format!(
                        "`tee` = {other:?}; expected \"sgx\", \"tdx\" or \"sim\""
                    )))
                }
            };
            let mut measurements = Vec::new();
            let specs: [(&'static str, &'static str, usize, &Option<OneOrMany>); 12] = [
                ("mr_enclave", "MRENCLAVE", 32, &id.mr_enclave),
                ("mr_signer", "MRSIGNER", 32, &id.mr_signer),
                ("mr_td", "MRTD", 48, &id.mr_td),
                ("rtmr0", "RTMR0", 48, &id.rtmr0),
                ("rtmr1", "RTMR1", 48, &id.rtmr1),
                ("rtmr2", "RTMR2", 48, &id.rtmr2),
                ("rtmr3", "RTMR3", 48, &id.rtmr3),
                ("mr_config_id", "MRCONFIGID", 48, &id.mr_config_id),
                ("mr_owner", "MROWNER", 48, &id.mr_owner),
                ("mr_owner_config", "MROWNERCONFIG", 48, &id.mr_owner_config),
                (
                    "workload_measurement",
                    "ward measurement",
                    32,
                    &id.workload_measurement,
                ),
                ("workload_signer", "ward signer", 32, &id.workload_signer),
            ];
            for (field, label, bytes, v) in specs {
                if let Some(a) = measurement(field, label, bytes, v, &at)? {
                    measurements.push(a);
                }
            }
            let sgx_fields = measurements
                .iter()
                .any(|m| matches!(m.field, "mr_enclave" | "mr_signer"))
                || id.isv_prod_id.is_some()
                || id.min_isv_svn.is_some();
            let tdx_fields = measurements.iter().any(|m| {
                !matches!(m.field, "mr_enclave" | "mr_signer") && !is_workload_field(m.field)
            });
            if sgx_fields && tdx_fields {
                return Err(at(
                    "mixes SGX fields (mr_enclave, mr_signer, isv_*) with TDX fields (mr_td, rtmr*, …); use one [[identity]] per TEE".into(),
                ));
            }
            let workload_fields = measurements.iter().any(|m| is_workload_field(m.field))
                || id.workload_isv_prod_id.is_some()
                || id.workload_min_isv_svn.is_some();
            if measurements.is_empty() {
                return Err(at(
                    "names no measurement (mr_enclave/mr_signer for SGX, mr_td/rtmr* for TDX); it would accept anything".into(),
                ));
            }
            if workload_fields && !sgx_fields && !tdx_fields && tee != Some(TeeKind::Sim) {
                return Err(at(
                    "names only the ward workload (workload_*); on hardware any enclave or TD can claim any ward manifest, so also name the platform that runs ward (mr_enclave/mr_signer of the Gramine enclave, or mr_td/rtmr* of the TD), or set tee = \"sim\"".into(),
                ));
            }
            identities.push(Identity {
                name: id.name.clone(),
                tee,
                measurements,
                isv_prod_id: id.isv_prod_id,
                min_isv_svn: id.min_isv_svn,
                workload_isv_prod_id: id.workload_isv_prod_id,
                workload_min_isv_svn: id.workload_min_isv_svn,
            });
        }
        let mut allowed_tcb_statuses = Vec::new();
        for s in raw
            .allowed_tcb_statuses
            .unwrap_or_else(|| vec!["UpToDate".into()])
        {
            allowed_tcb_statuses.push(TcbStatus::from_intel(&s).ok_or_else(|| {
                err(format!(
                    "`allowed_tcb_statuses` has {s:?}, which is not one of Intel's TCB statuses (UpToDate, SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, TDRelaunchAdvised, TDRelaunchAdvisedConfigurationNeeded)"
                ))
            })?);
        }
        if allowed_tcb_statuses.contains(&TcbStatus::Revoked) {
            return Err(err(
                "`allowed_tcb_statuses` lists Revoked; a revoked platform can never be trusted"
                    .into(),
            ));
        }
        let mut keys = Vec::new();
        for k in raw.simulated_platform_keys {
            let k = k.trim().to_ascii_lowercase();
            if k.len() != 66 || !k.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(format!(
                    "`simulated_platform_keys` entry {k:?} is not a compressed P-256 public key (66 hex characters, as `ward sim init` prints)"
                )));
            }
            keys.push(k);
        }
        if raw.allow_simulated && keys.is_empty() {
            return Err(err(
                "`allow_simulated = true` needs `simulated_platform_keys` listing the simulated platforms to trust".into(),
            ));
        }
        if identities.is_empty() && !raw.accept_any_identity {
            return Err(err(
                "no [[identity]] is listed, so nothing would be accepted; add one (or set accept_any_identity = true to judge only the platform)".into(),
            ));
        }
        Ok(Policy {
            identities,
            accept_any_identity: raw.accept_any_identity,
            allowed_tcb_statuses,
            allowed_advisories: raw.allowed_advisories,
            allow_debug: raw.allow_debug,
            allow_service_td: raw.allow_service_td,
            allow_simulated: raw.allow_simulated,
            simulated_platform_keys: keys,
        })
    }

    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            source_name: path.display().to_string(),
            problem: "cannot be read".into(),
            source: Some(Box::new(e)),
        })?;
        Policy::from_toml(&text, &path.display().to_string())
    }

    /// The identities it accepts (any one may match).
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// Whether simulated evidence can ever pass this policy.
    pub fn allows_simulated(&self) -> bool {
        self.allow_simulated
    }

    /// What a key holder should know about this policy before trusting it with a secret: each
    /// rule that lets through more than the strict defaults, and each identity that pins only
    /// one layer (see docs/DEPLOY.md). Empty for a strict policy naming both layers.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.accept_any_identity && self.identities.is_empty() {
            w.push("accept_any_identity = true with no [[identity]]: any workload on an accepted platform gets the secret, including one the host wrote".into());
        }
        if self.allow_simulated {
            w.push(format!(
                "allow_simulated = true: evidence from ward's simulated TEE ({} platform key(s)) proves nothing about hardware; development only",
                self.simulated_platform_keys.len()
            ));
        }
        if self.allow_debug {
            w.push("allow_debug = true: a debug enclave or TD exposes its memory, and so the secret, to the host".into());
        }
        let lax: Vec<&str> = self
            .allowed_tcb_statuses
            .iter()
            .filter(|s| **s != TcbStatus::UpToDate)
            .map(|s| s.as_str())
            .collect();
        if !lax.is_empty() {
            w.push(format!(
                "allowed_tcb_statuses also accepts [{}]: platforms lacking fixes or configuration",
                lax.join(", ")
            ));
        }
        if self.allowed_advisories.iter().any(|a| a == "*") {
            w.push(
                "allowed_advisories = [\"*\"]: every Intel security advisory is accepted".into(),
            );
        }
        if self.allow_service_td {
            w.push("allow_service_td = true: service TDs bound to the TD (e.g. migration) can read its state".into());
        }
        for (i, id) in self.identities.iter().enumerate() {
            let label = id
                .name
                .as_deref()
                .map(|n| format!("[[identity]] #{} ({n:?})", i + 1))
                .unwrap_or_else(|| format!("[[identity]] #{}", i + 1));
            let workload = id.measurements.iter().any(|m| is_workload_field(m.field));
            let platform = id.measurements.iter().any(|m| !is_workload_field(m.field));
            if platform && !workload && id.tee != Some(TeeKind::Sim) {
                w.push(format!(
                    "{label} pins only the platform layer: on hardware it accepts any ward manifest the host runs under that enclave or TD; add the workload_* fields `ward sign` prints"
                ));
            }
            let signer_only = id
                .measurements
                .iter()
                .all(|m| matches!(m.field, "mr_signer" | "workload_signer"));
            if signer_only && id.min_isv_svn.is_none() && id.workload_min_isv_svn.is_none() {
                w.push(format!(
                    "{label} names signers but no minimum SVN: every version they ever signed is accepted"
                ));
            }
        }
        w
    }

    /// Accepts or refuses verified claims. The first failing rule is reported.
    pub fn evaluate(&self, c: &VerifiedClaims) -> Result<(), Refusal> {
        if c.tee == TeeKind::Sim {
            if !self.allow_simulated {
                return Err(Refusal {
                    rule: "allow_simulated",
                    found: "evidence from ward's simulated TEE, which has no hardware protection".into(),
                    expected: "hardware evidence (SGX or TDX)".into(),
                    hint: "For development only: set allow_simulated = true and list the platform key in simulated_platform_keys.".into(),
                });
            }
            let key = c.sim_platform_key.clone().unwrap_or_default();
            if !self.simulated_platform_keys.contains(&key) {
                return Err(Refusal {
                    rule: "simulated_platform_keys",
                    found: format!("simulated platform key {key}"),
                    expected: format!("one of [{}]", self.simulated_platform_keys.join(", ")),
                    hint: "Add this platform's key (printed by `ward sim init`) if you trust it."
                        .into(),
                });
            }
        }
        if let Some(sgx) = &c.sgx {
            let flags = sgx.attributes[0];
            let fixed: [(u8, bool, &str); 4] = [
                (0x01, true, "INIT"),
                (0x04, true, "MODE64"),
                (0x10, false, "PROVISION_KEY"),
                (0x20, false, "EINITTOKEN_KEY"),
            ];
            for (bit, want, name) in fixed {
                if (flags & bit != 0) != want {
                    return Err(Refusal {
                        rule: "enclave attributes",
                        found: format!("attributes {} ({name} {})", hex::encode(sgx.attributes), if want { "clear" } else { "set" }),
                        expected: format!("{name} {}", if want { "set" } else { "clear" }),
                        hint: "This is not an ordinary initialised 64-bit application enclave; it cannot be accepted.".into(),
                    });
                }
            }
        }
        // Judged from the attributes themselves, not only the verifier's summary flag: every
        // debug-class TD attribute (TUD bits 3:0, TUP bits 15:4), not just DEBUG (bit 0).
        let td_bits = c
            .tdx
            .as_ref()
            .map(|t| crate::quote::td_debug_class_bits(&t.td_attributes))
            .unwrap_or(0);
        let sgx_debug = c
            .sgx
            .as_ref()
            .map(|s| s.debug || s.attributes[0] & 0x02 != 0)
            .unwrap_or(false);
        let tdx_debug = c.tdx.as_ref().map(|t| t.debug).unwrap_or(false) || td_bits != 0;
        let ward_debug = c.workload.map(|w| w.debug).unwrap_or(false);
        if (sgx_debug || tdx_debug || ward_debug) && !self.allow_debug {
            let found = if td_bits != 0 {
                let bits: Vec<String> = (0..16)
                    .filter(|b| td_bits & (1 << b) != 0)
                    .map(|b| b.to_string())
                    .collect();
                format!(
                    "a TD under debug or profiling (TD_ATTRIBUTES bit(s) {} set; bits 3:0 are TD-under-debug, 15:4 TD-under-profiling: the host can read, change or observe it)",
                    bits.join(", ")
                )
            } else if sgx_debug || tdx_debug {
                "a DEBUG enclave/TD (its memory can be read by the host)".into()
            } else {
                "a ward manifest signed for debugging (sgx.debug = true, or development keys in fs.insecure__keys / fs.insecure__key_files)".into()
            };
            return Err(Refusal {
                rule: "allow_debug",
                found,
                expected: "a production (non-debug) workload".into(),
                hint: "Build and sign the workload for production (e.g. sgx.debug = false). allow_debug = true is for development and exposes every secret.".into(),
            });
        }
        if let Some(status) = c.tcb_status {
            if !self.allowed_tcb_statuses.contains(&status) {
                let advisories = if c.advisory_ids.is_empty() {
                    String::new()
                } else {
                    format!(" with advisories [{}]", c.advisory_ids.join(", "))
                };
                return Err(Refusal {
                    rule: "allowed_tcb_statuses",
                    found: format!("TCB status {status}{advisories}: {}", status.meaning()),
                    expected: format!(
                        "one of [{}]",
                        self.allowed_tcb_statuses
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    hint: if status == TcbStatus::Revoked {
                        "A revoked platform cannot be trusted.".into()
                    } else {
                        format!("Update the platform (microcode, BIOS, TDX module), or, if you accept the risk of the listed advisories, add \"{status}\" to allowed_tcb_statuses and the advisories to allowed_advisories.")
                    },
                });
            }
            let wildcard = self.allowed_advisories.iter().any(|a| a == "*");
            let unlisted: Vec<&String> = c
                .advisory_ids
                .iter()
                .filter(|a| !wildcard && !self.allowed_advisories.contains(a))
                .collect();
            if !unlisted.is_empty() {
                return Err(Refusal {
                    rule: "allowed_advisories",
                    found: format!(
                        "advisories [{}] not covered by the policy",
                        unlisted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    expected: format!("only [{}]", self.allowed_advisories.join(", ")),
                    hint: "Read each advisory (https://www.intel.com/content/www/us/en/security-center/advisory/<ID>.html); list it in allowed_advisories once the workload or platform mitigates it.".into(),
                });
            }
        }
        if let Some(td) = &c.tdx {
            if let Some(s) = td.mr_servicetd {
                if s != [0u8; 48] && !self.allow_service_td {
                    return Err(Refusal {
                        rule: "allow_service_td",
                        found: format!("MR_SERVICETD {} (the TD is bound to service TDs, e.g. a migration TD, that can access its state)", hex::encode(s)),
                        expected: "no bound service TD (MR_SERVICETD all zero)".into(),
                        hint: "If the service TD is one you trust, set allow_service_td = true.".into(),
                    });
                }
            }
        }
        self.match_identity(c)?;
        if c.tee == TeeKind::Sim {
            warn_simulated_once(c.sim_platform_key.as_deref().unwrap_or(""));
        }
        Ok(())
    }

    fn match_identity(&self, c: &VerifiedClaims) -> Result<(), Refusal> {
        if self.identities.is_empty() && self.accept_any_identity {
            return Ok(());
        }
        let mut failures = Vec::new();
        for id in &self.identities {
            match id.check(c) {
                Ok(()) => return Ok(()),
                Err(r) => failures.push(r),
            }
        }
        // Same rule failed for every identity: one message listing every accepted value.
        let first = failures.first().cloned().unwrap_or(Refusal {
            rule: "identity",
            found: "an identity".into(),
            expected: "a listed identity".into(),
            hint: String::new(),
        });
        if failures.iter().all(|f| f.rule == first.rule) && failures.len() > 1 {
            let expected: Vec<String> = failures.iter().map(|f| f.expected.clone()).collect();
            return Err(Refusal {
                expected: expected.join(" or "),
                ..first
            });
        }
        if failures.len() > 1 {
            return Err(Refusal {
                hint: format!(
                    "{} ({} other identities in the policy did not match either.)",
                    first.hint,
                    failures.len() - 1
                ),
                ..first
            });
        }
        Err(first)
    }
}

impl Identity {
    fn label(&self) -> String {
        self.name
            .as_deref()
            .map(|n| format!(" (identity {n:?})"))
            .unwrap_or_default()
    }

    fn check(&self, c: &VerifiedClaims) -> Result<(), Refusal> {
        if let Some(tee) = self.tee {
            if tee != c.tee {
                return Err(Refusal {
                    rule: "identity.tee",
                    found: format!("{} evidence", c.tee),
                    expected: format!("{tee}{}", self.label()),
                    hint: "The workload runs on another kind of TEE than the policy names.".into(),
                });
            }
        }
        for m in &self.measurements {
            let value = match (m.field, &c.sgx, &c.tdx) {
                ("mr_enclave", Some(s), _) => Some(hex::encode(s.mr_enclave)),
                ("mr_signer", Some(s), _) => Some(hex::encode(s.mr_signer)),
                ("mr_td", _, Some(t)) => Some(hex::encode(t.mr_td)),
                ("rtmr0", _, Some(t)) => Some(hex::encode(t.rtmr[0])),
                ("rtmr1", _, Some(t)) => Some(hex::encode(t.rtmr[1])),
                ("rtmr2", _, Some(t)) => Some(hex::encode(t.rtmr[2])),
                ("rtmr3", _, Some(t)) => Some(hex::encode(t.rtmr[3])),
                ("mr_config_id", _, Some(t)) => Some(hex::encode(t.mr_config_id)),
                ("mr_owner", _, Some(t)) => Some(hex::encode(t.mr_owner)),
                ("mr_owner_config", _, Some(t)) => Some(hex::encode(t.mr_owner_config)),
                ("workload_measurement", _, _) => c.workload.map(|w| hex::encode(w.measurement)),
                ("workload_signer", _, _) => c.workload.map(|w| hex::encode(w.signer)),
                _ => None,
            };
            let Some(value) = value else {
                if is_workload_field(m.field) {
                    return Err(no_workload(&self.label()));
                }
                return Err(Refusal {
                    rule: "identity.tee",
                    found: format!("{} evidence, which has no {}", c.tee, m.label),
                    expected: format!("evidence carrying {}{}", m.label, self.label()),
                    hint: "The policy identity is for another kind of TEE.".into(),
                });
            };
            if !m.values.contains(&value) {
                return Err(Refusal {
                    rule: m.field,
                    found: format!("{} {value}", m.label),
                    expected: format!("{} {}{}", m.label, one_of(&m.values), self.label()),
                    hint: format!("If this build of the workload is trusted, add its {} to the policy (`ward sign` prints it).", m.label),
                });
            }
        }
        if self.workload_isv_prod_id.is_some() || self.workload_min_isv_svn.is_some() {
            let Some(w) = &c.workload else {
                return Err(no_workload(&self.label()));
            };
            if let Some(p) = self.workload_isv_prod_id {
                if w.isv_prod_id != p {
                    return Err(Refusal {
                        rule: "workload_isv_prod_id",
                        found: format!("a ward manifest with isv_prod_id {}", w.isv_prod_id),
                        expected: format!("isv_prod_id {p}{}", self.label()),
                        hint: "The manifest is another product of the same signer.".into(),
                    });
                }
            }
            if let Some(min) = self.workload_min_isv_svn {
                if w.isv_svn < min {
                    return Err(Refusal {
                        rule: "workload_min_isv_svn",
                        found: format!("a ward manifest with isv_svn {}", w.isv_svn),
                        expected: format!("isv_svn >= {min}{}", self.label()),
                        hint: "An older, superseded manifest is running; deploy the current one."
                            .into(),
                    });
                }
            }
        }
        if let Some(sgx) = &c.sgx {
            if let Some(p) = self.isv_prod_id {
                if sgx.isv_prod_id != p {
                    return Err(Refusal {
                        rule: "isv_prod_id",
                        found: format!("ISV_PROD_ID {}", sgx.isv_prod_id),
                        expected: format!("ISV_PROD_ID {p}{}", self.label()),
                        hint: "The enclave is another product of the same signer.".into(),
                    });
                }
            }
            if let Some(min) = self.min_isv_svn {
                if sgx.isv_svn < min {
                    return Err(Refusal {
                        rule: "min_isv_svn",
                        found: format!("ISV_SVN {}", sgx.isv_svn),
                        expected: format!("ISV_SVN >= {min}{}", self.label()),
                        hint: "An older, superseded version of the workload is running; deploy the current one.".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The refusal of evidence that names no ward workload when an identity requires one.
fn no_workload(label: &str) -> Refusal {
    Refusal {
        rule: "workload_measurement",
        found: "evidence that names no ward manifest (a bare quote, or an RA-TLS certificate not made by ward's runtime)".into(),
        expected: format!("evidence naming a ward workload{label}"),
        hint: "Connect with the workload's own RA-TLS certificate (`ward run` makes one), or drop the workload_* fields if the platform identity alone decides.".into(),
    }
}

fn one_of(values: &[String]) -> String {
    if values.len() == 1 {
        values[0].clone()
    } else {
        format!("one of [{}]", values.join(", "))
    }
}

/// Warns, once per platform key and process, that simulated evidence was accepted: a client or
/// server that verifies every connection would otherwise repeat it on every handshake.
fn warn_simulated_once(platform_key: &str) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if warned.iter().any(|k| k == platform_key) {
        return;
    }
    // Bounded: a process sees a handful of simulated platforms at most.
    if warned.len() < 64 {
        warned.push(platform_key.to_owned());
    }
    tracing::warn!(
        platform_key,
        "INSECURE: accepted evidence from a simulated TEE; it proves nothing about hardware \
         (warned once per platform key)"
    );
}
