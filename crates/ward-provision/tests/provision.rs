//! Loopback tests of the provisioning server and client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use ward_attest::attester::SimAttester;
use ward_attest::sim::{SimIdentity, SimPlatformKey};
use ward_provision::protocol::{GRAMINE_REQUEST, WARD_REQUEST};
use ward_provision::{Error, Reloader, Server, ServerConfig, ServerHandle};
use ward_ratls::{AnyVerifier, EvidenceForm, RaTlsIdentity, SimVerifier};

const ENCLAVE_A: [u8; 32] = [0x11; 32];
const ENCLAVE_B: [u8; 32] = [0x33; 32];
const ALPHA: &[u8; 16] = b"alpha-key-16byte";
const BETA: &[u8] = b"beta secret string do-not-log";
const GAMMA: &[u8] = b"gamma secret for B only";

// ---------------------------------------------------------------------------------------------
// Captured tracing output (one subscriber for the whole test binary).

static TRACE: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct TraceWriter;
impl Write for TraceWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        TRACE.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_tracing() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| TraceWriter)
            .init();
    });
}

fn trace_text() -> String {
    String::from_utf8_lossy(&TRACE.lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Fixture

struct Fixture {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    server: Option<ServerHandle>,
    reloader: Reloader,
    ca_pem: Vec<u8>,
    platform: SimPlatformKey,
}

fn pem_of(tag: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(tag, der.to_vec()))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn policy(platform_hex: &str, enclave: [u8; 32], min_svn: u16) -> String {
    format!(
        "allow_simulated = true\nsimulated_platform_keys = [\"{platform_hex}\"]\n\n\
         [[identity]]\nname = \"test workload\"\nmr_enclave = \"{}\"\nmin_isv_svn = {min_svn}\n",
        hex::encode(enclave)
    )
}

/// A dev CA and a server certificate for localhost / 127.0.0.1 signed by it.
fn dev_pki(dir: &Path) -> Vec<u8> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ward test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let chain = pem_of("CERTIFICATE", server_cert.der()) + &pem_of("CERTIFICATE", ca_cert.der());
    write(dir, "server-chain.pem", chain.as_bytes());
    write(
        dir,
        "server-key.pem",
        pem_of("PRIVATE KEY", &server_key.serialize_der()).as_bytes(),
    );
    pem_of("CERTIFICATE", ca_cert.der()).into_bytes()
}

fn config_text(extra_top: &str, extra_limits: &str) -> String {
    format!(
        "{extra_top}listen = \"127.0.0.1:0\"\ncert_chain = \"server-chain.pem\"\nkey = \"server-key.pem\"\n\
         audit_log = \"audit.jsonl\"\n\n[limits]\nmax_connections = 8\nhandshake_timeout_ms = 1500\n\
         idle_timeout_ms = 1500\n{extra_limits}\n\
         [[secret]]\nname = \"gamma\"\nfile = \"gamma.txt\"\nkind = \"string\"\npolicy = \"policy-b.toml\"\n\n\
         [[secret]]\nname = \"alpha\"\nfile = \"alpha.key\"\nkind = \"key\"\npolicy = \"policy-a.toml\"\n\n\
         [[secret]]\nname = \"beta\"\nfile = \"beta.txt\"\nkind = \"string\"\npolicy = \"policy-a.toml\"\n"
    )
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_limits("")
    }

    fn with_limits(extra_limits: &str) -> Fixture {
        Fixture::with_config("", extra_limits)
    }

    fn with_config(extra_top: &str, extra_limits: &str) -> Fixture {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let ca_pem = dev_pki(dir.path());
        let platform = SimPlatformKey::generate();
        let hex_key = platform.public().to_hex();
        write(
            dir.path(),
            "policy-a.toml",
            policy(&hex_key, ENCLAVE_A, 2).as_bytes(),
        );
        write(
            dir.path(),
            "policy-b.toml",
            policy(&hex_key, ENCLAVE_B, 0).as_bytes(),
        );
        write(dir.path(), "alpha.key", ALPHA);
        write(dir.path(), "beta.txt", BETA);
        write(dir.path(), "gamma.txt", GAMMA);
        let cfg_path = write(
            dir.path(),
            "provision.toml",
            config_text(extra_top, extra_limits).as_bytes(),
        );
        let config = ServerConfig::load(&cfg_path).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let evidence = Arc::new(AnyVerifier::new(Some(SimVerifier), None));
        let (server, reloader) = rt.block_on(async {
            let server = Server::bind(&config, evidence).await.unwrap();
            let reloader = server.reloader();
            (server.spawn().unwrap(), reloader)
        });
        Fixture {
            dir,
            rt,
            server: Some(server),
            reloader,
            ca_pem,
            platform,
        }
    }

    fn addr(&self) -> String {
        self.server.as_ref().unwrap().local_addr().to_string()
    }

    fn servers(&self) -> Vec<String> {
        vec![self.addr()]
    }

    fn identity(&self, enclave: [u8; 32], svn: u16) -> RaTlsIdentity {
        let key = SimPlatformKey::from_pkcs8_for_test(&self.platform);
        let attester = SimAttester::new(
            key,
            SimIdentity {
                mr_enclave: enclave,
                mr_signer: [0x22; 32],
                isv_prod_id: 1,
                isv_svn: svn,
                debug: false,
            },
        );
        RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap()
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl")).unwrap_or_default()
    }

    fn audit_lines(&self) -> Vec<serde_json::Value> {
        self.audit()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Polls until the audit log has `n` lines (handshake failures are logged asynchronously).
    fn wait_audit(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            let lines = self.audit_lines();
            if lines.len() >= n {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("audit log has fewer than {n} lines:\n{}", self.audit());
    }

    fn assert_no_secret_logged(&self) {
        let audit = self.audit();
        let trace = trace_text();
        for s in [&ALPHA[..], BETA, GAMMA] {
            let text = String::from_utf8_lossy(s);
            assert!(!audit.contains(&*text), "audit log contains a secret");
            assert!(
                !audit.contains(&hex::encode(s)),
                "audit log contains a secret (hex)"
            );
            assert!(!trace.contains(&*text), "tracing output contains a secret");
            assert!(
                !trace.contains(&hex::encode(s)),
                "tracing output contains a secret (hex)"
            );
        }
    }

    /// A raw TLS client presenting `identity` (or no certificate), verifying the server by the CA.
    fn raw_tls(
        &self,
        client_auth: Option<&RaTlsIdentity>,
    ) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(&self.ca_pem) {
            roots.add(c.unwrap()).unwrap();
        }
        let config = match client_auth {
            Some(id) => {
                let v = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    ward_ratls::crypto_provider(),
                )
                .build()
                .unwrap();
                id.client_config(v).unwrap()
            }
            None => rustls::ClientConfig::builder_with_provider(ward_ratls::crypto_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        };
        let conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
        let tcp = TcpStream::connect(self.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        rustls::StreamOwned::new(conn, tcp)
    }
}

use rustls::pki_types::pem::PemObject;

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            let _ = self.rt.block_on(s.shutdown());
        }
    }
}

