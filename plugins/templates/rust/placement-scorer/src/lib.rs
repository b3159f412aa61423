//! A placement scorer: ranks clusters by the allocatable amount of one resource.
//!
//! ```json
//! {"resource": "cpu"}
//! ```
//!
//! Each cluster's allocatable amount against the largest: 100 for the largest, -100 for none.
//! Scores must be within [-100, 100], one per cluster, in input order.

use flotilla_plugin_sdk::{
    Clusters, Context, Description, PlacementScorer, Plugin, Reads, Result, Scores, bail,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The resource to rank by, as in `ManagedCluster.status.allocatable`.
    #[serde(default = "default_resource")]
    resource: String,
}

fn default_resource() -> String {
    "cpu".into()
}

struct Scorer;

impl Plugin for Scorer {
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

impl PlacementScorer for Scorer {
    fn score(config: &Config, _ctx: &Context, clusters: &Clusters) -> Result<Scores> {
        let max = clusters
            .iter()
            .filter_map(|c| c.allocatable(&config.resource))
            .max()
            .unwrap_or(0);
        Ok(Scores::by(clusters, |c| {
            match c.allocatable(&config.resource) {
                // i128: milli-units of memory times 200 overflow nothing.
                Some(milli) if max > 0 => (i128::from(milli) * 200 / i128::from(max) - 100) as i32,
                _ => -100,
            }
        }))
    }
}

flotilla_plugin_sdk::placement_scorer!(Scorer);
