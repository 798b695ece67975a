//! The one harness every CLI test file shares: run the built `ward` in a directory, and expect
//! success or a clear failure.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `ward ARGS` in `dir`.
pub(crate) fn ward(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run ward")
}

/// Runs `ward ARGS` in `dir` and asserts it succeeded.
pub(crate) fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = ward(dir, args);
    assert!(
        out.status.success(),
        "ward {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `ward ARGS` in `dir`, asserts it failed with an `error:` line, and returns stderr.
pub(crate) fn fails(dir: &Path, args: &[&str]) -> String {
    let out = ward(dir, args);
    assert!(!out.status.success(), "ward {args:?} should have failed");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.starts_with("error: "),
        "one clear error line expected, got {err:?}"
    );
    err
}
