//! What the agent reports on its ManagedCluster (docs/registration.md, "Status from the
//! agent"; OCM's `managedcluster/*_reconcile.go`): the `ManagedClusterJoined` and
//! `ManagedClusterConditionAvailable` conditions, `status.version.kubernetes`, capacity and
//! allocatable summed over Nodes, and ClusterClaims.
//!
//! Writes are JSON merge patches on the status subresource, sent only when something
//! differs from what the hub holds. A merge patch replaces a list whole, so the conditions
//! list is rebuilt from the hub's copy with only the agent's two conditions changed, and
//! the patch carries the `resourceVersion` it was computed from: if the hub's controllers
//! changed the object meanwhile, the write fails with 409 and is recomputed instead of
//! clobbering their conditions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, watch};

use crate::AgentError;
use crate::claims::{self, ClaimSet, SpokeClaim};
use crate::client::SharedClient;
use crate::error::{api_code, api_message};
use crate::quantity::{Quantity, sum_quantities};
use crate::spoke::Spoke;
use crate::util::sleep_or_shutdown;

pub const CONDITION_JOINED: &str = "ManagedClusterJoined";
pub const CONDITION_AVAILABLE: &str = "ManagedClusterConditionAvailable";
pub const REASON_JOINED: &str = "ManagedClusterJoined";
pub const REASON_AVAILABLE: &str = "ManagedClusterAvailable";
pub const REASON_UNAVAILABLE: &str = "ManagedClusterKubeAPIServerUnavailable";

/// OCM's defaults: a health check per minute, a failure must last 20 s (checked every 5 s)
/// before Available turns False.
pub const DEFAULT_STATUS_PERIOD: Duration = Duration::from_secs(60);
pub const DEFAULT_HEALTH_GRACE: Duration = Duration::from_secs(20);
pub const DEFAULT_HEALTH_RETRY: Duration = Duration::from_secs(5);

const CONFLICT_RETRIES: usize = 3;
const CONFLICT_RETRY: Duration = Duration::from_secs(1);

/// How one status pass ended.
enum Synced {
    Done,
    /// The hub kept changing the object; the loop retries soon.
    Conflict,
}
const NODE_PAGE: u32 = 500;

pub fn managed_clusters() -> ApiResource {
    ApiResource {
        group: "cluster.open-cluster-management.io".into(),
        version: "v1".into(),
        api_version: "cluster.open-cluster-management.io/v1".into(),
        kind: "ManagedCluster".into(),
        plural: "managedclusters".into(),
    }
}

pub fn cluster_claims() -> ApiResource {
    ApiResource {
        group: "cluster.open-cluster-management.io".into(),
        version: "v1alpha1".into(),
        api_version: "cluster.open-cluster-management.io/v1alpha1".into(),
        kind: "ClusterClaim".into(),
        plural: "clusterclaims".into(),
    }
}

/// The spoke API's health as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    Available,
    Unavailable(String),
}

/// Debounces health probes: a failure becomes `Unavailable` only once it has lasted `grace`;
/// until then the last report stands.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    grace: Duration,
    failing_since: Option<Instant>,
    reported: Option<Availability>,
}

impl HealthTracker {
    pub fn new(grace: Duration) -> HealthTracker {
        HealthTracker { grace, failing_since: None, reported: None }
    }

    /// Records a probe at `now` and returns what to report (`None`: nothing yet).
    pub fn observe(&mut self, probe: Result<(), String>, now: Instant) -> Option<Availability> {
        match probe {
            Ok(()) => {
                self.failing_since = None;
                self.reported = Some(Availability::Available);
            }
            Err(message) => {
                let since = *self.failing_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= self.grace {
                    self.reported = Some(Availability::Unavailable(message));
                }
            }
        }
        self.reported.clone()
    }

    /// A failure is being watched and has not lasted the grace yet.
    pub fn pending_failure(&self) -> bool {
        self.failing_since.is_some() && !matches!(self.reported, Some(Availability::Unavailable(_)))
    }
}

/// One condition the agent owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: &'static str,
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

pub fn joined_condition() -> DesiredCondition {
    DesiredCondition {
        type_: CONDITION_JOINED,
        status: "True",
        reason: REASON_JOINED,
        message: "Managed cluster joined".to_string(),
    }
}

