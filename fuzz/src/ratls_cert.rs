//! Body of the `ratls_cert` target: a client's RA-TLS certificate is attacker DER, read before
//! anything about it is authenticated.
//!
//! Each input is used twice:
//!
//! 1. **Raw**: the bytes are the certificate (seeds: real certificates made by
//!    `ward_ratls::RaTlsIdentity` in every evidence form, and certificates carrying the real DCAP
//!    quotes of `crates/ward-attest/tests/data`).
//! 2. **Built**: byte 0 chooses extensions and a key, byte 1 how the evidence is made, and the rest
//!    feeds the contents; a certificate is signed around them (keys cached), so the CBOR and quote
//!    parsers behind the outer X.509 layer are reached far more often than by flipping DER bytes.
//!
//! On each certificate it runs `parse_certificate`, and on what parses the evidence checks a
//! verifier would make (sim quote signature, `check_binding`, a policy), and asserts:
//! - nothing panics, every error displays;
//! - what parses is consistent: the SubjectPublicKeyInfo (and a legacy quote) are bytes of the
//!   input, a DICE `pubkey-hash` digest has its algorithm's length, parsing twice gives the same;
//! - a certificate verifies (sim evidence, binding, policy) exactly when each step does, and a
//!   built certificate with clean, correctly bound evidence always verifies, while one with a
//!   duplicated evidence extension never parses.

use ciborium::value::Value;
use rcgen::{CertificateParams, CustomExtension, KeyPair, PublicKeyData};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use ward_attest::sim::{is_sim_quote, SimIdentity, SimPlatformKey, SimQuote};
use ward_attest::Policy;
use ward_ratls::cert::{
    DICE_EVIDENCE_OID, DICE_TEE_QUOTE_CBOR_TAG, GRAMINE_LEGACY_QUOTE_OID, LEGACY_QUOTE_OID,
    PUBKEY_HASH_CLAIM,
};
use ward_ratls::{parse_certificate, EmbeddedEvidence, EvidenceForm};

/// What happened to one input, for the replay runner's statistics.
pub fn run(data: &[u8]) -> Vec<String> {
    let mut out = vec![format!("raw {}", check(data))];
    if data.len() >= 2 {
        let (der, clean) = build(data);
        let got = check(&der);
        if clean {
            assert_eq!(got, "verified", "a clean, bound certificate did not verify");
        }
        if data[0] & 0x04 != 0 {
            assert!(
                got.starts_with("err"),
                "a certificate with a duplicated evidence extension parsed"
            );
        }
        out.push(format!("built {got}"));
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn err_kind(e: &ward_ratls::RaTlsError) -> String {
    let _ = e.to_string();
    let dbg = format!("{e:?}");
    let name = dbg
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("?");
    format!("err {name}")
}

/// Parses and verifies one certificate; returns "verified", "parsed" (parses, does not verify)
/// or the error kind.
fn check(der: &[u8]) -> String {
    let cert = match parse_certificate(der) {
        Ok(c) => c,
        Err(e) => return err_kind(&e),
    };
    assert!(
        contains(der, cert.spki_der()),
        "the public key is not from the input"
    );
    assert!(!cert.quote().is_empty(), "an empty quote parsed");
    match cert.evidence() {
        EmbeddedEvidence::Dice {
            claims,
            pubkey_hash,
            ..
        } => {
            assert_eq!(cert.form(), EvidenceForm::Dice);
            assert!(!claims.is_empty());
            assert_eq!(pubkey_hash.digest.len(), pubkey_hash.alg.digest_len());
        }
        EmbeddedEvidence::Legacy { quote } => {
            assert_eq!(cert.form(), EvidenceForm::Legacy);
            assert!(contains(der, quote), "a legacy quote is not from the input");
        }
        _ => {}
    }
    let again = parse_certificate(der).expect("parsed once, not twice");
    assert!(again == cert, "parsing twice gave different results");
    let _ = format!("{cert:?}");

    let quote = cert.quote();
    // The binding check on unverified report data must not panic either.
    let _ = cert.check_binding(&[0; 64]).map_err(|e| e.to_string());
    if !is_sim_quote(quote) {
        if let Ok(q) = ward_attest::quote::Quote::parse(quote) {
            assert_eq!(q.len() + q.trailing_bytes(), quote.len());
            let _ = cert
                .check_binding(q.report_data())
                .map_err(|e| e.to_string());
        }
        return "parsed".into();
    }
    let Ok(sim) = SimQuote::parse(quote) else {
        return "parsed".into();
    };
    let Ok(claims) = sim.verify() else {
        return "parsed".into();
    };
    if cert.check_binding(&claims.report_data).is_err() {
        return "parsed".into();
    }
    // The policy of a key holder who trusts this platform and this identity.
    let policy = Policy::from_toml(
        &format!(
            "allow_simulated = true\nallow_debug = true\nsimulated_platform_keys = [\"{}\"]\n\n\
             [[identity]]\nmr_enclave = \"{}\"\n",
            sim.platform_key.to_hex(),
            hex::encode(sim.identity.mr_enclave)
        ),
        "fuzz policy",
    )
    .expect("the fuzz policy parses");
    policy
        .evaluate(&claims)
        .expect("a policy naming the platform and identity refused them");
    "verified".into()
}

struct Keys {
    p256: KeyPair,
    p384: KeyPair,
    platform: SimPlatformKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        p256: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key"),
        p384: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("P-384 key"),
        platform: SimPlatformKey::generate(),
    })
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).expect("CBOR to a Vec");
    out
}

