//! `AnyVerifier` sends each quote to the verifier for its kind, by the quote's form, and a
//! collateral source's failure is kept as the cause.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use ward_attest::dcap::Collateral;
use ward_attest::quote::Quote;
use ward_attest::sim::{SimIdentity, SimPlatformKey, SimQuote};
use ward_attest::verify::evidence_kind;
use ward_attest::{AnyVerifier, Error, EvidenceVerifier, TeeKind};

fn vector(name: &str) -> (Vec<u8>, Collateral, u64) {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("expected.json")).unwrap()).unwrap();
    (
        std::fs::read(d.join("quote.bin")).unwrap(),
        Collateral::load(&d.join("collateral.json")).unwrap(),
        expected["verify_at_unix"].as_u64().unwrap(),
    )
}

fn sim_quote() -> Vec<u8> {
    let id = SimIdentity {
        mr_enclave: [1; 32],
        mr_signer: [2; 32],
        isv_prod_id: 0,
        isv_svn: 0,
        debug: false,
    };
    SimQuote::sign(&SimPlatformKey::generate(), &id, &[9; 64]).to_bytes()
}

#[test]
fn routing_picks_sim_or_dcap_by_the_quote() {
    let (sgx, sgx_collateral, at) = vector("sgx-v3-automata-swhardening");
    let (tdx, _, _) = vector("tdx-v4-phala-uptodate");
    let sim = sim_quote();
    assert_eq!(evidence_kind(&sim), TeeKind::Sim);
    assert_eq!(evidence_kind(&sgx), TeeKind::Sgx);
    assert_eq!(evidence_kind(&tdx), TeeKind::Tdx);

    // A DCAP source that counts its calls: a simulated quote never reaches it.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let source = move |_: &Quote, _: u64| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(sgx_collateral.clone())
    };
    let both = AnyVerifier::sim_and_dcap(source, move || at);
    assert_eq!(both.verify(&sim).unwrap().tee, TeeKind::Sim);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(both.verify(&sgx).unwrap().tee, TeeKind::Sgx);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Each kind without its verifier is refused, naming the kind.
    let err = AnyVerifier::sim().verify(&sgx).unwrap_err();
    assert!(
        matches!(err, Error::NoVerifier(k) if k.contains("DCAP")),
        "{err}"
    );
    let (_, c, _) = vector("sgx-v3-automata-swhardening");
    let err = AnyVerifier::dcap(c, move || at).verify(&sim).unwrap_err();
    assert!(
        matches!(err, Error::NoVerifier(k) if k.contains("simulated")),
        "{err}"
    );
}

#[test]
fn a_failing_collateral_source_is_the_cause_of_the_refusal() {
    let (sgx, _, at) = vector("sgx-v3-automata-swhardening");
    let verifier = AnyVerifier::dcap(
        |_: &Quote, _: u64| Err(std::io::Error::other("connection refused").into()),
        move || at,
    );
    let err = verifier.verify(&sgx).unwrap_err();
    let cause = std::error::Error::source(&err).expect("the source's error is kept");
    assert_eq!(cause.to_string(), "connection refused");
    assert!(!err.to_string().contains("connection refused"), "{err}");
}
