//! Writes the seeds of `ratls_cert` and `provision_protocol` into `fuzz/seeds/<target>/`: real
//! inputs made by the code under test, so fuzzing starts from what the parsers accept.
//!
//! ```text
//! cargo run --release --manifest-path fuzz/Cargo.toml --bin make-seeds
//! ```
//!
//! - `ratls_cert`: certificates made by `ward_ratls::RaTlsIdentity` with the simulated TEE in
//!   each evidence form (DICE, legacy, both; a debug identity too), a DICE certificate with a
//!   P-256 key, certificates carrying each real DCAP quote of `seeds/parse_quote` (legacy and
//!   DICE form; parsed but not bound to their key), and inputs for the target's "built" mode.
//! - `provision_protocol`: requests made by `encode_ward_request` and Gramine's request, answers
//!   made by `encode_answer` / `encode_gramine_answer`, alone and one after another.
//!
//! Keys are fresh on every run, so regenerated certificates differ byte for byte; the files are
//! committed, and regenerating them is only needed when the formats change.

use rcgen::{CustomExtension, KeyPair, PublicKeyData};
use std::path::Path;
use ward_attest::attester::SimAttester;
use ward_attest::sim::{SimIdentity, SimPlatformKey};
use ward_fuzz::ratls_cert::{claims_for, dice_value, sign_cert};
use ward_provision::protocol::{
    encode_answer, encode_gramine_answer, encode_ward_request, Status, GRAMINE_REQUEST,
};
use ward_ratls::cert::{DICE_EVIDENCE_OID, GRAMINE_LEGACY_QUOTE_OID};
use ward_ratls::{EvidenceForm, RaTlsIdentity};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes)
        .unwrap_or_else(|e| panic!("writing {}: {e}", dir.join(name).display()));
}

fn identity(debug: bool) -> SimIdentity {
    SimIdentity {
        mr_enclave: [0x3a; 32],
        mr_signer: [0xc0; 32],
        isv_prod_id: 1,
        isv_svn: 3,
        debug,
    }
}

fn ratls(dir: &Path) -> usize {
    let mut n = 0;
    for (debug, suffix) in [(false, ""), (true, "-debug")] {
        let attester = SimAttester::new(SimPlatformKey::generate(), identity(debug));
        for (form, name) in [
            (EvidenceForm::Dice, "sim-dice"),
            (EvidenceForm::Legacy, "sim-legacy"),
            (EvidenceForm::DiceAndLegacy, "sim-dice-and-legacy"),
        ] {
            let id = RaTlsIdentity::generate(&attester, form).expect("generating a certificate");
            write(dir, &format!("{name}{suffix}.der"), id.cert_der());
            n += 1;
        }
    }

    // DCAP quotes from real machines, in both extensions (their report data binds another key:
    // they parse, and the quote parser behind the certificate is reached, but they do not bind).
    let quotes = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/parse_quote");
    let mut entries: Vec<_> = std::fs::read_dir(&quotes)
        .unwrap_or_else(|e| panic!("reading {}: {e}", quotes.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let claims = claims_for(&key.subject_public_key_info(), 1);
    for path in entries {
        let quote = std::fs::read(&path).expect("reading a quote");
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("quote");
        let legacy = CustomExtension::from_oid_content(GRAMINE_LEGACY_QUOTE_OID, quote.clone());
        write(
            dir,
            &format!("dcap-legacy-{stem}.der"),
            &sign_cert(&key, vec![legacy]),
        );
        let dice =
            CustomExtension::from_oid_content(DICE_EVIDENCE_OID, dice_value(&quote, &claims));
        write(
            dir,
            &format!("dcap-dice-{stem}.der"),
            &sign_cert(&key, vec![dice]),
        );
        n += 2;
    }

    // The target's "built" mode: byte 0 the extensions and key, byte 1 how the evidence is made
    // (0x04: a real sim quote), then contents.
    for shape in [0x00, 0x01, 0x02, 0x03, 0x20, 0x23] {
        for how in [0x04u8, 0x14, 0x44, 0x64, 0x0c] {
            let mut input = vec![shape, how];
            input.extend_from_slice(b"\x10\x01\x33\x80");
            write(dir, &format!("built-{shape:02x}-{how:02x}"), &input);
            n += 1;
        }
    }
    n
}

fn provision(dir: &Path) -> usize {
    let mut seeds: Vec<(&str, Vec<u8>)> = vec![
        ("request-gramine", GRAMINE_REQUEST.to_vec()),
        (
            "request-one",
            encode_ward_request(&["wrap_key"]).expect("request"),
        ),
        (
            "request-three",
            encode_ward_request(&["wrap_key", "model_key", "é-ünïcode"]).expect("request"),
        ),
        (
            "request-long-name",
            encode_ward_request(&["k".repeat(300).as_str()]).expect("request"),
        ),
        (
            "answer-granted",
            encode_answer(Status::Granted, &[7; 16]).to_vec(),
        ),
        (
            "answer-refused",
            encode_answer(Status::Refused, b"identity: mr_enclave differs").to_vec(),
        ),
        (
            "answer-unknown",
            encode_answer(Status::Unknown, b"no secret named \"x\"").to_vec(),
        ),
        (
            "answer-rejected",
            encode_answer(Status::RequestRejected, b"the request names no secret").to_vec(),
        ),
        ("answer-empty", encode_answer(Status::Granted, b"").to_vec()),
        ("answer-gramine", encode_gramine_answer(&[9; 16]).to_vec()),
    ];
    let mut several = encode_answer(Status::Granted, &[1; 16]).to_vec();
    several.extend_from_slice(&encode_answer(Status::Refused, b"debug enclave"));
    several.extend_from_slice(&encode_answer(Status::Unknown, b"no such secret"));
    seeds.push(("answers-several", several));
    let mut with_trailing = encode_ward_request(&["a"]).expect("request");
    with_trailing.extend_from_slice(b"trailing");
    seeds.push(("request-trailing", with_trailing));
    for (name, bytes) in &seeds {
        write(dir, name, bytes);
    }
    seeds.len()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, make) in [
        ("ratls_cert", ratls as fn(&Path) -> usize),
        ("provision_protocol", provision),
    ] {
        let dir = root.join(target);
        // Regenerate from scratch: a seed the code no longer makes must not linger.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let n = make(&dir);
        println!("make-seeds: {n} seeds in {}", dir.display());
    }
}
