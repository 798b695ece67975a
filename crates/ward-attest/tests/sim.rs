//! The simulated TEE: keys, the quote format, and that nothing but an untouched quote verifies.

use p256::ecdsa::Signature;
use std::path::Path;
use ward_attest::sim::{
    is_sim_quote, SimIdentity, SimPlatformKey, SimPlatformPublicKey, SimQuote, MAGIC, QUOTE_LEN,
};
use ward_attest::{Error, TeeKind};

fn identity(debug: bool) -> SimIdentity {
    SimIdentity {
        mr_enclave: std::array::from_fn(|i| i as u8),
        mr_signer: std::array::from_fn(|i| 0xa0 ^ i as u8),
        isv_prod_id: 0x1234,
        isv_svn: 0xbeef,
        debug,
    }
}

fn report_data() -> [u8; 64] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(3))
}

fn malformed_field(err: &Error) -> (&'static str, usize) {
    match err {
        Error::Malformed {
            what,
            field,
            offset,
            ..
        } => {
            assert_eq!(*what, "simulated quote");
            (*field, *offset)
        }
        other => panic!("expected a Malformed error, got {other:?}"),
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn key_save_load_round_trip_mode_0600_and_no_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("platform.pem");
    let key = SimPlatformKey::generate();
    key.save(&path).unwrap();
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");

    let loaded = SimPlatformKey::load(&path).unwrap();
    assert_eq!(loaded.public(), key.public());

    // A quote signed by the loaded key verifies under the original public key.
    let quote = SimQuote::sign(&loaded, &identity(false), &report_data());
    assert_eq!(quote.platform_key, key.public());
    quote.verify().unwrap();

    // Never overwrites, and says so; the existing key is untouched.
    let other = SimPlatformKey::generate();
    let err = other.save(&path).unwrap_err();
    let msg = chain(&err);
    assert!(matches!(err, Error::KeyFile { .. }), "{err:?}");
    assert!(msg.contains("already exists"), "{msg}");
    assert!(msg.contains("refusing to overwrite"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
    assert_eq!(SimPlatformKey::load(&path).unwrap().public(), key.public());
}

#[test]
fn key_load_refuses_garbage_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = SimPlatformKey::load(&missing).unwrap_err();
    assert!(matches!(err, Error::KeyFile { .. }), "{err:?}");
    assert!(chain(&err).contains("missing.pem"), "{err}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = SimPlatformKey::load(&garbage).unwrap_err();
    assert!(matches!(err, Error::KeyFile { .. }), "{err:?}");
    assert!(chain(&err).contains("garbage.pem"), "{err}");

    let huge = dir.path().join("huge.pem");
    std::fs::write(&huge, vec![b'A'; 100_000]).unwrap();
    let err = SimPlatformKey::load(&huge).unwrap_err();
    assert!(chain(&err).contains("16384"), "{}", chain(&err));
}

#[test]
fn key_debug_is_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let key = SimPlatformKey::generate();
    key.save(&path).unwrap();
    let debug = format!("{key:?}");
    assert!(debug.contains("<redacted>"), "{debug}");
    assert!(debug.contains(&key.public().to_hex()), "{debug}");
    // The PEM body (base64 of the PKCS#8 document) must not leak in any form we can spot.
    let pem = std::fs::read_to_string(&path).unwrap();
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!debug.contains(line), "{debug}");
    }
}

#[test]
fn public_key_text_forms() {
    let public = SimPlatformKey::generate().public();
    let hex = public.to_hex();
    assert_eq!(hex.len(), 66);
    assert!(hex.starts_with("02") || hex.starts_with("03"), "{hex}");
    assert_eq!(public.to_string(), hex);
    assert_eq!(SimPlatformPublicKey::from_hex(&hex).unwrap(), public);
    assert_eq!(
        SimPlatformPublicKey::from_hex(&format!(" {} \n", hex.to_uppercase())).unwrap(),
        public
    );
    assert_eq!(hex.parse::<SimPlatformPublicKey>().unwrap(), public);
    assert_eq!(
        SimPlatformPublicKey::from_pem(&public.to_pem()).unwrap(),
        public
    );
    assert!(public.to_pem().starts_with("-----BEGIN PUBLIC KEY-----"));

    for bad in [
        "",
        "02",
        &hex[..64],
        &format!("{hex}00"),
        &format!("04{}", &hex[2..]),
        &format!("zz{}", &hex[2..]),
    ] {
        let err = SimPlatformPublicKey::from_hex(bad).unwrap_err();
        assert!(matches!(err, Error::Key(_)), "{bad:?}: {err:?}");
    }
    // 0x02 followed by an x that has no point on the curve (about half of all x).
    let off_curve = (0u8..=255)
        .map(|b| {
            let mut bytes = [0u8; 33];
            bytes[0] = 0x02;
            bytes[32] = b;
            bytes
        })
        .find(|b| SimPlatformPublicKey::from_bytes(b).is_err())
        .expect("about half of all x have no point");
    assert!(matches!(
        SimPlatformPublicKey::from_bytes(&off_curve).unwrap_err(),
        Error::Key(_)
    ));
}

