//! A placement scorer: ranks clusters by the allocatable amount of one resource, from -100
//! for a cluster without it to 100 for the one with the most.
//!
//! ```json
//! {"resource": "cpu"}
//! ```
//!
//! The host calls `score` once per scheduling cycle with every cluster that passed the
//! filters, by column: `clusters.resources` holds one column per resource that
//! `validate_config` said the plugin reads, in milli-units, -1 where a cluster reports none.

wit_bindgen::generate!({
    path: "wit",
    world: "placement-scorer",
    generate_all,
});

use exports::flotilla::placement_scorer::scorer::{Guest, ScoreResult};
use flotilla::types::types::{ClusterBatch, Description, OwnerRef, Reads};
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

fn parse(config: &str) -> Result<Config, String> {
    let config: Config =
        serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    if config.resource.is_empty() {
        return Err("resource must not be empty".into());
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

/// Each cluster's allocatable amount against the largest: 100 for the largest, -100 for
/// none. Scores must be within [-100, 100], one per cluster, in input order.
fn score(config: &Config, clusters: &ClusterBatch) -> ScoreResult {
    let count = clusters.count as usize;
    let allocatable = match clusters
        .resources
        .iter()
        .find(|c| c.name == config.resource)
    {
        Some(column) => column.allocatable_milli.clone(),
        None => vec![-1; count],
    };
    let max = allocatable.iter().copied().max().unwrap_or(-1);
    let scores = allocatable
        .iter()
        .map(|&milli| {
            if milli < 0 || max <= 0 {
                -100
            } else {
                (i128::from(milli) * 200 / i128::from(max) - 100) as i32
            }
        })
        .collect();
    ScoreResult {
        scores,
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
            resources: vec![config.resource],
            ..no_reads()
        })
    }

    fn score(
        config: String,
        _owner: OwnerRef,
        clusters: ClusterBatch,
    ) -> Result<ScoreResult, String> {
        Ok(score(&parse(&config)?, &clusters))
    }
}

export!(Plugin);
