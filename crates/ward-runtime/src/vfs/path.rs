//! Workload and host path arithmetic: purely lexical, no file system access.

use super::VfsError;
use std::path::{Component, Path, PathBuf};

/// Normalises a workload path: rejects an empty path and NUL bytes, drops `.` and empty
/// components, and resolves `..` lexically without ever going above `/` (as POSIX does for `/..`).
/// A relative path is taken relative to `/`, the workload's working directory (Gramine's default).
///
/// The result is absolute and has no `.`, `..` or empty components: `/`, `/a`, `/a/b`, ….
pub fn normalize_path(path: &str) -> Result<String, VfsError> {
    if path.is_empty() {
        return Err(VfsError::InvalidPath {
            path: String::new(),
            reason: "the path is empty",
        });
    }
    if path.contains('\0') {
        return Err(VfsError::InvalidPath {
            path: path.replace('\0', "\\0"),
            reason: "the path contains a NUL byte",
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// If normalised `path` is `mount` or below it, the part below (`""` for the mount itself).
pub(crate) fn strip_mount<'a>(path: &'a str, mount: &str) -> Option<&'a str> {
    if mount == "/" {
        return Some(path.trim_start_matches('/'));
    }
    let rest = path.strip_prefix(mount)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

/// `path` made absolute against `cwd` and normalised lexically (`.` dropped, `..` popped, never
/// above the root).
pub(crate) fn lexical_abs(path: &Path, cwd: &Path) -> PathBuf {
    let joined;
    let path = if path.is_absolute() {
        path
    } else {
        joined = cwd.join(path);
        &joined
    };
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::Prefix(_) | Component::RootDir => out.push(comp.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(c) => out.push(c),
        }
    }
    out
}

/// `host` joined with `rel` (a normalised relative workload path, no `..`).
pub(crate) fn join_rel(host: &Path, rel: &str) -> PathBuf {
    if rel.is_empty() {
        host.to_path_buf()
    } else {
        host.join(rel)
    }
}

/// How a host path is shown in messages: as the manifest spells it (relative stays relative),
/// normalised the way Gramine normalises URIs.
pub(crate) fn host_display(host: &Path, rel: &str) -> String {
    let joined = join_rel(host, rel);
    let shown = ward_pf::normalize(&joined.to_string_lossy());
    if shown.is_empty() {
        ".".to_string()
    } else {
        shown
    }
}

/// The path a protected file at `rel` below an encrypted mount is bound to.
pub(crate) fn bound_path(bound_prefix: &str, rel: &str) -> String {
    if rel.is_empty() {
        ward_pf::normalize(bound_prefix)
    } else {
        ward_pf::normalize(&format!("{bound_prefix}/{rel}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(normalize_path("/").unwrap(), "/");
        assert_eq!(normalize_path("/a/./b//c/").unwrap(), "/a/b/c");
        assert_eq!(normalize_path("/a/../../etc").unwrap(), "/etc");
        assert_eq!(normalize_path("a/b").unwrap(), "/a/b");
        assert_eq!(normalize_path("..").unwrap(), "/");
        assert!(normalize_path("").is_err());
        assert!(normalize_path("/a\0b").is_err());
    }

    #[test]
    fn mounts() {
        assert_eq!(strip_mount("/data/x", "/data"), Some("x"));
        assert_eq!(strip_mount("/data", "/data"), Some(""));
        assert_eq!(strip_mount("/database", "/data"), None);
        assert_eq!(strip_mount("/x/y", "/"), Some("x/y"));
        assert_eq!(strip_mount("/", "/"), Some(""));
    }

    #[test]
    fn host_paths() {
        assert_eq!(host_display(Path::new("."), "app/x.py"), "app/x.py");
        assert_eq!(host_display(Path::new("app"), ""), "app");
        assert_eq!(host_display(Path::new("."), ""), ".");
        assert_eq!(bound_path("encrypted", "x/y.bin"), "encrypted/x/y.bin");
        assert_eq!(bound_path("./enc/", ""), "enc");
        assert_eq!(
            lexical_abs(Path::new("a/../b/./c"), Path::new("/w")),
            PathBuf::from("/w/b/c")
        );
        assert_eq!(
            lexical_abs(Path::new("/../x"), Path::new("/w")),
            PathBuf::from("/x")
        );
    }
}
