//! HTTPS serving: rustls with optional client certificates (verified against the
//! cluster CA; CN is the user, O the groups), HTTP/1.1 and HTTP/2.
//!
//! A certificate that does not verify does not fail the handshake: like kube-apiserver,
//! the server completes it (the client still proves it holds the key) and answers every
//! request on the connection with 401 and the reason, which a client can show, instead
//! of a TLS alert it cannot explain.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::ApiServer;
use crate::auth::{ClientCert, UserInfo};

/// PEM material for serving: the server's chain and key, and the CA whose client
/// certificates are accepted.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    pub cert_pem: String,
    pub key_pem: String,
    pub client_ca_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

pub fn tls_config(material: &TlsMaterial) -> Result<rustls::ServerConfig, ServeError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(material.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| ServeError::Tls(format!("server certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(material.key_pem.as_bytes())
        .map_err(|e| ServeError::Tls(format!("server key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = client_chain_verifier(material)?;
    let verifier = Arc::new(DeferredClientVerifier { inner: verifier });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(format!("server certificate/key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves until `shutdown` resolves; then stops accepting and closes connections.
pub async fn serve_tls(
    api: Arc<ApiServer>,
    listener: TcpListener,
    material: &TlsMaterial,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let config = Arc::new(tls_config(material)?);
    let verifier = client_chain_verifier(material)?;
    let acceptor = TlsAcceptor::from(config);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let verifier = verifier.clone();
                let api = api.clone();
                connections.spawn(async move {
                    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let cert = client_cert(verifier.as_ref(), tls.get_ref().1.peer_certificates());
                    if let ClientCert::Rejected(reason) = &cert {
                        tracing::info!(%peer, %reason, "refusing a client certificate");
                    }
                    let service = hyper::service::service_fn(move |req| {
                        let api = api.clone();
                        let cert = cert.clone();
                        async move { Ok::<_, std::convert::Infallible>(api.handle(req, cert).await) }
                    });
                    if let Err(e) = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await
                    {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
                // Reap finished connection tasks so the set does not grow without bound.
                while connections.try_join_next().is_some() {}
            }
        }
    }
    connections.abort_all();
    Ok(())
}

/// Verifies client chains against the client CA. Unauthenticated TLS is allowed so that
/// anonymous requests get a proper 401 (and health checks work).
fn client_chain_verifier(material: &TlsMaterial) -> Result<Arc<dyn ClientCertVerifier>, ServeError> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(material.client_ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| ServeError::Tls(format!("client CA: {e}")))?;
        roots.add(ca).map_err(|e| ServeError::Tls(format!("client CA: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| ServeError::Tls(format!("client verifier: {e}")))
}

/// Who a connection's client certificate (if any) authenticates.
fn client_cert(verifier: &dyn ClientCertVerifier, chain: Option<&[CertificateDer<'static>]>) -> ClientCert {
    let Some((leaf, intermediates)) = chain.and_then(|chain| chain.split_first()) else {
        return ClientCert::None;
    };
    if let Err(e) = verifier.verify_client_cert(leaf, intermediates, UnixTime::now()) {
        return ClientCert::Rejected(match e {
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                "it is not signed by the hub's certificate authority".to_string()
            }
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired) => "it has expired".to_string(),
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidYet) => {
                "it is not valid yet".to_string()
            }
            other => other.to_string(),
        });
    }
    match flotilla_pki::identity_from_cert_der(leaf.as_ref()) {
        Ok(id) => ClientCert::Verified(UserInfo { name: id.user, groups: id.groups }),
        Err(e) => ClientCert::Rejected(format!("it names no usable identity: {e}")),
    }
}

/// Completes handshakes whatever certificate chain the client presents, so that the
/// chain can be judged per request ([`client_cert`]); the handshake signature, which
/// proves the client holds the certificate's key, is still checked.
#[derive(Debug)]
struct DeferredClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for DeferredClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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
