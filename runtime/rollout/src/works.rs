//! The ManifestWorks a ManifestWorkReplicaSet generates: their names, labels and annotations,
//! the health feedback the hub adds to them, and each cluster's rollout status read back
//! from the status the agent reports.
//!
//! OCM's rollout status table (`ocm:pkg/work/hub/controllers/manifestworkreplicasetcontroller`)
//! needs the user to write CEL `conditionRules` for `Progressing` and `Degraded`; without
//! them a progressive rollout never advances (OCM #1207). Flotilla keeps OCM's table when the
//! work carries those rule conditions, and otherwise judges health itself:
//!
//! - the hub adds a `JSONPaths` feedback rule to every workload manifest (Deployment,
//!   StatefulSet, DaemonSet, Job, Pod) whose `manifestConfigs` entry has no feedback rules
//!   ([`with_health_feedback`]): generation, observed generation, replica counts and the
//!   conditions that say "rolled out" or "failed", as `kubectl rollout status` reads them;
//! - the cluster's status is then derived from the manifests' `Available` conditions and
//!   those values ([`rollout_status`]).
//!
//! Two more differences from OCM: a work that holds the current revision but whose agent has
//! not reported on its generation yet is `Progressing` (so a progress deadline applies to a
//! cluster that never answers, instead of blocking the rollout forever as `ToApply`), and a
//! work whose `Applied` is False for its generation is `Failed`.

use serde_json::{Map, Value, json};

use crate::types::RolloutStatus;

/// The label OCM puts on every work of a ManifestWorkReplicaSet: `<namespace>.<name>`.
pub const REPLICA_SET_LABEL: &str = "work.open-cluster-management.io/manifestworkreplicaset";
/// The label naming the placement that chose the work's cluster.
pub const PLACEMENT_NAME_LABEL: &str = "work.open-cluster-management.io/placementname";
/// The revision number (of the ManifestWorkReplicaSet's template) a work holds.
pub const REVISION_ANNOTATION: &str = "rollout.flotilla.dev/revision";
/// The hash of the template the work holds; identifies the revision across renumbering.
pub const TEMPLATE_HASH_ANNOTATION: &str = "rollout.flotilla.dev/template-hash";
/// The finalizer OCM's controller puts on a ManifestWorkReplicaSet to delete its works first.
pub const CLEANUP_FINALIZER: &str = "cluster.open-cluster-management.io/manifest-work-cleanup";

pub const WORK_API_VERSION: &str = "work.open-cluster-management.io/v1";

/// The value of [`REPLICA_SET_LABEL`] for a ManifestWorkReplicaSet: `<namespace>.<name>`.
pub use flotilla_apimachinery::names::dotted_key as replica_set_key;
/// The namespace and name a [`REPLICA_SET_LABEL`] value names.
pub use flotilla_apimachinery::names::split_dotted_key as parse_replica_set_key;

/// What one cluster's work must hold.
#[derive(Debug, Clone)]
pub struct DesiredWork<'a> {
    pub replica_set_namespace: &'a str,
    pub replica_set_name: &'a str,
    pub cluster: &'a str,
    pub placement: &'a str,
    pub revision: i64,
    pub template_hash: &'a str,
}

/// The ManifestWork for one cluster: the template (with its manifests replaced when a
/// transform changed them, and health feedback added), OCM's labels, the revision annotations.
pub fn build_work(desired: &DesiredWork<'_>, template: &Value, manifests: Option<Vec<Value>>) -> Value {
    let mut spec = with_health_feedback(template);
    if let Some(manifests) = manifests
        && let Some(spec) = spec.as_object_mut()
    {
        let workload = spec.entry("workload").or_insert_with(|| json!({}));
        workload["manifests"] = Value::Array(manifests);
    }
    json!({
        "apiVersion": WORK_API_VERSION,
        "kind": "ManifestWork",
        "metadata": {
            "name": desired.replica_set_name,
            "namespace": desired.cluster,
            "labels": {
                REPLICA_SET_LABEL: replica_set_key(desired.replica_set_namespace, desired.replica_set_name),
                PLACEMENT_NAME_LABEL: desired.placement,
            },
            "annotations": {
                REVISION_ANNOTATION: desired.revision.to_string(),
                TEMPLATE_HASH_ANNOTATION: desired.template_hash,
            },
        },
        "spec": spec,
    })
}

