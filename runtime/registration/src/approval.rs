//! CSR approval, per managed cluster. The hub approves by itself only:
//!
//! - renewals: the agent of an accepted cluster asks for a new certificate under the
//!   identity it already has (the CSR's requester, stamped by the hub, equals its CN);
//! - auto-accepted clusters (`autoAccept` in hub.json, by cluster-name pattern or by the
//!   identity that requested the certificate), unless the administrator denied them; it
//!   then also sets `spec.hubAcceptsClient`. Only a cluster's first certificate is
//!   auto-approved: once one was issued, another bootstrap (a re-installed agent, or
//!   someone else claiming the name) needs `flotilla accept`, so that a bootstrap token
//!   cannot take over a cluster that already joined.
//!
//! Everything else waits for `flotilla accept` (or `flotilla deny`). CSRs whose subject
//! or label is not a valid agent identity are never approved here.

use std::sync::Arc;
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_apiserver::objects::{meta, now_rfc3339};
use flotilla_apiserver::{Resource, Storage};
use serde_json::{Value, json};

use crate::authz::{Acceptance, accepted};
use crate::controller::Reconciler;
use crate::identity::{csr_cluster, validate_agent_csr};
use crate::names::{CSR_APPROVED, REASON_AUTO_APPROVED};
use crate::util::{self, CsrIndex, CsrState, cluster_csrs, cluster_denied, csr_state, get_optional};
use crate::{AutoAccept, Kinds};

pub struct Approval {
    storage: Storage,
    kinds: Arc<Kinds>,
    auto_accept: Arc<AutoAccept>,
    csr_index: CsrIndex,
}

impl Approval {
    pub(crate) fn new(storage: Storage, kinds: Arc<Kinds>, auto_accept: Arc<AutoAccept>) -> Self {
        Approval { storage, kinds, auto_accept, csr_index: CsrIndex::default() }
    }
}

/// Adds a True condition of `type_` to a CSR's status and writes it (Approved or Denied
/// by the hub or the CLI, Failed by the signer).
pub async fn set_csr_condition(
    storage: &Storage,
    csrs: &Resource,
    csr: &Value,
    type_: &str,
    reason: &str,
    message: &str,
) -> Result<Value, ApiError> {
    let mut obj = csr.clone();
    let now = now_rfc3339();
    let condition = json!({
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    });
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    match obj["status"].get_mut("conditions").and_then(Value::as_array_mut) {
        Some(list) => {
            list.retain(|c| c.get("type").and_then(Value::as_str) != Some(type_));
            list.push(condition);
        }
        None => obj["status"]["conditions"] = json!([condition]),
    }
    util::update_status(storage, csrs, obj).await
}

impl Reconciler for Approval {
    fn name(&self) -> &'static str {
        "csr-approval"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        vec![self.kinds.managed_clusters.clone(), self.kinds.csrs.clone()]
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
            1 if !deleted => csr_cluster(obj).map(str::to_string).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    async fn reconcile(&self, cluster: &str) -> Result<Option<Duration>, ApiError> {
        let csrs = cluster_csrs(&self.storage, &self.kinds.csrs, &self.csr_index, cluster).await?;
        let mc = get_optional(&self.storage, &self.kinds.managed_clusters, None, cluster).await?;
        let denied = cluster_denied(mc.as_ref(), &csrs);
        let is_accepted = mc.as_ref().map(accepted) == Some(Acceptance::Accepted);
        let by_name = self.auto_accept.cluster_pattern(cluster);
        let first_join = !csrs.iter().any(|c| csr_state(c) == CsrState::Issued);
        for csr in csrs.iter().filter(|c| csr_state(c) == CsrState::Pending) {
            let name = meta::name(csr);
            let checked = match validate_agent_csr(csr) {
                Ok(checked) => checked,
                Err(reason) => {
                    tracing::debug!(csr = %name, %cluster, %reason, "not an agent CSR the hub can approve");
                    continue;
                }
            };
            let message = if checked.is_renewal() && is_accepted {
                format!(
                    "Renewal of the certificate of agent {} of the accepted managed cluster {cluster:?}",
                    checked.identity.agent_id
                )
            } else if denied || !first_join {
                continue;
            } else if let Some(pattern) = by_name {
                format!("Managed cluster {cluster:?} is auto-accepted by the hub.json autoAccept pattern {pattern:?}")
            } else if let Some(pattern) = self.auto_accept.identity_pattern(&checked.requester) {
                format!(
                    "Requester {:?} is auto-accepted by the hub.json autoAccept entry {pattern:?}",
                    checked.requester
                )
            } else {
                continue;
            };
            set_csr_condition(&self.storage, &self.kinds.csrs, csr, CSR_APPROVED, REASON_AUTO_APPROVED, &message)
                .await?;
            tracing::info!(csr = %name, %cluster, agent_id = %checked.identity.agent_id, %message, "approved certificate signing request");
        }
        let Some(mut mc) = mc else { return Ok(None) };
        if is_accepted || denied || meta::deletion_timestamp(&mc).is_some() {
            return Ok(None);
        }
        let via = by_name.map(|p| format!("cluster-name pattern {p:?}")).or_else(|| {
            csrs.iter()
                .filter(|c| csr_state(c) != CsrState::Denied)
                .filter_map(|c| c.pointer("/spec/username").and_then(Value::as_str))
                .find_map(|requester| {
                    self.auto_accept.identity_pattern(requester).map(|p| format!("requester {requester:?} ({p:?})"))
                })
        });
        if let Some(via) = via {
            mc["spec"]["hubAcceptsClient"] = json!(true);
            util::update(&self.storage, &self.kinds.managed_clusters, mc).await?;
            tracing::info!(%cluster, %via, "auto-accepted managed cluster");
        }
        Ok(None)
    }
}
