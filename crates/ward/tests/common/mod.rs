//! The one harness every CLI test file shares: run the built `ward` in a directory, and expect
//! success or a clear failure.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

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

/// A `ward provision serve` child, killed when dropped.
pub(crate) struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ward provision serve ARGS` in `dir`; returns it once listening, and its address.
pub(crate) fn serve(dir: &Path, args: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["provision", "serve"])
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ward provision serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let line = lines.next().and_then(Result::ok).unwrap_or_default();
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Server(child), addr)
}

/// A loopback port free right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
