//! What scheduling reads, kept current from watch events: the clusters (a columnar
//! [`ClusterTable`] plus taints, termination and cluster-set membership per row), the
//! cluster sets with their selectors compiled once, the bindings per namespace, the
//! AddOnPlacementScores, and every placement's current decisions with per-cluster counts
//! (for `Balance`).
//!
//! Each change returns what it can affect ([`Affected`]), so the controller reschedules only
//! those placements.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use cel_interpreter::Value as Cel;
use flotilla_apimachinery::selector::LabelSelector;
use flotilla_apiserver::objects::meta;
use flotilla_plugin_host::{ClusterInfo, ClusterTable};
use flotilla_registration::names::CLUSTER_SET_LABEL;
use jiff::Timestamp;
use serde_json::Value;

use crate::cel::{CelCache, Memo};
use crate::plugins::PreparedCache;
use crate::taints::Taint;

/// A Placement by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlacementKey {
    pub namespace: String,
    pub name: String,
}

impl PlacementKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> PlacementKey {
        PlacementKey { namespace: namespace.into(), name: name.into() }
    }
}

/// Which placements a change can affect. A placement is affected when it is one of
/// `placements` (those that have the cluster among their decisions), or when it is in one of
/// `namespaces`, its `spec.clusterSets` is empty or names one of `cluster_sets` (all sets
/// when `cluster_sets` is `None`), and its predicates can reach one of `cluster_states`
/// (any placement when that is `None`). Use [`Affected::affects`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Affected {
    pub namespaces: BTreeSet<String>,
    /// `None`: any placement in `namespaces`, whatever its cluster sets.
    pub cluster_sets: Option<BTreeSet<String>>,
    pub placements: BTreeSet<PlacementKey>,
    /// For a cluster's change: its labels and claims before and after. A placement that does
    /// not hold the cluster and whose predicates select neither state can neither gain nor
    /// lose it, so its decisions stand.
    pub cluster_states: Option<Vec<ClusterLabels>>,
}

/// A cluster's labels and claims, as predicates see them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterLabels {
    pub labels: BTreeMap<String, String>,
    pub claims: BTreeMap<String, String>,
}

impl ClusterLabels {
    fn of(info: &ClusterInfo) -> ClusterLabels {
        ClusterLabels { labels: info.labels.clone(), claims: info.claims.clone() }
    }
}

/// Which clusters a placement's predicates can select, by their label and claim selectors
/// alone: a cluster they do not select is out whatever the CEL expressions and plugin filters
/// say, so only the selectors are needed to tell which cluster changes concern it.
#[derive(Clone, Debug)]
pub struct Reach {
    /// Per predicate (ORed): its label and claim selectors. `None`: every cluster (no
    /// predicates, or selectors that do not parse: the schedule reports those).
    predicates: Option<Vec<(LabelSelector, LabelSelector)>>,
}

impl Reach {
    /// The reach of a Placement object (its `spec.predicates`).
    pub fn of(placement: &Value) -> Reach {
        let items = placement.pointer("/spec/predicates").and_then(Value::as_array).filter(|a| !a.is_empty());
        let predicates = items.and_then(|items| {
            items
                .iter()
                .map(|p| {
                    let sel = p.get("requiredClusterSelector").unwrap_or(&Value::Null);
                    Some((
                        crate::spec::label_selector(sel.get("labelSelector")).ok()?,
                        crate::spec::claim_selector(sel.get("claimSelector")).ok()?,
                    ))
                })
                .collect::<Option<Vec<_>>>()
        });
        Reach { predicates }
    }

    /// Whether a cluster with these labels and claims passes one of the predicates' selectors.
    pub fn reaches(&self, cluster: &ClusterLabels) -> bool {
        let Some(predicates) = &self.predicates else { return true };
        predicates
            .iter()
            .any(|(labels, claims)| labels.matches_map(&cluster.labels) && claims.matches_map(&cluster.claims))
    }
}

