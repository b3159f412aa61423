//! The `scale` subresource: an `autoscaling/v1` Scale view of an object's replicas,
//! readable and writable (what `kubectl scale` and autoscalers use).

use flotilla_apimachinery::patch::{json_merge_patch, json_patch, strategic_merge_patch};
use flotilla_apimachinery::selector::LabelSelector;
use flotilla_apimachinery::{ApiError, AtomicLists, ScaleSubresource};
use serde_json::{Value, json};

use crate::objects::meta;
use crate::registry::Resource;
use crate::storage::{PatchType, Storage, WriteOptions, Written};

/// `.spec.replicas` -> `/spec/replicas`.
fn pointer(path: &str) -> String {
    path.split('.').filter(|p| !p.is_empty()).fold(String::new(), |acc, p| format!("{acc}/{p}"))
}

fn scale_of(res: &Resource) -> Result<&ScaleSubresource, ApiError> {
    res.def.scale.as_ref().ok_or_else(|| ApiError::path_not_found(&format!("{}/scale", res.group_resource())))
}

/// The Scale view of `obj`.
fn view(scale: &ScaleSubresource, obj: &Value) -> Value {
    let spec = obj.pointer(&pointer(&scale.spec_replicas_path)).and_then(Value::as_i64).unwrap_or(0);
    let status = obj.pointer(&pointer(&scale.status_replicas_path)).and_then(Value::as_i64).unwrap_or(0);
    let selector = match &scale.label_selector_path {
        Some(path) => obj.pointer(&pointer(path)).and_then(Value::as_str).map(str::to_string),
        None => obj.pointer("/spec/selector").and_then(|s| LabelSelector::from_object(s).ok()).map(|s| s.to_string()),
    };
    let mut metadata = json!({
        "name": meta::name(obj),
        "uid": meta::uid(obj),
        "resourceVersion": meta::resource_version(obj),
    });
    if let Some(ns) = meta::namespace(obj) {
        metadata["namespace"] = json!(ns);
    }
    if let Some(created) = meta::str_field(obj, "creationTimestamp") {
        metadata["creationTimestamp"] = json!(created);
    }
    let mut status_doc = json!({"replicas": status});
    if let Some(selector) = selector.filter(|s| !s.is_empty()) {
        status_doc["selector"] = json!(selector);
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": metadata, "spec": {"replicas": spec}, "status": status_doc})
}

/// How a write to `/scale` arrives.
pub enum ScaleWrite<'a> {
    Replace(&'a Value),
    Patch(PatchType, &'a Value),
}

impl Storage {
    pub async fn get_scale(&self, res: &Resource, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let scale = scale_of(res)?;
        Ok(view(scale, &self.get(res, ns, name).await?))
    }

    /// Applies a Scale write to the object's replicas; the Scale's resourceVersion, when
    /// given, is a precondition on the object.
    pub async fn write_scale(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        write: ScaleWrite<'_>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let scale = scale_of(res)?;
        let obj = self.get(res, ns, name).await?;
        let mut desired = view(scale, &obj);
        match write {
            ScaleWrite::Replace(body) => desired = body.clone(),
            ScaleWrite::Patch(PatchType::Merge, patch) => json_merge_patch(&mut desired, patch),
            ScaleWrite::Patch(PatchType::Strategic, patch) => strategic_merge_patch(&mut desired, patch, &AtomicLists)
                .map_err(|e| ApiError::new(422, "Invalid", format!("the patch could not be applied: {e}")))?,
            ScaleWrite::Patch(PatchType::Json, patch) => json_patch(&mut desired, patch)
                .map_err(|e| ApiError::new(422, "Invalid", format!("the JSON patch could not be applied: {e}")))?,
            ScaleWrite::Patch(PatchType::Apply, _) => {
                return Err(ApiError::unsupported_media_type(
                    "apply patches are not supported on the scale subresource",
                ));
            }
        }
        let replicas = match desired.pointer("/spec/replicas") {
            Some(v) => v.as_i64().filter(|r| *r >= 0).ok_or_else(|| {
                ApiError::invalid(
                    "Scale",
                    "autoscaling",
                    name,
                    vec![flotilla_apimachinery::FieldError::invalid(
                        "spec.replicas",
                        v,
                        "must be greater than or equal to 0",
                    )],
                )
            })?,
            None => 0,
        };
        let mut updated = obj.clone();
        let rv = meta::resource_version(&desired);
        if !rv.is_empty() {
            meta::set(&mut updated, "resourceVersion", json!(rv));
        }
        set_pointer(&mut updated, &pointer(&scale.spec_replicas_path), json!(replicas));
        let written = self.update(res, ns, name, updated, None, opts).await?;
        Ok(Written { object: view(scale, &written.object), ..written })
    }
}

fn set_pointer(obj: &mut Value, pointer: &str, value: Value) {
    let mut current = obj;
    let parts: Vec<&str> = pointer.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        if !current.is_object() {
            *current = json!({});
        }
        let Some(map) = current.as_object_mut() else { return };
        if i + 1 == parts.len() {
            map.insert(part.to_string(), value);
            return;
        }
        current = map.entry(part.to_string()).or_insert_with(|| json!({}));
    }
}