/// SimPlatformKey is not Clone: round-trip it through a file to make a second handle.
trait KeyCopy {
    fn from_pkcs8_for_test(k: &SimPlatformKey) -> SimPlatformKey;
}
impl KeyCopy for SimPlatformKey {
    fn from_pkcs8_for_test(k: &SimPlatformKey) -> SimPlatformKey {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("platform.pem");
        k.save(&p).unwrap();
        SimPlatformKey::load(&p).unwrap()
    }
}

fn decision<'a>(line: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    line["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no decision for {name} in {line}"))
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn ward_client_gets_its_two_secrets() {
    let f = Fixture::new();
    let id = f.identity(ENCLAVE_A, 2);
    let secrets = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha", "beta"]).unwrap();
    assert_eq!(secrets.get("alpha").unwrap(), ALPHA);
    assert_eq!(secrets.get("beta").unwrap(), BETA);
    assert_eq!(secrets.len(), 2);
    assert!(!format!("{secrets:?}").contains("alpha-key"));

    let lines = f.wait_audit(1);
    let line = &lines[0];
    assert_eq!(line["event"], "ward");
    assert_eq!(line["tee"], "sim");
    assert_eq!(line["measurement"], hex::encode(ENCLAVE_A));
    assert!(line["time"].as_u64().unwrap() > 1_600_000_000);
    assert!(line["time_rfc3339"].as_str().unwrap().ends_with('Z'));
    assert_eq!(line["requested"], serde_json::json!(["alpha", "beta"]));
    assert_eq!(decision(line, "alpha")["decision"], "granted");
    assert_eq!(decision(line, "beta")["decision"], "granted");
    // The run id is the grant's audit record: what the workload's receipt names.
    assert_eq!(Some(line["id"].as_str().unwrap()), secrets.run_id());
    let again = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha"]).unwrap();
    assert_ne!(again.run_id(), secrets.run_id(), "each run has its own id");
    f.assert_no_secret_logged();
}

