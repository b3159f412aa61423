//! Running a server from a data directory: its PKI on disk (CA, serving certificate,
//! an admin kubeconfig), the embedded store, the built-in controllers (garbage
//! collection, CRDs, compaction) and HTTPS. The hub and the simulated spoke are both
//! a `host::start` with their own kinds, admission and authorization.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flotilla_apimachinery::ResourceDef;
use flotilla_pki::{CertificateAuthority, Kubeconfig};
use flotilla_store::{RedbStore, RedbStoreOptions, Store};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::admission::{Admission, ValidatingAdmission};
use crate::auth::{Authorizer, MASTERS_GROUP, TokenAuthenticators};
use crate::builtin::builtin_admission;
use crate::endpoint::Endpoint;
use crate::metrics::MetricsSource;
use crate::registry::Registry;
use crate::server::{TlsMaterial, serve_tls};
use crate::storage::{Storage, WriteOptions};
use crate::{ApiServer, ServerConfig};

const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// The admin identity written into the admin kubeconfig.
pub const ADMIN_USER: &str = "flotilla-admin";

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error("PKI: {0}")]
    Pki(#[from] flotilla_pki::PkiError),
    #[error("store: {0}")]
    Store(#[from] flotilla_store::StoreError),
    #[error("kinds: {0}")]
    Kinds(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("serving: {0}")]
    Serve(#[from] crate::server::ServeError),
    #[error("seeding {what}: {detail}")]
    Seed { what: String, detail: String },
}

/// Where a server keeps its files.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: impl Into<PathBuf>) -> Layout {
        Layout { dir: dir.into() }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("pki/ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("pki/ca.key")
    }
    pub fn serving_cert(&self) -> PathBuf {
        self.dir.join("pki/serving.crt")
    }
    pub fn serving_key(&self) -> PathBuf {
        self.dir.join("pki/serving.key")
    }
    pub fn admin_cert(&self) -> PathBuf {
        self.dir.join("pki/admin.crt")
    }
    pub fn admin_key(&self) -> PathBuf {
        self.dir.join("pki/admin.key")
    }
    pub fn store(&self) -> PathBuf {
        self.dir.join("store.redb")
    }
    pub fn is_initialized(&self) -> bool {
        self.ca_cert().exists() && self.ca_key().exists()
    }
    /// The CA from `pki/`, with its key (the hub signs agents' certificates with it).
    pub fn load_ca(&self) -> Result<CertificateAuthority, HostError> {
        Ok(CertificateAuthority::from_pem(&read(&self.ca_cert())?, &read(&self.ca_key())?)?)
    }
    /// What the server presents in TLS: its certificate followed by the CA certificate.
    /// Agents pin the hub CA by the hash of its public key (`--hub-ca-hash`), so the CA
    /// must be in the presented chain (kubeadm's discovery works the same way).
    pub fn serving_chain(&self) -> Result<String, HostError> {
        let mut chain = read(&self.serving_cert())?;
        if !chain.ends_with('\n') {
            chain.push('\n');
        }
        chain.push_str(&read(&self.ca_cert())?);
        Ok(chain)
    }
}

fn read(path: &Path) -> Result<String, HostError> {
    std::fs::read_to_string(path).map_err(|e| HostError::File { path: path.to_path_buf(), detail: e.to_string() })
}

fn write_private(path: &Path, contents: &str) -> Result<(), HostError> {
    flotilla_pki::write_private_file_atomically(path, contents.as_bytes())
        .map_err(|e| HostError::File { path: path.to_path_buf(), detail: e.to_string() })
}

/// Names for the server certificate: loopback, the host name, the listen address and extras.
fn serving_names(listen: &SocketAddr, extra: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            names.push(host.to_lowercase());
        }
    }
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(extra.iter().cloned());
    names.dedup();
    names
}

