//! The DCAP path, with a real SGX quote and its Intel collateral (ward-attest's test vectors).

mod common;

use common::*;
use rcgen::CustomExtension;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use ward_attest::dcap::Collateral;
use ward_attest::{Policy, TcbStatus, TeeKind};
use ward_ratls::cert::{DICE_EVIDENCE_OID, GRAMINE_LEGACY_QUOTE_OID};
use ward_ratls::{
    parse_certificate, verify_certificate, AnyVerifier, DcapEvidenceVerifier, EvidenceVerifier,
    RaTlsError, SimVerifier,
};

/// SWHardeningNeeded [INTEL-SA-00615], valid at this time.
const VECTOR: &str = "sgx-v3-automata-swhardening";
const VERIFY_AT: u64 = 1755236700;

fn vector() -> (Vec<u8>, Collateral) {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ward-attest/tests/data")
        .join(VECTOR);
    (
        std::fs::read(d.join("quote.bin")).unwrap(),
        Collateral::load(&d.join("collateral.json")).unwrap(),
    )
}

#[test]
fn dcap_verifier_uses_the_callers_collateral_and_clock() {
    let (quote, collateral) = vector();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let verifier = DcapEvidenceVerifier::new(
        move |q: &ward_attest::quote::Quote, now: u64| {
            seen.fetch_add(1, Ordering::SeqCst);
            assert_eq!(q.tee(), TeeKind::Sgx);
            assert_eq!(now, VERIFY_AT);
            Ok(collateral.clone())
        },
        || VERIFY_AT,
    );
    let claims = verifier.verify(&quote).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(claims.tee, TeeKind::Sgx);
    assert_eq!(claims.tcb_status, Some(TcbStatus::SWHardeningNeeded));

    // Long after the collateral expired: refused, with the caller's clock.
    let (_, collateral) = vector();
    let late = DcapEvidenceVerifier::with_collateral(collateral, || VERIFY_AT + 400 * 86_400);
    let err = late.verify(&quote).unwrap_err();
    assert!(
        matches!(err, ward_attest::Error::CollateralExpired { .. }),
        "{err}"
    );
    assert!(chain(&err).contains("expired"), "{}", chain(&err));

    // A collateral source that fails.
    let failing = DcapEvidenceVerifier::new(
        |_: &ward_attest::quote::Quote, _: u64| Err("PCCS unreachable".into()),
        || VERIFY_AT,
    );
    let err = failing.verify(&quote).unwrap_err();
    // The source's error is the cause; the message says what to do.
    assert!(
        matches!(err, ward_attest::Error::CollateralSource { .. })
            && err.to_string().contains("PCCS")
            && chain(&err).ends_with(": PCCS unreachable"),
        "{}",
        chain(&err)
    );
}

#[test]
fn real_quote_in_a_certificate_for_another_key_is_refused() {
    let (quote, collateral) = vector();
    let verifier = AnyVerifier::new(
        Some(SimVerifier),
        Some(DcapEvidenceVerifier::with_collateral(collateral, || {
            VERIFY_AT
        })),
    );
    let policy = Policy::from_toml(
        "accept_any_identity = true\nallowed_tcb_statuses = [\"SWHardeningNeeded\"]\nallowed_advisories = [\"*\"]\n",
        "test",
    )
    .unwrap();
    let key = p384();
    for arcs in [GRAMINE_LEGACY_QUOTE_OID, DICE_EVIDENCE_OID] {
        let value = if arcs == DICE_EVIDENCE_OID {
            // A DICE wrapper whose claims name this key; the quote binds something else.
            let claims = {
                let mut entry = Vec::new();
                ciborium::ser::into_writer(
                    &ciborium::value::Value::Array(vec![
                        ciborium::value::Value::Integer(1u64.into()),
                        ciborium::value::Value::Bytes(spki_sha256(&key).to_vec()),
                    ]),
                    &mut entry,
                )
                .unwrap();
                let mut out = Vec::new();
                ciborium::ser::into_writer(
                    &ciborium::value::Value::Map(vec![(
                        ciborium::value::Value::Text("pubkey-hash".into()),
                        ciborium::value::Value::Bytes(entry),
                    )]),
                    &mut out,
                )
                .unwrap();
                out
            };
            let mut out = Vec::new();
            ciborium::ser::into_writer(
                &ciborium::value::Value::Tag(
                    60000,
                    Box::new(ciborium::value::Value::Array(vec![
                        ciborium::value::Value::Bytes(quote.clone()),
                        ciborium::value::Value::Bytes(claims),
                    ])),
                ),
                &mut out,
            )
            .unwrap();
            out
        } else {
            quote.clone()
        };
        let der = cert_with(&key, vec![CustomExtension::from_oid_content(arcs, value)]);
        // A multi-KiB quote survives the extension and CBOR round trip.
        assert_eq!(parse_certificate(&der).unwrap().quote(), quote.as_slice());
        // The quote verifies (routed to DCAP), but it does not bind this certificate's key.
        let err = verify_certificate(&der, &verifier, &policy).unwrap_err();
        assert!(matches!(err, RaTlsError::Binding(_)), "{err}");
    }
}

/// An error and its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    ward_attest::ErrorChain(e).to_string()
}
