//! region-capacity-filter: keeps clusters in allowed regions with enough allocatable
//! resources (see plugins/examples/README.md).

use std::collections::BTreeMap;

use flotilla_plugin_sdk::{
    Clusters, Context, Description, Filtered, PlacementFilter, Plugin, Reads, Result, bail, debug,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    regions: Vec<String>,
    #[serde(default = "default_region_label")]
    region_label: String,
    /// A BTreeMap: resources are checked in name order, as the README says.
    #[serde(default)]
    min_allocatable_milli: BTreeMap<String, i64>,
}

fn default_region_label() -> String {
    "region".into()
}

struct RegionCapacityFilter;

impl Plugin for RegionCapacityFilter {
    type Config = Config;

    fn describe() -> Description {
        flotilla_plugin_sdk::package_description!()
    }

    fn reads(config: &Config) -> Result<Reads> {
        if config.regions.is_empty() {
            bail!("regions must name at least one region");
        }
        if config.region_label.is_empty() {
            bail!("regionLabel must not be empty");
        }
        if let Some((resource, _)) = config.min_allocatable_milli.iter().find(|(_, min)| **min < 0) {
            bail!("minAllocatableMilli.{resource} must not be negative");
        }
        Ok(Reads::new().labels([&config.region_label]).resources(config.min_allocatable_milli.keys()))
    }
}

impl PlacementFilter for RegionCapacityFilter {
    fn filter(config: &Config, _ctx: &Context, clusters: &Clusters) -> Result<Filtered> {
        let result = Filtered::by(clusters, |c| {
            let Some(region) = c.label(&config.region_label) else {
                return Some(format!("label {} missing", config.region_label));
            };
            if !config.regions.iter().any(|r| r == region) {
                return Some(format!("region {region} not allowed"));
            }
            config.min_allocatable_milli.iter().find_map(|(resource, min)| match c.allocatable(resource) {
                None => Some(format!("{resource} not reported")),
                Some(got) if got < *min => Some(format!("{resource} allocatable {got}m below {min}m")),
                Some(_) => None,
            })
        });
        debug!("removing {} of {} cluster(s)", result.removed_count(), clusters.len());
        Ok(result)
    }
}

flotilla_plugin_sdk::placement_filter!(RegionCapacityFilter);
