//! `ward attest` and `ward sim` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::ward;

fn data(v: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ward-attest/tests/data")
        .join(v)
}

fn verify_vector(v: &str, at: &str, extra: &[&str]) -> Output {
    let d = data(v);
    let q = d.join("quote.bin");
    let c = d.join("collateral.json");
    let mut args = vec![
        "attest",
        "verify",
        "--quote",
        q.to_str().unwrap(),
        "--collateral",
        c.to_str().unwrap(),
        "--at",
        at,
    ];
    args.extend_from_slice(extra);
    ward(Path::new("."), &args)
}

#[test]
fn json_output_has_the_documented_fields() {
    let out = verify_vector("sgx-v3-automata-swhardening", "1755236700", &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["tee"], "sgx");
    assert_eq!(j["tcb_status"], "SWHardeningNeeded");
    assert_eq!(j["advisory_ids"], serde_json::json!(["INTEL-SA-00615"]));
    for k in [
        "mr_enclave",
        "mr_signer",
        "isv_prod_id",
        "isv_svn",
        "debug",
        "report_data",
    ] {
        assert!(!j[k].is_null(), "{k} missing");
    }
    let out = verify_vector("tdx-v4-phala-uptodate", "1752000000", &["--json"]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["tee"], "tdx");
    assert_eq!(j["tcb_status"], "UpToDate");
    for k in ["mr_td", "rtmr0", "rtmr1", "rtmr2", "rtmr3"] {
        assert_eq!(j[k].as_str().unwrap().len(), 96, "{k}");
    }
}

#[test]
fn invalid_and_stale_evidence_exit_non_zero_with_a_reason() {
    let out = verify_vector("sgx-v3-automata-tampered-mrenclave", "1755236700", &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not valid evidence") && err.contains("signature"),
        "{err}"
    );
    let out = verify_vector("tdx-v4-phala-uptodate", "1800000000", &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expired") && err.contains("fetch current collateral"),
        "{err}"
    );
    // A DCAP quote without collateral says what is missing.
    let q = data("tdx-v4-phala-uptodate").join("quote.bin");
    let out = ward(
        Path::new("."),
        &["attest", "verify", "--quote", q.to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--collateral"));
}

#[test]
fn policy_refusals_explain_the_rule() {
    let d = tempfile::tempdir().unwrap();
    let policy = d.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[identity]]\nmr_td = \"91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7\"\n",
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let out = verify_vector("tdx-v4-phala-uptodate", "1752000000", &["--policy", p]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ACCEPTED"));
    let out = verify_vector(
        "tdx-v4-automata-outofdate",
        "1753000000",
        &["--policy", p, "--json"],
    );
    assert!(!out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["accepted"], false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("allowed_tcb_statuses") && err.contains("OutOfDate"),
        "{err}"
    );
}

#[test]
fn simulated_tee_end_to_end_needs_an_opted_in_policy() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let init = ward(p, &["sim", "init", "-o", "platform.pem"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let stdout = String::from_utf8_lossy(&init.stdout).into_owned();
    let key_line = stdout
        .lines()
        .find(|l| l.starts_with("simulated_platform_keys"))
        .unwrap();
    assert!(
        !ward(p, &["sim", "init", "-o", "platform.pem"])
            .status
            .success(),
        "never overwrites"
    );
    let mre = "ab".repeat(32);
    let q = ward(
        p,
        &[
            "attest",
            "quote",
            "--sim-key",
            "platform.pem",
            "--mr-enclave",
            &mre,
            "--isv-svn",
            "3",
            "--report-data",
            "c0ffee",
            "-o",
            "q.bin",
        ],
    );
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    assert!(String::from_utf8_lossy(&q.stderr).contains("simulated"));

    // Without a policy it verifies and says loudly what it is.
    let out = ward(p, &["attest", "verify", "--quote", "q.bin"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("SIMULATED"));
    // A policy that does not opt in refuses it.
    std::fs::write(
        p.join("strict.toml"),
        format!("[[identity]]\nmr_enclave = \"{mre}\"\n"),
    )
    .unwrap();
    let out = ward(
        p,
        &[
            "attest",
            "verify",
            "--quote",
            "q.bin",
            "--policy",
            "strict.toml",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("allow_simulated"));
    // Opting in with the platform key accepts it, logged as insecure.
    std::fs::write(
        p.join("dev.toml"),
        format!("allow_simulated = true\n{key_line}\n[[identity]]\nmr_enclave = \"{mre}\"\nmin_isv_svn = 3\n"),
    )
    .unwrap();
    let out = ward(
        p,
        &[
            "attest", "verify", "--quote", "q.bin", "--policy", "dev.toml", "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["tee"], "sim");
    assert_eq!(j["accepted"], true);
    assert!(j["report_data"].as_str().unwrap().starts_with("c0ffee"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("INSECURE"));
    // A tampered simulated quote is refused.
    let mut bytes = std::fs::read(p.join("q.bin")).unwrap();
    bytes[20] ^= 1;
    std::fs::write(p.join("bad.bin"), bytes).unwrap();
    assert!(!ward(
        p,
        &["attest", "verify", "--quote", "bad.bin", "--policy", "dev.toml"]
    )
    .status
    .success());
}

#[test]
fn pccs_fetch_failures_name_the_url() {
    let d = tempfile::tempdir().unwrap();
    let q = data("tdx-v4-phala-uptodate").join("quote.bin");
    let out = ward(
        d.path(),
        &[
            "attest",
            "verify",
            "--quote",
            q.to_str().unwrap(),
            "--pccs",
            "http://127.0.0.1:9",
            "--cache-dir",
            "cache",
            "--at",
            "1752000000",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1:9"), "{err}");
}
