//! least-loaded-scorer: prefers the clusters with the largest free share of one resource
//! (see plugins/examples/README.md).

use flotilla_plugin_sdk::{Clusters, Context, Description, PlacementScorer, Plugin, Reads, Result, Scores, bail};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_resource")]
    resource: String,
}

fn default_resource() -> String {
    "cpu".into()
}

struct LeastLoadedScorer;

impl Plugin for LeastLoadedScorer {
    type Config = Config;

    fn describe() -> Description {
        flotilla_plugin_sdk::package_description!()
    }

    fn reads(config: &Config) -> Result<Reads> {
        if config.resource.is_empty() {
            bail!("resource must not be empty");
        }
        Ok(Reads::new().resources([&config.resource]))
    }
}

/// 100 when all of the resource is free, 0 at half, -100 when none is (or unknown).
fn score(allocatable: Option<i64>, capacity: Option<i64>) -> i32 {
    match (allocatable, capacity) {
        // i128: 200 * a cannot overflow whatever a cluster reports.
        (Some(a), Some(c)) if c > 0 => (200 * a as i128 / c as i128 - 100).min(100) as i32,
        _ => -100,
    }
}

impl PlacementScorer for LeastLoadedScorer {
    fn score(config: &Config, _ctx: &Context, clusters: &Clusters) -> Result<Scores> {
        Ok(Scores::by(clusters, |c| score(c.allocatable(&config.resource), c.capacity(&config.resource))))
    }
}

flotilla_plugin_sdk::placement_scorer!(LeastLoadedScorer);
