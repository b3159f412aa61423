//! The Flotilla hub: the Kubernetes-compatible API for OCM's kinds and Flotilla's own,
//! served from a data directory over HTTPS. Controllers (registration, placement,
//! work, policy, rollout) attach to the running server. Registration also decides who
//! may do what: the admin everything, bootstrap tokens only registration, agents only
//! their own cluster's objects (see docs/registration.md). Plugin binaries are blobs on the
//! same listener ([`blobs`]); `WasmPlugin` objects are validated against them on push
//! ([`plugins`]). ManifestWorks carry up to `maxManifestWorkBytes` of manifests ([`works`]).
//! Placements are scheduled by `flotilla_placement`'s controller, with Wasm filters and
//! scorers resolved from `WasmPlugin`s ([`plugins::PlacementPlugins`]), and explained at
//! `/debug/placements/<ns>/<name>` ([`placement`]). Policies are replicated to the clusters
//! their PlacementBindings place them on, and their compliance aggregated, by
//! `flotilla_policy`'s controller. ManifestWorkReplicaSets are rolled out by
//! `flotilla_rollout`'s controller, with strategy and transform plugins resolved from
//! `WasmPlugin`s ([`plugins::RolloutPlugins`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use flotilla_apiserver::DEFAULT_MAX_BODY_BYTES;
use flotilla_apiserver::host::{self, Extensions, HostOptions, Layout, RunningServer};
use flotilla_registration::{Registration, RegistrationConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub mod blobs;
pub mod placement;
pub mod plugins;
pub mod shared_pki;
pub mod work_ttl;
pub mod works;

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
    /// Largest request body; raised at start to what a ManifestWork of
    /// `maxManifestWorkBytes` needs ([`works::required_body_bytes`]) if set lower.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest total size of a ManifestWork's manifests (and of a ManifestWorkReplicaSet's
    /// template), in bytes; OCM's is 500 KiB, Flotilla's default 8 MiB.
    #[serde(default = "default_max_manifest_work_bytes")]
    pub max_manifest_work_bytes: usize,
    /// Clusters accepted without `flotilla accept`: cluster-name globs (`edge-*`) and
    /// requester identities (`system:bootstrap:<token ID>`).
    #[serde(default)]
    pub auto_accept: Vec<String>,
    /// Validity of the certificates the hub signs for agents (CSRs may ask for less).
    #[serde(default = "default_cert_validity_seconds")]
    pub cert_validity_seconds: u64,
    /// A cluster becomes unreachable when its lease is older than this many lease durations.
    #[serde(default = "default_lease_grace_factor")]
    pub lease_grace_factor: u32,
    /// Largest plugin binary `PUT /blobs/sha256:…` accepts (separate from `maxBodyBytes`).
    #[serde(default = "default_max_blob_bytes")]
    pub max_blob_bytes: u64,
}

impl HubConfig {
    /// A configuration listening on `listen` with every other setting at its default.
    pub fn new(listen: SocketAddr) -> HubConfig {
        HubConfig {
            listen,
            extra_sans: Vec::new(),
            max_body_bytes: default_max_body(),
            max_manifest_work_bytes: default_max_manifest_work_bytes(),
            auto_accept: Vec::new(),
            cert_validity_seconds: default_cert_validity_seconds(),
            lease_grace_factor: default_lease_grace_factor(),
            max_blob_bytes: default_max_blob_bytes(),
        }
    }

    /// The request body limit the hub serves with: `maxBodyBytes`, or more if a ManifestWork
    /// of `maxManifestWorkBytes` would not fit in it.
    pub fn effective_max_body_bytes(&self) -> usize {
        self.max_body_bytes.max(works::required_body_bytes(self.max_manifest_work_bytes))
    }

    fn registration(&self) -> RegistrationConfig {
        RegistrationConfig {
            auto_accept: self.auto_accept.clone(),
            cert_validity: Duration::from_secs(self.cert_validity_seconds),
            lease_grace_factor: self.lease_grace_factor,
        }
    }
}

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_max_manifest_work_bytes() -> usize {
    works::DEFAULT_MAX_MANIFEST_WORK_BYTES
}

fn default_cert_validity_seconds() -> u64 {
    flotilla_registration::DEFAULT_CERT_VALIDITY.as_secs()
}

fn default_lease_grace_factor() -> u32 {
    flotilla_registration::DEFAULT_LEASE_GRACE_FACTOR
}

