//! The ManifestWorkReplicaSet controller on the hub: for each placement of a
//! ManifestWorkReplicaSet, the clusters of its PlacementDecisions get a ManifestWork named
//! like the ManifestWorkReplicaSet in their namespace, when the placement's rollout strategy
//! lets them ([`crate::cycle`]); works of clusters that left the decisions are deleted; the
//! status carries OCM's conditions and counts and the per-cluster rollout state
//! ([`crate::status`]).
//!
//! - Every template is a revision ([`crate::revisions`]); works carry the revision they hold.
//!   With `spec.rollback.automatic`, a rollout that breaches `maxFailures` (or whose strategy
//!   declares clusters failed) puts the failed clusters back on the last revision that
//!   succeeded there and stops until the template changes.
//! - `spec.manifestTransform` changes the manifests per cluster ([`crate::transform`]).
//! - Deleting the ManifestWorkReplicaSet deletes its works first (finalizer
//!   `cluster.open-cluster-management.io/manifest-work-cleanup`, as OCM); with
//!   `cascadeDeletionPolicy: Foreground` the finalizer stays until the works are gone.
//! - Level-triggered: every reconcile reads the ManifestWorkReplicaSet, its decisions, works
//!   and revisions, so a restart at any point resumes from the stored state. Strategy plugins
//!   and transforms run on a blocking thread, never on the async runtime.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_apimachinery::selector::LabelSelector;
use flotilla_apiserver::controller::Reconciler;
use flotilla_apiserver::objects::{meta, now_rfc3339};
use flotilla_apiserver::{DeleteOptions, ListOptions, Resource, Storage, WriteOptions};
use flotilla_placement::decisions::{DECISION_GROUP_INDEX_LABEL, DECISION_GROUP_NAME_LABEL, PLACEMENT_LABEL};
use flotilla_plugin_host::{ClusterInfo, OwnerRef};
use flotilla_registration::conditions::{self, Condition};
use serde_json::{Value, json};

use crate::cycle::{Cycle, Outcome, Selected, WorkView};
use crate::engine::{self, BuiltinRollout, FailurePolicy, RolloutAll, RolloutStrategy};
use crate::revisions::{self, History, Plan, Revision};
use crate::status::{self, ClusterState, Phase, PlacementOutcome, RolloutState, Summary};
use crate::strategy::{BuiltinStrategy, StrategyPlugins, build_strategy};
use crate::transform::{self, NamedPlugins, TransformRef};
use crate::types::{RolloutStatus, Strategy, StrategyError};
use crate::works::{self, CLEANUP_FINALIZER, DesiredWork, REPLICA_SET_LABEL};

/// The field manager of the controller's writes.
pub const FIELD_MANAGER: &str = "flotilla-rollout";

/// How soon a rollout whose strategy or transform plugin failed is tried again when nothing
/// else changes.
pub const RETRY_AFTER_PLUGIN_FAILURE: Duration = Duration::from_secs(30);
/// How often a `Foreground` deletion checks that its works are gone (their deletion events
/// also bring it back).
const FOREGROUND_RECHECK: Duration = Duration::from_secs(2);

/// The plugins the controller reaches: strategies (by reference) and transforms (by name).
pub trait RolloutPlugins: StrategyPlugins + NamedPlugins {}
impl<T: StrategyPlugins + NamedPlugins> RolloutPlugins for T {}

/// Why the controller cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    NotServed(#[from] flotilla_apiserver::NotServed),
}

struct Resources {
    replica_sets: Arc<Resource>,
    works: Arc<Resource>,
    decisions: Arc<Resource>,
    revisions: Arc<Resource>,
    clusters: Arc<Resource>,
    plugins: Arc<Resource>,
}

impl Resources {
    fn of(storage: &Storage) -> Result<Resources, ControllerError> {
        let get = |api_version: &str, kind: &str| storage.registry.served(api_version, kind);
        Ok(Resources {
            replica_sets: get("work.open-cluster-management.io/v1alpha1", "ManifestWorkReplicaSet")?,
            works: get(works::WORK_API_VERSION, "ManifestWork")?,
            decisions: get(flotilla_placement::decisions::API_VERSION, "PlacementDecision")?,
            revisions: get(revisions::API_VERSION, revisions::KIND)?,
            clusters: get("cluster.open-cluster-management.io/v1", "ManagedCluster")?,
            plugins: get("flotilla.dev/v1alpha1", "WasmPlugin")?,
        })
    }
}

// The order of `watches()`.
const REPLICA_SETS: usize = 0;
const WORKS: usize = 1;
const DECISIONS: usize = 2;
const PLUGINS: usize = 3;