/// `{"pubkey-hash": bstr(CBOR [alg, bstr digest])}` over `spki`, as Gramine writes it.
pub fn claims_for(spki: &[u8], alg: u64) -> Vec<u8> {
    let digest = match alg {
        7 => sha2::Sha384::digest(spki).to_vec(),
        8 => sha2::Sha512::digest(spki).to_vec(),
        _ => Sha256::digest(spki).to_vec(),
    };
    let entry = cbor(&Value::Array(vec![
        Value::Integer(alg.into()),
        Value::Bytes(digest),
    ]));
    cbor(&Value::Map(vec![(
        Value::Text(PUBKEY_HASH_CLAIM.into()),
        Value::Bytes(entry),
    )]))
}

/// DICE tagged evidence: `tag 60000 ([bstr quote, bstr claims])`.
pub fn dice_value(quote: &[u8], claims: &[u8]) -> Vec<u8> {
    cbor(&Value::Tag(
        DICE_TEE_QUOTE_CBOR_TAG,
        Box::new(Value::Array(vec![
            Value::Bytes(quote.to_vec()),
            Value::Bytes(claims.to_vec()),
        ])),
    ))
}

/// A self-signed certificate for `key` with these extensions (as `RaTlsIdentity` makes them).
pub fn sign_cert(key: &KeyPair, extensions: Vec<CustomExtension>) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.custom_extensions = extensions;
    params
        .self_signed(key)
        .expect("signing a certificate")
        .der()
        .to_vec()
}

fn sim_quote(report_data: &[u8; 64], debug: bool) -> Vec<u8> {
    let identity = SimIdentity {
        mr_enclave: [0x11; 32],
        mr_signer: [0x22; 32],
        isv_prod_id: 1,
        isv_svn: 2,
        debug,
    };
    SimQuote::sign(&keys().platform, &identity, report_data).to_bytes()
}

/// Builds a certificate from the input. Returns it and whether it is clean: correct, bound
/// evidence that must verify.
fn build(data: &[u8]) -> (Vec<u8>, bool) {
    let (shape, how) = (data[0], data[1]);
    let rest = &data[2..];
    let k = keys();
    let key = if shape & 0x20 != 0 { &k.p256 } else { &k.p384 };
    let spki = key.subject_public_key_info();
    let (dice, legacy) = match shape & 0x03 {
        0 => (true, None),
        1 => (false, Some(GRAMINE_LEGACY_QUOTE_OID)),
        2 => (false, Some(LEGACY_QUOTE_OID)),
        _ => (true, Some(GRAMINE_LEGACY_QUOTE_OID)),
    };
    let duplicate = shape & 0x04 != 0;
    // how: bit 0 the DICE value is the raw rest; bit 1 the claims are the raw rest; bit 2 the
    // quote is a real sim quote (else the raw rest); bit 3 then flip bytes of it as the rest
    // says; bit 4 a debug identity; bits 5-6 the claims' hash algorithm.
    let alg = [1, 1, 7, 8][(how >> 5 & 0x03) as usize];
    let claims = if how & 0x02 != 0 {
        rest.to_vec()
    } else {
        claims_for(&spki, alg)
    };
    let flips = how & 0x08 != 0 && !rest.is_empty();
    let quote_for = |report_data: [u8; 64]| {
        if how & 0x04 == 0 {
            return rest.to_vec();
        }
        let mut q = sim_quote(&report_data, how & 0x10 != 0);
        if flips {
            for pair in rest.chunks(2) {
                let at = pair[0] as usize * 7 % q.len();
                q[at] ^= pair.get(1).copied().unwrap_or(1) | 1;
            }
        }
        q
    };
    let mut exts = Vec::new();
    if let Some(oid) = legacy {
        let mut rd = [0u8; 64];
        rd[..32].copy_from_slice(&Sha256::digest(&spki));
        let q = quote_for(rd);
        exts.push(CustomExtension::from_oid_content(oid, q.clone()));
        if duplicate && !dice {
            exts.push(CustomExtension::from_oid_content(oid, q));
        }
    }
    if dice {
        let value = if how & 0x01 != 0 {
            rest.to_vec()
        } else {
            let mut rd = [0u8; 64];
            rd[..32].copy_from_slice(&Sha256::digest(&claims));
            dice_value(&quote_for(rd), &claims)
        };
        exts.push(CustomExtension::from_oid_content(
            DICE_EVIDENCE_OID,
            value.clone(),
        ));
        if duplicate {
            exts.push(CustomExtension::from_oid_content(DICE_EVIDENCE_OID, value));
        }
    }
    let clean = how & 0x04 != 0 && !flips && how & 0x03 == 0 && !duplicate;
    (sign_cert(key, exts), clean)
}
