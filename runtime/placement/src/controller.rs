//! The placement controller on the hub: keeps an [`Inventory`] current from watch events,
//! schedules each Placement that a change can affect, and writes its PlacementDecisions and
//! status as OCM does ([`crate::decisions`]).
//!
//! Event-driven and incremental: every watched change goes into the inventory inside
//! [`Reconciler::keys_for`] (which runs on the controller's task, between reconciles), and
//! is mapped to the placements it can affect (a cluster to the placements bound to its
//! sets or holding it among their decisions, a binding to its namespace, a WasmPlugin to
//! the placements naming it). The controller runtime's queue is a set, so a burst of
//! changes becomes one schedule per placement.
//!
//! Writes are minimal: a schedule that changes nothing writes nothing; a PlacementDecision
//! is written only when its clusters, reasons, labels or controller reference differ. The
//! controller remembers the resourceVersion of everything it wrote, so the watch events of
//! its own writes are recognised and reschedule nothing, while anyone else's change to a
//! PlacementDecision or to a Placement's status (tampering) brings the placement back to be
//! repaired. Other placements' PlacementDecisions are read for `Balance`, as OCM does, when
//! a placement is scheduled; a change of one placement's decisions does not reschedule the
//! others (that keeps decisions stable instead of placements chasing each other).
//!
//! Placements being deleted, and those annotated
//! `cluster.open-cluster-management.io/experimental-scheduling-disable: "true"` (an external
//! scheduler writes their decisions), are skipped.
//!
//! [`PlacementExplainer`] schedules a placement on request, without writing anything, for
//! `GET /debug/placements/<ns>/<name>` and `flotilla placement explain`: keeping every
//! placement's last explanation (one entry per cluster) would cost memory in proportion to
//! placements × clusters, and a schedule from the same inventory gives the same answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_apiserver::controller::Reconciler;
use flotilla_apiserver::objects::{meta, now_rfc3339};
use flotilla_apiserver::{Resource, Storage, WriteOptions};
use serde_json::{Value, json};

use crate::decisions::{self, DECISION_GROUP_INDEX_LABEL, DECISION_GROUP_NAME_LABEL, DecisionPage, PLACEMENT_LABEL};
use crate::{Inventory, PlacementKey, PluginResolver, Schedule, ScheduleOptions, schedule_with, scheduling_disabled};

/// The field manager of the controller's writes.
pub const FIELD_MANAGER: &str = "flotilla-placement";

/// How soon a placement whose plugin failed under failure policy `Fail` is tried again when
/// nothing else changes (a plugin that timed out once may answer next time).
pub const RETRY_AFTER_PLUGIN_FAILURE: Duration = Duration::from_secs(30);

/// Why the controller cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    NotServed(#[from] flotilla_apiserver::NotServed),
}

/// The resources the controller reads and writes.
struct Resources {
    placements: Arc<Resource>,
    decisions: Arc<Resource>,
    clusters: Arc<Resource>,
    sets: Arc<Resource>,
    bindings: Arc<Resource>,
    scores: Arc<Resource>,
    plugins: Arc<Resource>,
}

impl Resources {
    fn of(storage: &Storage) -> Result<Resources, ControllerError> {
        let get = |api_version: &str, kind: &str| storage.registry.served(api_version, kind);
        Ok(Resources {
            placements: get(decisions::API_VERSION, "Placement")?,
            decisions: get(decisions::API_VERSION, "PlacementDecision")?,
            clusters: get("cluster.open-cluster-management.io/v1", "ManagedCluster")?,
            sets: get("cluster.open-cluster-management.io/v1beta2", "ManagedClusterSet")?,
            bindings: get("cluster.open-cluster-management.io/v1beta2", "ManagedClusterSetBinding")?,
            scores: get("cluster.open-cluster-management.io/v1alpha1", "AddOnPlacementScore")?,
            plugins: get("flotilla.dev/v1alpha1", "WasmPlugin")?,
        })
    }
}

// The order of `watches()`.
const PLACEMENTS: usize = 0;
const CLUSTERS: usize = 1;
const SETS: usize = 2;
const BINDINGS: usize = 3;
const SCORES: usize = 4;
const DECISIONS: usize = 5;
const PLUGINS: usize = 6;

