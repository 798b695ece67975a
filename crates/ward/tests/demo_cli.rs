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
