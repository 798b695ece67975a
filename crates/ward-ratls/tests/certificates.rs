//! RA-TLS certificates: generation, parsing, binding and the ways a certificate can be wrong.

mod common;

use common::*;
use rcgen::{CustomExtension, KeyPair, PublicKeyData};
use sha2::{Digest, Sha256};
use ward_attest::attester::Attester;
use ward_attest::sim::SimQuote;
use ward_attest::TeeKind;
use ward_ratls::cert::{DICE_EVIDENCE_OID, GRAMINE_LEGACY_QUOTE_OID, LEGACY_QUOTE_OID};
use ward_ratls::{
    parse_certificate, verify_certificate, AnyVerifier, EmbeddedEvidence, EvidenceForm,
    EvidenceVerifier, PubkeyHashAlg, RaTlsError, RaTlsIdentity, SimVerifier,
};

const DICE: &str = "2.23.133.5.4.9";
const GRAMINE_LEGACY: &str = "0.6.9.42.840.113741.1337.6";

#[test]
fn dice_round_trip() {
    let attester = Recording::new();
    let id = RaTlsIdentity::generate(&attester, EvidenceForm::default()).unwrap();
    assert_eq!(id.form(), EvidenceForm::Dice);
    assert_eq!(id.tee(), TeeKind::Sim);
    let quotes = attester.quotes();
    assert_eq!(quotes.len(), 1);

    // Only the DICE extension, non-critical; CN and key as documented.
    {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, x) = X509Certificate::from_der(id.cert_der()).unwrap();
        let ext: Vec<_> = x
            .extensions()
            .iter()
            .filter(|e| e.oid.to_id_string() == DICE)
            .collect();
        assert_eq!(ext.len(), 1);
        assert!(!ext[0].critical);
        assert!(x
            .extensions()
            .iter()
            .all(|e| e.oid.to_id_string() != GRAMINE_LEGACY));
        assert_eq!(
            x.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "ward RA-TLS"
        );
        assert_eq!(x.subject(), x.issuer());
        let curve = x.public_key().algorithm.parameters.as_ref().unwrap();
        assert_eq!(curve.as_oid().unwrap().to_id_string(), "1.3.132.0.34");
    }

    let parsed = parse_certificate(id.cert_der()).unwrap();
    assert_eq!(parsed.form(), EvidenceForm::Dice);
    assert_eq!(parsed.quote(), quotes[0].as_slice());
    let EmbeddedEvidence::Dice {
        claims,
        pubkey_hash,
        ..
    } = parsed.evidence()
    else {
        panic!("not DICE: {parsed:?}")
    };
    assert_eq!(pubkey_hash.alg, PubkeyHashAlg::Sha256);
    assert_eq!(
        pubkey_hash.digest,
        Sha256::digest(parsed.spki_der()).to_vec()
    );

    let claims_verified = SimVerifier.verify(parsed.quote()).unwrap();
    let mut expected_rd = [0u8; 64];
    expected_rd[..32].copy_from_slice(&Sha256::digest(claims));
    assert_eq!(claims_verified.report_data, expected_rd);
    parsed.check_binding(&claims_verified.report_data).unwrap();

    let policy = policy(&attester.platform_hex(), &MR_ENCLAVE);
    let claims = verify_certificate(id.cert_der(), &SimVerifier, &policy).unwrap();
    assert_eq!(claims.tee, TeeKind::Sim);
    assert_eq!(claims.sgx.unwrap().mr_enclave, MR_ENCLAVE);
}

#[test]
fn legacy_round_trip() {
    let attester = Recording::new();
    let id = RaTlsIdentity::generate(&attester, EvidenceForm::Legacy).unwrap();
    let quotes = attester.quotes();
    assert_eq!(quotes.len(), 1);

    // Written with Gramine's OID bytes (06 09 inside the OID value), non-critical; no DICE.
    let der = id.cert_der();
    let needle = [
        0x06, 0x0B, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x8A, 0x39, 0x06,
    ];
    assert!(der.windows(needle.len()).any(|w| w == needle));
    assert_eq!(extension(der, GRAMINE_LEGACY).unwrap(), quotes[0]);
    assert!(extension(der, DICE).is_none());

    let parsed = parse_certificate(der).unwrap();
    assert_eq!(parsed.form(), EvidenceForm::Legacy);
    assert_eq!(parsed.quote(), quotes[0].as_slice());
    let verified = SimVerifier.verify(parsed.quote()).unwrap();
    let mut expected = [0u8; 64];
    expected[..32].copy_from_slice(&Sha256::digest(parsed.spki_der()));
    assert_eq!(verified.report_data, expected);
    parsed.check_binding(&verified.report_data).unwrap();

    let policy = policy(&attester.platform_hex(), &MR_ENCLAVE);
    verify_certificate(der, &SimVerifier, &policy).unwrap();
}

