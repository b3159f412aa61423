//! Work distribution on the spoke (OCM's work agent, docs/work.md): ManifestWorks from the
//! hub's cluster namespace are applied to the spoke, recorded in AppliedManifestWorks,
//! garbage-collected, kept free of drift, and reported back with status feedback and
//! condition rules.
//!
//! - [`hubwatch`]: list+watch of the works on the hub and their local copies on disk;
//! - [`queue`]: the deduplicating queue the workers take work names from;
//! - [`discovery`], [`manifest`], [`apply`]: resolving kinds, OCM's apply order and the
//!   update strategies;
//! - [`applied`]: AppliedManifestWorks, garbage collection and eviction;
//! - [`reconcile`]: one pass over one work; [`report`]: its status for the hub.
//!
//! A bounded pool of workers (OCM: 10) processes works; every work is processed again at
//! each resync (drift repair, status feedback), after any change from the hub, and sooner
//! while deletions are pending. The engine keeps working from the local copies while the
//! hub is unreachable, and never deletes anything because the hub cannot be reached.

mod applied;
pub(crate) mod apply;
pub mod condition;
pub(crate) mod discovery;
pub mod feedback;
pub(crate) mod hubwatch;
pub(crate) mod manifest;
pub(crate) mod queue;
mod reconcile;
mod report;
pub mod rules;

pub use hubwatch::manifest_works;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::AgentError;
use crate::client::SharedClient;
use crate::util::sleep_or_shutdown;

/// OCM's status sync interval (`--status-sync-interval`).
pub const DEFAULT_RESYNC_PERIOD: Duration = Duration::from_secs(10);
/// OCM's `--appliedmanifestwork-eviction-grace-period`.
pub const DEFAULT_EVICTION_GRACE: Duration = Duration::from_secs(60 * 60);
/// OCM's workload workers.
pub const DEFAULT_WORKERS: usize = 10;
/// The directory under the agent's data directory that holds the works' local copies.
pub const WORKS_DIR: &str = "works";
/// How often the spoke's AppliedManifestWorks are scanned for ones whose work is gone
/// (the works the agent sees vanish are handled at once; this catches the others).
const SCAN_PERIOD: Duration = Duration::from_secs(300);

/// The work engine's knobs.
#[derive(Debug, Clone)]
pub struct WorkOptions {
    /// Every work is reconciled this often (drift repair, feedback).
    pub resync: Duration,
    /// How soon a pass that is waiting for something (deletions, a conflict) runs again.
    pub retry: Duration,
    /// How long an AppliedManifestWork whose work is gone from the hub is kept.
    pub eviction_grace: Duration,
    pub workers: usize,
    pub feedback_limits: feedback::FeedbackLimits,
}

impl WorkOptions {
    pub fn new(resync: Duration, eviction_grace: Duration, workers: usize) -> WorkOptions {
        let resync = resync.max(Duration::from_millis(100));
        WorkOptions {
            resync,
            retry: resync.min(Duration::from_secs(1)),
            eviction_grace,
            workers: workers.max(1),
            feedback_limits: feedback::FeedbackLimits::default(),
        }
    }
}

/// What the workers share.
pub(crate) struct Engine {
    pub cluster: String,
    pub agent_id: String,
    pub hub_hash: String,
    pub hub: SharedClient,
    pub spoke: kube::Client,
    pub store: Arc<hubwatch::HubStore>,
    pub queue: Arc<queue::WorkQueue>,
    pub discovery: discovery::DiscoveryCache,
    pub options: WorkOptions,
}

impl Engine {
    /// Sets a work's finalizers on the hub (merge patch with the resourceVersion the list
    /// was computed from, so a concurrent change is not overwritten) and records the result.
    pub async fn patch_finalizers(&self, work: &Value, finalizers: Vec<String>) -> Result<(), AgentError> {
        let name = work.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let patch = json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": work.pointer("/metadata/resourceVersion"),
        }});
        let api: Api<DynamicObject> = Api::namespaced_with(self.hub.get(), &self.cluster, &hubwatch::manifest_works());
        match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(updated) => {
                if let Ok(updated) = serde_json::to_value(&updated) {
                    self.store.upsert(updated);
                }
                Ok(())
            }
            // Gone already: the watch will say so.
            Err(e) if crate::error::api_code(&e) == Some(404) => Ok(()),
            Err(e) => {
                Err(AgentError::kube(format!("updating the finalizers of ManifestWork {}/{name}", self.cluster))(e))
            }
        }
    }
}

