//! ManagedClusterSets and ManagedClusterSetBindings (OCM's clusterset controllers):
//!
//! - the `default` set (`ExclusiveClusterSetLabel`) and the `global` set (`LabelSelector`
//!   with an empty selector: every cluster) always exist, with their selectors restored if
//!   changed, unless annotated `cluster.open-cluster-management.io/autoupdate: "false"`
//!   (clusters without a set label join `default` in admission);
//! - every set has `ClusterSetEmpty`: True (`NoClusterMatched`) or False
//!   (`ClustersSelected`, with the count);
//! - every binding has `Bound`: True (`ClusterSetBound`) when its set exists, else False
//!   (`ClusterSetNotFound`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_apimachinery::selector::LabelSelector;
use flotilla_apiserver::objects::{meta, now_rfc3339};
use flotilla_apiserver::{Resource, Storage};
use serde_json::{Map, Value, json};

use crate::Kinds;
use crate::conditions::{self, Condition, FALSE, TRUE};
use crate::controller::Reconciler;
use crate::names::{
    AUTO_UPDATE_ANNOTATION, CLUSTER_SET_LABEL, CONDITION_BOUND, CONDITION_CLUSTER_SET_EMPTY, DEFAULT_CLUSTER_SET,
    GLOBAL_CLUSTER_SET, REASON_CLUSTER_SET_BOUND, REASON_CLUSTER_SET_NOT_FOUND, REASON_CLUSTERS_SELECTED,
    REASON_NO_CLUSTER_MATCHED,
};
use crate::util::{self, get_optional, list_all};

const API_VERSION: &str = "cluster.open-cluster-management.io/v1beta2";
const ENSURE_BUILT_IN: &str = "built-in";
const ALL_SETS: &str = "all-sets";
const SET: &str = "set/";
const BINDING: &str = "binding/";
const BINDINGS_OF: &str = "bindings-of/";

pub struct ClusterSets {
    storage: Storage,
    kinds: Arc<Kinds>,
    /// Labels of every cluster as last seen, so that only label changes (which can change
    /// set membership) re-count the sets, not every status update of every cluster.
    cluster_labels: Mutex<HashMap<String, Map<String, Value>>>,
}

impl ClusterSets {
    pub(crate) fn new(storage: Storage, kinds: Arc<Kinds>) -> Self {
        ClusterSets { storage, kinds, cluster_labels: Mutex::new(HashMap::new()) }
    }
}

/// The selector the built-in sets must keep.
pub fn built_in_selector(name: &str) -> Option<Value> {
    match name {
        DEFAULT_CLUSTER_SET => Some(json!({"selectorType": "ExclusiveClusterSetLabel"})),
        GLOBAL_CLUSTER_SET => Some(json!({"selectorType": "LabelSelector", "labelSelector": {}})),
        _ => None,
    }
}

/// Which clusters a set selects. An invalid label selector selects nothing.
pub fn selects(set: &Value, cluster_labels: &Map<String, Value>) -> bool {
    let selector = set.pointer("/spec/clusterSelector").cloned().unwrap_or(Value::Null);
    match selector.get("selectorType").and_then(Value::as_str).unwrap_or("ExclusiveClusterSetLabel") {
        "LabelSelector" => {
            let label_selector = selector.get("labelSelector").cloned().unwrap_or_else(|| json!({}));
            LabelSelector::from_object(&label_selector).is_ok_and(|s| s.matches(cluster_labels))
        }
        "ExclusiveClusterSetLabel" => {
            cluster_labels.get(CLUSTER_SET_LABEL).and_then(Value::as_str) == Some(meta::name(set))
        }
        _ => false,
    }
}

/// The `ClusterSetEmpty` status, reason and message for a set selecting `count` clusters.
pub fn empty_condition(count: usize) -> (&'static str, &'static str, String) {
    if count == 0 {
        (TRUE, REASON_NO_CLUSTER_MATCHED, "No ManagedCluster selected".to_string())
    } else {
        (FALSE, REASON_CLUSTERS_SELECTED, format!("{count} ManagedClusters selected"))
    }
}

