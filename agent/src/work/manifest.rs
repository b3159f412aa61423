//! The parts of a ManifestWork spec the agent acts on, read leniently (a field of the wrong
//! shape is treated as absent, since the hub validates against the CRD and one odd field
//! must not stop a whole work), and the pure helpers around manifests: identity, OCM's
//! apply order, the object hash, the "is the live object already as required" comparison,
//! and `ignoreFields` path removal.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ManifestError;
use crate::quantity::Quantity;

pub const UPDATE: &str = "Update";
pub const CREATE_ONLY: &str = "CreateOnly";
pub const SERVER_SIDE_APPLY: &str = "ServerSideApply";
pub const READ_ONLY: &str = "ReadOnly";

/// The other condition, `OnSpokePresent`, is the default: any condition but this one.
pub const ON_SPOKE_CHANGE: &str = "OnSpokeChange";

pub const ORPHAN: &str = "Orphan";
pub const SELECTIVELY_ORPHAN: &str = "SelectivelyOrphan";

/// `spec` of a ManifestWork.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkSpec {
    #[serde(default)]
    pub workload: Workload,
    #[serde(default)]
    pub delete_option: Option<DeleteOption>,
    #[serde(default)]
    pub manifest_configs: Vec<ManifestConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Workload {
    #[serde(default)]
    pub manifests: Vec<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOption {
    #[serde(default)]
    pub propagation_policy: String,
    #[serde(default)]
    pub selectively_orphans: Option<SelectivelyOrphans>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectivelyOrphans {
    #[serde(default)]
    pub orphaning_rules: Vec<ResourceIdentifier>,
}

/// `{group, resource, name, namespace}`: how manifestConfigs and orphaning rules name an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub struct ResourceIdentifier {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestConfig {
    #[serde(default)]
    pub resource_identifier: ResourceIdentifier,
    /// Kept raw: the feedback module reads it.
    #[serde(default)]
    pub feedback_rules: Option<Value>,
    /// Kept raw: the rules module compiles it.
    #[serde(default)]
    pub condition_rules: Option<Value>,
    #[serde(default)]
    pub update_strategy: Option<UpdateStrategy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStrategy {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub server_side_apply: Option<ServerSideApplyConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSideApplyConfig {
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub field_manager: String,
    #[serde(default)]
    pub ignore_fields: Vec<IgnoreField>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreField {
    #[serde(default)]
    pub condition: String,
    #[serde(default)]
    pub json_paths: Vec<String>,
}

impl WorkSpec {
    /// The spec of a ManifestWork object; `Err` only when `spec` is not an object at all.
    pub fn of(work: &Value) -> Result<WorkSpec, String> {
        match work.get("spec") {
            None | Some(Value::Null) => Ok(WorkSpec::default()),
            Some(spec) => WorkSpec::deserialize(spec).map_err(|e| format!("cannot read spec: {e}")),
        }
    }

    /// The manifestConfigs entry for an object, matched on all four identifier fields.
    pub fn config_for(&self, id: &ResourceIdentifier) -> Option<&ManifestConfig> {
        self.manifest_configs.iter().find(|c| c.resource_identifier == *id)
    }

    /// Whether the work owns the object (OCM `OwnedByTheWork`): everything under the default
    /// Foreground policy, nothing under Orphan, all but the orphaning rules' objects under
    /// SelectivelyOrphan. An owned object carries an ownerReference to the
    /// AppliedManifestWork and is deleted with the work; the others lose it.
    pub fn owns(&self, id: &ResourceIdentifier) -> bool {
        let Some(option) = &self.delete_option else { return true };
        match option.propagation_policy.as_str() {
            ORPHAN => false,
            SELECTIVELY_ORPHAN => {
                option.selectively_orphans.as_ref().is_none_or(|s| !s.orphaning_rules.iter().any(|rule| rule == id))
            }
            _ => true,
        }
    }
}

/// What a manifest names, before discovery says which resource and scope that is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRef {
    pub ordinal: usize,
    pub api_version: String,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

/// Reads apiVersion, kind, name and namespace of the `ordinal`-th manifest.
pub fn parse_manifest(ordinal: usize, manifest: &Value) -> Result<ManifestRef, ManifestError> {
    let text = |pointer: &str| manifest.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_string();
    if !manifest.is_object() {
        return Err(ManifestError::Invalid("a manifest must be an object".to_string()));
    }
    let api_version = text("/apiVersion");
    let kind = text("/kind");
    let name = text("/metadata/name");
    let missing = [("apiVersion", &api_version), ("kind", &kind), ("metadata.name", &name)]
        .iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| *k)
        .collect::<Vec<_>>();
    if !missing.is_empty() {
        return Err(ManifestError::Invalid(format!("missing {}", missing.join(", "))));
    }
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) if !g.is_empty() && !v.is_empty() && !v.contains('/') => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
        _ => return Err(ManifestError::Invalid(format!("malformed apiVersion {api_version:?}"))),
    };
    Ok(ManifestRef { ordinal, api_version, group, version, kind, name, namespace: text("/metadata/namespace") })
}

/// OCM's apply order (v1.3, `manifestwork_reconciler.go`): what others depend on first.
pub fn kind_rank(kind: &str) -> u32 {
    match kind {
        "Namespace" | "CustomResourceDefinition" | "PriorityClass" | "StorageClass" | "PersistentVolume" => 0,
        "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding" => 1,
        "NetworkPolicy" | "ResourceQuota" | "LimitRange" | "PodDisruptionBudget" | "ServiceAccount" => 2,
        "Secret" | "ConfigMap" | "PersistentVolumeClaim" => 3,
        "Service" => 4,
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job"
        | "CronJob"
        | "Pod" => 5,
        _ => 1000,
    }
}

/// Manifest indices in apply order: a stable sort by [`kind_rank`], so manifests of one rank
/// keep the order the work gives them. Unparseable manifests keep their place at the end.
pub fn apply_order(manifests: &[Value]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..manifests.len()).collect();
    order.sort_by_key(|i| manifests[*i].get("kind").and_then(Value::as_str).map_or(u32::MAX, kind_rank));
    order
}

