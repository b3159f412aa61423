//! The Flotilla hub: the Kubernetes-compatible API for OCM's kinds and Flotilla's own,
//! served from a data directory over HTTPS. Controllers (registration, placement,
//! work, policy, rollout) attach to the running server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use flotilla_apiserver::host::{self, HostOptions, Layout, RunningServer};
use flotilla_apiserver::{DEFAULT_MAX_BODY_BYTES, MastersOnly};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:6443";
const CONFIG_FILE: &str = "hub.json";
const KUBECONFIG_FILE: &str = "admin.kubeconfig";

/// What `hub init` records for `hub serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubConfig {
    pub listen: SocketAddr,
    #[serde(default)]
    pub extra_sans: Vec<String>,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

/// The default data directory: `$FLOTILLA_DATA_DIR`, else `~/.flotilla/hub`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLOTILLA_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home =
        std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".flotilla").join("hub")
}

pub fn admin_kubeconfig_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KUBECONFIG_FILE)
}

fn config_path(data_dir: &Path) -> PathBuf {
    data_dir.join(CONFIG_FILE)
}

pub fn load_config(data_dir: &Path) -> anyhow::Result<HubConfig> {
    let path = config_path(data_dir);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("{} not found: run `flotilla hub init --data-dir {}` first", path.display(), data_dir.display())
    })?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid hub configuration", path.display()))
}

/// Creates the data directory, the CA, the serving and admin certificates, the admin
/// kubeconfig and the hub configuration. Refuses to overwrite an initialized hub.
pub fn init(data_dir: &Path, config: &HubConfig) -> anyhow::Result<PathBuf> {
    let layout = Layout::new(data_dir);
    if config_path(data_dir).exists() {
        bail!("{} is already initialized ({} exists)", data_dir.display(), config_path(data_dir).display());
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    host::ensure_pki(&layout, &config.listen, &config.extra_sans)?;
    let kubeconfig = admin_kubeconfig_path(data_dir);
    host::write_admin_kubeconfig(&layout, &kubeconfig, "flotilla", &host::server_url(&config.listen))?;
    let text = serde_json::to_string_pretty(config)?;
    std::fs::write(config_path(data_dir), text)
        .with_context(|| format!("cannot write {}", config_path(data_dir).display()))?;
    Ok(kubeconfig)
}

/// Namespaces every hub has.
fn seed_objects() -> Vec<serde_json::Value> {
    ["default", "kube-system", "kube-public", "open-cluster-management", "open-cluster-management-hub"]
        .iter()
        .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .collect()
}

/// Starts the hub from an initialized data directory. `listen` overrides the configured address.
pub async fn start(data_dir: &Path, listen: Option<SocketAddr>) -> anyhow::Result<RunningServer> {
    let config = load_config(data_dir)?;
    let kinds = flotilla_kinds::hub_kinds().context("loading the hub's kinds")?;
    let options = HostOptions {
        data_dir: data_dir.to_path_buf(),
        listen: listen.unwrap_or(config.listen),
        extra_sans: config.extra_sans.clone(),
        kinds,
        admission: Vec::new(),
        authorizer: Arc::new(MastersOnly),
        tokens: Vec::new(),
        max_body_bytes: config.max_body_bytes,
        kubeconfig_path: admin_kubeconfig_path(data_dir),
        cluster_name: "flotilla".to_string(),
        seed: seed_objects(),
        store_options: Default::default(),
        version: None,
    };
    Ok(host::start(options).await?)
}
