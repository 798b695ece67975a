//! The one harness every CLI test file shares: run the built `ward` in a directory, and expect
//! success or a clear failure.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
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

/// Asserts a finished `ward` succeeded (showing both streams if not); returns its stdout.
pub(crate) fn succeeded(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a finished `ward` failed; returns its stderr.
pub(crate) fn failed(out: Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("refused as expected: {err}");
    err
}

/// A `ward provision serve` child, killed when dropped, and the console lines it printed.
pub(crate) struct Server(Child, std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Server {
    /// Sends the server SIGHUP (reload).
    pub(crate) fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// The stderr lines it printed (but "listening on"), waiting up to a second for one that
    /// contains `want` (the server prints asynchronously).
    pub(crate) fn console_until(&self, want: &str) -> Vec<String> {
        for _ in 0..100 {
            let lines = self.1.lock().unwrap().clone();
            if lines.iter().any(|l| l.contains(want)) {
                return lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.1.lock().unwrap().clone()
    }
}

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
    // Warnings about its policies may come first; the address is on the "listening on" line.
    let mut before = Vec::new();
    let addr = loop {
        let Some(line) = lines.next().and_then(Result::ok) else {
            panic!("the server exited before listening: {before:?}");
        };
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(' ').next().unwrap_or_default().to_string();
        }
        before.push(line);
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    let console = std::sync::Arc::new(std::sync::Mutex::new(before));
    let kept = console.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    (Server(child, console), addr)
}

/// A loopback port free right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

// ---- confined programs (`ward run` of python3): shared by the program_* tests ----

pub(crate) fn confined_skip_reason() -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    if !Path::new("/usr/bin/python3").exists() {
        return Some("no /usr/bin/python3".into());
    }
    None
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid() == 0
        })
        .unwrap_or(false)
}

pub(crate) fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The interpreter's real file, the shared objects it loads and its stdlib, as `file:` URIs:
/// what a manifest must trust for `python3` to start (`ldd` resolves them as the loader would).
pub(crate) fn python_trusted() -> (PathBuf, Vec<String>) {
    let python = std::fs::canonicalize("/usr/bin/python3").unwrap();
    let out = Command::new("ldd").arg(&python).output().unwrap();
    let mut uris = vec![format!("file:{}", python.display())];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)" or "/lib64/ld-linux… (0x…)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path {
            // The view shows the host's /lib as /usr/lib (merged /usr); trust the name the
            // loader opens there, and the file it resolves to.
            let under_usr = if path.starts_with("/usr/") {
                path.to_string()
            } else {
                format!("/usr{path}")
            };
            uris.push(format!("file:{under_usr}"));
            let real = std::fs::canonicalize(path).unwrap();
            uris.push(format!("file:{}", real.display()));
        }
    }
    let stdlib = python
        .file_name()
        .map(|n| format!("file:/usr/lib/{}/", n.to_string_lossy()))
        .unwrap();
    uris.push(stdlib);
    uris.sort();
    uris.dedup();
    (python, uris)
}