/// The manifest as it is sent to the spoke: fields that belong to a particular stored
/// object (uid, resourceVersion, managedFields...) would make writes fail or lie, so they go
/// (OCM drops the uid for the same reason). A cluster-scoped object has no namespace.
pub fn required_object(manifest: &Value, namespaced: bool) -> Value {
    let mut required = manifest.clone();
    normalize_secret(&mut required);
    if let Some(meta) = required.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "managedFields",
            "creationTimestamp",
            "generation",
            "selfLink",
            "deletionTimestamp",
        ] {
            meta.remove(field);
        }
        if !namespaced {
            meta.remove("namespace");
        }
    }
    required
}

/// A Secret's `stringData` written into `data`, as the API server does on every write: the
/// stored object never has `stringData`, so comparing against it would see drift forever.
fn normalize_secret(object: &mut Value) {
    let is_secret = object.get("kind").and_then(Value::as_str) == Some("Secret")
        && object.get("apiVersion").and_then(Value::as_str) == Some("v1");
    if !is_secret {
        return;
    }
    let Some(map) = object.as_object_mut() else { return };
    let Some(Value::Object(strings)) = map.remove("stringData") else { return };
    let data = map.entry("data").or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Some(data) = data.as_object_mut() {
        for (key, value) in strings {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            data.insert(key, Value::String(base64::engine::general_purpose::STANDARD.encode(text)));
        }
    }
}