impl Affected {
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.placements.is_empty()
    }

    /// Whether `placement` (a Placement object) has to be scheduled again.
    pub fn affects(&self, placement: &Value) -> bool {
        let reach = if self.cluster_states.is_some() { Reach::of(placement) } else { Reach { predicates: None } };
        self.affects_with(placement, &reach)
    }

    /// [`affects`](Self::affects) with the placement's [`Reach`] computed beforehand (the
    /// controller keeps it per placement).
    pub fn affects_with(&self, placement: &Value, reach: &Reach) -> bool {
        let ns = placement.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
        let name = placement.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        if self.placements.contains(&PlacementKey::new(ns, name)) {
            return true;
        }
        if !self.namespaces.contains(ns) {
            return false;
        }
        if let Some(sets) = &self.cluster_sets {
            let wanted: Vec<&str> = placement
                .pointer("/spec/clusterSets")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !(wanted.is_empty() || wanted.iter().any(|s| sets.contains(*s))) {
                return false;
            }
        }
        self.cluster_states.as_ref().is_none_or(|states| states.iter().any(|s| reach.reaches(s)))
    }

    /// Both changes together.
    pub fn merge(&mut self, other: Affected) {
        // Narrowing by cluster states holds only when every namespace-wide part is a
        // cluster's change.
        self.cluster_states = match (self.cluster_states.take(), other.cluster_states) {
            (Some(mut a), Some(b)) => {
                a.extend(b);
                Some(a)
            }
            (None, states) if self.namespaces.is_empty() => states,
            (states, None) if other.namespaces.is_empty() => states,
            _ => None,
        };
        self.namespaces.extend(other.namespaces);
        self.placements.extend(other.placements);
        self.cluster_sets = match (self.cluster_sets.take(), other.cluster_sets) {
            (Some(mut a), Some(b)) => {
                a.extend(b);
                Some(a)
            }
            _ => None,
        };
    }
}

/// How a ManagedClusterSet selects clusters, compiled once per set change. Matches as
/// `flotilla_registration::clustersets::selects` does (a test checks they agree).
#[derive(Clone, Debug)]
pub(crate) enum SetSelector {
    /// `ExclusiveClusterSetLabel`: the cluster's `cluster.open-cluster-management.io/clusterset`
    /// label names the set.
    Exclusive(String),
    Labels(LabelSelector),
    /// An invalid selector or an unknown type selects nothing.
    Nothing,
}

impl SetSelector {
    pub fn compile(set: &Value) -> SetSelector {
        let name = set.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let selector = set.pointer("/spec/clusterSelector");
        let kind =
            selector.and_then(|s| s.get("selectorType")).and_then(Value::as_str).unwrap_or("ExclusiveClusterSetLabel");
        match kind {
            "ExclusiveClusterSetLabel" => SetSelector::Exclusive(name.to_string()),
            "LabelSelector" => {
                let empty = Value::Object(Default::default());
                let ls = selector.and_then(|s| s.get("labelSelector")).filter(|v| !v.is_null()).unwrap_or(&empty);
                LabelSelector::from_object(ls).map(SetSelector::Labels).unwrap_or(SetSelector::Nothing)
            }
            _ => SetSelector::Nothing,
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            SetSelector::Exclusive(name) => labels.get(CLUSTER_SET_LABEL) == Some(name),
            SetSelector::Labels(s) => s.matches_map(labels),
            SetSelector::Nothing => false,
        }
    }
}

/// What scheduling needs of a cluster beyond its [`ClusterInfo`], one per table row.
#[derive(Debug, Default)]
pub(crate) struct Side {
    pub taints: Vec<Taint>,
    /// `metadata.deletionTimestamp` is set: never selected (OCM #472).
    pub terminating: bool,
    /// The sets the cluster is in, sorted.
    pub sets: Vec<Arc<str>>,
    /// The ManagedCluster as a CEL value, built on first use by a CEL predicate.
    pub cel: OnceLock<Cel>,
    /// CEL results for this version of the cluster.
    pub cel_memo: Memo,
}

/// One AddOnPlacementScore: `status.scores` and `status.validUntil`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct AddonScore {
    pub scores: Vec<(String, i64)>,
    pub valid_until: Option<Timestamp>,
}

