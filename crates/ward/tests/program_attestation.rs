//! `/dev/attestation` in a confined program: the system `python3`, run by `ward run` on the
//! simulated TEE, uses Gramine's attestation files as a Gramine-aware program would (checks
//! `attestation_type`, writes 64 bytes of report data, reads the quote), and `ward attest
//! verify` accepts what it printed, with its report data and the manifest's measurement. Needs
//! root, `/dev/fuse` and `/usr/bin/python3` (skips, saying why, otherwise).

use std::process::{Command, Output};

mod common;
use common::{confined_skip_reason, python_trusted, text, ward};

/// What a Gramine-aware program does, and the edges of the interface.
const SCRIPT: &str = r#"
import os, sys
d = "/dev/attestation"
kind = open(d + "/attestation_type").read()
print("type:", kind)
print("listing:", " ".join(sorted(os.listdir(d))))

def quote(rd):
    with open(d + "/user_report_data", "wb", buffering=0) as f:
        f.write(rd)
    print("read back:", open(d + "/user_report_data", "rb").read() == rd)
    with open(d + "/quote", "rb", buffering=0) as f:
        return f.read()

if os.environ.get("MODE") == "broken":
    try:
        quote(bytes(64))
        print("LEAK quote without an attester")
    except OSError as e:
        print("quote:", e.errno)
    sys.exit(0)

q1 = quote(bytes(range(64)))
q2 = quote(bytes([0xAB]) * 64)
print("q1:", q1.hex())
print("q2:", q2.hex())
with open(d + "/quote", "rb", buffering=0) as f:
    a = f.read()
    f.seek(0)
    b = f.read()
print("one open file, one quote:", a == b)

# Gramine's rule: exactly 64 bytes.
for n in (63, 65):
    try:
        with open(d + "/user_report_data", "wb", buffering=0) as f:
            f.write(b"x" * n)
        print("LEAK", n, "bytes accepted")
    except OSError as e:
        print(n, "bytes:", e.errno)
print("report data kept:", open(d + "/user_report_data", "rb").read() == bytes([0xAB]) * 64)
for path in ["attestation_type", "quote"]:
    try:
        open(d + "/" + path, "wb")
        print("LEAK", path, "writable")
    except OSError as e:
        print(path, "read-only:", e.errno)

# The platform's own attestation devices stay out of reach.
for p in ["/sys/kernel/config/tsm", "/sys", "/dev/tdx_guest", "/dev/sgx_enclave",
          "/dev/sgx_provision", "/dev/sgx", "/dev/sgx/enclave"]:
    if os.path.exists(p):
        print("LEAK", p)
print("dev:", " ".join(sorted(os.listdir("/dev"))))
"#;

fn hex_line<'a>(stdout: &'a str, tag: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(tag))
        .unwrap_or_else(|| panic!("no {tag:?} line in {stdout}"))
}

