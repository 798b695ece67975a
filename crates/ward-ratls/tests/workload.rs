//! The workload's identity in RA-TLS evidence: ward's runtime names the manifest it runs in the
//! DICE claims (bound by the quote's report data, with ward's tag), verifiers carry it into
//! `VerifiedClaims`, and policies can require it next to the platform's identity.

mod common;

use ciborium::value::Value;
use common::*;
use rcgen::{CustomExtension, PublicKeyData};
use sha2::{Digest, Sha256};
use ward_attest::attester::Attester;
use ward_attest::{EvidenceVerifier, Policy, WorkloadIdentity, WORKLOAD_REPORT_DATA_TAG};
use ward_ratls::cert::DICE_EVIDENCE_OID;
use ward_ratls::{
    parse_certificate, verify_certificate, verify_evidence, EvidenceForm, RaTlsError,
    RaTlsIdentity, SimVerifier,
};

fn workload(measurement: u8) -> WorkloadIdentity {
    WorkloadIdentity {
        measurement: [measurement; 32],
        signer: [0x33; 32],
        isv_prod_id: 7,
        isv_svn: 3,
        debug: false,
    }
}

/// A policy trusting the simulated platform, with one identity of the given extra TOML lines.
fn policy_with(platform_hex: &str, identity: &str) -> Result<Policy, ward_attest::PolicyError> {
    Policy::from_toml(
        &format!(
            "allow_simulated = true\nsimulated_platform_keys = [\"{platform_hex}\"]\n\n\
             [[identity]]\n{identity}"
        ),
        "test policy",
    )
}

/// Both layers: the (simulated) enclave and the ward manifest in it.
fn both_layers(platform_hex: &str, w: &WorkloadIdentity) -> Policy {
    policy_with(
        platform_hex,
        &format!(
            "mr_enclave = \"{}\"\nworkload_measurement = \"{}\"\nworkload_signer = \"{}\"\n\
             workload_isv_prod_id = {}\nworkload_min_isv_svn = {}\n",
            hex::encode(MR_ENCLAVE),
            hex::encode(w.measurement),
            hex::encode(w.signer),
            w.isv_prod_id,
            w.isv_svn
        ),
    )
    .unwrap()
}

#[test]
fn the_named_workload_is_verified_and_judged() {
    let attester = Recording::new();
    let w = workload(0xaa);
    let id = RaTlsIdentity::generate_for_workload(&attester, &w).unwrap();

    // The quote's report data: SHA-256 of the claims, then ward's tag.
    let quote = SimVerifier.verify(&attester.quotes()[0]).unwrap();
    assert_eq!(quote.report_data[32..], WORKLOAD_REPORT_DATA_TAG);

    let claims = verify_evidence(id.cert_der(), &SimVerifier).unwrap();
    assert_eq!(claims.workload, Some(w));
    let json = serde_json::to_value(&claims).unwrap();
    assert_eq!(
        json["workload"]["measurement"],
        hex::encode(w.measurement),
        "{json}"
    );

    let platform = attester.platform_hex();
    verify_certificate(id.cert_der(), &SimVerifier, &both_layers(&platform, &w)).unwrap();

    // Each workload field is judged on its own.
    let cases = [
        (workload(0xbb), "workload_measurement"),
        (
            WorkloadIdentity {
                signer: [0x44; 32],
                ..w
            },
            "workload_signer",
        ),
        (
            WorkloadIdentity {
                isv_prod_id: 8,
                ..w
            },
            "workload_isv_prod_id",
        ),
        (WorkloadIdentity { isv_svn: 4, ..w }, "workload_min_isv_svn"),
    ];
    for (wanted, rule) in cases {
        let err = verify_certificate(
            id.cert_der(),
            &SimVerifier,
            &both_layers(&platform, &wanted),
        )
        .unwrap_err();
        let refusal = err.refusal().unwrap_or_else(|| panic!("{rule}: {err}"));
        assert_eq!(refusal.rule, rule, "{err}");
    }

    // A manifest signed for debugging is refused unless debug is allowed.
    let debug = WorkloadIdentity { debug: true, ..w };
    let id = RaTlsIdentity::generate_for_workload(&attester, &debug).unwrap();
    let err =
        verify_certificate(id.cert_der(), &SimVerifier, &both_layers(&platform, &w)).unwrap_err();
    assert_eq!(err.refusal().unwrap().rule, "allow_debug", "{err}");
    assert!(err.to_string().contains("sgx.debug = true"), "{err}");
}

#[test]
fn evidence_that_names_no_workload_is_refused_when_the_policy_requires_one() {
    let attester = Recording::new();
    let w = workload(0xaa);
    let platform = attester.platform_hex();
    for form in [EvidenceForm::Dice, EvidenceForm::Legacy] {
        let id = RaTlsIdentity::generate(&attester, form).unwrap();
        assert_eq!(
            verify_evidence(id.cert_der(), &SimVerifier)
                .unwrap()
                .workload,
            None
        );
        let err = verify_certificate(id.cert_der(), &SimVerifier, &both_layers(&platform, &w))
            .unwrap_err();
        let refusal = err.refusal().unwrap();
        assert_eq!(refusal.rule, "workload_measurement", "{form}: {err}");
        assert!(err.to_string().contains("names no ward manifest"), "{err}");
        // A policy of the platform layer alone still accepts it.
        verify_certificate(id.cert_der(), &SimVerifier, &policy(&platform, &MR_ENCLAVE)).unwrap();
    }
}

