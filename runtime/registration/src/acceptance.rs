//! Acceptance of managed clusters (OCM's hub managedcluster controller): an accepted
//! cluster gets its namespace and `HubAcceptedManagedCluster=True`; a denied one (accepted
//! before, or with a denied CSR) `HubAcceptedManagedCluster=False` and
//! `HubDeniedManagedCluster=True`. A cluster that is merely pending gets neither. The
//! namespace is kept when a cluster is denied or deleted, as OCM keeps it: it holds the
//! administrator's works. The agent's access ends at once through the authorizer.

use std::sync::Arc;
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_apiserver::objects::{meta, now_rfc3339};
use flotilla_apiserver::{Resource, Storage};
use serde_json::{Value, json};

use crate::Kinds;
use crate::authz::{Acceptance, accepted};
use crate::conditions::{self, Condition, FALSE, TRUE};
use crate::controller::Reconciler;
use crate::identity::csr_cluster;
use crate::names::{
    CLUSTER_NAME_LABEL, CONDITION_HUB_ACCEPTED, CONDITION_HUB_DENIED, REASON_HUB_ACCEPTED, REASON_HUB_DENIED,
};
use crate::util::{self, CsrIndex, cluster_csrs, cluster_denied, get_optional};

pub struct ClusterAcceptance {
    storage: Storage,
    kinds: Arc<Kinds>,
    csr_index: CsrIndex,
}

impl ClusterAcceptance {
    pub(crate) fn new(storage: Storage, kinds: Arc<Kinds>) -> Self {
        ClusterAcceptance { storage, kinds, csr_index: CsrIndex::default() }
    }

    /// Creates the cluster namespace if it is missing. A namespace still terminating is an
    /// error, so that the controller comes back once it is gone.
    async fn ensure_namespace(&self, cluster: &str) -> Result<(), ApiError> {
        if let Some(ns) = get_optional(&self.storage, &self.kinds.namespaces, None, cluster).await? {
            if meta::deletion_timestamp(&ns).is_some() {
                return Err(ApiError::conflict(
                    "namespaces",
                    cluster,
                    "the cluster namespace is being deleted; it is recreated once it is gone",
                ));
            }
            return Ok(());
        }
        let namespace = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": cluster, "labels": {CLUSTER_NAME_LABEL: cluster}},
        });
        match self.storage.create(&self.kinds.namespaces, None, namespace, &util::write_options()).await {
            Ok(_) => {
                tracing::info!(%cluster, "created the cluster namespace");
                Ok(())
            }
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The acceptance conditions a cluster should have. Returns whether they changed.
pub fn acceptance_conditions(
    conditions: &mut Vec<Value>,
    accepted: bool,
    denied: bool,
    generation: i64,
    now: &str,
) -> bool {
    if accepted {
        let accepted = Condition {
            type_: CONDITION_HUB_ACCEPTED,
            status: TRUE,
            reason: REASON_HUB_ACCEPTED,
            message: "Accepted by hub cluster admin",
        };
        let changed = conditions::set(conditions, &accepted, generation, now);
        conditions::remove(conditions, CONDITION_HUB_DENIED) || changed
    } else if denied {
        let message = "Denied by hub cluster admin";
        let accepted = Condition { type_: CONDITION_HUB_ACCEPTED, status: FALSE, reason: REASON_HUB_DENIED, message };
        let denied = Condition { type_: CONDITION_HUB_DENIED, status: TRUE, reason: REASON_HUB_DENIED, message };
        let changed = conditions::set(conditions, &accepted, generation, now);
        conditions::set(conditions, &denied, generation, now) || changed
    } else {
        false
    }
}

impl Reconciler for ClusterAcceptance {
    fn name(&self) -> &'static str {
        "cluster-acceptance"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        vec![self.kinds.managed_clusters.clone(), self.kinds.csrs.clone(), self.kinds.namespaces.clone()]
    }

    fn start_keys(&self) -> Vec<String> {
        // The watch's initial list fills the index again.
        self.csr_index.clear();
        Vec::new()
    }

    fn keys_for(&self, index: usize, obj: &Value, deleted: bool) -> Vec<String> {
        if index == 1 {
            self.csr_index.observe(obj, deleted);
        }
        match index {
            0 if !deleted => vec![meta::name(obj).to_string()],
            1 => csr_cluster(obj).map(str::to_string).into_iter().collect(),
            // A deleted cluster namespace is recreated while the cluster is accepted.
            2 if deleted => vec![meta::name(obj).to_string()],
            _ => Vec::new(),
        }
    }

    async fn reconcile(&self, cluster: &str) -> Result<Option<Duration>, ApiError> {
        let Some(mut mc) = get_optional(&self.storage, &self.kinds.managed_clusters, None, cluster).await? else {
            return Ok(None);
        };
        if meta::deletion_timestamp(&mc).is_some() {
            return Ok(None);
        }
        let is_accepted = accepted(&mc) == Acceptance::Accepted;
        let denied = !is_accepted && {
            let csrs = cluster_csrs(&self.storage, &self.kinds.csrs, &self.csr_index, cluster).await?;
            cluster_denied(Some(&mc), &csrs)
        };
        if is_accepted {
            self.ensure_namespace(cluster).await?;
        }
        let mut list = conditions::of(&mc);
        if acceptance_conditions(&mut list, is_accepted, denied, meta::generation(&mc), &now_rfc3339()) {
            mc["status"]["conditions"] = json!(list);
            util::update_status(&self.storage, &self.kinds.managed_clusters, mc).await?;
            tracing::info!(%cluster, accepted = is_accepted, denied, "updated acceptance conditions");
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2030-01-01T00:00:00Z";
    const T1: &str = "2030-01-01T00:05:00Z";

    #[test]
    fn accept_deny_accept() {
        let mut list = Vec::new();
        assert!(!acceptance_conditions(&mut list, false, false, 1, T0), "pending: nothing");
        assert!(list.is_empty());
        assert!(acceptance_conditions(&mut list, true, false, 1, T0));
        assert!(!acceptance_conditions(&mut list, true, false, 1, T1), "steady");
        let accepted = conditions::find(&list, CONDITION_HUB_ACCEPTED).expect("accepted");
        assert_eq!(
            (accepted["status"].as_str(), accepted["reason"].as_str()),
            (Some("True"), Some(REASON_HUB_ACCEPTED))
        );

        assert!(acceptance_conditions(&mut list, false, true, 2, T1));
        let accepted = conditions::find(&list, CONDITION_HUB_ACCEPTED).expect("accepted");
        assert_eq!(accepted["status"], "False");
        assert_eq!(accepted["reason"], REASON_HUB_DENIED);
        assert_eq!(accepted["lastTransitionTime"], T1);
        let denied = conditions::find(&list, CONDITION_HUB_DENIED).expect("denied");
        assert_eq!((denied["status"].as_str(), denied["reason"].as_str()), (Some("True"), Some(REASON_HUB_DENIED)));

        assert!(acceptance_conditions(&mut list, true, false, 3, T1));
        assert!(conditions::find(&list, CONDITION_HUB_DENIED).is_none(), "acceptance clears the denial");
        assert_eq!(list.len(), 1);
    }
}
