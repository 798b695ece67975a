//! The audit log: one JSON line per attempt, appended and flushed to disk before any secret is
//! sent. It never holds secret bytes.

use crate::{Error, Result};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
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
    /// "ward".
    pub event: &'static str,
    pub tee: Option<String>,
    pub measurement: Option<String>,
    /// The ward manifest the evidence names, when it names one.
    pub workload_measurement: Option<String>,
    pub tcb_status: Option<String>,
    pub requested: Vec<String>,
    pub decisions: Vec<SecretDecision>,
    pub reason: Option<String>,
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
        }
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

/// The log file; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct AuditLog {
    file: Arc<Mutex<File>>,
    path: String,
}

impl AuditLog {
    pub(crate) fn open(path: &Path) -> Result<AuditLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening audit log {}", path.display()), e))?;
        Ok(AuditLog {
            file: Arc::new(Mutex::new(file)),
            path: path.display().to_string(),
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
            let file = this.file.lock().unwrap_or_else(|p| p.into_inner());
            (&*file)
                .write_all(&line)
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io(format!("writing audit log {}", this.path), e))
        })
        .await
        .map_err(|e| Error::io("audit log writer", std::io::Error::other(e.to_string())))?
    }
}
