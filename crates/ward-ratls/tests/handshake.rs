//! Real TLS handshakes over loopback TCP between rustls peers using the RA-TLS verifiers.

mod common;

use common::*;
use rustls::{ClientConfig, ServerConfig};
use std::sync::Arc;
use ward_ratls::{
    client_config_without_identity, crypto_provider, EvidenceForm, RaTlsClientCertVerifier,
    RaTlsError, RaTlsIdentity, RaTlsServerCertVerifier, SimVerifier, VerificationCache,
};

fn client_verifier(attester: &Recording, mr_enclave: &[u8; 32]) -> Arc<RaTlsClientCertVerifier> {
    Arc::new(RaTlsClientCertVerifier::new(
        Arc::new(SimVerifier),
        policy(&attester.platform_hex(), mr_enclave),
    ))
}

fn server_verifier(attester: &Recording, mr_enclave: &[u8; 32]) -> Arc<RaTlsServerCertVerifier> {
    Arc::new(RaTlsServerCertVerifier::new(
        Arc::new(SimVerifier),
        policy(&attester.platform_hex(), mr_enclave),
    ))
}

/// A server with an RA-TLS identity that requires an RA-TLS client certificate.
fn mutual_server(
    attester: &Recording,
    mr_enclave: &[u8; 32],
) -> (ServerConfig, Arc<RaTlsClientCertVerifier>, RaTlsIdentity) {
    let identity = RaTlsIdentity::generate(attester, EvidenceForm::Dice).unwrap();
    let verifier = client_verifier(attester, mr_enclave);
    let config = identity
        .server_config_with_client_auth(verifier.clone())
        .unwrap();
    (config, verifier, identity)
}

#[test]
fn client_certificate_accepted_and_claims_retrievable() {
    let attester = Recording::new();
    let (server_config, verifier, server_id) = mutual_server(&attester, &MR_ENCLAVE);
    let client_id = RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap();
    let client_config = client_id
        .client_config(server_verifier(&attester, &MR_ENCLAVE))
        .unwrap();

    let (server, client) = handshake(server_config, client_config);
    let server = server.unwrap();
    let client = client.unwrap();
    assert_eq!(server.version, Some(rustls::ProtocolVersion::TLSv1_3));
    let peer = server.peer_certificates.unwrap();
    assert_eq!(peer, vec![client_id.cert_der().to_vec()]);
    assert_eq!(
        client.peer_certificates.unwrap(),
        vec![server_id.cert_der().to_vec()]
    );

    let claims = verifier.claims_for(&peer[0]).expect("claims recorded");
    assert_eq!(claims.sgx.unwrap().mr_enclave, MR_ENCLAVE);
    assert!(verifier.last_refusal_for(&peer[0]).is_none());
    assert!(verifier.last_refusal().is_none());
}

#[test]
fn client_certificate_refused_for_another_mrenclave() {
    let attester = Recording::new();
    let (server_config, verifier, _) = mutual_server(&attester, &OTHER_MR_ENCLAVE);
    let client_id = RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap();
    let client_config = client_id
        .client_config(server_verifier(&attester, &MR_ENCLAVE))
        .unwrap();

    let (server, client) = handshake(server_config, client_config);
    let server_err = server.unwrap_err();
    assert!(
        server_err.contains("ApplicationVerificationFailure"),
        "{server_err}"
    );
    let client_err = client.unwrap_err();
    assert!(client_err.contains("AccessDenied"), "{client_err}");

    let refusal = verifier
        .last_refusal_for(client_id.cert_der())
        .expect("refusal recorded");
    assert!(refusal.to_string().contains("mr_enclave"), "{refusal}");
    assert_eq!(refusal.refusal().unwrap().rule, "mr_enclave");
    assert!(verifier.claims_for(client_id.cert_der()).is_none());
    assert!(verifier
        .last_refusal()
        .unwrap()
        .to_string()
        .contains("mr_enclave"));
}

#[test]
fn client_without_certificate_is_refused() {
    let attester = Recording::new();
    let (server_config, verifier, _) = mutual_server(&attester, &MR_ENCLAVE);
    let client_config =
        client_config_without_identity(server_verifier(&attester, &MR_ENCLAVE)).unwrap();

    let (server, client) = handshake(server_config, client_config);
    let server_err = server.unwrap_err();
    assert!(server_err.contains("no certificates"), "{server_err}");
    assert!(client.is_err());
    assert!(verifier.cache().is_empty());
}