#[test]
fn dice_and_legacy_carries_both_and_uses_dice() {
    let attester = Recording::new();
    let id = RaTlsIdentity::generate(&attester, EvidenceForm::DiceAndLegacy).unwrap();
    let quotes = attester.quotes();
    assert_eq!(quotes.len(), 2, "one quote per extension");
    let der = id.cert_der();
    let legacy = extension(der, GRAMINE_LEGACY).unwrap();
    assert_eq!(legacy, quotes[0]);
    assert!(extension(der, DICE).is_some());

    let parsed = parse_certificate(der).unwrap();
    assert_eq!(parsed.form(), EvidenceForm::Dice);
    assert_eq!(parsed.quote(), quotes[1].as_slice());
    // The legacy quote binds the key too.
    let legacy_rd = SimQuote::parse(&legacy).unwrap().report_data;
    assert_eq!(
        &legacy_rd[..32],
        Sha256::digest(parsed.spki_der()).as_slice()
    );
    assert_eq!(&legacy_rd[32..], &[0u8; 32]);

    let policy = policy(&attester.platform_hex(), &MR_ENCLAVE);
    verify_certificate(der, &SimVerifier, &policy).unwrap();
}

#[test]
fn legacy_extension_under_the_intended_oid_is_read_too() {
    let attester = Recording::new();
    let key = p384();
    let quote = attester.attest(&legacy_report_data(&key)).unwrap().quote;
    let der = cert_with(
        &key,
        vec![CustomExtension::from_oid_content(LEGACY_QUOTE_OID, quote)],
    );
    let parsed = parse_certificate(&der).unwrap();
    assert_eq!(parsed.form(), EvidenceForm::Legacy);
    let policy = policy(&attester.platform_hex(), &MR_ENCLAVE);
    verify_certificate(&der, &SimVerifier, &policy).unwrap();
}

#[test]
fn p256_keys_are_accepted_and_other_key_types_are_not() {
    let attester = Recording::new();
    let policy = policy(&attester.platform_hex(), &MR_ENCLAVE);

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let quote = attester.attest(&legacy_report_data(&key)).unwrap().quote;
    let der = cert_with(
        &key,
        vec![CustomExtension::from_oid_content(
            GRAMINE_LEGACY_QUOTE_OID,
            quote,
        )],
    );
    verify_certificate(&der, &SimVerifier, &policy).unwrap();

    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let quote = attester.attest(&legacy_report_data(&key)).unwrap().quote;
    let der = cert_with(
        &key,
        vec![CustomExtension::from_oid_content(
            GRAMINE_LEGACY_QUOTE_OID,
            quote,
        )],
    );
    let err = parse_certificate(&der).unwrap_err();
    assert!(matches!(err, RaTlsError::Certificate(_)), "{err}");
    assert!(err.to_string().contains("P-256 or P-384"), "{err}");
}

#[test]
fn evidence_copied_to_another_key_is_refused() {
    let attester = Recording::new();
    let policy = policy(&attester.platform_hex(), &MR_ENCLAVE);
    for (form, oid, arcs) in [
        (EvidenceForm::Dice, DICE, DICE_EVIDENCE_OID),
        (
            EvidenceForm::Legacy,
            GRAMINE_LEGACY,
            GRAMINE_LEGACY_QUOTE_OID,
        ),
    ] {
        let original = RaTlsIdentity::generate(&attester, form).unwrap();
        let value = extension(original.cert_der(), oid).unwrap();
        let thief = p384();
        let forged = cert_with(&thief, vec![CustomExtension::from_oid_content(arcs, value)]);

        // It parses, its quote verifies, but it does not bind the thief's key.
        let parsed = parse_certificate(&forged).unwrap();
        let claims = SimVerifier.verify(parsed.quote()).unwrap();
        let err = parsed.check_binding(&claims.report_data).unwrap_err();
        assert!(matches!(err, RaTlsError::Binding(_)), "{form}: {err}");
        let err = verify_certificate(&forged, &SimVerifier, &policy).unwrap_err();
        assert!(matches!(err, RaTlsError::Binding(_)), "{form}: {err}");
        assert!(err.to_string().contains("another key"), "{form}: {err}");
    }
}

