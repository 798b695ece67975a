//! A tiny HTTP/1.1 server on loopback serving PCCS-shaped responses built from a test vector's
//! collateral files, and recording the paths it was asked for.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One canned response.
#[derive(Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Leave out Content-Length: the body ends when the connection closes.
    pub no_length: bool,
}

impl Reply {
    pub(crate) fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            no_length: false,
        }
    }

    pub(crate) fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            no_length: false,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// The server: one thread accepting connections one at a time, one request per connection.
pub(crate) struct Server {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub(crate) fn start(routes: HashMap<String, Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let routes = Arc::new(Mutex::new(routes));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (r, q) = (routes.clone(), requests.clone());
        // Detached: it blocks in accept() until the test process exits.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve_one(stream, &r, &q);
            }
        });
        Server {
            addr,
            routes,
            requests,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request targets (path and query) seen so far, in order.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    pub(crate) fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    pub(crate) fn edit(&self, path: &str, f: impl FnOnce(&mut Reply)) {
        f(self
            .routes
            .lock()
            .unwrap()
            .get_mut(path)
            .expect("known route"));
    }
}

fn serve_one(
    stream: TcpStream,
    routes: &Mutex<HashMap<String, Reply>>,
    requests: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    requests.lock().unwrap().push(target.to_string());
    let reply = if method != "GET" {
        Reply::status(405, "GET only")
    } else {
        routes
            .lock()
            .unwrap()
            .get(target)
            .cloned()
            .unwrap_or_else(|| Reply::status(404, "no such route"))
    };
    let mut out = stream;
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    if !reply.no_length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(&reply.body)?;
    out.flush()
}

/// A test vector of ward-attest.
pub(crate) struct Vector {
    pub dir: PathBuf,
    pub tee: &'static str,
    pub fmspc: &'static str,
    pub ca: &'static str,
}

impl Vector {
    pub(crate) fn sgx() -> Vector {
        Vector::named("sgx-v3-automata-swhardening", "sgx", "00606A000000")
    }

    pub(crate) fn tdx() -> Vector {
        Vector::named("tdx-v4-phala-uptodate", "tdx", "B0C06F000000")
    }

    fn named(name: &str, tee: &'static str, fmspc: &'static str) -> Vector {
        Vector {
            dir: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../ward-attest/tests/data")
                .join(name),
            tee,
            fmspc,
            ca: "platform",
        }
    }

    pub(crate) fn quote(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("quote.bin")).unwrap()
    }

    pub(crate) fn expected(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("expected.json")).unwrap())
            .unwrap()
    }

    pub(crate) fn verify_at(&self) -> u64 {
        self.expected()["verify_at_unix"].as_u64().unwrap()
    }

    /// The end of the validity window dcap-qvl found (the earliest expiry of any piece).
    pub(crate) fn valid_until(&self) -> String {
        self.expected()["valid_window_utc"][1]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join("collateral").join(name)).unwrap()
    }

    fn text(&self, name: &str) -> String {
        String::from_utf8(self.file(name))
            .unwrap()
            .trim_end()
            .to_string()
    }

    pub(crate) fn path_pck_crl(&self) -> String {
        format!("/sgx/certification/v4/pckcrl?ca={}&encoding=der", self.ca)
    }

    pub(crate) fn path_tcb(&self) -> String {
        format!("/{}/certification/v4/tcb?fmspc={}", self.tee, self.fmspc)
    }

    pub(crate) fn path_qe(&self) -> String {
        format!("/{}/certification/v4/qe/identity", self.tee)
    }

    pub(crate) fn path_root_crl(&self) -> String {
        "/sgx/certification/v4/rootcacrl".to_string()
    }

    /// The four paths a fetch asks for, in order.
    pub(crate) fn paths(&self) -> Vec<String> {
        vec![
            self.path_pck_crl(),
            self.path_tcb(),
            self.path_qe(),
            self.path_root_crl(),
        ]
    }

    pub(crate) fn tcb_body(&self) -> String {
        format!(
            r#"{{"tcbInfo":{},"signature":"{}"}}"#,
            self.text("tcb_info.json"),
            self.text("tcb_info.signature.hex")
        )
    }

    /// PCCS-shaped routes. `hex_crls`: serve the CRLs as hex text (as some PCCS versions do)
    /// rather than DER.
    pub(crate) fn routes(&self, hex_crls: bool) -> HashMap<String, Reply> {
        let crl = |name: &str| {
            if hex_crls {
                hex::encode(self.file(name)).into_bytes()
            } else {
                self.file(name)
            }
        };
        let qe_body = format!(
            r#"{{"enclaveIdentity":{},"signature":"{}"}}"#,
            self.text("qe_identity.json"),
            self.text("qe_identity.signature.hex")
        );
        HashMap::from([
            (
                self.path_pck_crl(),
                Reply::ok(crl("pck_crl.der")).header(
                    "SGX-PCK-CRL-Issuer-Chain",
                    &url_encode(&self.text("pck_crl_issuer_chain.pem")),
                ),
            ),
            (
                self.path_tcb(),
                Reply::ok(self.tcb_body())
                    .header("Content-Type", "application/json")
                    .header(
                        "TCB-Info-Issuer-Chain",
                        &url_encode(&self.text("tcb_info_issuer_chain.pem")),
                    ),
            ),
            (
                self.path_qe(),
                Reply::ok(qe_body).header(
                    "SGX-Enclave-Identity-Issuer-Chain",
                    &url_encode(&self.text("qe_identity_issuer_chain.pem")),
                ),
            ),
            (self.path_root_crl(), Reply::ok(crl("root_ca_crl.der"))),
        ])
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (as Intel PCS does).
pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The error of a result whose success type has no `Debug` (collateral).
pub(crate) fn err<T>(r: Result<T, ward_pccs::Error>) -> ward_pccs::Error {
    match r {
        Ok(_) => panic!("expected an error, got success"),
        Err(e) => e,
    }
}
