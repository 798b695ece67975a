//! Fetching collateral from a PCCS-shaped loopback server, verifying it with ward-attest, and
//! the errors of servers that answer badly.

mod common;

use common::{err, url_encode, Reply, Server, Vector};
use std::time::Duration;
use ward_attest::dcap::DcapVerifier;
use ward_attest::quote::Quote;
use ward_attest::TcbStatus;
use ward_pccs::{CollateralKey, Error, Pccs, PckCa, Tee};

fn verify(v: &Vector, collateral: &ward_attest::dcap::Collateral) -> TcbStatus {
    let claims = DcapVerifier::intel()
        .verify(&v.quote(), collateral, v.verify_at())
        .expect("fetched collateral verifies");
    claims.tcb_status.unwrap()
}

fn expected_status(v: &Vector) -> TcbStatus {
    TcbStatus::from_intel(v.expected()["tcb_status"].as_str().unwrap()).unwrap()
}

#[test]
fn sgx_fetch_verifies() {
    let v = Vector::sgx();
    let server = Server::start(v.routes(false));
    // A trailing slash on the base URL is fine.
    let pccs = Pccs::new(&format!("{}/", server.url())).unwrap();
    let quote = Quote::parse(&v.quote()).unwrap();
    let collateral = pccs.fetch(&quote).unwrap();
    assert_eq!(server.requests(), v.paths());
    assert_eq!(hex::encode_upper(collateral.fmspc()), v.fmspc);
    assert_eq!(verify(&v, &collateral), expected_status(&v));
    assert_eq!(expected_status(&v), TcbStatus::SWHardeningNeeded);
}

#[test]
fn tdx_fetch_verifies_with_hex_crls() {
    let v = Vector::tdx();
    let server = Server::start(v.routes(true));
    let pccs = Pccs::new(&server.url()).unwrap();
    let quote = Quote::parse(&v.quote()).unwrap();
    let collateral = pccs.fetch(&quote).unwrap();
    assert_eq!(server.requests(), v.paths());
    assert_eq!(verify(&v, &collateral), TcbStatus::UpToDate);
    assert_eq!(expected_status(&v), TcbStatus::UpToDate);
}

#[test]
fn legacy_tcb_issuer_chain_header_is_accepted() {
    let v = Vector::sgx();
    let server = Server::start(v.routes(false));
    server.edit(&v.path_tcb(), |r| {
        for (name, _) in &mut r.headers {
            if name == "TCB-Info-Issuer-Chain" {
                *name = "SGX-TCB-Info-Issuer-Chain".into();
            }
        }
    });
    let pccs = Pccs::new(&server.url()).unwrap();
    let collateral = pccs.fetch(&Quote::parse(&v.quote()).unwrap()).unwrap();
    assert_eq!(verify(&v, &collateral), TcbStatus::SWHardeningNeeded);
}

#[test]
fn keys_from_quotes() {
    for (v, tee) in [(Vector::sgx(), Tee::Sgx), (Vector::tdx(), Tee::Tdx)] {
        let key = CollateralKey::from_quote(&Quote::parse(&v.quote()).unwrap()).unwrap();
        assert_eq!(key.tee, tee);
        assert_eq!(key.fmspc_hex(), v.fmspc);
        assert_eq!(key.ca, PckCa::Platform);
    }
    // A Processor-CA PCK certificate.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ward-attest/tests/data/sgx-v3-phala-config-swhardening");
    let quote = Quote::parse(&std::fs::read(dir.join("quote.bin")).unwrap()).unwrap();
    let key = CollateralKey::from_quote(&quote).unwrap();
    assert_eq!(
        (key.fmspc_hex().as_str(), key.ca),
        ("00A067110000", PckCa::Processor)
    );
    assert_eq!(key.to_string(), "SGX FMSPC 00A067110000 (processor CA)");

    // Not a PCK chain: the Root CA alone has no SGX extension.
    let root = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../ward-attest/tests/data/sgx-v3-automata-swhardening/pck_cert_chain.pem"),
    )
    .unwrap();
    let last = &root[root.rfind("-----BEGIN CERTIFICATE-----").unwrap()..];
    let e = CollateralKey::from_pck_chain_pem(Tee::Sgx, last).unwrap_err();
    assert!(
        matches!(e, Error::Quote(_)) && e.to_string().contains("extension"),
        "{e}"
    );
    let e = CollateralKey::from_pck_chain_pem(Tee::Sgx, "").unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}

/// Fetches the SGX vector from a server whose route `path` was changed by `f`; returns the
/// error, checking that it names the URL.
fn fetch_err(path_of: impl Fn(&Vector) -> String, f: impl FnOnce(&mut Reply)) -> Error {
    let v = Vector::sgx();
    let server = Server::start(v.routes(false));
    let path = path_of(&v);
    server.edit(&path, f);
    let pccs = Pccs::new(&server.url()).unwrap();
    let e = err(pccs.fetch(&Quote::parse(&v.quote()).unwrap()));
    let url = format!("{}{}", server.url(), path);
    assert!(e.to_string().contains(&url), "{e} does not name {url}");
    e
}

