//! Applying one manifest on the spoke with its update strategy (OCM `pkg/work/spoke/apply`):
//!
//! - `Update` (default): create when absent; otherwise update (PUT) only when the manifest
//!   changed (its hash, annotation `open-cluster-management.io/object-hash`, differs) or the
//!   live object no longer holds what the manifest sets (drift). Labels, annotations and
//!   owner references are merged, never replaced, and an object already as required is not
//!   written, so a resync of an unchanged work costs one GET per manifest.
//! - `CreateOnly`: create when absent (also after someone deleted it), never update.
//! - `ServerSideApply`: an apply patch with field manager `work-agent` (or a custom one
//!   starting with it) and `force`; a conflict with another manager fails the manifest with
//!   reason `ApplyConflict`. Without `ignoreFields` the patch is sent when the live object
//!   differs from the manifest. With `ignoreFields` it follows OCM: the manifest minus the
//!   `OnSpokePresent` paths is hashed (annotation `open-cluster-management.io/config-spec-hash`)
//!   and applied only when that hash changes, so spoke-side edits of ignored fields stay; on
//!   creation the whole manifest is applied.
//! - `ReadOnly`: read only, never created, updated or deleted.
//!
//! Owner references to the AppliedManifestWork are added for objects the work owns and
//! removed from objects it orphans (OCM's `manageOwnerRef`).

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Map, Value, json};

use super::applied::{ensure_owner, merged_owner_refs};
use super::discovery::Resolved;
use super::manifest::{
    CREATE_ONLY, ManifestRef, ON_SPOKE_CHANGE, READ_ONLY, SERVER_SIDE_APPLY, UPDATE, UpdateStrategy, hash_of,
    is_subset, remove_json_path, required_object, string_map,
};
use crate::error::{ManifestError, api_code, api_message};

pub const OBJECT_HASH_ANNOTATION: &str = "open-cluster-management.io/object-hash";
pub const CONFIG_SPEC_HASH_ANNOTATION: &str = "open-cluster-management.io/config-spec-hash";
pub const DEFAULT_FIELD_MANAGER: &str = "work-agent";

/// Optimistic-concurrency retries of an update that lost a race.
const CONFLICT_RETRIES: usize = 3;

/// What applying a manifest left on the spoke.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The live object afterwards (`None`: it does not exist, e.g. ReadOnly of a missing object).
    pub live: Option<Value>,
    /// Whether the agent wrote to the spoke.
    pub wrote: bool,
}

/// Everything needed to apply one manifest.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub client: &'a kube::Client,
    pub manifest: &'a Value,
    pub reference: &'a ManifestRef,
    pub resolved: &'a Resolved,
    pub strategy: Option<&'a UpdateStrategy>,
    /// The ownerReference to the AppliedManifestWork.
    pub owner: &'a Value,
    /// Whether the work owns the object (else the owner reference is removed).
    pub owned: bool,
}

impl Target<'_> {
    fn api(&self) -> Result<Api<DynamicObject>, ManifestError> {
        if self.resolved.namespaced {
            if self.reference.namespace.is_empty() {
                return Err(ManifestError::Invalid(format!(
                    "{} {} is namespaced but the manifest has no metadata.namespace",
                    self.reference.kind, self.reference.name
                )));
            }
            Ok(Api::namespaced_with(self.client.clone(), &self.reference.namespace, &self.resolved.resource))
        } else {
            Ok(Api::all_with(self.client.clone(), &self.resolved.resource))
        }
    }

    fn describe(&self) -> String {
        let r = self.reference;
        if self.resolved.namespaced {
            format!("{} {}/{}", r.kind, r.namespace, r.name)
        } else {
            format!("{} {}", r.kind, r.name)
        }
    }

    async fn get(&self, api: &Api<DynamicObject>) -> Result<Option<Value>, ManifestError> {
        let found =
            api.get_opt(&self.reference.name).await.map_err(ManifestError::spoke("reading", self.describe()))?;
        found.map(|o| to_value(&o)).transpose()
    }

    async fn create(&self, api: &Api<DynamicObject>, object: &Value) -> Result<Value, ManifestError> {
        let object: DynamicObject = serde_json::from_value(object.clone())
            .map_err(|e| ManifestError::Invalid(format!("cannot read the manifest: {e}")))?;
        let created = api
            .create(&PostParams::default(), &object)
            .await
            .map_err(ManifestError::spoke("creating", self.describe()))?;
        tracing::info!(object = %self.describe(), "created");
        to_value(&created)
    }

    /// Brings the owner references in line; the patch carries the resourceVersion, so a
    /// concurrent writer (a controller updating status) means reading again and retrying.
    async fn set_owner(&self, api: &Api<DynamicObject>, mut live: Value) -> Result<Value, ManifestError> {
        for _ in 0..CONFLICT_RETRIES {
            match ensure_owner(api, &live, self.owner, self.owned).await {
                Ok(Some(updated)) => return Ok(updated),
                Ok(None) => return Ok(live),
                Err(e) if api_code(&e) == Some(409) => match self.get(api).await? {
                    Some(again) => live = again,
                    None => return Err(ManifestError::spoke("setting the owner of", self.describe())(e)),
                },
                Err(e) => return Err(ManifestError::spoke("setting the owner of", self.describe())(e)),
            }
        }
        Err(ManifestError::Spoke {
            action: "setting the owner of",
            what: self.describe(),
            code: Some(409),
            message: "the object kept changing".to_string(),
        })
    }
}

