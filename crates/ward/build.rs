//! Records the git commit for `ward --version` in `WARD_GIT_COMMIT`: "commit <12 hex>", with
//! ", dirty" when tracked files differ from it, or "unknown commit" when this is not a git
//! checkout or git is missing (a crates.io or tarball build).

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

/// A path that does not exist would make cargo rerun this script on every build.
fn rerun_if_exists(path: PathBuf) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let text = match &commit {
        Some(c) if !c.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!("commit {c}{}", if dirty { ", dirty" } else { "" })
        }
        _ => "unknown commit".to_string(),
    };
    println!("cargo:rustc-env=WARD_GIT_COMMIT={text}");

    // Rerun when HEAD moves (checkout: HEAD; commit: the branch's ref, loose or packed), when
    // the index changes, and when sources change (for ", dirty").
    if let Some(dir) = git(&["rev-parse", "--git-dir"]).map(PathBuf::from) {
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        rerun_if_exists(dir.join("index"));
        let common = git(&["rev-parse", "--git-common-dir"])
            .map(PathBuf::from)
            .unwrap_or(dir);
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            rerun_if_exists(common.join(r));
        }
        rerun_if_exists(common.join("packed-refs"));
    }
    if let Some(top) = git(&["rev-parse", "--show-toplevel"]) {
        println!("cargo:rerun-if-changed={top}/crates");
    }
}
