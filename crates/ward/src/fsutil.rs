//! Writing outputs safely, for the CLI modules not yet calling ward-fsio directly: thin wrappers
//! over [`ward_fsio`] (a temporary beside the target, renamed into place only once complete and
//! synced; removed on failure, Ctrl-C or SIGTERM).

use anyhow::Result;
use std::path::Path;
use ward_fsio::AtomicFile;

/// Starts an output beside `target` (its directory is created if missing), with the signal
/// cleanup installed so Ctrl-C leaves no temporary behind.
pub fn temp_beside(target: &Path) -> Result<AtomicFile> {
    ward_fsio::install_signal_cleanup()?;
    Ok(AtomicFile::create(target)?)
}

/// Syncs `tmp`, sets its mode, renames it over its target and syncs the directory.
pub fn commit(tmp: AtomicFile, target: &Path, mode: u32) -> Result<()> {
    debug_assert_eq!(
        tmp.target(),
        target,
        "an output commits to the target it was made for"
    );
    Ok(tmp.commit(mode)?)
}

/// Writes a new file that must not exist yet, with mode 0600.
pub fn create_secret_file(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(ward_fsio::create_secret_file(path, bytes)?)
}
