//! `WasmPolicy` (`flotilla.dev/v1alpha1`): a policy-check plugin run on the agent, with its
//! configuration and the kinds it may read, and the agent's [`SpokeReader`] over the spoke
//! API.
//!
//! ```yaml
//! apiVersion: flotilla.dev/v1alpha1
//! kind: WasmPolicy
//! metadata: {name: labels-present}
//! spec:
//!   remediationAction: inform            # or enforce
//!   severity: medium
//!   evaluationInterval: {compliant: 10m, noncompliant: 30s}
//!   plugin: {name: required-labels, digest: "sha256:…", configuration: {…}}
//!   kinds: [{apiVersion: v1, kind: ConfigMap}]
//! ```
//!
//! The hub fills in `plugin.digest` from the named WasmPlugin when it replicates the Policy.

use std::sync::Arc;
use std::time::Duration;

use flotilla_plugin_host::{KindRef, SpokeReader};
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::{Map, Value};

use super::config::{Remediation, template_head};
use crate::error::api_message;
use crate::work::discovery::{DiscoveryCache, Resolved};

/// A WasmPolicy's spec.
#[derive(Debug, Clone, PartialEq)]
pub struct WasmPolicy {
    pub name: String,
    pub remediation: Remediation,
    pub severity: Option<String>,
    pub plugin: String,
    /// `sha256:…`, written by the hub; `None` when the hub has no such plugin.
    pub digest: Option<String>,
    /// The configuration as the plugin receives it (a JSON document).
    pub configuration: String,
    /// What the plugin may read (intersected with what it declares).
    pub kinds: Vec<KindRef>,
}

impl WasmPolicy {
    /// Reads a WasmPolicy object; errors name the field at fault under `at`.
    pub fn parse(object: &Value, at: &str) -> Result<WasmPolicy, String> {
        let (name, spec, remediation) = template_head(object, at)?;
        let plugin_spec =
            spec.get("plugin").filter(|p| p.is_object()).ok_or_else(|| format!("{at}.spec.plugin: required"))?;
        let plugin = plugin_spec
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{at}.spec.plugin.name: required"))?
            .to_string();
        let digest = plugin_spec.get("digest").and_then(Value::as_str).filter(|d| !d.is_empty()).map(str::to_string);
        let configuration = match plugin_spec.get("configuration") {
            None | Some(Value::Null) => "{}".to_string(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        let kinds = match spec.get("kinds") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let field = |key: &str| {
                        k.get(key)
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .ok_or_else(|| format!("{at}.spec.kinds[{i}].{key}: required"))
                    };
                    Ok(KindRef { api_version: field("apiVersion")?, kind: field("kind")? })
                })
                .collect::<Result<Vec<_>, String>>()?,
            Some(_) => return Err(format!("{at}.spec.kinds: must be a list of {{apiVersion, kind}}")),
        };
        Ok(WasmPolicy {
            name,
            remediation,
            severity: spec.get("severity").and_then(Value::as_str).map(str::to_string),
            plugin,
            digest,
            configuration,
            kinds,
        })
    }
}

/// `apiVersion` and `kind` for people: `v1 ConfigMap`.
pub fn describe_kind(kind: &KindRef) -> String {
    format!("{} {}", kind.api_version, kind.kind)
}

/// Splits an apiVersion into group and version.
pub fn group_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// RFC 7386 JSON merge patch: `patch` applied to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The agent's [`SpokeReader`]: the spoke API through discovery, called on the plugin's
/// invocation thread (a blocking-pool thread), each request bounded by `timeout`.
pub struct KubeSpokeReader {
    pub client: kube::Client,
    pub discovery: Arc<DiscoveryCache>,
    pub runtime: tokio::runtime::Handle,
    pub timeout: Duration,
}

impl KubeSpokeReader {
    async fn api(&self, kind: &KindRef, namespace: Option<&str>) -> Result<(Api<DynamicObject>, Resolved), String> {
        let (group, version) = group_version(&kind.api_version);
        let resolved = self.discovery.resolve(group, version, &kind.kind).await.map_err(|e| e.to_string())?;
        let api = match (resolved.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &resolved.resource),
            _ => Api::all_with(self.client.clone(), &resolved.resource),
        };
        Ok((api, resolved))
    }

    fn bounded<T>(&self, what: String, work: impl Future<Output = Result<T, String>>) -> Result<T, String> {
        self.runtime
            .block_on(tokio::time::timeout(self.timeout, work))
            .unwrap_or_else(|_| Err(format!("{what}: no answer from the spoke within {:?}", self.timeout)))
    }
}

/// An object as the plugin sees it: with its `apiVersion` and `kind` (list items may lack them).
fn with_kind(object: &DynamicObject, kind: &KindRef) -> Result<String, String> {
    let mut value = serde_json::to_value(object).map_err(|e| format!("cannot encode an object: {e}"))?;
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(kind.api_version.clone()));
        map.insert("kind".into(), Value::String(kind.kind.clone()));
    }
    Ok(value.to_string())
}

impl SpokeReader for KubeSpokeReader {
    fn list(
        &self,
        kind: &KindRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<String>, String> {
        let what = format!("listing {}", describe_kind(kind));
        self.bounded(what.clone(), async {
            let (api, _) = self.api(kind, namespace).await?;
            let mut params = ListParams::default();
            if let Some(selector) = label_selector.filter(|s| !s.is_empty()) {
                params = params.labels(selector);
            }
            let list = api.list(&params).await.map_err(|e| format!("{what}: {}", api_message(&e)))?;
            list.items.iter().map(|o| with_kind(o, kind)).collect()
        })
    }

    fn get(&self, kind: &KindRef, namespace: Option<&str>, name: &str) -> Result<Option<String>, String> {
        let what = format!("reading {} {name}", describe_kind(kind));
        self.bounded(what.clone(), async {
            let (api, _) = self.api(kind, namespace).await?;
            let found = api.get_opt(name).await.map_err(|e| format!("{what}: {}", api_message(&e)))?;
            found.map(|o| with_kind(&o, kind)).transpose()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
        let mut missing = Value::Null;
        merge_patch(&mut missing, &json!({"metadata": {"labels": {"team": "x"}}}));
        assert_eq!(missing, json!({"metadata": {"labels": {"team": "x"}}}));
    }

    #[test]
    fn specs_parse_and_name_bad_fields() {
        let ok = WasmPolicy::parse(
            &json!({"metadata": {"name": "w"}, "spec": {"remediationAction": "enforce",
                "plugin": {"name": "required-labels", "digest": "sha256:00", "configuration": {"labels": {"team": "x"}}},
                "kinds": [{"apiVersion": "v1", "kind": "ConfigMap"}]}}),
            "t",
        )
        .unwrap();
        assert_eq!(ok.remediation, Remediation::Enforce);
        assert_eq!(ok.configuration, r#"{"labels":{"team":"x"}}"#);
        assert_eq!(ok.kinds, vec![KindRef { api_version: "v1".into(), kind: "ConfigMap".into() }]);
        let err = WasmPolicy::parse(
            &json!({"metadata": {"name": "w"}, "spec": {"plugin": {"name": "p"}, "kinds": [{"kind": "Pod"}]}}),
            "t",
        )
        .unwrap_err();
        assert_eq!(err, "t.spec.kinds[0].apiVersion: required");
    }
}
