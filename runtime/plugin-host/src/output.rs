//! The size of results, for the output limit, and the checks each world's result must pass.
//!
//! The size counts the bytes of every string plus a few bytes per value: about what the
//! result costs as JSON, without serializing it.

use std::collections::HashSet;

use serde_json::Value;

use crate::bindings::exports::flotilla::placement_filter::filter::FilterResult;
use crate::bindings::exports::flotilla::placement_scorer::scorer::ScoreResult;
use crate::bindings::exports::flotilla::policy_check::check::{CheckResult, ObjectRef, Violation};
use crate::bindings::exports::flotilla::rollout_strategy::strategy::{RolloutCluster, RolloutDecision};
use crate::bindings::flotilla::types::types::{Description, KindRef, Reads};
use crate::error::PluginError;

/// Bytes a value costs, for the output limit.
pub(crate) trait OutputSize {
    fn output_size(&self) -> u64;
}

impl OutputSize for String {
    fn output_size(&self) -> u64 {
        self.len() as u64 + 2
    }
}

impl OutputSize for bool {
    fn output_size(&self) -> u64 {
        1
    }
}

impl OutputSize for i32 {
    fn output_size(&self) -> u64 {
        4
    }
}

impl OutputSize for u64 {
    fn output_size(&self) -> u64 {
        8
    }
}

impl OutputSize for () {
    fn output_size(&self) -> u64 {
        0
    }
}

impl<T: OutputSize> OutputSize for Option<T> {
    fn output_size(&self) -> u64 {
        1 + self.as_ref().map_or(0, T::output_size)
    }
}

impl<T: OutputSize> OutputSize for Vec<T> {
    fn output_size(&self) -> u64 {
        8 + self.iter().map(T::output_size).sum::<u64>()
    }
}

impl<T: OutputSize, E: OutputSize> OutputSize for Result<T, E> {
    fn output_size(&self) -> u64 {
        1 + match self {
            Ok(t) => t.output_size(),
            Err(e) => e.output_size(),
        }
    }
}

impl OutputSize for KindRef {
    fn output_size(&self) -> u64 {
        self.api_version.output_size() + self.kind.output_size()
    }
}

impl OutputSize for Reads {
    fn output_size(&self) -> u64 {
        self.labels.output_size()
            + self.claims.output_size()
            + self.resources.output_size()
            + self.fields.output_size()
            + self.kinds.output_size()
    }
}

impl OutputSize for Description {
    fn output_size(&self) -> u64 {
        self.name.output_size()
            + self.version.output_size()
            + self.summary.output_size()
            + self.reads.output_size()
            + self.config_schema.output_size()
    }
}

impl OutputSize for FilterResult {
    fn output_size(&self) -> u64 {
        self.reasons.output_size() + 8 + 4 * self.verdicts.len() as u64 + self.requeue_after_ms.output_size()
    }
}

impl FilterResult {
    /// Whether the filter keeps cluster `i` (of the batch it was given).
    pub fn keeps(&self, i: usize) -> bool {
        self.verdicts.get(i) == Some(&0)
    }

    /// Why the filter removed cluster `i`, when it did.
    pub fn reason(&self, i: usize) -> Option<&str> {
        let v = *self.verdicts.get(i)?;
        if v == 0 { None } else { self.reasons.get(v as usize - 1).map(String::as_str) }
    }
}

impl OutputSize for ScoreResult {
    fn output_size(&self) -> u64 {
        self.scores.output_size() + self.requeue_after_ms.output_size()
    }
}

impl OutputSize for ObjectRef {
    fn output_size(&self) -> u64 {
        self.kind.output_size() + self.namespace.output_size() + self.name.output_size()
    }
}

impl OutputSize for Violation {
    fn output_size(&self) -> u64 {
        self.object.output_size() + self.message.output_size() + self.remediation.output_size()
    }
}

impl OutputSize for CheckResult {
    fn output_size(&self) -> u64 {
        1 + self.message.output_size() + self.violations.output_size()
    }
}

impl OutputSize for RolloutDecision {
    fn output_size(&self) -> u64 {
        self.proceed.output_size()
            + self.timed_out.output_size()
            + self.failed.output_size()
            + 1
            + self.recheck_after_ms.output_size()
            + self.message.output_size()
    }
}

/// The output limit check, before any validation: a huge result is refused whatever it
/// holds.
pub(crate) fn check_size<T: OutputSize>(value: &T, limit: u64) -> Result<(), PluginError> {
    let size = value.output_size();
    if size > limit { Err(PluginError::OutputTooLarge { size, limit }) } else { Ok(()) }
}