/// Copies what the controller owns from `desired` onto the stored `current` work (labels and
/// annotations are merged, so those of other writers stay), for an update.
pub fn update_work(mut current: Value, desired: Value) -> Value {
    for field in ["labels", "annotations"] {
        let wanted = desired.pointer(&format!("/metadata/{field}")).and_then(Value::as_object).cloned();
        if let Some(meta) = current.get_mut("metadata").and_then(Value::as_object_mut) {
            let map = meta.entry(field).or_insert_with(|| json!({}));
            if !map.is_object() {
                *map = json!({});
            }
            if let (Some(map), Some(wanted)) = (map.as_object_mut(), wanted) {
                map.extend(wanted);
            }
        }
    }
    current["spec"] = desired.get("spec").cloned().unwrap_or_else(|| json!({}));
    current
}

fn annotation<'a>(work: &'a Value, key: &str) -> Option<&'a str> {
    work.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str)
}

/// The template hash a work holds ([`TEMPLATE_HASH_ANNOTATION`]).
pub fn template_hash_of(work: &Value) -> Option<&str> {
    annotation(work, TEMPLATE_HASH_ANNOTATION)
}

/// The revision number a work holds ([`REVISION_ANNOTATION`]).
pub fn revision_of(work: &Value) -> Option<i64> {
    annotation(work, REVISION_ANNOTATION).and_then(|r| r.parse().ok())
}

