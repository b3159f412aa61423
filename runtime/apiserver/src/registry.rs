//! The set of served resources, with compiled schemas, and the discovery documents
//! derived from it. Resources can be added at run time (CRDs on the simulated spoke).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use flotilla_apimachinery::schema::Schema;
use flotilla_apimachinery::{AtomicLists, ListType, MergeStrategy, ResourceDef};
use serde_json::{Value, json};

/// A served resource: its definition and its compiled schema.
#[derive(Debug)]
pub struct Resource {
    pub def: ResourceDef,
    pub schema: Option<Schema>,
    /// `group/plural` of the storage location shared by all versions of the kind.
    pub storage_version: String,
}

impl Resource {
    pub fn merge_strategy(&self) -> &dyn MergeStrategy {
        match &self.schema {
            Some(schema) => schema,
            None => &AtomicLists,
        }
    }

    pub fn list_type(&self, path: &[&str]) -> ListType {
        self.merge_strategy().list_type(path)
    }

    /// The `group/plural` pair that names the resource in errors (`plural.group`).
    pub fn group_resource(&self) -> String {
        self.def.group_resource()
    }

    pub fn api_version(&self) -> String {
        self.def.api_version()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema of {kind} {api_version} is invalid: {detail}")]
    Schema { kind: String, api_version: String, detail: String },
    #[error("{0} is already served by another kind")]
    Duplicate(String),
}

#[derive(Default)]
struct Inner {
    /// (group, version, plural) -> resource
    by_path: BTreeMap<(String, String, String), Arc<Resource>>,
}

/// A kind that a controller needs and the hub does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the hub does not serve {api_version} {kind}")]
pub struct NotServed {
    pub api_version: String,
    pub kind: String,
}

/// Thread-safe registry of served resources.
#[derive(Default, Clone)]
pub struct Registry {
    inner: Arc<RwLock<Inner>>,
}

impl Registry {
    pub fn new(defs: Vec<ResourceDef>) -> Result<Registry, RegistryError> {
        let registry = Registry::default();
        for def in defs {
            registry.add(def)?;
        }
        Ok(registry)
    }

    /// Adds or replaces a served resource (replacement is how a changed CRD takes effect).
    pub fn add(&self, def: ResourceDef) -> Result<Arc<Resource>, RegistryError> {
        let schema = match &def.schema {
            Some(raw) => Some(Schema::compile(raw).map_err(|detail| RegistryError::Schema {
                kind: def.kind.clone(),
                api_version: def.api_version(),
                detail,
            })?),
            None => None,
        };
        let key = (def.group.clone(), def.version.clone(), def.plural.clone());
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = inner.by_path.get(&key)
            && existing.def.kind != def.kind
        {
            return Err(RegistryError::Duplicate(format!("{}/{}/{}", key.0, key.1, key.2)));
        }
        let storage_version = storage_version_of(&inner, &def);
        let resource = Arc::new(Resource { def, schema, storage_version });
        inner.by_path.insert(key, resource.clone());
        Ok(resource)
    }

    /// Stops serving every version of `group/plural` (a deleted CRD).
    pub fn remove(&self, group: &str, plural: &str) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.by_path.retain(|(g, _, p), _| !(g == group && p == plural));
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<Resource>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.by_path.get(&(group.to_string(), version.to_string(), plural.to_string())).cloned()
    }

