//! The process-wide registry of temporaries in progress, and the signal thread that removes them.
//!
//! signal-hook delivers SIGINT/SIGTERM to an ordinary thread (its handler only writes to a
//! self-pipe), so the removal runs outside signal context with no `unsafe` code here; ctrlc
//! would do too but does not say which signal came, and the exit status should (130 vs 143).

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

static REGISTRY: Mutex<BTreeMap<u64, PathBuf>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static INSTALLED: Mutex<bool> = Mutex::new(false);

fn registry() -> MutexGuard<'static, BTreeMap<u64, PathBuf>> {
    // A panic elsewhere while holding the lock leaves the map intact; keep using it.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers `path` as a temporary in progress; returns its ticket for [`unregister`].
///
/// Called *before* the file is created, so there is no moment when it exists unregistered.
pub(crate) fn register(path: &Path) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    registry().insert(id, path.to_owned());
    id
}

pub(crate) fn unregister(id: u64) {
    registry().remove(&id);
}

pub(crate) fn is_registered(path: &Path) -> bool {
    registry().values().any(|p| p == path)
}

/// Installs the SIGINT/SIGTERM cleanup, once per process (later calls do nothing).
///
/// On either signal every temporary registered by a live [`AtomicFile`](crate::AtomicFile) is
/// removed, then the process exits with status 128 + the signal number: 130 for SIGINT, 143 for
/// SIGTERM, as a shell reports a process killed by them. Destructors of other threads do not run,
/// which is why the registry, not `Drop`, does the removal. Outputs already renamed into place
/// are complete and stay.
pub fn install_signal_cleanup() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *installed {
        return Ok(());
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|source| Error::Signals { source })?;
    std::thread::Builder::new()
        .name("ward-fsio-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // The lock is held until exit: no new temporary can be registered (and so none
                // created) after the sweep.
                let temps = registry();
                for path in temps.values() {
                    let _ = std::fs::remove_file(path);
                }
                std::process::exit(128 + signal);
            }
        })
        .map_err(|source| Error::Signals { source })?;
    *installed = true;
    Ok(())
}