#[test]
fn gramine_client_gets_the_default_secret() {
    let f = Fixture::new();
    // The first [[secret]] (gamma) is for enclave B: enclave A's default is alpha.
    let id = f.identity(ENCLAVE_A, 2);
    let secret = ward_provision::fetch_gramine(&f.servers(), &f.ca_pem, &id).unwrap();
    assert_eq!(&secret[..], ALPHA);
    // Enclave B's default is gamma, a string: NUL-terminated for Gramine.
    let id_b = f.identity(ENCLAVE_B, 0);
    let secret = ward_provision::fetch_gramine(&f.servers(), &f.ca_pem, &id_b).unwrap();
    assert_eq!(&secret[..GAMMA.len()], GAMMA);
    assert_eq!(secret[GAMMA.len()..], [0]);

    let lines = f.wait_audit(2);
    assert_eq!(lines[0]["event"], "gramine");
    assert_eq!(decision(&lines[0], "gamma")["decision"], "refused");
    assert_eq!(decision(&lines[0], "alpha")["decision"], "granted");
    f.assert_no_secret_logged();
}

#[test]
fn gramine_wire_format_byte_for_byte() {
    let f = Fixture::new();
    let id = f.identity(ENCLAVE_A, 2);
    let mut s = f.raw_tls(Some(&id));
    s.write_all(GRAMINE_REQUEST).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let mut expected = b"SECRET_PROVISION_RA_TLS_RESPONSE_V1:\0".to_vec();
    expected.extend_from_slice(&16u32.to_be_bytes());
    expected.extend_from_slice(ALPHA);
    assert_eq!(answer, expected);
}

/// A reload swaps policies and secrets all at once while serving; a broken file changes
/// nothing and says which file and why.
#[test]
fn reload_swaps_policies_atomically_and_a_broken_one_keeps_the_old() {
    let f = Fixture::new();
    let config_path = f.dir.path().join("provision.toml");
    let (a, b) = (f.identity(ENCLAVE_A, 2), f.identity(ENCLAVE_B, 2));
    let get = |id: &RaTlsIdentity| ward_provision::fetch(&f.servers(), &f.ca_pem, id, &["alpha"]);
    assert_eq!(get(&a).unwrap().get("alpha").unwrap(), ALPHA);
    assert!(get(&b).unwrap_err().is_refusal());

    // A broken policy for alpha: the reload fails naming it, and alpha still goes to A.
    let hex_key = f.platform.public().to_hex();
    let good_a = std::fs::read_to_string(f.dir.path().join("policy-a.toml")).unwrap();
    write(f.dir.path(), "policy-a.toml", b"allow_simulated = maybe\n");
    let config = ServerConfig::load(&config_path).unwrap();
    let err = f.reloader.reload(&config).unwrap_err();
    let text = ward_attest::ErrorChain(&err).to_string();
    assert!(text.contains("policy-a.toml"), "{text}");
    assert_eq!(get(&a).unwrap().get("alpha").unwrap(), ALPHA);
    // A secret file of the wrong size (alpha is a 16-byte key) is refused the same way, even
    // with every policy valid again.
    write(f.dir.path(), "policy-a.toml", good_a.as_bytes());
    write(f.dir.path(), "alpha.key", b"short");
    assert!(f.reloader.reload(&config).is_err());
    assert_eq!(get(&a).unwrap().get("alpha").unwrap(), ALPHA);

    // A valid change: alpha now goes to B only, with its new bytes.
    write(f.dir.path(), "alpha.key", b"new-alpha-key-16");
    write(
        f.dir.path(),
        "policy-a.toml",
        policy(&hex_key, ENCLAVE_B, 0).as_bytes(),
    );
    let names = f.reloader.reload(&config).unwrap();
    assert_eq!(names, ["gamma", "alpha", "beta"]);
    assert_eq!(get(&b).unwrap().get("alpha").unwrap(), b"new-alpha-key-16");
    assert!(get(&a).unwrap_err().is_refusal());

    // From the configuration file: an edit to its [[secret]] list counts, a file that does not
    // parse changes nothing.
    let source = ward_provision::ConfigSource::File(config_path.clone());
    let text = std::fs::read_to_string(&config_path).unwrap();
    let beta = "\n[[secret]]\nname = \"beta\"";
    let without_beta = &text[..text.find(beta).unwrap()];
    std::fs::write(&config_path, without_beta).unwrap();
    assert_eq!(f.reloader.reload_from(&source).unwrap(), ["gamma", "alpha"]);
    std::fs::write(&config_path, "listen = ").unwrap();
    let err = f.reloader.reload_from(&source).unwrap_err();
    assert!(err.to_string().contains("provision.toml"), "{err}");
    let err = ward_provision::fetch(&f.servers(), &f.ca_pem, &b, &["beta"]).unwrap_err();
    assert!(
        err.is_refusal(),
        "beta was dropped by the file reload: {err}"
    );
    assert_eq!(get(&b).unwrap().get("alpha").unwrap(), b"new-alpha-key-16");
}

