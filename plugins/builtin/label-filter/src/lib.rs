//! Built-in placement filter: keeps the clusters whose labels and claims meet every
//! requirement of the configuration, with Kubernetes' selector operators.
//!
//! ```json
//! {"labels": [{"key": "region", "operator": "In", "values": ["eu-west-1", "eu-central-1"]}],
//!  "claims": [{"key": "platform.open-cluster-management.io", "operator": "NotIn", "values": ["Other"]}]}
//! ```
//! The host passes only the labels and claims named here (`validate-config` says so), by
//! column and dictionary-encoded: each requirement is decided once per distinct value, then
//! looked up per cluster.

wit_bindgen::generate!({
    path: "../../../wit/placement-filter",
    world: "placement-filter",
    generate_all,
});

use exports::flotilla::placement_filter::filter::{FilterResult, Guest};
use flotilla::types::types::{ClusterBatch, Description, OwnerRef, Reads, StringColumn};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    labels: Vec<Requirement>,
    #[serde(default)]
    claims: Vec<Requirement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    key: String,
    operator: Operator,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Deserialize, Clone, Copy)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Requirement {
    fn matches(&self, value: Option<&str>) -> bool {
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::NotIn => value.is_none_or(|v| self.values.iter().all(|x| x != v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }

    fn describe(&self, what: &str) -> String {
        match self.operator {
            Operator::In => format!("{what} {} not in [{}]", self.key, self.values.join(", ")),
            Operator::NotIn => format!("{what} {} in [{}]", self.key, self.values.join(", ")),
            Operator::Exists => format!("{what} {} missing", self.key),
            Operator::DoesNotExist => format!("{what} {} present", self.key),
        }
    }
}

fn parse(config: &str) -> Result<Config, String> {
    let config: Config = serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    for r in config.labels.iter().chain(&config.claims) {
        let needs_values = matches!(r.operator, Operator::In | Operator::NotIn);
        if needs_values && r.values.is_empty() {
            return Err(format!("requirement on {}: operator In and NotIn need values", r.key));
        }
        if !needs_values && !r.values.is_empty() {
            return Err(format!("requirement on {}: operator Exists and DoesNotExist take no values", r.key));
        }
    }
    Ok(config)
}

/// Per cluster, whether the requirement holds, from the key's column (absent: no cluster
/// has the key). Each distinct value is matched once.
fn column_matches(r: &Requirement, column: Option<&StringColumn>, count: usize) -> Vec<bool> {
    match column {
        None => vec![r.matches(None); count],
        Some(col) => {
            let mut by_index = Vec::with_capacity(col.values.len() + 1);
            by_index.push(r.matches(None));
            by_index.extend(col.values.iter().map(|v| r.matches(Some(v))));
            col.index.iter().map(|&i| by_index.get(i as usize).copied().unwrap_or(false)).collect()
        }
    }
}

fn filter(config: &Config, clusters: &ClusterBatch) -> FilterResult {
    let count = clusters.count as usize;
    let mut verdicts = vec![0u32; count];
    let mut reasons = Vec::new();
    let reqs = config
        .labels
        .iter()
        .map(|r| (r, "label", &clusters.labels))
        .chain(config.claims.iter().map(|r| (r, "claim", &clusters.claims)));
    for (r, what, columns) in reqs {
        let column = columns.iter().find(|c| c.key == r.key);
        let ok = column_matches(r, column, count);
        let mut reason = None;
        // The first requirement a cluster fails is its reason, as a scan in order would give.
        for (v, ok) in verdicts.iter_mut().zip(ok) {
            if *v == 0 && !ok {
                *v = *reason.get_or_insert_with(|| {
                    reasons.push(r.describe(what));
                    reasons.len() as u32
                });
            }
        }
    }
    FilterResult { reasons, verdicts, requeue_after_ms: None }
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "label-filter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Keeps the clusters whose labels and claims meet every requirement (In, NotIn, Exists, \
                      DoesNotExist)."
                .into(),
            reads: Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![] },
            config_schema: Some(include_str!("../config.schema.json").into()),
        }
    }

    fn validate_config(config: String) -> Result<Reads, String> {
        let config = parse(&config)?;
        Ok(Reads {
            labels: config.labels.iter().map(|r| r.key.clone()).collect(),
            claims: config.claims.iter().map(|r| r.key.clone()).collect(),
            resources: vec![],
            fields: vec![],
            kinds: vec![],
        })
    }

    fn filter(config: String, _owner: OwnerRef, clusters: ClusterBatch) -> Result<FilterResult, String> {
        let config = parse(&config)?;
        Ok(filter(&config, &clusters))
    }
}

export!(Plugin);
