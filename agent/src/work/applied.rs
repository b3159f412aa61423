//! AppliedManifestWorks (OCM `appliedmanifestwork_*` controllers and `helper.DeleteAppliedResources`):
//! the spoke's record of what a work applied, named `<hubHash>-<workName>`, and the owner
//! the applied objects point at. Garbage collection goes through it:
//!
//! - an object dropped from a work is deleted, unless another AppliedManifestWork still owns
//!   it (then only this owner reference goes);
//! - a deleted work has its AppliedManifestWork deleted; the agent's finalizer
//!   `…/applied-manifest-work-cleanup` holds it while the owned objects are deleted (objects
//!   the work orphans lost the owner reference when applied, and are skipped);
//! - an AppliedManifestWork whose work the hub no longer has is evicted after a grace
//!   period, counted from `status.evictionStartTime`, and only on what a reachable hub said.
//!
//! Deletions carry a UID precondition: an object someone recreated meanwhile is not ours.

use std::collections::BTreeSet;

use jiff::Timestamp;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::discovery::from_applied;
use super::manifest::{ResourceIdentifier, WorkSpec};
use crate::error::{ManifestError, api_code, api_message};

pub const APPLIED_WORK_FINALIZER: &str = "cluster.open-cluster-management.io/applied-manifest-work-cleanup";
pub const WORK_API_VERSION: &str = "work.open-cluster-management.io/v1";
pub const APPLIED_WORK_KIND: &str = "AppliedManifestWork";
/// Carried by the AppliedManifestWorks an agent creates, so that it lists only its own (many
/// agents may share one spoke in tests and benchmarks).
pub const AGENT_ID_LABEL: &str = "flotilla.dev/agent-id";

pub fn applied_manifest_works() -> ApiResource {
    ApiResource {
        group: "work.open-cluster-management.io".into(),
        version: "v1".into(),
        api_version: WORK_API_VERSION.into(),
        kind: APPLIED_WORK_KIND.into(),
        plural: "appliedmanifestworks".into(),
    }
}

/// OCM's hub hash: the sha256 of the hub's API server URL, in hex.
pub fn hub_hash(hub_url: &str) -> String {
    hex::encode(Sha256::digest(hub_url.as_bytes()))
}

pub fn applied_name(hub_hash: &str, work: &str) -> String {
    format!("{hub_hash}-{work}")
}

/// One entry of `status.appliedResources`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppliedResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
}

impl AppliedResource {
    pub fn identifier(&self) -> ResourceIdentifier {
        ResourceIdentifier {
            group: self.group.clone(),
            resource: self.resource.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
        }
    }

    fn describe(&self) -> String {
        let group = if self.group.is_empty() { String::new() } else { format!(".{}", self.group) };
        if self.namespace.is_empty() {
            format!("{}{group} {}", self.resource, self.name)
        } else {
            format!("{}{group} {}/{}", self.resource, self.namespace, self.name)
        }
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        let resource = from_applied(&self.group, &self.version, &self.resource);
        if self.namespace.is_empty() {
            Api::all_with(client.clone(), &resource)
        } else {
            Api::namespaced_with(client.clone(), &self.namespace, &resource)
        }
    }
}

/// Sorted as OCM sorts them (group, version, resource, namespace, name).
pub fn sort_resources(resources: &mut [AppliedResource]) {
    resources.sort_by(|a, b| {
        (&a.group, &a.version, &a.resource, &a.namespace, &a.name).cmp(&(
            &b.group,
            &b.version,
            &b.resource,
            &b.namespace,
            &b.name,
        ))
    });
}

/// An AppliedManifestWork as read from the spoke.
#[derive(Debug, Clone)]
pub struct AppliedWork {
    pub name: String,
    pub uid: String,
    pub object: Value,
}

impl AppliedWork {
    fn from_object(object: DynamicObject) -> Result<AppliedWork, ManifestError> {
        let object = serde_json::to_value(&object)
            .map_err(|e| ManifestError::Invalid(format!("cannot encode an AppliedManifestWork: {e}")))?;
        let text = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
        Ok(AppliedWork { name: text("/metadata/name"), uid: text("/metadata/uid"), object })
    }

    pub fn deleting(&self) -> bool {
        self.object.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null())
    }

    pub fn finalizers(&self) -> Vec<String> {
        self.object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|f| f.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    }

    pub fn spec_field(&self, field: &str) -> &str {
        self.object.pointer(&format!("/spec/{field}")).and_then(Value::as_str).unwrap_or_default()
    }

    pub fn resources(&self) -> Vec<AppliedResource> {
        self.object
            .pointer("/status/appliedResources")
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_default()
    }

    pub fn eviction_start(&self) -> Option<Timestamp> {
        self.object.pointer("/status/evictionStartTime").and_then(Value::as_str).and_then(|t| t.parse().ok())
    }

    /// The ownerReference applied objects carry (not a controller reference: several works
    /// may declare the same object).
    pub fn owner_reference(&self) -> Value {
        json!({"apiVersion": WORK_API_VERSION, "kind": APPLIED_WORK_KIND, "name": self.name, "uid": self.uid})
    }
}

