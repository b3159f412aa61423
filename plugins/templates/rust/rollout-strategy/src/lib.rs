//! A rollout strategy: rolls out to a few clusters at a time and stops at the first failure.
//!
//! ```json
//! {"maxConcurrent": 2}
//! ```
//!
//! The host calls `decide` once per rollout cycle with every cluster of the rollout and its
//! status; `now` is an argument (the world has no clock).

use flotilla_plugin_sdk::{
    Context, Decision, Description, Plugin, Reads, Result, RolloutCluster, RolloutStatus,
    RolloutStrategy, bail,
};
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

struct Strategy;

impl Plugin for Strategy {
    type Config = Config;

    fn describe() -> Description {
        flotilla_plugin_sdk::package_description!()
    }

    fn reads(config: &Config) -> Result<Reads> {
        if config.max_concurrent == 0 {
            bail!("maxConcurrent must be at least 1");
        }
        Ok(Reads::new())
    }
}

impl RolloutStrategy for Strategy {
    fn decide(
        config: &Config,
        _ctx: &Context,
        _now: i64,
        clusters: &[RolloutCluster],
    ) -> Result<Decision> {
        let named = |status: RolloutStatus| -> Vec<String> {
            clusters
                .iter()
                .filter(|c| c.status == status)
                .map(|c| c.name().to_string())
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
            proceed.extend(waiting.iter().take(room).map(|c| c.name().to_string()));
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
        Ok(Decision {
            proceed,
            failed,
            stop,
            message: Some(message),
            ..Decision::default()
        })
    }
}

flotilla_plugin_sdk::rollout_strategy!(Strategy);
