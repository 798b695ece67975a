//! Parsing of real DCAP quotes (tests/data/*/quote.bin) against the fields recorded in each
//! vector's expected.json, and refusal (never a panic) of truncated, corrupted or unsupported ones.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use ward_attest::quote::{Quote, QuoteBody, SgxReportBody, TdBodyType, TdReportBody};
use ward_attest::{Error, TeeKind};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Every vector folder that holds a quote.bin, with its bytes and expected.json.
fn vectors() -> Vec<(String, Vec<u8>, Value)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(data_dir()).unwrap() {
        let dir = entry.unwrap().path();
        let quote = dir.join("quote.bin");
        if !quote.is_file() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = fs::read(&quote).unwrap();
        let expected: Value =
            serde_json::from_slice(&fs::read(dir.join("expected.json")).unwrap()).unwrap();
        out.push((name, bytes, expected));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 11,
        "expected the 11 quote vectors, found {}",
        out.len()
    );
    out
}

fn vector(name: &str) -> Vec<u8> {
    fs::read(data_dir().join(name).join("quote.bin")).unwrap()
}

fn parse(name: &str) -> Quote {
    Quote::parse(&vector(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The field's value as a string, or a panic naming the vector and field.
fn s<'a>(v: &'a Value, key: &str, ctx: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{ctx}: expected.json lacks string `{key}`"))
}

fn n(v: &Value, key: &str, ctx: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{ctx}: expected.json lacks number `{key}`"))
}

fn check_hex(v: &Value, key: &str, actual: &[u8], ctx: &str) {
    assert_eq!(hex::encode(actual), s(v, key, ctx), "{ctx}: {key}");
}

fn check_sgx_report(e: &Value, b: &SgxReportBody, ctx: &str) {
    check_hex(e, "mr_enclave", &b.mr_enclave, ctx);
    check_hex(e, "mr_signer", &b.mr_signer, ctx);
    check_hex(e, "attributes", &b.attributes, ctx);
    check_hex(e, "misc_select", &b.misc_select.to_le_bytes(), ctx);
    assert_eq!(
        u64::from(b.isv_prod_id),
        n(e, "isv_prod_id", ctx),
        "{ctx}: isv_prod_id"
    );
    assert_eq!(u64::from(b.isv_svn), n(e, "isv_svn", ctx), "{ctx}: isv_svn");
    if e.get("cpu_svn").is_some() {
        check_hex(e, "cpu_svn", &b.cpu_svn, ctx);
    }
    if e.get("report_data").is_some() {
        check_hex(e, "report_data", &b.report_data, ctx);
    }
    if let Some(debug) = e.get("debug") {
        assert_eq!(Some(b.debug()), debug.as_bool(), "{ctx}: debug");
    }
}

fn check_td_report(e: &Value, b: &TdReportBody, ctx: &str) {
    let expected_type = match s(e, "body_type", ctx) {
        "TD10" => TdBodyType::Td10,
        "TD15" => TdBodyType::Td15,
        "TD15EX" => TdBodyType::Td15Ex,
        other => panic!("{ctx}: unknown body_type {other}"),
    };
    assert_eq!(b.body_type, expected_type, "{ctx}: body_type");
    check_hex(e, "tee_tcb_svn", &b.tee_tcb_svn, ctx);
    check_hex(e, "mr_seam", &b.mr_seam, ctx);
    check_hex(e, "mr_signer_seam", &b.mr_signer_seam, ctx);
    check_hex(e, "seam_attributes", &b.seam_attributes, ctx);
    check_hex(e, "td_attributes", &b.td_attributes, ctx);
    check_hex(e, "xfam", &b.xfam, ctx);
    check_hex(e, "mr_td", &b.mr_td, ctx);
    check_hex(e, "mr_config_id", &b.mr_config_id, ctx);
    check_hex(e, "mr_owner", &b.mr_owner, ctx);
    check_hex(e, "mr_owner_config", &b.mr_owner_config, ctx);
    for (i, rtmr) in b.rtmr.iter().enumerate() {
        check_hex(e, &format!("rtmr{i}"), rtmr, ctx);
    }
    check_hex(e, "report_data", &b.report_data, ctx);
    assert_eq!(Some(b.debug()), e["debug"].as_bool(), "{ctx}: debug");

    match expected_type {
        TdBodyType::Td10 => {
            assert!(e.get("tee_tcb_svn2").is_none() && e.get("mr_servicetd").is_none());
            assert_eq!((b.tee_tcb_svn2, b.mr_servicetd), (None, None), "{ctx}");
        }
        TdBodyType::Td15 | TdBodyType::Td15Ex => {
            check_hex(
                e,
                "tee_tcb_svn2",
                &b.tee_tcb_svn2.expect("tee_tcb_svn2"),
                ctx,
            );
            check_hex(
                e,
                "mr_servicetd",
                &b.mr_servicetd.expect("mr_servicetd"),
                ctx,
            );
        }
    }
    match (&b.td15_ex, expected_type) {
        (None, TdBodyType::Td10 | TdBodyType::Td15) => {}
        (Some(ex), TdBodyType::Td15Ex) => {
            check_hex(e, "ext_vmid", &[ex.vmid], ctx);
            check_hex(e, "ext_td_id", &ex.td_id, ctx);
            let rest = [
                &ex.dev_info[..],
                &ex.init_service_td_hash,
                &ex.init_service_td_attributes,
                &ex.init_cpu_svn,
                &ex.init_tee_tcb_svn,
                &ex.init_tee_fmspc,
                &ex.cur_service_td_hash,
                &ex.cur_service_td_attributes,
            ]
            .concat();
            assert_eq!(rest.len(), 885 - 648 - 1 - 32);
            check_hex(e, "ext_rest", &rest, ctx);
        }
        (ex, t) => panic!("{ctx}: body type {t:?} with td15_ex {ex:?}"),
    }
}

#[test]
fn every_vector_matches_expected_json() {
    for (name, bytes, expected) in vectors() {
        let ctx = name.as_str();
        let e = &expected["parsed_from_quote"];
        let q = Quote::parse(&bytes).unwrap_or_else(|err| panic!("{ctx}: {err}"));

        // Header.
        assert_eq!(
            u64::from(q.header.version),
            n(e, "quote_version", ctx),
            "{ctx}: version"
        );
        assert_eq!(
            u64::from(q.header.attestation_key_type),
            n(e, "att_key_type", ctx)
        );
        assert_eq!(
            format!("{:#x}", q.header.tee_type),
            s(e, "tee_type", ctx),
            "{ctx}: tee_type"
        );
        assert_eq!(
            u64::from(q.header.qe_svn),
            n(e, "header_qe_svn", ctx),
            "{ctx}: qe_svn"
        );
        assert_eq!(
            u64::from(q.header.pce_svn),
            n(e, "header_pce_svn", ctx),
            "{ctx}: pce_svn"
        );
        check_hex(e, "qe_vendor_id", &q.header.qe_vendor_id, ctx);

        // Lengths: expected.json's quote_len is the whole file, trailing bytes included.
        let trailing = n(e, "bytes_after_signature_data", ctx) as usize;
        assert_eq!(q.trailing_bytes(), trailing, "{ctx}: trailing bytes");
        assert_eq!(
            q.len() + q.trailing_bytes(),
            n(e, "quote_len", ctx) as usize,
            "{ctx}: len"
        );
        assert_eq!(
            bytes.len(),
            n(e, "quote_len", ctx) as usize,
            "{ctx}: file length"
        );

        // Body.
        match (&q.body, s(e, "body_type", ctx)) {
            (QuoteBody::Sgx(b), "SGX") => {
                assert_eq!(q.tee(), TeeKind::Sgx);
                check_sgx_report(e, b, ctx);
            }
            (QuoteBody::Td(b), _) => {
                assert_eq!(q.tee(), TeeKind::Tdx);
                check_td_report(e, b, ctx);
            }
            (body, t) => panic!("{ctx}: parsed {body:?} but expected body type {t}"),
        }
        check_hex(e, "report_data", q.report_data(), ctx);

        // Signature data. Parsing succeeds only with outer certification data type 6 for v4+.
        let sd = &q.signature_data;
        assert_eq!(u64::from(sd.cert_data_type), n(e, "cert_data_type", ctx));
        match e["outer_cert_data_type_v4plus"].as_u64() {
            None => assert_eq!(q.header.version, 3, "{ctx}"),
            Some(outer) => assert!(q.header.version >= 4 && outer == 6, "{ctx}"),
        }
        check_sgx_report(&e["qe_report"], &sd.qe_report, &format!("{ctx}: qe_report"));
        assert!(!sd.qe_auth_data.is_empty(), "{ctx}: qe_auth_data");
        assert!(sd.signature.iter().any(|&b| b != 0), "{ctx}: signature");
        assert!(
            sd.attestation_key.iter().any(|&b| b != 0),
            "{ctx}: attestation key"
        );
        assert!(
            sd.qe_report_signature.iter().any(|&b| b != 0),
            "{ctx}: qe_report_signature"
        );

        // The PCK chain: three certificates, the same text as pck_cert_chain.pem (which was
        // extracted from the quote without its NUL terminator).
        let pem = q
            .pck_chain_pem()
            .unwrap_or_else(|| panic!("{ctx}: no PCK chain"));
        let subjects = e["pck_chain_subjects"].as_array().unwrap();
        assert_eq!(
            pem.matches("-----BEGIN CERTIFICATE-----").count(),
            3,
            "{ctx}"
        );
        assert_eq!(pem.matches("-----END CERTIFICATE-----").count(), 3, "{ctx}");
        assert_eq!(subjects.len(), 3, "{ctx}");
        assert!(!pem.ends_with('\0'), "{ctx}");
        let file = fs::read_to_string(data_dir().join(&name).join("pck_cert_chain.pem")).unwrap();
        assert_eq!(
            pem, file,
            "{ctx}: PCK chain differs from pck_cert_chain.pem"
        );
    }
}

#[test]
fn trailing_bytes_are_counted() {
    let q = parse("tdx-v4-automata-outofdate");
    assert_eq!((q.len(), q.trailing_bytes()), (4935, 8000 - 4935));
    let q = parse("tdx-v4-phala-uptodate");
    assert_eq!((q.len(), q.trailing_bytes()), (4936, 70));
    assert!(vector("tdx-v4-phala-uptodate")[4936..]
        .iter()
        .all(|&b| b == 0));
    let q = parse("tdx-v4-gotdx-2023-no-tcb-level");
    assert_eq!(q.trailing_bytes(), 39);

    // Trailing bytes do not change what is parsed.
    let bytes = vector("sgx-v3-automata-swhardening");
    let q = Quote::parse(&bytes).unwrap();
    assert_eq!(q.trailing_bytes(), 0);
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0xAA; 1000]);
    let q2 = Quote::parse(&longer).unwrap();
    assert_eq!((q2.len(), q2.trailing_bytes()), (q.len(), 1000));
    assert_eq!(
        (&q2.header, &q2.body, &q2.signature_data),
        (&q.header, &q.body, &q.signature_data)
    );
}