/// What the controller and the explainer share: the inventory and the plugins.
struct Shared {
    storage: Storage,
    res: Resources,
    inventory: Mutex<Inventory>,
    resolver: Arc<dyn PluginResolver>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Schedules a placement on a blocking thread (plugins are CPU-bound, and the plugin host
    /// must not be called from an async task).
    /// `explain`: build the per-cluster explanation (the debug endpoint); the write path
    /// does without, which halves a schedule's time at 10,000 clusters.
    async fn schedule(self: &Arc<Self>, placement: Value, explain: bool) -> Result<Schedule, ApiError> {
        let shared = self.clone();
        tokio::task::spawn_blocking(move || {
            let inventory = lock(&shared.inventory);
            let options = ScheduleOptions { explain };
            schedule_with(&inventory, &placement, shared.resolver.as_ref(), jiff::Timestamp::now(), options)
        })
        .await
        .map_err(|e| ApiError::internal(format!("scheduling failed: {e}")))
    }
}

/// A resourceVersion as a number (the store's revision); 0 when missing or not a number.
fn revision(obj: &Value) -> i64 {
    meta::resource_version(obj).parse().unwrap_or(0)
}

/// What `keys_for` needs of a Placement.
struct PlacementEntry {
    /// The newest resourceVersion seen (from an event or the controller's own write).
    revision: i64,
    /// `{metadata: {namespace, name}, spec: {clusterSets}}` and what its predicates can
    /// select, for [`crate::Affected::affects_with`].
    selector: Value,
    reach: crate::Reach,
    /// The WasmPlugins it names.
    plugins: BTreeSet<String>,
}

/// What the controller knows of a stored PlacementDecision.
#[derive(Debug, Clone, PartialEq)]
struct DecisionEntry {
    revision: i64,
    /// Its `cluster.open-cluster-management.io/placement` label.
    placement: String,
    group_index: String,
    group_name: String,
    controller_uid: String,
    has_status: bool,
    /// `status.decisions[].clusterName`, in order.
    clusters: Vec<String>,
    /// A digest of the (clusterName, reason) pairs, for comparing with a page without
    /// keeping every reason (this is held for every decision of every placement).
    fingerprint: u64,
}

/// The digest [`DecisionEntry::fingerprint`] compares.
fn fingerprint<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    for pair in pairs {
        pair.hash(&mut hasher);
    }
    hasher.finish()
}

