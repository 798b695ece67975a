//! Every real SGX/TDX vector in tests/data gives its expected outcome at its fixed time, and
//! tampering, stale or foreign collateral are refused.

use serde_json::Value;
use std::path::{Path, PathBuf};
use ward_attest::dcap::{rfc3339, Collateral, DcapVerifier};
use ward_attest::{Error, Policy, TcbStatus, VerifiedClaims};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

struct Vector {
    quote: Vec<u8>,
    collateral: Collateral,
    expected: Value,
    at: u64,
}

fn vector(name: &str) -> Vector {
    let d = dir(name);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("expected.json")).unwrap()).unwrap();
    Vector {
        quote: std::fs::read(d.join("quote.bin")).unwrap(),
        collateral: Collateral::load(&d.join("collateral.json")).unwrap(),
        at: expected["verify_at_unix"].as_u64().unwrap(),
        expected,
    }
}

fn verify(v: &Vector, at: u64) -> Result<VerifiedClaims, Error> {
    DcapVerifier::intel().verify(&v.quote, &v.collateral, at)
}

const ACCEPTED: &[&str] = &[
    "sgx-v3-automata-swhardening",
    "sgx-v3-phala-config-swhardening",
    "tdx-v4-automata-outofdate",
    "tdx-v4-phala-uptodate",
    "tdx-v5-alibaba-servicetd-uptodate",
    "tdx-v5-phala-td15ex-uptodate",
];