/// The work agent of one cluster.
pub(crate) struct WorkAgent {
    engine: Arc<Engine>,
    shutdown: watch::Receiver<bool>,
}

impl WorkAgent {
    /// Loads the local copies under `data_dir/works` (an unusable directory ends the agent:
    /// without it, a restart while the hub is down would forget the works).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cluster: &str,
        agent_id: &str,
        hub_url: &str,
        hub: SharedClient,
        spoke: kube::Client,
        data_dir: &Path,
        options: WorkOptions,
        shutdown: watch::Receiver<bool>,
    ) -> Result<WorkAgent, AgentError> {
        let queue = queue::WorkQueue::new();
        let store = Arc::new(hubwatch::HubStore::load(
            &data_dir.join(WORKS_DIR),
            queue.clone(),
            hubwatch::WatchedKind::manifest_works(),
        )?);
        let hub_hash = applied::hub_hash(hub_url.trim_end_matches('/'));
        let engine = Engine {
            cluster: cluster.to_string(),
            agent_id: agent_id.to_string(),
            hub_hash,
            hub,
            discovery: discovery::DiscoveryCache::new(spoke.clone()),
            spoke,
            store,
            queue,
            options,
        };
        Ok(WorkAgent { engine: Arc::new(engine), shutdown })
    }

    pub async fn run(self) {
        let engine = self.engine;
        tracing::info!(cluster = %engine.cluster, hub_hash = %engine.hub_hash, workers = engine.options.workers,
            resync = ?engine.options.resync, "work agent running");
        let mut tasks = JoinSet::new();
        tasks.spawn(
            hubwatch::HubWatch {
                cluster: engine.cluster.clone(),
                hub: engine.hub.clone(),
                store: engine.store.clone(),
                shutdown: self.shutdown.clone(),
            }
            .run(),
        );
        for _ in 0..engine.options.workers {
            tasks.spawn(worker(engine.clone(), self.shutdown.clone()));
        }
        tasks.spawn(resync(engine.clone(), self.shutdown.clone()));
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!(cluster = %engine.cluster, error = %e, "a work agent task panicked");
                tasks.abort_all();
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

async fn worker(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let name = tokio::select! {
            name = engine.queue.next() => name,
            _ = shutdown.changed() => return,
        };
        let next = tokio::select! {
            next = reconcile::process(&engine, &name) => next,
            _ = shutdown.changed() => return,
        };
        engine.queue.done(&name);
        if let Some(delay) = next {
            engine.queue.add_after(&name, delay);
        }
    }
}

/// Queues every work each resync period, and scans the spoke's AppliedManifestWorks for
/// works the agent does not know (at start, once the hub first answers, then periodically).
async fn resync(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    let mut since_scan = SCAN_PERIOD;
    let mut scanned_synced = false;
    loop {
        for name in engine.store.names() {
            engine.queue.add(&name);
        }
        let first_synced_scan = engine.store.synced() && !scanned_synced;
        if since_scan >= SCAN_PERIOD || first_synced_scan {
            match applied::list_own(&engine.spoke, &engine.agent_id).await {
                Ok(own) => {
                    since_scan = Duration::ZERO;
                    scanned_synced |= engine.store.synced();
                    let prefix = format!("{}-", engine.hub_hash);
                    for applied in own {
                        match applied.name.strip_prefix(&prefix) {
                            Some(work) if engine.store.get(work).is_none() => engine.queue.add(work),
                            Some(_) => {}
                            // Recorded under another hub URL: evicted after the grace period.
                            None => engine.queue.add(&format!("{}{}", reconcile::FOREIGN_KEY_PREFIX, applied.name)),
                        }
                    }
                }
                Err(e) => tracing::debug!(cluster = %engine.cluster, error = %e, "cannot list AppliedManifestWorks"),
            }
        }
        if sleep_or_shutdown(engine.options.resync, &mut shutdown).await {
            return;
        }
        since_scan += engine.options.resync;
    }
}
