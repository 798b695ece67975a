//! rustls integration: certificate verifiers for both sides of an RA-TLS handshake, a cache of
//! their outcomes for the application, and config helpers.

use crate::cert::{parse_certificate, RaTlsIdentity};
use crate::error::{RaTlsError, Result};
use crate::verify::{verify_certificate, verify_evidence};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, ResolvesClientCert, Resumption};
use rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert, ServerConfig};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use ward_attest::EvidenceVerifier;
use ward_attest::{Policy, VerifiedClaims};

/// The rustls crypto provider this crate uses (ring).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ---------------------------------------------------------------------------------------------
// Outcome cache

/// How many certificates' outcomes a [`VerificationCache`] keeps by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 256;

#[derive(Clone)]
enum Outcome {
    Accepted(Arc<VerifiedClaims>),
    Rejected(Arc<RaTlsError>),
}

struct CacheInner {
    capacity: usize,
    /// Oldest first; keyed by SHA-256 of the certificate DER.
    entries: VecDeque<([u8; 32], Outcome)>,
    last_refusal: Option<Arc<RaTlsError>>,
}

/// The outcomes of recent certificate verifications, so the application can learn after a
/// handshake what the peer's evidence proved, or after a failed one why it was refused.
///
/// Keyed by SHA-256 of the certificate DER; holds the latest outcome of the last `capacity`
/// distinct certificates (the oldest are forgotten first). Clones share the same cache. It only
/// reports: every handshake verifies its certificate afresh, whatever the cache holds.
#[derive(Clone)]
pub struct VerificationCache {
    inner: Arc<Mutex<CacheInner>>,
}

impl Default for VerificationCache {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_CAPACITY)
    }
}

impl fmt::Debug for VerificationCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("VerificationCache")
            .field("capacity", &inner.capacity)
            .field("entries", &inner.entries.len())
            .finish()
    }
}

