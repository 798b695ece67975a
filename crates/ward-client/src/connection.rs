//! One verified TLS session with the service, and what makes them.

use crate::ClientError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ward_attest::{EvidenceVerifier, Policy, VerifiedClaims};
use ward_ratls::RaTlsServerCertVerifier;

/// One of the server's top classes.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Prediction {
    /// 1 for the most probable class.
    pub rank: usize,
    /// The class index in the model's output.
    pub index: usize,
    /// The class label.
    pub label: String,
    /// Softmax probability, 0 to 1.
    pub probability: f32,
}

#[derive(Deserialize)]
struct Classified {
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// The client's policy and evidence verifier, and its timeouts: makes [`Connection`]s.
#[derive(Clone)]
pub struct Connector {
    verifier: Arc<RaTlsServerCertVerifier>,
    timeout: Duration,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Accepts servers whose evidence `evidence` verifies and `policy` accepts. Connecting, the
    /// handshake and each answer get 30 s (see [`Connector::with_timeout`]).
    pub fn new(policy: Policy, evidence: Arc<dyn EvidenceVerifier>) -> Connector {
        Connector {
            verifier: Arc::new(RaTlsServerCertVerifier::new(evidence, policy)),
            timeout: Duration::from_secs(30),
        }
    }

    /// What most callers want: the policy read from the file `policy`; simulated evidence
    /// verified always (whether it is accepted is the policy's `allow_simulated`), and SGX/TDX
    /// DCAP evidence when `pccs` names a PCCS/PCS, its collateral cached in `cache_dir`.
    pub fn from_policy_file(
        policy: &std::path::Path,
        pccs: Option<&str>,
        cache_dir: &std::path::Path,
    ) -> Result<Connector, ClientError> {
        let policy = Policy::load(policy)?;
        let evidence =
            ward_pccs::sim_and_dcap_verifier(pccs, cache_dir).map_err(ClientError::Verifier)?;
        Ok(Connector::new(policy, Arc::new(evidence)))
    }

    /// The same, with another timeout for each step.
    pub fn with_timeout(mut self, timeout: Duration) -> Connector {
        self.timeout = timeout;
        self
    }

    /// The timeout of each step.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Connects to `server` (`HOST:PORT`) and verifies it in the TLS handshake.
    pub async fn connect(&self, server: &str) -> Result<Connection, ClientError> {
        let host = crate::host_of(server)?;
        let timeout = |what| ClientError::Timeout {
            server: server.to_owned(),
            what,
            after: self.timeout,
        };
        let tcp = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(server))
            .await
            .map_err(|_| timeout("connecting"))?
            .map_err(|source| ClientError::Connect {
                server: server.to_owned(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        // One verifier per session, remembering the certificate it was shown, so a refusal is
        // attributed to this session's server even when many sessions verify at once.
        let session = Arc::new(SessionVerifier {
            inner: self.verifier.clone(),
            seen: Mutex::new(None),
        });
        let mut config = ward_ratls::client_config_without_identity(session.clone())
            .map_err(ClientError::Tls)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // The name is not what authenticates an RA-TLS server (its evidence is); any valid one
        // will do when the host is an IP address.
        let name = ServerName::try_from(host.to_owned())
            .unwrap_or_else(|_| ServerName::try_from("ward-service").expect("a valid DNS name"));
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let handshake = tokio::time::timeout(self.timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| timeout("the TLS handshake"))?;
        let seen = session.seen.lock().map(|s| s.clone()).unwrap_or(None);
        let tls = match handshake {
            Ok(tls) => tls,
            Err(source) => {
                let reason = seen
                    .as_deref()
                    .and_then(|der| self.verifier.last_refusal_for(der));
                return Err(match reason {
                    Some(reason) => ClientError::Refused {
                        server: server.to_owned(),
                        reason,
                    },
                    None => ClientError::Handshake {
                        server: server.to_owned(),
                        source,
                    },
                });
            }
        };
        let cert_der = seen.unwrap_or_default();
        let claims = self
            .verifier
            .claims_for(&cert_der)
            .ok_or_else(|| ClientError::Response {
                server: server.to_owned(),
                problem: "the handshake completed without a verified certificate".into(),
            })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|source| ClientError::Http {
                server: server.to_owned(),
                source,
            })?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection {
            server: server.to_owned(),
            host: host.to_owned(),
            sender,
            driver,
            claims: Arc::new(claims),
            cert_der,
            timeout: self.timeout,
        })
    }
}

/// Delegates to the RA-TLS verifier, keeping the certificate the server presented.
#[derive(Debug)]
struct SessionVerifier {
    inner: Arc<RaTlsServerCertVerifier>,
    seen: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for SessionVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.to_vec());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One TLS session with a server the policy accepted (HTTP/1.1, kept alive).
pub struct Connection {
    server: String,
    host: String,
    sender: SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
    claims: Arc<VerifiedClaims>,
    cert_der: Vec<u8>,
    timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    /// What the server's evidence proved (verified in the handshake, accepted by the policy).
    pub fn claims(&self) -> &VerifiedClaims {
        &self.claims
    }

