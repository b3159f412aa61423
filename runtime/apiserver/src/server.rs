//! HTTPS serving: rustls with optional client certificates (verified against the
//! cluster CA; CN is the user, O the groups), HTTP/1.1 and HTTP/2.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::ApiServer;
use crate::auth::UserInfo;

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
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(material.client_ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| ServeError::Tls(format!("client CA: {e}")))?;
        roots.add(ca).map_err(|e| ServeError::Tls(format!("client CA: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Unauthenticated TLS is allowed so that anonymous requests get a proper 401
    // (and health checks work); a certificate that is presented must verify.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| ServeError::Tls(format!("client verifier: {e}")))?;
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
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(material)?));
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
                    let user = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|leaf| match flotilla_pki::identity_from_cert_der(leaf.as_ref()) {
                            Ok(id) => Some(UserInfo { name: id.user, groups: id.groups }),
                            Err(e) => {
                                tracing::warn!(%peer, error = %e, "client certificate without a usable identity");
                                None
                            }
                        });
                    let service = hyper::service::service_fn(move |req| {
                        let api = api.clone();
                        let user = user.clone();
                        async move { Ok::<_, std::convert::Infallible>(api.handle(req, user).await) }
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