    /// Finds a resource by apiVersion and kind (for ownerReferences and embedded objects).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<Resource>> {
        let (group, version) = split_api_version(api_version);
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.by_path.values().find(|r| r.def.group == group && r.def.version == version && r.def.kind == kind).cloned()
    }

    /// Like [`Registry::by_kind`], for a kind a controller cannot run without.
    pub fn served(&self, api_version: &str, kind: &str) -> Result<Arc<Resource>, NotServed> {
        self.by_kind(api_version, kind)
            .ok_or_else(|| NotServed { api_version: api_version.to_string(), kind: kind.to_string() })
    }

    /// The resource whose objects are stored under `group/plural` (its storage version).
    pub fn by_storage(&self, group: &str, plural: &str) -> Option<Arc<Resource>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut versions = inner.by_path.iter().filter(|((g, _, p), _)| g == group && p == plural).map(|(_, r)| r);
        let first = versions.next()?;
        Some(std::iter::once(first).chain(versions).find(|r| r.def.storage_version).unwrap_or(first).clone())
    }

    pub fn all(&self) -> Vec<Arc<Resource>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.by_path.values().cloned().collect()
    }

    /// One resource per storage location (all versions of a kind share one).
    pub fn storage_resources(&self) -> Vec<Arc<Resource>> {
        let mut seen = std::collections::BTreeSet::new();
        self.all().into_iter().filter(|r| seen.insert((r.def.group.clone(), r.def.plural.clone()))).collect()
    }

    pub fn group_versions(&self, group: &str) -> Vec<String> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut versions: Vec<String> =
            inner.by_path.keys().filter(|(g, _, _)| g == group).map(|(_, v, _)| v.clone()).collect();
        versions.dedup();
        sort_versions(&mut versions);
        versions
    }

    /// `/api`: the core group's versions.
    pub fn core_versions_doc(&self, server_address: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": self.group_versions(""),
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })
    }

    /// `/apis`: every named group with its versions, preferred first.
    pub fn group_list_doc(&self) -> Value {
        let groups: Vec<Value> = self.groups().iter().map(|g| self.group_doc(g)).collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/apis/GROUP`.
    pub fn group_doc(&self, group: &str) -> Value {
        let versions = self.group_versions(group);
        let entries: Vec<Value> =
            versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
        let preferred = entries.first().cloned().unwrap_or(Value::Null);
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries, "preferredVersion": preferred})
    }

    /// Named groups (the core group excluded), in a stable order.
    pub fn groups(&self) -> Vec<String> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut groups: Vec<String> =
            inner.by_path.keys().map(|(g, _, _)| g.clone()).filter(|g| !g.is_empty()).collect();
        groups.dedup();
        groups
    }

    /// `/api/v1` or `/apis/GROUP/VERSION`; None if the group/version is not served.
    pub fn resource_list_doc(&self, group: &str, version: &str) -> Option<Value> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let resources: Vec<&Arc<Resource>> =
            inner.by_path.iter().filter(|((g, v, _), _)| g == group && v == version).map(|(_, r)| r).collect();
        if resources.is_empty() {
            return None;
        }
        let mut entries = Vec::new();
        for resource in resources {
            let def = &resource.def;
            let mut entry = json!({
                "name": def.plural,
                "singularName": def.singular,
                "namespaced": def.namespaced,
                "kind": def.kind,
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            });
            if !def.short_names.is_empty() {
                entry["shortNames"] = json!(def.short_names);
            }
            if !def.categories.is_empty() {
                entry["categories"] = json!(def.categories);
            }
            entries.push(entry);
            if def.status_subresource {
                entries.push(json!({
                    "name": format!("{}/status", def.plural),
                    "singularName": "",
                    "namespaced": def.namespaced,
                    "kind": def.kind,
                    "verbs": ["get", "patch", "update"],
                }));
            }
            if def.scale.is_some() {
                entries.push(json!({
                    "name": format!("{}/scale", def.plural),
                    "singularName": "",
                    "namespaced": def.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }));
            }
        }
        let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
        Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}),
        )
    }
}

fn storage_version_of(inner: &Inner, def: &ResourceDef) -> String {
    if def.storage_version {
        return def.version.clone();
    }
    inner
        .by_path
        .values()
        .find(|r| r.def.group == def.group && r.def.plural == def.plural && r.def.storage_version)
        .map(|r| r.def.version.clone())
        .unwrap_or_else(|| def.version.clone())
}

/// Splits `group/version` (or a bare core `version`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first, then others.
fn sort_versions(versions: &mut [String]) {
    fn rank(v: &str) -> (u8, i64, i64) {
        let Some(rest) = v.strip_prefix('v') else { return (0, 0, 0) };
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let Ok(major) = digits.parse::<i64>() else { return (0, 0, 0) };
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return (3, major, 0);
        }
        let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
            (2, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (1, n)
        } else {
            return (0, 0, 0);
        };
        (level, major, num.parse().unwrap_or(0))
    }
    versions.sort_by(|a, b| rank(b).cmp(&rank(a)).then_with(|| a.cmp(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_kubernetes_priority() {
        let mut v: Vec<String> =
            ["v1alpha1", "v1beta1", "v1", "v2beta1", "v1beta2", "foo"].iter().map(|s| s.to_string()).collect();
        sort_versions(&mut v);
        assert_eq!(v, ["v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }
}
