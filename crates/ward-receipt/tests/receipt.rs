//! Receipts made with a real (simulated-TEE) RA-TLS identity: what verifies, and every way a
//! changed receipt is refused.

use ward_attest::attester::SimAttester;
use ward_attest::sim::{SimIdentity, SimPlatformKey};
use ward_attest::{Policy, WorkloadIdentity};
use ward_ratls::{EvidenceForm, RaTlsIdentity, SimVerifier};
use ward_receipt::{Output, Receipt, ReceiptError, Run, Statement};

const WORKLOAD: WorkloadIdentity = WorkloadIdentity {
    measurement: [0x11; 32],
    signer: [0x22; 32],
    isv_prod_id: 3,
    isv_svn: 4,
    debug: false,
};

fn platform() -> (SimAttester, String) {
    let key = SimPlatformKey::generate();
    let public = key.public().to_hex();
    let attester = SimAttester::new(
        key,
        SimIdentity {
            mr_enclave: WORKLOAD.measurement,
            mr_signer: WORKLOAD.signer,
            isv_prod_id: 3,
            isv_svn: 4,
            debug: false,
        },
    );
    (attester, public)
}

fn policy(public: &str, measurement: [u8; 32]) -> Policy {
    Policy::from_toml(
        &format!(
            "allow_simulated = true\nsimulated_platform_keys = [\"{public}\"]\n[[identity]]\n\
         name = \"job\"\ntee = \"sim\"\nworkload_measurement = [\"{}\"]\n",
            hex::encode(measurement)
        ),
        "policy.toml",
    )
    .unwrap()
}

fn statement() -> Statement {
    Statement {
        workload: WORKLOAD,
        runs: vec![Run {
            server: "127.0.0.1:4433".into(),
            run_id: "0123456789abcdef".into(),
        }],
        outputs: vec![
            Output {
                path: "/out/result.txt".into(),
                metadata_sha256: [0xaa; 32],
            },
            Output {
                path: "/out/metrics.json".into(),
                metadata_sha256: [0xbb; 32],
            },
        ],
        issued_at: 1_800_000_000,
    }
}

fn signed() -> (Receipt, String) {
    let (attester, public) = platform();
    let identity = RaTlsIdentity::generate_for_workload(&attester, &WORKLOAD).unwrap();
    (Receipt::sign(statement(), &identity).unwrap(), public)
}

#[test]
fn a_receipt_verifies_and_names_its_outputs_and_runs() {
    let (receipt, public) = signed();
    let json = receipt.to_json();
    let read = Receipt::parse(json.as_bytes()).unwrap();
    assert_eq!(read.statement(), &statement());
    let verified = read
        .verify(&SimVerifier, &policy(&public, WORKLOAD.measurement))
        .unwrap();
    assert_eq!(verified.claims().workload, Some(WORKLOAD));
    assert_eq!(
        verified.output_for(&[0xbb; 32]).unwrap().path,
        "/out/metrics.json"
    );
    assert!(verified.output_for(&[0xcc; 32]).is_none());
    verified.require_run("0123456789ABCDEF").unwrap();
    assert!(matches!(
        verified.require_run("fedcba9876543210"),
        Err(ReceiptError::OtherRun { .. })
    ));
}

#[test]
fn a_changed_statement_fails_the_signature() {
    let (receipt, public) = signed();
    let mut wire: serde_json::Value = serde_json::from_str(&receipt.to_json()).unwrap();
    let statement = wire["statement"].as_str().unwrap().to_owned();
    for (from, to) in [
        ("aaaa", "aaab"),
        ("0123456789abcdef", "0123456789abcdee"),
        ("result.txt", "resulu.txt"),
        ("1800000000", "1800000001"),
    ] {
        assert!(statement.contains(from));
        wire["statement"] = serde_json::Value::String(statement.replacen(from, to, 1));
        let changed = Receipt::parse(wire.to_string().as_bytes()).unwrap();
        let e = changed
            .verify(&SimVerifier, &policy(&public, WORKLOAD.measurement))
            .unwrap_err();
        assert!(matches!(e, ReceiptError::Signature(_)), "{from}: {e}");
    }
    // Whitespace alone changes the signed bytes too: no canonicalisation is trusted.
    wire["statement"] = serde_json::Value::String(format!(" {statement}"));
    let changed = Receipt::parse(wire.to_string().as_bytes()).unwrap();
    assert!(matches!(
        changed.verify(&SimVerifier, &policy(&public, WORKLOAD.measurement)),
        Err(ReceiptError::Signature(_))
    ));
}

