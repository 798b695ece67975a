//! `/dev/attestation` inside a program's sandbox: Gramine's attestation pseudo-files, so a
//! Gramine-aware program produces its own evidence under ward as it would under Gramine.
//!
//! - `attestation_type` (read-only): what `quote` yields: `dcap` for SGX/TDX DCAP quotes
//!   (`--attester gramine` or `tsm`), [`SIM_ATTESTATION_TYPE`] for ward's simulated TEE, `none`
//!   when no attester is at hand. A program checking for `dcap` never takes simulated evidence
//!   for hardware evidence.
//! - `user_report_data`: exactly 64 bytes, committed on `close` (as in Gramine: fewer or more
//!   fail with `EINVAL`), readable back; one value per sandbox, all zeros at first. Report data
//!   ending in ward's [`WORKLOAD_REPORT_DATA_TAG`] is refused (`EPERM`): those bytes mark the
//!   evidence in which ward itself names the workload, and a program must not be able to make
//!   evidence naming a manifest it does not run under.
//! - `quote` (read-only): evidence from the booted workload's attester (the one that attested
//!   to the provisioning servers, naming the workload by the manifest's measurement) binding the
//!   current report data. Made when an open file is read at offset 0 and kept for that open
//!   file's later reads; made again at offset 0 once the report data has changed.
//!
//! Nothing here holds or shows key material: only report data and the attester's quotes. The
//! platform's own attestation devices (configfs-tsm, `/dev/tdx_guest`, `/dev/sgx_*`) stay out of
//! the sandbox; only ward's supervisor talks to them.

use crate::bootstrap::Context;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};
use ward_attest::attester::{AttesterKind, Evidence};
use ward_attest::{TeeKind, WORKLOAD_REPORT_DATA_TAG};
use ward_exec::{Attr, DirEntry, Errno, Handle, Kind, View, ViewOptions};

/// `attestation_type` under ward's simulated TEE (Gramine's own values are `none`, `epid` and
/// `dcap`).
pub const SIM_ATTESTATION_TYPE: &str = "ward-sim";

/// The size of SGX (and TDX) report data.
const REPORT_DATA_LEN: usize = 64;

const TYPE: &str = "/attestation_type";
const REPORT_DATA: &str = "/user_report_data";
const QUOTE: &str = "/quote";

/// Why a `/dev/attestation` file could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationDevError {
    /// The workload is not booted: there is no attester yet.
    #[error("the workload is not booted yet")]
    NotBooted,
    /// The workload was booted without an attester it could use.
    #[error(
        "no {kind} attester for this workload (the simulated TEE needs its platform key, \
         --sim-key)"
    )]
    NoAttester {
        /// The attester asked for at boot.
        kind: AttesterKind,
    },
    /// Report data of the wrong size was written.
    #[error("user_report_data takes exactly {REPORT_DATA_LEN} bytes, {len} were written")]
    ReportDataSize {
        /// How many bytes were written.
        len: usize,
    },
    /// The report data ends in ward's workload tag, which only ward's runtime may use.
    #[error(
        "user_report_data[32..64] is ward's workload tag, reserved for the evidence in which \
         ward names the workload; a program cannot use it"
    )]
    ReservedReportData,
    /// The attester failed.
    #[error("the {attester} attester could not produce evidence")]
    Attest {
        /// Its name.
        attester: &'static str,
        /// Why.
        #[source]
        source: ward_attest::Error,
    },
    /// The attester's evidence is not of the kind `attestation_type` announced.
    #[error(
        "the {attester} attester produced {tee} evidence, but attestation_type says {claimed}"
    )]
    WrongKind {
        /// Its name.
        attester: &'static str,
        /// The evidence's TEE kind.
        tee: TeeKind,
        /// What `attestation_type` says.
        claimed: &'static str,
    },
}

impl AttestationDevError {
    /// The errno the program sees.
    fn errno(&self) -> Errno {
        match self {
            AttestationDevError::NotBooted => Errno::EAGAIN,
            AttestationDevError::ReportDataSize { .. } => Errno::EINVAL,
            AttestationDevError::ReservedReportData => Errno::EPERM,
            AttestationDevError::NoAttester { .. }
            | AttestationDevError::Attest { .. }
            | AttestationDevError::WrongKind { .. } => Errno::EIO,
        }
    }
}