/// Creates the CA, serving certificate and admin certificate if they do not exist yet.
/// Returns the CA. Existing material is kept, so re-running is safe.
pub fn ensure_pki(
    layout: &Layout,
    listen: &SocketAddr,
    extra_sans: &[String],
) -> Result<CertificateAuthority, HostError> {
    std::fs::create_dir_all(layout.dir.join("pki"))
        .map_err(|e| HostError::File { path: layout.dir.join("pki"), detail: e.to_string() })?;
    let ca = if layout.is_initialized() {
        CertificateAuthority::from_pem(&read(&layout.ca_cert())?, &read(&layout.ca_key())?)?
    } else {
        let ca = CertificateAuthority::generate("flotilla-ca", CA_VALIDITY)?;
        write_private(&layout.ca_key(), ca.key_pem())?;
        write_private(&layout.ca_cert(), ca.cert_pem())?;
        ca
    };
    if !layout.serving_cert().exists() || !layout.serving_key().exists() {
        let serving = ca.issue_server_cert(&serving_names(listen, extra_sans), CERT_VALIDITY)?;
        write_private(&layout.serving_key(), &serving.key_pem)?;
        write_private(&layout.serving_cert(), &serving.cert_pem)?;
    }
    if !layout.admin_cert().exists() || !layout.admin_key().exists() {
        let admin = ca.issue_client_cert(ADMIN_USER, &[MASTERS_GROUP.to_string()], CERT_VALIDITY)?;
        write_private(&layout.admin_key(), &admin.key_pem)?;
        write_private(&layout.admin_cert(), &admin.cert_pem)?;
    }
    Ok(ca)
}

/// The URL clients use for a listen address (a wildcard address is reached on loopback).
pub fn server_url(addr: &SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { addr.ip() };
    match ip {
        IpAddr::V4(v4) => format!("https://{v4}:{}", addr.port()),
        IpAddr::V6(v6) => format!("https://[{v6}]:{}", addr.port()),
    }
}

/// Writes the admin kubeconfig (client certificate in `system:masters`) for `url`.
pub fn write_admin_kubeconfig(layout: &Layout, path: &Path, cluster_name: &str, url: &str) -> Result<(), HostError> {
    let kubeconfig = Kubeconfig::for_client_cert(
        cluster_name,
        url,
        &read(&layout.ca_cert())?,
        &read(&layout.admin_cert())?,
        &read(&layout.admin_key())?,
        ADMIN_USER,
    );
    kubeconfig.write(path)?;
    Ok(())
}

/// Everything that makes one server.
pub struct HostOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub extra_sans: Vec<String>,
    pub kinds: Vec<ResourceDef>,
    /// Admission hooks beyond the built-in ones (Namespace defaults, Secret type and stringData).
    pub admission: Vec<Arc<dyn Admission>>,
    pub authorizer: Arc<dyn Authorizer>,
    pub tokens: TokenAuthenticators,
    pub max_body_bytes: usize,
    /// Where the admin kubeconfig goes, and the cluster name inside it.
    pub kubeconfig_path: PathBuf,
    pub cluster_name: String,
    /// Objects created on start when absent (namespaces, nodes, ...), each with apiVersion and kind.
    pub seed: Vec<Value>,
    pub store_options: RedbStoreOptions,
    pub version: Option<Value>,
    /// What the server embedding this one adds: validating admission, endpoints, metrics.
    pub extensions: Extensions,
}

/// Pieces a server adds to the API machinery without this crate knowing what they are.
#[derive(Clone, Default)]
pub struct Extensions {
    /// Validating admission hooks, run after `HostOptions::admission` ([`ValidatingAdmission`]).
    pub validation: Vec<Arc<dyn ValidatingAdmission>>,
    /// Endpoints beside the resource API ([`Endpoint`]).
    pub endpoints: Vec<Arc<dyn Endpoint>>,
    /// More families on `/metrics` ([`MetricsSource`]).
    pub metrics: Vec<Arc<dyn MetricsSource>>,
}

/// A started server. Dropping it does not stop it; call `shutdown`.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub url: String,
    pub api: Arc<ApiServer>,
    pub store: Arc<dyn Store>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningServer {
    pub fn storage(&self) -> &Storage {
        &self.api.storage
    }

    /// A receiver that fires when the server shuts down (for extra controllers).
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Runs a task for the server's lifetime; it is aborted on shutdown.
    pub fn spawn(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Stops serving and the controllers, and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline => { self.tasks.abort_all(); break }
            }
        }
        // Aborted tasks drop what they hold (the store among it) only when polled once more:
        // wait for that, so that the data directory can be opened again as soon as this returns.
        while self.tasks.join_next().await.is_some() {}
    }

    /// Serves until the process is asked to stop (SIGINT/SIGTERM), then shuts down.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub async fn start(opts: HostOptions) -> Result<RunningServer, HostError> {
    let store = RedbStore::open(&Layout::new(&opts.data_dir).store(), opts.store_options.clone())?;
    start_with_store(opts, store).await
}

