//! Small builders for structural `openAPIV3Schema` JSON, so the built-in kinds read like
//! their Kubernetes types. Every node has a `type` (or is int-or-string), as structural
//! schemas require; objects declared only in part keep the rest with
//! `x-kubernetes-preserve-unknown-fields`.

use serde_json::{Map, Value, json};

/// A Kubernetes resource quantity (`cpu: 500m`, `memory: 1Gi`, `pods: 110`).
const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

pub fn string() -> Value {
    json!({"type": "string"})
}

pub fn string_enum(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

pub fn string_format(format: &str) -> Value {
    json!({"type": "string", "format": format})
}

/// A `metav1.Time` / `metav1.MicroTime`: RFC 3339 (MicroTime with microseconds).
/// Nullable, as Go clients send `null` for unset times.
pub fn date_time() -> Value {
    json!({"type": "string", "format": "date-time", "nullable": true})
}

pub fn int32() -> Value {
    json!({"type": "integer", "format": "int32"})
}

pub fn int64() -> Value {
    json!({"type": "integer", "format": "int64"})
}

pub fn int32_min(minimum: i64) -> Value {
    json!({"type": "integer", "format": "int32", "minimum": minimum})
}

pub fn boolean() -> Value {
    json!({"type": "boolean"})
}

/// An `IntOrString` (ports, maxSurge, maxUnavailable).
pub fn int_or_string() -> Value {
    json!({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]})
}

pub fn quantity() -> Value {
    json!({
        "x-kubernetes-int-or-string": true,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": QUANTITY_PATTERN,
    })
}

/// `map[string]string`, granular (labels, annotations, data).
pub fn string_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}

/// `map[string]string` replaced as a whole (selectors such as `nodeSelector`).
pub fn atomic_string_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}, "x-kubernetes-map-type": "atomic"})
}

/// `ResourceList`: resource name to quantity.
pub fn quantity_map() -> Value {
    json!({"type": "object", "additionalProperties": quantity()})
}

/// An object whose fields are kept as they are.
pub fn preserve() -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// An object with exactly these properties (unknown fields are pruned).
pub fn object(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

/// An object with these properties that also keeps undeclared fields.
pub fn open_object(properties: Value) -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": properties})
}

/// Adds `required` to an object schema.
pub fn with_required(mut schema: Value, required: &[&str]) -> Value {
    schema["required"] = json!(required);
    schema
}

/// Adds a `description` to any schema.
pub fn described(mut schema: Value, description: &str) -> Value {
    schema["description"] = json!(description);
    schema
}

/// A list replaced as a whole.
pub fn atomic_list(items: Value) -> Value {
    json!({"type": "array", "items": items, "x-kubernetes-list-type": "atomic"})
}

/// A list of strings replaced as a whole (`command`, `args`, `accessModes`).
pub fn atomic_strings() -> Value {
    atomic_list(string())
}

/// A list of unique scalars merged by value (`finalizers`).
pub fn set_of(items: Value) -> Value {
    json!({"type": "array", "items": items, "x-kubernetes-list-type": "set"})
}

/// A list of objects identified by `keys`; the first key is the strategic-merge
/// `patchMergeKey`. Each key must be required or defaulted in `items`.
pub fn map_list(items: Value, keys: &[&str]) -> Value {
    json!({
        "type": "array",
        "items": items,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": keys,
    })
}

/// `metav1.LabelSelector`.
pub fn label_selector() -> Value {
    let requirement = with_required(
        object(json!({
            "key": string(),
            "operator": string(),
            "values": atomic_strings(),
        })),
        &["key", "operator"],
    );
    let mut selector = object(json!({
        "matchLabels": string_map(),
        "matchExpressions": atomic_list(requirement),
    }));
    selector["x-kubernetes-map-type"] = json!("atomic");
    selector
}

/// Status conditions keyed by `type` (metav1.Condition and the older per-kind
/// condition types alike).
pub fn conditions() -> Value {
    map_list(
        with_required(
            object(json!({
                "type": string(),
                "status": string(),
                "reason": string(),
                "message": string(),
                "observedGeneration": int64(),
                "lastTransitionTime": date_time(),
                "lastUpdateTime": date_time(),
                "lastProbeTime": date_time(),
                "lastHeartbeatTime": date_time(),
            })),
            &["type", "status"],
        ),
        &["type"],
    )
}

/// `metadata` of a pod template (labels and annotations declared, the rest kept).
pub fn template_metadata() -> Value {
    open_object(json!({
        "name": string(),
        "namespace": string(),
        "labels": string_map(),
        "annotations": string_map(),
    }))
}

/// `corev1.ObjectReference`.
pub fn object_reference() -> Value {
    object(json!({
        "apiVersion": string(),
        "kind": string(),
        "namespace": string(),
        "name": string(),
        "uid": string(),
        "resourceVersion": string(),
        "fieldPath": string(),
    }))
}

/// The root schema of a kind: `apiVersion`, `kind`, `metadata` and the given
/// top-level fields.
pub fn root(fields: Value) -> Value {
    let mut properties = Map::new();
    properties.insert("apiVersion".into(), string());
    properties.insert("kind".into(), string());
    properties.insert("metadata".into(), json!({"type": "object"}));
    if let Value::Object(fields) = fields {
        properties.extend(fields);
    }
    json!({"type": "object", "properties": properties})
}

/// The root schema of a kind with `spec` and `status`.
pub fn spec_status(spec: Value, status: Value) -> Value {
    root(json!({"spec": spec, "status": status}))
}
