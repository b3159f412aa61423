//! A ManifestWorkReplicaSet's status: OCM's conditions and summary counts, and Flotilla's
//! `status.rollout`, the per-cluster state a restarted controller resumes from.
//!
//! OCM's conditions (`ocm:pkg/work/hub/controllers/manifestworkreplicasetcontroller`):
//! - `PlacementVerified`: True `AsExpected` when the placements have clusters; False
//!   `PlacementDecisionNotFound` when a placement (or its PlacementDecisions) is missing,
//!   `PlacementDecisionEmpty` when they select no cluster.
//! - `PlacementRolledOut`: True `Complete` when every selected cluster holds the current
//!   revision; False `Progressing` otherwise. Flotilla adds the reasons `RolloutStopped` (the
//!   strategy stopped the rollout: maxFailures breached, rolled back) and `StrategyFailed`
//!   (the strategy could not decide: an invalid strategy or a failing plugin, with its reason).
//! - `ManifestworkApplied`: True `AsExpected` when every work is available and none
//!   progressing or degraded; False `Processing` while some progress and none is degraded;
//!   False `NotAsExpected` otherwise; False `PlacementDecisionEmpty` without clusters.
//!
//! `summary` and `placementSummary[].summary` count the works that hold the current revision
//! (`applied`, `available`: their conditions; `progressing`, `degraded`: their rollout status,
//! which needs no condition rules), `total` every work of the ManifestWorkReplicaSet on a
//! selected cluster, `updated` those holding the current revision, `desiredTotal` the selected
//! clusters. `availableDecisionGroups` is `<groups whose clusters all succeeded>/<groups>`, as
//! the API documents it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::types::{Millis, RolloutStatus};

pub const CONDITION_PLACEMENT_VERIFIED: &str = "PlacementVerified";
pub const CONDITION_PLACEMENT_ROLLED_OUT: &str = "PlacementRolledOut";
pub const CONDITION_MANIFESTWORK_APPLIED: &str = "ManifestworkApplied";

pub const REASON_AS_EXPECTED: &str = "AsExpected";
pub const REASON_NOT_AS_EXPECTED: &str = "NotAsExpected";
pub const REASON_PROCESSING: &str = "Processing";
pub const REASON_DECISION_NOT_FOUND: &str = "PlacementDecisionNotFound";
pub const REASON_DECISION_EMPTY: &str = "PlacementDecisionEmpty";
pub const REASON_PROGRESSING: &str = "Progressing";
pub const REASON_COMPLETE: &str = "Complete";
pub const REASON_STOPPED: &str = "RolloutStopped";
pub const REASON_STRATEGY_FAILED: &str = "StrategyFailed";

/// Where the rollout of the current revision is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Phase {
    /// Clusters are still to get or to settle on the current revision.
    #[default]
    Progressing,
    /// Every selected cluster holds the current revision and succeeded.
    Complete,
    /// The strategy stopped the rollout (maxFailures breached); with automatic rollback the
    /// failed clusters went back to their last good revision. A new template starts again.
    Stopped,
    /// The strategy cannot decide (invalid configuration, plugin failure): nothing moves.
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Progressing => "Progressing",
            Phase::Complete => "Complete",
            Phase::Stopped => "Stopped",
            Phase::Failed => "Failed",
        }
    }
}

/// One cluster in `status.rollout.clusters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    pub name: String,
    #[serde(default)]
    pub placement: String,
    #[serde(default)]
    pub group_index: u32,
    #[serde(default)]
    pub group_name: String,
    /// The rollout status of the current revision there, as read from its work.
    pub status: RolloutStatus,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The revision its work holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// The last revision that succeeded there: where an automatic rollback takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded_revision: Option<i64>,
    /// The strategy timed the cluster out (its progress deadline passed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// The revision an automatic rollback put back there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_to: Option<i64>,
    /// Why it has this status, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ClusterState {
    /// The status shown to people and given to the summary: TimeOut when timed out.
    pub fn shown_status(&self) -> RolloutStatus {
        if self.timed_out && matches!(self.status, RolloutStatus::Progressing | RolloutStatus::Failed) {
            RolloutStatus::TimeOut
        } else {
            self.status
        }
    }

    pub fn last_transition_millis(&self) -> Option<Millis> {
        parse_millis(self.last_transition_time.as_deref()?)
    }
}