/// Like [`start`], on a store opened by the caller (the etcd store of a hub replica)
/// instead of the embedded one in the data directory.
pub async fn start_with_store(opts: HostOptions, store: Arc<dyn Store>) -> Result<RunningServer, HostError> {
    let layout = Layout::new(&opts.data_dir);
    ensure_pki(&layout, &opts.listen, &opts.extra_sans)?;
    let listener =
        TcpListener::bind(opts.listen).await.map_err(|source| HostError::Listen { addr: opts.listen, source })?;
    let addr = listener.local_addr().map_err(|source| HostError::Listen { addr: opts.listen, source })?;
    let url = server_url(&addr);
    write_admin_kubeconfig(&layout, &opts.kubeconfig_path, &opts.cluster_name, &url)?;

    let registry = Registry::new(opts.kinds).map_err(|e| HostError::Kinds(e.to_string()))?;
    let mut admission = builtin_admission();
    admission.extend(opts.admission);
    let storage = Storage::new(store.clone(), registry, admission).with_validation(opts.extensions.validation.clone());
    seed(&storage, &opts.seed).await?;

    let mut config = ServerConfig::new(addr.to_string());
    config.max_body_bytes = opts.max_body_bytes;
    if let Some(version) = opts.version {
        config.version = version;
    }
    let mut api = ApiServer::new(storage.clone(), opts.authorizer, config);
    api.tokens = opts.tokens;
    api.endpoints = opts.extensions.endpoints.clone();
    for source in &opts.extensions.metrics {
        api.metrics.register(source.clone());
    }
    let api = Arc::new(api);

    let (shutdown, signal) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(crate::gc::run(storage.clone(), Duration::from_secs(300), signal.clone()));
    tasks.spawn(crate::crds::run(storage.clone(), signal.clone()));
    tasks.spawn(crate::compactor::run(store.clone(), Duration::from_secs(300), signal.clone()));
    let material = TlsMaterial {
        cert_pem: layout.serving_chain()?,
        key_pem: read(&layout.serving_key())?,
        client_ca_pem: read(&layout.ca_cert())?,
    };
    // Validate TLS material before reporting the server as started.
    crate::server::tls_config(&material)?;
    let mut serve_signal = signal.clone();
    let serving_api = api.clone();
    tasks.spawn(async move {
        let stop = async move {
            let _ = serve_signal.wait_for(|stop| *stop).await;
        };
        if let Err(e) = serve_tls(serving_api, listener, &material, stop).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    tracing::info!(%url, data_dir = %opts.data_dir.display(), "serving");
    Ok(RunningServer { addr, url, api, store, shutdown, tasks })
}

async fn seed(storage: &Storage, objects: &[Value]) -> Result<(), HostError> {
    for obj in objects {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let what = format!("{kind} {}", crate::objects::meta::name(obj));
        let Some(res) = storage.registry.by_kind(api_version, kind) else {
            return Err(HostError::Seed { what, detail: format!("{api_version} {kind} is not served") });
        };
        let ns = crate::objects::meta::namespace(obj).map(str::to_string);
        let opts = WriteOptions::manager("flotilla");
        let created = match storage.create(&res, ns.as_deref(), obj.clone(), &opts).await {
            Ok(written) => written.object,
            Err(e) if e.code == 409 => continue,
            Err(e) => return Err(HostError::Seed { what, detail: e.to_string() }),
        };
        // Create drops status where it is a subresource; seeded status goes in after.
        if let Some(status) = obj.get("status").filter(|_| res.def.status_subresource) {
            let mut with_status = created;
            with_status["status"] = status.clone();
            let name = crate::objects::meta::name(obj).to_string();
            storage
                .update(&res, ns.as_deref(), &name, with_status, Some("status"), &opts)
                .await
                .map_err(|e| HostError::Seed { what, detail: e.to_string() })?;
        }
    }
    Ok(())
}
