//! Producing evidence on this machine, behind one trait.
//!
//! - [`SimAttester`]: ward's simulated TEE (no hardware; see [`crate::sim`]).
//! - [`GramineAttester`]: an SGX enclave under Gramine, through its `/dev/attestation`
//!   pseudo-filesystem (DCAP quotes).
//! - [`TsmAttester`]: a confidential VM through Linux configfs-tsm
//!   (`/sys/kernel/config/tsm/report`, Linux 6.7 and later); TDX guests today.
//!
//! Every hardware attester checks that the quote it got back carries the report data it asked
//! for, so a quote produced for someone else's request (a race on a shared interface, or a write
//! the kernel or Gramine silently dropped) is refused here rather than by a verifier later.
//!
//! Which attester to use is the caller's choice: nothing here probes the machine and guesses.

use crate::claims::TeeKind;
use crate::error::{Error, Result};
use crate::sim::{SimIdentity, SimPlatformKey, SimPlatformPublicKey, SimQuote};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Which attester produces evidence: the names a user types (`sim`, `gramine`, `tsm`).
///
/// Parsed with [`FromStr`] and shown with [`Display`](fmt::Display) in the same spelling, so a
/// command line can take it as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttesterKind {
    /// ward's simulated TEE ([`SimAttester`]): no hardware protection.
    Sim,
    /// Gramine's `/dev/attestation` inside an SGX enclave ([`GramineAttester`]).
    Gramine,
    /// Linux configfs-tsm inside a confidential VM, TDX today ([`TsmAttester`]).
    Tsm,
}

impl AttesterKind {
    /// Every kind, in the order they are documented.
    pub const ALL: [AttesterKind; 3] =
        [AttesterKind::Sim, AttesterKind::Gramine, AttesterKind::Tsm];

    /// The name used on command lines and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            AttesterKind::Sim => "sim",
            AttesterKind::Gramine => "gramine",
            AttesterKind::Tsm => "tsm",
        }
    }

    /// One line on what this attester is, for help texts.
    pub fn description(self) -> &'static str {
        match self {
            AttesterKind::Sim => "ward's simulated TEE (no hardware protection)",
            AttesterKind::Gramine => "Gramine's /dev/attestation inside an SGX enclave",
            AttesterKind::Tsm => {
                "Linux configfs-tsm (/sys/kernel/config/tsm/report) inside a TDX guest"
            }
        }
    }

    /// The attester of this kind. `sim` is the simulated attester to use for
    /// [`AttesterKind::Sim`] (it needs a platform key and the identity to claim) and is ignored
    /// otherwise.
    pub fn attester(self, sim: Option<SimAttester>) -> Result<Box<dyn Attester>> {
        Ok(match self {
            AttesterKind::Sim => Box::new(sim.ok_or_else(|| {
                Error::Key(
                    "the simulated attester needs a simulated platform key (`ward sim init` makes one)"
                        .into(),
                )
            })?),
            AttesterKind::Gramine => Box::new(GramineAttester::new()),
            AttesterKind::Tsm => Box::new(TsmAttester::new()),
        })
    }
}

