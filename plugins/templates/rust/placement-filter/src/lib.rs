//! A placement filter: keeps the clusters whose label `key` has one of `values`.
//!
//! ```json
//! {"key": "region", "values": ["eu-west-1", "eu-central-1"]}
//! ```
//!
//! The host calls `filter` once per scheduling cycle with every candidate cluster; `reads`
//! says which labels it passes (only those).

use flotilla_plugin_sdk::{
    Clusters, Context, Description, Filtered, PlacementFilter, Plugin, Reads, Result, bail, debug,
};
use serde::Deserialize;

/// The configuration, from the JSON that the Placement gives the plugin.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The label to look at.
    key: String,
    /// The values that keep a cluster.
    values: Vec<String>,
}

struct Filter;

impl Plugin for Filter {
    type Config = Config;

    fn describe() -> Description {
        // Name, version and summary from Cargo.toml; the schema from config.schema.json.
        flotilla_plugin_sdk::package_description!()
    }

    fn reads(config: &Config) -> Result<Reads> {
        if config.key.is_empty() {
            bail!("key must not be empty");
        }
        if config.values.is_empty() {
            bail!("values must name at least one value");
        }
        Ok(Reads::new().labels([&config.key]))
    }
}

impl PlacementFilter for Filter {
    fn filter(config: &Config, _ctx: &Context, clusters: &Clusters) -> Result<Filtered> {
        let reason = format!("label {} not in [{}]", config.key, config.values.join(", "));
        let result = Filtered::by(clusters, |c| match c.label(&config.key) {
            Some(v) if config.values.iter().any(|want| want == v) => None,
            _ => Some(reason.clone()),
        });
        // Log lines land in the hub's log, tagged with the plugin's name.
        debug!(
            "removing {} of {} cluster(s)",
            result.removed_count(),
            clusters.len()
        );
        Ok(result)
    }
}

flotilla_plugin_sdk::placement_filter!(Filter);