/// The paths read back from each workload kind, as `(feedback name, JSONPath)`.
fn health_paths(group: &str, kind: &str) -> Option<&'static [(&'static str, &'static str)]> {
    const DEPLOYMENT: &[(&str, &str)] = &[
        ("Generation", ".metadata.generation"),
        ("ObservedGeneration", ".status.observedGeneration"),
        ("DesiredReplicas", ".spec.replicas"),
        ("ReadyReplicas", ".status.readyReplicas"),
        ("AvailableReplicas", ".status.availableReplicas"),
        ("UpdatedReplicas", ".status.updatedReplicas"),
        ("ProgressingReason", r#".status.conditions[?(@.type=="Progressing")].reason"#),
    ];
    const STATEFULSET: &[(&str, &str)] = &[
        ("Generation", ".metadata.generation"),
        ("ObservedGeneration", ".status.observedGeneration"),
        ("DesiredReplicas", ".spec.replicas"),
        ("ReadyReplicas", ".status.readyReplicas"),
        ("AvailableReplicas", ".status.availableReplicas"),
        ("UpdatedReplicas", ".status.updatedReplicas"),
    ];
    const DAEMONSET: &[(&str, &str)] = &[
        ("Generation", ".metadata.generation"),
        ("ObservedGeneration", ".status.observedGeneration"),
        ("DesiredNumberScheduled", ".status.desiredNumberScheduled"),
        ("NumberReady", ".status.numberReady"),
        ("NumberAvailable", ".status.numberAvailable"),
        ("UpdatedNumberScheduled", ".status.updatedNumberScheduled"),
    ];
    const JOB: &[(&str, &str)] = &[
        ("JobComplete", r#".status.conditions[?(@.type=="Complete")].status"#),
        ("JobFailed", r#".status.conditions[?(@.type=="Failed")].status"#),
    ];
    const POD: &[(&str, &str)] =
        &[("PodReady", r#".status.conditions[?(@.type=="Ready")].status"#), ("PodPhase", ".status.phase")];
    match (group, kind) {
        ("apps", "Deployment") => Some(DEPLOYMENT),
        ("apps", "StatefulSet") => Some(STATEFULSET),
        ("apps", "DaemonSet") => Some(DAEMONSET),
        ("batch", "Job") => Some(JOB),
        ("", "Pod") => Some(POD),
        _ => None,
    }
}

/// The plural resource of a workload kind (the `resourceIdentifier` of `manifestConfigs`).
fn workload_resource(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Deployment" => "deployments",
        "StatefulSet" => "statefulsets",
        "DaemonSet" => "daemonsets",
        "Job" => "jobs",
        "Pod" => "pods",
        _ => return None,
    })
}

/// A manifest's API group (`""` for the core group).
fn group_of(manifest: &Value) -> &str {
    let api_version = manifest.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    api_version.split_once('/').map(|(group, _)| group).unwrap_or("")
}

/// The template with a `JSONPaths` health feedback rule for each workload manifest whose
/// `manifestConfigs` entry has no feedback rules (an entry is added where there is none).
/// Entries with the user's own feedback rules are left alone: their values are then what
/// health is judged from, with `Available` as the fallback.
pub fn with_health_feedback(template: &Value) -> Value {
    let mut spec = template.clone();
    let manifests: Vec<Value> =
        spec.pointer("/workload/manifests").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut configs: Vec<Value> = spec.get("manifestConfigs").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut changed = false;
    for manifest in &manifests {
        let kind = manifest.get("kind").and_then(Value::as_str).unwrap_or_default();
        let group = group_of(manifest);
        let (Some(paths), Some(resource)) = (health_paths(group, kind), workload_resource(kind)) else { continue };
        let name = manifest.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let namespace = manifest.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
        let identifier = json!({"group": group, "resource": resource, "namespace": namespace, "name": name});
        let rule = json!({"type": "JSONPaths", "jsonPaths": paths.iter()
            .map(|(name, path)| json!({"name": name, "path": path})).collect::<Vec<_>>()});
        let matching = configs.iter_mut().find(|c| {
            let id = c.get("resourceIdentifier").unwrap_or(&Value::Null);
            ["group", "resource", "namespace", "name"]
                .iter()
                .all(|f| id.get(f).and_then(Value::as_str).unwrap_or_default() == identifier[f].as_str().unwrap_or(""))
        });
        match matching {
            Some(entry) => {
                let has_rules = entry.get("feedbackRules").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
                if !has_rules && let Some(entry) = entry.as_object_mut() {
                    entry.insert("feedbackRules".into(), json!([rule]));
                    changed = true;
                }
            }
            None => {
                configs.push(json!({"resourceIdentifier": identifier, "feedbackRules": [rule]}));
                changed = true;
            }
        }
    }
    if changed && let Some(map) = spec.as_object_mut() {
        map.insert("manifestConfigs".into(), Value::Array(configs));
    }
    spec
}

/// A work-level or manifest-level condition's status, if it has one.
fn condition<'a>(conditions: Option<&'a Value>, type_: &str) -> Option<&'a Value> {
    conditions?.as_array()?.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn status_str(c: Option<&Value>) -> Option<&str> {
    c.and_then(|c| c.get("status")).and_then(Value::as_str)
}

/// The feedback values of one manifest status, by name.
fn feedback(manifest: &Value) -> Map<String, Value> {
    let values = manifest.pointer("/statusFeedback/values").and_then(Value::as_array);
    let mut out = Map::new();
    for v in values.into_iter().flatten() {
        let (Some(name), Some(field)) = (v.get("name").and_then(Value::as_str), v.get("fieldValue")) else { continue };
        let value = match field.get("type").and_then(Value::as_str) {
            Some("Integer") => field.get("integer").cloned(),
            Some("String") => field.get("string").cloned(),
            Some("Boolean") => field.get("boolean").cloned(),
            _ => None,
        };
        if let Some(value) = value {
            out.insert(name.to_string(), value);
        }
    }
    out
}

/// The health of one workload from its feedback values; `None` when the values say nothing
/// (no feedback of the names the hub asks for).
fn workload_health(kind: &str, values: &Map<String, Value>) -> Option<(RolloutStatus, String)> {
    let int = |k: &str| values.get(k).and_then(Value::as_i64);
    let text = |k: &str| values.get(k).and_then(Value::as_str);
    let progressing = |why: String| Some((RolloutStatus::Progressing, why));
    if let (Some(generation), Some(observed)) = (int("Generation"), int("ObservedGeneration"))
        && observed < generation
    {
        return progressing(format!("{kind} generation {generation} not observed yet"));
    }
    match kind {
        "Deployment" | "StatefulSet" => {
            if text("ProgressingReason") == Some("ProgressDeadlineExceeded") {
                return Some((RolloutStatus::Failed, format!("{kind} exceeded its progress deadline")));
            }
            let desired = int("DesiredReplicas")?;
            let ready = int("ReadyReplicas").unwrap_or(0);
            let available = int("AvailableReplicas").unwrap_or(0);
            let updated = int("UpdatedReplicas").unwrap_or(desired);
            if ready < desired || available < desired || updated < desired {
                return progressing(format!("{kind} {ready}/{desired} ready"));
            }
            if let Some(reason) = text("ProgressingReason")
                && reason != "NewReplicaSetAvailable"
            {
                return progressing(format!("{kind} progressing ({reason})"));
            }
            Some((RolloutStatus::Succeeded, format!("{kind} {ready}/{desired} ready")))
        }
        "DaemonSet" => {
            let desired = int("DesiredNumberScheduled")?;
            let ready = int("NumberReady").unwrap_or(0);
            let available = int("NumberAvailable").unwrap_or(0);
            let updated = int("UpdatedNumberScheduled").unwrap_or(desired);
            if ready < desired || available < desired || updated < desired {
                return progressing(format!("DaemonSet {ready}/{desired} ready"));
            }
            Some((RolloutStatus::Succeeded, format!("DaemonSet {ready}/{desired} ready")))
        }
        "Job" => {
            if text("JobFailed") == Some("True") {
                return Some((RolloutStatus::Failed, "Job failed".into()));
            }
            if text("JobComplete") == Some("True") {
                return Some((RolloutStatus::Succeeded, "Job complete".into()));
            }
            if values.is_empty() { None } else { progressing("Job running".into()) }
        }
        "Pod" => match text("PodPhase") {
            Some("Failed") => Some((RolloutStatus::Failed, "Pod failed".into())),
            Some("Succeeded") => Some((RolloutStatus::Succeeded, "Pod succeeded".into())),
            Some(_) if text("PodReady") == Some("True") => Some((RolloutStatus::Succeeded, "Pod ready".into())),
            Some(phase) => progressing(format!("Pod {phase}")),
            None => None,
        },
        _ => None,
    }
}

/// A cluster's rollout status from its work, with a one-line reason for people. The caller
/// has checked that the work holds the current revision (otherwise the cluster is ToApply).
pub fn rollout_status(work: &Value) -> (RolloutStatus, String) {
    let generation = work.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    let conditions = work.pointer("/status/conditions");
    // A condition counts only for the work's current generation.
    fn current(c: Option<&Value>, generation: i64) -> Option<&Value> {
        c.filter(|c| c.get("observedGeneration").and_then(Value::as_i64).is_none_or(|g| g == generation))
    }
    let applied = current(condition(conditions, "Applied"), generation);
    match status_str(applied) {
        Some("True") => {}
        Some("False") => {
            let message = applied.and_then(|c| c.get("message")).and_then(Value::as_str).unwrap_or_default();
            return (RolloutStatus::Failed, format!("not applied: {message}"));
        }
        _ => return (RolloutStatus::Progressing, format!("waiting for the agent to apply generation {generation}")),
    }
    // Conditions from the user's conditionRules: OCM's table.
    let degraded = status_str(current(condition(conditions, "Degraded"), generation));
    let progressing = status_str(current(condition(conditions, "Progressing"), generation));
    if degraded == Some("True") {
        return (RolloutStatus::Failed, "Degraded (condition rules)".into());
    }
    match progressing {
        Some("True") => return (RolloutStatus::Progressing, "Progressing (condition rules)".into()),
        Some("False") => return (RolloutStatus::Succeeded, "Progressing=False (condition rules)".into()),
        _ => {}
    }
    // No rule says: judge from the manifests.
    let manifests = work.pointer("/status/resourceStatus/manifests").and_then(Value::as_array);
    let Some(manifests) = manifests.filter(|m| !m.is_empty()) else {
        return (RolloutStatus::Progressing, "no manifest status reported yet".into());
    };
    let mut progress: Option<String> = None;
    let mut healthy: Vec<String> = Vec::new();
    for manifest in manifests {
        let kind = manifest.pointer("/resourceMeta/kind").and_then(Value::as_str).unwrap_or_default();
        let name = manifest.pointer("/resourceMeta/name").and_then(Value::as_str).unwrap_or_default();
        let mconds = manifest.get("conditions");
        if status_str(condition(mconds, "Applied")) == Some("False") {
            return (RolloutStatus::Failed, format!("{kind} {name} not applied"));
        }
        if status_str(condition(mconds, "Available")) != Some("True") {
            progress.get_or_insert_with(|| format!("{kind} {name} not available yet"));
            continue;
        }
        match workload_health(kind, &feedback(manifest)) {
            Some((RolloutStatus::Failed, why)) => return (RolloutStatus::Failed, format!("{name}: {why}")),
            Some((RolloutStatus::Progressing, why)) => {
                progress.get_or_insert_with(|| format!("{name}: {why}"));
            }
            Some((_, why)) => healthy.push(format!("{name}: {why}")),
            None => {}
        }
    }
    match progress {
        Some(why) => (RolloutStatus::Progressing, why),
        None if healthy.is_empty() => (RolloutStatus::Succeeded, "all manifests available".into()),
        None => (RolloutStatus::Succeeded, healthy.join(", ")),
    }
}

/// Whether the work's `Applied`, `Available`, `Progressing` or `Degraded` condition is True
/// (OCM's summary counts).
pub fn condition_true(work: &Value, type_: &str) -> bool {
    status_str(condition(work.pointer("/status/conditions"), type_)) == Some("True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Value {
        json!({"workload": {"manifests": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "web"},
             "spec": {"replicas": 2}},
        ]}})
    }

    #[test]
    fn workloads_get_health_feedback_unless_the_user_has_some() {
        let spec = with_health_feedback(&template());
        let configs = spec["manifestConfigs"].as_array().expect("configs");
        assert_eq!(configs.len(), 1, "only the Deployment: {spec}");
        assert_eq!(
            configs[0]["resourceIdentifier"],
            json!({"group": "apps", "resource": "deployments", "namespace": "web", "name": "web"})
        );
        assert_eq!(configs[0]["feedbackRules"][0]["type"], "JSONPaths");

        let mut own = template();
        own["manifestConfigs"] = json!([{"resourceIdentifier": {"group": "apps", "resource": "deployments",
            "namespace": "web", "name": "web"}, "feedbackRules": [{"type": "WellKnownStatus"}]}]);
        assert_eq!(with_health_feedback(&own), own, "the user's rules are kept as they are");
    }

    fn work(conditions: Value, manifests: Value) -> Value {
        json!({"metadata": {"generation": 3},
               "status": {"conditions": conditions, "resourceStatus": {"manifests": manifests}}})
    }

    fn cond(type_: &str, status: &str) -> Value {
        json!({"type": type_, "status": status, "observedGeneration": 3})
    }

    fn deployment(values: Value) -> Value {
        let values: Vec<Value> = values
            .as_object()
            .expect("values")
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => json!({"name": k, "fieldValue": {"type": "String", "string": s}}),
                other => json!({"name": k, "fieldValue": {"type": "Integer", "integer": other}}),
            })
            .collect();
        json!({"resourceMeta": {"kind": "Deployment", "name": "web"},
               "conditions": [cond("Applied", "True"), cond("Available", "True")],
               "statusFeedback": {"values": values}})
    }

    #[test]
    fn status_follows_the_table_of_the_rules_then_the_manifests() {
        let applied = [cond("Applied", "True"), cond("Available", "True")];
        let ready = deployment(json!({"Generation": 2, "ObservedGeneration": 2, "DesiredReplicas": 2,
            "ReadyReplicas": 2, "AvailableReplicas": 2, "UpdatedReplicas": 2, "ProgressingReason": "NewReplicaSetAvailable"}));
        assert_eq!(rollout_status(&work(json!(applied), json!([ready.clone()]))).0, RolloutStatus::Succeeded);

        let stale = deployment(json!({"Generation": 3, "ObservedGeneration": 2, "DesiredReplicas": 2,
            "ReadyReplicas": 2, "AvailableReplicas": 2}));
        assert_eq!(rollout_status(&work(json!(applied), json!([stale]))).0, RolloutStatus::Progressing);

        let never = deployment(json!({"Generation": 2, "ObservedGeneration": 2, "DesiredReplicas": 2,
            "ReadyReplicas": 0, "AvailableReplicas": 0, "ProgressingReason": "ReplicaSetUpdated"}));
        let (status, why) = rollout_status(&work(json!(applied), json!([never])));
        assert_eq!((status, why.as_str()), (RolloutStatus::Progressing, "web: Deployment 0/2 ready"));

        let failed = deployment(json!({"DesiredReplicas": 2, "ProgressingReason": "ProgressDeadlineExceeded"}));
        assert_eq!(rollout_status(&work(json!(applied), json!([failed]))).0, RolloutStatus::Failed);

        // Rule conditions win: OCM's table.
        let rules = [cond("Applied", "True"), cond("Progressing", "False"), cond("Degraded", "False")];
        assert_eq!(rollout_status(&work(json!(rules), json!([]))).0, RolloutStatus::Succeeded);
        let rules = [cond("Applied", "True"), cond("Progressing", "True"), cond("Degraded", "True")];
        assert_eq!(rollout_status(&work(json!(rules), json!([ready.clone()]))).0, RolloutStatus::Failed);

        // Not applied yet at this generation, or applied and failed.
        let old = [json!({"type": "Applied", "status": "True", "observedGeneration": 2})];
        assert_eq!(rollout_status(&work(json!(old), json!([ready.clone()]))).0, RolloutStatus::Progressing);
        assert_eq!(rollout_status(&work(json!([cond("Applied", "False")]), json!([]))).0, RolloutStatus::Failed);
    }

    #[test]
    fn works_carry_labels_annotations_and_transformed_manifests() {
        let desired = DesiredWork {
            replica_set_namespace: "apps",
            replica_set_name: "web",
            cluster: "edge1",
            placement: "all",
            revision: 4,
            template_hash: "abc",
        };
        let w = build_work(&desired, &template(), Some(vec![json!({"kind": "ConfigMap"})]));
        assert_eq!(w["metadata"]["namespace"], "edge1");
        assert_eq!(w["metadata"]["labels"][REPLICA_SET_LABEL], "apps.web");
        assert_eq!(w["metadata"]["labels"][PLACEMENT_NAME_LABEL], "all");
        assert_eq!(revision_of(&w), Some(4));
        assert_eq!(template_hash_of(&w), Some("abc"));
        assert_eq!(w["spec"]["workload"]["manifests"], json!([{"kind": "ConfigMap"}]));
        assert_eq!(parse_replica_set_key("apps.web.v2"), Some(("apps", "web.v2")));
        let current =
            json!({"metadata": {"name": "web", "labels": {"other": "x"}, "resourceVersion": "9"}, "spec": {}});
        let updated = update_work(current, w);
        assert_eq!(updated["metadata"]["labels"]["other"], "x");
        assert_eq!(updated["metadata"]["resourceVersion"], "9");
        assert_eq!(updated["metadata"]["annotations"][REVISION_ANNOTATION], "4");
    }
}