/// `status.rollout`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutState {
    /// The current revision (the newest ControllerRevision).
    #[serde(default)]
    pub revision: i64,
    /// The ManifestWorkReplicaSet's generation this state was computed for.
    #[serde(default)]
    pub observed_generation: i64,
    #[serde(default)]
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the controller looks again even if nothing changes (a deadline, a soak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_at: Option<String>,
    /// The revision whose rollout was stopped (automatic rollback); cleared by a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_revision: Option<i64>,
    #[serde(default)]
    pub clusters: Vec<ClusterState>,
}

impl RolloutState {
    /// The stored state; a missing or unreadable one is an empty state (the controller then
    /// rebuilds what it can from the works).
    pub fn of(replica_set: &Value) -> RolloutState {
        replica_set.pointer("/status/rollout").and_then(|r| serde_json::from_value(r.clone()).ok()).unwrap_or_default()
    }
}

/// RFC 3339 of Unix milliseconds, to the second (as `metav1.Time`).
pub fn rfc3339(millis: Millis) -> String {
    jiff::Timestamp::from_millisecond(millis).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

pub fn parse_millis(text: &str) -> Option<Millis> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond())
}

/// OCM's summary counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub total: i64,
    pub applied: i64,
    pub available: i64,
    pub progressing: i64,
    pub degraded: i64,
    pub desired_total: i64,
    pub updated: i64,
}

impl Summary {
    pub fn add(&mut self, other: &Summary) {
        self.total += other.total;
        self.applied += other.applied;
        self.available += other.available;
        self.progressing += other.progressing;
        self.degraded += other.degraded;
        self.desired_total += other.desired_total;
        self.updated += other.updated;
    }

    pub fn to_json(self) -> Value {
        json!({
            "total": self.total,
            "applied": self.applied,
            "available": self.available,
            "progressing": self.progressing,
            "degraded": self.degraded,
            "desiredTotal": self.desired_total,
            "updated": self.updated,
        })
    }
}

/// `<groups whose clusters all succeeded>/<groups>` over one placement's clusters.
pub fn available_decision_groups(clusters: &[&ClusterState]) -> String {
    let mut groups: std::collections::BTreeMap<u32, bool> = std::collections::BTreeMap::new();
    for c in clusters {
        let ok = c.status == RolloutStatus::Succeeded;
        groups.entry(c.group_index).and_modify(|all| *all &= ok).or_insert(ok);
    }
    format!("{}/{}", groups.values().filter(|ok| **ok).count(), groups.len())
}

/// What one placement contributed to the conditions.
#[derive(Debug, Clone, Default)]
pub struct PlacementOutcome {
    pub name: String,
    /// The placement or its decisions are missing.
    pub not_found: bool,
    pub summary: Summary,
    pub available_decision_groups: String,
}

