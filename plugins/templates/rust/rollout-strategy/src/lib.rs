//! A rollout strategy: rolls out to at most `maxConcurrent` clusters at a time, in decision
//! group order, and stops at the first failure.
//!
//! ```json
//! {"maxConcurrent": 2}
//! ```
//!
//! The host calls `decide` once per rollout cycle with every cluster of the rollout and its
//! status. The world is deterministic: `now` is an argument, and there is no clock and no
//! randomness, so the same input always gives the same decision.

wit_bindgen::generate!({
    path: "wit",
    world: "rollout-strategy",
    generate_all,
});

use exports::flotilla::rollout_strategy::strategy::{
    Guest, RolloutCluster, RolloutDecision, RolloutStatus,
};
use flotilla::types::types::{Description, OwnerRef, Reads, Timestamp};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    /// How many clusters may be in flight (applied, not yet succeeded) at once.
    #[serde(default = "default_max_concurrent")]
    max_concurrent: usize,
}

fn default_max_concurrent() -> usize {
    1
}

fn parse(config: &str) -> Result<Config, String> {
    let config: Config =
        serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    if config.max_concurrent == 0 {
        return Err("maxConcurrent must be at least 1".into());
    }
    Ok(config)
}

fn no_reads() -> Reads {
    Reads {
        labels: vec![],
        claims: vec![],
        resources: vec![],
        fields: vec![],
        kinds: vec![],
    }
}

fn decide(config: &Config, clusters: &[RolloutCluster]) -> RolloutDecision {
    let named = |status: RolloutStatus| -> Vec<String> {
        clusters
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.cluster.name.clone())
            .collect()
    };
    let mut failed = named(RolloutStatus::Failed);
    failed.extend(named(RolloutStatus::TimeOut));
    // Clusters in flight keep getting the revision.
    let mut proceed = named(RolloutStatus::Progressing);
    let stop = !failed.is_empty();
    if !stop {
        // New clusters, by decision group, until maxConcurrent are in flight.
        let mut waiting: Vec<&RolloutCluster> = clusters
            .iter()
            .filter(|c| c.status == RolloutStatus::ToApply)
            .collect();
        waiting.sort_by_key(|c| c.group_index);
        let room = config.max_concurrent.saturating_sub(proceed.len());
        proceed.extend(waiting.iter().take(room).map(|c| c.cluster.name.clone()));
    }
    let succeeded = named(RolloutStatus::Succeeded).len();
    let total = clusters
        .iter()
        .filter(|c| c.status != RolloutStatus::Skip)
        .count();
    let message = if stop {
        format!("stopped: {} cluster(s) failed", failed.len())
    } else {
        format!(
            "{succeeded} of {total} cluster(s) succeeded, {} in flight",
            proceed.len()
        )
    };
    RolloutDecision {
        proceed,
        timed_out: vec![],
        failed,
        stop,
        recheck_after_ms: None,
        message: Some(message),
    }
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: env!("CARGO_PKG_DESCRIPTION").into(),
            reads: no_reads(),
            config_schema: Some(include_str!("../config.schema.json").into()),
        }
    }

    fn validate_config(config: String) -> Result<Reads, String> {
        parse(&config)?;
        Ok(no_reads())
    }

    fn decide(
        config: String,
        _owner: OwnerRef,
        _now: Timestamp,
        clusters: Vec<RolloutCluster>,
    ) -> Result<RolloutDecision, String> {
        Ok(decide(&parse(&config)?, &clusters))
    }
}

export!(Plugin);