impl ClusterSets {
    async fn ensure_built_in(&self) -> Result<(), ApiError> {
        for name in [DEFAULT_CLUSTER_SET, GLOBAL_CLUSTER_SET] {
            let Some(selector) = built_in_selector(name) else { continue };
            match get_optional(&self.storage, &self.kinds.cluster_sets, None, name).await? {
                None => {
                    let set = json!({
                        "apiVersion": API_VERSION,
                        "kind": "ManagedClusterSet",
                        "metadata": {"name": name},
                        "spec": {"clusterSelector": selector},
                    });
                    match self.storage.create(&self.kinds.cluster_sets, None, set, &util::write_options()).await {
                        Ok(_) => tracing::info!(set = name, "created the built-in cluster set"),
                        Err(e) if e.code == 409 => {}
                        Err(e) => return Err(e),
                    }
                }
                Some(mut set) => {
                    let opted_out = meta::get(&set, "annotations")
                        .and_then(|a| a.get(AUTO_UPDATE_ANNOTATION))
                        .and_then(Value::as_str)
                        == Some("false");
                    if opted_out || meta::deletion_timestamp(&set).is_some() {
                        continue;
                    }
                    if set.pointer("/spec/clusterSelector") != Some(&selector) {
                        set["spec"]["clusterSelector"] = selector;
                        util::update(&self.storage, &self.kinds.cluster_sets, set).await?;
                        tracing::info!(set = name, "restored the selector of the built-in cluster set");
                    }
                }
            }
        }
        Ok(())
    }

    async fn reconcile_set(&self, name: &str, clusters: Option<&[Value]>) -> Result<(), ApiError> {
        let Some(mut set) = get_optional(&self.storage, &self.kinds.cluster_sets, None, name).await? else {
            return Ok(());
        };
        if meta::deletion_timestamp(&set).is_some() {
            return Ok(());
        }
        let listed;
        let clusters = match clusters {
            Some(c) => c,
            None => {
                listed = list_all(&self.storage, &self.kinds.managed_clusters, None).await?;
                &listed
            }
        };
        let count = clusters.iter().filter(|c| selects(&set, &meta::labels(c))).count();
        let (status, reason, message) = empty_condition(count);
        let condition = Condition { type_: CONDITION_CLUSTER_SET_EMPTY, status, reason, message: &message };
        let mut list = conditions::of(&set);
        if conditions::set(&mut list, &condition, meta::generation(&set), &now_rfc3339()) {
            set["status"]["conditions"] = json!(list);
            util::update_status(&self.storage, &self.kinds.cluster_sets, set).await?;
        }
        Ok(())
    }

    async fn reconcile_binding(&self, ns: &str, name: &str) -> Result<(), ApiError> {
        let Some(mut binding) = get_optional(&self.storage, &self.kinds.bindings, Some(ns), name).await? else {
            return Ok(());
        };
        let set_name = binding.pointer("/spec/clusterSet").and_then(Value::as_str).unwrap_or_default().to_string();
        let set = if set_name.is_empty() {
            None
        } else {
            get_optional(&self.storage, &self.kinds.cluster_sets, None, &set_name).await?
        };
        let message = match &set {
            Some(_) => format!("Bound to ManagedClusterSet {set_name:?}"),
            None => format!("ManagedClusterSet {set_name:?} not found"),
        };
        let condition = match &set {
            Some(_) => {
                Condition { type_: CONDITION_BOUND, status: TRUE, reason: REASON_CLUSTER_SET_BOUND, message: &message }
            }
            None => Condition {
                type_: CONDITION_BOUND,
                status: FALSE,
                reason: REASON_CLUSTER_SET_NOT_FOUND,
                message: &message,
            },
        };
        let mut list = conditions::of(&binding);
        if conditions::set(&mut list, &condition, meta::generation(&binding), &now_rfc3339()) {
            binding["status"]["conditions"] = json!(list);
            util::update_status(&self.storage, &self.kinds.bindings, binding).await?;
        }
        Ok(())
    }
}

