//! Hub CA pinning on first contact (docs/registration.md, "Hub CA pinning"; kubeadm's
//! discovery scheme): the hub presents `[serving certificate, CA certificate]`; the agent
//! looks for the chain certificate whose SubjectPublicKeyInfo hashes to the pinned
//! `sha256:<hex>`, verifies the serving certificate against that CA alone (signature,
//! validity, host name or IP address) and from then on trusts only that CA. Nothing is
//! trusted blindly, not even for the first request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::AgentError;

/// How long the first contact may take (connect plus handshake).
const CONTACT_TIMEOUT: Duration = Duration::from_secs(15);

/// Normalises a `--hub-ca-hash`: `sha256:` and 64 hex digits (any case) → lowercase.
pub fn parse_ca_hash(text: &str) -> Result<String, AgentError> {
    let trimmed = text.trim();
    let hex = trimmed.strip_prefix("sha256:").ok_or_else(|| AgentError::InvalidCaHash(text.to_string()))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AgentError::InvalidCaHash(text.to_string()));
    }
    Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// `sha256:<hex>` of a DER certificate's SubjectPublicKeyInfo (as `flotilla_pki::ca_hash`).
pub fn spki_hash(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| format!("unparsable certificate: {e}"))?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(cert.public_key().raw))))
}

/// What the verifier saw, for an error message better than rustls' generic one.
#[derive(Debug, Clone)]
enum Outcome {
    Matched(CertificateDer<'static>),
    Mismatch { presented: Vec<String> },
    Invalid(String),
}

/// A rustls verifier that trusts the chain certificate with the pinned SPKI hash, and
/// verifies the server against it with webpki.
#[derive(Debug)]
pub struct PinnedCaVerifier {
    expected: String,
    provider: Arc<CryptoProvider>,
    outcome: Mutex<Option<Outcome>>,
}

impl PinnedCaVerifier {
    pub fn new(expected_hash: &str, provider: Arc<CryptoProvider>) -> Result<PinnedCaVerifier, AgentError> {
        Ok(PinnedCaVerifier { expected: parse_ca_hash(expected_hash)?, provider, outcome: Mutex::new(None) })
    }

    fn record(&self, outcome: Outcome) {
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(outcome);
        }
    }