/// `attestation_type` for a workload booted with `kind` (and whether it has its attester).
fn attestation_type(ctx: &Context) -> &'static str {
    if ctx.attester.is_none() {
        return "none";
    }
    match ctx.attester_kind {
        AttesterKind::Sim => SIM_ATTESTATION_TYPE,
        AttesterKind::Gramine | AttesterKind::Tsm => "dcap",
        _ => "none",
    }
}

/// The report data, and how many times it was set (a quote made for an older value is stale).
struct ReportData {
    bytes: [u8; REPORT_DATA_LEN],
    generation: u64,
}

/// One sandbox's `/dev/attestation`.
struct State {
    ctx: Arc<OnceLock<Arc<Context>>>,
    report: Mutex<ReportData>,
    mtime: SystemTime,
}

impl State {
    fn ctx(&self) -> Result<&Arc<Context>, AttestationDevError> {
        self.ctx.get().ok_or(AttestationDevError::NotBooted)
    }

    fn report(&self) -> ([u8; REPORT_DATA_LEN], u64) {
        let r = self.report.lock().unwrap_or_else(|p| p.into_inner());
        (r.bytes, r.generation)
    }

    /// Evidence binding `report_data`, from the booted workload's attester.
    fn evidence(
        &self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<Evidence, AttestationDevError> {
        // Checked again here, not only when written: nothing may make tagged evidence.
        if report_data[32..] == WORKLOAD_REPORT_DATA_TAG {
            return Err(AttestationDevError::ReservedReportData);
        }
        let ctx = self.ctx()?;
        let attester = ctx
            .attester
            .as_ref()
            .ok_or(AttestationDevError::NoAttester {
                kind: ctx.attester_kind,
            })?;
        let evidence =
            attester
                .attest(report_data)
                .map_err(|source| AttestationDevError::Attest {
                    attester: attester.name(),
                    source,
                })?;
        let claimed = attestation_type(ctx);
        let fits = match evidence.tee {
            TeeKind::Sim => claimed == SIM_ATTESTATION_TYPE,
            TeeKind::Sgx | TeeKind::Tdx => claimed == "dcap",
        };
        if !fits {
            return Err(AttestationDevError::WrongKind {
                attester: attester.name(),
                tee: evidence.tee,
                claimed,
            });
        }
        Ok(evidence)
    }
}

/// The errno for `e`, with one warning when it is the attester's (or the program's) fault
/// rather than a program starting too early.
fn report_errno(what: &str, e: &AttestationDevError) -> Errno {
    if !matches!(e, AttestationDevError::NotBooted) {
        tracing::warn!("/dev/attestation/{what}: {}", ward_attest::ErrorChain(e));
    }
    e.errno()
}

/// The view mounted at `/dev/attestation` by [`crate::program::PreparedProgram::prepare`].
pub(crate) struct AttestationView {
    state: Arc<State>,
}

impl AttestationView {
    /// A fresh `/dev/attestation` (report data all zeros) answering from the context set in
    /// `ctx` once the workload is booted.
    pub(crate) fn new(ctx: Arc<OnceLock<Arc<Context>>>) -> Self {
        AttestationView {
            state: Arc::new(State {
                ctx,
                report: Mutex::new(ReportData {
                    bytes: [0; REPORT_DATA_LEN],
                    generation: 0,
                }),
                mtime: SystemTime::now(),
            }),
        }
    }