#[test]
fn client_with_plain_certificate_is_refused() {
    let attester = Recording::new();
    let (server_config, verifier, _) = mutual_server(&attester, &MR_ENCLAVE);
    let (cert, key) = plain_cert();
    let client_config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(server_verifier(&attester, &MR_ENCLAVE))
        .with_client_auth_cert(vec![cert.clone()], key)
        .unwrap();

    let (server, client) = handshake(server_config, client_config);
    let server_err = server.unwrap_err();
    assert!(
        server_err.contains("not an RA-TLS certificate"),
        "{server_err}"
    );
    assert!(client.is_err());
    let refusal = verifier.last_refusal_for(&cert).unwrap();
    assert!(matches!(*refusal, RaTlsError::NotRaTls), "{refusal}");
}

#[test]
fn server_certificate_accepted_and_claims_retrievable() {
    let attester = Recording::new();
    let server_id = RaTlsIdentity::generate(&attester, EvidenceForm::Legacy).unwrap();
    let verifier = server_verifier(&attester, &MR_ENCLAVE);
    let client_config = client_config_without_identity(verifier.clone()).unwrap();

    let (server, client) = handshake(server_id.server_config().unwrap(), client_config);
    server.unwrap();
    let client = client.unwrap();
    assert_eq!(client.version, Some(rustls::ProtocolVersion::TLSv1_3));
    let claims = verifier.claims_for(server_id.cert_der()).unwrap();
    assert_eq!(claims.sgx.unwrap().mr_enclave, MR_ENCLAVE);
}

#[test]
fn server_certificate_refused_for_another_mrenclave() {
    let attester = Recording::new();
    let server_id = RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap();
    let verifier = server_verifier(&attester, &OTHER_MR_ENCLAVE);
    let client_config = client_config_without_identity(verifier.clone()).unwrap();

    let (server, client) = handshake(server_id.server_config().unwrap(), client_config);
    let client_err = client.unwrap_err();
    assert!(
        client_err.contains("ApplicationVerificationFailure"),
        "{client_err}"
    );
    let server_err = server.unwrap_err();
    assert!(server_err.contains("AccessDenied"), "{server_err}");
    let refusal = verifier.last_refusal_for(server_id.cert_der()).unwrap();
    assert!(refusal.to_string().contains("mr_enclave"), "{refusal}");
}

#[test]
fn plain_server_certificate_is_refused() {
    let attester = Recording::new();
    let (cert, key) = plain_cert();
    let server_config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let verifier = server_verifier(&attester, &MR_ENCLAVE);
    let client_config = client_config_without_identity(verifier.clone()).unwrap();

    let (server, client) = handshake(server_config, client_config);
    let client_err = client.unwrap_err();
    assert!(
        client_err.contains("not an RA-TLS certificate"),
        "{client_err}"
    );
    assert!(server.is_err());
    assert!(matches!(
        *verifier.last_refusal_for(&cert).unwrap(),
        RaTlsError::NotRaTls
    ));
}

