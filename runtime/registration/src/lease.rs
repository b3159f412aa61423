//! Cluster health from the agent's Lease (OCM's hub lease, clock-sync and taint
//! controllers):
//!
//! - once the lease is older than `leaseGraceFactor` × `leaseDurationSeconds`, Available
//!   becomes Unknown (`ManagedClusterLeaseUpdateStopped`); the controller asks to run again
//!   exactly when the lease will expire, and lease changes wake it up;
//! - `ManagedClusterConditionClockSynced` compares the agent's `renewTime` with the hub's
//!   clock when the renewal arrived (the time the hub recorded in the lease's managed
//!   fields), so the check holds whenever it runs, also after a restart;
//! - taints follow Available: Unknown or missing → `unreachable`, False → `unavailable`,
//!   True → neither.
//!
//! Health is tracked for accepted clusters whose agent has shown up (a lease exists, or
//! the cluster reports Joined or Available); a cluster nobody has joined yet is left
//! alone. A missing lease of a tracked cluster is created, so its grace starts counting.

use std::sync::Arc;
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_apiserver::objects::meta;
use flotilla_apiserver::{Resource, Storage};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::Kinds;
use crate::authz::{Acceptance, accepted};
use crate::conditions::{self, Condition, FALSE, TRUE, UNKNOWN};
use crate::controller::Reconciler;
use crate::names::{
    CLUSTER_NAME_LABEL, CONDITION_AVAILABLE, CONDITION_CLOCK_SYNCED, CONDITION_JOINED, DEFAULT_LEASE_DURATION_SECONDS,
    LEASE_NAME, REASON_CLOCK_OUT_OF_SYNC, REASON_CLOCK_SYNCED, REASON_LEASE_UPDATE_STOPPED, TAINT_EFFECT_NO_SELECT,
    TAINT_UNAVAILABLE, TAINT_UNREACHABLE,
};
use crate::util::{self, get_optional};

/// Largest difference between the agent's and the hub's clocks still called in sync.
pub const CLOCK_SKEW_TOLERANCE_MS: i64 = 5_000;
/// The hub records receipt times to the second (truncated), so a renewal in perfect sync
/// can look up to this much later than its receipt.
const RECEIPT_RESOLUTION_MS: i64 = 1_000;

pub struct LeaseHealth {
    storage: Storage,
    kinds: Arc<Kinds>,
    grace_factor: u32,
}

impl LeaseHealth {
    pub(crate) fn new(storage: Storage, kinds: Arc<Kinds>, grace_factor: u32) -> Self {
        LeaseHealth { storage, kinds, grace_factor: grace_factor.max(1) }
    }
}

fn parse_time(value: Option<&Value>) -> Option<Timestamp> {
    value.and_then(Value::as_str).and_then(|s| s.parse::<Timestamp>().ok())
}

/// What the hub knows about a lease's last renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    /// `spec.renewTime`: the agent's clock.
    pub renew: Option<Timestamp>,
    /// When the hub stored the last write: the newest managed-fields time, hub clock.
    pub receipt: Option<Timestamp>,
    pub holder: Option<String>,
    pub created: Option<Timestamp>,
}

pub fn lease_view(lease: &Value) -> LeaseView {
    let receipt = meta::get(lease, "managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| parse_time(entry.get("time")))
        .max();
    LeaseView {
        renew: parse_time(lease.pointer("/spec/renewTime")).or_else(|| parse_time(lease.pointer("/spec/acquireTime"))),
        receipt,
        holder: lease
            .pointer("/spec/holderIdentity")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_string),
        created: parse_time(meta::get(lease, "creationTimestamp")),
    }
}

/// Agent renew time minus hub receipt time, in milliseconds.
fn skew_ms(view: &LeaseView) -> Option<i64> {
    Some(view.renew?.as_millisecond() - view.receipt?.as_millisecond())
}