    /// How it is mounted: writable (report data), never cached (the quote is made per open
    /// file, and its size is not known until then).
    pub(crate) fn options() -> ViewOptions {
        ViewOptions {
            read_only: false,
            ttl: Duration::from_secs(1),
            negative_ttl: Duration::from_secs(60),
            keep_cache: false,
            direct_io: true,
            threads: 1,
            read_ahead_kb: None,
            // Report data is taken when its file is closed.
            flush_on_close: true,
        }
    }
}

/// `O_WRONLY | O_RDWR`.
const ACCMODE: i32 = 0o3;

impl View for AttestationView {
    fn lookup(&self, path: &str) -> Result<Attr, Errno> {
        let mtime = self.state.mtime;
        match path {
            "/" => Ok(Attr::dir(0o555, mtime)),
            TYPE => {
                let len = self
                    .state
                    .ctx()
                    .map_or(0, |ctx| attestation_type(ctx).len() as u64);
                Ok(Attr::file(len, 0o444, mtime))
            }
            REPORT_DATA => Ok(Attr::file(REPORT_DATA_LEN as u64, 0o666, mtime)),
            // Its size is known only once made; reads are not cut at it (direct I/O).
            QUOTE => Ok(Attr::file(0, 0o444, mtime)),
            _ => Err(Errno::ENOENT),
        }
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Errno> {
        if path != "/" {
            return Err(Errno::ENOTDIR);
        }
        Ok([TYPE, REPORT_DATA, QUOTE]
            .into_iter()
            .map(|p| DirEntry {
                name: p.trim_start_matches('/').to_owned(),
                kind: Kind::File,
            })
            .collect())
    }

    fn open(&self, path: &str, flags: i32) -> Result<Box<dyn Handle>, Errno> {
        let writing = flags & ACCMODE != 0;
        match path {
            TYPE | QUOTE if writing => Err(Errno::EACCES),
            TYPE => {
                let ctx = self
                    .state
                    .ctx()
                    .map_err(|e| report_errno("attestation_type", &e))?;
                Ok(Box::new(Bytes(attestation_type(ctx).as_bytes().to_vec())))
            }
            REPORT_DATA => Ok(Box::new(ReportDataHandle {
                state: self.state.clone(),
                pending: Mutex::new(None),
            })),
            QUOTE => Ok(Box::new(QuoteHandle {
                state: self.state.clone(),
                quote: Mutex::new(None),
            })),
            "/" => Err(Errno::EISDIR),
            _ => Err(Errno::ENOENT),
        }
    }

    fn create(
        &self,
        _path: &str,
        _mode: u16,
        _flags: i32,
    ) -> Result<(Attr, Box<dyn Handle>), Errno> {
        Err(Errno::EACCES)
    }
}

fn slice(bytes: &[u8], offset: u64, size: u32) -> Vec<u8> {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let end = start.saturating_add(size as usize).min(bytes.len());
    bytes[start..end].to_vec()
}

/// Fixed content.
struct Bytes(Vec<u8>);

impl Handle for Bytes {
    fn read_at(&self, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        Ok(slice(&self.0, offset, size))
    }
}

/// An open `user_report_data`: reads show the committed value, writes collect here until
/// `close` commits them (all 64 bytes, or `EINVAL`).
struct ReportDataHandle {
    state: Arc<State>,
    /// Bytes written through this open file and not committed yet.
    pending: Mutex<Option<Vec<u8>>>,
}

impl Handle for ReportDataHandle {
    fn read_at(&self, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        Ok(slice(&self.state.report().0, offset, size))
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let end = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(data.len()));
        let Some(end) = end.filter(|e| *e <= REPORT_DATA_LEN) else {
            let e = AttestationDevError::ReportDataSize {
                len: end.unwrap_or(usize::MAX),
            };
            return Err(report_errno("user_report_data", &e));
        };
        let mut pending = self.pending.lock().map_err(|_| Errno::EIO)?;
        let buf = pending.get_or_insert_with(Vec::new);
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[end - data.len()..end].copy_from_slice(data);
        Ok(data.len())
    }

    fn set_len(&self, len: u64) -> Result<(), Errno> {
        // `open(…, O_TRUNC)` (Python's "wb"), before the 64 bytes are written.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > REPORT_DATA_LEN {
            return Err(Errno::EINVAL);
        }
        let mut pending = self.pending.lock().map_err(|_| Errno::EIO)?;
        pending.get_or_insert_with(Vec::new).resize(len, 0);
        Ok(())
    }

    fn flush(&self) -> Result<(), Errno> {
        let Some(written) = self.pending.lock().map_err(|_| Errno::EIO)?.take() else {
            return Ok(());
        };
        let bytes: [u8; REPORT_DATA_LEN] = written.as_slice().try_into().map_err(|_| {
            report_errno(
                "user_report_data",
                &AttestationDevError::ReportDataSize { len: written.len() },
            )
        })?;
        if bytes[32..] == WORKLOAD_REPORT_DATA_TAG {
            return Err(report_errno(
                "user_report_data",
                &AttestationDevError::ReservedReportData,
            ));
        }
        let mut r = self.state.report.lock().unwrap_or_else(|p| p.into_inner());
        r.bytes = bytes;
        r.generation += 1;
        Ok(())
    }

    fn sync(&self, _datasync: bool) -> Result<(), Errno> {
        self.flush()
    }
}

/// An open `quote`: the evidence it has made, for the report data of which generation.
struct QuoteHandle {
    state: Arc<State>,
    quote: Mutex<Option<(u64, Vec<u8>)>>,
}