fn default_max_blob_bytes() -> u64 {
    blobs::DEFAULT_MAX_BLOB_BYTES
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

/// Where a hub keeps its state.
#[derive(Debug, Clone, Default)]
pub enum HubStore {
    /// The embedded redb store in the data directory (one replica).
    #[default]
    Embedded,
    /// An etcd cluster shared by any number of replicas.
    Etcd {
        endpoints: Vec<String>,
        /// Prefix of every etcd key of this hub (several hubs can share one etcd).
        prefix: String,
    },
}

/// Default etcd key prefix of a hub.
pub const DEFAULT_ETCD_PREFIX: &str = "/flotilla/";

/// Starts the hub from an initialized data directory. `listen` overrides the configured address.
pub async fn start(data_dir: &Path, listen: Option<SocketAddr>) -> anyhow::Result<RunningServer> {
    start_with_store(data_dir, listen, HubStore::Embedded).await
}

/// A replica's connection to the shared store, before the server starts.
struct Replica {
    store: Arc<dyn flotilla_store::Store>,
    election: flotilla_store::Election,
}

/// Connects to etcd, adopts the shared CA and starts campaigning for the controllers.
async fn join_replicas(
    data_dir: &Path,
    listen: SocketAddr,
    endpoints: &[String],
    prefix: &str,
) -> anyhow::Result<Replica> {
    let options = flotilla_store::EtcdStoreOptions {
        endpoints: endpoints.to_vec(),
        prefix: prefix.to_owned(),
        ..Default::default()
    };
    let etcd = flotilla_store::EtcdStore::connect(options).await.context("connecting to etcd (--etcd-endpoints)")?;
    let client = etcd.client();
    let store: Arc<dyn flotilla_store::Store> = etcd;
    shared_pki::adopt_shared_ca(&store, data_dir).await?;
    // Unique per process, so a restarted replica is a new candidate; readable for operators.
    let identity = format!("{listen}/pid-{}", std::process::id());
    let election = flotilla_store::Election::start(
        client,
        flotilla_store::ElectionOptions::new(format!("{prefix}leader/controllers"), identity),
    );
    // Before any controller is spawned: they wait until this replica leads.
    flotilla_apiserver::controller::gate_on_leadership(&store, election.leader());
    Ok(Replica { store, election })
}

/// Starts the hub on the given store. With etcd, every replica serves the API and watches;
/// the controllers run only on the replica that holds the etcd leader lease.
pub async fn start_with_store(
    data_dir: &Path,
    listen: Option<SocketAddr>,
    store: HubStore,
) -> anyhow::Result<RunningServer> {
    let config = load_config(data_dir)?;
    if config.max_manifest_work_bytes == 0 {
        bail!("{}: maxManifestWorkBytes must be greater than 0", config_path(data_dir).display());
    }
    let max_body_bytes = config.effective_max_body_bytes();
    if max_body_bytes > config.max_body_bytes {
        tracing::warn!(
            max_body_bytes = config.max_body_bytes,
            max_manifest_work_bytes = config.max_manifest_work_bytes,
            serving_with = max_body_bytes,
            "maxBodyBytes is too small for a ManifestWork of maxManifestWorkBytes; raised"
        );
    }
    let kinds = flotilla_kinds::hub_kinds().context("loading the hub's kinds")?;
    let registration = Registration::new(config.registration())
        .with_context(|| format!("{}: registration settings", config_path(data_dir).display()))?;
    let replica = match &store {
        HubStore::Embedded => None,
        HubStore::Etcd { endpoints, prefix } => {
            let listen = listen.unwrap_or(config.listen);
            Some(join_replicas(data_dir, listen, endpoints, prefix).await?)
        }
    };
    let mut blob_store = blobs::BlobStore::open(data_dir, config.max_blob_bytes)
        .with_context(|| format!("opening the blob store in {}", data_dir.join("blobs").display()))?;
    if let Some(replica) = &replica {
        blob_store = blob_store.with_shared_store(replica.store.clone());
    }
    let blob_store = Arc::new(blob_store);
    let mirror = blob_store.clone();
    let plugins = Arc::new(plugins::HubPlugins::new(data_dir.join("plugin-cache"), blob_store.clone()));
    let placement_explainer = Arc::new(OnceLock::new());
    let options = HostOptions {
        data_dir: data_dir.to_path_buf(),
        listen: listen.unwrap_or(config.listen),
        extra_sans: config.extra_sans.clone(),
        kinds,
        admission: vec![registration.admission()],
        authorizer: registration.authorizer(),
        tokens: vec![registration.token_authenticator()],
        max_body_bytes,
        kubeconfig_path: admin_kubeconfig_path(data_dir),
        cluster_name: "flotilla".to_string(),
        seed: seed_objects(),
        store_options: Default::default(),
        version: None,
        extensions: Extensions {
            validation: vec![
                Arc::new(works::ManifestWorkSizeLimit::new(config.max_manifest_work_bytes)),
                Arc::new(plugins::WasmPluginValidation::new(plugins.clone())),
            ],
            endpoints: vec![
                Arc::new(blobs::BlobEndpoint::new(blob_store)),
                Arc::new(placement::PlacementDebugEndpoint::new(placement_explainer.clone())),
            ],
            metrics: vec![plugins.clone()],
        },
    };
    let (mut server, election) = match replica {
        None => (host::start(options).await?, None),
        Some(replica) => (host::start_with_store(options, replica.store).await?, Some(replica.election)),
    };
    let placement_plugins =
        plugins::PlacementPlugins::new(plugins.clone(), server.storage().clone()).map_err(anyhow::Error::msg)?;
    let scheduling =
        flotilla_placement::controller::PlacementController::new(server.storage().clone(), Arc::new(placement_plugins))
            .context("starting placement scheduling")?;
    let _ = placement_explainer.set(scheduling.explainer());
    server.spawn(flotilla_apiserver::controller::run(scheduling, server.storage().clone(), server.shutdown_signal()));
    let rollout_plugins =
        plugins::RolloutPlugins::new(plugins.clone(), server.storage().clone()).map_err(anyhow::Error::msg)?;
    let rollouts =
        flotilla_rollout::controller::RolloutController::new(server.storage().clone(), Arc::new(rollout_plugins))
            .context("starting ManifestWorkReplicaSet rollouts")?;
    server.spawn(flotilla_apiserver::controller::run(rollouts, server.storage().clone(), server.shutdown_signal()));
    let plugin_status =
        plugins::WasmPluginStatus::new(plugins, server.storage().clone()).map_err(anyhow::Error::msg)?;
    server.spawn(flotilla_apiserver::controller::run(
        plugin_status,
        server.storage().clone(),
        server.shutdown_signal(),
    ));
    let policies = flotilla_policy::controller::PolicyController::new(server.storage().clone())
        .context("starting policy propagation")?;
    server.spawn(flotilla_apiserver::controller::run(policies, server.storage().clone(), server.shutdown_signal()));
    let work_ttl = work_ttl::CompletedWorkCleanup::new(server.storage().clone()).map_err(anyhow::Error::msg)?;
    server.spawn(flotilla_apiserver::controller::run(work_ttl, server.storage().clone(), server.shutdown_signal()));
    let ca = Layout::new(data_dir).load_ca().context("loading the hub CA to sign agents' certificates")?;
    registration.start(&mut server, ca).context("starting registration")?;
    server.spawn(mirror.mirror(server.shutdown_signal()));
    if let Some(election) = election {
        let mut stop = server.shutdown_signal();
        server.spawn(async move {
            let _ = stop.wait_for(|stop| *stop).await;
            // Hand the controllers over at once instead of after the lease expires.
            election.resign().await;
        });
    }
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_json_without_registration_keys_loads_with_defaults() {
        let old = r#"{"listen": "127.0.0.1:6443", "extraSans": [], "maxBodyBytes": 1024}"#;
        let config: HubConfig = serde_json::from_str(old).expect("an older hub.json loads");
        assert!(config.auto_accept.is_empty());
        assert_eq!(config.cert_validity_seconds, 365 * 24 * 3600);
        assert_eq!(config.lease_grace_factor, 5);
        assert_eq!(config.max_body_bytes, 1024);
        assert_eq!(config.max_manifest_work_bytes, 8 << 20);
        assert_eq!(config.effective_max_body_bytes(), 16 << 20, "raised to fit an 8 MiB work");

        let text = serde_json::to_string(&HubConfig::new("127.0.0.1:0".parse().expect("addr"))).expect("json");
        assert_eq!(config.max_blob_bytes, 64 << 20);
        for key in ["autoAccept", "certValiditySeconds", "leaseGraceFactor", "maxBlobBytes", "maxManifestWorkBytes"] {
            assert!(text.contains(key), "{key} in {text}");
        }
        let set: HubConfig = serde_json::from_str(
            r#"{"listen": "127.0.0.1:6443", "autoAccept": ["edge-*"], "certValiditySeconds": 3600, "leaseGraceFactor": 2}"#,
        )
        .expect("hub.json");
        let bigger: HubConfig = serde_json::from_str(
            r#"{"listen": "127.0.0.1:6443", "maxBodyBytes": 67108864, "maxManifestWorkBytes": 1048576}"#,
        )
        .expect("hub.json");
        assert_eq!((bigger.max_manifest_work_bytes, bigger.effective_max_body_bytes()), (1 << 20, 64 << 20));
        let registration = set.registration();
        assert_eq!(registration.auto_accept, ["edge-*"]);
        assert_eq!(registration.cert_validity, Duration::from_secs(3600));
        assert_eq!(registration.lease_grace_factor, 2);
    }
}
