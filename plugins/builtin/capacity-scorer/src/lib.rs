//! Built-in placement scorer: prefers the clusters with the most allocatable resources.
//!
//! For each configured resource it scores as OCM's `ResourceAllocatableCPU` and
//! `ResourceAllocatableMemory` prioritizers, `((v - min) / (max - min) - 0.5) * 200` over the
//! candidates (100 for every cluster when all are equal, -100 for a cluster that does not
//! report the resource), and combines the resources by their weights.
//!
//! ```json
//! {"resources": [{"name": "cpu", "weight": 2}, {"name": "memory", "weight": 1}], "use": "allocatable"}
//! ```

wit_bindgen::generate!({
    path: "../../../wit/placement-scorer",
    world: "placement-scorer",
    generate_all,
});

use exports::flotilla::placement_scorer::scorer::{Guest, ScoreResult};
use flotilla::types::types::{ClusterBatch, Description, OwnerRef, Reads};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_resources")]
    resources: Vec<Weighted>,
    #[serde(default, rename = "use")]
    use_: Use,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Weighted {
    name: String,
    #[serde(default = "one")]
    weight: u32,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Use {
    #[default]
    Allocatable,
    Capacity,
}

fn one() -> u32 {
    1
}

fn default_resources() -> Vec<Weighted> {
    vec![Weighted { name: "cpu".into(), weight: 1 }, Weighted { name: "memory".into(), weight: 1 }]
}

fn parse(config: &str) -> Result<Config, String> {
    let config: Config = serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    if config.resources.is_empty() {
        return Err("resources must name at least one resource".into());
    }
    if config.resources.iter().all(|r| r.weight == 0) {
        return Err("at least one resource needs a weight above 0".into());
    }
    Ok(config)
}

/// Adds every cluster's score on one resource, OCM's formula in [-100, 100], times `weight`
/// to `sums`: in place, so the batch costs no per-resource allocation.
fn add_resource(sums: &mut [f64], clusters: &ClusterBatch, name: &str, use_: Use, weight: f64) {
    let Some(col) = clusters.resources.iter().find(|r| r.name == name) else {
        // No cluster reports it: every cluster lacks it.
        sums.iter_mut().for_each(|sum| *sum += -100.0 * weight);
        return;
    };
    let values = match use_ {
        Use::Allocatable => &col.allocatable_milli,
        Use::Capacity => &col.capacity_milli,
    };
    // -1: the cluster does not report the resource.
    let (min, max) =
        values.iter().filter(|v| **v >= 0).fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = if max > min { (max - min) as f64 } else { 0.0 };
    for (sum, &v) in sums.iter_mut().zip(values) {
        let s = if v < 0 {
            -100.0
        } else if max <= min {
            100.0
        } else {
            ((v - min) as f64 / range - 0.5) * 200.0
        };
        *sum += s * weight;
    }
}

/// The whole batch: one pass per resource, then the weighted mean, rounded.
fn score_all(config: &Config, clusters: &ClusterBatch) -> Vec<i32> {
    let total: f64 = config.resources.iter().map(|r| f64::from(r.weight)).sum();
    let mut sums = vec![0.0f64; clusters.count as usize];
    for r in &config.resources {
        add_resource(&mut sums, clusters, &r.name, config.use_, f64::from(r.weight));
    }
    sums.into_iter().map(|s| (s / total).round().clamp(-100.0, 100.0) as i32).collect()
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "capacity-scorer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Prefers clusters with more allocatable (or capacity) resources, as OCM's ResourceAllocatable \
                      prioritizers, over weighted resources."
                .into(),
            reads: Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![] },
            config_schema: Some(include_str!("../config.schema.json").into()),
        }
    }

    fn validate_config(config: String) -> Result<Reads, String> {
        let config = parse(&config)?;
        Ok(Reads {
            labels: vec![],
            claims: vec![],
            resources: config.resources.iter().map(|r| r.name.clone()).collect(),
            fields: vec![],
            kinds: vec![],
        })
    }

    fn score(config: String, _owner: OwnerRef, clusters: ClusterBatch) -> Result<ScoreResult, String> {
        let config = parse(&config)?;
        Ok(ScoreResult { scores: score_all(&config, &clusters), requeue_after_ms: None })
    }
}

export!(Plugin);