/// What `keys_for` needs to map events to ManifestWorkReplicaSets.
#[derive(Default)]
struct Index {
    /// (namespace, placement) -> the ManifestWorkReplicaSets naming it.
    by_placement: HashMap<(String, String), BTreeSet<String>>,
    /// ManifestWorkReplicaSet key -> its placements and plugins.
    refs: HashMap<String, (Vec<String>, BTreeSet<String>)>,
    /// WasmPlugin name -> its spec, so that status updates key nothing.
    plugin_specs: HashMap<String, Value>,
    /// ManifestWorkReplicaSet key -> the resourceVersion of the controller's last status
    /// write, whose watch event needs no reconcile.
    written: HashMap<String, String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn queue_key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

/// The placements and WasmPlugins a ManifestWorkReplicaSet names.
fn references(obj: &Value) -> (Vec<String>, BTreeSet<String>) {
    let refs = obj.pointer("/spec/placementRefs").and_then(Value::as_array);
    let mut placements = Vec::new();
    let mut plugins = BTreeSet::new();
    for r in refs.into_iter().flatten() {
        if let Some(name) = r.get("name").and_then(Value::as_str) {
            placements.push(name.to_string());
        }
        if let Some(name) = r.pointer("/rolloutStrategy/plugin/name").and_then(Value::as_str) {
            plugins.insert(name.to_string());
        }
    }
    if let Some(name) = obj.pointer("/spec/manifestTransform/name").and_then(Value::as_str) {
        plugins.insert(name.to_string());
    }
    (placements, plugins)
}

/// The ManifestWorkReplicaSet controller (run it with [`flotilla_apiserver::controller::run`]).
pub struct RolloutController {
    storage: Storage,
    res: Resources,
    plugins: Arc<dyn RolloutPlugins>,
    index: Mutex<Index>,
}

/// A placement's part of a reconcile, read before the cycle.
struct PlacementInput {
    name: String,
    /// `spec.placementRefs[i].rolloutStrategy`.
    field: String,
    strategy: Result<RolloutStrategy, StrategyError>,
    selected: Vec<Selected>,
    not_found: bool,
}

/// What a reconcile computes off the async threads.
struct PlanInput {
    owner: OwnerRef,
    placements: Vec<PlacementInput>,
    works: BTreeMap<String, WorkView>,
    previous: BTreeMap<String, ClusterState>,
    current: Revision,
    history: BTreeMap<i64, Revision>,
    stopped: bool,
    /// The stored message, kept while the rollout stays stopped (it says why).
    stopped_message: Option<String>,
    automatic_rollback: bool,
    transform: Result<Option<TransformRef>, transform::TransformError>,
    cluster_infos: BTreeMap<String, ClusterInfo>,
    now: i64,
}

/// One work to write.
struct WorkWrite {
    cluster: String,
    placement: String,
    revision: Revision,
    manifests: Option<Vec<Value>>,
}

#[derive(Default)]
struct PlanOutput {
    clusters: Vec<ClusterState>,
    writes: Vec<WorkWrite>,
    outcomes: Vec<PlacementOutcome>,
    phase: Phase,
    messages: Vec<String>,
    stopped_now: bool,
    recheck_after: Option<Duration>,
    plugin_failed: bool,
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The strategy of one placement: the built one, or under failure policy Ignore `All` when
/// the plugin cannot decide. Returns the strategy and a note about a fallback.
fn strategy_for(
    input: &PlanInput,
    placement: &PlacementInput,
    plugins: &dyn RolloutPlugins,
) -> Result<(Box<dyn Strategy>, Option<String>), StrategyError> {
    let spec = match &placement.strategy {
        Ok(spec) => spec.clone(),
        Err(StrategyError::Invalid { field, message }) => {
            return Err(StrategyError::Invalid { field: field.clone(), message: message.clone() });
        }
        Err(StrategyError::Plugin { plugin, message }) => {
            return Err(StrategyError::Plugin { plugin: plugin.clone(), message: message.clone() });
        }
    };
    let infos: Vec<ClusterInfo> = match &spec {
        RolloutStrategy::Plugin(_) => placement
            .selected
            .iter()
            .map(|s| {
                input
                    .cluster_infos
                    .get(&s.name)
                    .cloned()
                    .unwrap_or_else(|| ClusterInfo { name: s.name.clone(), ..Default::default() })
            })
            .collect(),
        RolloutStrategy::Builtin(_) => Vec::new(),
    };
    match build_strategy(&spec, &placement.field, &input.owner, plugins as &dyn StrategyPlugins, infos) {
        Ok(strategy) => Ok((strategy, None)),
        Err(e @ StrategyError::Plugin { .. }) if ignores_failures(&spec, plugins) => Ok((all(), Some(e.to_string()))),
        Err(e) => Err(e),
    }
}

/// Whether a strategy plugin's failures are ignored (its reference's or its WasmPlugin's policy).
fn ignores_failures(spec: &RolloutStrategy, plugins: &dyn RolloutPlugins) -> bool {
    let RolloutStrategy::Plugin(reference) = spec else { return false };
    let policy = match reference.failure_policy {
        Some(policy) => policy,
        None => plugins.resolve_named(&reference.name).map(|r| r.failure_policy).unwrap_or_default(),
    };
    policy == FailurePolicy::Ignore
}

fn all() -> Box<dyn Strategy> {
    Box::new(BuiltinStrategy::new(BuiltinRollout::All(RolloutAll::default())))
}

/// A cluster's manifests: the transformed ones, `None` for the template's, or why it gets none.
type ClusterManifests = Result<Option<Vec<Value>>, String>;

/// Per cluster, the manifests for `revision` (transformed if a transform is set), or why
/// there are none. Blocking.
fn manifests_for(
    input: &PlanInput,
    plugins: &dyn RolloutPlugins,
    revision: &Revision,
    clusters: &[String],
    messages: &mut Vec<String>,
    plugin_failed: &mut bool,
) -> Vec<(String, ClusterManifests)> {
    let reference = match &input.transform {
        Ok(None) => return clusters.iter().map(|c| (c.clone(), Ok(None))).collect(),
        Ok(Some(reference)) => reference,
        Err(e) => {
            let why = e.to_string();
            messages.push(why.clone());
            return clusters.iter().map(|c| (c.clone(), Err(why.clone()))).collect();
        }
    };
    if clusters.is_empty() {
        return Vec::new();
    }
    let manifests: Vec<Value> =
        revision.template.pointer("/workload/manifests").and_then(Value::as_array).cloned().unwrap_or_default();
    let infos: Vec<ClusterInfo> = clusters
        .iter()
        .map(|c| {
            input.cluster_infos.get(c).cloned().unwrap_or_else(|| ClusterInfo { name: c.clone(), ..Default::default() })
        })
        .collect();
    match transform::run(plugins, reference, &input.owner, &manifests, infos) {
        Ok(per_cluster) => clusters
            .iter()
            .cloned()
            .zip(per_cluster)
            .map(|(c, r)| (c, r.map(Some).map_err(|why| format!("the manifest transform refused this cluster: {why}"))))
            .collect(),
        Err((FailurePolicy::Ignore, e)) => {
            messages.push(format!("{e} (failurePolicy Ignore: the template's manifests were used)"));
            clusters.iter().map(|c| (c.clone(), Ok(None))).collect()
        }
        Err((FailurePolicy::Fail, e)) => {
            *plugin_failed = true;
            let why = e.to_string();
            messages.push(why.clone());
            clusters.iter().map(|c| (c.clone(), Err(why.clone()))).collect()
        }
    }
}

/// The rollout cycle of every placement, the works to write, and the new state. Blocking.
fn plan(input: &PlanInput, plugins: &dyn RolloutPlugins) -> PlanOutput {
    let mut out = PlanOutput::default();
    let stored: BTreeSet<i64> = input.history.keys().copied().collect();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut stopped = false;
    let mut failed = false;
    let mut rollbacks: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
    let mut applies: Vec<(String, String)> = Vec::new();
    for placement in &input.placements {
        // A cluster in several placements belongs to the first (it has one work).
        let selected: Vec<Selected> =
            placement.selected.iter().filter(|s| seen.insert(s.name.clone())).cloned().collect();
        let cycle = Cycle {
            placement: &placement.name,
            selected: &selected,
            works: &input.works,
            previous: &input.previous,
            revision: input.current.number,
            hash: &input.current.hash,
            stopped: input.stopped,
            automatic_rollback: input.automatic_rollback,
            stored_revisions: &stored,
            now: input.now,
        };
        let outcome = match strategy_for(input, placement, plugins) {
            Ok((strategy, note)) => {
                if let Some(note) = note {
                    out.messages.push(format!(
                        "placement {}: {note} (failurePolicy Ignore: rolled out as All)",
                        placement.name
                    ));
                    out.plugin_failed = true;
                }
                match cycle.run(strategy.as_ref()) {
                    // The plugin failed while deciding, under failurePolicy Ignore.
                    outcome @ Outcome { error: Some(StrategyError::Plugin { .. }), .. }
                        if placement.strategy.as_ref().is_ok_and(|spec| ignores_failures(spec, plugins)) =>
                    {
                        if let Some(e) = outcome.error {
                            out.messages.push(format!(
                                "placement {}: {e} (failurePolicy Ignore: rolled out as All)",
                                placement.name
                            ));
                        }
                        out.plugin_failed = true;
                        cycle.run(all().as_ref())
                    }
                    outcome => outcome,
                }
            }
            Err(e) => Outcome { clusters: cycle.observe(), error: Some(e), ..Default::default() },
        };
        if let Some(e) = &outcome.error {
            failed = true;
            out.plugin_failed |= matches!(e, StrategyError::Plugin { .. });
            out.messages.push(format!("placement {}: {e}", placement.name));
        }
        if let Some(decision) = &outcome.decision {
            out.recheck_after = earliest(out.recheck_after, decision.recheck_after);
            if let Some(m) = decision.message.as_deref().filter(|m| !m.is_empty()) {
                out.messages.push(if input.placements.len() > 1 {
                    format!("placement {}: {m}", placement.name)
                } else {
                    m.to_string()
                });
            }
            if decision.stop && !input.automatic_rollback {
                stopped = true;
            }
        }
        if outcome.stopped_now {
            stopped = true;
            out.stopped_now = true;
            let names: Vec<String> = outcome.rollback.iter().map(|(c, r)| format!("{c} to revision {r}")).collect();
            out.messages.push(if names.is_empty() {
                format!(
                    "placement {}: rollout of revision {} stopped; nothing to roll back",
                    placement.name, input.current.number
                )
            } else {
                format!(
                    "placement {}: rollout of revision {} stopped; rolled back {}",
                    placement.name,
                    input.current.number,
                    names.join(", ")
                )
            });
        }
        for name in &outcome.apply {
            let holds = input.works.get(name).is_some_and(|w| w.hash.as_deref() == Some(input.current.hash.as_str()));
            if !holds {
                applies.push((name.clone(), placement.name.clone()));
            }
        }
        for (name, to) in &outcome.rollback {
            rollbacks.entry(*to).or_default().push((name.clone(), placement.name.clone()));
        }
        let clusters: Vec<&ClusterState> = outcome.clusters.iter().collect();
        let mut summary = Summary { desired_total: selected.len() as i64, ..Default::default() };
        for c in &clusters {
            if input.works.contains_key(&c.name) {
                summary.total += 1;
            }
            if c.status == RolloutStatus::ToApply {
                continue;
            }
            summary.updated += 1;
            match c.shown_status() {
                RolloutStatus::Progressing => summary.progressing += 1,
                RolloutStatus::Failed | RolloutStatus::TimeOut => summary.degraded += 1,
                _ => {}
            }
        }
        out.outcomes.push(PlacementOutcome {
            name: placement.name.clone(),
            not_found: placement.not_found,
            summary,
            available_decision_groups: status::available_decision_groups(&clusters),
        });
        out.clusters.extend(outcome.clusters);
    }
    // The works to write: the current revision, then rollbacks, each batch transformed.
    let mut batches: Vec<(Revision, Vec<(String, String)>)> = vec![(input.current.clone(), applies)];
    for (number, clusters) in rollbacks {
        if let Some(revision) = input.history.get(&number) {
            batches.push((revision.clone(), clusters));
        }
    }
    for (revision, clusters) in batches {
        let names: Vec<String> = clusters.iter().map(|(c, _)| c.clone()).collect();
        let results = manifests_for(input, plugins, &revision, &names, &mut out.messages, &mut out.plugin_failed);
        for ((cluster, placement), (_, result)) in clusters.into_iter().zip(results) {
            match result {
                Ok(manifests) => {
                    out.writes.push(WorkWrite { cluster, placement, revision: revision.clone(), manifests })
                }
                Err(why) => {
                    if let Some(c) = out.clusters.iter_mut().find(|c| c.name == cluster) {
                        c.message = Some(why);
                    }
                }
            }
        }
    }
    if input.stopped {
        out.messages.insert(
            0,
            input
                .stopped_message
                .clone()
                .unwrap_or_else(|| format!("the rollout of revision {} was stopped", input.current.number)),
        );
    }
    let all_succeeded = !out.clusters.is_empty() && out.clusters.iter().all(|c| c.status == RolloutStatus::Succeeded);
    out.phase = if failed {
        Phase::Failed
    } else if stopped || input.stopped {
        Phase::Stopped
    } else if all_succeeded {
        Phase::Complete
    } else {
        Phase::Progressing
    };
    out
}

impl RolloutController {
    pub fn new(storage: Storage, plugins: Arc<dyn RolloutPlugins>) -> Result<RolloutController, ControllerError> {
        let res = Resources::of(&storage)?;
        Ok(RolloutController { storage, res, plugins, index: Mutex::new(Index::default()) })
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        lock(&self.index)
    }

