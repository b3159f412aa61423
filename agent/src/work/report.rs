//! The ManifestWork status the agent reports (OCM's manifestwork and available-status
//! controllers in one pass): per manifest `resourceMeta`, the `Applied` and `Available`
//! conditions, `StatusFeedbackSynced` and the feedback values ([`super::feedback`]), the
//! condition-rule conditions ([`super::rules`]); per work `Applied`, `Available` and the
//! rule conditions aggregated with reason `ConditionRulesAggregated`.
//!
//! The status is rebuilt from what the hub holds: conditions other writers set are kept, a
//! transition time moves only when its condition's status does, every condition carries the
//! work's generation, and rule conditions of an older generation are pruned (a removed rule
//! always bumps the generation). [`build`] is pure; the caller writes only when the result
//! differs from the hub's copy.

use serde_json::{Map, Value, json};

use super::condition::{Condition, ConditionStatus};
use super::feedback::{self, FeedbackLimits};
use super::rules::{self, CompiledRules};
use crate::error::ManifestError;

pub const CONDITION_APPLIED: &str = "Applied";
pub const CONDITION_AVAILABLE: &str = "Available";

/// How applying a manifest went this time.
#[derive(Debug, Clone)]
pub enum AppliedState {
    Applied,
    Failed(ManifestError),
    /// Not applied because it is Complete: its Applied condition stays as it was.
    Skipped,
}

/// What the spoke holds for a manifest.
#[derive(Debug, Clone)]
pub enum LiveState {
    Found(Value),
    Missing,
    /// The object could not be read.
    Failed(String),
    /// The manifest's resource is not known (invalid manifest, unknown kind).
    Unresolved,
}

/// One manifest's outcome, in the order of `spec.workload.manifests`.
#[derive(Debug, Clone)]
pub struct ManifestResult {
    /// `{ordinal, group, version, kind, resource, name, namespace}`.
    pub meta: Value,
    pub applied: AppliedState,
    pub live: LiveState,
    pub feedback_rules: Option<Value>,
    pub condition_rules: Option<Value>,
}

pub fn resource_meta(
    ordinal: usize,
    group: &str,
    version: &str,
    kind: &str,
    resource: &str,
    name: &str,
    namespace: &str,
) -> Value {
    json!({
        "ordinal": ordinal,
        "group": group,
        "version": version,
        "kind": kind,
        "resource": resource,
        "name": name,
        "namespace": namespace,
    })
}

fn applied_condition(state: &AppliedState) -> Option<Condition> {
    Some(match state {
        AppliedState::Applied => Condition::new(
            CONDITION_APPLIED,
            ConditionStatus::True,
            "AppliedManifestComplete",
            "Apply manifest complete",
        ),
        AppliedState::Failed(error) => {
            let reason = match error {
                ManifestError::ApplyConflict(_) => "ApplyConflict",
                ManifestError::IgnoreField(_) => "AppliedManifestSSAIgnoreFieldError",
                _ => "AppliedManifestFailed",
            };
            Condition::new(
                CONDITION_APPLIED,
                ConditionStatus::False,
                reason,
                format!("Failed to apply manifest: {error}"),
            )
        }
        AppliedState::Skipped => return None,
    })
}

