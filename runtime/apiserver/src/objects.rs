//! Objects in the store: the key scheme, and turning stored bytes into API objects
//! (resourceVersion comes from the store revision, never from the stored bytes).

use bytes::Bytes;
use flotilla_apimachinery::ApiError;
use flotilla_store::{KeyValue, StoreError};
use serde_json::{Map, Value};

use crate::registry::Resource;

/// Every object key starts with this, so one watch sees the whole API.
pub const REGISTRY_PREFIX: &str = "/registry/";

fn group_segment(group: &str) -> &str {
    if group.is_empty() { "core" } else { group }
}

/// `/registry/GROUP/PLURAL/` — all objects of a kind, every namespace.
pub fn kind_prefix(resource: &Resource) -> String {
    format!("{REGISTRY_PREFIX}{}/{}/", group_segment(&resource.def.group), resource.def.plural)
}

/// Prefix for a list: one namespace of a namespaced kind, or the whole kind.
pub fn list_prefix(resource: &Resource, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if resource.def.namespaced => format!("{}{ns}/", kind_prefix(resource)),
        _ => kind_prefix(resource),
    }
}

pub fn object_key(resource: &Resource, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if resource.def.namespaced => format!("{}{ns}/{name}", kind_prefix(resource)),
        _ => format!("{}{name}", kind_prefix(resource)),
    }
}

/// The key of a Namespace object (namespaced creates compare on its existence).
pub fn namespace_key(namespace: &str) -> String {
    format!("{REGISTRY_PREFIX}core/namespaces/{namespace}")
}

/// Decodes a stored object and stamps `resourceVersion` and the served apiVersion.
pub fn decode(resource: &Resource, kv: &KeyValue) -> Result<Value, ApiError> {
    decode_at(resource, &kv.key, &kv.value, kv.mod_revision)
}

pub fn decode_at(resource: &Resource, key: &str, value: &[u8], revision: i64) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(value)
        .map_err(|e| ApiError::internal(format!("stored object {key} is not valid JSON: {e}")))?;
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::internal(format!("stored object {key} is not a JSON object")));
    };
    map.insert("apiVersion".into(), Value::String(resource.api_version()));
    map.insert("kind".into(), Value::String(resource.def.kind.clone()));
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
    }
    Ok(obj)
}

/// Serializes an object for storage, without its resourceVersion.
pub fn encode(obj: &Value) -> Result<Bytes, ApiError> {
    let mut copy = obj.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("selfLink");
    }
    serde_json::to_vec(&copy).map(Bytes::from).map_err(|e| ApiError::internal(format!("cannot serialize object: {e}")))
}

pub fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Compacted { requested, compacted } => {
            ApiError::gone(format!("too old resource version: {requested} ({compacted})"))
        }
        StoreError::FutureRevision { requested, current } => {
            let mut e =
                ApiError::new(504, "Timeout", format!("Too large resource version: {requested}, current: {current}"));
            e.retry_after_seconds = Some(1);
            e
        }
        other => ApiError::internal(other.to_string()),
    }
}

/// Accessors for the metadata fields the server manages.
pub mod meta {
    use serde_json::Value;

    pub fn get<'a>(obj: &'a Value, field: &str) -> Option<&'a Value> {
        obj.get("metadata").and_then(|m| m.get(field))
    }
    pub fn str_field<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
        get(obj, field).and_then(Value::as_str)
    }
    pub fn name(obj: &Value) -> &str {
        str_field(obj, "name").unwrap_or("")
    }
    pub fn namespace(obj: &Value) -> Option<&str> {
        str_field(obj, "namespace").filter(|s| !s.is_empty())
    }
    pub fn uid(obj: &Value) -> &str {
        str_field(obj, "uid").unwrap_or("")
    }
    pub fn resource_version(obj: &Value) -> &str {
        str_field(obj, "resourceVersion").unwrap_or("")
    }
    pub fn generation(obj: &Value) -> i64 {
        get(obj, "generation").and_then(Value::as_i64).unwrap_or(0)
    }
    pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
        str_field(obj, "deletionTimestamp")
    }
    pub fn finalizers(obj: &Value) -> Vec<String> {
        get(obj, "finalizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    }
    pub fn labels(obj: &Value) -> serde_json::Map<String, Value> {
        get(obj, "labels").and_then(Value::as_object).cloned().unwrap_or_default()
    }
    pub fn owner_uids(obj: &Value) -> Vec<String> {
        get(obj, "ownerReferences")
            .and_then(Value::as_array)
            .map(|refs| refs.iter().filter_map(|r| r.get("uid")?.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }
    /// Mutable access to `metadata`, creating it if absent; None if `obj` is not an object.
    pub fn map_mut(obj: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
        let meta = obj.as_object_mut()?.entry("metadata").or_insert_with(|| Value::Object(Default::default()));
        if !meta.is_object() {
            *meta = Value::Object(Default::default());
        }
        meta.as_object_mut()
    }
    pub fn set(obj: &mut Value, field: &str, value: Value) {
        if let Some(m) = map_mut(obj) {
            m.insert(field.to_string(), value);
        }
    }
    pub fn remove(obj: &mut Value, field: &str) {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove(field);
        }
    }
}

/// RFC 3339 UTC timestamp with second precision, as Kubernetes writes `metav1.Time`.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