impl AddonScore {
    fn from_object(obj: &Value) -> AddonScore {
        let scores = obj
            .pointer("/status/scores")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|s| Some((s.get("name")?.as_str()?.to_string(), s.get("value")?.as_i64()?)))
                    .collect()
            })
            .unwrap_or_default();
        let valid_until =
            obj.pointer("/status/validUntil").and_then(Value::as_str).and_then(|s| s.parse::<Timestamp>().ok());
        AddonScore { scores, valid_until }
    }

    pub fn score(&self, name: &str) -> Option<i64> {
        self.scores.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// The fleet and everything else scheduling reads. `Default` is empty; the controller fills
/// it from its watches and keeps it current, and every [`schedule`](crate::schedule) reads it.
#[derive(Default)]
pub struct Inventory {
    pub(crate) table: ClusterTable,
    /// Parallel to `table`'s rows (moved with them on removal).
    pub(crate) side: Vec<Side>,
    /// Rows by cluster name: candidates come out sorted without sorting.
    pub(crate) by_name: BTreeMap<String, usize>,
    pub(crate) sets: BTreeMap<String, SetSelector>,
    /// Namespace -> names of its ManagedClusterSetBindings (a binding is named as its set).
    pub(crate) bindings: BTreeMap<String, BTreeSet<String>>,
    /// Set name -> namespaces with a binding of that name.
    bindings_by_set: HashMap<String, BTreeSet<String>>,
    /// Cluster (the score's namespace) -> score name -> score.
    pub(crate) addon_scores: HashMap<String, HashMap<String, AddonScore>>,
    pub(crate) decisions: HashMap<PlacementKey, Vec<String>>,
    /// Cluster -> the placements that selected it.
    by_cluster: HashMap<String, HashSet<PlacementKey>>,
    /// Number of placements selecting a cluster -> how many clusters have that number.
    count_histogram: BTreeMap<usize, usize>,
    pub(crate) cel_cache: CelCache,
    pub(crate) prepared: PreparedCache,
}

impl std::fmt::Debug for Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory")
            .field("clusters", &self.table.len())
            .field("sets", &self.sets.len())
            .field("namespaces_with_bindings", &self.bindings.len())
            .field("placements_with_decisions", &self.decisions.len())
            .finish()
    }
}

fn namespace_of(obj: &Value) -> &str {
    meta::namespace(obj).unwrap_or_default()
}

/// Whether two versions of an object differ in anything but bookkeeping
/// (`resourceVersion`, `managedFields`): a CEL predicate may read any other field.
fn same_object(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else { return a == b };
    if a.len() != b.len() {
        return false;
    }
    a.iter().all(|(k, va)| {
        let Some(vb) = b.get(k) else { return false };
        if k != "metadata" {
            return va == vb;
        }
        let (Some(ma), Some(mb)) = (va.as_object(), vb.as_object()) else { return va == vb };
        let skip = |k: &String| k == "resourceVersion" || k == "managedFields";
        let ka: Vec<_> = ma.keys().filter(|k| !skip(k)).collect();
        let kb: Vec<_> = mb.keys().filter(|k| !skip(k)).collect();
        ka.len() == kb.len() && ka.iter().all(|k| mb.get(*k) == ma.get(*k))
    })
}

/// Moves one cluster from `from` decisions to `to` in the histogram.
fn move_count(histogram: &mut BTreeMap<usize, usize>, from: usize, to: usize) {
    if from > 0
        && let Some(n) = histogram.get_mut(&from)
    {
        *n -= 1;
        if *n == 0 {
            histogram.remove(&from);
        }
    }
    if to > 0 {
        *histogram.entry(to).or_default() += 1;
    }
}

impl Inventory {
    pub fn new() -> Inventory {
        Inventory::default()
    }

    /// The clusters by column, in row order.
    pub fn clusters(&self) -> &ClusterTable {
        &self.table
    }

    pub fn cluster_count(&self) -> usize {
        self.table.len()
    }

    /// How many (plugin, configuration) pairs have been validated and kept: each is
    /// validated once, not once per schedule.
    pub fn prepared_configurations(&self) -> usize {
        self.prepared.len()
    }

    /// Forgets the configurations validated by a component (its `sha256:...` digest), when
    /// its WasmPlugin is deleted or replaced. Placements that still name the plugin validate
    /// their configuration again on their next schedule.
    pub fn forget_plugin(&self, digest: &str) {
        self.prepared.forget(digest);
    }

