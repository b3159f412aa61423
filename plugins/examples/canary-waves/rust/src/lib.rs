//! canary-waves: a canary, then percentage waves, each gated on the health of everything
//! before it (see plugins/examples/README.md; plugins/builtin/canary-waves adds deadlines
//! and soak times).

use flotilla_plugin_sdk::{
    Context, Decision, Description, Plugin, Reads, Result, RolloutCluster, RolloutStatus, RolloutStrategy, bail,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    #[serde(default = "one")]
    canary: u32,
    #[serde(default = "all")]
    waves: Vec<u32>,
    #[serde(default)]
    max_failures: u32,
}

fn one() -> u32 {
    1
}

fn all() -> Vec<u32> {
    vec![100]
}

struct CanaryWaves;

impl Plugin for CanaryWaves {
    type Config = Config;

    fn describe() -> Description {
        flotilla_plugin_sdk::package_description!()
    }

    fn reads(config: &Config) -> Result<Reads> {
        if config.waves.iter().any(|p| !(1..=100).contains(p)) {
            bail!("waves must be percentages from 1 to 100");
        }
        Ok(Reads::new())
    }
}

/// The end of each stage: the canary, each wave, and always every cluster.
fn bounds(config: &Config, total: usize) -> Vec<usize> {
    let mut bounds = vec![(config.canary as usize).min(total)];
    for p in &config.waves {
        let last = bounds.last().copied().unwrap_or(0);
        bounds.push((total * *p as usize).div_ceil(100).clamp(last, total));
    }
    if bounds.last().copied().unwrap_or(0) < total {
        bounds.push(total);
    }
    bounds.dedup();
    bounds.retain(|b| *b > 0);
    bounds
}

fn names<'a>(clusters: impl Iterator<Item = &'a &'a RolloutCluster>) -> Vec<String> {
    clusters.map(|c| c.name().to_string()).collect()
}

impl RolloutStrategy for CanaryWaves {
    fn decide(config: &Config, _ctx: &Context, _now: i64, clusters: &[RolloutCluster]) -> Result<Decision> {
        use RolloutStatus::*;
        let mut live: Vec<&RolloutCluster> = clusters.iter().filter(|c| c.status != Skip).collect();
        live.sort_by(|a, b| (a.group_index, a.name()).cmp(&(b.group_index, b.name())));
        let total = live.len();
        let failed = names(live.iter().filter(|c| matches!(c.status, Failed | TimeOut)));
        if failed.len() > config.max_failures as usize {
            return Ok(Decision {
                proceed: names(live.iter().filter(|c| c.status == Progressing)),
                message: Some(format!(
                    "stopped: {} failure(s), more than maxFailures {}",
                    failed.len(),
                    config.max_failures
                )),
                failed,
                stop: true,
                ..Decision::default()
            });
        }
        let settled = |c: &&RolloutCluster| matches!(c.status, Succeeded | Failed | TimeOut);
        let bounds = bounds(config, total);
        let stage = bounds.iter().position(|&end| !live[..end].iter().all(settled));
        let (proceed, message) = match stage {
            None => (vec![], format!("complete: {total} cluster(s)")),
            Some(k) => {
                let end = bounds[k];
                let waiting = live[..end].iter().filter(|c| !settled(c)).count();
                (
                    names(live[..end].iter().filter(|c| matches!(c.status, ToApply | Progressing))),
                    format!("stage {} of {}: waiting for {waiting} of {end} cluster(s)", k + 1, bounds.len()),
                )
            }
        };
        Ok(Decision { proceed, failed, message: Some(message), ..Decision::default() })
    }
}

flotilla_plugin_sdk::rollout_strategy!(CanaryWaves);
