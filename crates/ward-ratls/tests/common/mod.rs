//! Shared test fixtures: a simulated TEE, policies, certificates built by hand, and a loopback
//! TLS harness.

#![allow(dead_code)]

use rcgen::{CertificateParams, CustomExtension, KeyPair, PublicKeyData};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use ward_attest::attester::{Attester, Evidence, SimAttester};
use ward_attest::sim::{SimIdentity, SimPlatformKey};
use ward_attest::Policy;

pub(crate) const MR_ENCLAVE: [u8; 32] = [0x11; 32];
pub(crate) const OTHER_MR_ENCLAVE: [u8; 32] = [0x99; 32];

pub(crate) fn identity() -> SimIdentity {
    SimIdentity {
        mr_enclave: MR_ENCLAVE,
        mr_signer: [0x22; 32],
        isv_prod_id: 1,
        isv_svn: 2,
        debug: false,
    }
}

/// A simulated attester that remembers every quote it produced.
#[derive(Debug)]
pub(crate) struct Recording {
    pub inner: SimAttester,
    pub quotes: Mutex<Vec<Vec<u8>>>,
}

impl Recording {
    pub(crate) fn new() -> Self {
        Recording {
            inner: SimAttester::new(SimPlatformKey::generate(), identity()),
            quotes: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn platform_hex(&self) -> String {
        self.inner.platform_key().to_hex()
    }

    pub(crate) fn quotes(&self) -> Vec<Vec<u8>> {
        self.quotes.lock().unwrap().clone()
    }
}

impl Attester for Recording {
    fn name(&self) -> &'static str {
        "recording-sim"
    }

    fn attest(&self, report_data: &[u8; 64]) -> ward_attest::Result<Evidence> {
        let e = self.inner.attest(report_data)?;
        self.quotes.lock().unwrap().push(e.quote.clone());
        Ok(e)
    }
}

/// A policy that trusts `platform_hex` (simulated) and accepts `mr_enclave`.
pub(crate) fn policy(platform_hex: &str, mr_enclave: &[u8; 32]) -> Policy {
    Policy::from_toml(
        &format!(
            r#"allow_simulated = true
simulated_platform_keys = ["{platform_hex}"]

[[identity]]
name = "test enclave"
mr_enclave = "{}"
"#,
            hex::encode(mr_enclave)
        ),
        "test policy",
    )
    .unwrap()
}

pub(crate) fn spki_sha256(key: &KeyPair) -> [u8; 32] {
    Sha256::digest(key.subject_public_key_info()).into()
}

pub(crate) fn legacy_report_data(key: &KeyPair) -> [u8; 64] {
    let mut rd = [0u8; 64];
    rd[..32].copy_from_slice(&spki_sha256(key));
    rd
}

/// A self-signed certificate for `key` with the given extensions.
pub(crate) fn cert_with(key: &KeyPair, extensions: Vec<CustomExtension>) -> Vec<u8> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.custom_extensions = extensions;
    params.self_signed(key).unwrap().der().to_vec()
}

pub(crate) fn p384() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap()
}

/// The value of the extension with this dotted OID, if present.
pub(crate) fn extension(der: &[u8], oid: &str) -> Option<Vec<u8>> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    cert.extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == oid)
        .map(|e| e.value.to_vec())
}

/// A plain self-signed certificate (no evidence) and its key, as rustls takes them.
pub(crate) fn plain_cert() -> (
    CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let key = p384();
    let der = cert_with(&key, Vec::new());
    (
        CertificateDer::from(der),
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
}

/// What one side of a handshake saw: the peer's certificates and the protocol version, or the
/// error.
#[derive(Debug)]
pub(crate) struct Side {
    pub peer_certificates: Option<Vec<Vec<u8>>>,
    pub version: Option<rustls::ProtocolVersion>,
}

fn timeouts(sock: &TcpStream) {
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
}

fn peer_certs(certs: Option<&[CertificateDer<'_>]>) -> Option<Vec<Vec<u8>>> {
    certs.map(|c| c.iter().map(|c| c.to_vec()).collect())
}

/// Runs one handshake over a loopback TCP connection (server in a thread) and exchanges a
/// message each way. Returns each side's view.
pub(crate) fn handshake(
    server: ServerConfig,
    client: ClientConfig,
) -> (Result<Side, String>, Result<Side, String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_thread = thread::spawn(move || -> Result<Side, String> {
        let (mut sock, _) = listener.accept().map_err(|e| e.to_string())?;
        timeouts(&sock);
        let mut conn = ServerConnection::new(Arc::new(server)).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
        }
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"ping!");
        tls.write_all(b"pong!").map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        conn.send_close_notify();
        let _ = conn.complete_io(&mut sock);
        Ok(Side {
            peer_certificates: peer_certs(conn.peer_certificates()),
            version: conn.protocol_version(),
        })
    });

    let client_result = (|| -> Result<Side, String> {
        let mut sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        timeouts(&sock);
        let name = ServerName::try_from("ward-ratls.test").unwrap();
        let mut conn = ClientConnection::new(Arc::new(client), name).map_err(|e| e.to_string())?;
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        tls.write_all(b"ping!").map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"pong!");
        Ok(Side {
            peer_certificates: peer_certs(conn.peer_certificates()),
            version: conn.protocol_version(),
        })
    })();
    let server_result = server_thread.join().expect("server thread panicked");
    (server_result, client_result)
}
