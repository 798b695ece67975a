//! The `ward pf` commands as a user runs them: exit codes, files left behind, messages.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

mod common;
use common::{fails, ok, ward};

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
    // The path it was opened as, but not the one it is bound to (decrypted metadata).
    assert!(
        !err.contains("size_3000.pf") && err.contains("not bound to \"renamed.pf\""),
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

fn temps_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            found.extend(temps_under(&e.path()));
        } else if e.file_name().to_string_lossy().ends_with(".ward-tmp") {
            found.push(e.path());
        }
    }
    found
}

#[test]
fn an_output_is_never_written_over_its_own_input() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(p, &["pf", "keygen", "-o", "k"]);
    fs::create_dir(p.join("enc")).unwrap();
    fs::write(p.join("plain"), sample(9000)).unwrap();
    ok(
        p,
        &["pf", "encrypt", "-w", "k", "-i", "plain", "-o", "enc/x"],
    );
    let cipher = fs::read(p.join("enc/x")).unwrap();

    // The same file, by another spelling or a hard link.
    fs::hard_link(p.join("enc/x"), p.join("link")).unwrap();
    for out in ["enc/x", "./enc/../enc/x", "link"] {
        let err = fails(p, &["pf", "decrypt", "-w", "k", "-i", "enc/x", "-o", out]);
        assert!(err.contains("over its own input"), "{out}: {err}");
        assert_eq!(fs::read(p.join("enc/x")).unwrap(), cipher, "{out}");
    }
    let err = fails(
        p,
        &["pf", "encrypt", "-w", "k", "-i", "plain", "-o", "plain"],
    );
    assert!(err.contains("over its own input"), "{err}");
    assert_eq!(fs::read(p.join("plain")).unwrap(), sample(9000));
    ok(p, &["pf", "keygen", "-o", "k2"]);
    let err = fails(
        p,
        &[
            "pf",
            "rewrap",
            "-w",
            "k",
            "--new-key",
            "k2",
            "-i",
            "enc/x",
            "-o",
            "./enc/x",
        ],
    );
    assert!(err.contains("over its own input"), "{err}");
    assert_eq!(fs::read(p.join("enc/x")).unwrap(), cipher);

    // A directory output inside the input directory, which the walk would take as input.
    for out in ["enc", "enc/plain", "./enc/sub/../plain"] {
        let err = fails(p, &["pf", "decrypt", "-w", "k", "-i", "enc", "-o", out]);
        assert!(err.contains("inside the input directory"), "{out}: {err}");
    }
    assert!(!p.join("enc/plain").exists());
    assert_eq!(fs::read_dir(p.join("enc")).unwrap().count(), 1);
    assert!(temps_under(p).is_empty());
}