#[test]
fn a_statement_for_another_workload_or_a_key_naming_none_is_refused() {
    let (attester, public) = platform();
    let other = WorkloadIdentity {
        measurement: [0x33; 32],
        ..WORKLOAD
    };
    // Signed by workload 0x11's attested key, but stating workload 0x33.
    let identity = RaTlsIdentity::generate_for_workload(&attester, &WORKLOAD).unwrap();
    let mut st = statement();
    st.workload = other;
    let receipt = Receipt::sign(st, &identity).unwrap();
    let e = receipt
        .verify(&SimVerifier, &policy(&public, WORKLOAD.measurement))
        .unwrap_err();
    assert!(matches!(e, ReceiptError::WorkloadMismatch { .. }), "{e}");
    // The owner's policy names another workload: the certificate is refused.
    let (receipt, own_platform) = signed();
    let e = receipt
        .verify(&SimVerifier, &policy(&own_platform, other.measurement))
        .unwrap_err();
    assert!(matches!(e, ReceiptError::Certificate(_)), "{e}");
    // A key whose evidence names no ward workload (any program could ask for such evidence).
    let plain = RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap();
    let receipt = Receipt::sign(statement(), &plain).unwrap();
    let open = Policy::from_toml(&format!(
        "allow_simulated = true\naccept_any_identity = true\nsimulated_platform_keys = [\"{public}\"]\n"
    ), "open.toml")
    .unwrap();
    let e = receipt.verify(&SimVerifier, &open).unwrap_err();
    assert!(
        matches!(e, ReceiptError::NoWorkload),
        "{e}: {:?}",
        std::error::Error::source(&e).map(|s| s.to_string())
    );
    // An untrusted platform key.
    let (receipt, _) = signed();
    let e = receipt
        .verify(&SimVerifier, &policy(&public, WORKLOAD.measurement))
        .unwrap_err();
    assert!(matches!(e, ReceiptError::Certificate(_)), "{e}");
}

#[test]
fn malformed_receipts_get_clear_errors() {
    let (receipt, _) = signed();
    let good: serde_json::Value = serde_json::from_str(&receipt.to_json()).unwrap();
    let with = |field: &str, value: serde_json::Value| {
        let mut v = good.clone();
        v[field] = value;
        Receipt::parse(v.to_string().as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert!(with("format", "ward-receipt/2".into()).contains("format"));
    assert!(with("signature", "zz".into()).contains("signature"));
    assert!(with("certificate", 7.into()).contains("not a ward receipt"));
    assert!(with("statement", "{}".into()).contains("missing field"));
    let statement: serde_json::Value =
        serde_json::from_str(good["statement"].as_str().unwrap()).unwrap();
    let with_statement = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut st = statement.clone();
        edit(&mut st);
        with("statement", st.to_string().into())
    };
    let e = with_statement(&|s| s["outputs"][1]["metadata_sha256"] = "abc".into());
    assert!(e.contains("statement.outputs[1].metadata_sha256"), "{e}");
    let e = with_statement(&|s| s["workload"]["measurement"] = "xy".repeat(32).into());
    assert!(e.contains("statement.workload.measurement"), "{e}");
    let e = with_statement(&|s| s["runs"][0]["run_id"] = "".into());
    assert!(e.contains("statement.runs[0].run_id"), "{e}");
    let e = with_statement(&|s| s["extra"] = 1.into());
    assert!(e.contains("unknown field"), "{e}");
    // Bounded before parsing.
    let big = vec![b' '; ward_receipt::MAX_RECEIPT_LEN + 1];
    assert!(matches!(
        Receipt::parse(&big),
        Err(ReceiptError::TooLarge { .. })
    ));
    assert!(Receipt::parse(b"").is_err());
    assert!(Receipt::parse(&[0xff, 0xfe, 0x00]).is_err());
    // Truncated anywhere: an error, never a panic.
    let json = receipt.to_json();
    for cut in (0..json.len()).step_by(97) {
        assert!(Receipt::parse(&json.as_bytes()[..cut]).is_err());
    }
}

#[test]
fn the_metadata_digest_is_of_the_first_node_only() {
    let mut file = vec![7u8; 4096];
    let first = ward_receipt::metadata_digest(file.as_slice()).unwrap();
    file.extend_from_slice(&[9u8; 4096]);
    assert_eq!(
        ward_receipt::metadata_digest(file.as_slice()).unwrap(),
        first
    );
    file[4095] = 8;
    assert_ne!(
        ward_receipt::metadata_digest(file.as_slice()).unwrap(),
        first
    );
    assert!(ward_receipt::metadata_digest(&file[..4095]).is_err());
}
