//! The server's configuration, in TOML.
//!
//! ```toml
//! listen = "0.0.0.0:4433"
//! cert_chain = "server-chain.pem"      # the server's ordinary TLS certificate chain (PEM)
//! key = "server-key.pem"               # its private key (PEM, PKCS#8, SEC1 or PKCS#1)
//! audit_log = "/var/log/ward/provision.jsonl"
//! metrics_listen = "127.0.0.1:9464"    # optional: GET /metrics (plain HTTP, unauthenticated)
//!
//! [limits]                             # all optional; these are the defaults
//! max_connections = 256
//! handshake_timeout_ms = 5000
//! idle_timeout_ms = 10000
//! max_request_bytes = 4096
//! failures_burst = 32                  # unauthenticated failures logged one by one per address,
//! failures_per_minute = 60             # …refilled at this rate; beyond it they are counted and
//! failures_report_ms = 10000           # …written as one aggregate record per address this often
//!
//! # The first secret a client is allowed to have is its "default" secret: what a Gramine
//! # client (which cannot name one) receives.
//! [[secret]]
//! name = "pf-key"
//! file = "pf.key"                      # raw bytes
//! kind = "key"                         # "key": exactly 16 bytes | "string": any bytes
//! policy = "classifier-policy.toml"    # a ward_attest::Policy
//! ```
//!
//! Relative paths are relative to the configuration file's directory.
//!
//! A configuration is also data: build one with [`ServerConfig::one_key`] (or fill in the
//! fields), check it with [`ServerConfig::validate`] and write it with [`ServerConfig::to_toml`].

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use ward_attest::Policy;
use zeroize::Zeroizing;

/// Largest secret file the server loads.
pub const MAX_SECRET_BYTES: usize = 1 << 20;
/// Length of a `kind = "key"` secret (an AES-128 key, as Gramine's protected files use).
pub const KEY_LEN: usize = 16;
/// Smallest accepted `max_request_bytes` (a Gramine request is 35 bytes).
pub const MIN_REQUEST_BYTES: usize = 64;

/// The server's configuration, as written in TOML. [`ServerConfig::load`] reads it from a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// PEM file with the server's TLS certificate chain, leaf first.
    pub cert_chain: PathBuf,
    /// PEM file with the server's private key.
    pub key: PathBuf,
    /// Audit log (JSON lines), appended to.
    pub audit_log: PathBuf,
    /// Size past which the audit log is rotated (`audit_log` → `audit_log.1` …), in bytes.
    #[serde(default = "default_audit_max_bytes")]
    pub audit_max_bytes: u64,
    /// Rotated audit logs kept (`.1` … `.N`); the oldest beyond that is deleted.
    #[serde(default = "default_audit_keep")]
    pub audit_keep: u32,
    /// Where to serve `GET /metrics` (plain HTTP, no authentication: a loopback or private
    /// address); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// The secrets, in order of preference for the default secret.
    #[serde(default, rename = "secret")]
    pub secrets: Vec<SecretEntry>,
    /// Where relative paths are resolved (the configuration file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The configuration's name in messages.
    #[serde(skip)]
    pub source_name: String,
}

fn default_audit_max_bytes() -> u64 {
    64 << 20
}

fn default_audit_keep() -> u32 {
    5
}

/// Resource limits that keep one client from stalling the others.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Time allowed for the TCP + TLS handshake, in milliseconds.
    pub handshake_timeout_ms: u64,
    /// Time allowed to send the request, and to take the answer, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Largest request, in bytes (including the protocol header).
    pub max_request_bytes: usize,
    /// Unauthenticated failures (refused or timed-out handshakes) from one IP address that are
    /// logged one by one before the rest are only counted; while an address is over its budget
    /// its new connections are closed before the TLS handshake.
    pub failures_burst: u32,
    /// The rate at which an address's budget comes back, per minute.
    pub failures_per_minute: u32,
    /// How often the counted failures are written, as one `failures_aggregated` record per
    /// address, in milliseconds.
    pub failures_report_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            handshake_timeout_ms: 5000,
            idle_timeout_ms: 10000,
            max_request_bytes: 4096,
            failures_burst: 32,
            failures_per_minute: 60,
            failures_report_ms: 10_000,
        }
    }
}

