//! Governance on the spoke (OCM's governance-policy-framework-addon and
//! config-policy-controller, in the agent): the Policies the hub replicates into the
//! cluster namespace (`<rootNamespace>.<rootName>`) are watched like the works (same
//! list+watch, local copies under `DATA_DIR/policies`), and each template is evaluated on the
//! spoke on its `evaluationInterval` and whenever the policy changes:
//!
//! - [`config`]: the built-in ConfigurationPolicy (`musthave`, `mustonlyhave`,
//!   `mustnothave`, `namespaceSelector`, inform and enforce, `pruneObjectBehavior`);
//! - [`wasm`]: `WasmPolicy` (`flotilla.dev/v1alpha1`), a policy-check plugin fetched from
//!   the hub by digest, reading the spoke only through the host and only the kinds both the
//!   policy allows and the plugin declares; a refused read is reported;
//! - [`spec`]: the replica (dependencies, remediation override, intervals);
//! - status: per template `Compliant`/`NonCompliant`/`Pending` with a bounded,
//!   deduplicated history, written to the replica's status subresource only.
//!
//! `evaluationInterval` `watch` (the default) re-evaluates on change of what the template
//! reads on the spoke: one watch per kind read (all namespaces, shared by the policies
//! reading it, stopped when none does), whose events queue those policies at once; the
//! agent's policy watch period (10 s by default, [`DEFAULT_WATCH_PERIOD`]) stays as a
//! safety net. A duration re-evaluates on that period only and `never` once per change of
//! the policy (neither on spoke changes, as in OCM). Disabled policies are skipped. Enforced
//! writes use the work agent's apply machinery (`Update` strategy: create, or replace with
//! the merged object when it differs). Nothing is ever deleted because the hub cannot be
//! reached: pruning runs only for a policy or template the hub said is gone.

pub mod config;
mod engine;
pub mod spec;
mod spokewatch;
mod status;
pub mod wasm;

pub use status::{MAX_HISTORY, TemplateResult, aggregate};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::api::ApiResource;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::AgentError;
use crate::client::SharedClient;
use crate::plugins::AgentPlugins;
use crate::util::sleep_or_shutdown;
use crate::work::hubwatch::{HubStore, HubWatch, WatchedKind};
use crate::work::queue::WorkQueue;

/// How often `watch` templates are evaluated again.
pub const DEFAULT_WATCH_PERIOD: Duration = Duration::from_secs(10);
/// The directory under the agent's data directory that holds the policies' local copies.
pub const POLICIES_DIR: &str = "policies";
/// What enforced templates created, for pruning (`pruneObjectBehavior`).
pub const POLICY_STATE_DIR: &str = "policy-state";
/// Policies evaluated in parallel.
const WORKERS: usize = 4;

/// `policy.open-cluster-management.io/v1` Policies, for kube-rs dynamic APIs.
pub fn policies() -> ApiResource {
    ApiResource {
        group: spec::POLICY_GROUP.into(),
        version: "v1".into(),
        api_version: spec::POLICY_API_VERSION.into(),
        kind: "Policy".into(),
        plural: "policies".into(),
    }
}

/// What makes a policy worth evaluating again at once: not its status, which the agent writes.
fn interesting(policy: &Value) -> [Option<&Value>; 5] {
    [
        policy.get("spec"),
        policy.pointer("/metadata/deletionTimestamp"),
        policy.pointer("/metadata/generation"),
        policy.pointer("/metadata/uid"),
        policy.pointer("/metadata/labels"),
    ]
}

/// The policy agent of one cluster.
pub(crate) struct PolicyAgent {
    engine: Arc<engine::Engine>,
    shutdown: watch::Receiver<bool>,
}

impl PolicyAgent {
    /// Loads the local copies under `data_dir/policies` (an unusable directory ends the
    /// agent, as for works).
    pub fn new(
        cluster: &str,
        hub: SharedClient,
        spoke: kube::Client,
        plugins: Arc<AgentPlugins>,
        data_dir: &Path,
        watch_period: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> Result<PolicyAgent, AgentError> {
        let queue = WorkQueue::new();
        let kind = WatchedKind { resource: policies(), interesting };
        let store = Arc::new(HubStore::load(&data_dir.join(POLICIES_DIR), queue.clone(), kind)?);
        let records = engine::Records::new(&data_dir.join(POLICY_STATE_DIR))?;
        let watch_period = watch_period.max(Duration::from_millis(100));
        let engine = engine::Engine::new(cluster, hub, spoke, store, queue, plugins, watch_period, records);
        Ok(PolicyAgent { engine: Arc::new(engine), shutdown })
    }

    pub async fn run(self) {
        let engine = self.engine;
        tracing::info!(cluster = %engine.cluster, watch_period = ?engine.watch_period, "policy agent running");
        let mut tasks = JoinSet::new();
        tasks.spawn(
            HubWatch {
                cluster: engine.cluster.clone(),
                hub: engine.hub.clone(),
                store: engine.store.clone(),
                shutdown: self.shutdown.clone(),
            }
            .run(),
        );
        for _ in 0..WORKERS {
            tasks.spawn(worker(engine.clone(), self.shutdown.clone()));
        }
        tasks.spawn(resync(engine.clone(), self.shutdown.clone()));
        tasks.spawn(spokewatch::run(engine.clone(), self.shutdown.clone()));
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!(cluster = %engine.cluster, error = %e, "a policy agent task panicked");
                tasks.abort_all();
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

async fn worker(engine: Arc<engine::Engine>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let name = tokio::select! {
            name = engine.queue.next() => name,
            _ = shutdown.changed() => return,
        };
        let next = tokio::select! {
            next = engine.process(&name) => next,
            _ = shutdown.changed() => return,
        };
        engine.queue.done(&name);
        if let Some(delay) = next {
            engine.queue.add_after(&name, delay);
        }
    }
}

/// Queues every policy each watch period (templates that are not due are skipped cheaply),
/// and, once the hub has answered, the policies gone from it that left objects to prune.
async fn resync(engine: Arc<engine::Engine>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let known = engine.store.names();
        for name in &known {
            engine.queue.add(name);
        }
        if engine.store.synced() {
            for name in engine.records.policies() {
                if !known.contains(&name) {
                    engine.queue.add(&name);
                }
            }
        }
        if sleep_or_shutdown(engine.watch_period, &mut shutdown).await {
            return;
        }
    }
}
