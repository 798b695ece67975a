//! What a run did, as one serialisable object (`ward run --json`).

use crate::bootstrap::Context;
use crate::vfs::VfsStats;
use serde::Serialize;
use std::time::Duration;

/// A workload's run: who it was (measurement, signer), how long it took, what it touched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// `ward:NAME` or the program's path.
    pub workload: String,
    /// The measurement (MRENCLAVE) the run was admitted under.
    pub measurement: String,
    /// The signer (MRSIGNER).
    pub mr_signer: String,
    /// A program's exit code (128 + N when killed by signal N); none for a built-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Seconds from start to end, boot included.
    pub seconds: f64,
    /// Where the time went, in milliseconds, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings_ms: Option<TimingsMs>,
    /// What the workload's file system saw.
    pub files: FileCounts,
}

/// Boot and workload times, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[allow(missing_docs)] // named for the phase
pub struct TimingsMs {
    pub self_measure: f64,
    pub manifest: f64,
    pub attest: f64,
    pub provision: f64,
    pub vfs: f64,
    pub workload: f64,
}

/// File counters of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FileCounts {
    /// Files opened or read.
    pub opened: u64,
    /// New versions committed.
    pub committed: u64,
    /// New versions discarded because the program failed (programs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discarded: Option<u64>,
    /// Bytes of trusted files that passed a hash check.
    pub trusted_bytes_verified: u64,
    /// Plaintext bytes of protected files decrypted.
    pub protected_bytes_decrypted: u64,
    /// Plaintext bytes written to new protected files.
    pub protected_bytes_encrypted: u64,
    /// Operations refused by the manifest or an integrity check.
    pub refused: u64,
}

impl FileCounts {
    /// The counters of `stats`, with its commits.
    pub fn from_stats(stats: &VfsStats) -> Self {
        FileCounts {
            opened: stats.files_opened,
            committed: stats.files_committed,
            discarded: None,
            trusted_bytes_verified: stats.trusted_bytes_verified,
            protected_bytes_decrypted: stats.protected_bytes_decrypted,
            protected_bytes_encrypted: stats.protected_bytes_encrypted,
            refused: stats.refused,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl RunReport {
    /// The report of the workload booted in `ctx`, as its file system stands now, after
    /// `elapsed`.
    pub fn new(ctx: &Context, elapsed: Duration) -> Self {
        let m = &ctx.manifest;
        RunReport {
            workload: m.manifest.workload_name().to_owned(),
            measurement: m.measurement.to_string(),
            mr_signer: m.mr_signer.to_string(),
            exit_code: None,
            seconds: elapsed.as_secs_f64(),
            timings_ms: None,
            files: FileCounts::from_stats(&ctx.vfs.stats()),
        }
    }

    /// Adds the boot timings of `ctx`, with the runtime's self-measurement and the workload's
    /// own time.
    pub fn with_timings(self, ctx: &Context, self_measure: Duration, workload: Duration) -> Self {
        self.with_timings_of(&ctx.timings, self_measure, workload)
    }

    /// Adds boot timings `t`, with the runtime's self-measurement and the workload's own time
    /// (a program's context is gone once it has been waited for).
    pub fn with_timings_of(
        mut self,
        t: &crate::bootstrap::BootTimings,
        self_measure: Duration,
        workload: Duration,
    ) -> Self {
        self.timings_ms = Some(TimingsMs {
            self_measure: ms(self_measure),
            manifest: ms(t.manifest),
            attest: ms(t.attest),
            provision: ms(t.provision),
            vfs: ms(t.vfs),
            workload: ms(workload),
        });
        self
    }
}
