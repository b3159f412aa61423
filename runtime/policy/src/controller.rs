//! The policy propagator on the hub: replicates root policies into cluster namespaces and
//! writes the root policies' and PolicySets' status.
//!
//! Event-driven: the controller watches Policies (roots and replicas alike: a replica is a
//! Policy labelled [`ROOT_POLICY_LABEL`]), PlacementBindings, PolicySets, PlacementDecisions
//! and WasmPlugins, and [`Reconciler::keys_for`] maps each change to the root policies (and
//! PolicySets) it can affect, from a small index of what it has seen: a binding to the
//! policies it names directly or through its sets, a PlacementDecision to the policies bound
//! to its Placement (only when its clusters change), a WasmPlugin to the policies whose
//! WasmPolicy templates name it (only when its digest or world changes), a replica to its
//! root. The queue is a set, so a burst of changes becomes one reconcile per root.
//!
//! Level-triggered: a reconcile reads the root, the bindings and sets of its namespace, the
//! decisions of the Placements they bind and the replicas labelled for it, decides with
//! [`crate::propagation`], and writes only the difference: replicas created, deleted, or
//! updated in their labels, annotations and spec (never their status, which the agent owns;
//! a spec someone edited on the hub is put back), then the root's status. A root's replicas
//! are written in parallel, and the watch events of the controller's own writes key nothing
//! (it remembers the resourceVersions it wrote), so an agent's status report costs one
//! reconcile of its root. Nothing it keeps in memory is needed for correctness, so a restart
//! (which lists everything again) converges from whatever it finds, including replicas whose
//! root was deleted meanwhile.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_apimachinery::selector::{FieldSelector, LabelSelector};
use flotilla_apiserver::controller::Reconciler;
use flotilla_apiserver::objects::{meta, now_rfc3339};
use flotilla_apiserver::{DeleteOptions, ListOptions, Resource, Storage, WriteOptions};
use flotilla_registration::conditions::{self, Condition};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::compliance::{self, Compliance, Member};
use crate::propagation::{self, Binding, PluginInfo, PolicySet};
use crate::{API_VERSION, PLACEMENT_LABEL, POLICY_SET_API_VERSION, ROOT_POLICY_LABEL, parse_root_label, replica_name};

/// The field manager of the controller's writes.
pub const FIELD_MANAGER: &str = "flotilla-policy-propagator";

/// Condition types on a root policy (Flotilla's additions; OCM only emits events).
pub const CONDITION_PROPAGATED: &str = "Propagated";
pub const CONDITION_MISCONFIGURED: &str = "PolicyMisconfigured";

/// Why the controller cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    NotServed(#[from] flotilla_apiserver::NotServed),
}

/// The resources the controller reads and writes.
struct Resources {
    policies: Arc<Resource>,
    bindings: Arc<Resource>,
    sets: Arc<Resource>,
    decisions: Arc<Resource>,
    plugins: Arc<Resource>,
}

impl Resources {
    fn of(storage: &Storage) -> Result<Resources, ControllerError> {
        let get = |api_version: &str, kind: &str| storage.registry.served(api_version, kind);
        Ok(Resources {
            policies: get(API_VERSION, "Policy")?,
            bindings: get(API_VERSION, "PlacementBinding")?,
            sets: get(POLICY_SET_API_VERSION, "PolicySet")?,
            decisions: get("cluster.open-cluster-management.io/v1beta1", "PlacementDecision")?,
            plugins: get("flotilla.dev/v1alpha1", "WasmPlugin")?,
        })
    }
}

// The order of `watches()`.
const POLICIES: usize = 0;
const BINDINGS: usize = 1;
const SETS: usize = 2;
const DECISIONS: usize = 3;
const PLUGINS: usize = 4;

const POLICY_KEY: &str = "policy:";
const SET_KEY: &str = "policyset:";

fn policy_key(ns: &str, name: &str) -> String {
    format!("{POLICY_KEY}{ns}/{name}")
}

fn set_key(ns: &str, name: &str) -> String {
    format!("{SET_KEY}{ns}/{name}")
}

/// A replica's root (namespace, name), from its label; `None` for a root policy.
fn root_of_replica(obj: &Value) -> Option<(String, String)> {
    let labels = meta::labels(obj);
    let value = labels.get(ROOT_POLICY_LABEL)?.as_str()?;
    parse_root_label(value).map(|(ns, name)| (ns.to_string(), name.to_string()))
}

