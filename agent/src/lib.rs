//! The Flotilla agent: runs beside (or inside) a managed cluster and joins it to the hub,
//! following OCM registration and docs/registration.md:
//!
//! - join ([`join`]): pin the hub CA by hash ([`pinning`]), generate a key locally, create
//!   the ManagedCluster and a CSR with a bootstrap token, wait for acceptance, keep the
//!   identity in the data directory ([`datadir`]) and use mutual TLS from then on;
//! - health: renew the Lease ([`lease`]) and report conditions, version, capacity
//!   ([`quantity`]) and ClusterClaims ([`claims`]) on the ManagedCluster ([`status`]);
//! - rotation ([`rotation`]): renew the certificate at 75–80 % of its life and swap the hub
//!   client under the running loops;
//! - work ([`work`]): apply the cluster's ManifestWorks on the spoke, record and
//!   garbage-collect them, repair drift and report their status;
//! - governance ([`policy`]): evaluate the cluster's replicated Policies on the spoke
//!   (ConfigurationPolicy, WasmPolicy plugins), enforce them, report compliance.
//!
//! It never deletes anything on its spoke because the hub is unreachable: every failure
//! towards the hub is logged and retried with backoff.
//!
//! Plugin binaries come from the hub by digest and are cached ([`plugins`]); with
//! `metrics_listen`, the agent serves its plugin host's counters on `/metrics`.
//!
//! [`run`] is the whole agent; many can run in one process (tests, benchmarks).

pub mod claims;
mod client;
pub mod csr;
pub mod datadir;
mod error;
pub mod join;
pub mod lease;
pub mod pinning;
pub mod plugins;
pub mod policy;
pub mod quantity;
pub mod rotation;
mod spoke;
pub mod status;
mod util;
pub mod work;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

pub use client::SharedClient;
pub use error::AgentError;
pub use spoke::{Spoke, SpokeSource};

/// Everything `flotilla agent join` can be told.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The hub's API URL (`https://HOST:PORT`): the first replica the agent tries, and the
    /// one its `hub.kubeconfig` and AppliedManifestWork names refer to.
    pub hub_url: String,
    /// Further replicas of the same hub (one etcd cluster, one CA), tried in order after
    /// `hub_url` when the replica in use stops answering. The agent keeps its identity and
    /// its watches' resourceVersions when it moves.
    pub fallback_hub_urls: Vec<String>,
    /// The ManagedCluster name (a DNS-1123 label).
    pub cluster_name: String,
    /// The bootstrap token (`ID.SECRET`); needed only until the agent has an identity.
    pub token: Option<String>,
    /// `sha256:<hex>` of the hub CA's public key; needed unless the data directory already
    /// holds `hub-ca.crt`.
    pub hub_ca_hash: Option<String>,
    pub spoke: SpokeSource,
    pub data_dir: PathBuf,
    /// Lease renewal period; `None`: the ManagedCluster's `spec.leaseDurationSeconds` (60 by
    /// default). When set, a ManagedCluster the agent creates gets it too, so the hub's
    /// grace matches (short durations for tests).
    pub lease_duration: Option<Duration>,
    /// `--max-custom-cluster-claims`.
    pub max_custom_cluster_claims: usize,
    /// How often health, version, capacity and claims are read and reported.
    pub status_period: Duration,
    /// How long a spoke health failure must last before Available turns False.
    pub health_grace: Duration,
    /// How often a failing spoke is probed again while that grace runs.
    pub health_retry: Duration,
    /// `spec.expirationSeconds` of the agent's CSRs (the hub's default when `None`).
    pub cert_expiration_seconds: Option<i32>,
    /// Serve `/metrics` (plain HTTP, no authentication: a loopback address) here.
    pub metrics_listen: Option<SocketAddr>,
    /// How often every ManifestWork is reconciled again: drift on the spoke is put back
    /// and status feedback refreshed at this pace (OCM `--status-sync-interval`, 10 s).
    pub work_resync_period: Duration,
    /// How long an AppliedManifestWork whose ManifestWork is gone from the hub stays before
    /// it and its resources are evicted (OCM `--appliedmanifestwork-eviction-grace-period`).
    pub applied_work_eviction_grace: Duration,
    /// Works reconciled in parallel (OCM: 10).
    pub work_workers: usize,
    /// The largest raw JSON value status feedback reports (OCM `--max-json-raw-length`,
    /// 1024); at most [`work::feedback::MAX_JSON_RAW_BYTES`]. 0 reports scalars only.
    pub max_feedback_json_bytes: usize,
    /// How often policy templates with `evaluationInterval` `watch` (the default) are
    /// evaluated again ([`policy::DEFAULT_WATCH_PERIOD`], 10 s).
    pub policy_watch_period: Duration,
}