/// The client learns only that a secret was not granted and which audit record says why; the
/// reason (the rule, the measurements the policy expects) stays in the audit log.
#[test]
fn wrong_mrenclave_is_refused_with_the_reason_in_the_audit_log_only() {
    let f = Fixture::new();
    let id = f.identity([0x44; 32], 5);
    let err = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha"]).unwrap_err();
    let lines = f.wait_audit(1);
    let record = lines[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(record.len(), 16, "{record}");
    match &err {
        Error::Refused { name, reason, .. } => {
            assert_eq!(name, "alpha");
            assert_eq!(
                reason,
                &format!("not granted (the server's audit record {record} says why)")
            );
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(!err.to_string().contains("mr_enclave"), "{err}");
    assert!(!err.to_string().contains(&hex::encode(ENCLAVE_A)), "{err}");
    let d = decision(&lines[0], "alpha");
    assert_eq!(d["decision"], "refused");
    assert!(d["reason"].as_str().unwrap().contains("mr_enclave"));
    assert_eq!(lines[0]["measurement"], hex::encode([0x44; 32]));

    // A Gramine client allowed nothing gets the connection closed, not a secret.
    let err = ward_provision::fetch_gramine(&f.servers(), &f.ca_pem, &id).unwrap_err();
    assert!(!err.is_refusal(), "{err}");
    let lines = f.wait_audit(2);
    assert!(lines[1]["reason"]
        .as_str()
        .unwrap()
        .contains("none of the configured secrets"));
    f.assert_no_secret_logged();
}

#[test]
fn old_svn_is_refused_and_mixed_answers_are_reported() {
    let f = Fixture::new();
    let id = f.identity(ENCLAVE_A, 1);
    let err =
        ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha", "nosuch"]).unwrap_err();
    match &err {
        Error::Refused { name, reason, .. } => {
            assert_eq!(name, "alpha");
            assert!(reason.starts_with("not granted"), "{reason}");
        }
        other => panic!("expected a refusal, got {other}"),
    }
    let lines = f.wait_audit(1);
    assert_eq!(decision(&lines[0], "alpha")["decision"], "refused");
    assert!(decision(&lines[0], "alpha")["reason"]
        .as_str()
        .unwrap()
        .contains("min_isv_svn"));
    assert_eq!(decision(&lines[0], "nosuch")["decision"], "unknown");

    // An unknown name and a refused one get the same answer: the client cannot tell which
    // secrets exist.
    let id = f.identity(ENCLAVE_A, 2);
    let unknown = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["nosuch"]).unwrap_err();
    let refused = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["gamma"]).unwrap_err();
    let shape = |e: &Error| match e {
        Error::Refused { reason, .. } => reason.split("record ").next().unwrap().to_owned(),
        other => panic!("expected a refusal, got {other}"),
    };
    assert_eq!(shape(&unknown), shape(&refused));
    let lines = f.wait_audit(3);
    assert_eq!(decision(&lines[1], "nosuch")["decision"], "unknown");
    assert_eq!(decision(&lines[2], "gamma")["decision"], "refused");
}

#[test]
fn clients_without_an_ra_tls_certificate_are_refused() {
    let f = Fixture::new();
    // No certificate at all.
    let mut s = f.raw_tls(None);
    let _ = s.write_all(GRAMINE_REQUEST);
    let mut buf = Vec::new();
    let r = s.read_to_end(&mut buf);
    assert!(r.is_err() || buf.is_empty(), "got {} bytes", buf.len());
    drop(s);
    let lines = f.wait_audit(1);
    assert_eq!(lines[0]["event"], "handshake_refused");

    // A plain (non-RA-TLS) certificate.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&f.ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(ward_ratls::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut s = rustls::StreamOwned::new(conn, TcpStream::connect(f.addr()).unwrap());
    let _ = s.write_all(GRAMINE_REQUEST);
    let mut buf = Vec::new();
    let r = s.read_to_end(&mut buf);
    assert!(r.is_err() || buf.is_empty(), "got {} bytes", buf.len());
    let lines = f.wait_audit(2);
    assert_eq!(lines[1]["event"], "handshake_refused");
    assert!(
        lines[1]["reason"]
            .as_str()
            .unwrap()
            .contains("not an RA-TLS certificate"),
        "{}",
        lines[1]
    );

    // The server still serves.
    let id = f.identity(ENCLAVE_A, 2);
    let secrets = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["beta"]).unwrap();
    assert_eq!(secrets.get("beta").unwrap(), BETA);
    f.assert_no_secret_logged();
}

