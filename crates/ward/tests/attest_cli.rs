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
    // Valid evidence, refused by the default rules (SWHardeningNeeded): the claims are all there.
    let out = verify_vector("sgx-v3-automata-swhardening", "1755236700", &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["valid"], true);
    assert_eq!(j["accepted"], false);
    assert_eq!(j["policy"], "default");
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

    // Without a policy it verifies, says loudly what it is, and the default rules refuse it.
    let out = ward(p, &["attest", "verify", "--quote", "q.bin"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SIMULATED"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("default rules") && err.contains("`allow_simulated`"),
        "{err}"
    );
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
    assert_eq!(j["policy"], "dev.toml");
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

/// What `ward attest verify` says and exits with, with the default rules or a policy file.
fn judged(out: &Output) -> (Option<i32>, serde_json::Value, String) {
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_a_policy_the_default_rules_judge_the_recorded_quotes() {
    // (vector, time, what the default rules refuse it for; None = accepted)
    let cases = [
        (
            "sgx-v3-automata-swhardening",
            "1755236700",
            Some("allowed_tcb_statuses"),
        ),
        (
            "sgx-v3-phala-config-swhardening",
            "1752000000",
            Some("allowed_tcb_statuses"),
        ),
        (
            "tdx-v4-automata-outofdate",
            "1753000000",
            Some("allowed_tcb_statuses"),
        ),
        ("tdx-v4-phala-uptodate", "1752000000", None),
    ];
    for (v, at, rule) in cases {
        let (code, j, err) = judged(&verify_vector(v, at, &["--json"]));
        assert_eq!(j["valid"], true, "{v}: {err}");
        assert_eq!(j["policy"], "default", "{v}");
        assert_eq!(j["accepted"], rule.is_none(), "{v}: {err}");
        match rule {
            Some(rule) => {
                assert_eq!(code, Some(1), "{v}");
                assert!(
                    err.contains("refused by the default rules")
                        && err.contains(&format!("`{rule}`")),
                    "{v}: {err}"
                );
                assert_eq!(
                    j["refusal"].as_str().map(|r| r.contains(rule)),
                    Some(true),
                    "{v}"
                );
            }
            None => assert_eq!(code, Some(0), "{v}: {err}"),
        }
        // The human output says that no policy file was given and what was applied.
        let out = verify_vector(v, at, &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Policy: no policy file given; the default rules were applied"),
            "{v}: {text}"
        );
        let decision = if rule.is_some() {
            "REFUSED"
        } else {
            "ACCEPTED"
        };
        assert!(text.contains(decision), "{v}: {text}");
    }
    // A debug enclave is refused for being one.
    let (code, j, err) = judged(&verify_vector(
        "sgx-v3-occlum-debug",
        "1755236700",
        &["--json"],
    ));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(j["accepted"], false);
    assert!(err.contains("`allow_debug`"), "{err}");

    // A policy file is judged by, and named.
    let d = tempfile::tempdir().unwrap();
    let policy = d.path().join("lenient.toml");
    std::fs::write(
        &policy,
        "accept_any_identity = true\nallowed_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\nallowed_advisories = [\"INTEL-SA-00615\"]\n",
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let out = verify_vector(
        "sgx-v3-automata-swhardening",
        "1755236700",
        &["--policy", p, "--json"],
    );
    let (code, j, err) = judged(&out);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(j["accepted"], true);
    assert_eq!(j["policy"], p);
    let out = verify_vector(
        "sgx-v3-automata-swhardening",
        "1755236700",
        &["--policy", p],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("Policy: {p}: ACCEPTED")), "{text}");
    assert!(!text.contains("default rules"), "{text}");
}

#[test]
fn without_a_policy_simulated_and_debug_quotes_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    assert!(ward(p, &["sim", "init", "-o", "unknown.pem"])
        .status
        .success());
    for (name, extra) in [("plain", &[][..]), ("debug", &["--debug"][..])] {
        let out_file = format!("{name}.bin");
        let mut args = vec![
            "attest",
            "quote",
            "--sim-key",
            "unknown.pem",
            "--report-data",
            "00",
            "-o",
            &out_file,
        ];
        args.extend_from_slice(extra);
        assert!(ward(p, &args).status.success());
        let (code, j, err) = judged(&ward(
            p,
            &["attest", "verify", "--quote", &out_file, "--json"],
        ));
        assert_eq!(code, Some(1), "{name}: {err}");
        assert_eq!(j["valid"], true, "{name}");
        assert_eq!(j["accepted"], false, "{name}");
        assert_eq!(j["policy"], "default", "{name}");
        assert!(err.contains("`allow_simulated`"), "{name}: {err}");
    }
}
