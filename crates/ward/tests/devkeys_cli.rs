//! Development keys (`fs.insecure__keys`, `fs.insecure__key_files`): a manifest that carries its
//! own wrap key runs without a provisioning server, says so loudly, and is refused where a
//! manifest would be taken for production.

use std::path::Path;

mod common;
use common::{failed, succeeded, ward};

fn manifest(dev_key: &str) -> String {
    format!(
        r#"[loader]
entrypoint = "ward:checksum"
argv = ["--output", "/out/digest.txt", "/data/in.txt"]

[[fs.mounts]]
type = "encrypted"
path = "/data"
uri = "file:encrypted"

[[fs.mounts]]
type = "encrypted"
path = "/out"
uri = "file:out"

{dev_key}
"#
    )
}

fn setup(p: &Path) {
    succeeded(ward(p, &["sign", "keygen", "-o", "signer.pem"]));
    succeeded(ward(p, &["sim", "init", "-o", "sim.pem"]));
    for dir in ["plain", "encrypted", "out"] {
        std::fs::create_dir_all(p.join(dir)).unwrap();
    }
    std::fs::write(p.join("dev.key"), [0x5au8; 16]).unwrap();
    std::fs::write(p.join("plain/in.txt"), b"the data owner's input\n").unwrap();
    succeeded(ward(
        p,
        &[
            "pf",
            "encrypt",
            "-w",
            "dev.key",
            "-i",
            "plain/in.txt",
            "-o",
            "encrypted/in.txt",
        ],
    ));
}

