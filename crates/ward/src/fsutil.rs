//! Writing outputs safely: a temporary file beside the target, renamed into place only once it is
//! complete, synced and checked; on any failure the temporary file is removed and an existing
//! target is left untouched.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use tempfile::NamedTempFile;

/// Creates a temporary file in the directory of `target` (which is created if missing).
pub fn temp_beside(target: &Path) -> Result<NamedTempFile> {
    let dir = parent_dir(target);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating directory {}", dir.display()))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".ward-tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

/// Syncs `tmp`, sets its mode, renames it to `target` and syncs the directory.
pub fn commit(tmp: NamedTempFile, target: &Path, mode: u32) -> Result<()> {
    tmp.as_file()
        .sync_all()
        .context("syncing the temporary output")?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .context("setting permissions on the output")?;
    tmp.persist(target)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming the output into place at {}", target.display()))?;
    File::open(parent_dir(target))
        .and_then(|d| d.sync_all())
        .context("syncing the output directory")?;
    Ok(())
}

/// Writes a new file that must not exist yet, with mode 0600.
pub fn create_secret_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            if path.exists() {
                format!(
                    "{} already exists; refusing to overwrite a key",
                    path.display()
                )
            } else {
                format!("creating {}", path.display())
            }
        })?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