/// Whether the agent's clock agrees with the hub's (None: nothing to compare yet; the
/// hub's own lease has no holder).
pub fn clock_in_sync(view: &LeaseView) -> Option<bool> {
    view.holder.as_ref()?;
    let skew = skew_ms(view)?;
    Some((-CLOCK_SKEW_TOLERANCE_MS..=CLOCK_SKEW_TOLERANCE_MS + RECEIPT_RESOLUTION_MS).contains(&skew))
}

/// When the lease was last renewed, in the hub's time: the agent's precise `renewTime`
/// while its clock agrees with the hub's, else the hub's receipt time, so that a skewed
/// agent clock neither hides a dead agent nor condemns a live one.
pub fn last_renewal(view: &LeaseView) -> Option<Timestamp> {
    match (view.renew, view.receipt) {
        (Some(renew), Some(_)) if clock_in_sync(view) != Some(false) => Some(renew),
        (_, Some(receipt)) => Some(receipt),
        (Some(renew), None) => Some(renew),
        (None, None) => view.created,
    }
}

/// `spec.leaseDurationSeconds` of a cluster (60 when unset or zero).
pub fn lease_duration_seconds(mc: &Value) -> u64 {
    mc.pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_u64)
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_LEASE_DURATION_SECONDS)
}

/// How long a lease may go unrenewed: `factor` × the lease duration.
pub fn grace(lease_duration_seconds: u64, factor: u32) -> Duration {
    Duration::from_secs(lease_duration_seconds.saturating_mul(u64::from(factor.max(1))))
}

/// When a lease renewed at `last` expires.
pub fn expiry(last: Timestamp, grace: Duration) -> Timestamp {
    let millis = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    Timestamp::from_millisecond(last.as_millisecond().saturating_add(millis)).unwrap_or(Timestamp::MAX)
}

/// The taints a cluster should have given its Available status: `None` if `current` is
/// already right. Other taints are kept as they are.
pub fn reconcile_taints(current: &[Value], available: Option<&str>, now: &str) -> Option<Vec<Value>> {
    let (wanted, unwanted): (Option<&str>, &[&str]) = match available {
        Some(TRUE) => (None, &[TAINT_UNREACHABLE, TAINT_UNAVAILABLE]),
        Some(FALSE) => (Some(TAINT_UNAVAILABLE), &[TAINT_UNREACHABLE]),
        _ => (Some(TAINT_UNREACHABLE), &[TAINT_UNAVAILABLE]),
    };
    let key = |t: &Value| t.get("key").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut out: Vec<Value> = current.iter().filter(|t| !unwanted.contains(&key(t).as_str())).cloned().collect();
    if let Some(wanted) = wanted
        && !out.iter().any(|t| key(t) == wanted)
    {
        out.push(json!({"key": wanted, "effect": TAINT_EFFECT_NO_SELECT, "timeAdded": now}));
    }
    (out.as_slice() != current).then_some(out)
}