#[test]
fn garbage_and_half_open_connections_do_not_stop_the_server() {
    let f = Fixture::new();
    // Plain-TCP garbage.
    let mut g = TcpStream::connect(f.addr()).unwrap();
    g.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\xfe garbage")
        .unwrap();
    // Half-open connections: connected, silent.
    let silent: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(f.addr()).unwrap())
        .collect();
    // A TLS client that completes the handshake, then sends garbage.
    let id = f.identity(ENCLAVE_A, 2);
    let mut t = f.raw_tls(Some(&id));
    t.write_all(b"HELLO? this is not a provisioning request")
        .unwrap();
    let mut buf = Vec::new();
    let _ = t.read_to_end(&mut buf);
    assert!(buf.is_empty(), "the server answered garbage");
    // A TLS client that completes the handshake and goes silent.
    let mut quiet = f.raw_tls(Some(&id));
    quiet.conn.complete_io(&mut quiet.sock).unwrap();

    // Meanwhile a real client is served at once.
    let start = std::time::Instant::now();
    let secrets = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha"]).unwrap();
    assert_eq!(secrets.get("alpha").unwrap(), ALPHA);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );

    // The stallers time out and are logged.
    let lines = f.wait_audit(8);
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert!(events.contains(&"bad_request"), "{events:?}");
    assert!(events.contains(&"handshake_timeout"), "{events:?}");
    assert!(events.contains(&"request_timeout"), "{events:?}");
    assert!(events.contains(&"handshake_refused"), "{events:?}");
    assert!(events.contains(&"ward"), "{events:?}");
    drop(silent);
    drop(g);

    // And it still serves afterwards.
    let secrets = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["beta"]).unwrap();
    assert_eq!(secrets.get("beta").unwrap(), BETA);
    f.assert_no_secret_logged();
}

#[test]
fn more_half_open_connections_than_the_limit_only_delay_until_timeout() {
    let f = Fixture::with_limits("");
    // max_connections = 8: fill every slot with silent connections; the next client waits for a
    // handshake timeout (1.5 s) and is then served.
    let silent: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(f.addr()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let id = f.identity(ENCLAVE_A, 2);
    let secrets = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha"]).unwrap();
    assert_eq!(secrets.get("alpha").unwrap(), ALPHA);
    drop(silent);
}

#[test]
fn oversized_requests_are_refused() {
    let f = Fixture::new();
    let id = f.identity(ENCLAVE_A, 2);
    let (long, long2) = ("x".repeat(3000), "y".repeat(3000));
    let err = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &[&long, &long2]).unwrap_err();
    match &err {
        Error::RequestRejected { reason, .. } => {
            assert!(reason.contains("4096"), "{reason}");
        }
        other => panic!("expected a rejected request, got {other}"),
    }
    // A huge count is refused before anything is read.
    let mut s = f.raw_tls(Some(&id));
    let mut req = WARD_REQUEST.to_vec();
    req.extend_from_slice(&u32::MAX.to_be_bytes());
    s.write_all(&req).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert_eq!(buf[0], 3, "status RequestRejected");
    // A secret named twice (the answer would repeat it) is refused as a whole: nothing granted.
    let mut s = f.raw_tls(Some(&id));
    let mut req = WARD_REQUEST.to_vec();
    req.extend_from_slice(&3u32.to_be_bytes());
    for name in ["beta", "alpha", "beta"] {
        req.extend_from_slice(&(name.len() as u16).to_be_bytes());
        req.extend_from_slice(name.as_bytes());
    }
    s.write_all(&req).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert_eq!(buf[0], 3, "status RequestRejected");
    assert!(
        String::from_utf8_lossy(&buf[5..]).contains("\"beta\" more than once"),
        "{buf:?}"
    );
    let lines = f.wait_audit(3);
    assert!(lines.iter().all(|l| l["event"] == "bad_request"));
    f.assert_no_secret_logged();
}

