//! The three PATCH content types of the Kubernetes API: JSON merge patch
//! (`application/merge-patch+json`, RFC 7386), JSON patch (`application/json-patch+json`,
//! RFC 6902) and strategic merge patch (`application/strategic-merge-patch+json`).
//!
//! Every function leaves the target untouched when it fails.

use json_patch::jsonptr::Pointer;
use json_patch::{PatchErrorKind, PatchOperation};
use serde_json::Value;

use crate::merge_schema::{ListType, MergeStrategy};

mod strategic;

/// Applies an RFC 7386 JSON merge patch: objects merge recursively, `null` deletes,
/// anything else (including arrays) replaces.
pub fn json_merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch atomically. Errors name the failing operation,
/// for example `operation 2 (replace /spec/x): path not found`.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let operations = parse_operations(patch)?;
    let mut working = target.clone();
    for (index, operation) in operations.iter().enumerate() {
        // One operation at a time, so on failure `working` is the document the
        // operation saw, which lets the error say what was missing.
        if let Err(err) = json_patch::patch(&mut working, std::slice::from_ref(operation)) {
            return Err(format!(
                "operation {index} ({} {}): {}",
                operation_name(operation),
                operation.path(),
                failure_reason(operation, &working, &err.kind),
            ));
        }
    }
    *target = working;
    Ok(())
}

/// Applies a Kubernetes strategic merge patch as kubectl sends it for built-in kinds.
///
/// Maps merge recursively and `null` deletes. Lists merge as `strategy` says: `Map`
/// lists by their first key (the `patchMergeKey`), `Set` lists as unions, `Atomic`
/// lists are replaced. The directives `$patch` (`replace`, `delete`, `merge`),
/// `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>` are
/// honoured and never stored. `metadata.finalizers` and `metadata.ownerReferences`
/// merge as in Kubernetes' ObjectMeta even when `strategy` knows nothing about them.
///
/// Unlike Kubernetes, `$patch: merge` is accepted (as the default merge) rather
/// than rejected, and `$deleteFromPrimitiveList` of a missing list adds nothing.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value, strategy: &dyn MergeStrategy) -> Result<(), String> {
    let merged = strategic::apply(target, patch, &WithObjectMeta(strategy))?;
    *target = merged;
    Ok(())
}

/// Wraps a merge strategy with what every Kubernetes kind's `ObjectMeta` declares:
/// `metadata.finalizers` is a set and `metadata.ownerReferences` a map list keyed by
/// `uid`. The wrapped strategy is asked first; these apply only where it says Atomic.
pub struct WithObjectMeta<'a>(pub &'a dyn MergeStrategy);

impl MergeStrategy for WithObjectMeta<'_> {
    fn list_type(&self, path: &[&str]) -> ListType {
        match (self.0.list_type(path), path) {
            (ListType::Atomic, ["metadata", "finalizers"]) => ListType::Set,
            (ListType::Atomic, ["metadata", "ownerReferences"]) => ListType::Map(vec!["uid".to_string()]),
            (list_type, _) => list_type,
        }
    }

    fn map_is_atomic(&self, path: &[&str]) -> bool {
        self.0.map_is_atomic(path)
    }
}

fn parse_operations(patch: &Value) -> Result<Vec<PatchOperation>, String> {
    let Some(items) = patch.as_array() else {
        return Err("invalid JSON patch: expected a JSON array of operations".to_string());
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            serde_json::from_value::<PatchOperation>(item.clone()).map_err(|e| format!("operation {index}: {e}"))
        })
        .collect()
}

fn operation_name(operation: &PatchOperation) -> &'static str {
    match operation {
        PatchOperation::Add(_) => "add",
        PatchOperation::Remove(_) => "remove",
        PatchOperation::Replace(_) => "replace",
        PatchOperation::Move(_) => "move",
        PatchOperation::Copy(_) => "copy",
        PatchOperation::Test(_) => "test",
    }
}

/// Why an operation failed, worked out from the document it was applied to.
fn failure_reason(operation: &PatchOperation, doc: &Value, kind: &PatchErrorKind) -> String {
    match kind {
        PatchErrorKind::TestFailed => {
            let found = doc.pointer(operation.path().as_str()).map_or("nothing".to_string(), short_json);
            format!("value did not match (found {found})")
        }
        PatchErrorKind::InvalidFromPointer => {
            let from = match operation {
                PatchOperation::Move(op) => op.from.to_string(),
                PatchOperation::Copy(op) => op.from.to_string(),
                _ => String::new(),
            };
            format!("from path {from} not found")
        }
        PatchErrorKind::InvalidPointer => pointer_problem(operation, doc),
        PatchErrorKind::CannotMoveInsideItself => "cannot move a value inside itself".to_string(),
        other => other.to_string(),
    }
}

/// `add`, `move` and `copy` write below an existing parent; the others need the
/// target itself to exist.
fn pointer_problem(operation: &PatchOperation, doc: &Value) -> String {
    let path = operation.path();
    let writes_new = matches!(operation, PatchOperation::Add(_) | PatchOperation::Move(_) | PatchOperation::Copy(_));
    if !writes_new {
        return match doc.pointer(path.as_str()) {
            None => "path not found".to_string(),
            Some(_) => "invalid path".to_string(),
        };
    }
    parent_problem(path, doc)
}

fn parent_problem(path: &Pointer, doc: &Value) -> String {
    let Some((parent, last)) = path.split_back() else {
        return "invalid path".to_string();
    };
    match doc.pointer(parent.as_str()) {
        None => format!("parent path {} not found", display_pointer(parent)),
        Some(Value::Array(items)) => {
            format!("index {} out of bounds (the array has {} items)", last.decoded(), items.len())
        }
        Some(Value::Object(_)) => "invalid path".to_string(),
        Some(_) => format!("parent path {} is not an object or array", display_pointer(parent)),
    }
}

fn display_pointer(pointer: &Pointer) -> String {
    if pointer.is_root() { "/".to_string() } else { pointer.to_string() }
}

fn short_json(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 { format!("{}...", text.chars().take(77).collect::<String>()) } else { text }
}

#[cfg(test)]
mod tests;