impl Reconciler for ClusterSets {
    fn name(&self) -> &'static str {
        "cluster-sets"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        vec![self.kinds.cluster_sets.clone(), self.kinds.bindings.clone(), self.kinds.managed_clusters.clone()]
    }

    fn start_keys(&self) -> Vec<String> {
        // A restart relists every cluster: forget what was seen so all sets are counted.
        self.cluster_labels.lock().unwrap_or_else(|e| e.into_inner()).clear();
        vec![ENSURE_BUILT_IN.to_string(), ALL_SETS.to_string()]
    }

    fn keys_for(&self, index: usize, obj: &Value, deleted: bool) -> Vec<String> {
        let name = meta::name(obj);
        match index {
            0 => {
                let mut keys = vec![format!("{BINDINGS_OF}{name}")];
                if !deleted {
                    keys.push(format!("{SET}{name}"));
                }
                if built_in_selector(name).is_some() {
                    keys.push(ENSURE_BUILT_IN.to_string());
                }
                keys
            }
            1 if !deleted => vec![format!("{BINDING}{}/{name}", meta::namespace(obj).unwrap_or_default())],
            2 => {
                let mut seen = self.cluster_labels.lock().unwrap_or_else(|e| e.into_inner());
                let changed = if deleted {
                    seen.remove(name).is_some()
                } else {
                    let labels = meta::labels(obj);
                    seen.insert(name.to_string(), labels.clone()).is_none_or(|before| before != labels)
                };
                if changed { vec![ALL_SETS.to_string()] } else { Vec::new() }
            }
            _ => Vec::new(),
        }
    }

    async fn reconcile(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        if key == ENSURE_BUILT_IN {
            self.ensure_built_in().await?;
        } else if key == ALL_SETS {
            let clusters = list_all(&self.storage, &self.kinds.managed_clusters, None).await?;
            for set in list_all(&self.storage, &self.kinds.cluster_sets, None).await? {
                self.reconcile_set(meta::name(&set), Some(&clusters)).await?;
            }
        } else if let Some(name) = key.strip_prefix(SET) {
            self.reconcile_set(name, None).await?;
        } else if let Some(rest) = key.strip_prefix(BINDING) {
            if let Some((ns, name)) = rest.split_once('/') {
                self.reconcile_binding(ns, name).await?;
            }
        } else if let Some(set) = key.strip_prefix(BINDINGS_OF) {
            for binding in list_all(&self.storage, &self.kinds.bindings, None).await? {
                if binding.pointer("/spec/clusterSet").and_then(Value::as_str) == Some(set) {
                    let ns = meta::namespace(&binding).unwrap_or_default().to_string();
                    self.reconcile_binding(&ns, meta::name(&binding)).await?;
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn membership_by_label_or_selector() {
        let default = json!({"metadata": {"name": "default"}, "spec": {"clusterSelector": {"selectorType": "ExclusiveClusterSetLabel"}}});
        let global = json!({"metadata": {"name": "global"}, "spec": {"clusterSelector": {"selectorType": "LabelSelector", "labelSelector": {}}}});
        let openshift = json!({"metadata": {"name": "os"}, "spec": {"clusterSelector": {"selectorType": "LabelSelector",
            "labelSelector": {"matchLabels": {"vendor": "OpenShift"}}}}});
        let plain = labels(json!({CLUSTER_SET_LABEL: "default"}));
        let os = labels(json!({CLUSTER_SET_LABEL: "prod", "vendor": "OpenShift"}));
        assert!(selects(&default, &plain) && !selects(&default, &os));
        assert!(selects(&global, &plain) && selects(&global, &os));
        assert!(!selects(&openshift, &plain) && selects(&openshift, &os));
        let no_selector = json!({"metadata": {"name": "prod"}, "spec": {}});
        assert!(selects(&no_selector, &os), "ExclusiveClusterSetLabel is the default");
    }

    #[test]
    fn empty_condition_uses_ocm_reasons() {
        assert_eq!(empty_condition(0), (TRUE, "NoClusterMatched", "No ManagedCluster selected".to_string()));
        assert_eq!(empty_condition(3), (FALSE, "ClustersSelected", "3 ManagedClusters selected".to_string()));
    }
}