#[test]
fn failover_to_the_next_server() {
    let f = Fixture::new();
    // A closed port first.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    let id = f.identity(ENCLAVE_A, 2);
    let secrets =
        ward_provision::fetch(&[dead.clone(), f.addr()], &f.ca_pem, &id, &["alpha"]).unwrap();
    assert_eq!(secrets.get("alpha").unwrap(), ALPHA);
    let err = ward_provision::fetch(&[dead], &f.ca_pem, &id, &["alpha"]).unwrap_err();
    assert!(matches!(err, Error::AllServersFailed(_)), "{err}");
}

#[test]
fn config_errors_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        ServerConfig::from_toml(&config_text("", "bogus = 1"), "cfg.toml", dir.path()).unwrap_err();
    let (top, cause) = (
        err.to_string(),
        std::error::Error::source(&err).unwrap().to_string(),
    );
    assert!(
        top.contains("cfg.toml") && cause.contains("bogus") && !top.contains("bogus"),
        "{top}: {cause}"
    );

    let cfg = ServerConfig::from_toml(&config_text("", ""), "cfg.toml", dir.path()).unwrap();
    assert_eq!(cfg.limits.max_request_bytes, 4096);
    assert_eq!(cfg.limits.max_connections, 8);
    let err = cfg.load_secrets().unwrap_err().to_string();
    assert!(err.contains("gamma.txt") && err.contains("`file`"), "{err}");

    write(dir.path(), "gamma.txt", GAMMA);
    write(dir.path(), "alpha.key", b"not sixteen");
    write(dir.path(), "policy-b.toml", b"allow_simulated = true\n");
    let err = cfg.load_secrets().unwrap_err().to_string();
    assert!(
        err.contains("policy-b.toml") && err.contains("`policy`"),
        "{err}"
    );
    write(
        dir.path(),
        "policy-b.toml",
        policy(&"02".repeat(33), ENCLAVE_B, 0).as_bytes(),
    );
    let err = cfg.load_secrets().unwrap_err().to_string();
    assert!(err.contains("alpha.key") && err.contains("16"), "{err}");

    let defaults = ServerConfig::from_toml(
        "listen = \"127.0.0.1:0\"\ncert_chain = \"c\"\nkey = \"k\"\naudit_log = \"a\"\n\
         [[secret]]\nname = \"s\"\nfile = \"f\"\nkind = \"key\"\npolicy = \"p\"\n",
        "d.toml",
        dir.path(),
    )
    .unwrap();
    assert_eq!(defaults.limits, ward_provision::Limits::default());
    assert_eq!(defaults.limits.max_connections, 256);
    assert_eq!(defaults.limits.handshake_timeout_ms, 5000);
    assert_eq!(defaults.limits.idle_timeout_ms, 10000);
}

#[test]
fn a_config_built_as_data_serialises_and_parses_back_to_the_same_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::one_key(
        "127.0.0.1:4433".parse().unwrap(),
        "server.pem",
        "server-key.pem",
        "audit \"log\".jsonl",
        "wrap_key",
        "secrets/wrap_key",
        "policy.toml",
        dir.path(),
    );
    config.source_name = "server.toml".into();
    config.validate().unwrap();
    let text = config.to_toml();
    let back = ServerConfig::from_toml(&text, "server.toml", dir.path()).unwrap();
    assert_eq!(back, config, "{text}");

    config.limits.max_connections = 3;
    config.secrets.push(ward_provision::SecretEntry {
        name: "token".into(),
        file: "t.txt".into(),
        kind: ward_provision::SecretKind::String,
        policy: "p2.toml".into(),
    });
    let back = ServerConfig::from_toml(&config.to_toml(), "server.toml", dir.path()).unwrap();
    assert_eq!(back, config);

    // What is built is checked as what is read.
    config.secrets[1].name = "wrap_key".into();
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("used twice") && err.contains("server.toml"),
        "{err}"
    );
}