    /// The cluster sets `cluster` is in, sorted.
    pub fn sets_of_cluster(&self, cluster: &str) -> Vec<String> {
        self.table
            .row_of(cluster)
            .map(|r| self.side[r].sets.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default()
    }

    /// A placement's current decisions, as last given to [`set_decisions`](Self::set_decisions).
    pub fn decisions(&self, namespace: &str, placement: &str) -> &[String] {
        self.decisions.get(&PlacementKey::new(namespace, placement)).map(Vec::as_slice).unwrap_or_default()
    }

    /// The placements that can select `cluster` as the inventory is now: those in namespaces
    /// bound to a set the cluster is in, and those that selected it.
    pub fn placements_affected_by_cluster(&self, cluster: &str) -> Affected {
        let sets: BTreeSet<String> = self.sets_of_cluster(cluster).into_iter().collect();
        self.affected_by_sets(&sets, Some(cluster), None)
    }

    fn affected_by_sets(
        &self,
        sets: &BTreeSet<String>,
        cluster: Option<&str>,
        cluster_states: Option<Vec<ClusterLabels>>,
    ) -> Affected {
        let namespaces =
            sets.iter().filter_map(|s| self.bindings_by_set.get(s)).flat_map(|ns| ns.iter().cloned()).collect();
        let placements =
            cluster.and_then(|c| self.by_cluster.get(c)).map(|p| p.iter().cloned().collect()).unwrap_or_default();
        Affected { namespaces, cluster_sets: Some(sets.clone()), placements, cluster_states }
    }

    fn sets_matching(&self, labels: &BTreeMap<String, String>) -> Vec<Arc<str>> {
        self.sets.iter().filter(|(_, sel)| sel.matches(labels)).map(|(name, _)| Arc::from(name.as_str())).collect()
    }

    /// Adds or updates a ManagedCluster. Returns the placements it can affect: those that
    /// could select it before or after the change (nothing when only bookkeeping fields
    /// changed).
    pub fn upsert_cluster(&mut self, managed_cluster: &Value) -> Affected {
        let info = ClusterInfo::from_managed_cluster(managed_cluster);
        if info.name.is_empty() {
            return Affected::default();
        }
        let name = info.name.clone();
        let mut before: BTreeSet<String> = BTreeSet::new();
        let mut states = vec![ClusterLabels::of(&info)];
        if let Some(row) = self.table.row_of(&name) {
            let old = &self.table.clusters()[row];
            if old.object.as_ref().is_some_and(|o| same_object(o, managed_cluster)) {
                return Affected::default();
            }
            before = self.side[row].sets.iter().map(|s| s.to_string()).collect();
            let old = ClusterLabels::of(old);
            if old != states[0] {
                states.push(old);
            }
        }
        let side = Side {
            taints: Taint::list_of(managed_cluster),
            terminating: managed_cluster.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()),
            sets: self.sets_matching(&info.labels),
            cel: OnceLock::new(),
            cel_memo: Memo::default(),
        };
        let mut sets = before;
        sets.extend(side.sets.iter().map(|s| s.to_string()));
        self.table.upsert(info);
        match self.table.row_of(&name) {
            Some(row) if row < self.side.len() => self.side[row] = side,
            _ => {
                self.by_name.insert(name.clone(), self.side.len());
                self.side.push(side);
            }
        }
        debug_assert_eq!(self.side.len(), self.table.len());
        self.affected_by_sets(&sets, Some(&name), Some(states))
    }

    /// Removes a ManagedCluster (deleted for good; a terminating one is an update).
    pub fn remove_cluster(&mut self, name: &str) -> Affected {
        let Some(row) = self.table.row_of(name) else { return Affected::default() };
        let sets: BTreeSet<String> = self.side[row].sets.iter().map(|s| s.to_string()).collect();
        let states = vec![ClusterLabels::of(&self.table.clusters()[row])];
        let affected = self.affected_by_sets(&sets, Some(name), Some(states));
        self.table.remove(name);
        // The table moved its last row into `row`; so does `side`.
        self.side.swap_remove(row);
        self.by_name.remove(name);
        if let Some(moved) = self.table.clusters().get(row)
            && let Some(r) = self.by_name.get_mut(&moved.name)
        {
            *r = row;
        }
        debug_assert_eq!(self.side.len(), self.table.len());
        affected
    }