    fn outcome(&self) -> Option<Outcome> {
        self.outcome.lock().ok().and_then(|o| o.clone())
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<CertificateDer<'static>, Outcome> {
        let mut presented = Vec::new();
        let mut pinned = None;
        for cert in std::iter::once(end_entity).chain(intermediates) {
            let hash = spki_hash(cert).map_err(Outcome::Invalid)?;
            if pinned.is_none() && hash == self.expected {
                pinned = Some(cert.clone().into_owned());
            }
            presented.push(hash);
        }
        let Some(ca) = pinned else {
            return Err(Outcome::Mismatch { presented });
        };
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone())
            .map_err(|e| Outcome::Invalid(format!("the certificate with the pinned hash is not a usable CA: {e}")))?;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| Outcome::Invalid(e.to_string()))?;
        webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| Outcome::Invalid(e.to_string()))?;
        Ok(ca)
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.check(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(ca) => {
                self.record(Outcome::Matched(ca));
                Ok(ServerCertVerified::assertion())
            }
            Err(outcome) => {
                let message = match &outcome {
                    Outcome::Mismatch { presented } => format!(
                        "hub CA hash mismatch: expected {}, the hub presented {}",
                        self.expected,
                        presented.join(", ")
                    ),
                    Outcome::Invalid(reason) => reason.clone(),
                    Outcome::Matched(_) => String::new(),
                };
                self.record(outcome);
                Err(rustls::Error::General(message))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Where to connect for a hub URL: `(host, port, TLS server name)`.
pub fn hub_endpoint(url: &str) -> Result<(String, u16, ServerName<'static>), AgentError> {
    let invalid = |reason: &str| AgentError::InvalidUrl { url: url.to_string(), reason: reason.to_string() };
    let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    if uri.scheme_str() != Some("https") {
        return Err(invalid("the hub is only reachable over https://"));
    }
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| invalid("no host"))?;
    // An IPv6 literal comes bracketed in URLs but not in server names or socket addresses.
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let server_name =
        ServerName::try_from(host.clone()).map_err(|e| invalid(&format!("not a DNS name or IP address: {e}")))?;
    Ok((host, uri.port_u16().unwrap_or(443), server_name))
}

/// Connects to the hub, checks its chain against `expected_hash` and returns the pinned CA
/// certificate (PEM). Only a handshake happens: no credentials are sent to a hub that is not
/// yet trusted.
pub async fn fetch_pinned_ca(hub_url: &str, expected_hash: &str) -> Result<String, AgentError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedCaVerifier::new(expected_hash, provider.clone())?);
    let (host, port, server_name) = hub_endpoint(hub_url)?;
    let unreachable = |reason: String| AgentError::HubUnreachable { url: hub_url.to_string(), reason };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unreachable(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        connector.connect(server_name, tcp).await
    };
    let result = tokio::time::timeout(CONTACT_TIMEOUT, handshake)
        .await
        .map_err(|_| unreachable(format!("no TLS handshake within {}s", CONTACT_TIMEOUT.as_secs())))?;
    // The verifier's own account wins: it says which certificate was wrong and why.
    match (verifier.outcome(), result) {
        (Some(Outcome::Matched(ca)), Ok(mut stream)) => {
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
            Ok(pem_encode("CERTIFICATE", ca.as_ref()))
        }
        (Some(Outcome::Mismatch { presented }), _) => {
            Err(AgentError::CaHashMismatch { expected: parse_ca_hash(expected_hash)?, presented: presented.join(", ") })
        }
        (Some(Outcome::Invalid(reason)), _) => Err(AgentError::HubCertificateInvalid(reason)),
        (_, Err(e)) => Err(unreachable(e.to_string())),
        (_, Ok(_)) => Err(unreachable("the TLS handshake completed without a server certificate".to_string())),
    }
}

/// PEM with 64-column base64 lines.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_and_normalises_hashes() {
        let hex = "AB".repeat(32);
        assert_eq!(parse_ca_hash(&format!(" sha256:{hex} ")).unwrap(), format!("sha256:{}", "ab".repeat(32)));
        for bad in ["", "sha256:", "ab".repeat(32).as_str(), "sha256:abc", &format!("sha1:{}", "ab".repeat(32))] {
            assert!(matches!(parse_ca_hash(bad), Err(AgentError::InvalidCaHash(_))), "{bad}");
        }
        assert!(parse_ca_hash(&format!("sha256:{}", "zz".repeat(32))).is_err());
    }

    #[test]
    fn hashes_match_the_pki_crate() {
        let ca = flotilla_pki::CertificateAuthority::generate("test", Duration::from_secs(3600)).unwrap();
        let der = flotilla_pki::certs_from_pem(ca.cert_pem()).unwrap().remove(0);
        assert_eq!(spki_hash(&der).unwrap(), ca.ca_hash());
        assert_eq!(flotilla_pki::certs_from_pem(&pem_encode("CERTIFICATE", &der)).unwrap(), [der]);
    }

    #[test]
    fn endpoints_from_urls() {
        let (host, port, name) = hub_endpoint("https://127.0.0.1:6443").unwrap();
        assert_eq!((host.as_str(), port), ("127.0.0.1", 6443));
        assert!(matches!(name, ServerName::IpAddress(_)));
        let (host, port, name) = hub_endpoint("https://hub.example.com/").unwrap();
        assert_eq!((host.as_str(), port), ("hub.example.com", 443));
        assert!(matches!(name, ServerName::DnsName(_)));
        let (host, _, _) = hub_endpoint("https://[::1]:6443").unwrap();
        assert_eq!(host, "::1");
        assert!(hub_endpoint("http://127.0.0.1:6443").is_err());
        assert!(hub_endpoint("not a url").is_err());
    }
}