/// Simulated evidence is trusted only while some loaded policy has `allow_simulated = true`;
/// otherwise it is refused at the handshake, and a reload recomputes it.
#[test]
fn simulated_evidence_is_refused_at_the_handshake_unless_a_policy_allows_it() {
    let f = Fixture::new();
    let id = f.identity(ENCLAVE_A, 2);
    let hex_key = f.platform.public().to_hex();
    let config_path = f.dir.path().join("provision.toml");
    let sim_a = policy(&hex_key, ENCLAVE_A, 2);
    let sim_b = policy(&hex_key, ENCLAVE_B, 0);
    // The same identities, but no policy trusts the simulated TEE.
    let strict = |p: &str| p.replace("allow_simulated = true\n", "");
    write(f.dir.path(), "policy-a.toml", strict(&sim_a).as_bytes());
    write(f.dir.path(), "policy-b.toml", strict(&sim_b).as_bytes());
    let source = ward_provision::ConfigSource::File(config_path);
    f.reloader.reload_from(&source).unwrap();
    let err = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha"]).unwrap_err();
    assert!(!err.is_refusal(), "refused after the handshake: {err}");
    let lines = f.wait_audit(1);
    assert_eq!(lines[0]["event"], "handshake_refused", "{}", lines[0]);
    assert!(
        lines[0]["reason"]
            .as_str()
            .unwrap()
            .contains("simulated evidence is not trusted"),
        "{}",
        lines[0]
    );

    // One policy allowing it is enough to turn the simulated verifier back on.
    write(f.dir.path(), "policy-b.toml", sim_b.as_bytes());
    f.reloader.reload_from(&source).unwrap();
    // alpha's policy still refuses simulated evidence, as a policy decision now.
    let err = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha"]).unwrap_err();
    assert!(err.is_refusal(), "{err}");
    write(f.dir.path(), "policy-a.toml", sim_a.as_bytes());
    f.reloader.reload_from(&source).unwrap();
    let secrets = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha"]).unwrap();
    assert_eq!(secrets.get("alpha").unwrap(), ALPHA);
}

/// Past `audit_max_bytes` the log rotates: audit.jsonl → .1 → .2, the oldest beyond
/// `audit_keep` dropped; no record is lost until then.
#[test]
fn the_audit_log_rotates_by_size_and_keeps_every_record_until_dropped() {
    let f = Fixture::with_config("audit_max_bytes = 4096\naudit_keep = 2\n", "");
    let id = f.identity(ENCLAVE_A, 2);
    let read = |name: &str| std::fs::read_to_string(f.dir.path().join(name)).unwrap_or_default();
    let mut fetched = 0;
    // Each decided request is one record of a few hundred bytes: fetch until a third file is
    // needed, so that .2 exists and nothing has been dropped yet.
    while read("audit.jsonl.2").is_empty() {
        ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha"]).unwrap();
        fetched += 1;
        assert!(fetched < 200, "no rotation after {fetched} records");
    }
    let files = ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"];
    let total: usize = files.iter().map(|n| read(n).lines().count()).sum();
    assert_eq!(total, fetched, "a record was lost in rotation");
    for n in files {
        let text = read(n);
        assert!(text.len() <= 4096, "{n} has {} bytes", text.len());
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["event"], "ward");
        }
    }
    // Keep going until .2 is replaced: there is never a .3.
    let oldest = read("audit.jsonl.2");
    while read("audit.jsonl.2") == oldest {
        ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha"]).unwrap();
    }
    assert!(!f.dir.path().join("audit.jsonl.3").exists());
    f.assert_no_secret_logged();
}

