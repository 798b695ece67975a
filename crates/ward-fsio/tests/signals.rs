//! SIGINT/SIGTERM remove the temporaries in progress: a child process (this test binary,
//! re-run in child mode) holds an uncommitted output, the parent signals it with `kill`.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD_DIR: &str = "WARD_FSIO_TEST_CHILD_DIR";

/// In child mode: install the cleanup, start an output over `out`, say so, wait to be killed.
#[test]
fn child_holds_an_output_in_progress() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return; // not run as the child: nothing to do
    };
    let dir = Path::new(&dir);
    ward_fsio::install_signal_cleanup().unwrap();
    ward_fsio::install_signal_cleanup().unwrap(); // a second call is harmless
    let mut out = ward_fsio::AtomicFile::create(dir.join("out")).unwrap();
    out.write_all(b"partial output").unwrap();
    std::fs::write(dir.join("ready"), b"").unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn signal_child(signal: &str, expected_code: i32) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("out"), b"previous output").unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_an_output_in_progress",
            "--nocapture",
        ])
        .env(CHILD_DIR, d.path())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.path().join("ready").exists() {
        assert!(Instant::now() < deadline, "the child never got ready");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child exited early"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let temps = || {
        std::fs::read_dir(d.path())
            .unwrap()
            .filter(|e| ward_fsio::is_temp_name(e.as_ref().unwrap().file_name()))
            .count()
    };
    assert_eq!(temps(), 1, "the output in progress has its temporary");
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(expected_code), "{status:?}");
    assert_eq!(temps(), 0, "the temporary was removed");
    assert_eq!(
        std::fs::read(d.path().join("out")).unwrap(),
        b"previous output"
    );
}

#[test]
fn sigint_removes_temporaries_and_exits_130() {
    if std::env::var_os(CHILD_DIR).is_none() {
        signal_child("-INT", 130);
    }
}

#[test]
fn sigterm_removes_temporaries_and_exits_143() {
    if std::env::var_os(CHILD_DIR).is_none() {
        signal_child("-TERM", 143);
    }
}
