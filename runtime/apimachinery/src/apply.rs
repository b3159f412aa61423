//! Server-side apply and managed fields, as kube-apiserver keeps them
//! (`k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager` over
//! `sigs.k8s.io/structured-merge-diff`), with the merge strategy standing in for
//! the OpenAPI schema.
//!
//! - [`apply`] merges an applied configuration into the live object, removes
//!   fields the applier dropped from its configuration (unless someone else owns
//!   them), detects conflicts with other managers and records ownership.
//! - [`record_update`] records ownership for every other write (create, update,
//!   merge/JSON/strategic patch, status writes).
//!
//! `apiVersion`, `kind` and the server-owned metadata (`name`, `namespace`, `uid`,
//! `resourceVersion`, `generation`, `creationTimestamp`, `managedFields`,
//! `selfLink`, `deletionTimestamp`, `deletionGracePeriodSeconds`) are never owned.

use std::fmt;

use serde_json::{Map, Value};

use crate::merge_schema::MergeStrategy;
use crate::status::{ApiError, CauseType, FieldError};

mod fieldset;
mod managed;
mod walk;

pub use fieldset::{FieldPath, FieldSet, PathElement, canonical_json};
pub use managed::{ManagedFieldsEntry, Operation, decode_managed_fields, encode_managed_fields};

use managed::raw_managed_fields;
use walk::Walker;

/// The manager that owns what an object held before its fields were tracked
/// (an object without managed fields that someone applies to).
pub const BEFORE_FIRST_APPLY_MANAGER: &str = "before-first-apply";

/// Metadata the server sets; an applied configuration cannot change it.
const SERVER_METADATA: [&str; 8] = [
    "managedFields",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// One field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConflict {
    pub manager: String,
    pub operation: Operation,
    pub subresource: Option<String>,
    pub api_version: String,
    /// The field path, like `.spec.replicas` or `.spec.containers[name="web"].image`.
    pub field: String,
}

impl ApplyConflict {
    /// The manager as Kubernetes names it in conflict messages:
    /// `"kubectl"`, `"kubectl-edit" using apps/v1`, `"ctl" with subresource "status" using v1`.
    pub fn manager_description(&self) -> String {
        let mut text = format!("{:?}", self.manager);
        if let Some(subresource) = &self.subresource {
            text.push_str(&format!(" with subresource {subresource:?}"));
        }
        if self.operation == Operation::Update {
            text.push_str(&format!(" using {}", self.api_version));
        }
        text
    }
}

/// The conflicts that stopped an apply (without `force`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConflicts {
    pub conflicts: Vec<ApplyConflict>,
}

impl ApplyConflicts {
    /// Kubernetes' message: `Apply failed with 1 conflict: conflict with "m" using v1: .spec.x`,
    /// or for several, one `conflicts with "m":` block per manager listing `- .path` lines.
    pub fn message(&self) -> String {
        if let [only] = self.conflicts.as_slice() {
            return format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                only.manager_description(),
                only.field
            );
        }
        let mut lines: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        for conflict in &self.conflicts {
            let manager = conflict.manager_description();
            if current.as_ref() != Some(&manager) {
                lines.push(format!("conflicts with {manager}:"));
                current = Some(manager);
            }
            lines.push(format!("- {}", conflict.field));
        }
        format!("Apply failed with {} conflicts: {}", self.conflicts.len(), lines.join("\n"))
    }

    /// The 409 Conflict `Status`, with one `FieldManagerConflict` cause per field.
    /// `group_resource` is `plural.group` (`deployments.apps`, or `configmaps`).
    pub fn to_api_error(&self, group_resource: &str, name: &str) -> ApiError {
        let (resource, group) = group_resource.split_once('.').unwrap_or((group_resource, ""));
        let mut error = ApiError::new(409, "Conflict", self.message()).about(group, resource, name);
        error.causes = self
            .conflicts
            .iter()
            .map(|c| {
                FieldError::new(
                    CauseType::FieldManagerConflict,
                    c.field.clone(),
                    format!("conflict with {}", c.manager_description()),
                )
            })
            .collect();
        error
    }
}

impl fmt::Display for ApplyConflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ApplyConflicts {}

/// Server-side apply of `config` by `manager` to the main resource. See
/// [`apply_to_subresource`].
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    strategy: &dyn MergeStrategy,
    api_version: &str,
    now: &str,
) -> Result<Value, ApplyConflicts> {
    apply_to_subresource(live, config, manager, None, force, strategy, api_version, now)
}

