//! Hub CA pinning against TLS servers of our own making: the right hash is accepted, a
//! wrong one refused with a message that names both hashes, and chains that lack the
//! pinned CA, that it did not sign, or that name another host are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use flotilla_agent::AgentError;
use flotilla_agent::pinning::fetch_pinned_ca;
use flotilla_pki::{CertificateAuthority, certs_from_pem};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Serves TLS on 127.0.0.1 with `chain_pem` and `key_pem` until the test ends; returns the
/// URL.
async fn serve(chain_pem: String, key_pem: String) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let chain: Vec<CertificateDer<'static>> =
        certs_from_pem(&chain_pem).unwrap().into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            // Handshake failures are what these tests provoke; nothing to do with them here.
            tokio::spawn(async move { drop(acceptor.accept(tcp).await) });
        }
    });
    format!("https://{addr}")
}

fn server_cert(ca: &CertificateAuthority, san: &str) -> (String, String) {
    let issued = ca.issue_server_cert(&[san.to_string()], DAY).unwrap();
    (issued.cert_pem, issued.key_pem)
}

#[tokio::test]
async fn the_right_hash_pins_the_ca_in_the_chain() {
    let ca = CertificateAuthority::generate("hub-ca", DAY).unwrap();
    let (leaf, key) = server_cert(&ca, "127.0.0.1");
    let url = serve(format!("{leaf}{}", ca.cert_pem()), key).await;

    let pinned = fetch_pinned_ca(&url, &ca.ca_hash()).await.expect("the pinned CA is accepted");
    assert_eq!(certs_from_pem(&pinned).unwrap(), certs_from_pem(ca.cert_pem()).unwrap());
    // Upper-case hex is the same pin.
    let upper = format!("sha256:{}", ca.ca_hash().trim_start_matches("sha256:").to_uppercase());
    assert!(fetch_pinned_ca(&url, &upper).await.is_ok());
}

#[tokio::test]
async fn a_wrong_hash_is_refused_with_both_hashes() {
    let ca = CertificateAuthority::generate("hub-ca", DAY).unwrap();
    let other = CertificateAuthority::generate("someone-else", DAY).unwrap();
    let (leaf, key) = server_cert(&ca, "127.0.0.1");
    let url = serve(format!("{leaf}{}", ca.cert_pem()), key).await;

    let err = fetch_pinned_ca(&url, &other.ca_hash()).await.expect_err("a wrong hash must be refused");
    assert!(matches!(err, AgentError::CaHashMismatch { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("hub CA hash mismatch: expected {}, the hub presented sha256:", other.ca_hash())),
        "{message}"
    );
    assert!(message.contains(&ca.ca_hash()), "the CA the hub presented is named: {message}");
}

#[tokio::test]
async fn a_chain_without_the_pinned_ca_is_refused() {
    let ca = CertificateAuthority::generate("hub-ca", DAY).unwrap();
    let (leaf, key) = server_cert(&ca, "127.0.0.1");
    // The server presents only its own certificate: the CA the hash names is not there,
    // and the agent must not fall back to trusting anything else.
    let url = serve(leaf, key).await;
    let err = fetch_pinned_ca(&url, &ca.ca_hash()).await.expect_err("no pinned CA in the chain");
    assert!(matches!(err, AgentError::CaHashMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("hub CA hash mismatch"), "{err}");
}

#[tokio::test]
async fn a_pinned_ca_that_did_not_sign_the_server_is_refused() {
    let ca = CertificateAuthority::generate("hub-ca", DAY).unwrap();
    let attacker = CertificateAuthority::generate("attacker", DAY).unwrap();
    // The attacker appends the real CA certificate (public) to its own server certificate.
    let (leaf, key) = server_cert(&attacker, "127.0.0.1");
    let url = serve(format!("{leaf}{}", ca.cert_pem()), key).await;
    let err = fetch_pinned_ca(&url, &ca.ca_hash()).await.expect_err("the pinned CA did not sign the server");
    assert!(matches!(err, AgentError::HubCertificateInvalid(_)), "{err:?}");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    let ca = CertificateAuthority::generate("hub-ca", DAY).unwrap();
    let (leaf, key) = server_cert(&ca, "hub.example.com");
    let url = serve(format!("{leaf}{}", ca.cert_pem()), key).await;
    let err = fetch_pinned_ca(&url, &ca.ca_hash()).await.expect_err("127.0.0.1 is not hub.example.com");
    assert!(matches!(err, AgentError::HubCertificateInvalid(_)), "{err:?}");
}

#[tokio::test]
async fn malformed_hashes_and_urls_are_refused_before_connecting() {
    let err = fetch_pinned_ca("https://127.0.0.1:1", "sha256:abc").await.unwrap_err();
    assert!(matches!(err, AgentError::InvalidCaHash(_)), "{err:?}");
    let hash = format!("sha256:{}", "ab".repeat(32));
    let err = fetch_pinned_ca("http://127.0.0.1:1", &hash).await.unwrap_err();
    assert!(matches!(err, AgentError::InvalidUrl { .. }), "{err:?}");
}