fn available_condition(live: &LiveState) -> Condition {
    let (status, reason, message) = match live {
        LiveState::Found(_) => (ConditionStatus::True, "ResourceAvailable", "Resource is available".to_string()),
        LiveState::Missing => (ConditionStatus::False, "ResourceNotAvailable", "Resource is not available".to_string()),
        LiveState::Failed(e) => {
            (ConditionStatus::Unknown, "FetchingResourceFailed", format!("Failed to fetch resource: {e}"))
        }
        LiveState::Unresolved => {
            (ConditionStatus::Unknown, "IncompletedResourceMeta", "Resource meta is incompleted".to_string())
        }
    };
    Condition::new(CONDITION_AVAILABLE, status, reason, message)
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Sets `condition` in a list of conditions (JSON, so that other writers' fields survive):
/// the transition time is kept when the status is unchanged, as `meta.SetStatusCondition`.
pub fn set_condition(conditions: &mut Vec<Value>, condition: &Condition, generation: i64, now: &str) {
    let position = conditions.iter().position(|c| text(c, "type") == condition.type_);
    let transition = position
        .map(|i| &conditions[i])
        .filter(|old| text(old, "status") == condition.status.as_str())
        .and_then(|old| old.get("lastTransitionTime"))
        .filter(|t| t.as_str().is_some_and(|s| !s.is_empty()))
        .cloned()
        .unwrap_or_else(|| json!(now));
    let value = json!({
        "type": condition.type_,
        "status": condition.status.as_str(),
        "reason": condition.reason,
        "message": condition.message,
        "lastTransitionTime": transition,
        "observedGeneration": condition.observed_generation.unwrap_or(generation),
    });
    match position {
        Some(i) => conditions[i] = value,
        None => conditions.push(value),
    }
}

/// Drops rule conditions (reason `ConditionRule…`) of another generation.
fn prune_rule_conditions(conditions: &mut Vec<Value>, generation: i64) {
    conditions.retain(|c| {
        !(text(c, "reason").starts_with(rules::RULE_REASON_PREFIX)
            && c.get("observedGeneration").and_then(Value::as_i64) != Some(generation))
    });
}

fn parse_conditions(conditions: &[Value]) -> Vec<Condition> {
    conditions.iter().filter_map(|c| serde_json::from_value(c.clone()).ok()).collect()
}

/// The hub's entry for a manifest: same resourceMeta, else the same one but for the ordinal
/// when that is unambiguous (OCM's `MergeManifestConditions`).
fn find_existing<'a>(existing: &'a [Value], meta: &Value) -> Option<&'a Value> {
    if let Some(found) = existing.iter().find(|m| m.get("resourceMeta") == Some(meta)) {
        return Some(found);
    }
    let without_ordinal = |m: &Value| {
        let mut m = m.clone();
        if let Some(map) = m.as_object_mut() {
            map.remove("ordinal");
        }
        m
    };
    let wanted = without_ordinal(meta);
    let mut candidates =
        existing.iter().filter(|m| m.get("resourceMeta").map(&without_ordinal).as_ref() == Some(&wanted));
    match (candidates.next(), candidates.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// The conditions a manifest carries on the hub now.
pub fn existing_conditions(work: &Value, meta: &Value) -> Vec<Condition> {
    let existing =
        work.pointer("/status/resourceStatus/manifests").and_then(Value::as_array).cloned().unwrap_or_default();
    find_existing(&existing, meta)
        .and_then(|m| m.get("conditions"))
        .and_then(Value::as_array)
        .map(|c| parse_conditions(c))
        .unwrap_or_default()
}

/// The status `work` should have given `results`. `now` is RFC 3339.
pub fn build(work: &Value, results: &[ManifestResult], limits: &FeedbackLimits, now: &str) -> Value {
    let generation = work.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    let existing =
        work.pointer("/status/resourceStatus/manifests").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut manifests = Vec::with_capacity(results.len());
    let mut per_manifest: Vec<Vec<Condition>> = Vec::with_capacity(results.len());
    for result in results {
        let old = find_existing(&existing, &result.meta);
        let mut conditions: Vec<Value> =
            old.and_then(|m| m.get("conditions")).and_then(Value::as_array).cloned().unwrap_or_default();
        let mut feedback = old.and_then(|m| m.get("statusFeedback")).cloned();
        // What this pass says, later entries of a type replacing earlier ones (a rule
        // named `Available` overrides the built-in one, as in OCM), then laid over the
        // hub's list in one go so that transition times compare against the hub's copy.
        let mut desired: Vec<Condition> = Vec::new();
        match applied_condition(&result.applied) {
            Some(applied) => desired.push(applied),
            None if !conditions.iter().any(|c| text(c, "type") == CONDITION_APPLIED) => {
                desired.extend(applied_condition(&AppliedState::Applied));
            }
            None => {}
        }
        desired.push(available_condition(&result.live));
        if let LiveState::Found(live) = &result.live {
            let group = text(&result.meta, "group");
            let kind = text(&result.meta, "kind");
            let evaluated = feedback::evaluate(group, kind, live, result.feedback_rules.as_ref(), limits);
            desired.push(evaluated.synced);
            feedback = Some(json!({"values": evaluated.values}));
            let compiled = CompiledRules::compile(group, kind, result.condition_rules.as_ref());
            for problem in compiled.problems() {
                tracing::warn!(manifest = %result.meta, error = %problem, "a condition rule cannot be used");
            }
            desired.extend(compiled.evaluate(live));
        }
        for condition in dedup_by_type(desired) {
            set_condition(&mut conditions, &condition, generation, now);
        }
        prune_rule_conditions(&mut conditions, generation);
        per_manifest.push(parse_conditions(&conditions));
        let mut entry = Map::new();
        entry.insert("resourceMeta".into(), result.meta.clone());
        entry.insert("conditions".into(), Value::Array(conditions));
        if let Some(feedback) = feedback {
            entry.insert("statusFeedback".into(), feedback);
        }
        manifests.push(Value::Object(entry));
    }

    let mut conditions: Vec<Value> =
        work.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut desired: Vec<Condition> = Vec::new();
    if let Some(applied) = work_applied(&per_manifest) {
        desired.push(applied);
        desired.push(work_available(&per_manifest));
    }
    let slices: Vec<&[Condition]> = per_manifest.iter().map(Vec::as_slice).collect();
    desired.extend(rules::aggregate(&slices));
    for condition in dedup_by_type(desired) {
        set_condition(&mut conditions, &condition, generation, now);
    }
    prune_rule_conditions(&mut conditions, generation);

    let mut status = work.get("status").and_then(Value::as_object).cloned().unwrap_or_default();
    status.insert("conditions".into(), Value::Array(conditions));
    let mut resource_status = status.get("resourceStatus").and_then(Value::as_object).cloned().unwrap_or_default();
    resource_status.insert("manifests".into(), Value::Array(manifests));
    status.insert("resourceStatus".into(), Value::Object(resource_status));
    Value::Object(status)
}

/// One condition per type, the last one given winning, in first-seen order.
fn dedup_by_type(conditions: Vec<Condition>) -> Vec<Condition> {
    let mut out: Vec<Condition> = Vec::with_capacity(conditions.len());
    for condition in conditions {
        match out.iter_mut().find(|c| c.type_ == condition.type_) {
            Some(slot) => *slot = condition,
            None => out.push(condition),
        }
    }
    out
}

fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Work `Applied`: True when every manifest is applied; none without manifests (OCM).
fn work_applied(per_manifest: &[Vec<Condition>]) -> Option<Condition> {
    let applied: Vec<&Condition> = per_manifest.iter().filter_map(|c| find(c, CONDITION_APPLIED)).collect();
    if applied.is_empty() {
        return None;
    }
    Some(if applied.iter().all(|c| c.status != ConditionStatus::False) {
        Condition::new(
            CONDITION_APPLIED,
            ConditionStatus::True,
            "AppliedManifestWorkComplete",
            "Apply manifest work complete",
        )
    } else {
        Condition::new(
            CONDITION_APPLIED,
            ConditionStatus::False,
            "AppliedManifestWorkFailed",
            "Failed to apply manifest work",
        )
    })
}

/// Work `Available` from the manifests' (OCM's `aggregateManifestConditions`).
fn work_available(per_manifest: &[Vec<Condition>]) -> Condition {
    let total = per_manifest.len();
    let (mut available, mut unavailable, mut unknown) = (0, 0, 0);
    for condition in per_manifest.iter().filter_map(|c| find(c, CONDITION_AVAILABLE)) {
        match condition.status {
            ConditionStatus::True => available += 1,
            ConditionStatus::False => unavailable += 1,
            ConditionStatus::Unknown => unknown += 1,
        }
    }
    let (status, reason, message) = if unavailable > 0 {
        (
            ConditionStatus::False,
            "ResourcesNotAvailable",
            format!("{unavailable} of {total} resources are not available"),
        )
    } else if unknown > 0 {
        (
            ConditionStatus::Unknown,
            "ResourcesStatusUnknown",
            format!("{unknown} of {total} resources have unknown status"),
        )
    } else if available == 0 {
        (ConditionStatus::Unknown, "ResourcesStatusUnknown", "cannot get any available resource".to_string())
    } else {
        (ConditionStatus::True, "ResourcesAvailable", "All resources are available".to_string())
    };
    Condition::new(CONDITION_AVAILABLE, status, reason, message)
}

/// Whether a condition list (a work's or a manifest's, as JSON) has `type_` True.
pub fn is_true(conditions: Option<&Value>, type_: &str) -> bool {
    conditions
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|c| text(c, "type") == type_ && text(c, "status") == "True"))
}

