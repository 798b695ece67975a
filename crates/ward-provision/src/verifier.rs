//! The handshake's client-certificate verifier: evidence and key binding only. Whether the
//! verified workload may have a secret is each secret's own policy's decision, made after the
//! handshake on the claims this verifier remembers.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use ward_attest::VerifiedClaims;
use ward_ratls::{parse_certificate, EvidenceVerifier, RaTlsError};

/// Verifies a certificate's evidence and binding (no policy).
pub(crate) fn verify_evidence(
    der: &[u8],
    evidence: &dyn EvidenceVerifier,
) -> Result<VerifiedClaims, RaTlsError> {
    let cert = parse_certificate(der)?;
    let claims = evidence.verify(cert.quote())?;
    cert.check_binding(&claims.report_data)?;
    Ok(claims)
}

#[derive(Debug)]
pub(crate) struct EvidenceOnlyVerifier {
    evidence: Arc<dyn EvidenceVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
    capacity: usize,
    /// Claims of recently accepted certificates, keyed by SHA-256 of the DER; oldest first.
    accepted: Mutex<VecDeque<([u8; 32], Arc<VerifiedClaims>)>>,
}

impl EvidenceOnlyVerifier {
    pub(crate) fn new(evidence: Arc<dyn EvidenceVerifier>, capacity: usize) -> Self {
        EvidenceOnlyVerifier {
            evidence,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            capacity: capacity.max(1),
            accepted: Mutex::new(VecDeque::new()),
        }
    }

    /// The verified claims of a certificate presented in a handshake: from the cache of recently
    /// verified certificates, or verified now (blocking: call it off the async workers).
    pub(crate) fn claims_for(&self, der: &[u8]) -> Result<Arc<VerifiedClaims>, RaTlsError> {
        let key: [u8; 32] = Sha256::digest(der).into();
        {
            let cache = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, c)) = cache.iter().rev().find(|(k, _)| *k == key) {
                return Ok(c.clone());
            }
        }
        let claims = verify_evidence(der, self.evidence.as_ref())?;
        self.remember(der, claims.clone());
        Ok(Arc::new(claims))
    }

    fn remember(&self, der: &[u8], claims: VerifiedClaims) {
        let key: [u8; 32] = Sha256::digest(der).into();
        let mut cache = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|(k, _)| *k != key);
        while cache.len() >= self.capacity {
            cache.pop_front();
        }
        cache.push_back((key, Arc::new(claims)));
    }
}

impl ClientCertVerifier for EvidenceOnlyVerifier {
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
        // Only the form is checked here; the evidence (which may need collateral from a PCCS)
        // is verified after the handshake on a blocking thread, so it never stalls the async
        // workers. The handshake itself proves the client holds the certificate's key, and no
        // secret is released before the evidence is verified.
        let result = if intermediates.is_empty() {
            parse_certificate(end_entity).map(drop)
        } else {
            Err(RaTlsError::UnexpectedChain(intermediates.len()))
        };
        match result {
            Ok(()) => Ok(ClientCertVerified::assertion()),
            Err(e) => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(e)),
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
