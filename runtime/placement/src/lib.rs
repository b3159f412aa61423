//! Placement scheduling (OCM's placement controller, docs/placement.md): which managed
//! clusters a Placement selects, in which decision groups, and why.
//!
//! - [`Inventory`]: what the hub knows that scheduling reads (clusters by column, cluster
//!   sets, bindings, AddOnPlacementScores, every placement's current decisions), kept
//!   current from watch events, never re-listed per schedule;
//! - [`schedule`]: one Placement against the inventory: cluster sets ∩ bindings, predicates
//!   (label, claim and CEL selectors, Wasm filters), taints and tolerations, prioritizers
//!   (built-in, AddOn, Wasm scorers) with weights and modes, `numberOfClusters`, spread
//!   constraints and decision groups; the result carries the conditions, the requeue time
//!   and a per-cluster explanation;
//!   ([`schedule_with`] without the explanation, about half the time at 10,000 clusters);
//! - [`PluginResolver`]: how the scheduler reaches Wasm filters and scorers (the hub's
//!   `WasmPlugin`s); each (component, configuration) is validated once and kept;
//! - the controller that runs it on the hub and writes PlacementDecisions and status.
//!
//! API CONTRACT (shared by the scheduler and the controller; keep it stable):
//! the types below are what the controller consumes. The scheduler may add fields.

mod cel;
mod cel_library;
pub mod controller;
pub mod decisions;
mod explain;
mod groups;
mod inventory;
mod plugins;
mod prioritize;
mod scheduler;
mod spec;
mod spread;
mod taints;
#[cfg(test)]
mod tests;

pub use inventory::{Affected, ClusterLabels, Inventory, PlacementKey, Reach};
pub use plugins::{FailurePolicy, PluginResolver, ResolvedPlugin};
pub use scheduler::{ScheduleOptions, schedule, schedule_with, scheduling_disabled};

use std::time::Duration;

use serde::Serialize;

/// Most decisions one PlacementDecision holds (OCM's `maxNumOfClusterDecisions`).
pub const MAX_DECISIONS_PER_OBJECT: usize = 100;

/// The condition types a schedule sets on the Placement.
pub const CONDITION_SATISFIED: &str = "PlacementSatisfied";
pub const CONDITION_MISCONFIGURED: &str = "PlacementMisconfigured";

/// `PlacementSatisfied` reasons (OCM's, plus Flotilla's `PluginFailed`).
pub const REASON_NO_BINDINGS: &str = "NoManagedClusterSetBindings";
pub const REASON_NO_INTERSECTION: &str = "NoIntersection";
pub const REASON_ALL_SETS_EMPTY: &str = "AllManagedClusterSetsEmpty";
pub const REASON_NO_CLUSTER_MATCHED: &str = "NoManagedClusterMatched";
pub const REASON_ALL_SCHEDULED: &str = "AllDecisionsScheduled";
pub const REASON_NOT_ALL_SCHEDULED: &str = "NotAllDecisionsScheduled";
/// A plugin with failure policy `Fail` failed: the previous decisions are kept.
pub const REASON_PLUGIN_FAILED: &str = "PluginFailed";

/// `PlacementMisconfigured` reasons (OCM's spelling, `Succeedconfigured` included).
pub const REASON_MISCONFIGURED: &str = "Misconfigured";
pub const REASON_SUCCEED_CONFIGURED: &str = "Succeedconfigured";

/// The annotation that makes the scheduler skip a Placement (an external scheduler writes
/// its decisions).
pub const SCHEDULING_DISABLE_ANNOTATION: &str = "cluster.open-cluster-management.io/experimental-scheduling-disable";

/// One selected cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub cluster_name: String,
    /// OCM leaves it empty.
    pub reason: String,
    /// The total weighted score (OCM's API has the field and never fills it).
    pub score: i64,
}

/// A decision group: a named group from `decisionStrategy.groupStrategy.decisionGroups`, or
/// an unnamed one split by `clustersPerDecisionGroup`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionGroup {
    pub index: usize,
    /// Empty for the unnamed groups.
    pub name: String,
    /// In OCM's order (by cluster name within a group).
    pub decisions: Vec<Decision>,
}

/// A condition to set on the Placement (`PlacementSatisfied`, `PlacementMisconfigured`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionOutcome {
    /// "True" or "False".
    pub status: &'static str,
    pub reason: String,
    pub message: String,
}

/// What one schedule of one Placement decided.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Never empty: with nothing selected, one empty unnamed group (so that one empty
    /// PlacementDecision exists, as OCM's).
    pub groups: Vec<DecisionGroup>,
    pub number_of_selected_clusters: usize,
    pub satisfied: ConditionOutcome,
    pub misconfigured: ConditionOutcome,
    /// Schedule this placement again after this long (a toleration or an AddOn score expires)
    /// even if nothing changes.
    pub requeue_after: Option<Duration>,
    /// Per cluster: which filter removed it and why, and each prioritizer's score and weight
    /// (the debug endpoint and `flotilla placement explain` print it). OCM's debugger fields
    /// (`filteredPipelineResults`, `prioritizeResults`, `aggregatedScores`) plus
    /// `clusterSets`, `eliminated` (`[{stage, reason, clusters}]`, stages `ClusterSets`,
    /// `Predicate`, `TaintToleration`, `SpreadConstraints`), `selected`, `notSelected`
    /// (`[{reason, clusters}]`) and `warnings`: every cluster of the inventory appears in
    /// exactly one of `selected`, `eliminated` and `notSelected`. `Null` when scheduled with
    /// [`ScheduleOptions`] `{explain: false}`.
    pub explanation: serde_json::Value,
    /// True when a plugin with failure policy `Fail` failed and `groups` are the previous
    /// decisions, kept as they were (`satisfied` says `PluginFailed` and why).
    pub kept_previous: bool,
    /// What the schedule noted without failing: expired AddOn scores, plugins ignored under
    /// failure policy `Ignore`, a spread constraint that could not be met.
    pub warnings: Vec<String>,
}