/// Whether the status the hub holds already is `status` (conditions and resourceStatus).
pub fn unchanged(work: &Value, status: &Value) -> bool {
    ["conditions", "resourceStatus"].iter().all(|k| work.pointer(&format!("/status/{k}")) == status.get(*k))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const T1: &str = "2030-01-01T00:00:00Z";
    const T2: &str = "2030-01-02T00:00:00Z";

    fn deployment_meta() -> Value {
        resource_meta(0, "apps", "v1", "Deployment", "deployments", "web", "ns")
    }

    fn live(ready: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ns"},
            "status": {"replicas": 2, "readyReplicas": ready, "availableReplicas": ready}})
    }

    fn result(live: LiveState) -> ManifestResult {
        ManifestResult {
            meta: deployment_meta(),
            applied: AppliedState::Applied,
            live,
            feedback_rules: Some(json!([{"type": "WellKnownStatus"}])),
            condition_rules: Some(json!([{"condition": "Available", "type": "CEL",
                "celExpressions": ["object.status.readyReplicas == object.status.replicas"]}])),
        }
    }

    fn condition<'a>(list: &'a Value, type_: &str) -> &'a Value {
        list.as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap()
    }

    #[test]
    fn builds_manifest_and_work_conditions_with_feedback_and_rules() {
        let mut work = json!({"metadata": {"generation": 3}});
        let status = build(&work, &[result(LiveState::Found(live(1)))], &FeedbackLimits::default(), T1);
        let manifest = &status["resourceStatus"]["manifests"][0];
        assert_eq!(manifest["resourceMeta"], deployment_meta());
        assert_eq!(condition(&manifest["conditions"], "Applied")["reason"], "AppliedManifestComplete");
        assert_eq!(condition(&manifest["conditions"], "Applied")["observedGeneration"], 3);
        assert_eq!(condition(&manifest["conditions"], "StatusFeedbackSynced")["status"], "True");
        let values = manifest["statusFeedback"]["values"].as_array().unwrap();
        assert!(values.contains(&json!({"name": "ReadyReplicas", "fieldValue": {"type": "Integer", "integer": 1}})));
        // The rule says not yet available; it is aggregated to the work.
        let rule = condition(&manifest["conditions"], "Available");
        assert_eq!((rule["status"].as_str(), rule["reason"].as_str()), (Some("False"), Some("ConditionRuleEvaluated")));
        assert_eq!(condition(&status["conditions"], "Applied")["reason"], "AppliedManifestWorkComplete");
        let available = condition(&status["conditions"], "Available");
        assert_eq!(available["reason"], "ConditionRulesAggregated");
        assert_eq!(available["status"], "False");

        // Same inputs later: nothing changes, times included.
        work["status"] = status.clone();
        let again = build(&work, &[result(LiveState::Found(live(1)))], &FeedbackLimits::default(), T2);
        assert_eq!(again, status);
        assert!(unchanged(&work, &again));

        // Ready: the status flips and only the flipped conditions get the new time.
        let ready = build(&work, &[result(LiveState::Found(live(2)))], &FeedbackLimits::default(), T2);
        let manifest = &ready["resourceStatus"]["manifests"][0];
        assert_eq!(condition(&manifest["conditions"], "Available")["lastTransitionTime"], T2);
        assert_eq!(condition(&manifest["conditions"], "Applied")["lastTransitionTime"], T1);
        assert_eq!(condition(&ready["conditions"], "Available")["status"], "True");
    }

    #[test]
    fn failures_and_missing_objects() {
        let work = json!({"metadata": {"generation": 1}, "status": {"conditions": [
            {"type": "Foreign", "status": "True", "reason": "X", "message": "", "lastTransitionTime": T1}]}});
        let failed = ManifestResult {
            meta: resource_meta(1, "example.com", "v1", "Widget", "", "w", "ns"),
            applied: AppliedState::Failed(ManifestError::UnknownKind {
                api_version: "example.com/v1".into(),
                kind: "Widget".into(),
            }),
            live: LiveState::Unresolved,
            feedback_rules: None,
            condition_rules: None,
        };
        let conflict = ManifestResult {
            applied: AppliedState::Failed(ManifestError::ApplyConflict("conflict with \"other\": .data.x".into())),
            live: LiveState::Missing,
            ..result(LiveState::Missing)
        };
        let status = build(&work, &[conflict, failed], &FeedbackLimits::default(), T1);
        let manifests = status["resourceStatus"]["manifests"].as_array().unwrap();
        let applied = condition(&manifests[0]["conditions"], "Applied");
        assert_eq!((applied["status"].as_str(), applied["reason"].as_str()), (Some("False"), Some("ApplyConflict")));
        assert!(applied["message"].as_str().unwrap().contains("\"other\""));
        assert_eq!(condition(&manifests[0]["conditions"], "Available")["reason"], "ResourceNotAvailable");
        assert_eq!(condition(&manifests[1]["conditions"], "Applied")["reason"], "AppliedManifestFailed");
        assert_eq!(condition(&manifests[1]["conditions"], "Available")["reason"], "IncompletedResourceMeta");
        assert_eq!(condition(&status["conditions"], "Applied")["reason"], "AppliedManifestWorkFailed");
        assert_eq!(condition(&status["conditions"], "Available")["reason"], "ResourcesNotAvailable");
        assert_eq!(condition(&status["conditions"], "Available")["message"], "1 of 2 resources are not available");
        assert_eq!(condition(&status["conditions"], "Foreign")["reason"], "X", "others' conditions stay");
    }

    #[test]
    fn stale_rule_conditions_are_pruned() {
        let mut work = json!({"metadata": {"generation": 1}});
        work["status"] = build(&work, &[result(LiveState::Found(live(2)))], &FeedbackLimits::default(), T1);
        // Generation 2 drops the rule.
        work["metadata"]["generation"] = json!(2);
        let mut without_rules = result(LiveState::Found(live(2)));
        without_rules.condition_rules = None;
        let status = build(&work, &[without_rules], &FeedbackLimits::default(), T2);
        let manifest = &status["resourceStatus"]["manifests"][0]["conditions"];
        assert_eq!(condition(manifest, "Available")["reason"], "ResourceAvailable");
        assert_eq!(condition(&status["conditions"], "Available")["reason"], "ResourcesAvailable");
        assert_eq!(condition(&status["conditions"], "Available")["observedGeneration"], 2);
    }
}