    /// Adds or updates a ManagedClusterSet: every cluster's membership of it is computed
    /// again. Affects the namespaces bound to it.
    pub fn upsert_cluster_set(&mut self, set: &Value) -> Affected {
        let name = meta::name(set).to_string();
        if name.is_empty() {
            return Affected::default();
        }
        let selector = SetSelector::compile(set);
        let shared: Arc<str> = Arc::from(name.as_str());
        for (row, c) in self.table.clusters().iter().enumerate() {
            let sets = &mut self.side[row].sets;
            let member = selector.matches(&c.labels);
            match (sets.binary_search_by(|s| (**s).cmp(name.as_str())), member) {
                (Ok(i), false) => {
                    sets.remove(i);
                }
                (Err(i), true) => sets.insert(i, shared.clone()),
                _ => {}
            }
        }
        self.sets.insert(name.clone(), selector);
        self.set_affects(&name)
    }

    pub fn remove_cluster_set(&mut self, name: &str) -> Affected {
        if self.sets.remove(name).is_none() {
            return Affected::default();
        }
        for side in &mut self.side {
            side.sets.retain(|s| &**s != name);
        }
        self.set_affects(name)
    }

    fn set_affects(&self, set: &str) -> Affected {
        Affected {
            namespaces: self.bindings_by_set.get(set).cloned().unwrap_or_default(),
            cluster_sets: Some(BTreeSet::from([set.to_string()])),
            ..Affected::default()
        }
    }

    /// Adds or updates a ManagedClusterSetBinding (named as the set it binds). Affects the
    /// placements of its namespace.
    pub fn upsert_binding(&mut self, binding: &Value) -> Affected {
        let (ns, name) = (namespace_of(binding).to_string(), meta::name(binding).to_string());
        if ns.is_empty() || name.is_empty() {
            return Affected::default();
        }
        let added = self.bindings.entry(ns.clone()).or_default().insert(name.clone());
        self.bindings_by_set.entry(name).or_default().insert(ns.clone());
        if !added {
            return Affected::default();
        }
        Affected { namespaces: BTreeSet::from([ns]), ..Affected::default() }
    }

    pub fn remove_binding(&mut self, namespace: &str, name: &str) -> Affected {
        let removed = self.bindings.get_mut(namespace).is_some_and(|b| b.remove(name));
        if !removed {
            return Affected::default();
        }
        if self.bindings.get(namespace).is_some_and(BTreeSet::is_empty) {
            self.bindings.remove(namespace);
        }
        if let Some(nss) = self.bindings_by_set.get_mut(name) {
            nss.remove(namespace);
            if nss.is_empty() {
                self.bindings_by_set.remove(name);
            }
        }
        Affected { namespaces: BTreeSet::from([namespace.to_string()]), ..Affected::default() }
    }

    /// Adds or updates an AddOnPlacementScore (in the namespace of the cluster it scores).
    /// Affects the placements that can select that cluster.
    pub fn upsert_addon_score(&mut self, score: &Value) -> Affected {
        let (cluster, name) = (namespace_of(score).to_string(), meta::name(score).to_string());
        if cluster.is_empty() || name.is_empty() {
            return Affected::default();
        }
        let new = AddonScore::from_object(score);
        let old = self.addon_scores.entry(cluster.clone()).or_default().insert(name, new.clone());
        if old.as_ref() == Some(&new) {
            return Affected::default();
        }
        self.placements_affected_by_cluster(&cluster)
    }

    pub fn remove_addon_score(&mut self, namespace: &str, name: &str) -> Affected {
        let removed = self.addon_scores.get_mut(namespace).and_then(|m| m.remove(name)).is_some();
        if self.addon_scores.get(namespace).is_some_and(HashMap::is_empty) {
            self.addon_scores.remove(namespace);
        }
        if removed { self.placements_affected_by_cluster(namespace) } else { Affected::default() }
    }