/// What kind of secret a `[[secret]]` is.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    /// A 16-byte key (e.g. Gramine's protected-files key).
    Key,
    /// A string (any bytes); Gramine clients receive it NUL-terminated.
    String,
}

/// One `[[secret]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretEntry {
    /// The name clients ask for.
    pub name: String,
    /// The file holding the secret's raw bytes.
    pub file: PathBuf,
    /// What the bytes are.
    pub kind: SecretKind,
    /// A `ward_attest::Policy` TOML file: who may have this secret.
    pub policy: PathBuf,
}

/// A secret loaded into memory, with its policy. The bytes are zeroized on drop and never shown
/// by `Debug`.
pub struct LoadedSecret {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: SecretKind,
    /// Who may have it.
    pub policy: Policy,
    pub(crate) bytes: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for LoadedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedSecret")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field(
                "bytes",
                &format_args!("<{} bytes, redacted>", self.bytes.len()),
            )
            .finish()
    }
}

impl LoadedSecret {
    /// The bytes a Gramine client receives: a key as is; a string NUL-terminated.
    pub(crate) fn gramine_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(self.bytes.len() + 1));
        v.extend_from_slice(&self.bytes);
        if self.kind == SecretKind::String && v.last() != Some(&0) {
            v.push(0);
        }
        v
    }
}

impl ServerConfig {
    /// A configuration serving one key (`kind = "key"`) named `name`, read from `file` and
    /// released under the policy in `policy`, with default limits. Relative paths are resolved
    /// against `base_dir`; `source_name` names the configuration in errors.
    #[allow(clippy::too_many_arguments)] // each is a distinct, required setting
    pub fn one_key(
        listen: SocketAddr,
        cert_chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        audit_log: impl Into<PathBuf>,
        name: impl Into<String>,
        file: impl Into<PathBuf>,
        policy: impl Into<PathBuf>,
        base_dir: impl Into<PathBuf>,
    ) -> ServerConfig {
        ServerConfig {
            listen,
            cert_chain: cert_chain.into(),
            key: key.into(),
            audit_log: audit_log.into(),
            audit_max_bytes: default_audit_max_bytes(),
            audit_keep: default_audit_keep(),
            metrics_listen: None,
            limits: Limits::default(),
            secrets: vec![SecretEntry {
                name: name.into(),
                file: file.into(),
                kind: SecretKind::Key,
                policy: policy.into(),
            }],
            base_dir: base_dir.into(),
            source_name: "the configuration".into(),
        }
    }