fn rfc3339(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Reconciler for LeaseHealth {
    fn name(&self) -> &'static str {
        "lease-health"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        vec![self.kinds.managed_clusters.clone(), self.kinds.leases.clone()]
    }

    fn keys_for(&self, index: usize, obj: &Value, deleted: bool) -> Vec<String> {
        match index {
            0 if !deleted => vec![meta::name(obj).to_string()],
            1 if meta::name(obj) == LEASE_NAME => meta::namespace(obj).map(str::to_string).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    async fn reconcile(&self, cluster: &str) -> Result<Option<Duration>, ApiError> {
        let Some(mut mc) = get_optional(&self.storage, &self.kinds.managed_clusters, None, cluster).await? else {
            return Ok(None);
        };
        if meta::deletion_timestamp(&mc).is_some() || accepted(&mc) != Acceptance::Accepted {
            return Ok(None);
        }
        let lease = get_optional(&self.storage, &self.kinds.leases, Some(cluster), LEASE_NAME).await?;
        let joined = conditions::status_of(&mc, CONDITION_JOINED).is_some()
            || conditions::status_of(&mc, CONDITION_AVAILABLE).is_some();
        let Some(lease) = lease else {
            if joined {
                self.create_lease(cluster, &mc).await?;
            }
            // The new lease's watch event brings the controller back.
            return Ok(None);
        };
        let now = Timestamp::now();
        let view = lease_view(&lease);
        let grace = grace(lease_duration_seconds(&mc), self.grace_factor);
        let expires = expiry(last_renewal(&view).unwrap_or(now), grace);
        let generation = meta::generation(&mc);
        let mut list = conditions::of(&mc);
        let mut changed = false;
        if now >= expires {
            let unknown = Condition {
                type_: CONDITION_AVAILABLE,
                status: UNKNOWN,
                reason: REASON_LEASE_UPDATE_STOPPED,
                message: "Registration agent stopped updating its lease.",
            };
            if conditions::set(&mut list, &unknown, generation, &rfc3339(now)) {
                tracing::info!(%cluster, grace_seconds = grace.as_secs(), "lease expired: cluster availability unknown");
                changed = true;
            }
        }
        if let Some(in_sync) = clock_in_sync(&view) {
            let condition = if in_sync {
                Condition {
                    type_: CONDITION_CLOCK_SYNCED,
                    status: TRUE,
                    reason: REASON_CLOCK_SYNCED,
                    message: "The clock of the managed cluster is synced with the hub.",
                }
            } else {
                Condition {
                    type_: CONDITION_CLOCK_SYNCED,
                    status: FALSE,
                    reason: REASON_CLOCK_OUT_OF_SYNC,
                    message: "The clock of hub and agent is out of sync. This may cause the Unknown status and affect agent functionalities.",
                }
            };
            changed |= conditions::set(&mut list, &condition, generation, &rfc3339(now));
        }
        if changed {
            mc["status"]["conditions"] = json!(list);
            mc = util::update_status(&self.storage, &self.kinds.managed_clusters, mc).await?;
        }
        let current: Vec<Value> = mc.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default();
        let available = conditions::status_of(&mc, CONDITION_AVAILABLE).map(str::to_string);
        if let Some(taints) = reconcile_taints(&current, available.as_deref(), &rfc3339(now)) {
            mc["spec"]["taints"] = json!(taints);
            util::update(&self.storage, &self.kinds.managed_clusters, mc).await?;
            tracing::info!(%cluster, available = ?available, "updated the hub's taints");
        }
        if now < expires {
            let wait = expires.as_millisecond() - now.as_millisecond();
            return Ok(Some(Duration::from_millis(u64::try_from(wait).unwrap_or(0))));
        }
        Ok(None)
    }
}

impl LeaseHealth {
    async fn create_lease(&self, cluster: &str, mc: &Value) -> Result<(), ApiError> {
        let now = Timestamp::now();
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": cluster, "labels": {CLUSTER_NAME_LABEL: cluster}},
            "spec": {
                "leaseDurationSeconds": lease_duration_seconds(mc),
                "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            },
        });
        match self.storage.create(&self.kinds.leases, Some(cluster), lease, &util::write_options()).await {
            Ok(_) => {
                tracing::info!(%cluster, "created the missing cluster lease");
                Ok(())
            }
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn lease(renew: &str, receipt: &str, holder: Option<&str>) -> Value {
        let mut lease = json!({
            "metadata": {"name": LEASE_NAME, "namespace": "c1", "creationTimestamp": "2030-01-01T00:00:00Z",
                "managedFields": [
                    {"manager": "old", "time": "2030-01-01T00:00:00Z"},
                    {"manager": "agent", "time": receipt},
                ]},
            "spec": {"renewTime": renew, "leaseDurationSeconds": 60},
        });
        if let Some(holder) = holder {
            lease["spec"]["holderIdentity"] = json!(holder);
        }
        lease
    }

    #[test]
    fn grace_is_factor_times_duration() {
        assert_eq!(lease_duration_seconds(&json!({"spec": {}})), 60);
        assert_eq!(lease_duration_seconds(&json!({"spec": {"leaseDurationSeconds": 0}})), 60);
        assert_eq!(lease_duration_seconds(&json!({"spec": {"leaseDurationSeconds": 1}})), 1);
        assert_eq!(grace(60, 5), Duration::from_secs(300));
        assert_eq!(grace(1, 2), Duration::from_secs(2));
        assert_eq!(grace(10, 0), Duration::from_secs(10), "a zero factor counts as one");
        assert_eq!(expiry(ts("2030-01-01T00:00:00.5Z"), Duration::from_secs(300)), ts("2030-01-01T00:05:00.5Z"));
    }

    #[test]
    fn renewals_use_the_agent_clock_only_when_it_agrees() {
        let synced = lease_view(&lease("2030-01-01T00:10:00.700000Z", "2030-01-01T00:10:00Z", Some("agent1")));
        assert_eq!(synced.receipt, Some(ts("2030-01-01T00:10:00Z")));
        assert_eq!(clock_in_sync(&synced), Some(true));
        assert_eq!(last_renewal(&synced), Some(ts("2030-01-01T00:10:00.7Z")));

        let behind = lease_view(&lease("2030-01-01T00:09:00Z", "2030-01-01T00:10:00Z", Some("agent1")));
        assert_eq!(clock_in_sync(&behind), Some(false));
        assert_eq!(last_renewal(&behind), Some(ts("2030-01-01T00:10:00Z")), "a slow agent clock does not expire it");
        let ahead = lease_view(&lease("2030-01-01T01:00:00Z", "2030-01-01T00:10:00Z", Some("agent1")));
        assert_eq!(clock_in_sync(&ahead), Some(false));
        assert_eq!(last_renewal(&ahead), Some(ts("2030-01-01T00:10:00Z")), "a fast one does not keep it alive");

        let edge = lease_view(&lease("2030-01-01T00:10:05Z", "2030-01-01T00:10:00Z", Some("agent1")));
        assert_eq!(clock_in_sync(&edge), Some(true));
        let past_edge = lease_view(&lease("2030-01-01T00:09:54.9Z", "2030-01-01T00:10:00Z", Some("agent1")));
        assert_eq!(clock_in_sync(&past_edge), Some(false));

        let hubs_own = lease_view(&lease("2030-01-01T00:10:00Z", "2030-01-01T00:10:00Z", None));
        assert_eq!(clock_in_sync(&hubs_own), None);
        assert_eq!(last_renewal(&hubs_own), Some(ts("2030-01-01T00:10:00Z")));
        let bare = lease_view(&json!({"metadata": {"creationTimestamp": "2030-01-01T00:00:00Z"}, "spec": {}}));
        assert_eq!(last_renewal(&bare), Some(ts("2030-01-01T00:00:00Z")));
    }

    #[test]
    fn taints_follow_availability() {
        const NOW: &str = "2030-01-01T00:00:00Z";
        let user = json!({"key": "gpu", "effect": "NoSelect"});
        let unreachable = reconcile_taints(std::slice::from_ref(&user), None, NOW).expect("adds unreachable");
        assert_eq!(unreachable.len(), 2);
        assert_eq!(unreachable[1], json!({"key": TAINT_UNREACHABLE, "effect": "NoSelect", "timeAdded": NOW}));
        assert_eq!(reconcile_taints(&unreachable, Some(UNKNOWN), NOW), None, "steady");
        let unavailable = reconcile_taints(&unreachable, Some(FALSE), NOW).expect("swaps");
        assert_eq!(unavailable.len(), 2);
        assert_eq!(unavailable[1]["key"], TAINT_UNAVAILABLE);
        let healthy = reconcile_taints(&unavailable, Some(TRUE), NOW).expect("removes");
        assert_eq!(healthy, vec![user.clone()]);
        assert_eq!(reconcile_taints(&healthy, Some(TRUE), NOW), None);
    }

    #[test]
    fn micro_time_formats() {
        let t = ts("2030-01-01T00:00:00.123456789Z");
        assert_eq!(t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), "2030-01-01T00:00:00.123456Z");
    }
}