fn api(client: &kube::Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &applied_manifest_works())
}

pub async fn get(client: &kube::Client, name: &str) -> Result<Option<AppliedWork>, ManifestError> {
    match api(client).get_opt(name).await.map_err(ManifestError::spoke("reading AppliedManifestWork", name))? {
        Some(object) => AppliedWork::from_object(object).map(Some),
        None => Ok(None),
    }
}

/// Gets or creates the AppliedManifestWork of a work, and keeps its spec and finalizer.
pub async fn ensure(
    client: &kube::Client,
    hub_hash: &str,
    agent_id: &str,
    work: &str,
) -> Result<AppliedWork, ManifestError> {
    let name = applied_name(hub_hash, work);
    let spec = json!({"hubHash": hub_hash, "agentID": agent_id, "manifestWorkName": work});
    let Some(existing) = get(client, &name).await? else {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": WORK_API_VERSION,
            "kind": APPLIED_WORK_KIND,
            "metadata": {"name": name, "finalizers": [APPLIED_WORK_FINALIZER], "labels": {AGENT_ID_LABEL: agent_id}},
            "spec": spec,
        }))
        .map_err(|e| ManifestError::Invalid(format!("cannot build AppliedManifestWork {name}: {e}")))?;
        return match api(client).create(&PostParams::default(), &object).await {
            Ok(created) => {
                tracing::info!(applied_work = %name, "created the AppliedManifestWork");
                AppliedWork::from_object(created)
            }
            // Another worker of this agent cannot race (one worker per work), but a
            // restarted agent's leftovers can: read what is there.
            Err(e) if api_code(&e) == Some(409) => get(client, &name).await?.ok_or_else(|| ManifestError::Spoke {
                action: "creating AppliedManifestWork",
                what: name.clone(),
                code: Some(409),
                message: api_message(&e),
            }),
            Err(e) if api_code(&e) == Some(404) => Err(ManifestError::Spoke {
                action: "creating AppliedManifestWork",
                what: name.clone(),
                code: Some(404),
                message: format!(
                    "the spoke does not serve appliedmanifestworks.{}: install OCM's AppliedManifestWork CRD ({})",
                    applied_manifest_works().group,
                    api_message(&e)
                ),
            }),
            Err(e) => Err(ManifestError::spoke("creating AppliedManifestWork", &name)(e)),
        };
    };
    if existing.deleting() {
        return Ok(existing);
    }
    let mut finalizers = existing.finalizers();
    let needs_finalizer = !finalizers.iter().any(|f| f == APPLIED_WORK_FINALIZER);
    let spec_differs = existing.object.get("spec") != Some(&spec);
    let label = existing.object.pointer("/metadata/labels").and_then(|l| l.get(AGENT_ID_LABEL));
    let label_differs = label.and_then(Value::as_str) != Some(agent_id);
    if !needs_finalizer && !spec_differs && !label_differs {
        return Ok(existing);
    }
    if needs_finalizer {
        finalizers.push(APPLIED_WORK_FINALIZER.to_string());
    }
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "labels": {AGENT_ID_LABEL: agent_id},
            "resourceVersion": existing.object.pointer("/metadata/resourceVersion"),
        },
        "spec": spec,
    });
    let patched = api(client)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(ManifestError::spoke("updating AppliedManifestWork", &name))?;
    AppliedWork::from_object(patched)
}

/// Writes `status.appliedResources` when it differs.
pub async fn set_resources(
    client: &kube::Client,
    applied: &AppliedWork,
    resources: &[AppliedResource],
) -> Result<(), ManifestError> {
    if applied.resources() == resources {
        return Ok(());
    }
    let patch = json!({"status": {"appliedResources": resources}});
    api(client)
        .patch_status(&applied.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(ManifestError::spoke("updating the status of AppliedManifestWork", &applied.name))?;
    tracing::debug!(applied_work = %applied.name, resources = resources.len(), "recorded the applied resources");
    Ok(())
}

/// Sets or clears `status.evictionStartTime`.
pub async fn set_eviction_start(
    client: &kube::Client,
    applied: &AppliedWork,
    start: Option<Timestamp>,
) -> Result<(), ManifestError> {
    let value = start.map_or(Value::Null, |t| json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
    let patch = json!({"status": {"evictionStartTime": value}});
    api(client)
        .patch_status(&applied.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(ManifestError::spoke("updating the status of AppliedManifestWork", &applied.name))?;
    Ok(())
}

pub async fn delete(client: &kube::Client, applied: &AppliedWork) -> Result<(), ManifestError> {
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid: Some(applied.uid.clone()), resource_version: None }),
        ..DeleteParams::default()
    };
    match api(client).delete(&applied.name, &params).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(api_code(&e), Some(404 | 409)) => Ok(()),
        Err(e) => Err(ManifestError::spoke("deleting AppliedManifestWork", &applied.name)(e)),
    }
}

