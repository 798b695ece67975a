//! Trusting a directory tree so that `ward sign` can record it and the runtime can serve it.
//!
//! `ward sign` records a trusted directory as a tree whose symlinks stay symlinks, resolved in the
//! workload's view at run time. A link that dangles, or leads out of the mount, would then show the
//! program nothing, and a link to a directory another name for a subtree. So a directory is trusted
//! whole only when its subtree is *clean*: no dangling symlink, no symlink leading out of the
//! mount, no symlink to a directory, no excluded name. An unclean directory is listed file by file
//! instead (a single trusted file is served with the content its hash pins, wherever a host link
//! leads), with clean subdirectories still trusted whole, and what was left out is reported.

use crate::error::{io_err, TemplateError};
use std::fs;
use std::path::{Path, PathBuf};

/// Something left out of a trusted tree, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Skipped {
    /// The host path left out.
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

/// Why a path was left out of a trusted tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// A symlink whose target does not exist (signing would fail on it).
    Dangling,
    /// A symlink leading out of the mount (the runtime would refuse it), to this target.
    Escapes(PathBuf),
    /// A symlink to a directory (the hasher would follow it, possibly in a loop).
    DirectoryLink,
    /// Its name is excluded.
    Excluded,
}

/// What trusting a tree gives.
#[derive(Debug, Default)]
pub(crate) struct Trusted {
    /// Entries for `sgx.trusted_files`: directories (clean subtrees, `is_dir` true) and files.
    pub(crate) entries: Vec<(PathBuf, bool)>,
    /// Every regular file reachable (for finding extension modules).
    pub(crate) files: Vec<PathBuf>,
    /// The canonical targets of symlinks kept (to trust too, if not covered).
    pub(crate) link_targets: Vec<PathBuf>,
    /// What was left out.
    pub(crate) skipped: Vec<Skipped>,
}

/// Whether directory `name` matches a pattern: the name itself, or a prefix written `PREFIX*`.
fn excluded(name: &std::ffi::OsStr, patterns: &[String]) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == p,
    })
}

/// Trusts `dir`, which lies in the mount whose host directory is `mount_root`; directories whose
/// name matches a pattern of `exclude` (`NAME` or `PREFIX*`) are left out.
pub(crate) fn trust(
    dir: &Path,
    mount_root: &Path,
    exclude: &[String],
) -> Result<Trusted, TemplateError> {
    let root = fs::canonicalize(mount_root).map_err(io_err("resolving", mount_root))?;
    let mut out = Trusted::default();
    let (clean, entries, any) = go(dir, &root, exclude, &mut out)?;
    if clean {
        if any {
            out.entries.push((dir.to_owned(), true));
        }
    } else {
        out.entries.extend(entries);
    }
    Ok(out)
}

// (clean, entries when not collapsed, whether any file is below)
type Scan = (bool, Vec<(PathBuf, bool)>, bool);

fn go(
    dir: &Path,
    root: &Path,
    exclude: &[String],
    out: &mut Trusted,
) -> Result<Scan, TemplateError> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io_err("listing", dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err("listing", dir))?;
    names.sort();
    let mut clean = true;
    let mut any = false;
    let mut entries = Vec::new();
    let skip = |out: &mut Trusted, path: PathBuf, reason| {
        out.skipped.push(Skipped { path, reason });
        false
    };
    for name in names {
        let path = dir.join(&name);
        let md = fs::symlink_metadata(&path).map_err(io_err("reading metadata of", &path))?;
        if md.is_symlink() {
            let Ok(target) = fs::canonicalize(&path) else {
                clean = skip(out, path, SkipReason::Dangling);
                continue;
            };
            if !target.starts_with(root) {
                clean = skip(out, path, SkipReason::Escapes(target));
                continue;
            }
            if target.is_dir() {
                clean = skip(out, path, SkipReason::DirectoryLink);
                continue;
            }
            if target.is_file() {
                out.files.push(path.clone());
                out.link_targets.push(target);
                entries.push((path, false));
                any = true;
            }
        } else if md.is_dir() {
            if excluded(&name, exclude) {
                clean = skip(out, path, SkipReason::Excluded);
                continue;
            }
            let (sub_clean, sub, sub_any) = go(&path, root, exclude, out)?;
            if sub_clean {
                if sub_any {
                    entries.push((path, true));
                }
            } else {
                clean = false;
                entries.extend(sub);
            }
            any |= sub_any;
        } else if md.is_file() {
            out.files.push(path.clone());
            entries.push((path, false));
            any = true;
        }
        // Sockets, FIFOs, devices: neither hashed nor served; nothing to list.
    }
    Ok((clean, entries, any))
}