pub fn available_condition(availability: &Availability) -> DesiredCondition {
    match availability {
        Availability::Available => DesiredCondition {
            type_: CONDITION_AVAILABLE,
            status: "True",
            reason: REASON_AVAILABLE,
            message: "Managed cluster is available".to_string(),
        },
        Availability::Unavailable(message) => DesiredCondition {
            type_: CONDITION_AVAILABLE,
            status: "False",
            reason: REASON_UNAVAILABLE,
            message: message.clone(),
        },
    }
}

/// What the agent wants the status to say. `None` fields are left as they are (a part the
/// agent could not read this time is not reported as empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredStatus {
    pub conditions: Vec<DesiredCondition>,
    pub kubernetes_version: Option<String>,
    pub capacity: Option<BTreeMap<String, String>>,
    pub allocatable: Option<BTreeMap<String, String>>,
    pub claims: Option<Vec<claims::Claim>>,
}

/// The merge patch that brings `current` (a ManagedCluster) to `desired`, or `None` when
/// nothing differs. `now` stamps conditions whose status changes.
pub fn status_patch(current: &Value, desired: &DesiredStatus, now: &str) -> Option<Value> {
    let status = current.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut patch = Map::new();

    let existing: Vec<Value> = status.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut conditions = existing.clone();
    for want in &desired.conditions {
        let field = |c: &Value, f: &str| c.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
        let position = conditions.iter().position(|c| field(c, "type") == want.type_);
        let old = position.map(|i| conditions[i].clone());
        if let Some(old) = &old
            && field(old, "status") == want.status
            && field(old, "reason") == want.reason
            && field(old, "message") == want.message
        {
            continue;
        }
        // The transition time moves only when the status does.
        let transition = old
            .as_ref()
            .filter(|o| field(o, "status") == want.status)
            .and_then(|o| o.get("lastTransitionTime").cloned())
            .filter(|t| t.as_str().is_some_and(|s| !s.is_empty()))
            .unwrap_or_else(|| json!(now));
        let condition = json!({
            "type": want.type_,
            "status": want.status,
            "reason": want.reason,
            "message": want.message,
            "lastTransitionTime": transition,
        });
        match position {
            Some(i) => conditions[i] = condition,
            None => conditions.push(condition),
        }
    }
    if conditions != existing {
        patch.insert("conditions".into(), Value::Array(conditions));
    }

    if let Some(version) = &desired.kubernetes_version
        && status.pointer("/version/kubernetes").and_then(Value::as_str) != Some(version.as_str())
    {
        patch.insert("version".into(), json!({"kubernetes": version}));
    }

    for (field, want) in [("capacity", &desired.capacity), ("allocatable", &desired.allocatable)] {
        let Some(want) = want else { continue };
        let have: BTreeMap<String, String> = status
            .get(field)
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default();
        if !same_resources(&have, want) {
            let mut list: Map<String, Value> = want.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            // Merge patches merge maps: a resource no Node has any more must be nulled.
            for gone in have.keys().filter(|k| !want.contains_key(*k)) {
                list.insert(gone.clone(), Value::Null);
            }
            patch.insert(field.into(), Value::Object(list));
        }
    }

    if let Some(want) = &desired.claims {
        let have: Vec<(String, String)> = status
            .get("clusterClaims")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let f = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                (f("name"), f("value"))
            })
            .collect();
        let want_pairs: Vec<(String, String)> = want.iter().map(|c| (c.name.clone(), c.value.clone())).collect();
        if have != want_pairs {
            patch.insert("clusterClaims".into(), json!(want));
        }
    }

    if patch.is_empty() {
        return None;
    }
    let mut body = json!({"status": Value::Object(patch)});
    if let Some(rv) = current.pointer("/metadata/resourceVersion").filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    {
        body["metadata"] = json!({"resourceVersion": rv});
    }
    Some(body)
}

/// Resource lists are equal when they name the same resources with equal quantities
/// (`1Gi` equals `1024Mi`), so a hub that normalises them does not cause endless writes.
fn same_resources(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k).is_some_and(|w| match (Quantity::parse(v), Quantity::parse(w)) {
                (Ok(x), Ok(y)) => x.nanos() == y.nanos(),
                _ => v == w,
            })
        })
}