impl Handle for QuoteHandle {
    fn read_at(&self, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let mut quote = self.quote.lock().map_err(|_| Errno::EIO)?;
        let (report_data, generation) = self.state.report();
        // A read from the start after new report data makes a new quote; a read further on
        // continues the quote already begun.
        let stale = match &*quote {
            None => true,
            Some((made_for, _)) => offset == 0 && *made_for != generation,
        };
        if stale {
            let evidence = self
                .state
                .evidence(&report_data)
                .map_err(|e| report_errno("quote", &e))?;
            *quote = Some((generation, evidence.quote));
        }
        Ok(quote
            .as_ref()
            .map(|(_, q)| slice(q, offset, size))
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> AttestationView {
        AttestationView::new(Arc::new(OnceLock::new()))
    }

    const O_WRONLY: i32 = 0o1;

    #[test]
    fn report_data_is_exactly_64_bytes_committed_on_close() {
        let v = view();
        let read = |v: &AttestationView| {
            v.open(REPORT_DATA, 0)
                .and_then(|h| h.read_at(0, 4096))
                .unwrap()
        };
        assert_eq!(read(&v), vec![0; 64], "all zeros at first");

        // Two writes making 64 bytes: taken on close.
        let h = v.open(REPORT_DATA, O_WRONLY).unwrap();
        h.set_len(0).unwrap();
        h.write_at(0, &[7; 32]).unwrap();
        h.write_at(32, &[9; 32]).unwrap();
        assert_eq!(read(&v), vec![0; 64], "not before close");
        h.flush().unwrap();
        let want: Vec<u8> = [[7u8; 32], [9u8; 32]].concat();
        assert_eq!(read(&v), want);
        assert_eq!(v.state.report().1, 1);

        // 63 bytes: EINVAL on close, the old value kept; 65: EINVAL at once.
        let h = v.open(REPORT_DATA, O_WRONLY).unwrap();
        h.write_at(0, &[1; 63]).unwrap();
        assert_eq!(h.flush(), Err(Errno::EINVAL));
        assert_eq!(h.flush(), Ok(()), "reported once");
        let h = v.open(REPORT_DATA, O_WRONLY).unwrap();
        assert_eq!(h.write_at(0, &[1; 65]), Err(Errno::EINVAL));
        assert_eq!(h.write_at(60, &[1; 5]), Err(Errno::EINVAL));
        assert_eq!(h.set_len(65), Err(Errno::EINVAL));
        assert_eq!(read(&v), want);
        assert_eq!(v.state.report().1, 1);

        // A read-only open and close changes nothing.
        let h = v.open(REPORT_DATA, 0).unwrap();
        assert_eq!(h.flush(), Ok(()));
        assert_eq!(v.state.report().1, 1);

        // Report data ending in ward's workload tag: EPERM, the old value kept.
        let h = v.open(REPORT_DATA, O_WRONLY).unwrap();
        h.write_at(0, &[5; 32]).unwrap();
        h.write_at(32, &WORKLOAD_REPORT_DATA_TAG).unwrap();
        assert_eq!(h.flush(), Err(Errno::EPERM));
        assert_eq!(read(&v), want);
        assert_eq!(v.state.report().1, 1);
        let mut tagged = [0u8; 64];
        tagged[32..].copy_from_slice(&WORKLOAD_REPORT_DATA_TAG);
        assert!(matches!(
            v.state.evidence(&tagged),
            Err(AttestationDevError::ReservedReportData)
        ));
    }

    #[test]
    fn before_boot_the_files_say_try_again() {
        let v = view();
        assert_eq!(v.open(TYPE, 0).err(), Some(Errno::EAGAIN));
        let quote = v.open(QUOTE, 0).unwrap();
        assert_eq!(quote.read_at(0, 4096), Err(Errno::EAGAIN));
        // The layout is fixed, and only user_report_data is writable.
        assert_eq!(
            v.read_dir("/")
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect::<Vec<_>>(),
            ["attestation_type", "user_report_data", "quote"]
        );
        assert_eq!(v.open(QUOTE, O_WRONLY).err(), Some(Errno::EACCES));
        assert_eq!(v.open(TYPE, O_WRONLY).err(), Some(Errno::EACCES));
        assert_eq!(v.lookup("/keys").err(), Some(Errno::ENOENT));
        assert_eq!(v.create("/new", 0o644, 0).err(), Some(Errno::EACCES));
    }
}
