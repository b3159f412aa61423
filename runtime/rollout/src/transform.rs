//! Per-cluster manifests: `spec.manifestTransform {name, configuration, failurePolicy}` names a
//! Wasm `manifest-transform` plugin that the hub calls once per rollout cycle with the
//! template's manifests and every cluster that gets a work in that cycle (its ManagedCluster
//! as the plugin declared it reads it). The answer has one entry per cluster: its manifests,
//! or why it cannot have the work (no work is created there, and its status says why).
//!
//! When the call as a whole fails (a trap, a timeout, an invalid answer, an error for every
//! cluster), `failurePolicy: Fail` (the default) creates no work for those clusters this cycle
//! and reports the plugin's reason; `Ignore` creates them with the template's manifests and
//! records the reason.

use std::sync::Arc;

use flotilla_plugin_host::{ClusterInfo, ClusterTable, Limits, OwnerRef, Plugin, PluginError, PluginHost, World};
use serde_json::Value;

use crate::engine::FailurePolicy;

/// A parsed `spec.manifestTransform`.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformRef {
    pub name: String,
    /// The configuration's JSON text (`{}` when absent).
    pub configuration: String,
    /// `None`: the WasmPlugin's.
    pub failure_policy: Option<FailurePolicy>,
}

/// Why a transform could not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TransformError {
    /// The reference is invalid; `field` is its path.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The plugin could not be resolved or failed.
    #[error("manifest transform plugin {plugin}: {message}")]
    Plugin { plugin: String, message: String },
}

/// A plugin the hub resolved by name, with the limits of its calls and its WasmPlugin's
/// failure policy.
pub struct ResolvedPlugin {
    pub plugin: Arc<Plugin>,
    pub limits: Limits,
    pub failure_policy: FailurePolicy,
}

/// How the controller reaches the hub's WasmPlugins (for transforms, and for the default
/// failure policy of strategy plugins). Calls are blocking: make them off the async threads.
pub trait NamedPlugins: Send + Sync {
    fn host(&self) -> Arc<PluginHost>;
    fn resolve_named(&self, name: &str) -> Result<ResolvedPlugin, String>;
}

const FIELD: &str = "spec.manifestTransform";

/// Parses `spec.manifestTransform`; `None` when absent.
pub fn parse_transform(value: Option<&Value>) -> Result<Option<TransformRef>, TransformError> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
    let invalid = |field: &str, message: String| TransformError::Invalid { field: format!("{FIELD}{field}"), message };
    let obj = value.as_object().ok_or_else(|| invalid("", format!("must be an object, not {value}")))?;
    if let Some(key) = obj.keys().find(|k| !["name", "configuration", "failurePolicy"].contains(&k.as_str())) {
        return Err(invalid(&format!(".{key}"), "unknown field (known: name, configuration, failurePolicy)".into()));
    }
    let name = match obj.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => return Err(invalid(".name", "is required: the name of a WasmPlugin of world manifest-transform".into())),
    };
    let configuration = match obj.get("configuration") {
        None | Some(Value::Null) => "{}".to_string(),
        Some(c @ Value::Object(_)) => c.to_string(),
        Some(other) => return Err(invalid(".configuration", format!("must be an object, not {other}"))),
    };
    let failure_policy = match obj.get("failurePolicy").and_then(Value::as_str) {
        None => None,
        Some("Fail") => Some(FailurePolicy::Fail),
        Some("Ignore") => Some(FailurePolicy::Ignore),
        Some(other) => return Err(invalid(".failurePolicy", format!("{other:?} is not Fail or Ignore"))),
    };
    Ok(Some(TransformRef { name, configuration, failure_policy }))
}

/// What the transform gave: per cluster (in input order) its manifests or the plugin's
/// refusal, and the failure policy that applies to a failure of the whole call.
pub type PerCluster = Vec<Result<Vec<Value>, String>>;

/// Runs the transform over `manifests` for `clusters`. Blocking.
pub fn run(
    plugins: &dyn NamedPlugins,
    reference: &TransformRef,
    owner: &OwnerRef,
    manifests: &[Value],
    clusters: Vec<ClusterInfo>,
) -> Result<PerCluster, (FailurePolicy, TransformError)> {
    let failed = |policy: FailurePolicy, message: String| {
        (policy, TransformError::Plugin { plugin: reference.name.clone(), message })
    };
    let fallback = reference.failure_policy.unwrap_or_default();
    let resolved = plugins.resolve_named(&reference.name).map_err(|m| failed(fallback, m))?;
    let policy = reference.failure_policy.unwrap_or(resolved.failure_policy);
    if resolved.plugin.world() != World::ManifestTransform {
        return Err((
            FailurePolicy::Fail,
            TransformError::Invalid {
                field: format!("{FIELD}.name"),
                message: format!(
                    "plugin {} implements {}, not {}",
                    reference.name,
                    resolved.plugin.world(),
                    World::ManifestTransform
                ),
            },
        ));
    }
    let host = plugins.host();
    let prepared =
        host.prepare_with(&resolved.plugin, &reference.configuration, &resolved.limits).map_err(|e| match e {
            PluginError::ConfigRejected(message) => {
                (FailurePolicy::Fail, TransformError::Invalid { field: format!("{FIELD}.configuration"), message })
            }
            e => failed(policy, e.to_string()),
        })?;
    let table: ClusterTable = clusters.into_iter().collect();
    let batch = prepared.batch_of(&table, None);
    let texts: Vec<String> = manifests.iter().map(Value::to_string).collect();
    host.manifest_transform(&prepared, owner, &texts, &batch, &resolved.limits)
        .map_err(|e| failed(policy, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_parse_with_errors_naming_the_field() {
        assert_eq!(parse_transform(None), Ok(None));
        let parsed =
            parse_transform(Some(&json!({"name": "img", "configuration": {"a": 1}, "failurePolicy": "Ignore"})));
        assert_eq!(
            parsed,
            Ok(Some(TransformRef {
                name: "img".into(),
                configuration: r#"{"a":1}"#.into(),
                failure_policy: Some(FailurePolicy::Ignore)
            }))
        );
        let err = |v: Value| parse_transform(Some(&v)).expect_err("invalid").to_string();
        assert_eq!(
            err(json!({})),
            "spec.manifestTransform.name: is required: the name of a WasmPlugin of world manifest-transform"
        );
        assert!(err(json!({"name": "x", "configuration": "y"})).starts_with("spec.manifestTransform.configuration:"));
        assert!(
            err(json!({"name": "x", "failurePolicy": "Maybe"})).starts_with("spec.manifestTransform.failurePolicy:")
        );
        assert!(err(json!({"name": "x", "nme": "y"})).starts_with("spec.manifestTransform.nme: unknown field"));
    }
}
