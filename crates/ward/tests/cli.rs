//! The `ward pf` commands as a user runs them: exit codes, files left behind, messages.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ward(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run ward")
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = ward(dir, args);
    assert!(
        out.status.success(),
        "ward {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = ward(dir, args);
    assert!(!out.status.success(), "ward {args:?} should have failed");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.starts_with("error: "),
        "one clear error line expected, got {err:?}"
    );
    err
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ward-pf/tests/data/gramine")
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn keygen_makes_a_private_key_and_never_overwrites() {
    let d = tempfile::tempdir().unwrap();
    ok(d.path(), &["pf", "keygen", "-o", "k"]);
    let meta = fs::metadata(d.path().join("k")).unwrap();
    assert_eq!(meta.len(), 16);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let before = fs::read(d.path().join("k")).unwrap();
    let err = fails(d.path(), &["pf", "keygen", "-o", "k"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(fs::read(d.path().join("k")).unwrap(), before);
}

#[test]
fn gramine_files_decrypt_with_path_check() {
    let d = tempfile::tempdir().unwrap();
    let v = vectors();
    let out = d.path().join("model.out");
    // Run from the vector folder so the relative input path is the bound path.
    ok(
        &v,
        &[
            "pf",
            "decrypt",
            "-w",
            "wrap_key.bin",
            "-i",
            "encrypted/../encrypted/data/model.pt",
            "-o",
            out.to_str().unwrap(),
            "--path",
            "data/model.pt",
        ],
    );
    assert_eq!(
        fs::read(&out).unwrap(),
        fs::read(v.join("plaintext/size_3000.bin")).unwrap()
    );
    let enc = v.join("encrypted");
    ok(
        &enc,
        &[
            "pf",
            "decrypt",
            "-w",
            "../wrap_key.bin",
            "-i",
            "./data/model.pt",
            "-o",
            out.to_str().unwrap(),
            "-V",
        ],
    );
    ok(
        &enc,
        &[
            "pf",
            "verify",
            "-w",
            "../wrap_key.bin",
            "-i",
            "size_100000.pf",
            "-V",
        ],
    );
    // Under another name the -V check fails, and names both paths.
    fs::copy(enc.join("size_3000.pf"), d.path().join("renamed.pf")).unwrap();
    fs::copy(v.join("wrap_key.bin"), d.path().join("k")).unwrap();
    let err = fails(
        d.path(),
        &[
            "pf",
            "decrypt",
            "-w",
            "k",
            "-i",
            "renamed.pf",
            "-o",
            "x",
            "-V",
        ],
    );
    assert!(
        err.contains("size_3000.pf") && err.contains("renamed.pf"),
        "{err}"
    );
    assert!(!d.path().join("x").exists());
}

#[test]
fn encrypt_binds_the_output_path_and_round_trips() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(p, &["pf", "keygen", "-o", "k"]);
    fs::write(p.join("plain"), sample(200_000)).unwrap();
    fs::create_dir(p.join("enc")).unwrap();
    ok(
        p,
        &[
            "pf",
            "encrypt",
            "-w",
            "k",
            "-i",
            "plain",
            "-o",
            "./enc/../enc/plain.pf",
        ],
    );
    let info = ok(p, &["pf", "info", "-w", "k", "-i", "enc/plain.pf"]);
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("\"enc/plain.pf\"") && info.contains("200000 bytes") && info.contains("2.0"),
        "{info}"
    );
    ok(
        p,
        &[
            "pf",
            "decrypt",
            "-w",
            "k",
            "-i",
            "enc/plain.pf",
            "-o",
            "back",
            "-V",
            "--threads",
            "1",
        ],
    );
    assert_eq!(fs::read(p.join("back")).unwrap(), sample(200_000));
    assert_eq!(
        fs::metadata(p.join("back")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // --path binds what it is told.
    ok(
        p,
        &[
            "pf",
            "encrypt",
            "-w",
            "k",
            "-i",
            "plain",
            "-o",
            "other.pf",
            "--path",
            "/in/enclave/plain",
        ],
    );
    ok(
        p,
        &[
            "pf",
            "verify",
            "-w",
            "k",
            "-i",
            "other.pf",
            "--path",
            "/in/enclave/./plain",
        ],
    );
    fails(p, &["pf", "verify", "-w", "k", "-i", "other.pf", "-V"]);
    // Info without the key shows only the header.
    let info = ok(p, &["pf", "info", "-i", "other.pf"]);
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("nodes:") && !info.contains("bound path:"),
        "{info}"
    );
}

#[test]
fn failures_leave_existing_outputs_untouched() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(p, &["pf", "keygen", "-o", "k"]);
    ok(p, &["pf", "keygen", "-o", "wrong"]);
    fs::write(p.join("plain"), sample(50_000)).unwrap();
    ok(
        p,
        &["pf", "encrypt", "-w", "k", "-i", "plain", "-o", "f.pf"],
    );
    fs::write(p.join("out"), b"precious").unwrap();

    let err = fails(
        p,
        &["pf", "decrypt", "-w", "wrong", "-i", "f.pf", "-o", "out"],
    );
    assert!(err.contains("wrong key"), "{err}");
    assert_eq!(fs::read(p.join("out")).unwrap(), b"precious");

    let mut bytes = fs::read(p.join("f.pf")).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x40;
    fs::write(p.join("bad.pf"), &bytes).unwrap();
    let err = fails(
        p,
        &["pf", "decrypt", "-w", "k", "-i", "bad.pf", "-o", "out"],
    );
    assert!(err.contains("data node 11"), "{err}");
    assert_eq!(fs::read(p.join("out")).unwrap(), b"precious");
    let err = fails(p, &["pf", "verify", "-w", "k", "-i", "bad.pf"]);
    assert!(err.contains("NOT intact"), "{err}");

    fs::write(p.join("short.pf"), &bytes[..n - 4096]).unwrap();
    let err = fails(p, &["pf", "verify", "-w", "k", "-i", "short.pf"]);
    assert!(err.contains("truncated"), "{err}");

    let err = fails(
        p,
        &["pf", "decrypt", "-w", "plain", "-i", "f.pf", "-o", "out"],
    );
    assert!(err.contains("16 raw bytes"), "{err}");
    let err = fails(
        p,
        &["pf", "encrypt", "-w", "k", "-i", "missing", "-o", "out"],
    );
    assert!(err.contains("missing"), "{err}");
    assert_eq!(fs::read(p.join("out")).unwrap(), b"precious");
    // No temporary files are left behind.
    let leftovers: Vec<_> = fs::read_dir(p)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("ward-tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn rewrap_in_place_and_to_a_new_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(p, &["pf", "keygen", "-o", "old"]);
    ok(p, &["pf", "keygen", "-o", "new"]);
    fs::write(p.join("plain"), sample(300_000)).unwrap();
    ok(
        p,
        &["pf", "encrypt", "-w", "old", "-i", "plain", "-o", "f.pf"],
    );
    let before = fs::read(p.join("f.pf")).unwrap();
    ok(
        p,
        &[
            "pf",
            "rewrap",
            "-w",
            "old",
            "--new-key",
            "new",
            "-i",
            "f.pf",
            "-o",
            "g.pf",
        ],
    );
    assert_eq!(
        fs::read(p.join("f.pf")).unwrap(),
        before,
        "-o leaves the input alone"
    );
    ok(
        p,
        &[
            "pf",
            "rewrap",
            "-w",
            "old",
            "--new-key",
            "new",
            "-i",
            "f.pf",
        ],
    );
    let after = fs::read(p.join("f.pf")).unwrap();
    assert_eq!(
        after[4096..],
        before[4096..],
        "only the metadata node changes"
    );
    assert!(!p.join("f.pf.ward-rewrap").exists());
    fails(p, &["pf", "verify", "-w", "old", "-i", "f.pf"]);
    // Rewrapping does not rebind: g.pf is still bound to f.pf.
    for f in ["f.pf", "g.pf"] {
        ok(
            p,
            &[
                "pf", "decrypt", "-w", "new", "-i", f, "-o", "back", "--path", "f.pf",
            ],
        );
        assert_eq!(fs::read(p.join("back")).unwrap(), sample(300_000));
    }
    // The old key no longer opens it, and a wrong old key changes nothing.
    let err = fails(
        p,
        &[
            "pf",
            "rewrap",
            "-w",
            "old",
            "--new-key",
            "new",
            "-i",
            "f.pf",
        ],
    );
    assert!(err.contains("wrong key"), "{err}");
    assert_eq!(fs::read(p.join("f.pf")).unwrap(), after);
}

#[test]
fn directories_are_processed_recursively() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(p, &["pf", "keygen", "-o", "k"]);
    fs::create_dir_all(p.join("in/sub/deeper")).unwrap();
    fs::write(p.join("in/a.bin"), sample(10)).unwrap();
    fs::write(p.join("in/sub/b.bin"), sample(5000)).unwrap();
    fs::write(p.join("in/sub/deeper/c.bin"), sample(70_000)).unwrap();
    ok(p, &["pf", "encrypt", "-w", "k", "-i", "in", "-o", "enc"]);
    // Each file binds its own output path, so -V works file by file.
    ok(p, &["pf", "verify", "-w", "k", "-i", "enc", "-V"]);
    ok(
        p,
        &["pf", "decrypt", "-w", "k", "-i", "enc", "-o", "out", "-V"],
    );
    for f in ["a.bin", "sub/b.bin", "sub/deeper/c.bin"] {
        assert_eq!(
            fs::read(p.join("out").join(f)).unwrap(),
            fs::read(p.join("in").join(f)).unwrap()
        );
    }
    // One bad file in a tree: the others still decrypt, the exit status says it failed.
    let bad = p.join("enc/sub/b.bin");
    let mut bytes = fs::read(&bad).unwrap();
    bytes[5000] ^= 1;
    fs::write(&bad, bytes).unwrap();
    let err = fails(p, &["pf", "verify", "-w", "k", "-i", "enc"]);
    assert!(
        err.contains("b.bin") && err.contains("1 of 3 files failed"),
        "{err}"
    );
}