#[test]
fn http_404_names_the_url() {
    let e = fetch_err(Vector::path_pck_crl, |r| {
        *r = Reply::status(404, "").header("Error-Code", "NotFound")
    });
    assert!(matches!(e, Error::Status { status: 404, .. }), "{e:?}");
    assert!(e.to_string().contains("Error-Code: NotFound"), "{e}");
}

#[test]
fn http_500_names_the_url_and_quotes_the_body() {
    let e = fetch_err(Vector::path_qe, |r| {
        *r = Reply::status(500, "PCCS: upstream\n failure")
    });
    assert!(matches!(e, Error::Status { status: 500, .. }), "{e:?}");
    assert!(e.to_string().contains("PCCS: upstream. failure"), "{e}");
}

#[test]
fn missing_issuer_chain_header() {
    let e = fetch_err(Vector::path_tcb, |r| {
        r.headers.retain(|(n, _)| n == "Content-Type")
    });
    assert!(matches!(e, Error::MissingHeader { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("TCB-Info-Issuer-Chain or SGX-TCB-Info-Issuer-Chain"),
        "{e}"
    );
    let e = fetch_err(Vector::path_pck_crl, |r| r.headers.clear());
    assert!(e.to_string().contains("SGX-PCK-CRL-Issuer-Chain"), "{e}");
    let e = fetch_err(Vector::path_qe, |r| {
        r.headers = vec![("SGX-Enclave-Identity-Issuer-Chain".into(), "%zz".into())]
    });
    assert!(matches!(e, Error::BadHeader { .. }), "{e:?}");
    let e = fetch_err(Vector::path_qe, |r| {
        r.headers = vec![(
            "SGX-Enclave-Identity-Issuer-Chain".into(),
            url_encode("hello"),
        )]
    });
    assert!(e.to_string().contains("no PEM certificate"), "{e}");
}

#[test]
fn garbage_bodies() {
    let e = fetch_err(Vector::path_tcb, |r| {
        r.body = b"<html>Gateway</html>".to_vec()
    });
    assert!(matches!(e, Error::BadBody { .. }), "{e:?}");
    assert!(e.to_string().contains("not a JSON object"), "{e}");

    let e = fetch_err(Vector::path_qe, |r| {
        r.body = br#"{"enclaveIdentity":{"id":"QE"},"signature":"abcd"}"#.to_vec()
    });
    assert!(e.to_string().contains("64"), "{e}");

    let e = fetch_err(Vector::path_pck_crl, |r| r.body = b"not a crl".to_vec());
    assert!(e.to_string().contains("PCK CRL: not a CRL"), "{e}");

    let e = fetch_err(Vector::path_root_crl, |r| r.body = vec![0x30, 0x82, 0x01]);
    assert!(
        e.to_string().contains("root CA CRL: not a DER X.509 CRL"),
        "{e}"
    );

    // The TDX vector's TCB info served for the SGX platform.
    let tdx = Vector::tdx();
    let e = fetch_err(Vector::path_tcb, |r| r.body = tdx.tcb_body().into_bytes());
    assert!(
        e.to_string().contains(r#"TCB info is for "TDX", not SGX"#),
        "{e}"
    );
}

#[test]
fn oversized_body_is_refused() {
    let v = Vector::sgx();
    let server = Server::start(v.routes(false));
    let pccs = Pccs::new(&server.url())
        .unwrap()
        .with_max_response_bytes(1000);
    let e = err(pccs.fetch(&Quote::parse(&v.quote()).unwrap()));
    assert!(matches!(e, Error::TooLarge { limit: 1000, .. }), "{e:?}");
    assert!(e.to_string().contains(&v.path_pck_crl()), "{e}");
    // Only the first request was made.
    assert_eq!(server.requests(), vec![v.path_pck_crl()]);

    // Without Content-Length the limit holds while reading.
    let e = fetch_err(Vector::path_tcb, |r| {
        r.body = vec![b' '; 5 << 20];
        r.no_length = true;
    });
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
}

#[test]
fn connection_refused_names_the_url() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let v = Vector::sgx();
    let pccs = Pccs::new(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let e = err(pccs.fetch(&Quote::parse(&v.quote()).unwrap()));
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    let url = format!("http://127.0.0.1:{port}{}", v.path_pck_crl());
    assert!(e.to_string().contains(&url), "{e}");
}

#[test]
fn timeout_names_the_url() {
    // Accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let _held: Vec<_> = listener.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(10));
    });
    let v = Vector::sgx();
    let pccs = Pccs::new(&format!("http://{addr}"))
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let e = err(pccs.fetch(&Quote::parse(&v.quote()).unwrap()));
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(e.to_string().contains(&v.path_pck_crl()), "{e}");
    let chain = ward_attest::ErrorChain(&e).to_string();
    assert!(chain.contains("timeout"), "{chain}");
}