fn to_value(object: &DynamicObject) -> Result<Value, ManifestError> {
    serde_json::to_value(object).map_err(|e| ManifestError::Invalid(format!("cannot encode an object: {e}")))
}

/// Applies the manifest with its strategy.
pub async fn apply(target: &Target<'_>) -> Result<Applied, ManifestError> {
    let kind = target.strategy.map(|s| s.type_.as_str()).filter(|t| !t.is_empty()).unwrap_or(UPDATE);
    match kind {
        UPDATE => update(target).await,
        CREATE_ONLY => create_only(target).await,
        SERVER_SIDE_APPLY => server_side_apply(target).await,
        READ_ONLY => {
            let api = target.api()?;
            Ok(Applied { live: target.get(&api).await?, wrote: false })
        }
        other => Err(ManifestError::Invalid(format!("unknown update strategy {other:?}"))),
    }
}

fn set_owner_refs(object: &mut Value, owner: &Value, owned: bool) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if owned {
            meta.insert("ownerReferences".into(), json!([owner]));
        } else {
            meta.remove("ownerReferences");
        }
    }
}

fn set_annotation(object: &mut Value, key: &str, value: &str) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        if let Some(map) = annotations.as_object_mut() {
            map.insert(key.to_string(), json!(value));
        }
    }
}

/// `live`'s map with `required`'s entries laid over it (OCM's `MergeMap`).
fn merged_map(live: &Map<String, Value>, required: &Map<String, Value>) -> Map<String, Value> {
    let mut merged = live.clone();
    for (k, v) in required {
        merged.insert(k.clone(), v.clone());
    }
    merged
}

async fn update(target: &Target<'_>) -> Result<Applied, ManifestError> {
    let api = target.api()?;
    let mut required = required_object(target.manifest, target.resolved.namespaced);
    // The hash covers the owner reference too: an orphaning change is a change.
    set_owner_refs(&mut required, target.owner, target.owned);
    let hash = hash_of(&required);
    set_annotation(&mut required, OBJECT_HASH_ANNOTATION, &hash);

    for _ in 0..CONFLICT_RETRIES {
        let Some(live) = target.get(&api).await? else {
            let created = target.create(&api, &required).await?;
            return Ok(Applied { live: Some(created), wrote: true });
        };
        let live_labels = string_map(&live, "labels");
        let live_annotations = string_map(&live, "annotations");
        let labels = merged_map(&live_labels, &string_map(&required, "labels"));
        let annotations = merged_map(&live_annotations, &string_map(&required, "annotations"));
        let refs = merged_owner_refs(&live, target.owner, target.owned);
        let mut body = required.clone();
        if let Some(map) = body.as_object_mut() {
            map.remove("metadata");
            map.remove("status");
        }
        let same =
            labels == live_labels && annotations == live_annotations && refs.is_none() && is_subset(&body, &live);
        if same {
            return Ok(Applied { live: Some(live), wrote: false });
        }
        // The live metadata, with the merged maps and owners; the manifest's body.
        let mut metadata = live.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
        metadata.remove("managedFields");
        metadata.insert("labels".into(), Value::Object(labels));
        metadata.insert("annotations".into(), Value::Object(annotations));
        if let Some(refs) = refs {
            metadata.insert("ownerReferences".into(), Value::Array(refs));
        }
        body["metadata"] = Value::Object(metadata);
        let object: DynamicObject = serde_json::from_value(body)
            .map_err(|e| ManifestError::Invalid(format!("cannot read the manifest: {e}")))?;
        match api.replace(&target.reference.name, &PostParams::default(), &object).await {
            Ok(updated) => {
                tracing::info!(object = %target.describe(), "updated");
                return Ok(Applied { live: Some(to_value(&updated)?), wrote: true });
            }
            Err(e) if api_code(&e) == Some(409) => {
                tracing::debug!(object = %target.describe(), "the object changed while it was updated; retrying");
            }
            Err(e) => return Err(ManifestError::spoke("updating", target.describe())(e)),
        }
    }
    Err(ManifestError::Spoke {
        action: "updating",
        what: target.describe(),
        code: Some(409),
        message: "the object kept changing while it was updated".to_string(),
    })
}

