//! A placement filter: keeps the clusters whose label `key` has one of `values`.
//!
//! ```json
//! {"key": "region", "values": ["eu-west-1", "eu-central-1"]}
//! ```
//!
//! The host calls `filter` once per scheduling cycle with every candidate cluster, by column:
//! `clusters.labels` holds one column per label that `validate_config` said the plugin reads.

wit_bindgen::generate!({
    path: "wit",
    world: "placement-filter",
    generate_all,
});

use exports::flotilla::placement_filter::filter::{FilterResult, Guest};
use flotilla::types::log::{Level, log};
use flotilla::types::types::{ClusterBatch, Description, OwnerRef, Reads};
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

fn parse(config: &str) -> Result<Config, String> {
    let config: Config =
        serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    if config.key.is_empty() {
        return Err("key must not be empty".into());
    }
    if config.values.is_empty() {
        return Err("values must name at least one value".into());
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

fn filter(config: &Config, clusters: &ClusterBatch) -> FilterResult {
    let count = clusters.count as usize;
    // The label's column; absent when no cluster has the label.
    let column = clusters.labels.iter().find(|c| c.key == config.key);
    // Decide once per distinct value: entry 0 is "no such label", entry i + 1 is values[i].
    let mut keep = vec![false];
    if let Some(column) = column {
        keep.extend(column.values.iter().map(|v| config.values.contains(v)));
    }
    let verdicts: Vec<u32> = (0..count)
        .map(|i| {
            let index = column.map_or(0, |c| c.index[i] as usize);
            // 0 keeps the cluster; 1 removes it for reasons[0].
            if keep[index] { 0 } else { 1 }
        })
        .collect();
    let removed = verdicts.iter().filter(|v| **v != 0).count();
    // Log lines land in the hub's log, tagged with the plugin's name.
    let message = format!("removing {removed} of {count} cluster(s)");
    log(Level::Debug, &message);
    let values = config.values.join(", ");
    let reasons = if removed > 0 {
        vec![format!("label {} not in [{values}]", config.key)]
    } else {
        vec![]
    };
    FilterResult {
        reasons,
        verdicts,
        requeue_after_ms: None,
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
        let config = parse(&config)?;
        Ok(Reads {
            labels: vec![config.key],
            ..no_reads()
        })
    }

    fn filter(
        config: String,
        _owner: OwnerRef,
        clusters: ClusterBatch,
    ) -> Result<FilterResult, String> {
        Ok(filter(&parse(&config)?, &clusters))
    }
}

export!(Plugin);
