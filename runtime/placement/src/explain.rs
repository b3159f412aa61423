//! The explanation of a schedule (`flotilla placement explain`, the debug endpoint), in the
//! shape of OCM's debugger output (`filteredPipelineResults`, `prioritizeResults`,
//! `aggregatedScores`) plus, per cluster that did not make it, the stage that removed it and
//! why:
//!
//! ```json
//! {"placement": {"namespace": "ns", "name": "web"},
//!  "clusterSets": {"bound": ["prod"], "eligible": ["prod"], "candidates": 3, "terminating": []},
//!  "filteredPipelineResults": [{"name": "Predicate", "filteredClusters": ["a", "b"]},
//!                              {"name": "Predicate,TaintToleration", "filteredClusters": ["a"]}],
//!  "prioritizeResults": [{"name": "Balance", "weight": 1, "scores": {"a": 100}}],
//!  "aggregatedScores": {"a": 200},
//!  "eliminated": {"b": {"stage": "TaintToleration", "reason": "taint x:NoSelect is not tolerated"},
//!                 "c": {"stage": "Predicate", "reason": "predicates[0]: labelSelector env=prod does not match"}},
//!  "selected": ["a"],
//!  "notSelected": {"d": "not among the top 1"},
//!  "warnings": []}
//! ```
//!
//! Every cluster of the inventory is in exactly one of `selected`, `eliminated` (removed by
//! a stage: `ClusterSets` (not in an eligible set, or terminating), `Predicate`,
//! `TaintToleration` or `SpreadConstraints`) and `notSelected` (feasible, but not chosen).
//! Reasons are shared between clusters (one string per distinct reason until rendered).

use std::sync::Arc;

use serde_json::{Map, Value};

/// What a schedule records as it goes, rendered by [`Explain::render`].
#[derive(Default)]
pub(crate) struct Explain {
    pub namespace: String,
    pub name: String,
    pub bound: Vec<String>,
    pub eligible: Vec<String>,
    pub candidates: usize,
    pub terminating: Vec<String>,
    /// (stage names, surviving clusters).
    pub pipeline: Vec<(String, Vec<String>)>,
    /// (name, weight, scores aligned with `scored`).
    pub prioritizers: Vec<(String, i64, Vec<i64>)>,
    pub scored: Vec<String>,
    pub totals: Vec<i64>,
    /// (cluster, stage, reason).
    pub eliminated: Vec<(String, &'static str, Arc<str>)>,
    pub selected: Vec<String>,
    /// (cluster, reason).
    pub not_selected: Vec<(String, Arc<str>)>,
    pub warnings: Vec<String>,
    pub note: Option<String>,
}

fn strings(v: Vec<String>) -> Value {
    Value::Array(v.into_iter().map(Value::String).collect())
}

fn by_cluster(names: &[String], values: &[i64]) -> Value {
    Value::Object(names.iter().zip(values).map(|(n, v)| (n.clone(), Value::from(*v))).collect())
}

/// An object from fields, moving the values in (`json!` would copy each embedded `Value`
/// through `Serialize`, which for 10,000 clusters costs more than building them).
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let mut m = Map::with_capacity(N);
    for (k, v) in fields {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

impl Explain {
    pub fn render(self) -> Value {
        let mut eliminated = Map::with_capacity(self.eliminated.len());
        for (cluster, stage, reason) in self.eliminated {
            let entry = object([("stage", Value::String(stage.into())), ("reason", Value::String(reason.to_string()))]);
            eliminated.insert(cluster, entry);
        }
        let mut not_selected = Map::with_capacity(self.not_selected.len());
        for (cluster, reason) in self.not_selected {
            not_selected.insert(cluster, Value::String(reason.to_string()));
        }
        let pipeline: Vec<Value> = self
            .pipeline
            .into_iter()
            .map(|(name, survivors)| object([("name", Value::String(name)), ("filteredClusters", strings(survivors))]))
            .collect();
        let prioritize: Vec<Value> = self
            .prioritizers
            .into_iter()
            .map(|(name, weight, scores)| {
                object([
                    ("name", Value::String(name)),
                    ("weight", Value::from(weight)),
                    ("scores", by_cluster(&self.scored, &scores)),
                ])
            })
            .collect();
        let aggregated = by_cluster(&self.scored, &self.totals);
        let mut out = object([
            ("placement", object([("namespace", Value::String(self.namespace)), ("name", Value::String(self.name))])),
            (
                "clusterSets",
                object([
                    ("bound", strings(self.bound)),
                    ("eligible", strings(self.eligible)),
                    ("candidates", Value::from(self.candidates)),
                    ("terminating", strings(self.terminating)),
                ]),
            ),
            ("filteredPipelineResults", Value::Array(pipeline)),
            ("prioritizeResults", Value::Array(prioritize)),
            ("aggregatedScores", aggregated),
            ("eliminated", Value::Object(eliminated)),
            ("selected", strings(self.selected)),
            ("notSelected", Value::Object(not_selected)),
            ("warnings", strings(self.warnings)),
        ]);
        if let (Some(note), Some(obj)) = (self.note, out.as_object_mut()) {
            obj.insert("note".into(), Value::String(note));
        }
        out
    }
}