/// Server-side apply: returns the live object (or, when there is none, a new one)
/// merged with `config`, with `metadata.managedFields` updated.
///
/// - Maps merge field by field, map lists by their keys, set lists by value;
///   atomic lists and maps and scalars are replaced. `null` removes a field.
/// - Fields this manager applied last time and no longer specifies are removed,
///   unless another manager (Apply or Update) owns them too.
/// - A field whose value changes and that another manager owns is a conflict;
///   with `force` its ownership moves to this manager instead. Managers that set
///   the same value share ownership.
/// - An object with no managed fields first has its existing fields recorded for
///   [`BEFORE_FIRST_APPLY_MANAGER`], so applies conflict with them as in Kubernetes.
///
/// Server-owned metadata in `config` is ignored; call [`check_apply_config`]
/// first to reject configurations Kubernetes would reject.
#[allow(clippy::too_many_arguments)]
pub fn apply_to_subresource(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    subresource: Option<&str>,
    force: bool,
    strategy: &dyn MergeStrategy,
    api_version: &str,
    now: &str,
) -> Result<Value, ApplyConflicts> {
    let walker = Walker::new(strategy);
    let empty = Value::Object(Map::new());
    let live_obj = without_managed_fields(live.unwrap_or(&empty));
    let mut entries = live.map(decode_managed_fields).unwrap_or_default();
    if entries.is_empty() && live.is_some() {
        entries.extend(untracked_entry(&walker, &live_obj, api_version, now));
    }
    let config = without_server_metadata(config);
    let mut merged = walker.merge(&live_obj, &config);
    let applied = walker.field_set(&config);
    let own = entries.iter().position(|e| e.is(manager, Operation::Apply, subresource));
    if let Some(own) = own {
        let others = entries.iter().enumerate().filter(|(i, _)| *i != own).map(|(_, e)| &e.fields);
        prune(&walker, &mut merged, &entries[own].fields, &applied, others);
    }
    let comparison = walker.compare(&live_obj, &merged);
    let changed = comparison.changed();
    let conflicts = find_conflicts(&entries, own, &changed);
    if !force && !conflicts.is_empty() {
        return Err(ApplyConflicts { conflicts });
    }
    for (i, entry) in entries.iter_mut().enumerate() {
        if Some(i) != own {
            entry.fields = entry.fields.difference(&changed).difference(&comparison.removed);
        }
    }
    let owned = applied.difference(&ignored_fields());
    let object_changed = !comparison.is_same();
    match own.and_then(|i| entries.get_mut(i)) {
        Some(entry) => {
            if object_changed || entry.fields != owned || entry.time.is_none() {
                entry.time = Some(now.to_string());
            }
            entry.fields = owned;
            entry.api_version = api_version.to_string();
        }
        None => entries.push(ManagedFieldsEntry {
            manager: manager.to_string(),
            operation: Operation::Apply,
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
            subresource: subresource.map(str::to_string),
            fields: owned,
        }),
    }
    encode_managed_fields(&mut merged, entries);
    Ok(merged)
}

/// Records ownership for a non-apply write of `new` (over `old`, `None` on create)
/// by `manager` (operation `Update`, `subresource` such as `status`): the manager
/// gains every field whose value it added or changed, other managers lose those
/// fields, removed fields drop out of every entry, and empty entries go.
///
/// Managed fields the client wrote into `new` are honoured as Kubernetes does: a
/// list holding one empty entry (`[{}]`) resets them, an empty list or a copy of
/// the stored ones keeps the stored ones, anything else replaces them.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    strategy: &dyn MergeStrategy,
    api_version: &str,
    now: &str,
) {
    let walker = Walker::new(strategy);
    let mut entries = baseline_entries(old, new);
    let empty = Value::Object(Map::new());
    let comparison = walker.compare(&without_managed_fields(old.unwrap_or(&empty)), &without_managed_fields(new));
    let ignored = ignored_fields();
    let changed = comparison.changed().difference(&ignored);
    for entry in &mut entries {
        entry.fields = entry.fields.difference(&changed).difference(&comparison.removed).difference(&ignored);
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| e.is(manager, Operation::Update, subresource)) {
            Some(entry) => {
                entry.fields = entry.fields.union(&changed);
                entry.api_version = api_version.to_string();
                entry.time = Some(now.to_string());
            }
            None => entries.push(ManagedFieldsEntry {
                manager: manager.to_string(),
                operation: Operation::Update,
                api_version: api_version.to_string(),
                time: Some(now.to_string()),
                subresource: subresource.map(str::to_string),
                fields: changed,
            }),
        }
    }
    encode_managed_fields(new, entries);
}

/// The fields an applied configuration would own: every field it specifies
/// except those the server never tracks.
pub fn applied_fields(config: &Value, strategy: &dyn MergeStrategy) -> FieldSet {
    Walker::new(strategy).field_set(&without_server_metadata(config)).difference(&ignored_fields())
}

