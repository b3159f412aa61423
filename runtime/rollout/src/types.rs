//! The interface every rollout strategy implements, built-in or Wasm: the clusters of a
//! rollout with their decision groups and statuses in, which clusters proceed out. It mirrors
//! the `flotilla:rollout-strategy` WIT world, so a built-in and a plugin are interchangeable.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC (the WIT `timestamp`).
pub type Millis = i64;

/// A cluster's rollout status, as sdk-go's `RolloutStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RolloutStatus {
    /// The current revision is not applied there yet (or was never).
    ToApply,
    /// Applied, not yet healthy.
    Progressing,
    /// Applied and healthy.
    Succeeded,
    /// Applied and degraded.
    Failed,
    /// Did not succeed within the progress deadline.
    TimeOut,
    /// Left out of this rollout.
    Skip,
}

/// One cluster of a rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCluster {
    /// The ManagedCluster's name.
    pub name: String,
    /// The PlacementDecision group: its index and name (empty for an unnamed group).
    pub group_index: u32,
    pub group_name: String,
    pub status: RolloutStatus,
    /// When `status` last changed; `None` for a cluster that has none yet.
    pub last_transition_time: Option<Millis>,
}

/// What one rollout cycle decided (sdk-go's `RolloutResult`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutDecision {
    /// Clusters that get (or keep getting) the current revision now: new ones and those
    /// still in flight (`ClustersToRollout`), in the order the strategy chose.
    pub proceed: Vec<String>,
    /// Clusters whose progress deadline passed; recorded as `TimeOut` (`ClustersTimeOut`).
    pub timed_out: Vec<String>,
    /// Clusters the strategy declares failed: with automatic rollback they go back to the
    /// last revision that succeeded there.
    pub failed: Vec<String>,
    /// Failures exceed what the strategy tolerates (`MaxFailureBreach`): the rollout stops.
    pub stop: bool,
    /// Decide again after this long even if no status changes (`RecheckAfter`).
    pub recheck_after: Option<Duration>,
    /// A one-line summary for people: what the rollout waits for.
    pub message: Option<String>,
}

/// Why a strategy could not decide. The owning ManifestWorkReplicaSet's status carries it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StrategyError {
    /// The strategy's configuration is invalid; `field` is its path in the object.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A Wasm strategy failed (trap, timeout, invalid answer): the plugin host's message.
    #[error("rollout strategy plugin {plugin}: {message}")]
    Plugin { plugin: String, message: String },
}

/// A rollout strategy: one decision per cycle, a pure function of its inputs. `clusters`
/// holds every cluster of the rollout, sorted by name; `now` is the cycle's time.
pub trait Strategy: Send + Sync {
    fn decide(&self, now: Millis, clusters: &[RolloutCluster]) -> Result<RolloutDecision, StrategyError>;
}