/// Drops the agent's finalizer from a deleting AppliedManifestWork (which then goes).
pub async fn release(client: &kube::Client, applied: &AppliedWork) -> Result<(), ManifestError> {
    let finalizers: Vec<String> = applied.finalizers().into_iter().filter(|f| f != APPLIED_WORK_FINALIZER).collect();
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": applied.object.pointer("/metadata/resourceVersion"),
    }});
    match api(client).patch(&applied.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            tracing::info!(applied_work = %applied.name, "removed the AppliedManifestWork");
            Ok(())
        }
        Err(e) if api_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(ManifestError::spoke("finalizing AppliedManifestWork", &applied.name)(e)),
    }
}

/// The owner references of `object` after adding `owner` (when `owned`) or removing it:
/// `None` when they already are so.
pub fn merged_owner_refs(object: &Value, owner: &Value, owned: bool) -> Option<Vec<Value>> {
    let uid = owner.get("uid");
    let existing: Vec<Value> =
        object.pointer("/metadata/ownerReferences").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut refs: Vec<Value> = existing.iter().filter(|r| r.get("uid") != uid).cloned().collect();
    if owned {
        match existing.iter().position(|r| r.get("uid") == uid) {
            // Keep it in place (and whatever blockOwnerDeletion someone set), fix the rest.
            Some(i) => {
                let mut kept = existing[i].clone();
                for field in ["apiVersion", "kind", "name"] {
                    kept[field] = owner[field].clone();
                }
                refs.insert(i, kept);
            }
            None => refs.push(owner.clone()),
        }
    }
    (refs != existing).then_some(refs)
}

/// Brings the owner references of a live object in line with `owned` (merge patch with a
/// resourceVersion precondition, like OCM's `ApplyOwnerReferences`). The updated object.
pub async fn ensure_owner(
    api: &Api<DynamicObject>,
    live: &Value,
    owner: &Value,
    owned: bool,
) -> Result<Option<Value>, kube::Error> {
    let Some(refs) = merged_owner_refs(live, owner, owned) else { return Ok(None) };
    let name = live.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": live.pointer("/metadata/resourceVersion"),
    }});
    let updated = api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(serde_json::to_value(&updated).ok())
}

fn owned_by(object: &Value, uid: &str) -> bool {
    owner_uids(object).iter().any(|u| u == uid)
}

fn owner_uids(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| refs.iter().filter_map(|r| r.get("uid").and_then(Value::as_str)).map(str::to_string).collect())
        .unwrap_or_default()
}

fn other_applied_work_owners(object: &Value, uid: &str) -> bool {
    object.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|refs| {
        refs.iter().any(|r| {
            r.get("apiVersion").and_then(Value::as_str) == Some(WORK_API_VERSION)
                && r.get("kind").and_then(Value::as_str) == Some(APPLIED_WORK_KIND)
                && r.get("uid").and_then(Value::as_str) != Some(uid)
        })
    })
}

/// What deleting a set of applied resources left.
#[derive(Debug, Default)]
pub struct Deletion {
    /// Deleted now or still being deleted (finalizers): not gone yet.
    pub pending: Vec<AppliedResource>,
    pub errors: Vec<ManifestError>,
}

/// Deletes applied resources owned by `applied` (OCM `DeleteAppliedResources`): objects
/// already gone, not owned by it, or recreated under another UID are forgotten; objects
/// another AppliedManifestWork also owns only lose this owner; objects `spec` orphans (when
/// the work is known) lose this owner and stay.
pub async fn delete_resources(
    client: &kube::Client,
    applied: &AppliedWork,
    resources: &[AppliedResource],
    spec: Option<&WorkSpec>,
    reason: &str,
) -> Deletion {
    let mut result = Deletion::default();
    let owner = applied.owner_reference();
    for resource in resources {
        let api = resource.api(client);
        let live = match api.get_opt(&resource.name).await {
            Ok(Some(object)) => match serde_json::to_value(&object) {
                Ok(live) => live,
                Err(e) => {
                    result.errors.push(ManifestError::Invalid(format!("cannot encode {}: {e}", resource.describe())));
                    continue;
                }
            },
            Ok(None) => continue,
            Err(e) => {
                result.errors.push(ManifestError::spoke("reading", resource.describe())(e));
                continue;
            }
        };
        if !owned_by(&live, &applied.uid) {
            continue;
        }
        let orphaned = spec.is_some_and(|spec| !spec.owns(&resource.identifier()));
        if orphaned || other_applied_work_owners(&live, &applied.uid) {
            match ensure_owner(&api, &live, &owner, false).await {
                Ok(_) => tracing::info!(resource = %resource.describe(), orphaned,
                    "released an applied resource that stays on the spoke"),
                Err(e) => result.errors.push(ManifestError::spoke("releasing", resource.describe())(e)),
            }
            continue;
        }
        let uid = live.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
        if !resource.uid.is_empty() && resource.uid != uid {
            continue;
        }
        if live.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
            result.pending.push(resource.clone());
            continue;
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            ..DeleteParams::background()
        };
        match api.delete(&resource.name, &params).await {
            Ok(_) => {
                tracing::info!(resource = %resource.describe(), reason, "deleted an applied resource");
                result.pending.push(resource.clone());
            }
            // Gone, or replaced by another object (UID precondition): forget it.
            Err(e) if matches!(api_code(&e), Some(404 | 409)) => {}
            Err(e) => result.errors.push(ManifestError::spoke("deleting", resource.describe())(e)),
        }
    }
    result
}