    /// The server's RA-TLS certificate (DER), as presented in the handshake.
    pub fn certificate(&self) -> &[u8] {
        &self.cert_der
    }

    /// The server, as given to [`Connector::connect`].
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Whether the session can take another request (the server has not closed it).
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends `image` to `POST /v1/classify` and returns the `top_k` most probable classes.
    pub async fn classify(
        &mut self,
        image: &[u8],
        top_k: usize,
    ) -> Result<Vec<Prediction>, ClientError> {
        let body = self
            .request(
                hyper::Method::POST,
                &format!("/v1/classify?top_k={top_k}"),
                Bytes::copy_from_slice(image),
            )
            .await?;
        let answer: Classified = self.parse(&body)?;
        Ok(answer.predictions)
    }

    /// `GET path`, as JSON.
    pub async fn get_json(&mut self, path: &str) -> Result<serde_json::Value, ClientError> {
        let body = self.request(hyper::Method::GET, path, Bytes::new()).await?;
        self.parse(&body)
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, body: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|e| ClientError::Response {
            server: self.server.clone(),
            problem: format!("the body is not the JSON the API describes: {e}"),
        })
    }

    async fn request(
        &mut self,
        method: hyper::Method,
        path: &str,
        body: Bytes,
    ) -> Result<Vec<u8>, ClientError> {
        let http = |source| ClientError::Http {
            server: self.server.clone(),
            source,
        };
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(body))
            .map_err(|e| ClientError::Response {
                server: self.server.clone(),
                problem: format!("building the request: {e}"),
            })?;
        let exchange = async {
            self.sender.ready().await.map_err(http)?;
            let response = self.sender.send_request(request).await.map_err(http)?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(http)?
                .to_bytes();
            Ok::<_, ClientError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                server: self.server.clone(),
                what: "the request",
                after: self.timeout,
            })??;
        if !status.is_success() {
            let message = match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => e.error,
                Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            };
            return Err(ClientError::Status {
                status: status.as_u16(),
                message,
            });
        }
        Ok(body.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_file_that_is_missing_or_invalid_is_named() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("no-such-policy.toml");
        let e = Connector::from_policy_file(&missing, None, d.path()).unwrap_err();
        assert!(e.to_string().contains("no-such-policy.toml"), "{e}");
        let bad = d.path().join("bad.toml");
        std::fs::write(&bad, "allow_simulated = \"yes\"\n").unwrap();
        let e = Connector::from_policy_file(&bad, None, d.path()).unwrap_err();
        assert!(matches!(e, ClientError::Policy(_)), "{e}");
        assert!(e.to_string().contains("bad.toml"), "{e}");
        let ok = d.path().join("ok.toml");
        std::fs::write(&ok, Policy::default_rules().to_toml()).unwrap();
        Connector::from_policy_file(&ok, None, d.path()).unwrap();
    }
}