#[test]
fn a_dev_key_file_runs_without_a_server_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    setup(p);
    std::fs::write(
        p.join("dev.toml"),
        manifest("[fs.insecure__key_files]\ndefault = \"file:dev.key\"\n"),
    )
    .unwrap();
    let out = ward(p, &["sign", "--key", "signer.pem", "dev.toml"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    succeeded(out);
    assert!(all.contains("WARNING"), "{all}");

    let out = ward(p, &["run", "dev.signed.toml", "--sim-key", "sim.pem"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    succeeded(out);
    assert!(err.contains("INSECURE DEVELOPMENT KEYS"), "{err}");
    assert!(err.contains("no attestation happened"), "{err}");
    // The output is a protected file under the dev key; its plaintext never reached the host.
    let on_disk = std::fs::read(p.join("out/digest.txt")).unwrap();
    assert!(!String::from_utf8_lossy(&on_disk).contains("/data/in.txt"));
    succeeded(ward(
        p,
        &[
            "pf",
            "decrypt",
            "-w",
            "dev.key",
            "-i",
            "out/digest.txt",
            "-o",
            "plain/digest.txt",
        ],
    ));
    // The workload read the real input through the dev key: its digest is the plaintext's.
    let sum = std::process::Command::new("sha256sum")
        .arg(p.join("plain/in.txt"))
        .output()
        .unwrap();
    let hex = String::from_utf8(sum.stdout).unwrap()[..64].to_string();
    assert_eq!(
        std::fs::read_to_string(p.join("plain/digest.txt")).unwrap(),
        format!("{hex}  /data/in.txt\n")
    );
}

#[test]
fn bad_dev_keys_are_refused_at_sign_without_showing_them() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    setup(p);
    std::fs::write(p.join("short.key"), [1u8; 15]).unwrap();
    let cases = [
        (
            "hex",
            "[fs.insecure__keys]\ndefault = \"00112233445566778899aabbccddeeXX\"\n",
        ),
        (
            "short",
            "[fs.insecure__key_files]\ndefault = \"file:short.key\"\n",
        ),
        (
            "both",
            "[fs.insecure__keys]\ndefault = \"00112233445566778899aabbccddeeff\"\n\
             [fs.insecure__key_files]\ndefault = \"file:dev.key\"\n",
        ),
    ];
    for (name, dev) in cases {
        std::fs::write(p.join(format!("{name}.toml")), manifest(dev)).unwrap();
        let err = failed(ward(
            p,
            &["sign", "--key", "signer.pem", &format!("{name}.toml")],
        ));
        // Named by key name, or by line and column (a value that is not a key at all).
        assert!(
            err.contains("\"default\"") || err.contains("default ") || err.contains("line "),
            "{name}: {err}"
        );
        assert!(!err.contains("00112233"), "{name}: key bytes in {err}");
        assert!(
            !p.join(format!("{name}.signed.toml")).exists(),
            "{name}: signed anyway"
        );
    }
}

/// `fs.whole_read_limit` end to end: a built-in that reads a file whole (the classifier's model
/// and labels) is refused before anything of it is read when the file is over the manifest's
/// limit, trusted or protected, with the path and the limit but not the protected file's size
/// (decrypted metadata); raising the limit in the manifest lets the same file through to the
/// next check. Nothing is written.
#[test]
fn whole_file_reads_are_bounded_by_the_manifests_limit() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    setup(p);
    std::fs::create_dir_all(p.join("app")).unwrap();
    // Not a real model or photo: the limit is checked before either is parsed.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(p.join("app/model.onnx"), &big).unwrap();
    std::fs::write(p.join("app/labels.txt"), b"a\nb\n").unwrap();
    let labels: String = (0..20_000).map(|i| format!("c{i}\n")).collect();
    std::fs::write(p.join("plain/labels.txt"), &labels).unwrap();
    assert!(labels.len() > 100_000);
    succeeded(ward(
        p,
        &[
            "pf",
            "encrypt",
            "-w",
            "dev.key",
            "-i",
            "plain/labels.txt",
            "-o",
            "encrypted/labels.txt",
        ],
    ));
    let classify = |name: &str, model: &str, labels: &str, limit: &str| {
        let text = format!(
            r#"[loader]
entrypoint = "ward:classify"
argv = ["--model", "{model}", "--labels", "{labels}", "--image", "/data/photo.jpg",
        "--output", "/out/result.txt"]

[[fs.mounts]]
type = "encrypted"
path = "/data"
uri = "file:encrypted"

[[fs.mounts]]
type = "encrypted"
path = "/out"
uri = "file:out"

[[fs.mounts]]
path = "/app"
uri = "file:app"

[fs]
whole_read_limit = "{limit}"

[fs.insecure__key_files]
default = "file:dev.key"

[sgx]
trusted_files = ["file:app/"]
"#
        );
        std::fs::write(p.join(format!("{name}.toml")), text).unwrap();
        succeeded(ward(
            p,
            &["sign", "--key", "signer.pem", &format!("{name}.toml")],
        ));
        ward(
            p,
            &[
                "run",
                &format!("{name}.signed.toml"),
                "--sim-key",
                "sim.pem",
            ],
        )
    };
    let no_output = || {
        let left: Vec<_> = std::fs::read_dir(p.join("out")).unwrap().collect();
        assert!(left.is_empty(), "output left behind: {left:?}");
    };

    // The trusted model is over the limit.
    let err = failed(classify(
        "small",
        "/app/model.onnx",
        "/app/labels.txt",
        "64K",
    ));
    assert!(
        err.contains("/app/model.onnx") && err.contains("65536-byte limit"),
        "{err}"
    );
    no_output();

    // A model under the limit, and protected labels over it: refused with their path and the
    // limit; their decrypted size does not appear.
    std::fs::write(p.join("app/tiny.onnx"), b"not a model").unwrap();
    let err = failed(classify(
        "labels",
        "/app/tiny.onnx",
        "/data/labels.txt",
        "64K",
    ));
    assert!(
        err.contains("/data/labels.txt") && err.contains("65536-byte limit"),
        "{err}"
    );
    assert!(!err.contains(&labels.len().to_string()), "{err}");
    assert!(!err.contains("c19999"), "{err}");
    no_output();

    // With the limit raised, the same files pass it and fail where they should: the model is
    // not ONNX.
    let err = failed(classify(
        "raised",
        "/app/model.onnx",
        "/data/labels.txt",
        "1M",
    ));
    assert!(!err.contains("byte limit"), "{err}");
    assert!(err.contains("/app/model.onnx"), "{err}");
    no_output();
}