#[test]
fn sign_encode_parse_verify_round_trip() {
    let key = SimPlatformKey::generate();
    for debug in [false, true] {
        let id = identity(debug);
        let rd = report_data();
        let quote = SimQuote::sign(&key, &id, &rd);
        let bytes = quote.to_bytes();
        assert_eq!(bytes.len(), QUOTE_LEN);
        assert_eq!(QUOTE_LEN, 241);
        assert_eq!(&bytes[..8], &MAGIC);
        assert_eq!(&bytes[..8], b"WARDSIM\0");
        assert!(is_sim_quote(&bytes));

        // The layout of the module documentation, field by field.
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 1);
        assert_eq!(u16::from_le_bytes([bytes[10], bytes[11]]), debug as u16);
        assert_eq!(&bytes[12..44], &id.mr_enclave);
        assert_eq!(&bytes[44..76], &id.mr_signer);
        assert_eq!(&bytes[76..78], &0x1234u16.to_le_bytes());
        assert_eq!(&bytes[78..80], &0xbeefu16.to_le_bytes());
        assert_eq!(&bytes[80..144], &rd);
        assert_eq!(&bytes[144..177], &key.public().to_bytes());
        assert_eq!(&bytes[177..241], &quote.signature());

        let parsed = SimQuote::parse(&bytes).unwrap();
        assert_eq!(parsed, quote);
        assert_eq!(parsed.to_bytes(), bytes);

        let claims = parsed.verify().unwrap();
        assert_eq!(claims.tee, TeeKind::Sim);
        assert_eq!(claims.report_data, rd);
        assert_eq!(claims.tcb_status, None);
        assert!(claims.advisory_ids.is_empty());
        assert_eq!(claims.fmspc, None);
        assert_eq!(claims.collateral_expires, None);
        assert!(claims.tdx.is_none());
        assert_eq!(claims.sim_platform_key, Some(key.public().to_hex()));
        let sgx = claims.sgx.expect("sim claims carry an SGX-style identity");
        assert_eq!(sgx.mr_enclave, id.mr_enclave);
        assert_eq!(sgx.mr_signer, id.mr_signer);
        assert_eq!(sgx.isv_prod_id, 0x1234);
        assert_eq!(sgx.isv_svn, 0xbeef);
        assert_eq!(sgx.debug, debug);
        // INIT (bit 0) and MODE64 (bit 2) always; DEBUG (bit 1) iff debug.
        let mut attributes = [0u8; 16];
        attributes[0] = if debug { 0b111 } else { 0b101 };
        assert_eq!(sgx.attributes, attributes);
    }
}

#[test]
fn signatures_are_low_s_and_high_s_is_refused() {
    let key = SimPlatformKey::generate();
    // ECDSA signing is deterministic (RFC 6979): vary the report data to see both parities of s.
    for i in 0..32u8 {
        let quote = SimQuote::sign(&key, &identity(false), &[i; 64]);
        let sig = Signature::from_slice(&quote.signature()).unwrap();
        assert!(sig.normalize_s().is_none(), "ward wrote a high-S signature");

        // The same signature with s negated verifies mathematically, but has a second encoding.
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r, -s).unwrap();
        let mut bytes = quote.to_bytes();
        bytes[177..].copy_from_slice(&high.to_bytes());
        let err = SimQuote::parse(&bytes).unwrap_err();
        assert_eq!(malformed_field(&err), ("signature", 177));
    }
}

#[test]
fn every_single_bit_flip_is_refused() {
    let key = SimPlatformKey::generate();
    let bytes = SimQuote::sign(&key, &identity(false), &report_data()).to_bytes();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let outcome = SimQuote::parse(&flipped).and_then(|q| q.verify());
        assert!(
            outcome.is_err(),
            "flipping bit {} of byte {} was accepted",
            bit % 8,
            bit / 8
        );
    }
    // The untouched quote still verifies (the loop did not pass vacuously).
    SimQuote::parse(&bytes).unwrap().verify().unwrap();
}

#[test]
fn every_truncation_and_any_extension_is_refused() {
    let key = SimPlatformKey::generate();
    let bytes = SimQuote::sign(&key, &identity(true), &report_data()).to_bytes();
    let fields = [
        ("magic", 0),
        ("version", 8),
        ("flags", 10),
        ("mr_enclave", 12),
        ("mr_signer", 44),
        ("isv_prod_id", 76),
        ("isv_svn", 78),
        ("report_data", 80),
        ("platform_key", 144),
        ("signature", 177),
    ];
    for len in 0..bytes.len() {
        let err = SimQuote::parse(&bytes[..len]).unwrap_err();
        let (field, offset) = malformed_field(&err);
        // The error names the field that was cut short, at its own offset.
        let expected = fields
            .iter()
            .rev()
            .find(|(_, start)| *start <= len)
            .unwrap();
        assert_eq!(
            (field, offset),
            *expected,
            "truncated to {len} bytes: {err}"
        );
    }
    for extra in [1usize, 2, 64, 1000] {
        let mut long = bytes.clone();
        long.resize(bytes.len() + extra, 0);
        let err = SimQuote::parse(&long).unwrap_err();
        assert_eq!(malformed_field(&err), ("end", QUOTE_LEN));
        assert!(err.to_string().contains("trailing"), "{err}");
    }
}