/// The clusters a PlacementDecision lists (OCM's empty placeholders left out).
fn decided_clusters(pd: &Value) -> Vec<String> {
    pd.pointer("/status/decisions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("clusterName").and_then(Value::as_str))
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

fn plugin_info(obj: &Value) -> PluginInfo {
    let field = |f: &str| obj.pointer(f).and_then(Value::as_str).unwrap_or_default().to_string();
    PluginInfo { digest: field("/spec/digest"), world: field("/spec/world") }
}

/// The controller's index of what it has seen, only to map changes to keys.
#[derive(Default)]
struct Index {
    /// Namespace -> root policy -> the WasmPlugins it names.
    roots: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// Namespace -> name -> binding.
    bindings: BTreeMap<String, BTreeMap<String, Binding>>,
    /// Namespace -> name -> policy set.
    sets: BTreeMap<String, BTreeMap<String, PolicySet>>,
    /// (namespace, PlacementDecision) -> (its Placement, its clusters).
    decisions: BTreeMap<(String, String), (String, Vec<String>)>,
    /// WasmPlugin name -> what a replica takes from it.
    plugins: BTreeMap<String, PluginInfo>,
    /// The controller's own writes (watch index, namespace, name) -> the resourceVersion
    /// written, so that their watch events (and older ones) key nothing: a status write
    /// would otherwise bring its root straight back for a reconcile that changes nothing.
    written: HashMap<(usize, String, String), i64>,
    /// (namespace, name, uid) of the replicas the controller deleted, likewise.
    deleted: HashSet<(String, String, String)>,
}

/// A resourceVersion as a number (the store's revision); 0 when missing or not a number.
fn revision(obj: &Value) -> i64 {
    meta::resource_version(obj).parse().unwrap_or(0)
}

impl Index {
    /// Records a write of the controller's own.
    fn wrote(&mut self, index: usize, obj: &Value) {
        let key = (index, meta::namespace(obj).unwrap_or_default().to_string(), meta::name(obj).to_string());
        let rv = revision(obj);
        let slot = self.written.entry(key).or_insert(rv);
        *slot = (*slot).max(rv);
    }

    /// Whether a watch event is the echo of the controller's own write (or older).
    fn is_echo(&mut self, index: usize, obj: &Value, deleted: bool) -> bool {
        let (ns, name) = (meta::namespace(obj).unwrap_or_default().to_string(), meta::name(obj).to_string());
        if deleted {
            let ours = self.deleted.remove(&(ns.clone(), name.clone(), meta::uid(obj).to_string()));
            self.written.remove(&(index, ns, name));
            return ours;
        }
        self.written.get(&(index, ns, name)).is_some_and(|rv| revision(obj) <= *rv)
    }

    /// The policies a binding binds, directly or through the sets of its namespace, and the
    /// names its bad subjects give (their policies report the problem).
    fn policies_of_binding(&self, ns: &str, binding: &Binding) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = binding.policies.clone();
        out.extend(binding.bad_subjects.iter().map(|b| b.name.clone()));
        for set in &binding.policy_sets {
            if let Some(s) = self.sets.get(ns).and_then(|m| m.get(set)) {
                out.extend(s.policies.iter().cloned());
            }
        }
        out
    }

    /// The sets of a namespace that list `policy`.
    fn sets_listing(&self, ns: &str, policy: &str) -> Vec<String> {
        self.sets
            .get(ns)
            .into_iter()
            .flatten()
            .filter(|(_, s)| s.policies.contains(policy))
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn policy_event(&mut self, obj: &Value, deleted: bool) -> Vec<String> {
        if let Some((root_ns, root_name)) = root_of_replica(obj) {
            return vec![policy_key(&root_ns, &root_name)];
        }
        let (ns, name) = (meta::namespace(obj).unwrap_or_default().to_string(), meta::name(obj).to_string());
        if deleted {
            if let Some(m) = self.roots.get_mut(&ns) {
                m.remove(&name);
                if m.is_empty() {
                    self.roots.remove(&ns);
                }
            }
        } else {
            self.roots.entry(ns.clone()).or_default().insert(name.clone(), propagation::plugin_names(obj));
        }
        let mut keys = vec![policy_key(&ns, &name)];
        keys.extend(self.sets_listing(&ns, &name).iter().map(|s| set_key(&ns, s)));
        keys
    }

    fn binding_event(&mut self, obj: &Value, deleted: bool) -> Vec<String> {
        let (ns, name) = (meta::namespace(obj).unwrap_or_default().to_string(), meta::name(obj).to_string());
        let new = (!deleted).then(|| Binding::parse(obj));
        let old = match &new {
            Some(b) => self.bindings.entry(ns.clone()).or_default().insert(name.clone(), b.clone()),
            None => self.bindings.get_mut(&ns).and_then(|m| m.remove(&name)),
        };
        if old == new {
            return Vec::new();
        }
        let mut policies = BTreeSet::new();
        let mut sets = BTreeSet::new();
        for binding in old.iter().chain(new.iter()) {
            policies.extend(self.policies_of_binding(&ns, binding));
            sets.extend(binding.policy_sets.iter().cloned());
        }
        let mut keys: Vec<String> = policies.iter().map(|p| policy_key(&ns, p)).collect();
        keys.extend(sets.iter().map(|s| set_key(&ns, s)));
        keys
    }

    fn set_event(&mut self, obj: &Value, deleted: bool) -> Vec<String> {
        let (ns, name) = (meta::namespace(obj).unwrap_or_default().to_string(), meta::name(obj).to_string());
        let new = (!deleted).then(|| PolicySet::parse(obj));
        let old = match &new {
            Some(s) => self.sets.entry(ns.clone()).or_default().insert(name.clone(), s.clone()),
            None => self.sets.get_mut(&ns).and_then(|m| m.remove(&name)),
        };
        let mut keys = vec![set_key(&ns, &name)];
        if old != new {
            let policies: BTreeSet<&String> = old.iter().chain(new.iter()).flat_map(|s| s.policies.iter()).collect();
            keys.extend(policies.into_iter().map(|p| policy_key(&ns, p)));
        }
        keys
    }

    fn decision_event(&mut self, obj: &Value, deleted: bool) -> Vec<String> {
        let (ns, name) = (meta::namespace(obj).unwrap_or_default().to_string(), meta::name(obj).to_string());
        let id = (ns.clone(), name);
        let new = (!deleted).then(|| {
            let placement =
                meta::labels(obj).get(PLACEMENT_LABEL).and_then(Value::as_str).unwrap_or_default().to_string();
            (placement, decided_clusters(obj))
        });
        let old = match &new {
            Some(entry) => self.decisions.insert(id, entry.clone()),
            None => self.decisions.remove(&id),
        };
        if old == new {
            return Vec::new();
        }
        let placements: BTreeSet<&str> =
            old.iter().chain(new.iter()).map(|(p, _)| p.as_str()).filter(|p| !p.is_empty()).collect();
        let mut policies = BTreeSet::new();
        for binding in self.bindings.get(&ns).into_iter().flat_map(|m| m.values()) {
            if binding.placement.as_ref().is_ok_and(|p| placements.contains(p.as_str())) {
                policies.extend(self.policies_of_binding(&ns, binding));
            }
        }
        policies.iter().map(|p| policy_key(&ns, p)).collect()
    }

    fn plugin_event(&mut self, obj: &Value, deleted: bool) -> Vec<String> {
        let name = meta::name(obj).to_string();
        let new = (!deleted).then(|| plugin_info(obj));
        let old = match &new {
            Some(info) => self.plugins.insert(name.clone(), info.clone()),
            None => self.plugins.remove(&name),
        };
        if old == new {
            return Vec::new();
        }
        let mut keys = Vec::new();
        for (ns, roots) in &self.roots {
            for (root, plugins) in roots {
                if plugins.contains(&name) {
                    keys.push(policy_key(ns, root));
                }
            }
        }
        keys
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The policy propagator (run it with [`flotilla_apiserver::controller::run`]).
pub struct PolicyController {
    storage: Storage,
    res: Resources,
    index: Mutex<Index>,
}

/// How many replica writes of one root are in flight at once (a root placed on thousands
/// of clusters is replicated in parallel; the store orders the commits).
const WRITE_CONCURRENCY: usize = 16;

/// How soon a root whose replica name is taken in some cluster namespace looks again.
const RETRY_TAKEN_NAME: Duration = Duration::from_secs(30);

/// What writing one replica came to.
enum ReplicaWrite {
    /// The replica as stored.
    Stored(Value),
    /// Someone else's Policy has its name: why there is no replica.
    NameTaken(String),
}

/// The root's `Propagated` condition.
struct Propagated {
    done: bool,
    reason: &'static str,
    message: String,
}

impl Propagated {
    fn no(reason: &'static str, message: String) -> Propagated {
        Propagated { done: false, reason, message }
    }
}

/// What a root policy's reconcile decided, for its status.
struct Outcome {
    placements: Vec<Value>,
    clusters: BTreeMap<String, Option<Compliance>>,
    propagated: Propagated,
    problems: Vec<String>,
}

impl PolicyController {
    pub fn new(storage: Storage) -> Result<PolicyController, ControllerError> {
        let res = Resources::of(&storage)?;
        Ok(PolicyController { storage, res, index: Mutex::new(Index::default()) })
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        lock(&self.index)
    }

    async fn get_opt(&self, res: &Resource, ns: Option<&str>, name: &str) -> Result<Option<Value>, ApiError> {
        match self.storage.get(res, ns, name).await {
            Ok(obj) => Ok(Some(obj)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list(
        &self,
        res: &Resource,
        ns: Option<&str>,
        selector: Option<LabelSelector>,
    ) -> Result<Vec<Value>, ApiError> {
        let opts = ListOptions { label_selector: selector, ..Default::default() };
        Ok(self.storage.list(res, ns, &opts).await?.items)
    }

    /// The replicas labelled for a root, by cluster namespace.
    async fn replicas_of(&self, ns: &str, name: &str) -> Result<BTreeMap<String, Value>, ApiError> {
        // By name, then by label: the store answers a name from the keys alone, so this
        // decodes the Policies of that name only, not every replica of every root.
        let replica = replica_name(ns, name);
        let by_name = FieldSelector::parse(&format!("metadata.name={replica}"))
            .map_err(|e| ApiError::internal(format!("selecting Policies named {replica}: {e}")))?;
        let opts = ListOptions { field_selector: Some(by_name), ..Default::default() };
        let items = self.storage.list(&self.res.policies, None, &opts).await?.items;
        let ours = Some((ns.to_string(), name.to_string()));
        Ok(items
            .into_iter()
            .filter(|r| root_of_replica(r) == ours)
            .map(|r| (meta::namespace(&r).unwrap_or_default().to_string(), r))
            .collect())
    }

    /// Each Placement's decided clusters.
    async fn decided(
        &self,
        ns: &str,
        placements: BTreeSet<&str>,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, ApiError> {
        let mut out = BTreeMap::new();
        for placement in placements {
            let clusters: BTreeSet<String> = match LabelSelector::parse(&format!("{PLACEMENT_LABEL}={placement}")) {
                Ok(selector) => self
                    .list(&self.res.decisions, Some(ns), Some(selector))
                    .await?
                    .iter()
                    .flat_map(decided_clusters)
                    .collect(),
                // A Placement name that is no label value has no PlacementDecisions.
                Err(_) => BTreeSet::new(),
            };
            out.insert(placement.to_string(), clusters);
        }
        Ok(out)
    }

    async fn plugins(&self, names: BTreeSet<String>) -> Result<BTreeMap<String, Option<PluginInfo>>, ApiError> {
        let mut out = BTreeMap::new();
        for name in names {
            let info = self.get_opt(&self.res.plugins, None, &name).await?.map(|p| plugin_info(&p));
            out.insert(name, info);
        }
        Ok(out)
    }

    async fn delete_replica(&self, replica: &Value) -> Result<(), ApiError> {
        let (ns, name) = (meta::namespace(replica).unwrap_or_default(), meta::name(replica));
        let opts = DeleteOptions { precondition_uid: Some(meta::uid(replica).to_string()), ..Default::default() };
        match self.storage.delete(&self.res.policies, Some(ns), name, &opts).await {
            Ok(_) => {
                self.index().deleted.insert((ns.to_string(), name.to_string(), meta::uid(replica).to_string()));
                tracing::info!(namespace = ns, name, "replicated policy removed");
                Ok(())
            }
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn reconcile_policy(&self, ns: &str, name: &str) -> Result<Option<Duration>, ApiError> {
        let root = self
            .get_opt(&self.res.policies, Some(ns), name)
            .await?
            .filter(|r| meta::deletion_timestamp(r).is_none() && root_of_replica(r).is_none());
        let existing = self.replicas_of(ns, name).await?;
        let Some(root) = root else {
            for replica in existing.values() {
                self.delete_replica(replica).await?;
            }
            return Ok(None);
        };

        let bindings: Vec<Binding> =
            self.list(&self.res.bindings, Some(ns), None).await?.iter().map(Binding::parse).collect();
        let sets: Vec<PolicySet> =
            self.list(&self.res.sets, Some(ns), None).await?.iter().map(PolicySet::parse).collect();
        let routing = propagation::routes(name, &bindings, &sets);
        let decided = self.decided(ns, routing.placements()).await?;
        let placed = propagation::place(&routing.routes, &decided);
        let plugins = self.plugins(propagation::plugin_names(&root)).await?;

        let mut problems = routing.problems.clone();
        let name_problem = propagation::replica_name_problem(ns, name);
        problems.extend(name_problem.iter().cloned());
        problems.extend(propagation::plugin_problems(&root, &plugins));
        let disabled = root.pointer("/spec/disabled").and_then(Value::as_bool).unwrap_or(false);
        let propagated = if let Some(problem) = &name_problem {
            Propagated::no("ReplicaNameTooLong", problem.clone())
        } else if disabled {
            Propagated::no("Disabled", "spec.disabled is true: the policy is removed from every cluster".to_string())
        } else if routing.routes.is_empty() {
            let mut message = format!(
                "no PlacementBinding in namespace {ns} binds the policy (directly or through a PolicySet) to a Placement"
            );
            if !routing.problems.is_empty() {
                message.push_str(&format!(": {}", routing.problems.join("; ")));
            }
            Propagated::no("NotBound", message)
        } else {
            // The message counts the replicas written (below).
            Propagated { done: true, reason: "Propagated", message: String::new() }
        };
        let problems_before_writes = problems.len();
        let desired: BTreeMap<String, bool> = if propagated.done { placed.clusters.clone() } else { BTreeMap::new() };

        // Removals first, then creations and updates; one failure does not hold back the
        // others or the status, and is returned at the end to be retried.
        let mut first_error = None;
        // Futures built in loops rather than by closures over the stream: a closure's
        // lifetimes would keep the reconcile future from being provably Send.
        let mut removals = Vec::new();
        for (cluster, replica) in &existing {
            if !desired.contains_key(cluster) {
                removals.push(self.delete_replica(replica));
            }
        }
        let removed: Vec<Result<(), ApiError>> =
            futures::stream::iter(removals).buffer_unordered(WRITE_CONCURRENCY).collect().await;
        for result in removed {
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        let mut writes = Vec::new();
        for (cluster, enforce) in &desired {
            let want = propagation::replica(&root, cluster, *enforce, &plugins);
            let stored = existing.get(cluster);
            writes.push(async move { (cluster, self.write_replica(ns, name, cluster, stored, want).await) });
        }
        let written: Vec<_> = futures::stream::iter(writes).buffer_unordered(WRITE_CONCURRENCY).collect().await;
        let mut clusters = BTreeMap::new();
        for (cluster, result) in written {
            match result {
                Ok(ReplicaWrite::Stored(obj)) => {
                    clusters.insert(cluster.clone(), Compliance::of(&obj));
                }
                Ok(ReplicaWrite::NameTaken(problem)) => problems.push(problem),
                Err(e) => {
                    tracing::debug!(namespace = %cluster, root = %replica_name(ns, name), error = %e, "replica not written");
                    clusters.insert(cluster.clone(), existing.get(cluster).and_then(Compliance::of));
                    first_error.get_or_insert(e);
                }
            }
        }
        problems[problems_before_writes..].sort();
        // A name taken by someone else's Policy may be freed later; that Policy's deletion is
        // no event of this root, so look again.
        let name_taken = problems.len() > problems_before_writes;
        let mut propagated = propagated;
        if propagated.done {
            let n = clusters.len();
            propagated.message = format!("replicated to {n} cluster{}", if n == 1 { "" } else { "s" });
        }
        let placements = placed.placements.iter().map(propagation::PlacementStatus::to_json).collect();
        self.write_root_status(root, Outcome { placements, clusters, propagated, problems }).await?;
        match first_error {
            Some(e) => Err(e),
            None => Ok(name_taken.then_some(RETRY_TAKEN_NAME)),
        }
    }

    /// Creates or updates one replica (metadata and spec only). A Policy of the replica's name
    /// that is not labelled for this root is someone else's: it is left alone and reported.
    async fn write_replica(
        &self,
        ns: &str,
        name: &str,
        cluster: &str,
        stored: Option<&Value>,
        want: Value,
    ) -> Result<ReplicaWrite, ApiError> {
        let opts = WriteOptions::manager(FIELD_MANAGER);
        if let Some(stored) = stored {
            if propagation::replica_matches(stored, &want) {
                return Ok(ReplicaWrite::Stored(stored.clone()));
            }
            let updated = propagation::updated_replica(stored, &want);
            let written = self
                .storage
                .update(&self.res.policies, Some(cluster), meta::name(stored), updated, None, &opts)
                .await?;
            self.index().wrote(POLICIES, &written.object);
            tracing::info!(namespace = %cluster, name = meta::name(stored), "replicated policy updated");
            return Ok(ReplicaWrite::Stored(written.object));
        }
        let replica = replica_name(ns, name);
        match self.storage.create(&self.res.policies, Some(cluster), want, &opts).await {
            Ok(written) => {
                self.index().wrote(POLICIES, &written.object);
                tracing::info!(namespace = %cluster, name = %replica, "policy replicated");
                Ok(ReplicaWrite::Stored(written.object))
            }
            Err(e) if e.code == 409 => {
                let other = self.get_opt(&self.res.policies, Some(cluster), &replica).await?;
                let ours = Some((ns.to_string(), name.to_string()));
                match other {
                    Some(other) if root_of_replica(&other) != ours => Ok(ReplicaWrite::NameTaken(format!(
                        "Policy {cluster}/{replica} exists and is not a replica of this policy (it lacks the label \
                         {ROOT_POLICY_LABEL}={replica}): it is left alone, and cluster {cluster} gets no replica"
                    ))),
                    // Ours after all (created meanwhile): the next reconcile sees it.
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn write_root_status(&self, root: Value, outcome: Outcome) -> Result<(), ApiError> {
        let old = root.get("status").cloned().unwrap_or_else(|| json!({}));
        let (entries, overall, summary) = compliance::cluster_status(&outcome.clusters);
        let mut status = Map::new();
        if !outcome.placements.is_empty() {
            status.insert("placement".into(), Value::Array(outcome.placements));
        }
        if !entries.is_empty() {
            status.insert("status".into(), Value::Array(entries));
        }
        if let Some(state) = overall {
            status.insert("compliant".into(), json!(state.as_str()));
        }
        status.insert("summary".into(), summary.to_json());
        let mut conds = conditions::of(&root);
        let generation = meta::generation(&root);
        let now = now_rfc3339();
        let Propagated { done, reason, message } = &outcome.propagated;
        let status_word = if *done { conditions::TRUE } else { conditions::FALSE };
        conditions::set(
            &mut conds,
            &Condition { type_: CONDITION_PROPAGATED, status: status_word, reason, message },
            generation,
            &now,
        );
        let joined = outcome.problems.join("; ");
        let misconfigured = if outcome.problems.is_empty() {
            Condition {
                type_: CONDITION_MISCONFIGURED,
                status: conditions::FALSE,
                reason: "Succeedconfigured",
                message: "the bindings, sets and plugins the policy names are valid",
            }
        } else {
            Condition {
                type_: CONDITION_MISCONFIGURED,
                status: conditions::TRUE,
                reason: "Misconfigured",
                message: &joined,
            }
        };
        conditions::set(&mut conds, &misconfigured, generation, &now);
        status.insert("conditions".into(), Value::Array(conds));
        let status = Value::Object(status);
        if status == old {
            return Ok(());
        }
        let (ns, name) = (meta::namespace(&root).unwrap_or_default().to_string(), meta::name(&root).to_string());
        let mut updated = root;
        updated["status"] = status;
        let written = self
            .storage
            .update(
                &self.res.policies,
                Some(&ns),
                &name,
                updated,
                Some("status"),
                &WriteOptions::manager(FIELD_MANAGER),
            )
            .await?;
        self.index().wrote(POLICIES, &written.object);
        tracing::debug!(namespace = %ns, name = %name, "policy status written");
        Ok(())
    }

    async fn reconcile_set(&self, ns: &str, name: &str) -> Result<Option<Duration>, ApiError> {
        let Some(set) = self.get_opt(&self.res.sets, Some(ns), name).await? else { return Ok(None) };
        if meta::deletion_timestamp(&set).is_some() {
            return Ok(None);
        }
        let parsed = PolicySet::parse(&set);
        let mut placements: Vec<Value> = Vec::new();
        for binding in self.list(&self.res.bindings, Some(ns), None).await?.iter().map(Binding::parse) {
            if let (true, Ok(placement)) = (binding.policy_sets.contains(name), &binding.placement) {
                placements.push(json!({"placementBinding": binding.name, "placement": placement}));
            }
        }
        let mut members = BTreeMap::new();
        for policy in &parsed.policies {
            let member = match self.get_opt(&self.res.policies, Some(ns), policy).await? {
                None => Member::Missing,
                Some(p) if p.pointer("/spec/disabled").and_then(Value::as_bool) == Some(true) => Member::Disabled,
                Some(p) => Member::Enabled(Compliance::of(&p)),
            };
            members.insert(policy.clone(), member);
        }
        let (compliant, mut message) = compliance::policy_set_status(&members);
        let stray: Vec<&str> =
            parsed.exclusions.keys().filter(|p| !parsed.policies.contains(*p)).map(String::as_str).collect();
        if !stray.is_empty() {
            if !message.is_empty() {
                message.push_str("; ");
            }
            message.push_str(&format!("Exclusions name policies not in the set (no effect): {}", stray.join(", ")));
        }
        let mut status = Map::new();
        if let Some(state) = compliant {
            status.insert("compliant".into(), json!(state.as_str()));
        }
        if !message.is_empty() {
            status.insert("statusMessage".into(), json!(message));
        }
        if !placements.is_empty() {
            status.insert("placement".into(), Value::Array(placements));
        }
        let exclusions: Vec<Value> = parsed
            .exclusions
            .iter()
            .filter(|(policy, clusters)| parsed.policies.contains(*policy) && !clusters.is_empty())
            .map(|(policy, clusters)| json!({"policyName": policy, "clusters": clusters}))
            .collect();
        if !exclusions.is_empty() {
            status.insert("exclusions".into(), Value::Array(exclusions));
        }
        let status = Value::Object(status);
        if set.get("status").cloned().unwrap_or_else(|| json!({})) == status {
            return Ok(None);
        }
        let mut updated = set;
        updated["status"] = status;
        let written = self
            .storage
            .update(&self.res.sets, Some(ns), name, updated, Some("status"), &WriteOptions::manager(FIELD_MANAGER))
            .await?;
        self.index().wrote(SETS, &written.object);
        Ok(None)
    }
}

impl Reconciler for PolicyController {
    fn name(&self) -> &'static str {
        "policy-propagator"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        let r = &self.res;
        // In the order of the index constants above.
        vec![r.policies.clone(), r.bindings.clone(), r.sets.clone(), r.decisions.clone(), r.plugins.clone()]
    }

    fn start_keys(&self) -> Vec<String> {
        // Every (re)start lists everything again: forget what was deleted meanwhile.
        *self.index() = Index::default();
        Vec::new()
    }

    fn keys_for(&self, index: usize, obj: &Value, deleted: bool) -> Vec<String> {
        let mut idx = self.index();
        if idx.is_echo(index, obj, deleted) {
            // A root's status written here still changes its sets' compliance.
            return match (index, root_of_replica(obj)) {
                (POLICIES, None) => {
                    let ns = meta::namespace(obj).unwrap_or_default();
                    idx.sets_listing(ns, meta::name(obj)).iter().map(|s| set_key(ns, s)).collect()
                }
                _ => Vec::new(),
            };
        }
        match index {
            POLICIES => idx.policy_event(obj, deleted),
            BINDINGS => idx.binding_event(obj, deleted),
            SETS => idx.set_event(obj, deleted),
            DECISIONS => idx.decision_event(obj, deleted),
            PLUGINS => idx.plugin_event(obj, deleted),
            _ => Vec::new(),
        }
    }

    async fn reconcile(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        if let Some((ns, name)) = key.strip_prefix(POLICY_KEY).and_then(|k| k.split_once('/')) {
            return self.reconcile_policy(ns, name).await;
        }
        if let Some((ns, name)) = key.strip_prefix(SET_KEY).and_then(|k| k.split_once('/')) {
            return self.reconcile_set(ns, name).await;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(ns: &str, name: &str, body: Value) -> Value {
        let mut out = json!({"metadata": {"namespace": ns, "name": name}});
        if let (Some(o), Some(b)) = (out.as_object_mut(), body.as_object()) {
            o.extend(b.clone());
        }
        out
    }

    fn binding(ns: &str, name: &str, placement: &str, subjects: Value) -> Value {
        obj(
            ns,
            name,
            json!({"placementRef": {"apiGroup": "cluster.open-cluster-management.io", "kind": "Placement", "name": placement}, "subjects": subjects}),
        )
    }

    fn sorted(mut keys: Vec<String>) -> Vec<String> {
        keys.sort();
        keys
    }

    #[test]
    fn changes_key_only_the_policies_they_affect() {
        let mut idx = Index::default();
        let wasm = json!({"spec": {"policy-templates": [{"objectDefinition": {"apiVersion": "flotilla.dev/v1alpha1",
            "kind": "WasmPolicy", "spec": {"plugin": {"name": "no-priv"}}}}]}});
        assert_eq!(idx.policy_event(&obj("ns", "a", wasm), false), ["policy:ns/a"]);
        idx.policy_event(&obj("ns", "b", json!({})), false);
        idx.policy_event(&obj("other", "a", json!({})), false);

        let set = obj("ns", "s", json!({"spec": {"policies": ["b"]}}));
        assert_eq!(idx.set_event(&set, false), ["policyset:ns/s", "policy:ns/b"]);
        assert_eq!(idx.set_event(&set, false), ["policyset:ns/s"], "unchanged: only its own status");
        assert_eq!(idx.policy_event(&obj("ns", "b", json!({})), false), ["policy:ns/b", "policyset:ns/s"]);

        let pb = binding(
            "ns",
            "pb",
            "p",
            json!([{"apiGroup": "policy.open-cluster-management.io", "kind": "Policy", "name": "a"},
            {"apiGroup": "policy.open-cluster-management.io", "kind": "PolicySet", "name": "s"}]),
        );
        assert_eq!(sorted(idx.binding_event(&pb, false)), ["policy:ns/a", "policy:ns/b", "policyset:ns/s"]);
        assert!(idx.binding_event(&pb, false).is_empty(), "unchanged");

        // Decisions key the policies bound to their placement, only when their clusters change.
        let pd = |clusters: &[&str]| {
            obj(
                "ns",
                "p-decision-1",
                json!({"metadata": {"namespace": "ns", "name": "p-decision-1", "labels": {PLACEMENT_LABEL: "p"}},
                "status": {"decisions": clusters.iter().map(|c| json!({"clusterName": c, "reason": ""})).collect::<Vec<_>>()}}),
            )
        };
        assert_eq!(sorted(idx.decision_event(&pd(&["c1"]), false)), ["policy:ns/a", "policy:ns/b"]);
        assert!(idx.decision_event(&pd(&["c1"]), false).is_empty());
        let elsewhere = obj(
            "other",
            "p-decision-1",
            json!({"metadata": {"namespace": "other", "name": "p-decision-1",
            "labels": {PLACEMENT_LABEL: "p"}}, "status": {"decisions": [{"clusterName": "c1"}]}}),
        );
        assert!(idx.decision_event(&elsewhere, false).is_empty(), "no binding in that namespace");

        // A replica keys its root.
        let replica = obj(
            "c1",
            "ns.a",
            json!({"metadata": {"namespace": "c1", "name": "ns.a", "labels": {ROOT_POLICY_LABEL: "ns.a"}}}),
        );
        assert_eq!(idx.policy_event(&replica, false), ["policy:ns/a"]);
        assert!(!idx.roots.contains_key("c1"), "replicas are not roots");

        // A plugin's digest change keys the policies naming it; the same spec does not.
        let plugin = |digest: &str| json!({"metadata": {"name": "no-priv"}, "spec": {"digest": digest, "world": "policy-check"}});
        assert_eq!(idx.plugin_event(&plugin("sha256:1"), false), ["policy:ns/a"]);
        assert!(idx.plugin_event(&plugin("sha256:1"), false).is_empty());
        assert_eq!(idx.plugin_event(&plugin("sha256:2"), false), ["policy:ns/a"]);
        assert_eq!(idx.plugin_event(&plugin("sha256:2"), true), ["policy:ns/a"]);

        // The controller's own writes come back as events that key nothing, except that a
        // root's status (compliance) still keys its sets; anyone else's later write keys.
        let mut root = obj("ns", "b", json!({"metadata": {"namespace": "ns", "name": "b", "resourceVersion": "40"}}));
        idx.wrote(POLICIES, &root);
        assert!(idx.is_echo(POLICIES, &root, false));
        root["metadata"]["resourceVersion"] = json!("41");
        assert!(!idx.is_echo(POLICIES, &root, false), "someone else's write");
        let gone = obj("c1", "ns.a", json!({"metadata": {"namespace": "c1", "name": "ns.a", "uid": "u1"}}));
        idx.deleted.insert(("c1".into(), "ns.a".into(), "u1".into()));
        assert!(idx.is_echo(POLICIES, &gone, true), "a deletion of ours");
        assert!(!idx.is_echo(POLICIES, &gone, true), "seen once");

        // The binding goes: its policies are keyed once more (their replicas go).
        assert_eq!(sorted(idx.binding_event(&pb, true)), ["policy:ns/a", "policy:ns/b", "policyset:ns/s"]);
    }
}
