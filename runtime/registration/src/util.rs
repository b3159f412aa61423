//! Reads and writes the controllers share.

use flotilla_apimachinery::ApiError;
use flotilla_apimachinery::selector::{LabelSelector, Operator, Requirement};
use flotilla_apiserver::objects::meta;
use flotilla_apiserver::{ListOptions, Resource, Storage, WriteOptions};
use serde_json::Value;

use crate::conditions;
use crate::names::{
    CLUSTER_NAME_LABEL, CONDITION_HUB_ACCEPTED, CONDITION_HUB_DENIED, CSR_APPROVED, CSR_DENIED, CSR_FAILED,
    FIELD_MANAGER,
};

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

/// The CSRs labelled as `cluster`'s.
pub(crate) async fn cluster_csrs(storage: &Storage, csrs: &Resource, cluster: &str) -> Result<Vec<Value>, ApiError> {
    let requirement = Requirement::new(CLUSTER_NAME_LABEL, Operator::Equals, vec![cluster.to_string()])
        .map_err(|e| ApiError::internal(format!("selecting the CSRs of {cluster:?}: {e}")))?;
    list_all(storage, csrs, Some(LabelSelector::from_requirements(vec![requirement]))).await
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
}