#[test]
fn valid_vectors_give_their_tcb_status_and_advisories() {
    for name in ACCEPTED {
        let v = vector(name);
        let c = verify(&v, v.at).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = TcbStatus::from_intel(v.expected["tcb_status"].as_str().unwrap()).unwrap();
        assert_eq!(c.tcb_status, Some(want), "{name}");
        let adv: Vec<String> = v.expected["advisory_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(c.advisory_ids, adv, "{name}");
        let p = &v.expected["parsed_from_quote"];
        assert_eq!(
            hex::encode(c.report_data),
            p["report_data"].as_str().unwrap(),
            "{name}"
        );
        if let Some(s) = &c.sgx {
            assert_eq!(hex::encode(s.mr_enclave), p["mr_enclave"].as_str().unwrap());
            assert_eq!(s.debug, p["debug"].as_bool().unwrap());
        }
        if let Some(t) = &c.tdx {
            assert_eq!(hex::encode(t.mr_td), p["mr_td"].as_str().unwrap());
            assert_eq!(hex::encode(t.rtmr[3]), p["rtmr3"].as_str().unwrap());
        }
        // The collateral's validity window is the one the vector documents.
        let window = v.expected["valid_window_utc"].as_array().unwrap();
        assert_eq!(
            rfc3339(c.collateral_expires.unwrap()),
            window[1].as_str().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn collateral_is_refused_outside_its_window() {
    for name in ACCEPTED {
        let v = vector(name);
        let c = verify(&v, v.at).unwrap();
        let expires = c.collateral_expires.unwrap();
        assert!(
            verify(&v, expires - 1).is_ok(),
            "{name}: valid until its expiry"
        );
        let err = verify(&v, expires + 1).unwrap_err();
        let err = ward_attest::ErrorChain(&err).to_string();
        assert!(err.to_lowercase().contains("expired"), "{name}: {err}");
        let start = parse_utc(v.expected["valid_window_utc"][0].as_str().unwrap());
        assert!(
            verify(&v, start).is_ok(),
            "{name}: valid from its latest issue date"
        );
        let err = verify(&v, start - 1).unwrap_err();
        let err = ward_attest::ErrorChain(&err).to_string();
        let err = err.to_lowercase();
        assert!(
            ["not yet valid", "notvalidyet", "in the future"]
                .iter()
                .any(|n| err.contains(n)),
            "{name}: {err}"
        );
    }
}

#[test]
fn rejected_vectors_are_refused_for_the_documented_reason() {
    for (name, needle) in [
        ("sgx-v3-automata-tampered-mrenclave", "signature"),
        ("tdx-v4-automata-tampered-reportdata", "signature"),
        ("tdx-v4-gotdx-2023-no-tcb-level", "No matching TCB level"),
        ("tdx-v5-phala-no-tcb-level", "No matching TCB level"),
    ] {
        let v = vector(name);
        let err = verify(&v, v.at).unwrap_err();
        let err = ward_attest::ErrorChain(&err).to_string();
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_quote_from_another_qe_vendor_is_refused_naming_the_field() {
    for name in ["sgx-v3-automata-swhardening", "tdx-v4-phala-uptodate"] {
        let mut v = vector(name);
        assert_eq!(
            v.quote[12..28],
            ward_attest::dcap::INTEL_QE_VENDOR_ID,
            "{name}"
        );
        v.quote[12] ^= 0x01;
        let err = verify(&v, v.at).unwrap_err();
        assert!(
            matches!(err, Error::QeVendor { found } if found[0] == 0x92),
            "{name}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("qe_vendor_id") && text.contains("929a7233"),
            "{name}: {text}"
        );
    }
}

fn strict_policy_for(c: &VerifiedClaims, extra: &str) -> Policy {
    let id = match (&c.sgx, &c.tdx) {
        (Some(s), _) => format!(
            "[[identity]]\nmr_enclave = \"{}\"\n",
            hex::encode(s.mr_enclave)
        ),
        (_, Some(t)) => format!("[[identity]]\nmr_td = \"{}\"\n", hex::encode(t.mr_td)),
        _ => unreachable!(),
    };
    Policy::from_toml(&format!("{extra}\n{id}"), "test").unwrap()
}

#[test]
fn debug_and_service_td_are_policy_decisions() {
    let v = vector("sgx-v3-occlum-debug");
    let c = verify(&v, v.at).unwrap();
    assert!(c.sgx.as_ref().unwrap().debug);
    assert_eq!(c.tcb_status, Some(TcbStatus::OutOfDate));
    assert_eq!(
        strict_policy_for(&c, "").evaluate(&c).unwrap_err().rule,
        "allow_debug"
    );
    let r = strict_policy_for(&c, "allow_debug = true")
        .evaluate(&c)
        .unwrap_err();
    assert_eq!(r.rule, "allowed_tcb_statuses");

    let v = vector("tdx-v5-alibaba-servicetd-uptodate");
    let c = verify(&v, v.at).unwrap();
    assert_eq!(
        strict_policy_for(&c, "").evaluate(&c).unwrap_err().rule,
        "allow_service_td"
    );
    assert_eq!(
        strict_policy_for(&c, "allow_service_td = true").evaluate(&c),
        Ok(())
    );

    let v = vector("tdx-v4-automata-outofdate");
    let c = verify(&v, v.at).unwrap();
    let r = strict_policy_for(&c, "").evaluate(&c).unwrap_err();
    assert!(
        r.to_string().contains("OutOfDate") && r.to_string().contains("INTEL-SA-00960"),
        "{r}"
    );
    assert_eq!(
        strict_policy_for(&c, "")
            .evaluate(&vector_ok("tdx-v4-phala-uptodate"))
            .unwrap_err()
            .rule,
        "mr_td"
    );
}

#[test]
fn every_debug_class_td_attribute_is_refused_unless_debug_is_allowed() {
    let v = vector("tdx-v4-phala-uptodate");
    let c = verify(&v, v.at).unwrap();
    let attrs = c.tdx.as_ref().unwrap().td_attributes;
    assert_eq!(strict_policy_for(&c, "").evaluate(&c), Ok(()));
    // The recorded quote's attributes sit at bytes 168..176 of a v4 quote; a parsed quote with
    // any of bits 0..15 set reports a debug TD (re-signing is impossible, so the policy is judged
    // on the parsed claims with the bit set).
    assert_eq!(v.quote[168..176], attrs);
    for bit in 0..64u32 {
        let mut quote = v.quote.clone();
        let mut a = u64::from_le_bytes(attrs);
        a |= 1 << bit;
        quote[168..176].copy_from_slice(&a.to_le_bytes());
        let parsed = ward_attest::quote::Quote::parse(&quote).unwrap();
        let ward_attest::quote::QuoteBody::Td(body) = &parsed.body else {
            panic!("a TD quote")
        };
        let debug_class = bit < 16;
        assert_eq!(body.debug(), debug_class, "bit {bit}");

        let mut m = c.clone();
        let t = m.tdx.as_mut().unwrap();
        t.td_attributes = a.to_le_bytes();
        // As a verifier that only knew bit 0 would have reported it.
        t.debug = bit == 0;
        let verdict = strict_policy_for(&c, "").evaluate(&m);
        if debug_class {
            let r = verdict.unwrap_err();
            assert_eq!(r.rule, "allow_debug", "bit {bit}");
            assert!(r.to_string().contains(&format!("bit(s) {bit} set")), "{r}");
            assert_eq!(
                strict_policy_for(&c, "allow_debug = true").evaluate(&m),
                Ok(()),
                "bit {bit}"
            );
        } else {
            // SEPT_VE_DISABLE (28), PKS (30), PERFMON (63) … are not debug-class.
            assert_eq!(verdict, Ok(()), "bit {bit}");
        }
    }
}

fn vector_ok(name: &str) -> VerifiedClaims {
    let v = vector(name);
    verify(&v, v.at).unwrap()
}

#[test]
fn every_bit_flip_in_the_signed_quote_is_refused() {
    for (name, stride) in [
        ("sgx-v3-automata-swhardening", 7),
        ("tdx-v4-phala-uptodate", 7),
    ] {
        let v = vector(name);
        let signed = ward_attest::quote::Quote::parse(&v.quote).unwrap().len();
        let mut refused = 0;
        let pem = pem_body_offsets(&v.quote[..signed]);
        for offset in (0..signed).step_by(stride) {
            // The PEM chain's framing (markers, line breaks) is layout, not signed content: only
            // its base64 body carries the certificates.
            if offset >= pem.0 && !pem.1.contains(&offset) {
                continue;
            }
            let mut q = v.quote.clone();
            q[offset] ^= 1 << (offset % 8);
            let r = DcapVerifier::intel().verify(&q, &v.collateral, v.at);
            assert!(r.is_err(), "{name}: flip at {offset} accepted");
            refused += 1;
        }
        assert!(refused > 500, "{name}");
        // Bytes after the signature data are not part of the evidence.
        if v.quote.len() > signed {
            let mut q = v.quote.clone();
            q[signed] ^= 0xff;
            assert!(DcapVerifier::intel()
                .verify(&q, &v.collateral, v.at)
                .is_ok());
        }
    }
}

#[test]
fn tampered_collateral_and_foreign_platforms_are_refused() {
    let v = vector("tdx-v4-phala-uptodate");
    let text =
        std::fs::read_to_string(dir("tdx-v4-phala-uptodate").join("collateral.json")).unwrap();
    // A changed TCB info breaks its signature.
    let tampered = text.replacen("UpToDate", "UpToDatf", 1);
    let c = Collateral::from_json(&tampered).unwrap();
    assert!(DcapVerifier::intel().verify(&v.quote, &c, v.at).is_err());
    // Collateral of another TDX platform (FMSPC), current at the time, is refused.
    let other_dir = "tdx-v4-automata-outofdate";
    let other = Collateral::load(&dir(other_dir).join("collateral.json")).unwrap();
    assert_ne!(other.fmspc(), v.collateral.fmspc());
    let at = vector(other_dir).at;
    assert!(DcapVerifier::intel()
        .verify(&vector(other_dir).quote, &other, at)
        .is_ok());
    let err = DcapVerifier::intel()
        .verify(&v.quote, &other, at)
        .unwrap_err();
    let err = ward_attest::ErrorChain(&err).to_string();
    assert!(err.to_lowercase().contains("fmspc"), "{err}");
    // Malformed collateral files name the field.
    let err = Collateral::from_json(&text.replacen("\"pck_crl\": \"", "\"pck_crl\": \"zz", 1))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("pck_crl"), "{err}");
}

fn parse_utc(s: &str) -> u64 {
    // "YYYY-MM-DDTHH:MM:SSZ"
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) as u64
}

/// Start of the embedded PEM chain, and the offsets of the base64 body characters of its PCK
/// and intermediate certificates. (The chain's last certificate is a copy of the root, which the
/// verifier does not use: it trusts only its pinned Intel root.)
fn pem_body_offsets(q: &[u8]) -> (usize, std::collections::HashSet<usize>) {
    let begins: Vec<usize> = q
        .windows(10)
        .enumerate()
        .filter(|(_, w)| *w == b"-----BEGIN")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(begins.len(), 3);
    let start = begins[0];
    let mut body = std::collections::HashSet::new();
    let mut line_start = start;
    for i in start..begins[2] {
        if q[i] == b'\n' {
            line_start = i + 1;
            continue;
        }
        if q[line_start] != b'-' && (q[i].is_ascii_alphanumeric() || q[i] == b'+' || q[i] == b'/') {
            body.insert(i);
        }
    }
    (start, body)
}

/// A policy naming both layers (the platform's measurement from the recorded quote and a ward
/// manifest) refuses the recorded real quotes, which carry no workload binding, and refuses them
/// again when they are said to run a manifest other than the one named (a host-written one);
/// only the named manifest on the named platform passes. The same platform layer alone still
/// accepts the quote: the workload fields are what keeps a host-written manifest out.
#[test]
fn a_policy_requiring_the_ward_workload_refuses_quotes_that_do_not_name_it() {
    use ward_attest::WorkloadIdentity;
    let ours = WorkloadIdentity {
        measurement: [0x5a; 32],
        signer: [0xc3; 32],
        isv_prod_id: 1,
        isv_svn: 1,
        debug: false,
    };
    let host_written = WorkloadIdentity {
        measurement: [0x77; 32],
        ..ours
    };
    let workload_toml = format!(
        "workload_measurement = \"{}\"\nworkload_signer = \"{}\"\nworkload_min_isv_svn = 1\n",
        hex::encode(ours.measurement),
        hex::encode(ours.signer)
    );
    for name in ["tdx-v4-phala-uptodate", "sgx-v3-automata-swhardening"] {
        let c = vector_ok(name);
        assert_eq!(c.workload, None, "{name}: a bare quote names no workload");
        let extra = "allowed_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\nallowed_advisories = [\"*\"]";
        let platform_only = strict_policy_for(&c, extra);
        assert_eq!(platform_only.evaluate(&c), Ok(()), "{name}");
        let both_text = format!("{}{workload_toml}", platform_only.to_toml());
        let both = Policy::from_toml(&both_text, "test").unwrap();

        let r = both.evaluate(&c).unwrap_err();
        assert_eq!(r.rule, "workload_measurement", "{name}: {r}");
        assert!(r.to_string().contains("names no ward manifest"), "{r}");

        let mut hosted = c.clone();
        hosted.workload = Some(host_written);
        assert_eq!(platform_only.evaluate(&hosted), Ok(()), "{name}");
        let r = both.evaluate(&hosted).unwrap_err();
        assert_eq!(r.rule, "workload_measurement", "{name}: {r}");
        assert!(r.to_string().contains(&hex::encode([0x77; 32])), "{r}");

        let mut ok = c.clone();
        ok.workload = Some(ours);
        assert_eq!(both.evaluate(&ok), Ok(()), "{name}");
    }
}