#[test]
fn legacy_report_data_must_be_zero_after_the_key_hash() {
    let attester = Recording::new();
    let key = p384();
    let mut rd = legacy_report_data(&key);
    rd[40] = 1;
    let quote = attester.attest(&rd).unwrap().quote;
    let der = cert_with(
        &key,
        vec![CustomExtension::from_oid_content(
            GRAMINE_LEGACY_QUOTE_OID,
            quote,
        )],
    );
    let policy = policy(&attester.platform_hex(), &MR_ENCLAVE);
    let err = verify_certificate(&der, &SimVerifier, &policy).unwrap_err();
    assert!(matches!(err, RaTlsError::Binding(_)), "{err}");
    assert!(err.to_string().contains("report_data[32..64]"), "{err}");
}

#[test]
fn plain_certificate_is_not_ra_tls() {
    let (cert, _) = plain_cert();
    let err = parse_certificate(&cert).unwrap_err();
    assert!(matches!(err, RaTlsError::NotRaTls), "{err}");
    assert!(err
        .to_string()
        .contains("not an RA-TLS certificate (no evidence extension)"));
    let policy = policy(&Recording::new().platform_hex(), &MR_ENCLAVE);
    let err = verify_certificate(&cert, &SimVerifier, &policy).unwrap_err();
    assert!(matches!(err, RaTlsError::NotRaTls), "{err}");
}

#[test]
fn corrupt_dice_does_not_fall_back_to_a_valid_legacy_extension() {
    let attester = Recording::new();
    let policy = policy(&attester.platform_hex(), &MR_ENCLAVE);
    let key = p384();
    let legacy_quote = attester.attest(&legacy_report_data(&key)).unwrap().quote;
    let legacy =
        || CustomExtension::from_oid_content(GRAMINE_LEGACY_QUOTE_OID, legacy_quote.clone());

    // Control: the legacy extension alone is valid.
    let der = cert_with(&key, vec![legacy()]);
    verify_certificate(&der, &SimVerifier, &policy).unwrap();

    // Garbage in the DICE extension.
    let der = cert_with(
        &key,
        vec![
            legacy(),
            CustomExtension::from_oid_content(DICE_EVIDENCE_OID, vec![0xde, 0xad, 0xbe, 0xef]),
        ],
    );
    let err = parse_certificate(&der).unwrap_err();
    assert!(
        matches!(err, RaTlsError::MalformedEvidence { form, .. } if form.contains("DICE")),
        "{err}"
    );
    let err = verify_certificate(&der, &SimVerifier, &policy).unwrap_err();
    assert!(matches!(err, RaTlsError::MalformedEvidence { .. }), "{err}");

    // A well-formed DICE extension bound to another key: refused, legacy not consulted.
    let other = RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap();
    let dice = extension(other.cert_der(), DICE).unwrap();
    let der = cert_with(
        &key,
        vec![
            legacy(),
            CustomExtension::from_oid_content(DICE_EVIDENCE_OID, dice),
        ],
    );
    let err = verify_certificate(&der, &SimVerifier, &policy).unwrap_err();
    assert!(matches!(err, RaTlsError::Binding(_)), "{err}");
}

#[test]
fn policy_refusal_names_the_rule() {
    let attester = Recording::new();
    let id = RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap();
    let policy = policy(&attester.platform_hex(), &OTHER_MR_ENCLAVE);
    let err = verify_certificate(id.cert_der(), &SimVerifier, &policy).unwrap_err();
    let refusal = err.refusal().expect("a policy refusal");
    assert_eq!(refusal.rule, "mr_enclave");
    assert!(err.to_string().contains("mr_enclave"), "{err}");

    // A platform key the policy does not trust.
    let stranger = Recording::new();
    let policy = common::policy(&stranger.platform_hex(), &MR_ENCLAVE);
    let err = verify_certificate(id.cert_der(), &SimVerifier, &policy).unwrap_err();
    assert_eq!(err.refusal().unwrap().rule, "simulated_platform_keys");
}

#[test]
fn any_verifier_routes_and_refuses_unconfigured_kinds() {
    let attester = Recording::new();
    let id = RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap();
    let policy = policy(&attester.platform_hex(), &MR_ENCLAVE);

    let with_sim = AnyVerifier::new(Some(SimVerifier), None);
    verify_certificate(id.cert_der(), &with_sim, &policy).unwrap();

    let without = AnyVerifier::default();
    let err = verify_certificate(id.cert_der(), &without, &policy).unwrap_err();
    assert!(
        matches!(err, RaTlsError::Evidence(ward_attest::Error::NoVerifier(_))),
        "{err}"
    );

    // A non-simulated quote goes to DCAP, which is not configured here.
    let key = p384();
    let der = cert_with(
        &key,
        vec![CustomExtension::from_oid_content(
            GRAMINE_LEGACY_QUOTE_OID,
            vec![3u8; 600],
        )],
    );
    let err = verify_certificate(&der, &with_sim, &policy).unwrap_err();
    assert!(
        matches!(err, RaTlsError::Evidence(ward_attest::Error::NoVerifier(_))),
        "{err}"
    );
}