/// Rejects applied configurations Kubernetes rejects: not an object, without
/// `apiVersion`, `kind` or `metadata.name`, with `metadata.managedFields`, or with
/// map-list items missing their keys or lists naming an item twice.
pub fn check_apply_config(config: &Value, strategy: &dyn MergeStrategy) -> Result<(), String> {
    let Some(object) = config.as_object() else {
        return Err("an applied configuration must be a JSON object".to_string());
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).is_some();
    for field in ["apiVersion", "kind"] {
        if !text(object.get(field)) {
            return Err(format!("{field} must be set"));
        }
    }
    let metadata = object.get("metadata");
    if !text(metadata.and_then(|m| m.get("name"))) {
        return Err("metadata.name must be set".to_string());
    }
    if metadata.and_then(|m| m.get("managedFields")).is_some_and(|v| !v.is_null()) {
        return Err("metadata.managedFields must be nil".to_string());
    }
    Walker::new(strategy).check_lists(config)
}

/// Removes what the manager applied last time and no longer applies, unless
/// another manager owns it (structured-merge-diff's `prune`). Owning something
/// inside a map keeps the map.
fn prune<'e>(
    walker: &Walker<'_>,
    merged: &mut Value,
    last: &FieldSet,
    applied: &FieldSet,
    others: impl Iterator<Item = &'e FieldSet>,
) {
    let kept = others.fold(applied.clone(), |all, set| all.union(set)).with_parents();
    let doomed = last.with_parents().difference(&kept).difference(&ignored_fields());
    walker.remove(merged, &doomed);
}

/// Fields other managers own whose value this apply changes, grouped by manager.
fn find_conflicts(entries: &[ManagedFieldsEntry], own: Option<usize>, changed: &FieldSet) -> Vec<ApplyConflict> {
    let mut conflicts: Vec<ApplyConflict> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != own)
        .flat_map(|(_, entry)| {
            entry.fields.intersection(changed).paths().into_iter().map(move |path| ApplyConflict {
                manager: entry.manager.clone(),
                operation: entry.operation,
                subresource: entry.subresource.clone(),
                api_version: entry.api_version.clone(),
                field: path.to_string(),
            })
        })
        .collect();
    conflicts.sort_by(|a, b| (&a.manager, a.operation, &a.subresource).cmp(&(&b.manager, b.operation, &b.subresource)));
    conflicts
}

/// The entry that owns an untracked object's fields before its first apply.
fn untracked_entry(walker: &Walker<'_>, live: &Value, api_version: &str, now: &str) -> Option<ManagedFieldsEntry> {
    let fields = walker.compare(&Value::Object(Map::new()), live).changed().difference(&ignored_fields());
    (!fields.is_empty()).then(|| ManagedFieldsEntry {
        manager: BEFORE_FIRST_APPLY_MANAGER.to_string(),
        operation: Operation::Update,
        api_version: api_version.to_string(),
        time: Some(now.to_string()),
        subresource: None,
        fields,
    })
}

/// The managed fields an update starts from, honouring what the client wrote.
fn baseline_entries(old: Option<&Value>, new: &Value) -> Vec<ManagedFieldsEntry> {
    let stored = || old.map(decode_managed_fields).unwrap_or_default();
    match raw_managed_fields(new) {
        None => stored(),
        Some(Value::Array(items)) if items.is_empty() => stored(),
        Some(Value::Array(items)) if matches!(items.as_slice(), [only] if only.as_object().is_some_and(Map::is_empty)) => {
            Vec::new()
        }
        Some(written) if old.and_then(raw_managed_fields) == Some(written) => stored(),
        Some(_) => decode_managed_fields(new),
    }
}

/// Paths no manager owns: `apiVersion`, `kind`, `metadata` itself (not its
/// labels and annotations) and the server-owned metadata fields.
fn ignored_fields() -> FieldSet {
    let mut set = FieldSet::new();
    for path in [&["apiVersion"][..], &["kind"], &["metadata"]] {
        set.insert(&FieldPath::fields(path).0);
    }
    for field in ["name", "namespace"].iter().chain(SERVER_METADATA.iter()) {
        set.insert(&FieldPath::fields(&["metadata", field]).0);
    }
    set
}

fn without_managed_fields(obj: &Value) -> Value {
    without_metadata_fields(obj, &["managedFields"])
}

fn without_server_metadata(obj: &Value) -> Value {
    without_metadata_fields(obj, &SERVER_METADATA)
}

fn without_metadata_fields(obj: &Value, fields: &[&str]) -> Value {
    let mut out = obj.clone();
    if let Some(Value::Object(metadata)) = out.get_mut("metadata") {
        for field in fields {
            metadata.shift_remove(*field);
        }
    }
    out
}

#[cfg(test)]
mod tests;