    fn replica_set_event(&self, obj: &Value, deleted: bool) -> Vec<String> {
        let (ns, name) = (meta::namespace(obj).unwrap_or_default(), meta::name(obj));
        let key = queue_key(ns, name);
        let mut index = self.index();
        if let Some((placements, _)) = index.refs.remove(&key) {
            for p in placements {
                if let Some(set) = index.by_placement.get_mut(&(ns.to_string(), p.clone())) {
                    set.remove(name);
                }
            }
        }
        if deleted {
            index.written.remove(&key);
            return Vec::new();
        }
        let (placements, plugins) = references(obj);
        for p in &placements {
            index.by_placement.entry((ns.to_string(), p.clone())).or_default().insert(name.to_string());
        }
        index.refs.insert(key.clone(), (placements, plugins));
        if index.written.get(&key).map(String::as_str) == Some(meta::resource_version(obj)) {
            // The controller's own status write.
            return Vec::new();
        }
        vec![key]
    }

    fn plugin_event(&self, obj: &Value, deleted: bool) -> Vec<String> {
        let name = meta::name(obj);
        let mut index = self.index();
        let spec = (!deleted).then(|| obj.get("spec").cloned().unwrap_or(Value::Null));
        let before = match &spec {
            Some(spec) => index.plugin_specs.insert(name.to_string(), spec.clone()),
            None => index.plugin_specs.remove(name),
        };
        if before == spec {
            return Vec::new();
        }
        index.refs.iter().filter(|(_, (_, plugins))| plugins.contains(name)).map(|(k, _)| k.clone()).collect()
    }