impl fmt::Display for AttesterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An attester name that is not one of [`AttesterKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown attester {0:?}; expected sim, gramine or tsm")]
pub struct UnknownAttester(pub String);

impl FromStr for AttesterKind {
    type Err = UnknownAttester;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        AttesterKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownAttester(s.to_owned()))
    }
}

/// Evidence produced on this machine: a quote and the kind of TEE that produced it.
#[derive(Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The TEE kind, which tells a verifier how to read [`Evidence::quote`].
    pub tee: TeeKind,
    /// The quote, as the TEE produced it (a DCAP quote, or a [`crate::sim`] quote).
    pub quote: Vec<u8>,
}

impl fmt::Debug for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Evidence")
            .field("tee", &self.tee)
            .field("quote", &format_args!("<{} bytes>", self.quote.len()))
            .finish()
    }
}

/// Something that can produce evidence binding 64 bytes of report data on this machine.
pub trait Attester: Send + Sync {
    /// A short name for messages ("sim", "gramine", "tsm").
    fn name(&self) -> &'static str;

    /// Produces evidence whose quote carries `report_data`.
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence>;
}

// ---------------------------------------------------------------------------------------------
// Simulated

/// The simulated TEE: signs a [`SimQuote`] with a platform key held in this process.
///
/// The evidence proves nothing about hardware; see [`crate::sim`].
#[derive(Debug)]
pub struct SimAttester {
    key: SimPlatformKey,
    identity: SimIdentity,
}

impl SimAttester {
    /// An attester that claims `identity`, signed by `key`.
    pub fn new(key: SimPlatformKey, identity: SimIdentity) -> Self {
        SimAttester { key, identity }
    }

    /// The identity this attester claims.
    pub fn identity(&self) -> &SimIdentity {
        &self.identity
    }

    /// The public half of the platform key, which a verifier must be told to trust.
    pub fn platform_key(&self) -> SimPlatformPublicKey {
        self.key.public()
    }
}

impl Attester for SimAttester {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        Ok(Evidence {
            tee: TeeKind::Sim,
            quote: SimQuote::sign(&self.key, &self.identity, report_data).to_bytes(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Gramine

/// Gramine's attestation pseudo-filesystem inside an SGX enclave.
const GRAMINE_ROOT: &str = "/dev/attestation";

/// `/dev/attestation` is one per process: a report-data write and the quote read that follows it
/// must not interleave with another thread's.
static GRAMINE_LOCK: Mutex<()> = Mutex::new(());

/// An SGX enclave running under Gramine with `sgx.remote_attestation = "dcap"`.
///
/// Writes the report data to `<root>/user_report_data` and reads the DCAP quote from
/// `<root>/quote`, after checking `<root>/attestation_type` is `dcap`.
#[derive(Debug, Clone)]
pub struct GramineAttester {
    root: PathBuf,
}

impl GramineAttester {
    /// Gramine's interface at `/dev/attestation`.
    pub fn new() -> Self {
        Self::with_root(GRAMINE_ROOT)
    }

    /// The same interface at another path (tests, unusual mounts).
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        GramineAttester { root: root.into() }
    }

    fn check_attestation_type(&self) -> Result<()> {
        let path = self.root.join("attestation_type");
        let raw = fs::read(&path).map_err(|e| {
            let context = if e.kind() == io::ErrorKind::NotFound && !self.root.exists() {
                format!(
                    "{} does not exist: ward is not running inside a Gramine SGX enclave \
                     (start it with gramine-sgx, and set sgx.remote_attestation = \"dcap\" in \
                     the manifest)",
                    self.root.display()
                )
            } else if e.kind() == io::ErrorKind::NotFound {
                format!(
                    "{} does not exist: this Gramine does not report its attestation type; \
                     use Gramine 1.0 or later with sgx.remote_attestation = \"dcap\"",
                    path.display()
                )
            } else {
                format!("reading {}", path.display())
            };
            Error::Io { context, source: e }
        })?;
        let kind = String::from_utf8_lossy(&raw);
        match kind.trim_matches(|c: char| c.is_whitespace() || c == '\0') {
            "dcap" => Ok(()),
            "none" => Err(Error::Unsupported(format!(
                "{} says \"none\": Gramine was started without remote attestation \
                 (sgx.remote_attestation = \"dcap\"); set it in the manifest, re-sign the \
                 enclave and restart",
                path.display()
            ))),
            "epid" => Err(Error::Unsupported(format!(
                "{} says \"epid\": EPID attestation is not supported (Intel has retired it); \
                 set sgx.remote_attestation = \"dcap\" in the manifest, re-sign the enclave and \
                 restart",
                path.display()
            ))),
            other => Err(Error::Unsupported(format!(
                "{} says {other:?}: ward supports only DCAP attestation \
                 (sgx.remote_attestation = \"dcap\")",
                path.display()
            ))),
        }
    }
}

impl Default for GramineAttester {
    fn default() -> Self {
        Self::new()
    }
}

impl Attester for GramineAttester {
    fn name(&self) -> &'static str {
        "gramine"
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        self.check_attestation_type()?;
        // A poisoned lock only means another thread panicked mid-attestation; the report-data
        // check below still guards the result.
        let _guard = GRAMINE_LOCK.lock().unwrap_or_else(|p| p.into_inner());

        let report_path = self.root.join("user_report_data");
        write_existing(&report_path, report_data).map_err(|e| Error::Io {
            context: format!(
                "writing the report data to {} (Gramine's attestation interface)",
                report_path.display()
            ),
            source: e,
        })?;

        let quote_path = self.root.join("quote");
        let quote = fs::read(&quote_path).map_err(|e| Error::Io {
            context: format!(
                "reading the SGX quote from {}: Gramine could not obtain a quote; check that \
                 the host runs the AESM service with the DCAP quoting enclave and that \
                 /dev/sgx_enclave and /dev/sgx_provision are available",
                quote_path.display()
            ),
            source: e,
        })?;
        check_quote_binds(&quote, report_data, TeeKind::Sgx, &quote_path)?;
        Ok(Evidence {
            tee: TeeKind::Sgx,
            quote,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// configfs-tsm

/// The configfs-tsm report directory (Linux 6.7+).
const TSM_ROOT: &str = "/sys/kernel/config/tsm/report";

/// Distinguishes the entries this process creates.
static TSM_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A confidential VM's quote through Linux configfs-tsm.
///
/// Creates a fresh entry under the report directory, writes the report data to its `inblob`,
/// reads `provider` and `outblob`, checks with `generation` that no other writer touched the
/// entry in between, and removes the entry. Supported providers: `tdx_guest` (Intel TDX).
#[derive(Debug, Clone)]
pub struct TsmAttester {
    root: PathBuf,
    entry_name: Option<String>,
}

impl TsmAttester {
    /// configfs-tsm at `/sys/kernel/config/tsm/report`.
    pub fn new() -> Self {
        Self::with_root(TSM_ROOT)
    }

    /// configfs-tsm at another path (tests, unusual mounts).
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        TsmAttester {
            root: root.into(),
            entry_name: None,
        }
    }

    /// Uses the entry `<root>/<name>` instead of a fresh uniquely named one, and accepts it if it
    /// already exists (then leaves it in place afterwards).
    ///
    /// Meant for tests against a plain directory, where the test lays out `provider`, `outblob`
    /// and `generation` beforehand because a plain directory cannot create them on `mkdir` as
    /// configfs does. `name` must be a single path component. Two users of one fixed name race
    /// each other; the generation and report-data checks then refuse the result.
    pub fn with_entry_name(mut self, name: impl Into<String>) -> Self {
        self.entry_name = Some(name.into());
        self
    }

    /// Creates the report entry; returns its path and whether this call created it.
    fn create_entry(&self) -> Result<(PathBuf, bool)> {
        match fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Unsupported(format!(
                    "{} is not a directory: configfs-tsm is not mounted there",
                    self.root.display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::Io {
                    context: format!(
                        "{} does not exist: this is not a TDX/SEV guest, the kernel is older \
                         than 6.7 (no configfs-tsm) or lacks its guest driver (modprobe \
                         tdx_guest), or configfs is not mounted (mount -t configfs none \
                         /sys/kernel/config)",
                        self.root.display()
                    ),
                    source: e,
                })
            }
            Err(e) => {
                return Err(Error::Io {
                    context: format!("examining {}", self.root.display()),
                    source: e,
                })
            }
        }

        if let Some(name) = &self.entry_name {
            if name.is_empty()
                || name == "."
                || name == ".."
                || name.contains('/')
                || name.contains('\0')
            {
                return Err(Error::Unsupported(format!(
                    "configfs-tsm entry name {name:?} must be a single path component"
                )));
            }
            let dir = self.root.join(name);
            return match fs::create_dir(&dir) {
                Ok(()) => Ok((dir, true)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((dir, false)),
                Err(e) => Err(mkdir_error(&self.root, &dir, e)),
            };
        }

        let pid = std::process::id();
        for _ in 0..16 {
            let n = TSM_COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = self.root.join(format!("ward-{pid}-{n}"));
            match fs::create_dir(&dir) {
                Ok(()) => return Ok((dir, true)),
                // Left behind by an earlier process with the same pid: try the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(mkdir_error(&self.root, &dir, e)),
            }
        }
        Err(Error::Unsupported(format!(
            "could not create a fresh report entry under {}: 16 names in a row were taken; \
             remove stale ward-* entries (rmdir {}/ward-*)",
            self.root.display(),
            self.root.display()
        )))
    }
}

impl Default for TsmAttester {
    fn default() -> Self {
        Self::new()
    }
}

/// Removes the report entry when dropped, if this attester created it (best effort: configfs
/// removes the attribute files with the directory).
struct EntryGuard {
    dir: PathBuf,
    created: bool,
}

impl Drop for EntryGuard {
    fn drop(&mut self) {
        if self.created {
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

impl Attester for TsmAttester {
    fn name(&self) -> &'static str {
        "tsm"
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        let (dir, created) = self.create_entry()?;
        let entry = EntryGuard { dir, created };
        let dir = &entry.dir;

        let provider_path = dir.join("provider");
        let provider = read_text(&provider_path)?;
        let tee = match provider.as_str() {
            "tdx_guest" => TeeKind::Tdx,
            "sev_guest" => {
                return Err(Error::Unsupported(format!(
                    "{} says \"sev_guest\": AMD SEV-SNP reports are not supported by ward yet \
                     (only Intel TDX guests are)",
                    provider_path.display()
                )))
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "{} says {other:?}: ward supports only the tdx_guest provider (Intel TDX)",
                    provider_path.display()
                )))
            }
        };

        let generation_path = dir.join("generation");
        let before = read_generation(&generation_path)?;

        let inblob_path = dir.join("inblob");
        write_existing(&inblob_path, report_data).map_err(|e| Error::Io {
            context: format!("writing the report data to {}", inblob_path.display()),
            source: e,
        })?;

        let outblob_path = dir.join("outblob");
        let quote = fs::read(&outblob_path).map_err(|e| Error::Io {
            context: format!(
                "reading the quote from {}: the {provider} driver could not produce one; check \
                 the kernel log (dmesg) and that the host runs a quote generation service \
                 (e.g. the TDX QGS) reachable from this guest",
                outblob_path.display()
            ),
            source: e,
        })?;

        let after = read_generation(&generation_path)?;
        // Our inblob write is the one change allowed. (A real configfs counts it, so `after` is
        // `before + 1`; a write it silently dropped leaves them equal and is caught by the
        // report-data check below.)
        if after < before || after - before > 1 {
            return Err(Error::Verification {
                step: "configfs-tsm generation",
                detail: format!(
                    "{} went from {before} to {after} while ward expected at most one write \
                     (its own): another writer changed the report entry {} concurrently; try \
                     again, and make sure nothing else uses that entry",
                    generation_path.display(),
                    dir.display()
                ),
            });
        }
        check_quote_binds(&quote, report_data, tee, &outblob_path)?;
        drop(entry);
        Ok(Evidence { tee, quote })
    }
}

fn mkdir_error(root: &Path, dir: &Path, e: io::Error) -> Error {
    let hint = if e.kind() == io::ErrorKind::PermissionDenied {
        format!(
            ": creating a report needs root, or write access to {}",
            root.display()
        )
    } else {
        String::new()
    };
    Error::Io {
        context: format!(
            "creating the configfs-tsm report entry {}{hint}",
            dir.display()
        ),
        source: e,
    }
}

fn read_text(path: &Path) -> Result<String> {
    let raw = fs::read(path).map_err(|e| Error::Io {
        context: format!("reading {}", path.display()),
        source: e,
    })?;
    Ok(String::from_utf8_lossy(&raw)
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .to_string())
}

fn read_generation(path: &Path) -> Result<u64> {
    let text = read_text(path)?;
    text.parse::<u64>().map_err(|_| Error::Malformed {
        what: "configfs-tsm report entry",
        field: "generation",
        offset: 0,
        problem: format!("{} holds {text:?}, not a number", path.display()),
    })
}

/// Writes `bytes` to an existing pseudo-file in one write, then closes it.
///
/// Does not create the file: these interfaces provide it, and a missing one means the wrong
/// path. (configfs and Gramine take the data at close, whose errors std cannot report; the
/// report-data check on the resulting quote covers that.)
fn write_existing(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
    file.write_all(bytes)?;
    file.flush()
}

/// Refuses a DCAP quote that does not carry `report_data` where its format puts it, or whose
/// TEE type is not the one expected.
fn check_quote_binds(
    quote: &[u8],
    report_data: &[u8; 64],
    tee: TeeKind,
    path: &Path,
) -> Result<()> {
    if quote.is_empty() {
        return Err(Error::Verification {
            step: "quote retrieval",
            detail: format!(
                "{} was empty: no quote was produced for this request",
                path.display()
            ),
        });
    }
    let parsed = crate::quote::Quote::parse(quote).map_err(|e| {
        Error::Unsupported(format!(
            "the {} bytes read from {} are not a DCAP quote ward reads: {e}",
            quote.len(),
            path.display()
        ))
    })?;
    let (quote_tee, carried) = (parsed.tee(), parsed.report_data());
    if quote_tee != tee {
        return Err(Error::Verification {
            step: "quote retrieval",
            detail: format!(
                "{} holds a {quote_tee} quote where a {tee} quote was expected",
                path.display()
            ),
        });
    }
    if carried != report_data {
        return Err(Error::Verification {
            step: "quote retrieval",
            detail: format!(
                "the quote from {} does not carry the report data ward wrote (it carries {}): it \
                 was produced for another request, or the write was not taken; try again",
                path.display(),
                hex::encode(carried)
            ),
        });
    }
    Ok(())
}