/// The longest message from a plugin kept in an error (it ends up in an object's status).
pub(crate) const MAX_MESSAGE: usize = 4096;

pub(crate) fn message(s: String) -> String {
    if s.len() <= MAX_MESSAGE { s } else { format!("{}…", crate::state::truncate(&s, MAX_MESSAGE)) }
}

pub(crate) fn check_description(d: &Description) -> Result<(), PluginError> {
    if d.name.trim().is_empty() {
        return Err(PluginError::InvalidOutput("describe() returned an empty name".into()));
    }
    if d.version.trim().is_empty() {
        return Err(PluginError::InvalidOutput("describe() returned an empty version".into()));
    }
    if let Some(schema) = &d.config_schema
        && let Err(e) = serde_json::from_str::<Value>(schema)
    {
        return Err(PluginError::InvalidOutput(format!("describe() returned a config-schema that is not JSON: {e}")));
    }
    Ok(())
}

pub(crate) fn check_filter(r: &FilterResult, inputs: usize) -> Result<(), PluginError> {
    if r.verdicts.len() != inputs {
        return Err(PluginError::InvalidOutput(format!(
            "filter returned {} verdicts for {inputs} clusters",
            r.verdicts.len()
        )));
    }
    if let Some((i, v)) = r.verdicts.iter().enumerate().find(|(_, v)| **v as usize > r.reasons.len()) {
        return Err(PluginError::InvalidOutput(format!(
            "the verdict of cluster {i} names reason {v}, but there are {} reasons",
            r.reasons.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_scores(r: &ScoreResult, inputs: usize) -> Result<(), PluginError> {
    if r.scores.len() != inputs {
        return Err(PluginError::InvalidOutput(format!(
            "score returned {} scores for {inputs} clusters",
            r.scores.len()
        )));
    }
    if let Some((i, s)) = r.scores.iter().enumerate().find(|(_, s)| !(-100..=100).contains(*s)) {
        return Err(PluginError::InvalidOutput(format!("score {s} of cluster {i} is outside [-100, 100]")));
    }
    Ok(())
}

pub(crate) fn check_policy(r: &CheckResult) -> Result<(), PluginError> {
    for v in &r.violations {
        if let Some(patch) = &v.remediation {
            if v.object.is_none() {
                return Err(PluginError::InvalidOutput("a violation has a remediation but no object".into()));
            }
            if !matches!(serde_json::from_str::<Value>(patch), Ok(Value::Object(_))) {
                return Err(PluginError::InvalidOutput(format!(
                    "the remediation of {:?} is not a JSON object (a merge patch)",
                    v.message
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn check_rollout(r: &RolloutDecision, inputs: &[RolloutCluster]) -> Result<(), PluginError> {
    let names: HashSet<&str> = inputs.iter().map(|c| c.cluster.name.as_str()).collect();
    for (list, what) in [(&r.proceed, "proceed"), (&r.timed_out, "timed-out"), (&r.failed, "failed")] {
        if let Some(unknown) = list.iter().find(|n| !names.contains(n.as_str())) {
            return Err(PluginError::InvalidOutput(format!(
                "{what} names cluster {unknown:?}, which is not in the rollout"
            )));
        }
    }
    Ok(())
}

/// Per cluster, the transformed manifests parsed, or the plugin's reason for that cluster.
pub type TransformOutput = Vec<Result<Vec<Value>, String>>;

pub(crate) fn check_transform(
    r: Vec<Result<Vec<String>, String>>,
    inputs: usize,
) -> Result<TransformOutput, PluginError> {
    if r.len() != inputs {
        return Err(PluginError::InvalidOutput(format!(
            "transform returned {} entries for {inputs} clusters",
            r.len()
        )));
    }
    r.into_iter()
        .enumerate()
        .map(|(i, entry)| match entry {
            Err(reason) => Ok(Err(message(reason))),
            Ok(manifests) => manifests
                .iter()
                .enumerate()
                .map(|(j, m)| match serde_json::from_str::<Value>(m) {
                    Ok(v @ Value::Object(_)) => Ok(v),
                    Ok(_) => {
                        Err(PluginError::InvalidOutput(format!("manifest {j} of cluster {i} is not a JSON object")))
                    }
                    Err(e) => Err(PluginError::InvalidOutput(format!("manifest {j} of cluster {i} is not JSON: {e}"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Ok),
        })
        .collect()
}

/// The transform's raw result size, before parsing.
pub(crate) fn transform_size(r: &[Result<Vec<String>, String>]) -> u64 {
    8 + r.iter().map(|e| e.output_size()).sum::<u64>()
}
