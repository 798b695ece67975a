//! Ctrl-C (SIGINT) and SIGTERM during `ward pf encrypt`/`decrypt` leave nothing behind: the
//! temporary of the output in progress (and so any partial plaintext) is removed, an existing
//! output is untouched, and the exit status is 130 / 143. Signals are sent with the `kill`
//! command, as a user would.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ward(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ward"));
    c.current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn run_ok(dir: &Path, args: &[&str]) {
    let out = ward(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ward {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn temps(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".ward-tmp"))
        .collect()
}

/// Waits until `child` has a temporary in `dir` holding at least `min_len` bytes.
fn wait_for_temp(child: &mut Child, dir: &Path, min_len: u64) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(t) = temps(dir)
            .into_iter()
            .find(|t| fs::metadata(t).is_ok_and(|m| m.len() >= min_len))
        {
            return t;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ward exited before it was signalled: {status:?}");
        }
        assert!(Instant::now() < deadline, "no temporary appeared");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal}");
}

/// Encrypts from a FIFO that the test keeps open, so ward is mid-encrypt for as long as the
/// test likes: the signal always lands while the output is in progress.
fn interrupt_encrypt(signal: &str, expected_code: i32) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    run_ok(p, &["pf", "keygen", "-o", "k"]);
    let status = Command::new("mkfifo").arg(p.join("fifo")).status().unwrap();
    assert!(status.success());
    fs::write(p.join("out.pf"), b"the previous output").unwrap();
    let mut child = ward(p)
        .args(["pf", "encrypt", "-w", "k", "-i", "fifo", "-o", "out.pf"])
        .args(["--threads", "1"])
        .spawn()
        .unwrap();
    let fifo = p.join("fifo");
    // Opening a FIFO's write end blocks until ward opens the read end, so on a thread.
    let writer = std::thread::spawn(move || {
        let mut w = fs::OpenOptions::new().write(true).open(fifo).unwrap();
        w.write_all(&vec![0x5a; 8 << 20]).unwrap();
        w // kept open: ward waits for the rest of its input
    });
    let temp = wait_for_temp(&mut child, p, 0);
    let w = writer.join().unwrap();
    kill(&child, signal);
    let out = child.wait_with_output().unwrap();
    drop(w);
    assert_eq!(
        out.status.code(),
        Some(expected_code),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!temp.exists(), "{} left behind", temp.display());
    assert!(temps(p).is_empty());
    assert_eq!(fs::read(p.join("out.pf")).unwrap(), b"the previous output");
}

#[test]
fn sigint_during_encrypt_leaves_nothing_behind() {
    interrupt_encrypt("-INT", 130);
}

#[test]
fn sigterm_during_encrypt_leaves_nothing_behind() {
    interrupt_encrypt("-TERM", 143);
}

#[test]
fn sigint_during_decrypt_removes_the_partial_plaintext() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    run_ok(p, &["pf", "keygen", "-o", "k"]);
    // 2 GiB of plaintext, sparse, so it is written instantly; its ciphertext is real.
    fs::File::create(p.join("big"))
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    run_ok(
        p,
        &[
            "pf",
            "encrypt",
            "-w",
            "k",
            "-i",
            "big",
            "-o",
            "big.pf",
            "--no-verify",
        ],
    );
    fs::remove_file(p.join("big")).unwrap();
    fs::write(p.join("big"), b"the previous plaintext").unwrap();
    let mut child = ward(p)
        .args(["pf", "decrypt", "-w", "k", "-i", "big.pf", "-o", "big"])
        .args(["--threads", "1"])
        .spawn()
        .unwrap();
    // Some plaintext has reached the temporary: that is what must not survive.
    let temp = wait_for_temp(&mut child, p, 1);
    kill(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !temp.exists(),
        "partial plaintext {} left behind",
        temp.display()
    );
    assert!(temps(p).is_empty());
    assert_eq!(fs::read(p.join("big")).unwrap(), b"the previous plaintext");
}
