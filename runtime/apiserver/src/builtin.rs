//! Admission every Kubernetes-style server needs: Namespace defaults and Secret `type`
//! and `stringData` defaulting.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flotilla_apimachinery::ApiError;
use serde_json::{Value, json};

use crate::admission::{Admission, Operation};
use crate::registry::Resource;

/// New Namespaces carry the `kubernetes` finalizer and phase Active, as in Kubernetes.
pub struct NamespaceDefaults;

impl Admission for NamespaceDefaults {
    fn admit(&self, res: &Resource, op: Operation, obj: &mut Value, _old: Option<&Value>) -> Result<(), ApiError> {
        if !(res.def.group.is_empty() && res.def.kind == "Namespace") || op != Operation::Create {
            return Ok(());
        }
        let Some(map) = obj.as_object_mut() else { return Ok(()) };
        let spec = map.entry("spec").or_insert_with(|| json!({}));
        if spec.get("finalizers").is_none() && spec.is_object() {
            spec["finalizers"] = json!(["kubernetes"]);
        }
        map.insert("status".into(), json!({"phase": "Active"}));
        Ok(())
    }
}

/// Secret defaults: `type` is `Opaque` when unset, and the write-only `stringData` is folded
/// into base64 `data`.
pub struct SecretDefaults;

impl Admission for SecretDefaults {
    fn admit(&self, res: &Resource, op: Operation, obj: &mut Value, _old: Option<&Value>) -> Result<(), ApiError> {
        if !(res.def.group.is_empty() && res.def.kind == "Secret") || op == Operation::Delete {
            return Ok(());
        }
        let Some(map) = obj.as_object_mut() else { return Ok(()) };
        if map.get("type").is_none_or(|t| t.is_null() || t == "") {
            map.insert("type".into(), json!("Opaque"));
        }
        let Some(string_data) = map.remove("stringData") else { return Ok(()) };
        let Some(entries) = string_data.as_object() else {
            return Err(ApiError::bad_request("stringData must be a map of strings"));
        };
        let data = map.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (key, value) in entries {
            let Some(text) = value.as_str() else {
                return Err(ApiError::bad_request(format!("stringData[{key}] must be a string")));
            };
            data[key] = json!(STANDARD.encode(text.as_bytes()));
        }
        Ok(())
    }
}

pub fn builtin_admission() -> Vec<std::sync::Arc<dyn Admission>> {
    vec![std::sync::Arc::new(NamespaceDefaults), std::sync::Arc::new(SecretDefaults)]
}
