//! The host's layout as the workload will see it: merged-/usr links and symlink chains.

use std::fs;
use std::path::{Component, Path, PathBuf};

/// The top-level names that a merged-/usr host links into `/usr` and that the runtime then
/// recreates as links in the view (when `/usr` is mounted).
const MERGED: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// The host's merged-/usr links (`/lib` → `usr/lib`, …), read once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Host {
    merged: Vec<&'static str>,
}

impl Host {
    /// Reads which of `/bin`, `/lib`, … are links into `/usr` on this host.
    pub(crate) fn read() -> Host {
        let merged = MERGED
            .into_iter()
            .filter(|n| {
                fs::read_link(Path::new("/").join(n))
                    .is_ok_and(|t| t == Path::new("usr").join(n) || t == Path::new("/usr").join(n))
            })
            .collect();
        Host { merged }
    }

    /// `path` (absolute, normalised) with a merged-/usr first component replaced by its `/usr`
    /// directory: `/lib64/ld-linux-x86-64.so.2` → `/usr/lib64/ld-linux-x86-64.so.2`.
    pub(crate) fn usr_map(&self, path: &Path) -> PathBuf {
        let mut comps = path.components();
        if let (Some(Component::RootDir), Some(Component::Normal(first))) =
            (comps.next(), comps.next())
        {
            if self.merged.iter().any(|m| first == *m) {
                return Path::new("/usr").join(first).join(comps.as_path());
            }
        }
        path.to_path_buf()
    }

    /// Every path through which `path` resolves, as the program names it: the path itself, each
    /// symlink's target in turn (merged-/usr mapped), and the canonical file. Trusting all of
    /// them works whether the view follows a symlink on the host or shows it as a link.
    pub(crate) fn chain(&self, path: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut cur = self.usr_map(&normalize(path));
        // The kernel's limit on symlinks followed in one lookup.
        for _ in 0..40 {
            if !out.contains(&cur) {
                out.push(cur.clone());
            }
            match fs::read_link(&cur) {
                Ok(target) => {
                    let next = match cur.parent() {
                        Some(dir) if target.is_relative() => dir.join(target),
                        _ => target,
                    };
                    cur = self.usr_map(&normalize(&next));
                }
                Err(_) => break,
            }
        }
        if let Ok(canon) = fs::canonicalize(path) {
            let canon = self.usr_map(&canon);
            if !out.contains(&canon) {
                out.push(canon);
            }
        }
        out
    }
}

/// Lexical normalisation of an absolute path: `.` dropped, `..` removes the previous component.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_maps() {
        assert_eq!(
            normalize(Path::new("/usr/lib/../bin/./x")),
            Path::new("/usr/bin/x")
        );
        let h = Host {
            merged: vec!["lib64", "lib"],
        };
        assert_eq!(
            h.usr_map(Path::new("/lib64/ld.so")),
            Path::new("/usr/lib64/ld.so")
        );
        assert_eq!(h.usr_map(Path::new("/libfoo/x")), Path::new("/libfoo/x"));
        assert_eq!(h.usr_map(Path::new("/etc/x")), Path::new("/etc/x"));
    }
}