impl AgentOptions {
    /// Every hub URL, `hub_url` first, without trailing slashes or repetitions.
    pub fn hub_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = Vec::new();
        for url in std::iter::once(&self.hub_url).chain(&self.fallback_hub_urls) {
            let url = url.trim_end_matches('/').to_string();
            if !url.is_empty() && !urls.contains(&url) {
                urls.push(url);
            }
        }
        urls
    }

    /// Options with OCM's defaults for everything not given.
    pub fn new(hub_url: &str, cluster_name: &str, data_dir: impl Into<PathBuf>, spoke: SpokeSource) -> AgentOptions {
        AgentOptions {
            hub_url: hub_url.to_string(),
            fallback_hub_urls: Vec::new(),
            cluster_name: cluster_name.to_string(),
            token: None,
            hub_ca_hash: None,
            spoke,
            data_dir: data_dir.into(),
            lease_duration: None,
            max_custom_cluster_claims: claims::DEFAULT_MAX_CUSTOM_CLAIMS,
            status_period: status::DEFAULT_STATUS_PERIOD,
            health_grace: status::DEFAULT_HEALTH_GRACE,
            health_retry: status::DEFAULT_HEALTH_RETRY,
            cert_expiration_seconds: None,
            metrics_listen: None,
            work_resync_period: work::DEFAULT_RESYNC_PERIOD,
            applied_work_eviction_grace: work::DEFAULT_EVICTION_GRACE,
            work_workers: work::DEFAULT_WORKERS,
            max_feedback_json_bytes: work::feedback::DEFAULT_MAX_JSON_RAW_BYTES,
            policy_watch_period: policy::DEFAULT_WATCH_PERIOD,
        }
    }
}

/// The default data directory of an agent: `$FLOTILLA_AGENT_DATA_DIR`, else
/// `~/.flotilla/agents/<cluster>`.
pub fn default_data_dir(cluster_name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("FLOTILLA_AGENT_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home =
        std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".flotilla").join("agents").join(cluster_name)
}

/// How long the loops get to stop after shutdown before they are dropped.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs the agent until `shutdown` resolves: joins if needed, then renews the lease,
/// reports status and rotates the certificate. Returns an error only when it cannot go on
/// (join refused or denied, CA mismatch, unusable data directory or spoke); trouble
/// reaching the hub afterwards is retried for ever.
pub async fn run(opts: AgentOptions, shutdown: impl Future<Output = ()> + Send) -> Result<(), AgentError> {
    // kube-rs builds its TLS configuration from the process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let work = run_until_stopped(opts, stop_rx);
    tokio::pin!(work);
    tokio::select! {
        result = &mut work => result,
        _ = shutdown => {
            let _ = stop_tx.send(true);
            match tokio::time::timeout(STOP_GRACE, work).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("the agent did not stop within {STOP_GRACE:?}; dropping it");
                    Ok(())
                }
            }
        }
    }
}

