//! The audit log: one JSON line per attempt, appended and flushed to disk before any secret is
//! sent. It never holds secret bytes.

use crate::{Error, Result};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use ward_attest::dcap::rfc3339;
use ward_attest::VerifiedClaims;

/// The decision for one secret.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SecretDecision {
    pub name: String,
    /// "granted", "refused" or "unknown".
    pub decision: &'static str,
    /// For a refusal by policy: the rule that failed (its policy key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    pub reason: Option<String>,
}

/// One attempt.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Record {
    /// A random id, which a refused client is given instead of the reason (so the operator can
    /// find this record, and the client learns nothing about the policy).
    pub id: String,
    pub time: u64,
    pub time_rfc3339: String,
    pub peer: String,
    /// "handshake_refused", "handshake_timeout", "bad_request", "request_timeout", "gramine",
    /// "ward", "failures_aggregated".
    pub event: &'static str,
    pub tee: Option<String>,
    pub measurement: Option<String>,
    /// The ward manifest the evidence names, when it names one.
    pub workload_measurement: Option<String>,
    pub tcb_status: Option<String>,
    pub requested: Vec<String>,
    pub decisions: Vec<SecretDecision>,
    pub reason: Option<String>,
    /// For a `failures_aggregated` record: the unauthenticated failures from `peer` that were
    /// counted instead of logged one by one (see `limits.failures_burst`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregated: Option<Aggregated>,
}

/// The counts a `failures_aggregated` record carries.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Aggregated {
    /// All failures counted.
    pub count: u64,
    /// By event (`handshake_refused`, `handshake_timeout`, `rate_limited`).
    pub events: std::collections::BTreeMap<&'static str, u64>,
    /// The first and last counted failure (unix seconds).
    pub first: u64,
    pub last: u64,
}

impl Record {
    pub(crate) fn new(peer: &str, event: &'static str) -> Record {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut id = [0u8; 8];
        // A failed random source leaves zeros: the record is still written, only less unique.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
        Record {
            id: hex::encode(id),
            time,
            time_rfc3339: rfc3339(time),
            peer: peer.to_owned(),
            event,
            tee: None,
            measurement: None,
            workload_measurement: None,
            tcb_status: None,
            requested: Vec::new(),
            decisions: Vec::new(),
            reason: None,
            aggregated: None,
        }
    }

    /// The record of failures from one address counted by the rate limiter.
    pub(crate) fn aggregate(a: crate::ratelimit::Aggregate) -> Record {
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut rec = Record::new(&a.ip.to_string(), "failures_aggregated");
        rec.aggregated = Some(Aggregated {
            count: a.count(),
            first: secs(a.first),
            last: secs(a.last),
            events: a.events,
        });
        rec.reason = a.last_reason;
        rec
    }

    pub(crate) fn with_claims(mut self, c: &VerifiedClaims) -> Record {
        self.tee = Some(c.tee.to_string());
        self.measurement = if let Some(sgx) = &c.sgx {
            Some(hex::encode(sgx.mr_enclave))
        } else {
            c.tdx.as_ref().map(|tdx| hex::encode(tdx.mr_td))
        };
        self.workload_measurement = c.workload.map(|w| hex::encode(w.measurement));
        self.tcb_status = c.tcb_status.map(|s| s.as_str().to_owned());
        self
    }
}

/// The open file and its size, for rotation.
#[derive(Debug)]
struct Current {
    file: File,
    size: u64,
}

/// The log file; clones share it. It rotates by size: `path` → `path.1` → … → `path.keep`.
#[derive(Debug, Clone)]
pub(crate) struct AuditLog {
    file: Arc<Mutex<Current>>,
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Shifts the rotated logs up by one (dropping the oldest), renames the live log to `.1`, opens
/// a fresh one and syncs the directory so the renames survive a crash.
fn rotate(path: &Path, keep: u32) -> std::io::Result<File> {
    let _ = std::fs::remove_file(numbered(path, keep));
    for n in (1..keep).rev() {
        match std::fs::rename(numbered(path, n), numbered(path, n + 1)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, numbered(path, 1))?;
    let file = open_append(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()?;
    Ok(file)
}

impl AuditLog {
    pub(crate) fn open(path: &Path, max_bytes: u64, keep: u32) -> Result<AuditLog> {
        let err = |e| Error::io(format!("opening audit log {}", path.display()), e);
        let file = open_append(path).map_err(err)?;
        let size = file.metadata().map_err(err)?.len();
        Ok(AuditLog {
            file: Arc::new(Mutex::new(Current { file, size })),
            path: path.to_owned(),
            max_bytes,
            keep,
        })
    }

    /// Appends `record` and waits until it is on disk.
    pub(crate) async fn write(&self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(|e| {
            Error::io(
                "encoding an audit record",
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        line.push(b'\n');
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut cur = this.file.lock().unwrap_or_else(|p| p.into_inner());
            if cur.size > 0 && cur.size + line.len() as u64 > this.max_bytes {
                match rotate(&this.path, this.keep) {
                    Ok(file) => *cur = Current { file, size: 0 },
                    // The record still goes to the file already open (whatever its name now):
                    // a rotation failure must not lose it.
                    Err(e) => tracing::error!(
                        error = %e,
                        "rotating audit log {} failed; still appending to the current file",
                        this.path.display()
                    ),
                }
            }
            (&cur.file)
                .write_all(&line)
                .and_then(|()| cur.file.sync_data())
                .map_err(|e| Error::io(format!("writing audit log {}", this.path.display()), e))?;
            cur.size += line.len() as u64;
            Ok(())
        })
        .await
        .map_err(|e| Error::io("audit log writer", std::io::Error::other(e.to_string())))?
    }
}

/// A grant found in an audit log by [`latest_grant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The record's id: the run id the workload was given.
    pub id: String,
    /// When it was granted (unix seconds).
    pub time: u64,
    /// The peer's address.
    pub peer: String,
    /// The secrets released.
    pub secrets: Vec<String>,
}

/// The most recent grant in the audit log at `path` of every secret a ward workload asked for,
/// to the ward workload whose manifest measurement is `workload_measurement`: the run whose
/// results its owner should accept. Lines that are not records (a line torn by a crash) are
/// skipped; rotated logs (`path.1`, …) are not read.
pub fn latest_grant(path: &Path, workload_measurement: &[u8; 32]) -> Result<Option<Grant>> {
    use std::io::BufRead;
    #[derive(serde::Deserialize)]
    struct Line {
        id: String,
        time: u64,
        peer: String,
        event: String,
        workload_measurement: Option<String>,
        decisions: Vec<LineDecision>,
    }
    #[derive(serde::Deserialize)]
    struct LineDecision {
        name: String,
        decision: String,
    }
    let err = |e| Error::io(format!("reading audit log {}", path.display()), e);
    let wanted = hex::encode(workload_measurement);
    let reader = std::io::BufReader::new(File::open(path).map_err(err)?);
    let mut latest = None;
    for line in reader.split(b'\n') {
        let line = line.map_err(err)?;
        let Ok(r) = serde_json::from_slice::<Line>(&line) else {
            continue;
        };
        let granted =
            !r.decisions.is_empty() && r.decisions.iter().all(|d| d.decision == "granted");
        if r.event == "ward" && granted && r.workload_measurement.as_deref() == Some(&wanted) {
            latest = Some(Grant {
                id: r.id,
                time: r.time,
                peer: r.peer,
                secrets: r.decisions.into_iter().map(|d| d.name).collect(),
            });
        }
    }
    Ok(latest)
}