/// Claims naming `w` and binding `key`, CBOR as ward writes them.
fn claims_naming(
    key: &rcgen::KeyPair,
    w: &WorkloadIdentity,
    extra: Option<(&str, Value)>,
) -> Vec<u8> {
    let mut hash_entry = Vec::new();
    ciborium::ser::into_writer(
        &Value::Array(vec![
            Value::Integer(1.into()),
            Value::Bytes(Sha256::digest(key.subject_public_key_info()).to_vec()),
        ]),
        &mut hash_entry,
    )
    .unwrap();
    let t = |s: &str| Value::Text(s.into());
    let mut fields = vec![
        (t("measurement"), Value::Bytes(w.measurement.to_vec())),
        (t("signer"), Value::Bytes(w.signer.to_vec())),
        (t("isv-prod-id"), Value::Integer(w.isv_prod_id.into())),
        (t("isv-svn"), Value::Integer(w.isv_svn.into())),
        (t("debug"), Value::Bool(w.debug)),
    ];
    if let Some((k, v)) = extra {
        fields.retain(|(name, _)| name != &t(k));
        fields.push((t(k), v));
    }
    let map = Value::Map(vec![
        (t("pubkey-hash"), Value::Bytes(hash_entry)),
        (t("ward-workload"), Value::Map(fields)),
    ]);
    let mut out = Vec::new();
    ciborium::ser::into_writer(&map, &mut out).unwrap();
    out
}

/// A DICE certificate for `key` whose quote carries `report_data`.
fn dice_cert(
    attester: &Recording,
    key: &rcgen::KeyPair,
    claims: Vec<u8>,
    report_data: [u8; 64],
) -> Vec<u8> {
    let quote = attester.attest(&report_data).unwrap().quote;
    let mut value = Vec::new();
    ciborium::ser::into_writer(
        &Value::Tag(
            60000,
            Box::new(Value::Array(vec![
                Value::Bytes(quote),
                Value::Bytes(claims),
            ])),
        ),
        &mut value,
    )
    .unwrap();
    cert_with(
        key,
        vec![CustomExtension::from_oid_content(DICE_EVIDENCE_OID, value)],
    )
}

/// What a confined program could try: ask for evidence over claims of its choosing that name
/// another workload. Without ward's tag (which `/dev/attestation` refuses to use) the claim is
/// refused, however well-formed.
#[test]
fn a_workload_claim_without_wards_tag_is_refused() {
    let attester = Recording::new();
    let key = p384();
    let w = workload(0xaa);
    let claims = claims_naming(&key, &w, None);
    let mut rd = [0u8; 64];
    rd[..32].copy_from_slice(&Sha256::digest(&claims));

    let der = dice_cert(&attester, &key, claims.clone(), rd);
    let err = verify_evidence(&der, &SimVerifier).unwrap_err();
    assert!(matches!(err, RaTlsError::Binding(_)), "{err}");
    assert!(
        err.to_string().contains("not made by ward's runtime"),
        "{err}"
    );

    // Control: the same claims with the tag verify and name the workload.
    rd[32..].copy_from_slice(&WORKLOAD_REPORT_DATA_TAG);
    let der = dice_cert(&attester, &key, claims, rd);
    assert_eq!(
        verify_evidence(&der, &SimVerifier).unwrap().workload,
        Some(w)
    );
}

#[test]
fn malformed_workload_claims_are_refused_with_the_field_named() {
    let attester = Recording::new();
    let key = p384();
    let w = workload(0xaa);
    let cases: [(&str, Value, &str); 5] = [
        (
            "measurement",
            Value::Bytes(vec![1; 31]),
            "\"measurement\" that is not 32 bytes",
        ),
        (
            "isv-svn",
            Value::Integer(70000.into()),
            "\"isv-svn\" that is not an integer",
        ),
        (
            "debug",
            Value::Integer(0.into()),
            "\"debug\" that is not a boolean",
        ),
        ("colour", Value::Bool(true), "unknown field \"colour\""),
        (
            "signer",
            Value::Text("x".into()),
            "\"signer\" that is not 32 bytes",
        ),
    ];
    for (field, value, says) in cases {
        let claims = claims_naming(&key, &w, Some((field, value)));
        let mut rd = [0u8; 64];
        rd[..32].copy_from_slice(&Sha256::digest(&claims));
        rd[32..].copy_from_slice(&WORKLOAD_REPORT_DATA_TAG);
        let der = dice_cert(&attester, &key, claims, rd);
        let err = parse_certificate(&der).unwrap_err();
        assert!(
            matches!(err, RaTlsError::MalformedEvidence { .. }),
            "{field}: {err}"
        );
        assert!(err.to_string().contains(says), "{field}: {err}");
    }
}

#[test]
fn a_policy_of_workload_fields_alone_needs_the_simulated_tee() {
    let platform = Recording::new().platform_hex();
    let only = format!("workload_measurement = \"{}\"\n", "ab".repeat(32));
    let err = policy_with(&platform, &only).unwrap_err();
    assert!(
        err.to_string().contains("names only the ward workload"),
        "{err}"
    );
    policy_with(&platform, &format!("tee = \"sim\"\n{only}")).unwrap();
    policy_with(
        &platform,
        &format!("mr_td = \"{}\"\n{only}", "cd".repeat(48)),
    )
    .unwrap();
    policy_with(
        &platform,
        &format!("mr_signer = \"{}\"\n{only}", "cd".repeat(32)),
    )
    .unwrap();
}