    /// The configuration as TOML that [`ServerConfig::from_toml`] reads back to the same value
    /// (given the same base directory and name).
    pub fn to_toml(&self) -> String {
        // Only strings, integers and tables: serialising cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    /// Parses a configuration; relative paths are resolved against `base_dir`, and
    /// `source_name` names it in errors. Checks everything that can be checked without reading
    /// the files it names.
    pub fn from_toml(text: &str, source_name: &str, base_dir: &Path) -> Result<ServerConfig> {
        let mut c: ServerConfig = toml::from_str(text).map_err(|e| {
            Error::config(
                source_name,
                "is not a valid server configuration",
                Some(Box::new(e)),
            )
        })?;
        c.base_dir = base_dir.to_owned();
        c.source_name = source_name.to_owned();
        c.validate()?;
        Ok(c)
    }

    /// Checks everything that can be checked without reading the files the configuration names.
    pub fn validate(&self) -> Result<()> {
        let c = self;
        let err = |problem: String| Error::config(&c.source_name, problem, None);
        // A bound below one record's size would rotate on every write.
        if c.audit_max_bytes < 4096 || c.audit_keep == 0 {
            return Err(err(
                "`audit_max_bytes` must be at least 4096 and `audit_keep` at least 1".into(),
            ));
        }
        let l = &c.limits;
        if l.max_connections == 0 {
            return Err(err("`limits.max_connections` must be at least 1".into()));
        }
        if l.handshake_timeout_ms == 0 || l.idle_timeout_ms == 0 {
            return Err(err(
                "`limits.handshake_timeout_ms` and `limits.idle_timeout_ms` must be positive"
                    .into(),
            ));
        }
        if l.max_request_bytes < MIN_REQUEST_BYTES {
            return Err(err(format!(
                "`limits.max_request_bytes` = {} is below the minimum of {MIN_REQUEST_BYTES}",
                l.max_request_bytes
            )));
        }
        if l.failures_burst == 0 || l.failures_per_minute == 0 || l.failures_report_ms < 100 {
            return Err(err(
                "`limits.failures_burst` and `limits.failures_per_minute` must be at least 1, and \
                 `limits.failures_report_ms` at least 100"
                    .into(),
            ));
        }
        if c.secrets.is_empty() {
            return Err(err(
                "no [[secret]] is configured; the server would have nothing to provision".into(),
            ));
        }
        for (i, s) in c.secrets.iter().enumerate() {
            if s.name.is_empty() || s.name.len() > u16::MAX as usize {
                return Err(err(format!(
                    "[[secret]] #{}: `name` must be 1 to 65535 bytes",
                    i + 1
                )));
            }
            if c.secrets[..i].iter().any(|o| o.name == s.name) {
                return Err(err(format!(
                    "[[secret]] #{}: `name` = {:?} is used twice",
                    i + 1,
                    s.name
                )));
            }
        }
        Ok(())
    }

    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<ServerConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                path.display().to_string(),
                "cannot be read",
                Some(Box::new(e)),
            )
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        ServerConfig::from_toml(&text, &path.display().to_string(), &base)
    }

    /// `path` resolved against the configuration's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    /// Reads every secret and its policy.
    pub fn load_secrets(&self) -> Result<Vec<LoadedSecret>> {
        let mut out = Vec::with_capacity(self.secrets.len());
        for s in &self.secrets {
            let file = self.resolve(&s.file);
            let file_err = |problem: String, source: Option<std::io::Error>| {
                Error::config(
                    file.display().to_string(),
                    format!("[[secret]] {:?} `file`{problem}", s.name),
                    source.map(|e| Box::new(e) as _),
                )
            };
            let meta = std::fs::metadata(&file).map_err(|e| file_err(String::new(), Some(e)))?;
            if meta.len() > MAX_SECRET_BYTES as u64 {
                return Err(file_err(
                    format!(
                        ": {} bytes is more than the {MAX_SECRET_BYTES}-byte limit",
                        meta.len()
                    ),
                    None,
                ));
            }
            let bytes =
                Zeroizing::new(std::fs::read(&file).map_err(|e| file_err(String::new(), Some(e)))?);
            if s.kind == SecretKind::Key && bytes.len() != KEY_LEN {
                return Err(file_err(
                    format!(
                        ": `kind = \"key\"` needs exactly {KEY_LEN} raw bytes, the file has {} (a \
                         hex text file is not a raw key)",
                        bytes.len()
                    ),
                    None,
                ));
            }
            let policy_path = self.resolve(&s.policy);
            let policy = Policy::load(&policy_path).map_err(|e| {
                Error::config(
                    policy_path.display().to_string(),
                    format!("[[secret]] {:?} `policy`", s.name),
                    Some(Box::new(e)),
                )
            })?;
            out.push(LoadedSecret {
                name: s.name.clone(),
                kind: s.kind,
                policy,
                bytes,
            });
        }
        Ok(out)
    }
}