/// The `spec.managedClusterClientConfigs` the agent maintains: its spoke's URL and CA.
pub fn client_configs(url: &str, ca_pem: Option<&str>) -> Value {
    use base64::Engine as _;
    let mut config = json!({"url": url});
    if let Some(ca) = ca_pem {
        config["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(ca.as_bytes()));
    }
    json!([config])
}

/// What the agent read from its spoke in one pass.
#[derive(Debug, Clone, Default)]
pub struct SpokeFacts {
    pub kubernetes_version: Option<String>,
    pub capacity: Option<BTreeMap<String, String>>,
    pub allocatable: Option<BTreeMap<String, String>>,
    pub claims: Option<ClaimSet>,
}

/// `GET /livez`, falling back to `/healthz` where `/livez` is forbidden or missing (older
/// or locked-down API servers), as OCM does.
pub async fn probe_health(spoke: &kube::Client) -> Result<(), String> {
    async fn get(client: &kube::Client, path: &str) -> Result<(), (Option<u16>, String)> {
        let request = http::Request::get(path).body(Vec::new()).map_err(|e| (None, e.to_string()))?;
        client.request_text(request).await.map(|_| ()).map_err(|e| (api_code(&e), api_message(&e)))
    }
    let describe = |path: &str, (code, message): (Option<u16>, String)| match code {
        Some(code) => format!("the spoke's kube-apiserver is not ok: GET {path} returned {code}: {message}"),
        None => format!("the spoke's kube-apiserver is not reachable: GET {path}: {message}"),
    };
    match get(spoke, "/livez").await {
        Ok(()) => Ok(()),
        Err((Some(403 | 404), _)) => get(spoke, "/healthz").await.map_err(|e| describe("/healthz", e)),
        Err(e) => Err(describe("/livez", e)),
    }
}

/// Reads version, Nodes, the kube-system namespace and ClusterClaims from the spoke. Each
/// part that fails is logged and left out.
pub async fn collect_facts(spoke: &kube::Client, cluster: &str, max_custom_claims: usize) -> SpokeFacts {
    let mut facts = SpokeFacts::default();
    let mut derived = BTreeMap::new();

    match spoke.apiserver_version().await {
        Ok(info) => {
            derived.insert(claims::CLAIM_KUBEVERSION.to_string(), info.git_version.clone());
            facts.kubernetes_version = Some(info.git_version);
        }
        Err(e) => tracing::warn!(cluster, error = %api_message(&e), "cannot read the spoke's /version"),
    }

    let nodes = list_nodes(spoke).await;
    match &nodes {
        Ok(nodes) => {
            let entries = |pick: fn(
                &Node,
            ) -> Option<
                &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
            >| {
                let (sums, errors) =
                    sum_quantities(nodes.iter().filter_map(pick).flatten().map(|(k, v)| (k.as_str(), v.0.as_str())));
                for e in errors {
                    tracing::warn!(cluster, error = %e, "skipping a node resource quantity");
                }
                sums
            };
            facts.capacity = Some(entries(|n| n.status.as_ref()?.capacity.as_ref()));
            facts.allocatable = Some(entries(|n| n.status.as_ref()?.allocatable.as_ref()));
            let (platform, product) = claims::platform_and_product(nodes);
            if let Some(platform) = platform {
                derived.insert(claims::CLAIM_PLATFORM.to_string(), platform);
            }
            if let Some(product) = product {
                derived.insert(claims::CLAIM_PRODUCT.to_string(), product);
            }
        }
        Err(e) => tracing::warn!(cluster, error = %api_message(e), "cannot list the spoke's nodes"),
    }

    // KEP-2149's cluster ID: the kube-system namespace's UID.
    match Api::<Namespace>::all(spoke.clone()).get("kube-system").await {
        Ok(ns) => {
            if let Some(uid) = ns.metadata.uid {
                derived.insert(claims::CLAIM_ID.to_string(), uid);
            }
        }
        Err(e) => tracing::warn!(cluster, error = %api_message(&e), "cannot read the spoke's kube-system namespace"),
    }

    let objects = Api::<DynamicObject>::all_with(spoke.clone(), &cluster_claims()).list(&ListParams::default()).await;
    let objects = match objects {
        Ok(list) => Some(
            list.items
                .iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .filter_map(|v| SpokeClaim::from_object(&v))
                .collect::<Vec<_>>(),
        ),
        // No ClusterClaim CRD on this cluster: no custom claims, but the reserved ones stand.
        Err(e) if api_code(&e) == Some(404) => Some(Vec::new()),
        Err(e) => {
            tracing::warn!(cluster, error = %api_message(&e), "cannot list the spoke's ClusterClaims");
            None
        }
    };
    if let (Some(objects), Ok(_)) = (objects, &nodes) {
        let set = claims::collect(&derived, &objects, max_custom_claims);
        if set.truncated > 0 {
            tracing::warn!(
                cluster,
                truncated = set.truncated,
                limit = max_custom_claims,
                "custom cluster claims truncated (raise --max-custom-cluster-claims to report them all)"
            );
        }
        facts.claims = Some(set);
    }
    facts
}

async fn list_nodes(spoke: &kube::Client) -> Result<Vec<Node>, kube::Error> {
    let api: Api<Node> = Api::all(spoke.clone());
    let mut nodes = Vec::new();
    let mut params = ListParams::default().limit(NODE_PAGE);
    loop {
        let page = api.list(&params).await?;
        nodes.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(nodes),
        }
    }
}