#[test]
fn debug_flags() {
    let q = parse("sgx-v3-occlum-debug");
    assert!(q.body.as_sgx().unwrap().debug());
    assert!(!parse("sgx-v3-automata-swhardening")
        .body
        .as_sgx()
        .unwrap()
        .debug());

    // TD DEBUG is bit 0 of td_attributes[0] (TD report offset 120, after tee_tcb_svn, mr_seam,
    // mr_signer_seam and seam_attributes).
    let mut bytes = vector("tdx-v4-phala-uptodate");
    let q = Quote::parse(&bytes).unwrap();
    assert!(!q.body.as_td().unwrap().debug());
    bytes[48 + 16 + 48 + 48 + 8] |= 0x01;
    let q = Quote::parse(&bytes).unwrap();
    assert!(q.body.as_td().unwrap().debug());
    assert!(q.body.as_sgx().is_none());
}

/// Cutting a quote anywhere before the end of its signature data is an error naming a field at or
/// before the cut; cutting it later only drops trailing bytes.
#[test]
fn truncation_at_every_length_is_an_error() {
    for name in [
        "sgx-v3-automata-swhardening",
        "tdx-v4-phala-uptodate",
        "tdx-v5-phala-td15ex-uptodate",
        "tdx-v5-alibaba-servicetd-uptodate",
    ] {
        let bytes = vector(name);
        let full = Quote::parse(&bytes).unwrap();
        for cut in 0..full.len() {
            match Quote::parse(&bytes[..cut]) {
                Err(Error::Malformed {
                    offset,
                    field,
                    problem,
                    ..
                }) => {
                    assert!(
                        offset <= cut,
                        "{name} cut at {cut}: {field}@{offset}: {problem}"
                    )
                }
                other => panic!("{name} cut at {cut}: {other:?}"),
            }
        }
        for cut in full.len()..=bytes.len() {
            let q = Quote::parse(&bytes[..cut]).unwrap();
            assert_eq!(
                (q.len(), q.trailing_bytes()),
                (full.len(), cut - full.len())
            );
        }
    }
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn malformed(r: ward_attest::Result<Quote>) -> (&'static str, usize, String) {
    match r {
        Err(Error::Malformed {
            field,
            offset,
            problem,
            ..
        }) => (field, offset, problem),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn unsupported(r: ward_attest::Result<Quote>) -> String {
    match r {
        Err(Error::Unsupported(msg)) => msg,
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn header_refusals() {
    let sgx = vector("sgx-v3-automata-swhardening");
    let tdx = vector("tdx-v4-phala-uptodate");

    for version in [0u16, 1, 2, 6, 0xffff] {
        let mut b = sgx.clone();
        put_u16(&mut b, 0, version);
        let msg = unsupported(Quote::parse(&b));
        assert!(
            msg.contains(&format!("version {version}")) && msg.contains("offset 0"),
            "{msg}"
        );
    }

    for key_type in [0u16, 1, 3, 0xffff] {
        let mut b = tdx.clone();
        put_u16(&mut b, 2, key_type);
        let msg = unsupported(Quote::parse(&b));
        assert!(
            msg.contains("attestation_key_type") && msg.contains("offset 2"),
            "{msg}"
        );
    }

    for tee in [1u32, 0x80, 0x82, 0xffff_ffff] {
        for base in [&sgx, &tdx] {
            let mut b = base.clone();
            put_u32(&mut b, 4, tee);
            let msg = unsupported(Quote::parse(&b));
            assert!(
                msg.contains("tee_type") && msg.contains("offset 4"),
                "{msg}"
            );
        }
    }

    // v3 with TDX.
    let mut b = sgx.clone();
    put_u32(&mut b, 4, 0x81);
    let (field, offset, _) = malformed(Quote::parse(&b));
    assert_eq!((field, offset), ("tee_type", 4));

    // v4 with SGX.
    let mut b = tdx.clone();
    put_u32(&mut b, 4, 0);
    let msg = unsupported(Quote::parse(&b));
    assert!(
        msg.contains("tee_type") && msg.contains("offset 4"),
        "{msg}"
    );

    // A TDX v4 quote claiming to be v3 (and vice versa) is refused, not misread.
    let mut b = tdx.clone();
    put_u16(&mut b, 0, 3);
    assert!(Quote::parse(&b).is_err());
    let mut b = sgx.clone();
    put_u16(&mut b, 0, 4);
    assert!(Quote::parse(&b).is_err());
}

#[test]
fn length_refusals_name_field_and_offset() {
    // SGX v3: signature_data_len at 48 + 384 = 432.
    let sgx = vector("sgx-v3-automata-swhardening");
    assert_eq!(get_u32(&sgx, 432), 4298);
    let mut b = sgx.clone();
    put_u32(&mut b, 432, 5000);
    let (field, offset, problem) = malformed(Quote::parse(&b));
    assert_eq!((field, offset), ("signature_data_len", 432));
    assert_eq!(problem, "says 5000 bytes but only 4298 remain");
    let msg = Quote::parse(&b).unwrap_err().to_string();
    assert!(
        msg.contains("signature_data_len") && msg.contains("432"),
        "{msg}"
    );

    for len in [u32::MAX, u32::MAX - 3, 0x8000_0000] {
        let mut b = sgx.clone();
        put_u32(&mut b, 432, len);
        assert_eq!(malformed(Quote::parse(&b)).0, "signature_data_len");
    }

    // Shorter than the content: the inner structures overrun the signature data.
    let mut b = sgx.clone();
    put_u32(&mut b, 432, 4297);
    let (field, offset, _) = malformed(Quote::parse(&b));
    assert_eq!(
        (field, offset),
        ("cert_data_size", 432 + 4 + 64 + 64 + 384 + 64 + 2 + 32 + 2)
    );

    // Signature data with a spare byte inside it is refused (a quote with a byte appended and the
    // length raised to cover it).
    let mut b = sgx.clone();
    b.push(0);
    put_u32(&mut b, 432, 4299);
    let (field, offset, problem) = malformed(Quote::parse(&b));
    assert_eq!((field, offset), ("signature_data", 4734), "{problem}");

    // QE auth data length at 432 + 4 + 64 + 64 + 384 + 64.
    let auth_at = 432 + 4 + 64 + 64 + 384 + 64;
    let mut b = sgx.clone();
    put_u16(&mut b, auth_at, 0xffff);
    let (field, offset, _) = malformed(Quote::parse(&b));
    assert_eq!((field, offset), ("qe_auth_data_len", auth_at));

    // TDX v4: signature_data_len at 48 + 584 = 632, outer certification data at 632 + 4 + 128.
    let tdx = vector("tdx-v4-phala-uptodate");
    let mut b = tdx.clone();
    put_u32(&mut b, 632, 4300 + 70 + 1);
    let (field, offset, problem) = malformed(Quote::parse(&b));
    assert_eq!((field, offset), ("signature_data_len", 632));
    assert_eq!(problem, "says 4371 bytes but only 4370 remain");

    let outer_at = 632 + 4 + 128;
    let mut b = tdx.clone();
    put_u16(&mut b, outer_at, 5);
    let msg = unsupported(Quote::parse(&b));
    assert!(
        msg.contains("outer_cert_data_type") && msg.contains(&format!("offset {outer_at}")),
        "{msg}"
    );
    let mut b = tdx.clone();
    put_u32(&mut b, outer_at + 2, u32::MAX);
    let (field, offset, _) = malformed(Quote::parse(&b));
    assert_eq!((field, offset), ("outer_cert_data_size", outer_at + 2));
    let mut b = tdx.clone();
    let inner_size_at = outer_at + 6 + 384 + 64 + 2 + 32 + 2;
    put_u32(&mut b, inner_size_at, get_u32(&tdx, inner_size_at) + 1);
    let (field, offset, _) = malformed(Quote::parse(&b));
    assert_eq!((field, offset), ("cert_data_size", inner_size_at));
}

#[test]
fn v5_body_descriptor_refusals() {
    let td15 = vector("tdx-v5-alibaba-servicetd-uptodate");
    for body_type in [0u16, 5, 0xffff] {
        let mut b = td15.clone();
        put_u16(&mut b, 48, body_type);
        let msg = unsupported(Quote::parse(&b));
        assert!(
            msg.contains("body_type") && msg.contains("offset 48"),
            "{msg}"
        );
    }
    // A TD 1.5 body labelled with another type: body_size no longer matches.
    for body_type in [1u16, 2, 4] {
        let mut b = td15.clone();
        put_u16(&mut b, 48, body_type);
        put_u32(&mut b, 4, if body_type == 1 { 0 } else { 0x81 });
        let (field, offset, _) = malformed(Quote::parse(&b));
        assert_eq!((field, offset), ("body_size", 50), "body type {body_type}");
    }
    for size in [0u32, 584, 647, 649, 885, u32::MAX] {
        let mut b = td15.clone();
        put_u32(&mut b, 50, size);
        let (field, offset, problem) = malformed(Quote::parse(&b));
        assert_eq!((field, offset), ("body_size", 50), "{problem}");
    }
    // An SGX body type in a TDX quote.
    let mut b = td15.clone();
    put_u16(&mut b, 48, 1);
    put_u32(&mut b, 50, 384);
    let (field, offset, _) = malformed(Quote::parse(&b));
    assert_eq!((field, offset), ("body_type", 48));
}

/// Rewraps v3 signature data (QE report, signature, auth data, cert data directly) in the v4
/// layout (inside certification data of type 6).
fn v4_signature_data(v3_sig: &[u8]) -> Vec<u8> {
    let mut out = v3_sig[..128].to_vec();
    let rest = &v3_sig[128..];
    out.extend_from_slice(&6u16.to_le_bytes());
    out.extend_from_slice(&(rest.len() as u32).to_le_bytes());
    out.extend_from_slice(rest);
    out
}

#[test]
fn v5_with_sgx_body_and_td10_body() {
    // SGX report in a v5 quote (body type 1), built from a v3 quote.
    let v3 = vector("sgx-v3-phala-config-swhardening");
    let q3 = Quote::parse(&v3).unwrap();
    let sig = v4_signature_data(&v3[436..]);
    let mut v5 = v3[..48].to_vec();
    put_u16(&mut v5, 0, 5);
    v5.extend_from_slice(&1u16.to_le_bytes());
    v5.extend_from_slice(&384u32.to_le_bytes());
    v5.extend_from_slice(&v3[48..432]);
    v5.extend_from_slice(&(sig.len() as u32).to_le_bytes());
    v5.extend_from_slice(&sig);
    let q5 = Quote::parse(&v5).unwrap();
    assert_eq!(q5.tee(), TeeKind::Sgx);
    assert_eq!(q5.body, q3.body);
    assert_eq!(q5.signature_data, q3.signature_data);
    assert_eq!((q5.len(), q5.trailing_bytes()), (v5.len(), 0));
    // ... but not with a TDX tee_type.
    put_u32(&mut v5, 4, 0x81);
    assert_eq!(malformed(Quote::parse(&v5)).0, "body_type");

    // TD report 1.0 in a v5 quote (body type 2), built from a v4 quote.
    let v4 = vector("tdx-v4-automata-outofdate");
    let q4 = Quote::parse(&v4).unwrap();
    let mut v5 = v4[..48].to_vec();
    put_u16(&mut v5, 0, 5);
    v5.extend_from_slice(&2u16.to_le_bytes());
    v5.extend_from_slice(&584u32.to_le_bytes());
    v5.extend_from_slice(&v4[48..]);
    let q5 = Quote::parse(&v5).unwrap();
    assert_eq!(q5.body, q4.body);
    assert_eq!(q5.signature_data, q4.signature_data);
    assert_eq!(
        (q5.len(), q5.trailing_bytes()),
        (q4.len() + 6, q4.trailing_bytes())
    );
    assert_eq!(q5.body.as_td().unwrap().body_type, TdBodyType::Td10);
}

#[test]
fn td15_ex_fields() {
    let q = parse("tdx-v5-phala-td15ex-uptodate");
    let td = q.body.as_td().unwrap();
    assert_eq!(td.body_type, TdBodyType::Td15Ex);
    assert_eq!(td.body_type.byte_len(), 885);
    let ex = td.td15_ex.as_ref().unwrap();
    assert_eq!(ex.vmid, 0);
    // The ex fields follow the 1.5 report: body at 54, td_id at 54 + 648 + 1.
    let bytes = vector("tdx-v5-phala-td15ex-uptodate");
    assert_eq!(&ex.td_id[..], &bytes[54 + 649..54 + 681]);
    assert_eq!(
        &ex.cur_service_td_attributes[..],
        &bytes[54 + 877..54 + 885]
    );
}

/// A small deterministic PRNG (xorshift64*), so the test needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Offsets of the header, the v5 body descriptor and every length field of a quote, found by
/// walking the (known good) quote.
fn structural_offsets(bytes: &[u8]) -> Vec<usize> {
    let version = u16::from_le_bytes([bytes[0], bytes[1]]);
    let mut at: Vec<usize> = (0..48).collect();
    let sig_len_at = match version {
        3 => 432,
        4 => 632,
        _ => {
            at.extend(48..54);
            54 + get_u32(bytes, 50) as usize
        }
    };
    at.extend(sig_len_at..sig_len_at + 4);
    let mut p = sig_len_at + 4 + 128;
    if version >= 4 {
        at.extend(p..p + 6); // outer certification data type and size
        p += 6;
    }
    p += 384 + 64;
    at.extend(p..p + 2); // QE auth data length
    p += 2 + u16::from_le_bytes([bytes[p], bytes[p + 1]]) as usize;
    at.extend(p..p + 6); // certification data type and size
    at
}

#[test]
fn random_corruption_never_panics() {
    let mut rng = Rng(0x5eed_f00d_d00d_5eed);
    for (name, bytes, _) in vectors() {
        let good = Quote::parse(&bytes).unwrap();
        let offsets = structural_offsets(&bytes);
        for round in 0..3000 {
            let mut b = bytes.clone();
            let flips = 1 + rng.below(4);
            for _ in 0..flips {
                let at = if round % 4 == 3 {
                    rng.below(b.len()) // anywhere
                } else {
                    offsets[rng.below(offsets.len())]
                };
                b[at] = match rng.below(4) {
                    0 => b[at] ^ (1 << rng.below(8)),
                    1 => 0xff,
                    2 => 0,
                    _ => rng.next() as u8,
                };
            }
            let cut = if round % 7 == 6 {
                rng.below(b.len() + 1)
            } else {
                b.len()
            };
            let input = &b[..cut];
            match Quote::parse(input) {
                Ok(q) => {
                    assert_eq!(q.len() + q.trailing_bytes(), input.len(), "{name}");
                    assert!(q.len() >= 48 + 384, "{name}");
                }
                Err(Error::Malformed { offset, .. }) => assert!(offset <= input.len(), "{name}"),
                Err(Error::Unsupported(msg)) => assert!(msg.contains("offset"), "{name}: {msg}"),
                Err(other) => panic!("{name}: unexpected error kind {other:?}"),
            }
        }
        // The untouched quote still parses the same way.
        assert_eq!(Quote::parse(&bytes).unwrap(), good);
    }
}

/// Arbitrary inputs, including all-0xff and short random buffers with a plausible header.
#[test]
fn arbitrary_input_never_panics() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for len in 0..2000 {
        let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = Quote::parse(&b);
        if b.len() >= 8 {
            put_u16(&mut b, 0, 3 + rng.below(3) as u16);
            put_u16(&mut b, 2, 2);
            put_u32(&mut b, 4, if rng.below(2) == 0 { 0 } else { 0x81 });
            let _ = Quote::parse(&b);
        }
        let _ = Quote::parse(&vec![0xff; len]);
        let _ = Quote::parse(&vec![0; len]);
    }
}