/// A flood of unauthenticated connections from one address: the first `failures_burst` are
/// logged one by one, the rest are counted (closed before the handshake once the budget is
/// spent) and written as aggregate records, so every attempt is accounted for without an audit
/// sync each; an attested client from the same address is served again once its budget refills.
#[test]
fn a_flood_of_failed_handshakes_is_logged_up_to_a_budget_then_aggregated() {
    let f = Fixture::with_limits(
        "failures_burst = 3\nfailures_per_minute = 120\nfailures_report_ms = 200\n",
    );
    const ATTEMPTS: u64 = 12;
    for _ in 0..ATTEMPTS {
        let mut s = f.raw_tls(None);
        let _ = s.write_all(GRAMINE_REQUEST);
        let mut buf = Vec::new();
        let r = s.read_to_end(&mut buf);
        assert!(r.is_err() || buf.is_empty(), "got {} bytes", buf.len());
    }
    // Poll until the aggregates are written (every 200 ms).
    let mut accounted = 0;
    let mut lines = Vec::new();
    for _ in 0..250 {
        lines = f.audit_lines();
        accounted = lines
            .iter()
            .map(|l| match l["event"].as_str().unwrap() {
                "handshake_refused" => 1,
                "failures_aggregated" => l["aggregated"]["count"].as_u64().unwrap(),
                e => panic!("unexpected event {e}: {l}"),
            })
            .sum::<u64>();
        if accounted >= ATTEMPTS {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(accounted, ATTEMPTS, "{lines:#?}");
    let individual = lines
        .iter()
        .filter(|l| l["event"] == "handshake_refused")
        .count();
    // At 2 a second, a few tokens may come back while the loop runs, never most of them.
    assert!(
        (3..ATTEMPTS as usize / 2).contains(&individual),
        "{lines:#?}"
    );
    let agg: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "failures_aggregated")
        .collect();
    assert!(!agg.is_empty());
    for a in &agg {
        assert_eq!(a["peer"], "127.0.0.1");
        let events = a["aggregated"]["events"].as_object().unwrap();
        let sum: u64 = events.values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(sum, a["aggregated"]["count"].as_u64().unwrap());
        for e in events.keys() {
            assert!(
                ["handshake_refused", "rate_limited"].contains(&e.as_str()),
                "{a}"
            );
        }
    }
    assert!(trace_text().contains("unauthenticated failures from 127.0.0.1 counted"));

    // The budget refills at 2 a second: an attested client is served within a few tries.
    let id = f.identity(ENCLAVE_A, 2);
    let mut served = None;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(250));
        if let Ok(s) = ward_provision::fetch(&f.servers(), &f.ca_pem, &id, &["alpha"]) {
            served = Some(s);
            break;
        }
    }
    assert_eq!(served.expect("never served").get("alpha").unwrap(), ALPHA);
    f.assert_no_secret_logged();
}

/// `GET /metrics` over plain HTTP on loopback; returns the status line and the body.
fn scrape(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample `series` (name and labels exactly as exported), or 0 when absent.
fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[test]
fn metrics_count_grants_refusals_by_rule_failures_and_latency_without_client_text() {
    let f = Fixture::with_config("metrics_listen = \"127.0.0.1:0\"\n", "");
    let addr = f
        .server
        .as_ref()
        .unwrap()
        .metrics_addr()
        .expect("metrics are on");
    let (status, body) = scrape(addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert_eq!(sample(&body, "ward_provision_secrets"), 3.0, "{body}");

    let good = f.identity(ENCLAVE_A, 2);
    ward_provision::fetch(&f.servers(), &f.ca_pem, &good, &["alpha", "beta"]).unwrap();
    let old = f.identity(ENCLAVE_A, 1);
    ward_provision::fetch(&f.servers(), &f.ca_pem, &old, &["alpha"]).unwrap_err();
    let client_chosen = "attacker-chosen-label-text";
    ward_provision::fetch(&f.servers(), &f.ca_pem, &good, &[client_chosen]).unwrap_err();
    let mut s = f.raw_tls(None);
    let _ = s.write_all(GRAMINE_REQUEST);
    let _ = s.read_to_end(&mut Vec::new());
    f.wait_audit(4);

    let (_, body) = scrape(addr, "/metrics");
    let d = |secret: &str, decision: &str| {
        sample(
            &body,
            &format!(
                "ward_provision_decisions_total{{secret=\"{secret}\",decision=\"{decision}\"}}"
            ),
        )
    };
    assert_eq!(d("alpha", "granted"), 1.0, "{body}");
    assert_eq!(d("beta", "granted"), 1.0, "{body}");
    assert_eq!(d("alpha", "refused"), 1.0, "{body}");
    assert_eq!(d("(unknown)", "unknown"), 1.0, "{body}");
    assert_eq!(
        sample(
            &body,
            "ward_provision_refusals_total{secret=\"alpha\",rule=\"min_isv_svn\"}"
        ),
        1.0,
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "ward_provision_failures_total{event=\"handshake_refused\"}"
        ),
        1.0,
        "{body}"
    );
    assert_eq!(
        sample(&body, "ward_provision_requests_total{protocol=\"ward\"}"),
        3.0,
        "{body}"
    );
    assert_eq!(
        sample(&body, "ward_provision_decision_seconds_count"),
        3.0,
        "{body}"
    );
    assert!(sample(&body, "ward_provision_decision_seconds_sum") > 0.0);
    assert!(!body.contains(client_chosen), "client text became a label");
    assert!(body.ends_with("# EOF\n"), "{body}");

    let (status, _) = scrape(addr, "/other");
    assert!(status.contains("404"), "{status}");
    f.assert_no_secret_logged();
    assert!(!body.contains(&hex::encode(ALPHA)));
}
