//! Structural OpenAPI v3 schemas as in CustomResourceDefinitions (`openAPIV3Schema`):
//! compiled once, then used to prune unknown fields, apply defaults and validate
//! objects (including `x-kubernetes-validations` CEL rules) the way
//! apiextensions-apiserver does, with Kubernetes' field paths and messages.

mod cel;
mod defaults;
mod format;
mod messages;
mod node;
mod prune;
mod validate;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::merge_schema::{ListType, MergeStrategy};
use crate::status::FieldError;
use node::{ListKind, Node};

/// A compiled structural schema. Cheap to share (`Send + Sync`); compile once per
/// served version.
#[derive(Debug, Clone)]
pub struct Schema {
    root: Node,
}

/// What `validate` adds when type errors keep CEL rules from running, as Kubernetes.
const RULES_NOT_CHECKED: &str = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

impl Schema {
    /// Compiles a raw `openAPIV3Schema`. The error names the malformed part, e.g.
    /// `openAPIV3Schema.properties[spec].properties[replicas].minimum: must be a number`.
    pub fn compile(raw: &Value) -> Result<Schema, String> {
        Ok(Schema { root: node::compile(raw, "openAPIV3Schema")? })
    }

    /// Applies defaults where fields are absent (or null but not nullable), in
    /// properties, list items and additionalProperties values, recursively. Nulls of
    /// non-nullable fields without a default are removed, as Kubernetes does.
    pub fn apply_defaults(&self, obj: &mut Value) {
        defaults::apply(&self.root, obj);
    }

    /// Removes fields the schema does not declare (unless preserved by
    /// `x-kubernetes-preserve-unknown-fields`) and returns their paths, such as
    /// `spec.foo` or `spec.items[2].bar`. `apiVersion`, `kind` and `metadata` of the
    /// resource and of embedded resources are never pruned.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        prune::prune_root(&self.root, obj)
    }

    /// Validates an object (and, on update, its transition rules against `old`).
    /// Returns every problem with its Kubernetes field path; empty means valid.
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate::validate_root(&self.root, obj, &mut errors);
        if self.root.rules_below {
            if errors.iter().any(blocks_rules) {
                errors.push(messages::invalid("", Some(&Value::from("null")), RULES_NOT_CHECKED));
            } else {
                cel::validate_root(&self.root, obj, old, &mut errors);
            }
        }
        errors
    }

    /// The schema node at `path` (field names from the root; list items transparent).
    fn node_at(&self, path: &[&str]) -> Option<&Node> {
        let mut node = &self.root;
        for name in path {
            node = items_of(node).field(name)?;
        }
        Some(node)
    }
}

/// Descends through list items: paths do not name them.
fn items_of(mut node: &Node) -> &Node {
    while let Some(items) = &node.items {
        node = items;
    }
    node
}

/// Errors after which Kubernetes does not run CEL rules (the object's shape is wrong).
fn blocks_rules(error: &FieldError) -> bool {
    use crate::status::CauseType::*;
    matches!(
        error.cause,
        FieldValueNotSupported | FieldValueRequired | FieldValueTooLong | FieldValueTooMany | FieldValueTypeInvalid
    )
}

impl MergeStrategy for Schema {
    fn list_type(&self, path: &[&str]) -> ListType {
        let Some(node) = self.node_at(path) else {
            return ListType::Atomic;
        };
        match node.list_type {
            Some(ListKind::Set) => ListType::Set,
            Some(ListKind::Map) => ListType::Map(node.list_map_keys.clone()),
            Some(ListKind::Atomic) | None => ListType::Atomic,
        }
    }

    fn map_is_atomic(&self, path: &[&str]) -> bool {
        self.node_at(path).is_some_and(|node| items_of(node).map_atomic)
    }
}
