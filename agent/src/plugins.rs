//! Plugins on the agent: component binaries fetched from the hub by digest
//! (`GET /blobs/sha256:<hex>` with the agent's mutual-TLS identity) and cached in
//! `DATA_DIR/plugins/sha256/<hex>`, the agent's plugin host (for the policy checks and
//! manifest transforms it runs), and its `/metrics`.
//!
//! A cached binary is used without asking the hub again: it is addressed by its content, so
//! it never goes stale. Every read checks the digest; a damaged file is dropped and fetched
//! again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flotilla_plugin_host::{HostConfig, PluginHost, digest_of};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::AgentError;

/// The blobs this agent fetched, by digest.
#[derive(Debug)]
pub struct PluginCache {
    dir: PathBuf,
    fetched: AtomicU64,
    hits: AtomicU64,
}

/// `sha256:<64 lowercase hex>`, or why not.
fn parse_digest(digest: &str) -> Result<&str, AgentError> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
            Ok(hex)
        }
        _ => Err(AgentError::PluginBlob {
            digest: digest.to_string(),
            reason: "not a digest: expected \"sha256:\" followed by 64 lowercase hex digits".into(),
        }),
    }
}

impl PluginCache {
    /// The cache of the agent whose data directory is `data_dir`.
    pub fn new(data_dir: &Path) -> PluginCache {
        PluginCache {
            dir: data_dir.join("plugins").join("sha256"),
            fetched: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    /// The file a blob is cached in.
    pub fn path(&self, digest: &str) -> Result<PathBuf, AgentError> {
        Ok(self.dir.join(parse_digest(digest)?))
    }

    /// The cached bytes of `digest`, if present and intact (a damaged file is removed).
    pub fn cached(&self, digest: &str) -> Result<Option<Vec<u8>>, AgentError> {
        let path = self.path(digest)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AgentError::io("reading", &path)(e)),
        };
        if digest_of(&bytes) != digest {
            tracing::warn!(path = %path.display(), "dropping a damaged cached plugin blob");
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// The bytes of `digest`: from the cache, else from the hub (verified, then cached).
    pub async fn fetch(&self, hub: &kube::Client, digest: &str) -> Result<Vec<u8>, AgentError> {
        if let Some(bytes) = self.cached(digest)? {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(bytes);
        }
        let what = || format!("fetching plugin blob {digest} from the hub");
        let request = http::Request::get(format!("/blobs/{digest}"))
            .header(http::header::ACCEPT, "application/wasm, application/json")
            .body(kube::client::Body::empty())
            .map_err(|e| AgentError::Internal(format!("{}: {e}", what())))?;
        let response = hub.send(request).await.map_err(AgentError::kube(what()))?;
        let status = response.status();
        let body = response.into_body().collect_bytes().await.map_err(AgentError::kube(what()))?;
        if !status.is_success() {
            // A Kubernetes Status, as every error of the hub.
            let status = serde_json::from_slice::<kube::core::Status>(&body).unwrap_or_else(|_| {
                kube::core::Status::failure(String::from_utf8_lossy(&body).trim(), "").with_code(status.as_u16())
            });
            return Err(AgentError::kube(what())(kube::Error::Api(status.boxed())));
        }
        let actual = digest_of(&body);
        if actual != digest {
            return Err(AgentError::PluginBlob {
                digest: digest.to_string(),
                reason: format!("the hub sent {} bytes whose digest is {actual}", body.len()),
            });
        }
        let path = self.path(digest)?;
        write_atomically(&path, &body)?;
        self.fetched.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%digest, size = body.len(), "fetched a plugin blob from the hub");
        Ok(body.to_vec())
    }

    fn render(&self, out: &mut String) {
        out.push_str(&format!(
            "# HELP flotilla_agent_plugin_blob_fetches_total Plugin binaries fetched from the hub.\n\
             # TYPE flotilla_agent_plugin_blob_fetches_total counter\nflotilla_agent_plugin_blob_fetches_total {}\n\
             # HELP flotilla_agent_plugin_blob_cache_hits_total Plugin binaries read from the local cache.\n\
             # TYPE flotilla_agent_plugin_blob_cache_hits_total counter\nflotilla_agent_plugin_blob_cache_hits_total {}\n",
            self.fetched.load(Ordering::Relaxed),
            self.hits.load(Ordering::Relaxed)
        ));
    }
}

/// Temporary file beside `path`, synced, renamed into place: never a partial blob.
fn write_atomically(path: &Path, data: &[u8]) -> Result<(), AgentError> {
    use std::io::Write as _;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(AgentError::io("creating", dir))?;
    let tmp = path.with_extension(format!("tmp.{}.{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(AgentError::io("writing", path))
}

/// The agent's plugins: the blob cache and the plugin host (created on first use, its
/// compilation cache in `DATA_DIR/plugin-cache`).
#[derive(Debug)]
pub struct AgentPlugins {
    pub cache: PluginCache,
    host_cache_dir: PathBuf,
    host: Mutex<Option<Arc<PluginHost>>>,
}

impl AgentPlugins {
    pub fn new(data_dir: &Path) -> AgentPlugins {
        AgentPlugins {
            cache: PluginCache::new(data_dir),
            host_cache_dir: data_dir.join("plugin-cache"),
            host: Mutex::new(None),
        }
    }

    /// The plugin host, created now if need be (blocking: a few milliseconds).
    pub fn host(&self) -> Result<Arc<PluginHost>, AgentError> {
        let mut host = self.host.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = host.as_ref() {
            return Ok(h.clone());
        }
        let created = PluginHost::new(HostConfig::new(&self.host_cache_dir))
            .map_err(|e| AgentError::Internal(format!("starting the plugin host: {e}")))?;
        let created = Arc::new(created);
        *host = Some(created.clone());
        Ok(created)
    }

    /// `/metrics`: the plugin host's per-plugin counters (calls, latency, traps, timeouts,
    /// compilations) and the blob cache's, in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        if let Some(host) = self.host.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            out.push_str(&host.render_prometheus());
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        self.cache.render(&mut out);
        out
    }
}

/// Binds the metrics listener (`--metrics-listen`).
pub async fn bind_metrics(addr: SocketAddr) -> Result<TcpListener, AgentError> {
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "serving /metrics over plain HTTP without authentication beyond loopback");
    }
    TcpListener::bind(addr).await.map_err(|source| AgentError::MetricsListen { addr, source })
}

/// Serves `GET /metrics` (plain HTTP/1.1) until `shutdown` turns true.
pub async fn serve_metrics(listener: TcpListener, plugins: Arc<AgentPlugins>, mut shutdown: watch::Receiver<bool>) {
    use http_body_util::Full;
    use hyper::body::Bytes;

    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, _peer)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let plugins = plugins.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let plugins = plugins.clone();
                async move {
                    let (status, content_type, body) = match (req.method(), req.uri().path()) {
                        (&http::Method::GET, "/metrics") => {
                            (http::StatusCode::OK, "text/plain; version=0.0.4", plugins.render_metrics())
                        }
                        (_, "/metrics") => {
                            (http::StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n".to_string())
                        }
                        _ => (http::StatusCode::NOT_FOUND, "text/plain", "the agent serves /metrics only\n".into()),
                    };
                    let mut response = http::Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = status;
                    response
                        .headers_mut()
                        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let io = hyper_util::rt::TokioIo::new(tcp);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}