impl VerificationCache {
    /// A cache remembering the outcomes of up to `capacity` certificates (at least one).
    pub fn new(capacity: usize) -> Self {
        VerificationCache {
            inner: Arc::new(Mutex::new(CacheInner {
                capacity: capacity.max(1),
                entries: VecDeque::new(),
                last_refusal: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        // A panic elsewhere while holding the lock leaves the cache consistent (every update is
        // a single push or remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, cert_der: &[u8]) -> Option<Outcome> {
        let key: [u8; 32] = Sha256::digest(cert_der).into();
        let inner = self.lock();
        inner
            .entries
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, o)| o.clone())
    }

    fn record(&self, cert_der: &[u8], outcome: Outcome) {
        let key: [u8; 32] = Sha256::digest(cert_der).into();
        let mut inner = self.lock();
        if let Outcome::Rejected(e) = &outcome {
            inner.last_refusal = Some(e.clone());
        }
        inner.entries.retain(|(k, _)| *k != key);
        while inner.entries.len() >= inner.capacity {
            inner.entries.pop_front();
        }
        inner.entries.push_back((key, outcome));
    }

    /// What the certificate's evidence proved, if its latest verification accepted it.
    pub fn claims_for(&self, cert_der: &[u8]) -> Option<VerifiedClaims> {
        match self.get(cert_der)? {
            Outcome::Accepted(c) => Some((*c).clone()),
            Outcome::Rejected(_) => None,
        }
    }

    /// Why the certificate was refused, if its latest verification refused it.
    /// [`RaTlsError::refusal`] gives the policy's reason when that was it.
    pub fn last_refusal_for(&self, cert_der: &[u8]) -> Option<Arc<RaTlsError>> {
        match self.get(cert_der)? {
            Outcome::Rejected(e) => Some(e),
            Outcome::Accepted(_) => None,
        }
    }

    /// The most recent refusal of any certificate, for when the peer's certificate is not known
    /// (a failed handshake does not expose it). With concurrent handshakes it may be another
    /// connection's.
    pub fn last_refusal(&self) -> Option<Arc<RaTlsError>> {
        self.lock().last_refusal.clone()
    }

    /// How many certificates' outcomes are held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no outcome is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ---------------------------------------------------------------------------------------------
// Verifiers

/// What both verifiers share.
#[derive(Debug)]
struct Core {
    evidence: Arc<dyn EvidenceVerifier>,
    /// `None`: verification is deferred to after the handshake (see
    /// [`RaTlsClientCertVerifier::defer_verification`]).
    policy: Option<Policy>,
    cache: VerificationCache,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Core {
    fn new(evidence: Arc<dyn EvidenceVerifier>, policy: Option<Policy>) -> Core {
        Core {
            evidence,
            policy,
            cache: VerificationCache::default(),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    fn verify(
        &self,
        peer: &'static str,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            let e = Arc::new(RaTlsError::UnexpectedChain(intermediates.len()));
            self.cache.record(end_entity, Outcome::Rejected(e.clone()));
            return Err(tls_error(e));
        }
        let Some(policy) = &self.policy else {
            // Deferred: only the form is checked now; the evidence (which may need collateral
            // from a PCCS) is verified by `verify_deferred`, off the handshake.
            return match parse_certificate(end_entity) {
                Ok(_) => Ok(()),
                Err(e) => {
                    let e = Arc::new(e);
                    self.cache.record(end_entity, Outcome::Rejected(e.clone()));
                    Err(tls_error(e))
                }
            };
        };
        let result = verify_certificate(end_entity, self.evidence.as_ref(), policy);
        self.record(peer, end_entity, result)
            .map(drop)
            .map_err(tls_error)
    }

    fn record(
        &self,
        peer: &'static str,
        cert_der: &[u8],
        result: Result<VerifiedClaims>,
    ) -> Result<Arc<VerifiedClaims>, Arc<RaTlsError>> {
        match result {
            Ok(claims) => {
                tracing::debug!(peer, tee = %claims.tee, "RA-TLS certificate accepted");
                let claims = Arc::new(claims);
                self.cache
                    .record(cert_der, Outcome::Accepted(claims.clone()));
                Ok(claims)
            }
            Err(e) => {
                tracing::warn!(peer, reason = %e, "RA-TLS certificate refused");
                let e = Arc::new(e);
                self.cache.record(cert_der, Outcome::Rejected(e.clone()));
                Err(e)
            }
        }
    }

    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

/// A policy refusal becomes `ApplicationVerificationFailure` (the peer sees `access_denied`);
/// anything else `Other`, carrying the error. The full reason is in the cache either way.
fn tls_error(e: Arc<RaTlsError>) -> rustls::Error {
    let cert_error = match *e {
        RaTlsError::Refused(_) => CertificateError::ApplicationVerificationFailure,
        _ => CertificateError::Other(OtherError(e)),
    };
    rustls::Error::InvalidCertificate(cert_error)
}

macro_rules! common_accessors {
    () => {
        /// Shares `cache` (e.g. with another verifier, or one the application already holds)
        /// instead of this verifier's own.
        pub fn with_cache(mut self, cache: VerificationCache) -> Self {
            self.core.cache = cache;
            self
        }

        /// The cache of outcomes this verifier records into.
        pub fn cache(&self) -> &VerificationCache {
            &self.core.cache
        }

        /// What the certificate's evidence proved, if its latest verification accepted it
        /// (see [`VerificationCache::claims_for`]).
        pub fn claims_for(&self, cert_der: &[u8]) -> Option<VerifiedClaims> {
            self.core.cache.claims_for(cert_der)
        }

        /// Why the certificate was refused, if its latest verification refused it
        /// (see [`VerificationCache::last_refusal_for`]).
        pub fn last_refusal_for(&self, cert_der: &[u8]) -> Option<Arc<RaTlsError>> {
            self.core.cache.last_refusal_for(cert_der)
        }

        /// The most recent refusal of any certificate (see
        /// [`VerificationCache::last_refusal`]).
        pub fn last_refusal(&self) -> Option<Arc<RaTlsError>> {
            self.core.cache.last_refusal()
        }

        /// The policy certificates are judged by in the handshake (`None` when verification
        /// is deferred).
        pub fn policy(&self) -> Option<&Policy> {
            self.core.policy.as_ref()
        }
    };
}

/// Verifies a TLS server's RA-TLS certificate (for a rustls client).
///
/// The server name is ignored: what identifies an RA-TLS server is its evidence, judged by the
/// policy. The certificate must come alone (no chain). Handshake signatures are verified with the
/// certificate's key.
#[derive(Debug)]
pub struct RaTlsServerCertVerifier {
    core: Core,
}

impl RaTlsServerCertVerifier {
    /// Verifies evidence with `evidence` and judges it by `policy`.
    pub fn new(evidence: Arc<dyn EvidenceVerifier>, policy: Policy) -> Self {
        RaTlsServerCertVerifier {
            core: Core::new(evidence, Some(policy)),
        }
    }

    common_accessors!();
}

impl ServerCertVerifier for RaTlsServerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.core.verify("server", end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.core.algorithms.supported_schemes()
    }
}

/// Verifies a TLS client's RA-TLS certificate (for a rustls server). Client authentication is
/// mandatory and no CA names are hinted.
///
/// [`RaTlsClientCertVerifier::new`] verifies the evidence and applies one policy in the
/// handshake. A server whose policy depends on what the client asks for after the handshake
/// (one policy per secret, as `ward-provision`) uses the named relaxation
/// [`RaTlsClientCertVerifier::defer_verification`] instead.
#[derive(Debug)]
pub struct RaTlsClientCertVerifier {
    core: Core,
}

impl RaTlsClientCertVerifier {
    /// Verifies evidence with `evidence` and judges it by `policy`, in the handshake.
    pub fn new(evidence: Arc<dyn EvidenceVerifier>, policy: Policy) -> Self {
        RaTlsClientCertVerifier {
            core: Core::new(evidence, Some(policy)),
        }
    }

    /// A relaxation, as rustls's `allow_unauthenticated`: the handshake accepts any
    /// well-formed, lone RA-TLS certificate without verifying its evidence or applying any
    /// policy (so evidence that needs collateral from a PCCS never stalls the handshake). The
    /// handshake still proves the client holds the certificate's key.
    ///
    /// The application must then call [`RaTlsClientCertVerifier::verify_deferred`] with the
    /// peer's certificate and apply its own policy to the claims before trusting the client
    /// with anything.
    pub fn defer_verification(evidence: Arc<dyn EvidenceVerifier>) -> Self {
        RaTlsClientCertVerifier {
            core: Core::new(evidence, None),
        }
    }

    /// Verifies a certificate's evidence and key binding, without policy, and records the
    /// outcome in the cache. A certificate the cache holds as accepted is not verified again
    /// (its evidence and key cannot have changed, since the key is the hash of the DER);
    /// anything else is verified now. Blocking (it may fetch collateral): call it off the
    /// async workers.
    pub fn verify_deferred(&self, cert_der: &[u8]) -> Result<Arc<VerifiedClaims>, Arc<RaTlsError>> {
        if let Some(Outcome::Accepted(claims)) = self.core.cache.get(cert_der) {
            return Ok(claims);
        }
        let result = verify_evidence(cert_der, self.core.evidence.as_ref());
        self.core.record("client", cert_der, result)
    }

    common_accessors!();
}

impl ClientCertVerifier for RaTlsClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.core.verify("client", end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.core.algorithms.supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------------
// Configs

/// Presents one certificate, always.
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ResolvesClientCert for OneCert {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn server_builder() -> Result<rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>> {
    Ok(ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)?)
}

fn client_builder(
    server_verifier: Arc<dyn ServerCertVerifier>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>> {
    Ok(ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(server_verifier))
}

/// No session resumption: a resumed session would skip verifying the peer's evidence again.
fn no_server_resumption(mut config: ServerConfig) -> ServerConfig {
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config
}

fn no_client_resumption(mut config: ClientConfig) -> ClientConfig {
    config.resumption = Resumption::disabled();
    config
}

/// A client config (TLS 1.2 and 1.3, ring) that verifies the server with `server_verifier`
/// (usually an [`RaTlsServerCertVerifier`]) and presents no certificate of its own. Session
/// resumption is off, so every connection verifies the server's evidence.
///
/// The server name given to rustls when connecting is not checked by [`RaTlsServerCertVerifier`];
/// any valid DNS name will do.
pub fn client_config_without_identity(
    server_verifier: Arc<dyn ServerCertVerifier>,
) -> Result<ClientConfig> {
    Ok(no_client_resumption(
        client_builder(server_verifier)?.with_no_client_auth(),
    ))
}

impl RaTlsIdentity {
    /// The certificate and a signing key for rustls (e.g. for a custom certificate resolver).
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8()));
        let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)?;
        Ok(Arc::new(CertifiedKey::new(
            vec![self.certificate()],
            signing_key,
        )))
    }

    /// A server config (TLS 1.2 and 1.3, ring) presenting this identity, without client
    /// authentication. Session resumption is off.
    pub fn server_config(&self) -> Result<ServerConfig> {
        let key = self.certified_key()?;
        Ok(no_server_resumption(
            server_builder()?
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(OneCert(key))),
        ))
    }

    /// A server config presenting this identity and requiring a client certificate accepted by
    /// `client_verifier` (usually an [`RaTlsClientCertVerifier`]): mutual RA-TLS. Session
    /// resumption is off, so every connection verifies the client's evidence.
    pub fn server_config_with_client_auth(
        &self,
        client_verifier: Arc<dyn ClientCertVerifier>,
    ) -> Result<ServerConfig> {
        let key = self.certified_key()?;
        Ok(no_server_resumption(
            server_builder()?
                .with_client_cert_verifier(client_verifier)
                .with_cert_resolver(Arc::new(OneCert(key))),
        ))
    }

    /// A client config presenting this identity and verifying the server with `server_verifier`
    /// (an [`RaTlsServerCertVerifier`] for mutual RA-TLS, or any other verifier, e.g. webpki's
    /// for a server with an ordinary certificate). Session resumption is off.
    pub fn client_config(
        &self,
        server_verifier: Arc<dyn ServerCertVerifier>,
    ) -> Result<ClientConfig> {
        let key = self.certified_key()?;
        Ok(no_client_resumption(
            client_builder(server_verifier)?.with_client_cert_resolver(Arc::new(OneCert(key))),
        ))
    }
}
