//! A blocking client: [`fetch`] for named secrets (the ward extension), [`fetch_gramine`] for the
//! default secret (Gramine's protocol).
//!
//! The server is authenticated by its ordinary TLS certificate, checked against the CA chain
//! given (as Gramine's SECRET_PROVISION_CA_CHAIN_PATH); the client presents its RA-TLS
//! certificate. Servers are tried in order; a server's refusal is final (another server would
//! apply the same policy), a connection or TLS failure moves on to the next one.

use crate::protocol::{
    encode_ward_request, is_run_id, read_answer, read_gramine_answer, Status, GRAMINE_REQUEST,
};
use crate::{Error, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConnection, RootCertStore, StreamOwned};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use ward_ratls::RaTlsIdentity;
use zeroize::Zeroizing;

/// Time allowed to connect, and for each read or write.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Secrets by name. The bytes are zeroized when dropped; `Debug` shows names and lengths only.
#[derive(Default)]
pub struct Secrets {
    map: BTreeMap<String, Zeroizing<Vec<u8>>>,
    run_id: Option<String>,
    server: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.map
                    .iter()
                    .map(|(k, v)| (k, format!("<{} bytes, redacted>", v.len()))),
            )
            .finish()
    }
}

impl Secrets {
    /// The secret named `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.map.get(name).map(|v| v.as_slice())
    }

    /// Removes and returns the secret named `name`.
    pub fn take(&mut self, name: &str) -> Option<Zeroizing<Vec<u8>>> {
        self.map.remove(name)
    }

    /// The run id the server gave this request (the id of its audit record), if it sent one:
    /// what a run receipt names so the owner can tell this run from an older one.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// The server (`host:port`, as given) that answered, for secrets [`fetch`] returned.
    pub fn server(&self) -> Option<&str> {
        self.server.as_deref()
    }

    /// The names held.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// How many secrets are held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn tls_config(ca_chain_pem: &[u8], identity: &RaTlsIdentity) -> Result<rustls::ClientConfig> {
    let config_err = |problem: &str, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
        Error::config("CA chain", problem, source)
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_chain_pem) {
        let cert = cert.map_err(|e| config_err("is not valid PEM", Some(Box::new(e))))?;
        roots.add(cert).map_err(|e| Error::Tls {
            peer: "config".into(),
            source: e,
        })?;
    }
    if roots.is_empty() {
        return Err(config_err("has no PEM CERTIFICATE", None));
    }
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), ward_ratls::crypto_provider())
            .build()
            .map_err(|e| config_err("cannot be used to verify servers", Some(Box::new(e))))?;
    Ok(identity.client_config(verifier)?)
}

/// Splits `host:port` (or `[v6]:port`) and returns the host for SNI and certificate checks.
fn host_of(server: &str) -> Result<ServerName<'static>> {
    let host = match server.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => server,
    };
    ServerName::try_from(host.to_owned())
        .map_err(|e| Error::InvalidRequest(format!("server {server:?}: {e}; expected host:port")))
}

fn connect(
    server: &str,
    config: &Arc<rustls::ClientConfig>,
) -> Result<StreamOwned<ClientConnection, TcpStream>> {
    let name = host_of(server)?;
    let addrs = server
        .to_socket_addrs()
        .map_err(|e| Error::io(format!("resolving {server}"), e))?;
    let mut last = None;
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(s) => {
                // Small request/answer messages: without this, Nagle + delayed ACK add ~40 ms.
                let _ = s.set_nodelay(true);
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        Error::io(
            format!("connecting to {server}"),
            last.unwrap_or_else(|| std::io::Error::other("no address")),
        )
    })?;
    tcp.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| Error::io("socket timeouts", e))?;
    let conn = ClientConnection::new(config.clone(), name).map_err(|e| Error::Tls {
        peer: server.to_owned(),
        source: e,
    })?;
    Ok(StreamOwned::new(conn, tcp))
}

fn write_all(
    stream: &mut StreamOwned<ClientConnection, TcpStream>,
    bytes: &[u8],
    server: &str,
) -> Result<()> {
    stream
        .write_all(bytes)
        .and_then(|()| stream.flush())
        .map_err(|e| {
            match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls) => Error::Tls {
                    peer: server.to_owned(),
                    source: tls.clone(),
                },
                None => Error::io(format!("sending the request to {server}"), e),
            }
        })
}

fn try_servers<T>(servers: &[String], mut one: impl FnMut(&str) -> Result<T>) -> Result<T> {
    let mut errors = Vec::new();
    for server in servers {
        match one(server) {
            Ok(v) => return Ok(v),
            Err(e) if e.is_refusal() => return Err(e),
            Err(e) => {
                tracing::debug!(server = %server, error = %e, "provisioning server failed");
                errors.push((server.clone(), e));
            }
        }
    }
    Err(Error::AllServersFailed(errors))
}