#[test]
fn header_errors_name_field_and_offset() {
    let key = SimPlatformKey::generate();
    let good = SimQuote::sign(&key, &identity(false), &report_data()).to_bytes();

    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(
        malformed_field(&SimQuote::parse(&b).unwrap_err()),
        ("magic", 0)
    );
    assert!(!is_sim_quote(&b));
    assert!(!is_sim_quote(b"WARDSIM"));
    assert!(!is_sim_quote(&[]));

    let mut b = good.clone();
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    let err = SimQuote::parse(&b).unwrap_err();
    assert_eq!(malformed_field(&err), ("version", 8));
    assert!(err.to_string().contains("version 2"), "{err}");

    let mut b = good.clone();
    b[10..12].copy_from_slice(&0x8000u16.to_le_bytes());
    assert_eq!(
        malformed_field(&SimQuote::parse(&b).unwrap_err()),
        ("flags", 10)
    );

    let mut b = good.clone();
    b[144] = 0x04;
    assert_eq!(
        malformed_field(&SimQuote::parse(&b).unwrap_err()),
        ("platform_key", 144)
    );

    let mut b = good.clone();
    b[177..].fill(0);
    assert_eq!(
        malformed_field(&SimQuote::parse(&b).unwrap_err()),
        ("signature", 177)
    );
    let mut b = good.clone();
    b[177..209].fill(0xff); // r above the group order
    assert_eq!(
        malformed_field(&SimQuote::parse(&b).unwrap_err()),
        ("signature", 177)
    );
}

#[test]
fn substituted_platform_key_is_refused() {
    let a = SimPlatformKey::generate();
    let b = SimPlatformKey::generate();
    let quote = SimQuote::sign(&a, &identity(false), &report_data());

    // In the encoding: the quote parses (it is well-formed) but does not verify.
    let mut bytes = quote.to_bytes();
    bytes[144..177].copy_from_slice(&b.public().to_bytes());
    let parsed = SimQuote::parse(&bytes).unwrap();
    assert_eq!(parsed.platform_key, b.public());
    let err = parsed.verify().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Verification {
                step: "simulated quote signature",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&b.public().to_hex()), "{err}");

    // In the struct: the same.
    let mut swapped = quote.clone();
    swapped.platform_key = b.public();
    assert!(matches!(
        swapped.verify().unwrap_err(),
        Error::Verification { .. }
    ));
}

#[test]
fn edited_contents_are_refused() {
    let key = SimPlatformKey::generate();
    let quote = SimQuote::sign(&key, &identity(false), &report_data());

    let mut q = quote.clone();
    q.identity.debug = true;
    assert!(q.verify().is_err());
    let mut q = quote.clone();
    q.identity.mr_enclave[31] ^= 1;
    assert!(q.verify().is_err());
    let mut q = quote.clone();
    q.identity.isv_svn += 1;
    assert!(q.verify().is_err());
    let mut q = quote.clone();
    q.report_data[0] ^= 0x80;
    assert!(q.verify().is_err());

    quote.verify().unwrap();
}

#[test]
fn parse_never_panics_on_arbitrary_input() {
    // A cheap deterministic sweep: magic-prefixed random-ish bytes of every length up to 300.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    };
    for len in 0..300 {
        for _ in 0..8 {
            let mut b: Vec<u8> = (0..len).map(|_| next()).collect();
            let prefix = MAGIC.len().min(len);
            b[..prefix].copy_from_slice(&MAGIC[..prefix]);
            if len >= 12 {
                b[8..10].copy_from_slice(&1u16.to_le_bytes());
                b[10..12].copy_from_slice(&0u16.to_le_bytes());
            }
            if let Ok(q) = SimQuote::parse(&b) {
                assert!(q.verify().is_err());
            }
        }
    }
}

#[test]
fn claims_serialise_flat_with_the_policy_field_names() {
    use ward_attest::claims::VerificationReport;
    use ward_attest::sim::{SimIdentity, SimPlatformKey, SimQuote};
    let id = SimIdentity {
        mr_enclave: [0xab; 32],
        mr_signer: [0; 32],
        isv_prod_id: 4,
        isv_svn: 2,
        debug: false,
    };
    let claims = SimQuote::sign(&SimPlatformKey::generate(), &id, &[0; 64])
        .verify()
        .unwrap();
    let j = serde_json::to_value(VerificationReport::new(&claims, 7, None)).unwrap();
    assert_eq!(j["valid"], true);
    assert_eq!(j["verified_at"], 7);
    assert_eq!(j["tee"], "sim");
    assert_eq!(j["mr_enclave"], "ab".repeat(32));
    assert_eq!(j["isv_prod_id"], 4);
    assert!(j.get("accepted").is_none() && j.get("sgx").is_none());
    assert_eq!(
        j["sim_platform_key"],
        claims.sim_platform_key.clone().unwrap()
    );
}

/// An error and its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    ward_attest::ErrorChain(e).to_string()
}