    /// Records a placement's current decisions (from its PlacementDecisions, or what the
    /// controller just wrote): `Steady` and `NoSelectIfNew` read its own, `Balance` counts
    /// everyone else's.
    pub fn set_decisions(&mut self, namespace: &str, placement: &str, clusters: Vec<String>) {
        let key = PlacementKey::new(namespace, placement);
        self.remove_decisions(namespace, placement);
        let mut seen = HashSet::new();
        let clusters: Vec<String> = clusters.into_iter().filter(|c| seen.insert(c.clone())).collect();
        for c in &clusters {
            let placements = self.by_cluster.entry(c.clone()).or_default();
            let before = placements.len();
            placements.insert(key.clone());
            move_count(&mut self.count_histogram, before, before + 1);
        }
        if !clusters.is_empty() {
            self.decisions.insert(key, clusters);
        }
    }

    pub fn remove_decisions(&mut self, namespace: &str, placement: &str) {
        let key = PlacementKey::new(namespace, placement);
        let Some(old) = self.decisions.remove(&key) else { return };
        for c in &old {
            let Some(placements) = self.by_cluster.get_mut(c) else { continue };
            let before = placements.len();
            if placements.remove(&key) {
                move_count(&mut self.count_histogram, before, before - 1);
            }
            if placements.is_empty() {
                self.by_cluster.remove(c);
            }
        }
    }

    /// How many placements selected `cluster`.
    pub(crate) fn decision_count(&self, cluster: &str) -> usize {
        self.by_cluster.get(cluster).map_or(0, HashSet::len)
    }

    /// The largest number of *other* placements' decisions on any cluster, for `Balance`
    /// scheduling `own` (the placement's current decisions): the global maximum, unless every
    /// cluster at that maximum is one of `own`, where it is one less.
    pub(crate) fn max_count_excluding(&self, own: &HashSet<&str>) -> usize {
        let Some((&max, &clusters_at_max)) = self.count_histogram.iter().next_back() else { return 0 };
        let own_at_max = own.iter().filter(|c| self.decision_count(c) == max).count();
        if own_at_max < clusters_at_max { max } else { max - 1 }
    }