#[test]
fn tampered_quote_fails_evidence_verification() {
    let attester = Recording::new();
    let key = p384();
    let mut quote = attester.attest(&legacy_report_data(&key)).unwrap().quote;
    quote[20] ^= 1; // inside MRENCLAVE
    let der = cert_with(
        &key,
        vec![CustomExtension::from_oid_content(
            GRAMINE_LEGACY_QUOTE_OID,
            quote,
        )],
    );
    let policy = policy(&attester.platform_hex(), &MR_ENCLAVE);
    let err = verify_certificate(&der, &SimVerifier, &policy).unwrap_err();
    assert!(matches!(err, RaTlsError::Evidence(_)), "{err}");
}

#[test]
fn damaged_certificates_are_errors_not_panics() {
    let attester = Recording::new();
    let policy = policy(&attester.platform_hex(), &MR_ENCLAVE);
    for form in [EvidenceForm::Dice, EvidenceForm::Legacy] {
        let id = RaTlsIdentity::generate(&attester, form).unwrap();
        let der = id.cert_der();
        for len in 0..der.len() {
            assert!(
                parse_certificate(&der[..len]).is_err(),
                "{form}: prefix {len}"
            );
        }
        let mut trailing = der.to_vec();
        trailing.push(0);
        assert!(matches!(
            parse_certificate(&trailing),
            Err(RaTlsError::Certificate(_))
        ));
        let original = parse_certificate(der).unwrap();
        for i in 0..der.len() {
            for bit in [0x01u8, 0x80] {
                let mut d = der.to_vec();
                d[i] ^= bit;
                // It must not panic; and if the damaged certificate still passes, the damage is
                // in bytes no check covers (names, dates, the self-signature), never in the key
                // or the evidence.
                if verify_certificate(&d, &SimVerifier, &policy).is_ok() {
                    let parsed = parse_certificate(&d).unwrap();
                    assert_eq!(parsed.spki_der(), original.spki_der(), "{form}: byte {i}");
                    assert_eq!(parsed.evidence(), original.evidence(), "{form}: byte {i}");
                }
            }
        }
    }
    assert!(parse_certificate(b"").is_err());
    assert!(parse_certificate(&[0x30, 0x82, 0xff, 0xff]).is_err());
}

#[test]
fn generation_reports_a_failing_attester() {
    #[derive(Debug)]
    struct Broken;
    impl Attester for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn attest(&self, _: &[u8; 64]) -> ward_attest::Result<ward_attest::attester::Evidence> {
            Err(ward_attest::Error::Unsupported("no TEE here".into()))
        }
    }
    let err = RaTlsIdentity::generate(&Broken, EvidenceForm::Dice).unwrap_err();
    assert!(
        matches!(
            err,
            RaTlsError::Attestation {
                attester: "broken",
                ..
            }
        ),
        "{err}"
    );

    // An attester that ignores the report data it was given.
    #[derive(Debug)]
    struct Liar(Recording);
    impl Attester for Liar {
        fn name(&self) -> &'static str {
            "liar"
        }
        fn attest(&self, _: &[u8; 64]) -> ward_attest::Result<ward_attest::attester::Evidence> {
            self.0.attest(&[7u8; 64])
        }
    }
    let err = RaTlsIdentity::generate(&Liar(Recording::new()), EvidenceForm::Legacy).unwrap_err();
    assert!(
        err.to_string()
            .contains("does not carry the requested report data"),
        "{err}"
    );
}

#[test]
fn identity_debug_hides_the_key() {
    let attester = Recording::new();
    let id = RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap();
    let shown = format!("{id:?}");
    assert!(shown.contains("redacted"), "{shown}");
    let rustls::pki_types::PrivateKeyDer::Pkcs8(k) = id.private_key() else {
        panic!("not PKCS#8")
    };
    let secret_hex = hex::encode(k.secret_pkcs8_der());
    assert!(!shown.contains(&secret_hex[secret_hex.len() - 40..]));
    // The conversions agree with the certificate.
    assert_eq!(id.certificate().as_ref(), id.cert_der());
    let key = KeyPair::try_from(k.secret_pkcs8_der()).unwrap();
    assert_eq!(
        key.subject_public_key_info(),
        parse_certificate(id.cert_der()).unwrap().spki_der()
    );
}