#[test]
fn python_attests_itself_through_dev_attestation() {
    if let Some(reason) = confined_skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let ok = |out: Output| {
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
        (stdout, stderr)
    };
    let (sim, _) = ok(ward(p, &["sim", "init", "-o", "sim.pem"]));
    let key_line = sim
        .lines()
        .find(|l| l.starts_with("simulated_platform_keys"))
        .unwrap()
        .to_string();
    ok(ward(p, &["sign", "keygen", "-o", "signer.pem"]));
    std::fs::create_dir_all(p.join("app")).unwrap();
    std::fs::write(p.join("app/main.py"), SCRIPT).unwrap();
    let (python, trusted) = python_trusted();
    let trusted: Vec<String> = trusted
        .into_iter()
        .chain(["file:app/main.py".to_string()])
        .map(|u| format!("  \"{u}\","))
        .collect();
    let manifest = format!(
        r#"[libos]
entrypoint = "{python}"

[loader]
argv = ["{python}", "-I", "/app/main.py"]

[loader.env]
LANG = "C.UTF-8"
PYTHONDONTWRITEBYTECODE = "1"
MODE = {{ passthrough = true }}

[fs]
start_dir = "/app"

[[fs.mounts]]
path = "/usr"
uri = "file:/usr"

[[fs.mounts]]
path = "/app"
uri = "file:app"

[sgx]
trusted_files = [
{trusted}
]
"#,
        python = python.display(),
        trusted = trusted.join("\n"),
    );
    std::fs::write(p.join("py.toml"), manifest).unwrap();
    let (signed, _) = ok(ward(p, &["sign", "--key", "signer.pem", "py.toml"]));
    let measurement = signed
        .lines()
        .find_map(|l| l.strip_prefix("measurement (MRENCLAVE): "))
        .unwrap()
        .to_string();
    let run = |attester: &str, mode: &str| {
        Command::new(env!("CARGO_BIN_EXE_ward"))
            .args(["run", "py.signed.toml", "--attester", attester])
            .args(["--sim-key", "sim.pem"])
            .env("MODE", mode)
            .current_dir(p)
            .output()
            .unwrap()
    };

    let (stdout, stderr) = ok(run("sim", "good"));
    let context = format!("stdout: {stdout}\nstderr: {stderr}");
    for want in [
        // Never "dcap": a program checking for hardware evidence is not fooled.
        "type: ward-sim\n",
        "listing: attestation_type quote user_report_data\n",
        "one open file, one quote: True\n",
        "63 bytes: 22\n",
        "65 bytes: 22\n",
        "report data kept: True\n",
        "attestation_type read-only: 13\n",
        "quote read-only: 13\n",
        "dev: attestation fd full null random shm stderr stdin stdout urandom zero\n",
    ] {
        assert!(stdout.contains(want), "{want:?} missing:\n{context}");
    }
    assert!(!stdout.contains("LEAK"), "{context}");
    assert!(!stdout.contains("read back: False"), "{context}");
    let q1 = hex::decode(hex_line(&stdout, "q1: ")).unwrap();
    let q2 = hex::decode(hex_line(&stdout, "q2: ")).unwrap();
    assert_ne!(q1, q2, "new report data, new quote");

    // Each quote is evidence ward verifies: simulated, the manifest's measurement, and the
    // report data the program wrote.
    std::fs::write(
        p.join("policy.toml"),
        format!(
            "allow_simulated = true\n{key_line}\n[[identity]]\nmr_enclave = \"{measurement}\"\n"
        ),
    )
    .unwrap();
    let report_data: [Vec<u8>; 2] = [(0..64).collect(), vec![0xAB; 64]];
    for (i, (quote, rd)) in [q1, q2].iter().zip(&report_data).enumerate() {
        let file = format!("q{i}.bin");
        std::fs::write(p.join(&file), quote).unwrap();
        let (json, stderr) = ok(ward(
            p,
            &[
                "attest",
                "verify",
                "--quote",
                &file,
                "--policy",
                "policy.toml",
                "--json",
            ],
        ));
        let j: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(j["tee"], "sim", "{json}");
        assert_eq!(j["accepted"], true, "{json}\n{stderr}");
        assert_eq!(j["report_data"], hex::encode(rd), "{json}");
        assert!(json.contains(&measurement), "{json}");
    }

    // An attester that cannot work here (no configfs-tsm): the program gets EIO, ward says why
    // once.
    let (stdout, stderr) = ok(run("tsm", "broken"));
    let context = format!("stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("type: dcap\n"), "{context}");
    assert!(stdout.contains("quote: 5\n"), "{context}");
    assert!(!stdout.contains("LEAK"), "{context}");
    assert_eq!(
        stderr.matches("/dev/attestation/quote").count(),
        1,
        "{context}"
    );
    assert!(
        stderr.contains("the tsm attester could not produce evidence")
            && stderr.contains("/sys/kernel/config/tsm/report"),
        "{context}"
    );
}
