//! Run receipts end to end on loopback: `ward run --receipt` signs what the run committed with
//! the attested key, naming each owner's run id; `ward pf decrypt --receipt` accepts exactly that
//! run's results and refuses a substituted or rolled-back result, an older run's receipt (by the
//! owner's audit log), a tampered receipt and a receipt from a workload her policy does not name.

use std::path::Path;

mod common;
use common::{failed as fails, free_port, serve, succeeded as ok, ward, Server};

fn manifest(port: u16) -> String {
    format!(
        r#"[loader]
entrypoint = "ward:checksum"
argv = ["--output", "/out/digests.txt", "/data/input.txt"]

[[fs.mounts]]
type = "encrypted"
path = "/data"
uri = "file:data"
key_name = "data"

[[fs.mounts]]
type = "encrypted"
path = "/out"
uri = "file:out"
key_name = "data"

[provision]
[[provision.secrets]]
name = "data_key"
key_name = "data"
servers = ["127.0.0.1:{port}"]
ca_chain = "file:srv/ca.pem"
"#
    )
}

fn start_server(p: &Path, port: u16, measurement: &str) -> Server {
    let sim_key = std::fs::read_to_string(p.join("srv/policy.toml"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("simulated_platform_keys"))
        .unwrap()
        .to_string();
    let policy = |m: &str| {
        format!(
            "allow_simulated = true\n{sim_key}\n[[identity]]\nname = \"checksum\"\n\
             mr_enclave = [\"{m}\"]\n"
        )
    };
    std::fs::write(p.join("srv/owner-policy.toml"), policy(measurement)).unwrap();
    std::fs::write(p.join("other-policy.toml"), policy(&"ab".repeat(32))).unwrap();
    let (server, _) = serve(
        p,
        &[
            "--secret",
            "data_key=srv/secrets/wrap_key",
            "--policy",
            "srv/owner-policy.toml",
            "--cert",
            "srv/server.pem",
            "--key",
            "srv/server-key.pem",
            "--audit-log",
            "srv/audit.jsonl",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    );
    server
}

fn decrypt(p: &Path, input: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "pf",
        "decrypt",
        "-w",
        "srv/secrets/wrap_key",
        "-i",
        input,
        "-o",
        "plain/digests.txt",
        "--receipt",
    ];
    args.extend_from_slice(extra);
    ward(p, &args)
}

#[test]
fn a_receipt_accepts_its_runs_results_and_refuses_substituted_or_older_ones() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let port = free_port();
    ok(ward(p, &["provision", "init", "--dir", "srv"]));
    ok(ward(p, &["sign", "keygen", "-o", "signer.pem"]));
    for dir in ["plain", "data", "out"] {
        std::fs::create_dir_all(p.join(dir)).unwrap();
    }
    std::fs::write(p.join("plain/input.txt"), b"first input").unwrap();
    let encrypt = || {
        ok(ward(
            p,
            &[
                "pf",
                "encrypt",
                "-w",
                "srv/secrets/wrap_key",
                "-i",
                "plain/input.txt",
                "-o",
                "data/input.txt",
            ],
        ))
    };
    encrypt();
    std::fs::write(p.join("job.toml"), manifest(port)).unwrap();
    let out = ok(ward(p, &["sign", "--key", "signer.pem", "job.toml"]));
    let measurement = out
        .lines()
        .find_map(|l| l.strip_prefix("measurement (MRENCLAVE): "))
        .unwrap()
        .to_string();
    let _server = start_server(p, port, &measurement);
    let run = |receipt: &str| {
        ok(ward(
            p,
            &[
                "run",
                "job.signed.toml",
                "--sim-key",
                "srv/sim-platform.pem",
                "--receipt",
                receipt,
            ],
        ))
    };

    // First run: its receipt names the run id the server recorded for the grant.
    run("r1.json");
    std::fs::copy(p.join("out/digests.txt"), p.join("old-digests.txt")).unwrap();
    let r1 = std::fs::read_to_string(p.join("r1.json")).unwrap();
    let audit = std::fs::read_to_string(p.join("srv/audit.jsonl")).unwrap();
    let grant: serde_json::Value = serde_json::from_str(
        audit
            .lines()
            .rfind(|l| l.contains("\"granted\""))
            .expect("a grant in the audit log"),
    )
    .unwrap();
    let run1 = grant["id"].as_str().unwrap().to_string();
    let receipt: serde_json::Value = serde_json::from_str(&r1).unwrap();
    let statement: serde_json::Value =
        serde_json::from_str(receipt["statement"].as_str().unwrap()).unwrap();
    assert_eq!(statement["runs"][0]["run_id"], run1.as_str(), "{statement}");
    assert_eq!(statement["workload"]["measurement"], measurement.as_str());
    assert_eq!(statement["outputs"][0]["path"], "/out/digests.txt");
    assert!(!r1.contains("first input"));

    // The owner decrypts it against her policy and her audit log.
    let policy = ["--policy", "srv/owner-policy.toml"];
    let log = ["--audit-log", "srv/audit.jsonl"];
    let out = decrypt(
        p,
        "out/digests.txt",
        &["r1.json", policy[0], policy[1], log[0], log[1]],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(
        err.contains(&format!("run {run1} is the latest grant")),
        "{err}"
    );
    assert!(std::fs::read_to_string(p.join("plain/digests.txt"))
        .unwrap()
        .contains("/data/input.txt"));

    // A second run on new input.
    std::fs::write(p.join("plain/input.txt"), b"second input").unwrap();
    encrypt();
    run("r2.json");
    std::fs::remove_file(p.join("plain/digests.txt")).unwrap();

    // The host rolls the result back to the first run's: its metadata is not in the receipt.
    std::fs::copy(p.join("out/digests.txt"), p.join("new-digests.txt")).unwrap();
    std::fs::copy(p.join("old-digests.txt"), p.join("out/digests.txt")).unwrap();
    let e = fails(decrypt(
        p,
        "out/digests.txt",
        &["r2.json", policy[0], policy[1], log[0], log[1]],
    ));
    assert!(
        e.contains("is not a file the receipt's run committed"),
        "{e}"
    );
    assert!(
        !p.join("plain/digests.txt").exists(),
        "no plaintext on refusal"
    );

    // ...and hands over the first run's receipt with it: the audit log's latest grant is run 2.
    let e = fails(decrypt(
        p,
        "out/digests.txt",
        &["r1.json", policy[0], policy[1], log[0], log[1]],
    ));
    assert!(
        e.contains("from another run") && e.contains("latest grant"),
        "{e}"
    );
    assert!(!p.join("plain/digests.txt").exists());
    // Asking for run 1 by id is the owner's explicit choice, and accepted.
    ok(decrypt(
        p,
        "out/digests.txt",
        &["r1.json", policy[0], policy[1], "--run-id", &run1],
    ));
    std::fs::remove_file(p.join("plain/digests.txt")).unwrap();

    // The current result with its own receipt is accepted.
    std::fs::copy(p.join("new-digests.txt"), p.join("out/digests.txt")).unwrap();
    ok(decrypt(
        p,
        "out/digests.txt",
        &["r2.json", policy[0], policy[1], log[0], log[1]],
    ));
    std::fs::remove_file(p.join("plain/digests.txt")).unwrap();

    // A receipt whose statement was edited (here: to name the old file) fails its signature.
    let r2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("r2.json")).unwrap()).unwrap();
    let r1_statement: serde_json::Value =
        serde_json::from_str(receipt["statement"].as_str().unwrap()).unwrap();
    let mut st2: serde_json::Value =
        serde_json::from_str(r2["statement"].as_str().unwrap()).unwrap();
    st2["outputs"] = r1_statement["outputs"].clone();
    let mut forged = r2.clone();
    forged["statement"] = serde_json::Value::String(st2.to_string());
    std::fs::write(p.join("forged.json"), forged.to_string()).unwrap();
    std::fs::copy(p.join("old-digests.txt"), p.join("out/digests.txt")).unwrap();
    let e = fails(decrypt(
        p,
        "out/digests.txt",
        &["forged.json", policy[0], policy[1]],
    ));
    assert!(e.contains("signature does not verify"), "{e}");

    // A policy naming another workload refuses the receipt's certificate.
    std::fs::copy(p.join("new-digests.txt"), p.join("out/digests.txt")).unwrap();
    let e = fails(decrypt(
        p,
        "out/digests.txt",
        &["r2.json", "--policy", "other-policy.toml"],
    ));
    assert!(e.contains("certificate was not accepted"), "{e}");

    // Not a receipt: a clear error, nothing written.
    std::fs::write(
        p.join("junk.json"),
        b"{\"format\": \"ward-receipt/1\", \"x\": 1}",
    )
    .unwrap();
    let e = fails(decrypt(
        p,
        "out/digests.txt",
        &["junk.json", policy[0], policy[1]],
    ));
    assert!(e.contains("not a ward receipt"), "{e}");
    // A receipt needs a policy to judge it by.
    let e = fails(decrypt(p, "out/digests.txt", &["r2.json"]));
    assert!(e.contains("--policy"), "{e}");
    assert!(!p.join("plain/digests.txt").exists());
}