async fn run_until_stopped(opts: AgentOptions, mut shutdown: watch::Receiver<bool>) -> Result<(), AgentError> {
    join::validate_cluster_name(&opts.cluster_name)?;
    let data = datadir::DataDir::new(&opts.data_dir);
    data.ensure()?;
    let plugins = Arc::new(plugins::AgentPlugins::new(&opts.data_dir));
    if let Some(addr) = opts.metrics_listen {
        let listener = plugins::bind_metrics(addr).await?;
        // Started now, so that its families are on /metrics from the first scrape.
        let host = plugins.clone();
        tokio::task::spawn_blocking(move || host.host())
            .await
            .map_err(|e| AgentError::Internal(format!("starting the plugin host: {e}")))??;
        tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "serving /metrics");
        tokio::spawn(plugins::serve_metrics(listener, plugins.clone(), shutdown.clone()));
    }
    let spoke = Spoke::connect(&opts.spoke, &opts.data_dir, &opts.cluster_name).await?;
    let result = run_with_spoke(&opts, &data, &spoke, plugins, &mut shutdown).await;
    spoke.shutdown().await;
    result
}

async fn run_with_spoke(
    opts: &AgentOptions,
    data: &datadir::DataDir,
    spoke: &Spoke,
    plugins: Arc<plugins::AgentPlugins>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let Some((record, identity)) = join::ensure_identity(opts, data, spoke, shutdown).await? else {
        return Ok(());
    };
    let cluster = opts.cluster_name.clone();
    let (hub, swap) = SharedClient::connect(&identity, &cluster, &record.hub_urls).await?;
    let work_agent = work::WorkAgent::new(
        &cluster,
        &record.agent_id,
        &identity.hub_url,
        hub.clone(),
        spoke.client.clone(),
        &opts.data_dir,
        work::WorkOptions {
            feedback_limits: work::feedback::FeedbackLimits {
                max_json_raw_bytes: opts.max_feedback_json_bytes.min(work::feedback::MAX_JSON_RAW_BYTES),
            },
            ..work::WorkOptions::new(opts.work_resync_period, opts.applied_work_eviction_grace, opts.work_workers)
        },
        shutdown.clone(),
    )?;
    let policy_agent = policy::PolicyAgent::new(
        &cluster,
        hub.clone(),
        spoke.client.clone(),
        plugins,
        &opts.data_dir,
        opts.policy_watch_period,
        shutdown.clone(),
    )?;
    tracing::info!(cluster = %cluster, agent_id = %record.agent_id, hub = %identity.hub_url, spoke = %spoke.url,
        "agent running with mutual TLS");

    let (lease_tx, lease_rx) = watch::channel(opts.lease_duration.unwrap_or(lease::DEFAULT_LEASE_DURATION));
    let renewed_late = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    tasks.spawn(
        lease::LeaseLoop {
            cluster: cluster.clone(),
            agent_id: record.agent_id.clone(),
            hub: hub.clone(),
            duration: lease_rx,
            renewed_late: renewed_late.clone(),
            shutdown: shutdown.clone(),
        }
        .run(),
    );
    tasks.spawn(
        status::StatusLoop {
            cluster: cluster.clone(),
            hub: hub.clone(),
            spoke: spoke.clone(),
            period: opts.status_period,
            health_retry: opts.health_retry,
            health: status::HealthTracker::new(opts.health_grace),
            max_custom_claims: opts.max_custom_cluster_claims,
            lease_override: opts.lease_duration,
            lease_duration: lease_tx,
            renewed_late,
            shutdown: shutdown.clone(),
        }
        .run(),
    );
    tasks.spawn(work_agent.run());
    tasks.spawn(policy_agent.run());
    if record.hub_urls.len() > 1 {
        tracing::info!(cluster = %cluster, hubs = ?record.hub_urls, "hub replicas, used in this order");
        tasks.spawn(
            client::Failover {
                cluster: cluster.clone(),
                hub: hub.clone(),
                swap: swap.clone(),
                shutdown: shutdown.clone(),
            }
            .run(),
        );
    }
    tasks.spawn(
        rotation::Rotator {
            cluster: cluster.clone(),
            agent_id: record.agent_id.clone(),
            data: data.clone(),
            identity,
            hub,
            swap,
            expiration_seconds: opts.cert_expiration_seconds,
            shutdown: shutdown.clone(),
        }
        .run(),
    );
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done
            && e.is_panic()
        {
            tracing::error!(cluster = %cluster, error = %e, "an agent loop panicked; stopping the agent");
            tasks.abort_all();
            return Err(AgentError::Internal(format!("an agent loop panicked: {e}")));
        }
    }
    Ok(())
}