/// The conditions' `(type, status, reason, message)` from the placements' outcomes and the
/// rollout state.
pub fn conditions(
    placements: &[PlacementOutcome],
    total: &Summary,
    state: &RolloutState,
) -> Vec<(&'static str, &'static str, &'static str, String)> {
    let mut out = Vec::new();
    let missing: Vec<&str> = placements.iter().filter(|p| p.not_found).map(|p| p.name.as_str()).collect();
    let verified = if !missing.is_empty() {
        ("False", REASON_DECISION_NOT_FOUND, format!("no PlacementDecisions for placement {}", missing.join(", ")))
    } else if total.desired_total == 0 {
        ("False", REASON_DECISION_EMPTY, "the placements select no cluster".to_string())
    } else {
        ("True", REASON_AS_EXPECTED, String::new())
    };
    out.push((CONDITION_PLACEMENT_VERIFIED, verified.0, verified.1, verified.2));
    let message = state.message.clone().unwrap_or_default();
    let rolled_out = match state.phase {
        Phase::Failed => ("False", REASON_STRATEGY_FAILED, message),
        Phase::Stopped => ("False", REASON_STOPPED, message),
        _ if total.desired_total > 0 && total.updated == total.desired_total => ("True", REASON_COMPLETE, message),
        _ => ("False", REASON_PROGRESSING, message),
    };
    out.push((CONDITION_PLACEMENT_ROLLED_OUT, rolled_out.0, rolled_out.1, rolled_out.2));
    let applied = if total.total == 0 {
        let reason = if verified.1 == REASON_DECISION_EMPTY { REASON_DECISION_EMPTY } else { REASON_NOT_AS_EXPECTED };
        ("False", reason)
    } else if total.available == total.total && total.progressing == 0 && total.degraded == 0 {
        ("True", REASON_AS_EXPECTED)
    } else if total.progressing > 0 && total.degraded == 0 {
        ("False", REASON_PROCESSING)
    } else {
        ("False", REASON_NOT_AS_EXPECTED)
    };
    out.push((CONDITION_MANIFESTWORK_APPLIED, applied.0, applied.1, String::new()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, group: u32, status: RolloutStatus) -> ClusterState {
        ClusterState {
            name: name.into(),
            placement: "p".into(),
            group_index: group,
            group_name: String::new(),
            status,
            last_transition_time: None,
            revision: None,
            succeeded_revision: None,
            timed_out: false,
            rolled_back_to: None,
            message: None,
        }
    }

    #[test]
    fn decision_groups_count_those_all_succeeded() {
        let a = cluster("a", 0, RolloutStatus::Succeeded);
        let b = cluster("b", 1, RolloutStatus::Succeeded);
        let c = cluster("c", 1, RolloutStatus::Progressing);
        let d = cluster("d", 2, RolloutStatus::ToApply);
        assert_eq!(available_decision_groups(&[&a, &b, &c, &d]), "1/3");
        assert_eq!(available_decision_groups(&[]), "0/0");
    }

    #[test]
    fn conditions_follow_ocm() {
        let state = RolloutState::default();
        let empty = conditions(&[], &Summary::default(), &state);
        assert_eq!(empty[0].2, REASON_DECISION_EMPTY);
        assert_eq!((empty[2].1, empty[2].2), ("False", REASON_DECISION_EMPTY));

        let done = Summary { total: 2, applied: 2, available: 2, desired_total: 2, updated: 2, ..Default::default() };
        let c = conditions(&[], &done, &state);
        assert_eq!((c[0].1, c[1].2, c[2].2), ("True", REASON_COMPLETE, REASON_AS_EXPECTED));

        let moving = Summary { progressing: 1, updated: 1, ..done };
        let c = conditions(&[], &moving, &state);
        assert_eq!((c[1].2, c[2].2), (REASON_PROGRESSING, REASON_PROCESSING));

        let missing = PlacementOutcome { name: "p".into(), not_found: true, ..Default::default() };
        assert_eq!(conditions(&[missing], &done, &state)[0].2, REASON_DECISION_NOT_FOUND);

        let stopped = RolloutState { phase: Phase::Stopped, message: Some("stop".into()), ..Default::default() };
        let c = conditions(&[], &Summary { degraded: 1, ..moving }, &stopped);
        assert_eq!((c[1].2, c[1].3.as_str(), c[2].2), (REASON_STOPPED, "stop", REASON_NOT_AS_EXPECTED));
    }

    #[test]
    fn the_state_round_trips_and_shows_time_outs() {
        let mut c = cluster("a", 0, RolloutStatus::Progressing);
        c.timed_out = true;
        c.last_transition_time = Some(rfc3339(1_700_000_000_000));
        assert_eq!(c.shown_status(), RolloutStatus::TimeOut);
        assert_eq!(c.last_transition_millis(), Some(1_700_000_000_000));
        let state = RolloutState { revision: 2, clusters: vec![c], ..Default::default() };
        let obj = json!({"status": {"rollout": serde_json::to_value(&state).expect("json")}});
        assert_eq!(RolloutState::of(&obj), state);
        assert_eq!(RolloutState::of(&json!({"status": {"rollout": "garbage"}})), RolloutState::default());
    }
}