/// Applied resources no longer among `current` (compared by identity, not version or UID).
pub fn untracked(previous: &[AppliedResource], current: &BTreeSet<ResourceIdentifier>) -> Vec<AppliedResource> {
    previous.iter().filter(|r| !current.contains(&r.identifier())).cloned().collect()
}

/// Finalizes a deleting AppliedManifestWork: deletes what it owns, then lets it go. `true`
/// when it is gone (or going, with nothing left to wait for).
pub async fn finalize(
    client: &kube::Client,
    applied: &AppliedWork,
    spec: Option<&WorkSpec>,
) -> Result<bool, ManifestError> {
    if !applied.finalizers().iter().any(|f| f == APPLIED_WORK_FINALIZER) {
        return Ok(true);
    }
    let resources = applied.resources();
    let deletion = delete_resources(client, applied, &resources, spec, "its work is deleted").await;
    if let Some(error) = deletion.errors.into_iter().next() {
        return Err(error);
    }
    if !deletion.pending.is_empty() {
        // Remember only what is still there, so the next pass has less to read.
        set_resources(client, applied, &deletion.pending).await?;
        tracing::debug!(applied_work = %applied.name, pending = deletion.pending.len(),
            "waiting for applied resources to go");
        return Ok(false);
    }
    release(client, applied).await?;
    Ok(true)
}

/// Lists the AppliedManifestWorks of this agent (label and `spec.agentID`), of any hub.
pub async fn list_own(client: &kube::Client, agent_id: &str) -> Result<Vec<AppliedWork>, ManifestError> {
    let selector = format!("{AGENT_ID_LABEL}={agent_id}");
    let list = api(client)
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .map_err(ManifestError::spoke("listing", "AppliedManifestWorks"))?;
    let mut own = Vec::new();
    for object in list.items {
        let applied = AppliedWork::from_object(object)?;
        if applied.spec_field("agentID") == agent_id {
            own.push(applied);
        }
    }
    Ok(own)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hub_hash_is_sha256_hex_of_the_url() {
        assert_eq!(hub_hash("https://127.0.0.1:6443"), hex::encode(Sha256::digest(b"https://127.0.0.1:6443")),);
        assert_eq!(applied_name("abc", "w"), "abc-w");
    }

    #[test]
    fn owner_references_are_added_kept_and_removed() {
        let owner = json!({"apiVersion": WORK_API_VERSION, "kind": APPLIED_WORK_KIND, "name": "h-w", "uid": "u1"});
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u2"});
        let bare = json!({"metadata": {"name": "o"}});
        assert_eq!(merged_owner_refs(&bare, &owner, true), Some(vec![owner.clone()]));
        assert_eq!(merged_owner_refs(&bare, &owner, false), None);
        let both = json!({"metadata": {"ownerReferences": [other.clone(), owner.clone()]}});
        assert_eq!(merged_owner_refs(&both, &owner, true), None);
        assert_eq!(merged_owner_refs(&both, &owner, false), Some(vec![other.clone()]));
        assert!(other_applied_work_owners(&both, "u2"));
        assert!(!other_applied_work_owners(&both, "u1"));
        assert!(owned_by(&both, "u1"));
    }

    #[test]
    fn untracked_compares_identities() {
        let r = |name: &str, version: &str| AppliedResource {
            group: "apps".into(),
            version: version.into(),
            resource: "deployments".into(),
            namespace: "ns".into(),
            name: name.into(),
            uid: "x".into(),
        };
        let current: BTreeSet<ResourceIdentifier> = [r("a", "v1").identifier()].into();
        let gone = untracked(&[r("a", "v2"), r("b", "v1")], &current);
        assert_eq!(gone, vec![r("b", "v1")]);
    }
}