/// Fetches the secrets `names` with the ward extension: from the first server in `servers`
/// (`host:port`) that answers, authenticating it with `ca_chain_pem` and presenting `identity`.
///
/// Every name must be granted: a refusal is [`Error::Refused`] (with the server's reason), an
/// unknown name [`Error::UnknownSecret`], a rejected request [`Error::RequestRejected`].
pub fn fetch(
    servers: &[String],
    ca_chain_pem: &[u8],
    identity: &RaTlsIdentity,
    names: &[&str],
) -> Result<Secrets> {
    let request = encode_ward_request(names)?;
    let config = Arc::new(tls_config(ca_chain_pem, identity)?);
    try_servers(servers, |server| {
        let mut stream = connect(server, &config)?;
        write_all(&mut stream, &request, server)?;
        let mut secrets = Secrets::default();
        let mut first_refusal = None;
        for name in names {
            let (status, body) = read_answer(&mut stream, server)?;
            let text = || String::from_utf8_lossy(&body).into_owned();
            match status {
                Status::Run => {
                    return Err(Error::Protocol {
                        peer: server.to_owned(),
                        problem: "a run id came before every name was answered".into(),
                    });
                }
                Status::Granted => {
                    secrets.map.insert((*name).to_owned(), body);
                }
                Status::Refused => {
                    first_refusal.get_or_insert(Error::Refused {
                        server: server.to_owned(),
                        name: (*name).to_owned(),
                        reason: text(),
                    });
                }
                Status::Unknown => {
                    first_refusal.get_or_insert(Error::UnknownSecret {
                        server: server.to_owned(),
                        name: (*name).to_owned(),
                        reason: text(),
                    });
                }
                Status::RequestRejected => {
                    return Err(Error::RequestRejected {
                        server: server.to_owned(),
                        reason: text(),
                    });
                }
            }
        }
        if first_refusal.is_none() {
            secrets.run_id = read_run_id(&mut stream, server)?;
            secrets.server = Some(server.to_owned());
        }
        match first_refusal {
            Some(e) => Err(e),
            None => Ok(secrets),
        }
    })
}

/// Reads the [`Status::Run`] frame after the answers; `None` if the server closed instead (a
/// server that predates it).
fn read_run_id(stream: &mut impl Read, server: &str) -> Result<Option<String>> {
    let mut first = [0u8; 1];
    loop {
        match stream.read(&mut first) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A server that closes without TLS close_notify after its answers: nothing more.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading the run id from {server}"), e)),
        }
    }
    let (status, body) = read_answer(&mut (&first[..]).chain(stream), server)?;
    if status != Status::Run || !is_run_id(&body) {
        return Err(Error::Protocol {
            peer: server.to_owned(),
            problem: format!(
                "after the answers the server sent {status:?} ({} bytes), not a run id",
                body.len()
            ),
        });
    }
    Ok(Some(String::from_utf8_lossy(&body).into_owned()))
}

/// Fetches the default secret with Gramine's protocol (what a Gramine workload gets).
///
/// Gramine's protocol cannot carry a refusal: a server that refuses closes the connection, which
/// comes back as [`Error::Protocol`] (or [`Error::AllServersFailed`] wrapping it).
pub fn fetch_gramine(
    servers: &[String],
    ca_chain_pem: &[u8],
    identity: &RaTlsIdentity,
) -> Result<Zeroizing<Vec<u8>>> {
    let config = Arc::new(tls_config(ca_chain_pem, identity)?);
    try_servers(servers, |server| {
        let mut stream = connect(server, &config)?;
        write_all(&mut stream, GRAMINE_REQUEST, server)?;
        read_gramine_answer(&mut stream, server)
    })
}

/// Splits a server list the way Gramine's SECRET_PROVISION_SERVERS is split (`,`, `;` or
/// whitespace).
pub fn parse_server_list(list: &str) -> Vec<String> {
    list.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_list() {
        assert_eq!(
            parse_server_list("a:1, b:2;c:3  d:4"),
            ["a:1", "b:2", "c:3", "d:4"]
        );
    }

    #[test]
    fn host_names() {
        assert!(host_of("localhost:4433").is_ok());
        assert!(host_of("127.0.0.1:4433").is_ok());
        assert!(host_of("[::1]:4433").is_ok());
    }

    #[test]
    fn debug_is_redacted() {
        let mut s = Secrets::default();
        s.map
            .insert("k".into(), Zeroizing::new(b"topsecret".to_vec()));
        let d = format!("{s:?}");
        assert!(!d.contains("topsecret") && d.contains("9 bytes"), "{d}");
    }
}
