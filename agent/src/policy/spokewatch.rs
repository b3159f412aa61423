//! Re-evaluation on change: one watch per spoke kind that `watch` templates read (all
//! namespaces), shared by every policy reading it. An event after the initial list marks
//! the templates reading that kind due and queues their policies, so a change on the spoke
//! is seen at once rather than at the next watch period (which stays as a safety net).
//! Watches of kinds no template reads any more are stopped.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

use super::config::ConfigurationPolicy;
use super::engine::Engine;
use super::spec::{CONFIGURATION_POLICY, POLICY_GROUP, PolicyTemplate, WASM_POLICY};
use super::wasm::{self, WasmPolicy};
use crate::error::api_code;
use crate::util::sleep_or_shutdown;

/// A spoke kind: (apiVersion, kind).
pub(crate) type KindKey = (String, String);

/// How often the set of watched kinds is brought in line with what the templates read.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// Backoff for a kind the spoke does not serve (or discovery failing).
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The spoke kinds `template` reads: a ConfigurationPolicy's object-template kinds (plus
/// Namespaces when its namespaceSelector is used), a WasmPolicy's `spec.kinds`. A template
/// that does not parse reads nothing (it is reported, not evaluated).
pub(crate) fn reads(template: &PolicyTemplate) -> Vec<KindKey> {
    let at = template.path();
    let group = template.api_version.split_once('/').map(|(g, _)| g).unwrap_or_default();
    let mut kinds: Vec<KindKey> = match (group, template.kind.as_str()) {
        (POLICY_GROUP, CONFIGURATION_POLICY) => match ConfigurationPolicy::parse(&template.object, &at) {
            Ok(cp) => {
                let mut kinds: Vec<KindKey> =
                    cp.object_templates.iter().map(|t| (t.api_version.clone(), t.kind.clone())).collect();
                if !cp.namespace_selector.is_empty() {
                    kinds.push(("v1".into(), "Namespace".into()));
                }
                kinds
            }
            Err(_) => Vec::new(),
        },
        ("flotilla.dev", WASM_POLICY) => match WasmPolicy::parse(&template.object, &at) {
            Ok(wp) => wp.kinds.iter().map(|k| (k.api_version.clone(), k.kind.clone())).collect(),
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    };
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Keeps one watch per kind the engine's `watch` templates read until shutdown.
pub(crate) async fn run(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut running: HashMap<KindKey, AbortHandle> = HashMap::new();
    loop {
        // Reap finished watches (they only end by abort or panic) so the set stays small.
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!(cluster = %engine.cluster, error = %e, "a spoke watch panicked");
            }
        }
        let wanted: BTreeSet<KindKey> = engine.watched_kinds();
        running.retain(|kind, handle| {
            let keep = wanted.contains(kind) && !handle.is_finished();
            if !keep {
                handle.abort();
                tracing::debug!(cluster = %engine.cluster, api_version = %kind.0, kind = %kind.1, "spoke watch stopped");
            }
            keep
        });
        for kind in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(kind) {
                let kind = slot.key().clone();
                slot.insert(tasks.spawn(watch_kind(engine.clone(), kind)));
            }
        }
        if sleep_or_shutdown(RECONCILE_EVERY, &mut shutdown).await {
            // Dropping the set aborts every watch.
            return;
        }
    }
}

/// Watches one kind on the spoke, in all namespaces; runs until aborted.
async fn watch_kind(engine: Arc<Engine>, kind: KindKey) {
    let (api_version, name) = (&kind.0, &kind.1);
    let (group, version) = wasm::group_version(api_version);
    let mut backoff = MIN_BACKOFF;
    loop {
        let resolved = match engine.discovery.resolve(group, version, name).await {
            Ok(resolved) => resolved,
            Err(e) => {
                tracing::warn!(cluster = %engine.cluster, api_version = %api_version, kind = %name, error = %e,
                    retry_in = ?backoff, "cannot watch a kind policies read on the spoke; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        tracing::debug!(cluster = %engine.cluster, api_version = %api_version, kind = %name, "spoke watch started");
        let api: Api<DynamicObject> = Api::all_with(engine.spoke.clone(), &resolved.resource);
        let mut events = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
        let mut listed = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::InitDone) => {
                    backoff = MIN_BACKOFF;
                    // Changes made between the templates' last pass and this (re)list, or
                    // missed while a broken watch was down, are only in the list.
                    engine.touch(&kind);
                    listed = true;
                }
                Ok(Event::Apply(_) | Event::Delete(_)) if listed => engine.touch(&kind),
                Ok(_) => {}
                Err(e) => {
                    let gone = match &e {
                        watcher::Error::InitialListFailed(e)
                        | watcher::Error::WatchStartFailed(e)
                        | watcher::Error::WatchFailed(e) => api_code(e) == Some(404),
                        _ => false,
                    };
                    tracing::warn!(cluster = %engine.cluster, api_version = %api_version, kind = %name, error = %e,
                        "watching a kind policies read on the spoke failed; retrying");
                    // The resource went away (a CRD deleted): resolve it again, with backoff.
                    if gone {
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