/// A stable hash of a JSON value (sha256 of its canonical, key-sorted form), for the
/// `object-hash` and `config-spec-hash` annotations: equal content, equal hash, whatever the
/// key order the hub stored.
pub fn hash_of(value: &Value) -> String {
    let text = flotilla_apimachinery::apply::canonical_json(value);
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Whether every field `required` sets holds the same value in `live`. Fields only `live`
/// has (defaults the server filled in, status, fields other managers own) do not count, so
/// an unchanged object compares equal and is not written again, while a field changed or
/// removed on the spoke compares different and is put back. Lists must have the same
/// length and match item by item; numbers compare by value, and resource quantities under
/// `limits`, `requests`, `hard` and the like by amount (the server may respell them).
pub fn is_subset(required: &Value, live: &Value) -> bool {
    subset(required, live, false)
}

fn subset(required: &Value, live: &Value, quantities: bool) -> bool {
    match (required, live) {
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(key, value)| {
            let quantities =
                quantities || matches!(key.as_str(), "limits" | "requests" | "hard" | "capacity" | "overhead");
            match have.get(key) {
                Some(found) => subset(value, found, quantities),
                // A null or empty field is the same as an absent one once stored.
                None => is_empty(value),
            }
        }),
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| subset(w, h, quantities))
        }
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64().zip(b.as_f64()).is_some_and(|(a, b)| a == b),
        (Value::String(a), Value::String(b)) if quantities && a != b => {
            matches!((Quantity::parse(a), Quantity::parse(b)), (Ok(a), Ok(b)) if a.nanos() == b.nanos())
        }
        (Value::Null, other) => is_empty(other),
        (want, have) => want == have,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Removes what a JSONPath selects from `object` (OCM's `removeFieldByJSONPath`): the path
/// up to its last key selects maps, and that key is deleted from each. A path that
/// selects nothing changes nothing; a path that does not parse is an error.
pub fn remove_json_path(object: &mut Value, path: &str) -> Result<(), ManifestError> {
    let trimmed = path.trim();
    let inner = trimmed.strip_prefix('{').and_then(|p| p.strip_suffix('}')).unwrap_or(trimmed).trim();
    let Some((parent, last)) = inner.rsplit_once('.') else {
        return Err(ManifestError::IgnoreField(format!("ignoreFields path {path:?} names no field")));
    };
    if last.is_empty() || last.contains(['[', ']']) {
        return Err(ManifestError::IgnoreField(format!("ignoreFields path {path:?} must end with a field name")));
    }
    let parents: Vec<String> = if parent.is_empty() || parent == "$" {
        vec![String::new()]
    } else {
        let parsed = flotilla_apimachinery::JsonPath::parse(parent)
            .map_err(|e| ManifestError::IgnoreField(format!("ignoreFields path {path:?}: {e}")))?;
        let targets = parsed.eval(object);
        let mut pointers = Vec::new();
        pointers_of(object, &mut String::new(), &targets, &mut pointers);
        pointers
    };
    for pointer in parents {
        if let Some(map) = object.pointer_mut(&pointer).and_then(Value::as_object_mut) {
            map.remove(last);
        }
    }
    Ok(())
}

/// The JSON pointers of `targets` (references into `value`), found by identity, so that
/// any JSONPath the parser knows can drive a mutation.
fn pointers_of(value: &Value, at: &mut String, targets: &[&Value], out: &mut Vec<String>) {
    if targets.iter().any(|t| std::ptr::eq(*t, value)) {
        out.push(at.clone());
    }
    let len = at.len();
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                at.push('/');
                at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                pointers_of(child, at, targets, out);
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push('/');
                at.push_str(&i.to_string());
                pointers_of(child, at, targets, out);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// The string map at `metadata.<field>` (labels, annotations).
pub fn string_map(object: &Value, field: &str) -> Map<String, Value> {
    object.pointer(&format!("/metadata/{field}")).and_then(Value::as_object).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn apply_order_is_a_stable_sort_by_kind_rank() {
        let manifests: Vec<Value> = ["Deployment", "ConfigMap", "Widget", "Namespace", "Service", "Secret", "Role"]
            .iter()
            .map(|k| json!({"kind": k}))
            .collect();
        let kinds: Vec<&str> =
            apply_order(&manifests).iter().map(|i| manifests[*i]["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Namespace", "Role", "ConfigMap", "Secret", "Service", "Deployment", "Widget"]);
    }

    #[test]
    fn parses_manifest_identity() {
        let m = parse_manifest(
            3,
            &json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns"}}),
        )
        .unwrap();
        assert_eq!((m.group.as_str(), m.version.as_str(), m.ordinal), ("apps", "v1", 3));
        let core =
            parse_manifest(0, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
        assert_eq!((core.group.as_str(), core.version.as_str(), core.namespace.as_str()), ("", "v1", ""));
        let err = parse_manifest(0, &json!({"kind": "ConfigMap"})).unwrap_err();
        assert_eq!(err.to_string(), "invalid manifest: missing apiVersion, metadata.name");
        assert!(parse_manifest(0, &json!({"apiVersion": "a/b/c", "kind": "K", "metadata": {"name": "n"}})).is_err());
    }

    #[test]
    fn ownership_follows_the_delete_option() {
        let id = |name: &str| ResourceIdentifier {
            group: "".into(),
            resource: "configmaps".into(),
            name: name.into(),
            namespace: "ns".into(),
        };
        let spec = |option: Value| WorkSpec::of(&json!({"spec": {"deleteOption": option}})).unwrap();
        assert!(WorkSpec::default().owns(&id("a")));
        assert!(spec(json!({"propagationPolicy": "Foreground"})).owns(&id("a")));
        assert!(!spec(json!({"propagationPolicy": "Orphan"})).owns(&id("a")));
        let selective =
            spec(json!({"propagationPolicy": "SelectivelyOrphan", "selectivelyOrphans": {"orphaningRules": [
            {"group": "", "resource": "configmaps", "namespace": "ns", "name": "keep"}]}}));
        assert!(!selective.owns(&id("keep")));
        assert!(selective.owns(&id("a")));
        assert!(spec(json!({"propagationPolicy": "SelectivelyOrphan"})).owns(&id("keep")));
    }

    #[test]
    fn secrets_compare_by_their_stored_form() {
        let manifest = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "uid": "x"},
            "data": {"a": "YQ=="}, "stringData": {"b": "b", "a": "override"}});
        let required = required_object(&manifest, true);
        assert_eq!(required["data"], json!({"a": "b3ZlcnJpZGU=", "b": "Yg=="}));
        assert!(required.get("stringData").is_none());
        assert!(required["metadata"].get("uid").is_none());
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "stringData": {}});
        assert_eq!(
            required_object(&cm, false),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "stringData": {}})
        );
    }

    #[test]
    fn hashes_ignore_key_order() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b = json!({"a": {"x": "s", "y": [1, 2]}, "b": 1});
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_ne!(hash_of(&a), hash_of(&json!({"b": 2, "a": {"y": [1, 2], "x": "s"}})));
        assert_eq!(hash_of(&a).len(), 64);
    }

    #[test]
    fn subset_ignores_defaults_but_sees_drift() {
        let required = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx", "resources": {"limits": {"cpu": "1000m"}}}]}}}});
        let live = json!({"spec": {"replicas": 2, "revisionHistoryLimit": 10, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx", "imagePullPolicy": "Always", "resources": {"limits": {"cpu": "1"}}}],
            "restartPolicy": "Always"}}}, "status": {"replicas": 2}});
        assert!(is_subset(&required, &live));
        let mut drifted = live.clone();
        drifted["spec"]["replicas"] = json!(5);
        assert!(!is_subset(&required, &drifted));
        let mut extra = live.clone();
        extra["spec"]["template"]["spec"]["containers"].as_array_mut().unwrap().push(json!({"name": "sidecar"}));
        assert!(!is_subset(&required, &extra));
        assert!(is_subset(&json!({"data": {}, "x": null}), &json!({"kind": "ConfigMap"})));
        assert!(is_subset(&json!({"n": 1}), &json!({"n": 1.0})));
        assert!(!is_subset(&json!({"label": "1000m"}), &json!({"label": "1"})), "quantities only where they belong");
    }

    #[test]
    fn removes_fields_by_json_path() {
        let mut object = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        remove_json_path(&mut object, ".spec.replicas").unwrap();
        assert!(object["spec"].get("replicas").is_none());
        remove_json_path(&mut object, "{.spec.template.spec.containers[*].image}").unwrap();
        assert_eq!(object["spec"]["template"]["spec"]["containers"], json!([{"name": "a"}, {"name": "b"}]));
        remove_json_path(&mut object, ".spec.missing.field").unwrap();
        remove_json_path(&mut object, r#".spec.template.spec.containers[?(@.name=="a")].name"#).unwrap();
        assert_eq!(object["spec"]["template"]["spec"]["containers"][0], json!({}));
        assert!(remove_json_path(&mut object, "replicas").is_err());
        assert!(remove_json_path(&mut object, ".spec[").is_err());
    }
}