    async fn list(&self, res: &Resource, ns: Option<&str>, selector: &str) -> Result<Vec<Value>, ApiError> {
        let label_selector = LabelSelector::parse(selector).map_err(ApiError::internal)?;
        let opts = ListOptions { label_selector: Some(label_selector), ..Default::default() };
        Ok(self.storage.list(res, ns, &opts).await?.items)
    }

    /// The works of a ManifestWorkReplicaSet, by cluster (namespace).
    async fn works_of(&self, ns: &str, name: &str) -> Result<BTreeMap<String, Value>, ApiError> {
        let selector = format!("{REPLICA_SET_LABEL}={}", works::replica_set_key(ns, name));
        let items = self.list(&self.res.works, None, &selector).await?;
        Ok(items
            .into_iter()
            .filter(|w| meta::name(w) == name)
            .map(|w| (meta::namespace(&w).unwrap_or_default().to_string(), w))
            .collect())
    }

    /// Deletes the works; with Foreground, keeps the finalizer until they are gone.
    async fn finalize(&self, obj: Value) -> Result<Option<Duration>, ApiError> {
        let (ns, name) = (meta::namespace(&obj).unwrap_or_default().to_string(), meta::name(&obj).to_string());
        if !meta::finalizers(&obj).iter().any(|f| f == CLEANUP_FINALIZER) {
            return Ok(None);
        }
        let works = self.works_of(&ns, &name).await?;
        for (cluster, work) in &works {
            if meta::deletion_timestamp(work).is_some() {
                continue;
            }
            match self.storage.delete(&self.res.works, Some(cluster), &name, &DeleteOptions::default()).await {
                Ok(_) => tracing::info!(namespace = %ns, name = %name, %cluster, "deleted ManifestWork"),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let foreground = obj.pointer("/spec/cascadeDeletionPolicy").and_then(Value::as_str) == Some("Foreground");
        if foreground && !works.is_empty() {
            return Ok(Some(FOREGROUND_RECHECK));
        }
        let mut updated = obj;
        let kept: Vec<String> = meta::finalizers(&updated).into_iter().filter(|f| f != CLEANUP_FINALIZER).collect();
        meta::set(&mut updated, "finalizers", json!(kept));
        match self.storage.update(&self.res.replica_sets, Some(&ns), &name, updated, None, &self.opts()).await {
            Ok(_) | Err(ApiError { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn opts(&self) -> WriteOptions {
        WriteOptions::manager(FIELD_MANAGER)
    }

    /// Makes the template a stored revision; returns it and the history.
    async fn revisions(
        &self,
        obj: &Value,
        template: &Value,
        state: &mut RolloutState,
    ) -> Result<(Revision, History), ApiError> {
        let (ns, name) = (meta::namespace(obj).unwrap_or_default(), meta::name(obj));
        let selector = format!("{REPLICA_SET_LABEL}={}", works::replica_set_key(ns, name));
        let uid = meta::uid(obj);
        let owned: Vec<Revision> = self
            .list(&self.res.revisions, Some(ns), &selector)
            .await?
            .iter()
            .filter(|r| meta::owner_uids(r).iter().any(|u| u == uid))
            .filter_map(revisions::parse)
            .collect();
        let mut history = History::new(owned);
        let hash = revisions::template_hash(template);
        let current = match history.plan(&hash) {
            Plan::Current(r) => r,
            Plan::Create { number } => {
                let object = revisions::new_object(obj, number, &hash, template);
                let rev_name = meta::name(&object).to_string();
                match self.storage.create(&self.res.revisions, Some(ns), object, &self.opts()).await {
                    Ok(_) => {}
                    // A leftover of the same hash with another owner: take it over by replacing it.
                    Err(e) if e.code == 409 => {
                        let existing = self.storage.get(&self.res.revisions, Some(ns), &rev_name).await?;
                        let mut replaced = revisions::new_object(obj, number, &hash, template);
                        meta::set(&mut replaced, "resourceVersion", json!(meta::resource_version(&existing)));
                        self.storage
                            .update(&self.res.revisions, Some(ns), &rev_name, replaced, None, &self.opts())
                            .await?;
                    }
                    Err(e) => return Err(e),
                }
                tracing::info!(namespace = ns, name, revision = number, "new revision of the template");
                Revision { name: rev_name, number, hash, template: template.clone() }
            }
            Plan::Renumber { revision, to } => {
                let mut stored = self.storage.get(&self.res.revisions, Some(ns), &revision.name).await?;
                stored["revision"] = json!(to);
                self.storage.update(&self.res.revisions, Some(ns), &revision.name, stored, None, &self.opts()).await?;
                tracing::info!(
                    namespace = ns,
                    name,
                    from = revision.number,
                    to,
                    "a previous template is the current revision again"
                );
                // Clusters that hold or succeeded with it now name its new number.
                for c in &mut state.clusters {
                    for field in [&mut c.revision, &mut c.succeeded_revision, &mut c.rolled_back_to] {
                        if *field == Some(revision.number) {
                            *field = Some(to);
                        }
                    }
                }
                Revision { number: to, ..revision }
            }
        };
        history.put(current.clone());
        Ok((current, history))
    }

    /// The clusters a placement's PlacementDecisions select, sorted by name; `None` when it has none.
    async fn selected(&self, ns: &str, placement: &str) -> Result<Option<Vec<Selected>>, ApiError> {
        let decisions = self.list(&self.res.decisions, Some(ns), &format!("{PLACEMENT_LABEL}={placement}")).await?;
        if decisions.is_empty() {
            return Ok(None);
        }
        let mut out: BTreeMap<String, Selected> = BTreeMap::new();
        for d in &decisions {
            let labels = meta::labels(d);
            let label = |k: &str| labels.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let group_index = label(DECISION_GROUP_INDEX_LABEL).parse().unwrap_or(0);
            let group_name = label(DECISION_GROUP_NAME_LABEL);
            let list = d.pointer("/status/decisions").and_then(Value::as_array);
            for decision in list.into_iter().flatten() {
                let Some(cluster) = decision.get("clusterName").and_then(Value::as_str).filter(|c| !c.is_empty())
                else {
                    continue;
                };
                out.entry(cluster.to_string()).or_insert_with(|| Selected {
                    name: cluster.to_string(),
                    group_index,
                    group_name: group_name.clone(),
                });
            }
        }
        Ok(Some(out.into_values().collect()))
    }

    async fn cluster_infos(&self) -> Result<BTreeMap<String, ClusterInfo>, ApiError> {
        let list = self.storage.list(&self.res.clusters, None, &ListOptions::default()).await?;
        Ok(list.items.iter().map(|c| (meta::name(c).to_string(), ClusterInfo::from_managed_cluster(c))).collect())
    }

    /// Creates or updates one cluster's work.
    async fn write_work(&self, obj: &Value, write: &WorkWrite, existing: Option<&Value>) -> Result<(), ApiError> {
        let (ns, name) = (meta::namespace(obj).unwrap_or_default(), meta::name(obj));
        let desired = DesiredWork {
            replica_set_namespace: ns,
            replica_set_name: name,
            cluster: &write.cluster,
            placement: &write.placement,
            revision: write.revision.number,
            template_hash: &write.revision.hash,
        };
        let work = works::build_work(&desired, &write.revision.template, write.manifests.clone());
        match existing {
            None => {
                self.storage.create(&self.res.works, Some(&write.cluster), work, &self.opts()).await?;
            }
            Some(current) => {
                let updated = works::update_work(current.clone(), work);
                self.storage.update(&self.res.works, Some(&write.cluster), name, updated, None, &self.opts()).await?;
            }
        }
        tracing::info!(namespace = ns, name, cluster = %write.cluster, revision = write.revision.number, "wrote ManifestWork");
        Ok(())
    }

    async fn write_status(
        &self,
        obj: &Value,
        state: RolloutState,
        outcomes: &[PlacementOutcome],
        total: Summary,
    ) -> Result<(), ApiError> {
        let (ns, name) = (meta::namespace(obj).unwrap_or_default(), meta::name(obj));
        let generation = meta::generation(obj);
        let now = now_rfc3339();
        let mut list = conditions::of(obj);
        for (type_, status, reason, message) in status::conditions(outcomes, &total, &state) {
            conditions::set(&mut list, &Condition { type_, status, reason, message: &message }, generation, &now);
        }
        let placement_summary: Vec<Value> = outcomes
            .iter()
            .map(|o| {
                json!({"name": o.name, "availableDecisionGroups": o.available_decision_groups, "summary": o.summary.to_json()})
            })
            .collect();
        let mut new_status = obj.get("status").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
        new_status["conditions"] = json!(list);
        new_status["summary"] = total.to_json();
        new_status["placementSummary"] = json!(placement_summary);
        let old_state = RolloutState::of(obj);
        // A recheck time alone does not make a write while the stored one is still ahead.
        let mut state = state;
        if state.recheck_at.is_some()
            && old_state
                .recheck_at
                .as_deref()
                .and_then(status::parse_millis)
                .is_some_and(|at| at > jiff::Timestamp::now().as_millisecond())
            && (RolloutState { recheck_at: old_state.recheck_at.clone(), ..state.clone() }) == old_state
        {
            state.recheck_at = old_state.recheck_at.clone();
        }
        new_status["rollout"] = serde_json::to_value(&state).map_err(|e| ApiError::internal(e.to_string()))?;
        if obj.get("status") == Some(&new_status) {
            return Ok(());
        }
        let mut updated = obj.clone();
        updated["status"] = new_status;
        let written =
            self.storage.update(&self.res.replica_sets, Some(ns), name, updated, Some("status"), &self.opts()).await?;
        self.index().written.insert(queue_key(ns, name), meta::resource_version(&written.object).to_string());
        Ok(())
    }

    async fn reconcile_one(&self, ns: &str, name: &str) -> Result<Option<Duration>, ApiError> {
        let mut obj = match self.storage.get(&self.res.replica_sets, Some(ns), name).await {
            Ok(obj) => obj,
            Err(e) if e.code == 404 => return Ok(None),
            Err(e) => return Err(e),
        };
        if meta::deletion_timestamp(&obj).is_some() {
            return self.finalize(obj).await;
        }
        if !meta::finalizers(&obj).iter().any(|f| f == CLEANUP_FINALIZER) {
            let mut finalizers = meta::finalizers(&obj);
            finalizers.push(CLEANUP_FINALIZER.to_string());
            meta::set(&mut obj, "finalizers", json!(finalizers));
            obj = self.storage.update(&self.res.replica_sets, Some(ns), name, obj, None, &self.opts()).await?.object;
        }
        let template = obj.pointer("/spec/manifestWorkTemplate").cloned().unwrap_or_else(|| json!({}));
        let mut state = RolloutState::of(&obj);
        let (current, history) = self.revisions(&obj, &template, &mut state).await?;
        let existing = self.works_of(ns, name).await?;

        let refs: Vec<Value> =
            obj.pointer("/spec/placementRefs").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut placements = Vec::new();
        let mut needs_infos = obj.pointer("/spec/manifestTransform").is_some_and(|t| !t.is_null());
        for (i, r) in refs.iter().enumerate() {
            let placement = r.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            let field = format!("spec.placementRefs[{i}].rolloutStrategy");
            let strategy = engine::parse_strategy(r.get("rolloutStrategy"), &field);
            needs_infos |= matches!(strategy, Ok(RolloutStrategy::Plugin(_)));
            let selected = self.selected(ns, &placement).await?;
            placements.push(PlacementInput {
                name: placement,
                field,
                strategy,
                not_found: selected.is_none(),
                selected: selected.unwrap_or_default(),
            });
        }
        let work_views: BTreeMap<String, WorkView> = existing
            .iter()
            .filter(|(_, w)| meta::deletion_timestamp(w).is_none())
            .map(|(cluster, w)| {
                let (status, message) = works::rollout_status(w);
                let hash = works::template_hash_of(w);
                // The number its template has now (a template seen again was renumbered).
                let number = history.revisions().iter().find(|r| Some(r.hash.as_str()) == hash).map(|r| r.number);
                let view = WorkView {
                    revision: number.or_else(|| works::revision_of(w)),
                    hash: hash.map(str::to_string),
                    status,
                    message,
                };
                (cluster.clone(), view)
            })
            .collect();
        let stopped = state.stopped_revision == Some(current.number);
        let input = PlanInput {
            owner: OwnerRef {
                kind: "ManifestWorkReplicaSet".into(),
                namespace: ns.to_string(),
                name: name.to_string(),
            },
            placements,
            works: work_views,
            previous: state.clusters.iter().map(|c| (c.name.clone(), c.clone())).collect(),
            current: current.clone(),
            history: history.revisions().iter().map(|r| (r.number, r.clone())).collect(),
            stopped,
            stopped_message: state.message.clone(),
            automatic_rollback: obj.pointer("/spec/rollback/automatic").and_then(Value::as_bool) == Some(true),
            transform: transform::parse_transform(obj.pointer("/spec/manifestTransform")),
            cluster_infos: if needs_infos { self.cluster_infos().await? } else { BTreeMap::new() },
            now: jiff::Timestamp::now().as_millisecond(),
        };
        let plugins = self.plugins.clone();
        let (input, output) = tokio::task::spawn_blocking(move || {
            let output = plan(&input, plugins.as_ref());
            (input, output)
        })
        .await
        .map_err(|e| ApiError::internal(format!("the rollout cycle of {ns}/{name} failed: {e}")))?;

        // Works: write what the cycle decided, delete those of clusters no placement selects.
        let mut errors = Vec::new();
        let mut write_failures: BTreeMap<String, String> = BTreeMap::new();
        for write in &output.writes {
            if let Err(e) = self.write_work(&obj, write, existing.get(&write.cluster)).await {
                tracing::warn!(namespace = ns, name, cluster = %write.cluster, error = %e, "cannot write ManifestWork");
                let why = if e.code == 409 && !existing.contains_key(&write.cluster) {
                    format!(
                        "a ManifestWork {}/{name} that is not this ManifestWorkReplicaSet's is in the way",
                        write.cluster
                    )
                } else {
                    format!("cannot write its ManifestWork: {}", e.message)
                };
                write_failures.insert(write.cluster.clone(), why);
                errors.push(e);
            }
        }
        let selected: BTreeSet<&str> = output.clusters.iter().map(|c| c.name.as_str()).collect();
        let placements_known = input.placements.iter().all(|p| !p.not_found);
        for (cluster, work) in &existing {
            if selected.contains(cluster.as_str()) || meta::deletion_timestamp(work).is_some() || !placements_known {
                continue;
            }
            match self.storage.delete(&self.res.works, Some(cluster), name, &DeleteOptions::default()).await {
                Ok(_) => {
                    tracing::info!(namespace = ns, name, %cluster, "deleted the ManifestWork of a cluster no longer selected")
                }
                Err(e) if e.code == 404 => {}
                Err(e) => errors.push(e),
            }
        }

        // Revisions beyond the limit, except those a cluster holds or may go back to.
        let limit = obj
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_u64)
            .map_or(revisions::DEFAULT_HISTORY_LIMIT, |l| l as usize);
        let mut keep: BTreeSet<i64> = BTreeSet::from([current.number]);
        for c in &output.clusters {
            keep.extend(c.revision);
            keep.extend(c.succeeded_revision);
        }
        keep.extend(output.writes.iter().map(|w| w.revision.number));
        for old in history.prunable(limit, &keep) {
            match self.storage.delete(&self.res.revisions, Some(ns), &old.name, &DeleteOptions::default()).await {
                Ok(_) | Err(ApiError { code: 404, .. }) => {}
                Err(e) => errors.push(e),
            }
        }

        let mut total = Summary::default();
        for o in &output.outcomes {
            total.add(&o.summary);
        }
        // applied and available come from the works' conditions (OCM's counts).
        let mut outcomes = output.outcomes;
        for o in &mut outcomes {
            let mine: Vec<&ClusterState> = output.clusters.iter().filter(|c| c.placement == o.name).collect();
            let (mut applied, mut available) = (0, 0);
            for c in mine.iter().filter(|c| c.status != RolloutStatus::ToApply) {
                if let Some(w) = existing.get(&c.name) {
                    applied += i64::from(works::condition_true(w, "Applied"));
                    available += i64::from(works::condition_true(w, "Available"));
                }
            }
            o.summary.applied = applied;
            o.summary.available = available;
        }
        total.applied = outcomes.iter().map(|o| o.summary.applied).sum();
        total.available = outcomes.iter().map(|o| o.summary.available).sum();

        let now = input.now;
        let new_state = RolloutState {
            revision: current.number,
            observed_generation: meta::generation(&obj),
            phase: output.phase,
            message: Some(output.messages.join("; ")).filter(|m| !m.is_empty()),
            recheck_at: output
                .recheck_after
                .map(|d| status::rfc3339(now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))),
            stopped_revision: if output.stopped_now || stopped { Some(current.number) } else { None },
            clusters: output
                .clusters
                .into_iter()
                .map(|mut c| {
                    if let Some(why) = write_failures.remove(&c.name) {
                        c.message = Some(why);
                    }
                    c
                })
                .collect(),
        };
        if output.stopped_now {
            tracing::info!(namespace = ns, name, revision = current.number, message = ?new_state.message, "rollout stopped");
        }
        self.write_status(&obj, new_state, &outcomes, total).await?;
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        let retry = output.plugin_failed.then_some(RETRY_AFTER_PLUGIN_FAILURE);
        // A stopped rollout's clusters still move (rollbacks settle): look again soon after writes.
        let settle = (!output.writes.is_empty()).then_some(Duration::from_secs(1));
        Ok(earliest(earliest(output.recheck_after, retry), settle))
    }
}

impl Reconciler for RolloutController {
    fn name(&self) -> &'static str {
        "manifestworkreplicaset-rollout"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        // In the order of the index constants above.
        vec![
            self.res.replica_sets.clone(),
            self.res.works.clone(),
            self.res.decisions.clone(),
            self.res.plugins.clone(),
        ]
    }

    fn start_keys(&self) -> Vec<String> {
        *self.index() = Index::default();
        Vec::new()
    }

    fn keys_for(&self, index: usize, obj: &Value, deleted: bool) -> Vec<String> {
        match index {
            REPLICA_SETS => self.replica_set_event(obj, deleted),
            WORKS => {
                let labels = meta::labels(obj);
                let key = labels.get(REPLICA_SET_LABEL).and_then(Value::as_str).and_then(works::parse_replica_set_key);
                match key {
                    Some((ns, name)) if self.index().refs.contains_key(&queue_key(ns, name)) => {
                        vec![queue_key(ns, name)]
                    }
                    _ => Vec::new(),
                }
            }
            DECISIONS => {
                let ns = meta::namespace(obj).unwrap_or_default();
                let labels = meta::labels(obj);
                let Some(placement) = labels.get(PLACEMENT_LABEL).and_then(Value::as_str) else { return Vec::new() };
                let index = self.index();
                index
                    .by_placement
                    .get(&(ns.to_string(), placement.to_string()))
                    .into_iter()
                    .flatten()
                    .map(|name| queue_key(ns, name))
                    .collect()
            }
            PLUGINS => self.plugin_event(obj, deleted),
            _ => Vec::new(),
        }
    }

    async fn reconcile(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        let Some((ns, name)) = key.split_once('/') else { return Ok(None) };
        self.reconcile_one(ns, name).await
    }
}