impl DecisionEntry {
    fn of(obj: &Value) -> DecisionEntry {
        let label = |k: &str| {
            obj.pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let controller_uid = obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|refs| refs.iter().find(|r| r.get("controller").and_then(Value::as_bool) == Some(true)))
            .and_then(|r| r.get("uid"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let list = obj.pointer("/status/decisions").and_then(Value::as_array);
        let field = |d: &'_ Value, f: &str| d.get(f).and_then(Value::as_str).map(str::to_string).unwrap_or_default();
        let pairs: Vec<(String, String)> =
            list.into_iter().flatten().map(|d| (field(d, "clusterName"), field(d, "reason"))).collect();
        DecisionEntry {
            revision: revision(obj),
            placement: label(PLACEMENT_LABEL),
            group_index: label(DECISION_GROUP_INDEX_LABEL),
            group_name: label(DECISION_GROUP_NAME_LABEL),
            controller_uid,
            has_status: list.is_some(),
            fingerprint: fingerprint(pairs.iter().map(|(c, r)| (c.as_str(), r.as_str()))),
            clusters: pairs.into_iter().map(|(c, _)| c).collect(),
        }
    }

    /// Whether the stored object already is what `page` asks for.
    fn is(&self, placement_name: &str, placement_uid: &str, page: &DecisionPage) -> bool {
        self.has_status
            && self.placement == placement_name
            && self.group_index == page.group_index.to_string()
            && self.group_name == page.group_name
            && self.controller_uid == placement_uid
            && self.clusters.len() == page.decisions.len()
            && self.fingerprint
                == fingerprint(page.decisions.iter().map(|d| (d.cluster_name.as_str(), d.reason.as_str())))
    }

    /// The clusters it lists (empty names, OCM's unscheduled placeholders, left out).
    fn selected(&self) -> impl Iterator<Item = &String> {
        self.clusters.iter().filter(|c| !c.is_empty())
    }
}

/// The controller's memory of the watched objects beyond the inventory.
#[derive(Default)]
struct State {
    /// Namespace -> name -> placement.
    placements: BTreeMap<String, BTreeMap<String, PlacementEntry>>,
    /// (namespace, name) -> PlacementDecision.
    decisions: HashMap<(String, String), DecisionEntry>,
    /// Placement -> the names of the PlacementDecisions labelled for it.
    decisions_of: HashMap<PlacementKey, BTreeSet<String>>,
    /// WasmPlugin name -> its spec, so that status updates reschedule nothing.
    plugin_specs: HashMap<String, Value>,
}

impl State {
    fn placement(&self, key: &PlacementKey) -> Option<&PlacementEntry> {
        self.placements.get(&key.namespace).and_then(|m| m.get(&key.name))
    }

    /// The queue keys of the placements an inventory change affects.
    fn keys(&self, affected: &crate::Affected) -> Vec<String> {
        let mut keys: BTreeSet<String> = BTreeSet::new();
        for key in &affected.placements {
            if self.placement(key).is_some() {
                keys.insert(queue_key(&key.namespace, &key.name));
            }
        }
        for ns in &affected.namespaces {
            for (name, entry) in self.placements.get(ns).into_iter().flatten() {
                if affected.affects_with(&entry.selector, &entry.reach) {
                    keys.insert(queue_key(ns, name));
                }
            }
        }
        keys.into_iter().collect()
    }

    /// Records a PlacementDecision as stored (from an event or a write); returns the
    /// placements whose decisions that changes.
    fn put_decision(&mut self, ns: &str, name: &str, entry: Option<DecisionEntry>) -> Vec<PlacementKey> {
        let id = (ns.to_string(), name.to_string());
        let mut touched = Vec::new();
        if let Some(old) = self.decisions.remove(&id) {
            let key = PlacementKey::new(ns, old.placement.as_str());
            if let Some(names) = self.decisions_of.get_mut(&key) {
                names.remove(name);
                if names.is_empty() {
                    self.decisions_of.remove(&key);
                }
            }
            touched.push(key);
        }
        if let Some(entry) = entry {
            let key = PlacementKey::new(ns, entry.placement.as_str());
            if !entry.placement.is_empty() {
                self.decisions_of.entry(key.clone()).or_default().insert(name.to_string());
            }
            self.decisions.insert(id, entry);
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        touched.retain(|k| !k.name.is_empty());
        touched
    }

    /// Every cluster the PlacementDecisions of `key` list.
    fn decided_clusters(&self, key: &PlacementKey) -> Vec<String> {
        let mut out = Vec::new();
        for name in self.decisions_of.get(key).into_iter().flatten() {
            if let Some(entry) = self.decisions.get(&(key.namespace.clone(), name.clone())) {
                out.extend(entry.selected().cloned());
            }
        }
        out
    }
}

fn queue_key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

/// The WasmPlugins a Placement names (filters in predicates, scorers in the prioritizer policy).
fn plugin_names(placement: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let predicates = placement.pointer("/spec/predicates").and_then(Value::as_array);
    for p in predicates.into_iter().flatten() {
        if let Some(name) = p.pointer("/requiredClusterSelector/plugin/name").and_then(Value::as_str) {
            names.insert(name.to_string());
        }
    }
    let configurations = placement.pointer("/spec/prioritizerPolicy/configurations").and_then(Value::as_array);
    for c in configurations.into_iter().flatten() {
        if let Some(name) = c.pointer("/scoreCoordinate/plugin/name").and_then(Value::as_str) {
            names.insert(name.to_string());
        }
    }
    names
}

/// The placement scheduling controller (run it with
/// [`flotilla_apiserver::controller::run`]).
pub struct PlacementController {
    shared: Arc<Shared>,
    state: Mutex<State>,
}

impl PlacementController {
    pub fn new(storage: Storage, resolver: Arc<dyn PluginResolver>) -> Result<PlacementController, ControllerError> {
        let res = Resources::of(&storage)?;
        let shared = Arc::new(Shared { storage, res, inventory: Mutex::new(Inventory::new()), resolver });
        Ok(PlacementController { shared, state: Mutex::new(State::default()) })
    }

    /// A handle that explains placements with this controller's inventory.
    pub fn explainer(&self) -> PlacementExplainer {
        PlacementExplainer { shared: self.shared.clone() }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn inventory(&self) -> MutexGuard<'_, Inventory> {
        lock(&self.shared.inventory)
    }

    fn placement_event(&self, obj: &Value, deleted: bool) -> Vec<String> {
        let (ns, name) = (meta::namespace(obj).unwrap_or_default(), meta::name(obj));
        let mut state = self.state();
        if deleted {
            if let Some(m) = state.placements.get_mut(ns) {
                m.remove(name);
                if m.is_empty() {
                    state.placements.remove(ns);
                }
            }
            // The garbage collector deletes its PlacementDecisions; its decisions stop
            // counting for Balance now.
            self.inventory().remove_decisions(ns, name);
            return Vec::new();
        }
        let seen = revision(obj);
        let entries = state.placements.entry(ns.to_string()).or_default();
        if let Some(entry) = entries.get(name)
            && seen != 0
            && seen <= entry.revision
        {
            // Its own status write, or an event older than what a reconcile already read.
            return Vec::new();
        }
        let selector = json!({
            "metadata": {"namespace": ns, "name": name},
            "spec": {"clusterSets": obj.pointer("/spec/clusterSets").cloned().unwrap_or(Value::Null)},
        });
        let entry =
            PlacementEntry { revision: seen, selector, reach: crate::Reach::of(obj), plugins: plugin_names(obj) };
        entries.insert(name.to_string(), entry);
        vec![queue_key(ns, name)]
    }

    fn decision_event(&self, obj: &Value, deleted: bool) -> Vec<String> {
        let (ns, name) = (meta::namespace(obj).unwrap_or_default(), meta::name(obj));
        let mut state = self.state();
        let id = (ns.to_string(), name.to_string());
        let seen = revision(obj);
        let touched = if deleted {
            match state.decisions.get(&id) {
                // The controller deleted it itself.
                None => return Vec::new(),
                // The deletion of an object the controller has written again since.
                Some(known) if seen != 0 && seen < known.revision => return Vec::new(),
                Some(_) => state.put_decision(ns, name, None),
            }
        } else {
            if state.decisions.get(&id).is_some_and(|known| seen != 0 && seen <= known.revision) {
                return Vec::new();
            }
            state.put_decision(ns, name, Some(DecisionEntry::of(obj)))
        };
        // Someone else's write (or the initial list): the decisions count for Balance, and
        // the owner converges them back to its schedule.
        let mut keys = Vec::new();
        let mut inventory = self.inventory();
        for key in touched {
            inventory.set_decisions(&key.namespace, &key.name, state.decided_clusters(&key));
            if state.placement(&key).is_some() {
                keys.push(queue_key(&key.namespace, &key.name));
            }
        }
        keys
    }

    fn plugin_event(&self, obj: &Value, deleted: bool) -> Vec<String> {
        let name = meta::name(obj);
        let mut state = self.state();
        let spec = (!deleted).then(|| obj.get("spec").cloned().unwrap_or(Value::Null));
        let before = match &spec {
            Some(spec) => state.plugin_specs.insert(name.to_string(), spec.clone()),
            None => state.plugin_specs.remove(name),
        };
        if before == spec || (deleted && before.is_none()) {
            return Vec::new();
        }
        // The configurations validated by the component it named are kept no longer (a
        // component another WasmPlugin still names validates them again on first use).
        let digest_of = |spec: &Value| spec.get("digest").and_then(Value::as_str).map(str::to_string);
        if let Some(old) = before.as_ref().and_then(digest_of)
            && spec.as_ref().and_then(digest_of).as_deref() != Some(old.as_str())
        {
            self.inventory().forget_plugin(&old);
        }
        let mut keys = Vec::new();
        for (ns, placements) in &state.placements {
            for (placement, entry) in placements {
                if entry.plugins.contains(name) {
                    keys.push(queue_key(ns, placement));
                }
            }
        }
        keys
    }

    /// Records an object the controller wrote, so that its watch event is recognised.
    fn wrote_decision(&self, obj: &Value) {
        let (ns, name) = (meta::namespace(obj).unwrap_or_default(), meta::name(obj));
        let mut state = self.state();
        let entry = DecisionEntry::of(obj);
        if state.decisions.get(&(ns.to_string(), name.to_string())).is_some_and(|k| k.revision >= entry.revision) {
            return;
        }
        state.put_decision(ns, name, Some(entry));
    }

    /// Creates or updates one PlacementDecision to match `page`.
    async fn write_page(&self, placement: &Value, page: &DecisionPage) -> Result<(), ApiError> {
        let storage = &self.shared.storage;
        let res = &self.shared.res.decisions;
        let ns = meta::namespace(placement).unwrap_or_default();
        let opts = WriteOptions::manager(FIELD_MANAGER);
        let mut obj = match storage.get(res, Some(ns), &page.name).await {
            Ok(obj) => obj,
            Err(e) if e.code == 404 => {
                let created = storage.create(res, Some(ns), decisions::new_object(placement, page), &opts).await?;
                tracing::debug!(namespace = ns, name = %page.name, "created PlacementDecision");
                created.object
            }
            Err(e) => return Err(e),
        };
        self.wrote_decision(&obj);
        if !decisions::metadata_matches(&obj, placement, page) {
            let updated = decisions::with_metadata(obj, placement, page);
            obj = storage.update(res, Some(ns), &page.name, updated, None, &opts).await?.object;
            self.wrote_decision(&obj);
        }
        if !decisions::status_matches(&obj, page) {
            let updated = decisions::with_status(obj, page);
            obj = storage.update(res, Some(ns), &page.name, updated, Some("status"), &opts).await?.object;
            self.wrote_decision(&obj);
            tracing::debug!(namespace = ns, name = %page.name, clusters = page.decisions.len(), "wrote decisions");
        }
        Ok(())
    }

    /// Makes the stored PlacementDecisions of a placement what `pages` say, writing only
    /// those that differ and deleting the ones no longer called for.
    async fn write_decisions(&self, placement: &Value, pages: &[DecisionPage]) -> Result<(), ApiError> {
        let (ns, name, uid) =
            (meta::namespace(placement).unwrap_or_default(), meta::name(placement), meta::uid(placement));
        let key = PlacementKey::new(ns, name);
        for page in pages {
            let current =
                self.state().decisions.get(&(ns.to_string(), page.name.clone())).map(|e| e.is(name, uid, page));
            if current != Some(true) {
                self.write_page(placement, page).await?;
            }
        }
        let wanted: BTreeSet<&str> = pages.iter().map(|p| p.name.as_str()).collect();
        let extra: Vec<String> = self
            .state()
            .decisions_of
            .get(&key)
            .map(|names| names.iter().filter(|n| !wanted.contains(n.as_str())).cloned().collect())
            .unwrap_or_default();
        for pd in extra {
            match self.shared.storage.delete(&self.shared.res.decisions, Some(ns), &pd, &Default::default()).await {
                Ok(_) => tracing::debug!(namespace = ns, name = %pd, "deleted PlacementDecision"),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
            self.state().put_decision(ns, &pd, None);
        }
        let state = self.state();
        self.inventory().set_decisions(ns, name, state.decided_clusters(&key));
        Ok(())
    }

    async fn write_status(
        &self,
        placement: Value,
        schedule: &Schedule,
        pages: &[DecisionPage],
    ) -> Result<(), ApiError> {
        let Some(status) = decisions::placement_status(&placement, schedule, pages, &now_rfc3339()) else {
            return Ok(());
        };
        let (ns, name) =
            (meta::namespace(&placement).unwrap_or_default().to_string(), meta::name(&placement).to_string());
        let mut updated = placement;
        updated["status"] = status;
        let written = self
            .shared
            .storage
            .update(
                &self.shared.res.placements,
                Some(&ns),
                &name,
                updated,
                Some("status"),
                &WriteOptions::manager(FIELD_MANAGER),
            )
            .await?;
        if let Some(entry) = self.state().placements.get_mut(&ns).and_then(|m| m.get_mut(&name)) {
            entry.revision = entry.revision.max(revision(&written.object));
        }
        Ok(())
    }
}

impl Reconciler for PlacementController {
    fn name(&self) -> &'static str {
        "placement-scheduling"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        let r = &self.shared.res;
        // In the order of the index constants above.
        vec![
            r.placements.clone(),
            r.clusters.clone(),
            r.sets.clone(),
            r.bindings.clone(),
            r.scores.clone(),
            r.decisions.clone(),
            r.plugins.clone(),
        ]
    }

    fn start_keys(&self) -> Vec<String> {
        // Every (re)start lists everything again: start from nothing, so that what was
        // deleted while the watches were down is forgotten, and every placement is
        // scheduled once.
        *self.state() = State::default();
        *self.inventory() = Inventory::new();
        Vec::new()
    }

    fn keys_for(&self, index: usize, obj: &Value, deleted: bool) -> Vec<String> {
        let name = meta::name(obj);
        let ns = meta::namespace(obj).unwrap_or_default();
        let affected = match index {
            PLACEMENTS => return self.placement_event(obj, deleted),
            DECISIONS => return self.decision_event(obj, deleted),
            PLUGINS => return self.plugin_event(obj, deleted),
            CLUSTERS if deleted => self.inventory().remove_cluster(name),
            CLUSTERS => self.inventory().upsert_cluster(obj),
            SETS if deleted => self.inventory().remove_cluster_set(name),
            SETS => self.inventory().upsert_cluster_set(obj),
            BINDINGS if deleted => self.inventory().remove_binding(ns, name),
            BINDINGS => self.inventory().upsert_binding(obj),
            SCORES if deleted => self.inventory().remove_addon_score(ns, name),
            SCORES => self.inventory().upsert_addon_score(obj),
            _ => return Vec::new(),
        };
        if affected.is_empty() {
            return Vec::new();
        }
        self.state().keys(&affected)
    }

    async fn reconcile(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        let Some((ns, name)) = key.split_once('/') else { return Ok(None) };
        let placement = match self.shared.storage.get(&self.shared.res.placements, Some(ns), name).await {
            Ok(p) => p,
            Err(e) if e.code == 404 => return Ok(None),
            Err(e) => return Err(e),
        };
        if meta::deletion_timestamp(&placement).is_some() {
            return Ok(None);
        }
        if scheduling_disabled(&placement) {
            tracing::debug!(namespace = ns, name, "scheduling disabled by annotation");
            return Ok(None);
        }
        if let Some(entry) = self.state().placements.get_mut(ns).and_then(|m| m.get_mut(name)) {
            // What this reconcile read; older events about it are stale.
            entry.revision = entry.revision.max(revision(&placement));
        }
        let schedule = self.shared.schedule(placement.clone(), false).await?;
        let pages = decisions::pages(name, &schedule.groups);
        self.write_decisions(&placement, &pages).await?;
        for warning in &schedule.warnings {
            tracing::debug!(namespace = ns, name, warning = %warning, "placement scheduled with a warning");
        }
        if schedule.kept_previous {
            tracing::info!(
                namespace = ns,
                name,
                reason = %schedule.satisfied.message,
                "a plugin failed under failure policy Fail: previous decisions kept"
            );
        }
        let selected = schedule.number_of_selected_clusters;
        self.write_status(placement, &schedule, &pages).await?;
        tracing::debug!(namespace = ns, name, selected, requeue_after = ?schedule.requeue_after, "placement scheduled");
        let retry = schedule.kept_previous.then_some(RETRY_AFTER_PLUGIN_FAILURE);
        Ok(match (schedule.requeue_after, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}

/// Schedules placements on request, without writing anything (the debug endpoint).
#[derive(Clone)]
pub struct PlacementExplainer {
    shared: Arc<Shared>,
}

impl PlacementExplainer {
    /// What the scheduler decides for the placement now, and why: the [`Schedule`] as JSON
    /// (groups, conditions, `explanation`), with the placement's name, whether its
    /// scheduling is disabled, and the clusters its PlacementDecisions list now.
    pub async fn explain(&self, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let placement = self.shared.storage.get(&self.shared.res.placements, Some(namespace), name).await?;
        let disabled = scheduling_disabled(&placement);
        let schedule = self.shared.schedule(placement, true).await?;
        let current = lock(&self.shared.inventory).decisions(namespace, name).to_vec();
        let mut out = serde_json::to_value(&schedule)
            .map_err(|e| ApiError::internal(format!("the schedule of {namespace}/{name} does not serialize: {e}")))?;
        if let Some(map) = out.as_object_mut() {
            map.insert("placement".into(), json!({"namespace": namespace, "name": name}));
            map.insert("schedulingDisabled".into(), json!(disabled));
            map.insert("currentDecisions".into(), json!(current));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decision;

    fn pd(name: &str, placement: &str, rv: &str, clusters: &[&str]) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv,
            "labels": {PLACEMENT_LABEL: placement, DECISION_GROUP_INDEX_LABEL: "0", DECISION_GROUP_NAME_LABEL: ""},
            "ownerReferences": [{"uid": "u1", "controller": true}]},
            "status": {"decisions": clusters.iter().map(|c| json!({"clusterName": c, "reason": ""})).collect::<Vec<_>>()}})
    }

    #[test]
    fn decision_entries_compare_with_pages() {
        let entry = DecisionEntry::of(&pd("p-decision-1", "p", "7", &["a", "b"]));
        assert_eq!(entry.revision, 7);
        let page = |clusters: &[&str]| DecisionPage {
            name: "p-decision-1".into(),
            group_index: 0,
            group_name: String::new(),
            decisions: clusters
                .iter()
                .map(|c| Decision { cluster_name: c.to_string(), reason: String::new(), score: 3 })
                .collect(),
        };
        assert!(entry.is("p", "u1", &page(&["a", "b"])));
        assert!(!entry.is("p", "u1", &page(&["a"])));
        assert!(!entry.is("p", "u2", &page(&["a", "b"])), "another controller");
        assert!(!entry.is("q", "u1", &page(&["a", "b"])), "labelled for another placement");
        let mut fresh = pd("p-decision-1", "p", "7", &[]);
        fresh.as_object_mut().map(|o| o.remove("status"));
        assert!(!DecisionEntry::of(&fresh).is("p", "u1", &page(&[])), "no status yet");
        assert!(DecisionEntry::of(&pd("p-decision-1", "p", "7", &[])).is("p", "u1", &page(&[])));
    }

    #[test]
    fn decisions_are_indexed_by_their_placement_label() {
        let mut state = State::default();
        let p = PlacementKey::new("ns", "p");
        let q = PlacementKey::new("ns", "q");
        assert_eq!(
            state.put_decision("ns", "p-decision-1", Some(DecisionEntry::of(&pd("p-decision-1", "p", "1", &["a"])))),
            std::slice::from_ref(&p)
        );
        state.put_decision("ns", "p-decision-2", Some(DecisionEntry::of(&pd("p-decision-2", "p", "2", &["b", ""]))));
        assert_eq!(state.decided_clusters(&p), ["a", "b"], "placeholders are left out");
        // Relabelled to another placement: both are touched.
        let moved =
            state.put_decision("ns", "p-decision-2", Some(DecisionEntry::of(&pd("p-decision-2", "q", "3", &["b"]))));
        assert_eq!(moved, [p.clone(), q.clone()]);
        assert_eq!(state.decided_clusters(&p), ["a"]);
        assert_eq!(state.decided_clusters(&q), ["b"]);
        assert_eq!(state.put_decision("ns", "p-decision-1", None), std::slice::from_ref(&p));
        assert!(state.decided_clusters(&p).is_empty());
        assert!(!state.decisions_of.contains_key(&p));
    }

    #[test]
    fn plugin_names_come_from_filters_and_scorers() {
        let placement = json!({"spec": {
            "predicates": [{"requiredClusterSelector": {"plugin": {"name": "f"}}}, {"requiredClusterSelector": {}}],
            "prioritizerPolicy": {"configurations": [
                {"scoreCoordinate": {"type": "Plugin", "plugin": {"name": "s"}}},
                {"scoreCoordinate": {"type": "BuiltIn", "builtIn": "Steady"}}]}}});
        assert_eq!(plugin_names(&placement).into_iter().collect::<Vec<_>>(), ["f", "s"]);
        assert!(plugin_names(&json!({})).is_empty());
    }

    /// A controller over a fresh store with the hub's kinds (nothing is served; the tests
    /// call `keys_for` with objects as the watches would deliver them).
    fn controller(dir: &std::path::Path) -> PlacementController {
        struct NoPlugins;
        impl PluginResolver for NoPlugins {
            fn host(&self) -> &flotilla_plugin_host::PluginHost {
                unreachable!("no placement in these tests names a plugin")
            }
            fn resolve(&self, name: &str) -> Result<crate::ResolvedPlugin, String> {
                Err(format!("no plugin {name}"))
            }
        }
        let store = flotilla_store::RedbStore::open(&dir.join("store.redb"), Default::default())
            .unwrap_or_else(|e| panic!("store: {e}"));
        let kinds = flotilla_kinds::hub_kinds().unwrap_or_else(|e| panic!("kinds: {e}"));
        let registry = flotilla_apiserver::Registry::new(kinds).unwrap_or_else(|e| panic!("registry: {e:?}"));
        let storage = Storage::new(store, registry, Vec::new());
        PlacementController::new(storage, Arc::new(NoPlugins)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn placement(ns: &str, name: &str, rv: &str, spec: Value) -> Value {
        json!({"metadata": {"namespace": ns, "name": name, "resourceVersion": rv}, "spec": spec})
    }

    fn cluster(name: &str, rv: &str, labels: Value) -> Value {
        json!({"metadata": {"name": name, "resourceVersion": rv, "labels": labels}})
    }

    fn sorted(mut keys: Vec<String>) -> Vec<String> {
        keys.sort();
        keys
    }

    #[test]
    fn changes_key_only_the_placements_they_can_affect() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let c = controller(dir.path());
        c.start_keys();
        let set_label = flotilla_registration::names::CLUSTER_SET_LABEL;
        c.keys_for(SETS, &json!({"metadata": {"name": "default"}}), false);
        let eu = json!({"metadata": {"name": "eu"}, "spec": {"clusterSelector": {"selectorType": "LabelSelector",
            "labelSelector": {"matchLabels": {"region": "eu"}}}}});
        c.keys_for(SETS, &eu, false);
        c.keys_for(BINDINGS, &json!({"metadata": {"namespace": "ns1", "name": "eu"}}), false);
        c.keys_for(BINDINGS, &json!({"metadata": {"namespace": "ns2", "name": "default"}}), false);
        assert_eq!(c.keys_for(PLACEMENTS, &placement("ns1", "a", "10", json!({})), false), ["ns1/a"]);
        c.keys_for(PLACEMENTS, &placement("ns2", "b", "11", json!({})), false);
        c.keys_for(PLACEMENTS, &placement("ns2", "c", "12", json!({"clusterSets": ["other"]})), false);
        let d = json!({"predicates": [{"requiredClusterSelector": {"plugin": {"name": "f"}}}]});
        c.keys_for(PLACEMENTS, &placement("ns3", "d", "13", d), false);

        // A cluster in both sets: the placements bound to them, not c (it wants another set).
        let x = cluster("x", "20", json!({set_label: "default", "region": "eu"}));
        assert_eq!(sorted(c.keys_for(CLUSTERS, &x, false)), ["ns1/a", "ns2/b"]);
        assert!(
            c.keys_for(CLUSTERS, &cluster("x", "21", json!({set_label: "default", "region": "eu"})), false).is_empty(),
            "nothing changed"
        );
        // A cluster in no bound set affects nobody.
        assert!(c.keys_for(CLUSTERS, &cluster("y", "22", json!({set_label: "prod"})), false).is_empty());
        // Leaving a set affects the placements of the set it left.
        assert_eq!(
            sorted(c.keys_for(CLUSTERS, &cluster("x", "23", json!({set_label: "default", "region": "us"})), false)),
            ["ns1/a", "ns2/b"]
        );
        assert_eq!(
            c.keys_for(CLUSTERS, &cluster("x", "24", json!({set_label: "default", "region": "jp"})), false),
            ["ns2/b"]
        );

        // A binding keys its namespace's placements.
        assert_eq!(
            c.keys_for(BINDINGS, &json!({"metadata": {"namespace": "ns1", "name": "default"}}), false),
            ["ns1/a"]
        );

        // Someone else's PlacementDecision keys its placement once; a placement that selected
        // a cluster is keyed by that cluster's changes wherever it is.
        let pd = json!({"metadata": {"namespace": "ns3", "name": "d-decision-1", "resourceVersion": "30",
            "labels": {PLACEMENT_LABEL: "d"}}, "status": {"decisions": [{"clusterName": "y", "reason": ""}]}});
        assert_eq!(c.keys_for(DECISIONS, &pd, false), ["ns3/d"]);
        assert!(c.keys_for(DECISIONS, &pd, false).is_empty(), "already seen");
        assert_eq!(
            c.keys_for(CLUSTERS, &cluster("y", "31", json!({set_label: "prod", "new": "label"})), false),
            ["ns3/d"]
        );
        let mut newer = pd.clone();
        newer["metadata"]["resourceVersion"] = json!("32");
        assert_eq!(c.keys_for(DECISIONS, &newer, false), ["ns3/d"]);
        assert!(c.keys_for(DECISIONS, &pd, true).is_empty(), "the deletion of an older incarnation");
        assert_eq!(c.keys_for(DECISIONS, &newer, true), ["ns3/d"], "deleted by someone else");
        assert!(c.keys_for(DECISIONS, &newer, true).is_empty());

        // Events no newer than what a reconcile read or wrote are stale.
        assert!(c.keys_for(PLACEMENTS, &placement("ns1", "a", "10", json!({})), false).is_empty());
        assert_eq!(c.keys_for(PLACEMENTS, &placement("ns1", "a", "40", json!({})), false), ["ns1/a"]);

        // A WasmPlugin's spec change keys the placements naming it; its status does not.
        let plugin = |rv: &str, policy: &str, status: Value| json!({"metadata": {"name": "f", "resourceVersion": rv}, "spec": {"failurePolicy": policy}, "status": status});
        assert_eq!(c.keys_for(PLUGINS, &plugin("50", "Fail", json!({})), false), ["ns3/d"]);
        assert!(c.keys_for(PLUGINS, &plugin("51", "Fail", json!({"observedGeneration": 1})), false).is_empty());
        assert_eq!(c.keys_for(PLUGINS, &plugin("52", "Ignore", json!({})), false), ["ns3/d"]);
        assert_eq!(c.keys_for(PLUGINS, &plugin("52", "Ignore", json!({})), true), ["ns3/d"]);

        // A restart forgets everything: every placement is keyed again by the relist.
        c.start_keys();
        assert_eq!(c.keys_for(PLACEMENTS, &placement("ns1", "a", "40", json!({})), false), ["ns1/a"]);
    }
}