#[test]
fn stale_temporaries_are_skipped_cleaned_and_replaced() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(p, &["pf", "keygen", "-o", "k"]);
    fs::create_dir_all(p.join("in/sub")).unwrap();
    fs::write(p.join("in/a.bin"), sample(100)).unwrap();
    fs::write(p.join("in/sub/b.bin"), sample(5000)).unwrap();
    ok(p, &["pf", "encrypt", "-w", "k", "-i", "in", "-o", "enc"]);
    // What a killed run leaves: a hidden, partial file beside its output.
    let stale = [
        p.join("enc/.a.bin.Qw3rTy.ward-tmp"),
        p.join("enc/sub/.c.bin.x1Y2z3.ward-tmp"),
    ];
    for s in &stale {
        fs::write(s, vec![0u8; 8192]).unwrap();
    }

    let out = ok(
        p,
        &["pf", "decrypt", "-w", "k", "-i", "enc", "-o", "out", "-V"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert!(
        err.contains("skipping 2 stale temporary files") && err.contains("ward pf clean enc"),
        "{err}"
    );
    assert!(err.contains("2 files done"), "{err}");
    assert!(temps_under(&p.join("out")).is_empty());
    assert_eq!(fs::read(p.join("out/sub/b.bin")).unwrap(), sample(5000));
    let out = ok(p, &["pf", "verify", "-w", "k", "-i", "enc"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipping 2"));

    // Named explicitly, a temporary is refused as input.
    let err = fails(
        p,
        &[
            "pf",
            "verify",
            "-w",
            "k",
            "-i",
            "enc/.a.bin.Qw3rTy.ward-tmp",
        ],
    );
    assert!(
        err.contains("interrupted ward run") && err.contains("ward pf clean"),
        "{err}"
    );

    // `ward pf clean` removes them and says which.
    let out = ok(p, &["pf", "clean", "enc"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        listed,
        "removed enc/.a.bin.Qw3rTy.ward-tmp\nremoved enc/sub/.c.bin.x1Y2z3.ward-tmp\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 stale temporary files removed"));
    assert!(temps_under(p).is_empty());
    assert_eq!(
        fs::read_dir(p.join("enc")).unwrap().count(),
        2,
        "a.bin and sub"
    );
    let out = ok(p, &["pf", "clean", "enc"]);
    assert!(out.stdout.is_empty());

    // The next write of an output removes that output's stale temporaries, no others.
    let own = p.join("enc/.a.bin.Zx9Cv8.ward-tmp");
    let other = p.join("enc/.b.bin.Zx9Cv8.ward-tmp");
    fs::write(&own, b"stale").unwrap();
    fs::write(&other, b"stale").unwrap();
    let out = ok(
        p,
        &[
            "pf",
            "encrypt",
            "-w",
            "k",
            "-i",
            "in/a.bin",
            "-o",
            "enc/a.bin",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("removed enc/.a.bin.Zx9Cv8.ward-tmp"), "{err}");
    assert!(!own.exists());
    assert!(other.exists());
}

#[test]
fn a_key_file_of_the_wrong_size_says_the_size_found() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::write(p.join("plain"), sample(10)).unwrap();
    for (len, found) in [(15, "15 bytes"), (0, "0 bytes"), (33, "33 bytes")] {
        fs::write(p.join("k"), vec![7u8; len]).unwrap();
        let err = fails(p, &["pf", "encrypt", "-w", "k", "-i", "plain", "-o", "x"]);
        assert_eq!(
            err,
            format!(
                "error: reading the wrap key file (16 raw bytes; `ward pf keygen` makes one)\n  \
                 caused by: k: {found}, expected exactly 16\n"
            )
        );
    }
    let err = fails(
        p,
        &["pf", "encrypt", "-w", "nokey", "-i", "plain", "-o", "x"],
    );
    assert_eq!(
        err.matches("No such file").count(),
        1,
        "the cause once: {err}"
    );
    assert!(err.contains("nokey"), "{err}");
    assert!(!p.join("x").exists());
}

#[test]
fn a_truncated_protected_file_is_called_truncated() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(p, &["pf", "keygen", "-o", "k"]);
    fs::write(p.join("plain"), sample(50_000)).unwrap();
    ok(
        p,
        &["pf", "encrypt", "-w", "k", "-i", "plain", "-o", "f.pf"],
    );
    let bytes = fs::read(p.join("f.pf")).unwrap();
    let cut = bytes.len() - 1000;
    fs::write(p.join("cut.pf"), &bytes[..cut]).unwrap();
    for cmd in ["verify", "info"] {
        let err = fails(p, &["pf", cmd, "-w", "k", "-i", "cut.pf"]);
        assert!(
            err.contains(&format!(
                "truncated protected file ({cut} bytes, not a multiple of 4096"
            )),
            "{cmd}: {err}"
        );
        assert!(!err.contains("not a protected file"), "{err}");
    }
    fs::write(p.join("other"), sample(1000)).unwrap();
    let err = fails(p, &["pf", "info", "-i", "other"]);
    assert!(err.contains("not a protected file"), "{err}");
}

#[test]
fn a_bound_path_mismatch_hints_at_path() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(p, &["pf", "keygen", "-o", "k"]);
    fs::write(p.join("plain"), sample(3000)).unwrap();
    ok(
        p,
        &["pf", "encrypt", "-w", "k", "-i", "plain", "-o", "enc/a.pf"],
    );
    fs::rename(p.join("enc/a.pf"), p.join("moved.pf")).unwrap();
    let err = fails(
        p,
        &[
            "pf", "decrypt", "-w", "k", "-i", "moved.pf", "-o", "out", "-V",
        ],
    );
    let lines: Vec<&str> = err.lines().collect();
    // The error, its cause on its own line, and what to do last.
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with("error: decrypting moved.pf"), "{err}");
    assert!(
        lines[1].starts_with("  caused by: ")
            && lines[1].contains("not bound to \"moved.pf\", the path it was opened as"),
        "{err}"
    );
    // The bound path is decrypted metadata: the host's error text does not show it.
    assert!(!err.contains("enc/a.pf"), "{err}");
    assert!(
        lines[2].starts_with("hint: ")
            && lines[2].contains("encrypt --path")
            && lines[2].contains("`ward pf info` shows")
            && lines[2].contains("`--path BOUND` instead of -V"),
        "{err}"
    );
    assert!(!p.join("out").exists());
    let err = fails(
        p,
        &["pf", "verify", "-w", "k", "-i", "moved.pf", "--path", "x"],
    );
    assert!(err.contains("hint: "), "{err}");
    ok(
        p,
        &[
            "pf", "decrypt", "-w", "k", "-i", "moved.pf", "-o", "out", "--path", "enc/a.pf",
        ],
    );
    assert_eq!(fs::read(p.join("out")).unwrap(), sample(3000));
}

#[test]
fn info_and_verify_print_json() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(p, &["pf", "keygen", "-o", "k"]);
    fs::create_dir(p.join("in")).unwrap();
    fs::write(p.join("in/a"), sample(5000)).unwrap();
    fs::write(p.join("in/b"), sample(10)).unwrap();
    ok(p, &["pf", "encrypt", "-w", "k", "-i", "in", "-o", "enc"]);

    let out = ok(p, &["pf", "info", "-w", "k", "-i", "enc/a", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "file": "enc/a", "format": "2.0", "nodes": 3, "bytes_on_disk": 12288,
            "bound_path": "enc/a", "size": 5000,
        })
    );
    let out = ok(p, &["pf", "info", "-i", "enc/a", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bound_path"], serde_json::Value::Null);
    assert_eq!(v["size"], serde_json::Value::Null);
    assert_eq!(v["nodes"], 3);

    let mut bytes = fs::read(p.join("enc/a")).unwrap();
    bytes[9000] ^= 1;
    fs::write(p.join("enc/a"), bytes).unwrap();
    let out = ward(p, &["pf", "verify", "-w", "k", "-i", "enc", "-V", "--json"]);
    assert!(!out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "one object per file");
    assert_eq!(lines[0]["file"], "enc/a");
    assert_eq!(lines[0]["intact"], false);
    assert!(lines[0]["error"].as_str().unwrap().contains("NOT intact"));
    assert_eq!(
        lines[1],
        serde_json::json!({
            "file": "enc/b", "intact": true, "format": "2.0", "nodes": 1, "size": 10,
            "bound_path": "enc/b", "path_checked": true,
        })
    );
}