#[test]
fn tls12_mutual_handshake_with_rustls_key_conversions() {
    let attester = Recording::new();
    let server_id = RaTlsIdentity::generate(&attester, EvidenceForm::DiceAndLegacy).unwrap();
    let client_id = RaTlsIdentity::generate(&attester, EvidenceForm::Legacy).unwrap();
    let cache = VerificationCache::new(8);
    let client_verifier = Arc::new(
        RaTlsClientCertVerifier::new(
            Arc::new(SimVerifier),
            policy(&attester.platform_hex(), &MR_ENCLAVE),
        )
        .with_cache(cache.clone()),
    );
    let server_verifier = Arc::new(
        RaTlsServerCertVerifier::new(
            Arc::new(SimVerifier),
            policy(&attester.platform_hex(), &MR_ENCLAVE),
        )
        .with_cache(cache.clone()),
    );
    let tls12 = &[&rustls::version::TLS12];
    let server_config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(tls12)
        .unwrap()
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(vec![server_id.certificate()], server_id.private_key())
        .unwrap();
    let client_config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(tls12)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(server_verifier)
        .with_client_auth_cert(vec![client_id.certificate()], client_id.private_key())
        .unwrap();

    let (server, client) = handshake(server_config, client_config);
    assert_eq!(
        server.unwrap().version,
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        client.unwrap().version,
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    // One shared cache saw both certificates.
    assert_eq!(cache.len(), 2);
    assert!(cache.claims_for(server_id.cert_der()).is_some());
    assert!(cache.claims_for(client_id.cert_der()).is_some());
}

#[test]
fn cache_is_bounded_and_keeps_the_latest_outcome() {
    let attester = Recording::new();
    let cache = VerificationCache::new(2);
    let ids: Vec<_> = (0..3)
        .map(|_| RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap())
        .collect();
    let accept = RaTlsServerCertVerifier::new(
        Arc::new(SimVerifier),
        policy(&attester.platform_hex(), &MR_ENCLAVE),
    )
    .with_cache(cache.clone());
    let refuse = RaTlsServerCertVerifier::new(
        Arc::new(SimVerifier),
        policy(&attester.platform_hex(), &OTHER_MR_ENCLAVE),
    )
    .with_cache(cache.clone());
    use rustls::client::danger::ServerCertVerifier;
    let name = rustls::pki_types::ServerName::try_from("x.test").unwrap();
    let now = rustls::pki_types::UnixTime::now();
    for id in &ids {
        accept
            .verify_server_cert(&id.certificate(), &[], &name, &[], now)
            .unwrap();
    }
    assert_eq!(cache.len(), 2);
    assert!(cache.claims_for(ids[0].cert_der()).is_none(), "evicted");
    assert!(cache.claims_for(ids[2].cert_der()).is_some());

    // Refused now: the latest outcome replaces the acceptance.
    assert!(refuse
        .verify_server_cert(&ids[2].certificate(), &[], &name, &[], now)
        .is_err());
    assert!(cache.claims_for(ids[2].cert_der()).is_none());
    assert!(cache.last_refusal_for(ids[2].cert_der()).is_some());

    // A chain is refused: RA-TLS certificates stand alone.
    let err = accept
        .verify_server_cert(
            &ids[1].certificate(),
            &[ids[0].certificate()],
            &name,
            &[],
            now,
        )
        .unwrap_err();
    assert!(err.to_string().contains("besides its own"), "{err}");
}

/// A server that defers verification (one policy per request, as the provisioning server).
fn deferring_server(attester: &Recording) -> (ServerConfig, Arc<RaTlsClientCertVerifier>) {
    let identity = RaTlsIdentity::generate(attester, EvidenceForm::Dice).unwrap();
    let verifier = Arc::new(RaTlsClientCertVerifier::defer_verification(Arc::new(
        SimVerifier,
    )));
    let config = identity
        .server_config_with_client_auth(verifier.clone())
        .unwrap();
    (config, verifier)
}

#[test]
fn deferred_verification_accepts_a_valid_certificate_and_records_its_claims() {
    let attester = Recording::new();
    let (server_config, verifier) = deferring_server(&attester);
    assert!(verifier.policy().is_none());
    let client_id = RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap();
    let client_config = client_id
        .client_config(server_verifier(&attester, &MR_ENCLAVE))
        .unwrap();
    let (server, client) = handshake(server_config, client_config);
    let peer = server.unwrap().peer_certificates.unwrap();
    client.unwrap();
    // Nothing is verified in the handshake...
    assert!(verifier.claims_for(&peer[0]).is_none());
    // ...until the application asks; then the claims are recorded, and the policy is its own.
    let claims = verifier.verify_deferred(&peer[0]).unwrap();
    assert_eq!(claims.sgx.as_ref().unwrap().mr_enclave, MR_ENCLAVE);
    assert_eq!(verifier.claims_for(&peer[0]).as_ref(), Some(&*claims));
    let policy = policy(&attester.platform_hex(), &OTHER_MR_ENCLAVE);
    assert_eq!(policy.evaluate(&claims).unwrap_err().rule, "mr_enclave");
}

#[test]
fn deferred_verification_records_a_refusal() {
    // Evidence from a simulated platform, verified by a verifier that has no simulated one.
    let attester = Recording::new();
    let identity = RaTlsIdentity::generate(&attester, EvidenceForm::Dice).unwrap();
    let verifier =
        RaTlsClientCertVerifier::defer_verification(Arc::new(ward_ratls::AnyVerifier::default()));
    let err = verifier.verify_deferred(identity.cert_der()).unwrap_err();
    assert!(
        matches!(
            *err,
            RaTlsError::Evidence(ward_attest::Error::NoVerifier(_))
        ),
        "{err}"
    );
    let recorded = verifier.last_refusal_for(identity.cert_der()).unwrap();
    assert!(Arc::ptr_eq(&recorded, &err));
    assert!(verifier.claims_for(identity.cert_der()).is_none());

    // A certificate that is not RA-TLS is refused in the handshake itself.
    let (server_config, verifier) = deferring_server(&attester);
    let (cert, key) = plain_cert();
    let client_config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(server_verifier(&attester, &MR_ENCLAVE))
        .with_client_auth_cert(vec![cert.clone()], key)
        .unwrap();
    let (server, _) = handshake(server_config, client_config);
    assert!(server.is_err());
    assert!(matches!(
        *verifier.last_refusal_for(&cert).unwrap(),
        RaTlsError::NotRaTls
    ));
}