    /// Whether `cluster` is selected by the placement `key` (its own decisions).
    pub(crate) fn is_decided(&self, key: &PlacementKey, cluster: &str) -> bool {
        self.by_cluster.get(cluster).is_some_and(|p| p.contains(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mc(name: &str, labels: Value) -> Value {
        json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
               "metadata": {"name": name, "labels": labels}})
    }

    #[test]
    fn compiled_set_selectors_agree_with_registration() {
        let sets = [
            json!({"metadata": {"name": "a"}, "spec": {"clusterSelector": {"selectorType": "ExclusiveClusterSetLabel"}}}),
            json!({"metadata": {"name": "a"}}),
            json!({"metadata": {"name": "g"}, "spec": {"clusterSelector": {"selectorType": "LabelSelector"}}}),
            json!({"metadata": {"name": "g"}, "spec": {"clusterSelector": {"selectorType": "LabelSelector", "labelSelector": {}}}}),
            json!({"metadata": {"name": "e"}, "spec": {"clusterSelector": {"selectorType": "LabelSelector",
                   "labelSelector": {"matchLabels": {"env": "prod"}}}}}),
            json!({"metadata": {"name": "x"}, "spec": {"clusterSelector": {"selectorType": "LabelSelector",
                   "labelSelector": {"matchExpressions": [{"key": "env", "operator": "Bogus"}]}}}}),
            json!({"metadata": {"name": "y"}, "spec": {"clusterSelector": {"selectorType": "Other"}}}),
        ];
        let label_sets = [
            json!({}),
            json!({"env": "prod"}),
            json!({"cluster.open-cluster-management.io/clusterset": "a"}),
            json!({"cluster.open-cluster-management.io/clusterset": "b", "env": "dev"}),
        ];
        for set in &sets {
            let compiled = SetSelector::compile(set);
            for labels in &label_sets {
                let map = labels.as_object().cloned().unwrap_or_default();
                let btree: BTreeMap<String, String> =
                    map.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect();
                assert_eq!(
                    compiled.matches(&btree),
                    flotilla_registration::clustersets::selects(set, &map),
                    "{set} {labels}"
                );
            }
        }
    }

    #[test]
    fn membership_follows_sets_and_labels_and_reports_what_it_affects() {
        let mut inv = Inventory::new();
        inv.upsert_binding(&json!({"metadata": {"namespace": "ns1", "name": "prod"}}));
        inv.upsert_binding(&json!({"metadata": {"namespace": "ns2", "name": "dev"}}));
        inv.upsert_cluster_set(&json!({"metadata": {"name": "prod"}, "spec": {"clusterSelector": {
            "selectorType": "LabelSelector", "labelSelector": {"matchLabels": {"env": "prod"}}}}}));
        inv.upsert_cluster_set(&json!({"metadata": {"name": "dev"}, "spec": {"clusterSelector": {
            "selectorType": "LabelSelector", "labelSelector": {"matchLabels": {"env": "dev"}}}}}));
        let a = inv.upsert_cluster(&mc("c1", json!({"env": "prod"})));
        assert_eq!(a.namespaces, BTreeSet::from(["ns1".to_string()]));
        assert_eq!(inv.sets_of_cluster("c1"), ["prod"]);
        // Relabel: affects both the set it left and the one it joined.
        let a = inv.upsert_cluster(&mc("c1", json!({"env": "dev"})));
        assert_eq!(a.namespaces, BTreeSet::from(["ns1".to_string(), "ns2".to_string()]));
        assert_eq!(inv.sets_of_cluster("c1"), ["dev"]);
        // The same object with a new resourceVersion affects nothing.
        let mut same = mc("c1", json!({"env": "dev"}));
        same["metadata"]["resourceVersion"] = json!("42");
        assert!(inv.upsert_cluster(&same).is_empty());
        // Placement filter on cluster sets.
        let p =
            |ns: &str, sets: Value| json!({"metadata": {"namespace": ns, "name": "p"}, "spec": {"clusterSets": sets}});
        let a = inv.placements_affected_by_cluster("c1");
        assert!(a.affects(&p("ns2", json!([]))));
        assert!(a.affects(&p("ns2", json!(["dev"]))));
        assert!(!a.affects(&p("ns2", json!(["other"]))));
        assert!(!a.affects(&p("ns1", json!([]))));
        // Decisions make a placement affected wherever it is.
        inv.set_decisions("ns9", "p", vec!["c1".into()]);
        assert!(inv.placements_affected_by_cluster("c1").affects(&p("ns9", json!(["x"]))));
        // Removing a set drops membership; removing clusters keeps rows aligned.
        inv.remove_cluster_set("dev");
        assert!(inv.sets_of_cluster("c1").is_empty());
        inv.upsert_cluster(&mc("c2", json!({"env": "prod"})));
        inv.upsert_cluster(&mc("c3", json!({"env": "prod"})));
        inv.remove_cluster("c1");
        assert_eq!(inv.sets_of_cluster("c3"), ["prod"]);
        assert_eq!(inv.cluster_count(), 2);
        assert_eq!(inv.side.len(), 2);
        for (name, &row) in &inv.by_name {
            assert_eq!(&inv.table.clusters()[row].name, name);
        }
    }

    #[test]
    fn decision_counts_track_other_placements() {
        let mut inv = Inventory::new();
        inv.set_decisions("a", "p1", vec!["c1".into(), "c2".into(), "c1".into()]);
        inv.set_decisions("a", "p2", vec!["c1".into()]);
        assert_eq!(inv.decision_count("c1"), 2);
        assert_eq!(inv.decision_count("c2"), 1);
        assert_eq!(inv.max_count_excluding(&HashSet::new()), 2);
        // p1 scheduling: c1 has 1 other decision, c2 none.
        assert_eq!(inv.max_count_excluding(&HashSet::from(["c1", "c2"])), 1);
        inv.set_decisions("a", "p1", vec!["c2".into()]);
        assert_eq!(inv.decision_count("c1"), 1);
        inv.remove_decisions("a", "p1");
        inv.remove_decisions("a", "p2");
        assert_eq!(inv.max_count_excluding(&HashSet::new()), 0);
        assert!(inv.count_histogram.is_empty());
        assert!(inv.by_cluster.is_empty());
    }
}