async fn create_only(target: &Target<'_>) -> Result<Applied, ManifestError> {
    let api = target.api()?;
    if let Some(live) = target.get(&api).await? {
        return Ok(Applied { live: Some(live), wrote: false });
    }
    let mut required = required_object(target.manifest, target.resolved.namespaced);
    set_owner_refs(&mut required, target.owner, target.owned);
    match target.create(&api, &required).await {
        Ok(created) => Ok(Applied { live: Some(created), wrote: true }),
        // Created by someone else between the read and the write: leave it be.
        Err(ManifestError::Spoke { code: Some(409), .. }) => {
            Ok(Applied { live: target.get(&api).await?, wrote: false })
        }
        Err(e) => Err(e),
    }
}

async fn server_side_apply(target: &Target<'_>) -> Result<Applied, ManifestError> {
    let config = target.strategy.and_then(|s| s.server_side_apply.clone()).unwrap_or_default();
    let manager = if config.field_manager.is_empty() { DEFAULT_FIELD_MANAGER } else { config.field_manager.as_str() };
    if !manager.starts_with(DEFAULT_FIELD_MANAGER) {
        return Err(ManifestError::Invalid(format!(
            "field manager {manager:?} must start with {DEFAULT_FIELD_MANAGER:?}"
        )));
    }
    let api = target.api()?;
    let mut required = required_object(target.manifest, target.resolved.namespaced);
    if let Some(meta) = required.get_mut("metadata").and_then(Value::as_object_mut) {
        // Owner references are the agent's own business, patched below, not applied.
        meta.remove("ownerReferences");
    }
    let live = target.get(&api).await?;
    let body = if config.ignore_fields.is_empty() {
        match live {
            Some(live) if is_subset(&required, &live) => {
                return Ok(Applied { live: Some(target.set_owner(&api, live).await?), wrote: false });
            }
            _ => required,
        }
    } else {
        let mut trimmed = required.clone();
        for field in config.ignore_fields.iter().filter(|f| f.condition != ON_SPOKE_CHANGE) {
            for path in &field.json_paths {
                remove_json_path(&mut trimmed, path)?;
            }
        }
        let hash = hash_of(&trimmed);
        set_annotation(&mut trimmed, CONFIG_SPEC_HASH_ANNOTATION, &hash);
        set_annotation(&mut required, CONFIG_SPEC_HASH_ANNOTATION, &hash);
        match live {
            // The ignored fields are set once, when the object is created.
            None => required,
            Some(live) => {
                let held = live.pointer("/metadata/annotations").and_then(|a| a.get(CONFIG_SPEC_HASH_ANNOTATION));
                if held.and_then(Value::as_str) == Some(hash.as_str()) {
                    return Ok(Applied { live: Some(target.set_owner(&api, live).await?), wrote: false });
                }
                trimmed
            }
        }
    };
    let mut params = PatchParams::apply(manager);
    params.force = config.force;
    let applied = match api.patch(&target.reference.name, &params, &Patch::Apply(&body)).await {
        Ok(applied) => applied,
        Err(e) if api_code(&e) == Some(409) => return Err(ManifestError::ApplyConflict(api_message(&e))),
        Err(e) => return Err(ManifestError::spoke("applying", target.describe())(e)),
    };
    tracing::info!(object = %target.describe(), field_manager = %manager, force = config.force, "server-side applied");
    let live = target.set_owner(&api, to_value(&applied)?).await?;
    Ok(Applied { live: Some(live), wrote: true })
}