pub(crate) struct StatusLoop {
    pub cluster: String,
    pub hub: SharedClient,
    pub spoke: Spoke,
    pub period: Duration,
    pub health_retry: Duration,
    pub health: HealthTracker,
    pub max_custom_claims: usize,
    /// `--lease-duration-seconds`; without it the ManagedCluster's spec decides.
    pub lease_override: Option<Duration>,
    pub lease_duration: watch::Sender<Duration>,
    /// The lease loop's signal that a renewal came late: report at once (the hub may have
    /// set Available to Unknown meanwhile) instead of at the next period.
    pub renewed_late: Arc<Notify>,
    pub shutdown: watch::Receiver<bool>,
}

impl StatusLoop {
    pub async fn run(mut self) {
        let mut failing = false;
        loop {
            let mut delay = self.period;
            match self.sync().await {
                Ok(synced) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!(cluster = %self.cluster, "reporting status to the hub again");
                    }
                    // The hub's controllers were writing the same object: try again shortly.
                    if let Synced::Conflict = synced {
                        delay = CONFLICT_RETRY.min(self.period);
                    }
                }
                Err(e) => {
                    failing = true;
                    tracing::warn!(cluster = %self.cluster, error = %e, retry_in = ?delay,
                        "cannot report the cluster's status to the hub; retrying");
                }
            }
            // While a spoke failure is being confirmed, probe again sooner (OCM: every 5 s).
            if self.health.pending_failure() {
                delay = delay.min(self.health_retry);
            }
            tokio::select! {
                stop = sleep_or_shutdown(delay, &mut self.shutdown) => if stop { return },
                () = self.renewed_late.notified() => {}
            }
        }
    }

    async fn sync(&mut self) -> Result<Synced, AgentError> {
        let probe = probe_health(&self.spoke.client).await;
        let spoke_up = probe.is_ok();
        if let Err(message) = &probe {
            tracing::warn!(cluster = %self.cluster, error = %message, "spoke health check failed");
        }
        let availability = self.health.observe(probe, Instant::now());
        // A spoke that fails its health check would fail every read too: report only the
        // conditions then, and keep the last capacity and claims.
        let facts = if spoke_up {
            collect_facts(&self.spoke.client, &self.cluster, self.max_custom_claims).await
        } else {
            SpokeFacts::default()
        };
        let mut desired = DesiredStatus {
            conditions: vec![joined_condition()],
            kubernetes_version: facts.kubernetes_version,
            capacity: facts.capacity,
            allocatable: facts.allocatable,
            claims: facts.claims.map(|s| s.claims),
        };
        if let Some(availability) = &availability {
            desired.conditions.push(available_condition(availability));
        }

        let api: Api<DynamicObject> = Api::all_with(self.hub.get(), &managed_clusters());
        for _ in 0..CONFLICT_RETRIES {
            let current = api.get(&self.cluster).await.map_err(|e| self.hub_error("reading", e))?;
            let current = serde_json::to_value(&current)
                .map_err(|e| AgentError::Internal(format!("cannot encode ManagedCluster {}: {e}", self.cluster)))?;
            self.follow_lease_duration(&current);
            if self.sync_client_configs(&api, &current).await {
                // The spec write moved the resourceVersion: read again.
                continue;
            }
            let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            let Some(patch) = status_patch(&current, &desired, &now) else {
                return Ok(Synced::Done);
            };
            match api.patch_status(&self.cluster, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    let fields: Vec<String> = patch
                        .get("status")
                        .and_then(Value::as_object)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    tracing::info!(cluster = %self.cluster, ?fields, "reported the cluster's status");
                    return Ok(Synced::Done);
                }
                Err(e) if api_code(&e) == Some(409) => {
                    tracing::debug!(cluster = %self.cluster, "the ManagedCluster changed while the status was computed; recomputing");
                }
                Err(e) => return Err(self.hub_error("updating the status of", e)),
            }
        }
        Ok(Synced::Conflict)
    }

    fn hub_error(&self, action: &str, e: kube::Error) -> AgentError {
        let what = match api_code(&e) {
            Some(403) => format!("{action} ManagedCluster {} (the hub refuses this agent)", self.cluster),
            Some(404) => format!("{action} ManagedCluster {} (it no longer exists on the hub)", self.cluster),
            _ => format!("{action} ManagedCluster {}", self.cluster),
        };
        AgentError::kube(what)(e)
    }

    fn follow_lease_duration(&self, current: &Value) {
        let duration = self.lease_override.unwrap_or_else(|| {
            current
                .pointer("/spec/leaseDurationSeconds")
                .and_then(Value::as_u64)
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
                .unwrap_or(crate::lease::DEFAULT_LEASE_DURATION)
        });
        self.lease_duration.send_if_modified(|d| {
            let changed = *d != duration;
            *d = duration;
            changed
        });
    }

    /// Keeps `spec.managedClusterClientConfigs` pointing at the spoke (a simulated spoke's
    /// port may change between runs); `true` if it wrote. Failures are logged only: the
    /// status report matters more.
    async fn sync_client_configs(&self, api: &Api<DynamicObject>, current: &Value) -> bool {
        let want = client_configs(&self.spoke.url, self.spoke.ca_pem.as_deref());
        if current.pointer("/spec/managedClusterClientConfigs") == Some(&want) {
            return false;
        }
        let patch = json!({"spec": {"managedClusterClientConfigs": want}});
        match api.patch(&self.cluster, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                tracing::info!(cluster = %self.cluster, url = %self.spoke.url, "updated managedClusterClientConfigs");
                true
            }
            Err(e) => {
                tracing::warn!(cluster = %self.cluster, error = %api_message(&e), "cannot update managedClusterClientConfigs");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const NOW: &str = "2030-01-01T00:00:00Z";

    fn desired() -> DesiredStatus {
        DesiredStatus {
            conditions: vec![joined_condition(), available_condition(&Availability::Available)],
            kubernetes_version: Some("v1.34.0".into()),
            capacity: Some([("cpu".to_string(), "12".to_string()), ("memory".to_string(), "48Gi".to_string())].into()),
            allocatable: None,
            claims: Some(vec![claims::Claim { name: claims::CLAIM_ID.into(), value: "uid".into() }]),
        }
    }

    #[test]
    fn first_report_writes_everything_and_keeps_hub_conditions() {
        let current = json!({
            "metadata": {"name": "c1", "resourceVersion": "42"},
            "status": {"conditions": [{"type": "HubAcceptedManagedCluster", "status": "True", "reason": "HubClusterAdminAccepted",
                "message": "accepted", "lastTransitionTime": "2029-01-01T00:00:00Z"}]},
        });
        let patch = status_patch(&current, &desired(), NOW).unwrap();
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        let conditions = patch["status"]["conditions"].as_array().unwrap();
        let types: Vec<&str> = conditions.iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["HubAcceptedManagedCluster", CONDITION_JOINED, CONDITION_AVAILABLE]);
        assert_eq!(conditions[0]["lastTransitionTime"], "2029-01-01T00:00:00Z");
        assert_eq!(conditions[2]["lastTransitionTime"], NOW);
        assert_eq!(patch["status"]["version"]["kubernetes"], "v1.34.0");
        assert_eq!(patch["status"]["capacity"]["memory"], "48Gi");
        assert!(patch["status"].get("allocatable").is_none());
        assert_eq!(patch["status"]["clusterClaims"][0]["name"], claims::CLAIM_ID);
    }

    #[test]
    fn nothing_changed_means_no_write() {
        let mut current = json!({"metadata": {"resourceVersion": "1"}});
        let patch = status_patch(&current, &desired(), NOW).unwrap();
        json_patch_merge(&mut current, &patch);
        assert_eq!(status_patch(&current, &desired(), "2031-01-01T00:00:00Z"), None);
        // Equal quantities in another spelling are not a change either.
        current["status"]["capacity"]["memory"] = json!("49152Mi");
        assert_eq!(status_patch(&current, &desired(), NOW), None);
    }

    #[test]
    fn transitions_move_only_with_status_and_removed_resources_are_nulled() {
        let mut current = json!({"metadata": {"resourceVersion": "1"}});
        let patch = status_patch(&current, &desired(), "2030-01-01T00:00:00Z").unwrap();
        json_patch_merge(&mut current, &patch);
        current["status"]["capacity"]["nvidia.com/gpu"] = json!("2");

        let mut down = desired();
        down.conditions[1] = available_condition(&Availability::Unavailable("livez 500".into()));
        let patch = status_patch(&current, &down, "2030-01-02T00:00:00Z").unwrap();
        let available = &patch["status"]["conditions"][1];
        assert_eq!(
            (available["status"].as_str(), available["reason"].as_str()),
            (Some("False"), Some(REASON_UNAVAILABLE))
        );
        assert_eq!(available["lastTransitionTime"], "2030-01-02T00:00:00Z");
        // Joined did not change: its time stays.
        assert_eq!(patch["status"]["conditions"][0]["lastTransitionTime"], "2030-01-01T00:00:00Z");
        assert_eq!(patch["status"]["capacity"]["nvidia.com/gpu"], Value::Null);
        json_patch_merge(&mut current, &patch);

        // Same status, new message: the message changes, the time does not.
        down.conditions[1] = available_condition(&Availability::Unavailable("livez 503".into()));
        let patch = status_patch(&current, &down, "2030-01-03T00:00:00Z").unwrap();
        assert_eq!(patch["status"]["conditions"][1]["message"], "livez 503");
        assert_eq!(patch["status"]["conditions"][1]["lastTransitionTime"], "2030-01-02T00:00:00Z");
    }

    #[test]
    fn unknown_parts_are_left_alone() {
        let current = json!({"status": {"capacity": {"cpu": "4"}, "clusterClaims": [{"name": "a", "value": "b"}]}});
        let partial = DesiredStatus { conditions: vec![], ..DesiredStatus::default() };
        assert_eq!(status_patch(&current, &partial, NOW), None);
    }

    #[test]
    fn health_failures_must_last_the_grace() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut health = HealthTracker::new(Duration::from_secs(20));
        assert_eq!(health.observe(Err("down".into()), at(0)), None);
        assert!(health.pending_failure());
        assert_eq!(health.observe(Ok(()), at(5)), Some(Availability::Available));
        assert!(!health.pending_failure());
        assert_eq!(health.observe(Err("down".into()), at(10)), Some(Availability::Available));
        assert_eq!(health.observe(Err("down".into()), at(25)), Some(Availability::Available));
        assert_eq!(
            health.observe(Err("still down".into()), at(30)),
            Some(Availability::Unavailable("still down".into()))
        );
        assert!(!health.pending_failure());
        assert_eq!(health.observe(Ok(()), at(31)), Some(Availability::Available));
    }

    #[test]
    fn client_configs_carry_the_ca() {
        let configs = client_configs("https://127.0.0.1:7000", Some("PEM"));
        assert_eq!(configs, json!([{"url": "https://127.0.0.1:7000", "caBundle": "UEVN"}]));
        assert_eq!(client_configs("https://x", None), json!([{"url": "https://x"}]));
    }

    /// RFC 7386 merge, to play the hub in these tests.
    fn json_patch_merge(target: &mut Value, patch: &Value) {
        match (target.as_object_mut(), patch.as_object()) {
            (Some(t), Some(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        json_patch_merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            _ => *target = patch.clone(),
        }
    }
}
