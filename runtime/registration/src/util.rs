//! Reads and writes the controllers share.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use flotilla_apimachinery::ApiError;
use flotilla_apimachinery::selector::LabelSelector;
use flotilla_apiserver::objects::meta;
use flotilla_apiserver::{ListOptions, Resource, Storage, WriteOptions};
use serde_json::Value;

use crate::conditions;
use crate::identity::csr_cluster;
use crate::names::{CONDITION_HUB_ACCEPTED, CONDITION_HUB_DENIED, CSR_APPROVED, CSR_DENIED, CSR_FAILED, FIELD_MANAGER};

pub(crate) fn write_options() -> WriteOptions {
    WriteOptions::manager(FIELD_MANAGER)
}

/// An object, or `None` if it does not exist.
pub(crate) async fn get_optional(
    storage: &Storage,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    match storage.get(res, ns, name).await {
        Ok(obj) => Ok(Some(obj)),
        Err(e) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every object of a resource (all namespaces), optionally with a label selector.
pub(crate) async fn list_all(
    storage: &Storage,
    res: &Resource,
    selector: Option<LabelSelector>,
) -> Result<Vec<Value>, ApiError> {
    let opts = ListOptions { label_selector: selector, ..Default::default() };
    Ok(storage.list(res, None, &opts).await?.items)
}

/// The names of each cluster's CSRs (by their cluster label), kept from a controller's own
/// CSR watch, so that a reconcile reads a cluster's few CSRs by name rather than listing and
/// decoding every CSR on the hub (which made every join cost O(clusters)).
///
/// Level-triggered like the rest: the watch's initial list fills it before the first
/// reconcile ([`CsrIndex::clear`] on every (re)start), a CSR the index has not seen yet
/// brings its own event (and a reconcile of its cluster) afterwards, and reads skip names
/// whose object is gone or now labelled for another cluster.
#[derive(Default)]
pub(crate) struct CsrIndex(Mutex<CsrNames>);

#[derive(Default)]
struct CsrNames {
    by_cluster: HashMap<String, BTreeSet<String>>,
    cluster_of: HashMap<String, String>,
}

impl CsrIndex {
    fn names(&self) -> std::sync::MutexGuard<'_, CsrNames> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets everything (a controller restarts from a fresh list).
    pub(crate) fn clear(&self) {
        *self.names() = CsrNames::default();
    }

    /// Records a CSR event.
    pub(crate) fn observe(&self, csr: &Value, deleted: bool) {
        let name = meta::name(csr);
        let mut names = self.names();
        if let Some(old) = names.cluster_of.remove(name)
            && let Some(set) = names.by_cluster.get_mut(&old)
        {
            set.remove(name);
            if set.is_empty() {
                names.by_cluster.remove(&old);
            }
        }
        if !deleted && let Some(cluster) = csr_cluster(csr) {
            names.by_cluster.entry(cluster.to_string()).or_default().insert(name.to_string());
            names.cluster_of.insert(name.to_string(), cluster.to_string());
        }
    }

    /// The names of `cluster`'s CSRs, in name order.
    pub(crate) fn of(&self, cluster: &str) -> Vec<String> {
        self.names().by_cluster.get(cluster).map(|set| set.iter().cloned().collect()).unwrap_or_default()
    }
}

/// The CSRs labelled as `cluster`'s, in name order (as a list would return them).
pub(crate) async fn cluster_csrs(
    storage: &Storage,
    csrs: &Resource,
    index: &CsrIndex,
    cluster: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for name in index.of(cluster) {
        if let Some(csr) = get_optional(storage, csrs, None, &name).await?
            && csr_cluster(&csr) == Some(cluster)
        {
            out.push(csr);
        }
    }
    Ok(out)
}

/// Replaces an object's status through the status subresource, with the object's
/// resourceVersion as precondition (a lost race is a 409, retried by the controller).
pub(crate) async fn update_status(storage: &Storage, res: &Resource, obj: Value) -> Result<Value, ApiError> {
    let name = meta::name(&obj).to_string();
    let ns = meta::namespace(&obj).map(str::to_string);
    Ok(storage.update(res, ns.as_deref(), &name, obj, Some("status"), &write_options()).await?.object)
}

/// Replaces an object (spec and metadata), with its resourceVersion as precondition.
pub(crate) async fn update(storage: &Storage, res: &Resource, obj: Value) -> Result<Value, ApiError> {
    let name = meta::name(&obj).to_string();
    let ns = meta::namespace(&obj).map(str::to_string);
    Ok(storage.update(res, ns.as_deref(), &name, obj, None, &write_options()).await?.object)
}

/// Where a CSR stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrState {
    Pending,
    Approved,
    Denied,
    Failed,
    /// Approved and signed.
    Issued,
}

pub fn csr_state(csr: &Value) -> CsrState {
    let has = |t: &str| conditions::is_true(csr, t);
    if has(CSR_DENIED) {
        CsrState::Denied
    } else if has(CSR_FAILED) {
        CsrState::Failed
    } else if csr.pointer("/status/certificate").and_then(Value::as_str).is_some_and(|c| !c.is_empty()) {
        CsrState::Issued
    } else if has(CSR_APPROVED) {
        CsrState::Approved
    } else {
        CsrState::Pending
    }
}

/// Whether the hub administrator turned `cluster` away: it was accepted and no longer is,
/// it carries the denied condition, or one of its CSRs was denied. Auto-accept never
/// overrides such a decision, and the acceptance controller reports it.
pub fn cluster_denied(mc: Option<&Value>, csrs: &[Value]) -> bool {
    let accepts = mc.and_then(|m| m.pointer("/spec/hubAcceptsClient")).and_then(Value::as_bool) == Some(true);
    let was_accepted = mc.is_some_and(|m| conditions::is_true(m, CONDITION_HUB_ACCEPTED));
    let marked = mc.is_some_and(|m| conditions::is_true(m, CONDITION_HUB_DENIED));
    !accepts && (was_accepted || marked || csrs.iter().any(|c| csr_state(c) == CsrState::Denied))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::names::CLUSTER_NAME_LABEL;

    fn csr(conditions: Value, certificate: Option<&str>) -> Value {
        let mut status = json!({"conditions": conditions});
        if let Some(c) = certificate {
            status["certificate"] = json!(c);
        }
        json!({"status": status})
    }

    #[test]
    fn csr_states() {
        assert_eq!(csr_state(&json!({})), CsrState::Pending);
        let approved = json!([{"type": "Approved", "status": "True"}]);
        assert_eq!(csr_state(&csr(approved.clone(), None)), CsrState::Approved);
        assert_eq!(csr_state(&csr(approved, Some("Y2VydA=="))), CsrState::Issued);
        assert_eq!(csr_state(&csr(json!([{"type": "Denied", "status": "True"}]), None)), CsrState::Denied);
        let failed = json!([{"type": "Approved", "status": "True"}, {"type": "Failed", "status": "True"}]);
        assert_eq!(csr_state(&csr(failed, None)), CsrState::Failed);
    }

    #[test]
    fn denial_is_remembered() {
        let pending = json!({"spec": {"hubAcceptsClient": false}});
        assert!(!cluster_denied(Some(&pending), &[]));
        assert!(!cluster_denied(None, &[]));
        let denied_csr = csr(json!([{"type": "Denied", "status": "True"}]), None);
        assert!(cluster_denied(Some(&pending), std::slice::from_ref(&denied_csr)));
        assert!(cluster_denied(None, std::slice::from_ref(&denied_csr)));
        let revoked = json!({"spec": {"hubAcceptsClient": false},
            "status": {"conditions": [{"type": "HubAcceptedManagedCluster", "status": "True"}]}});
        assert!(cluster_denied(Some(&revoked), &[]));
        let accepted = json!({"spec": {"hubAcceptsClient": true},
            "status": {"conditions": [{"type": "HubDeniedManagedCluster", "status": "True"}]}});
        assert!(!cluster_denied(Some(&accepted), &[denied_csr]), "accepting again overrides");
    }

    #[test]
    fn csr_index_follows_labels_and_deletions() {
        let labelled = |name: &str, cluster: Option<&str>| match cluster {
            Some(c) => json!({"metadata": {"name": name, "labels": {CLUSTER_NAME_LABEL: c}}}),
            None => json!({"metadata": {"name": name}}),
        };
        let index = CsrIndex::default();
        index.observe(&labelled("c1-b", Some("c1")), false);
        index.observe(&labelled("c1-a", Some("c1")), false);
        index.observe(&labelled("c2-a", Some("c2")), false);
        index.observe(&labelled("plain", None), false);
        assert_eq!(index.of("c1"), ["c1-a", "c1-b"], "name order, as a list returns them");
        assert_eq!(index.of("c2"), ["c2-a"]);
        assert!(index.of("c3").is_empty());

        index.observe(&labelled("c1-b", Some("c3")), false);
        assert_eq!(index.of("c1"), ["c1-a"], "a relabelled CSR moves");
        assert_eq!(index.of("c3"), ["c1-b"]);
        index.observe(&labelled("c1-a", Some("c1")), true);
        assert!(index.of("c1").is_empty());
        index.observe(&labelled("c2-a", None), false);
        assert!(index.of("c2").is_empty(), "a label removed");
        index.clear();
        assert!(index.of("c3").is_empty());
    }
}
