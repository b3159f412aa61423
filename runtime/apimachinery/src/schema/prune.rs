//! Pruning of fields the schema does not know, as apiextensions-apiserver's
//! `structuralpruning.Prune` does, returning the paths of what was dropped.

use serde_json::Value;

use super::messages::{child, index};
use super::node::{Additional, Node};

/// Prunes a whole resource: its `apiVersion`, `kind` and `metadata` always stay.
pub(crate) fn prune_root(root: &Node, value: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune(Some(root), value, "", true, &mut pruned);
    pruned
}

/// `apiVersion` and `kind` (strings) and `metadata` (an object) of a resource or an
/// embedded resource are the server's, not the schema's.
fn is_resource_meta(name: &str, value: &Value) -> bool {
    match name {
        "apiVersion" | "kind" => value.is_string(),
        "metadata" => value.is_object(),
        _ => false,
    }
}

fn prune(node: Option<&Node>, value: &mut Value, path: &str, resource: bool, pruned: &mut Vec<String>) {
    if let Some(n) = node
        && n.preserve_unknown
    {
        skip_prune(n, value, path, resource, pruned);
        return;
    }
    match value {
        Value::Object(map) => {
            let mut unknown = Vec::new();
            for (name, v) in map.iter_mut() {
                let field_path = child(path, name);
                let Some(n) = node else {
                    pruned.push(field_path);
                    unknown.push(name.clone());
                    continue;
                };
                if resource && is_resource_meta(name, v) {
                    continue;
                }
                match (n.property(name), &n.additional) {
                    (Some(prop), _) => prune(Some(prop), v, &field_path, prop.embedded, pruned),
                    (None, Additional::Schema(extra)) => prune(Some(extra), v, &field_path, extra.embedded, pruned),
                    (None, Additional::Any) => {}
                    (None, Additional::Unset) => {
                        pruned.push(field_path);
                        unknown.push(name.clone());
                    }
                }
            }
            if !unknown.is_empty() {
                map.retain(|name, _| !unknown.contains(name));
            }
        }
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            let embedded = item_node.is_some_and(|n| n.embedded);
            for (i, item) in items.iter_mut().enumerate() {
                prune(item_node, item, &index(path, i), embedded, pruned);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields` unknown fields stay, but declared
/// properties are still pruned inside.
fn skip_prune(node: &Node, value: &mut Value, path: &str, resource: bool, pruned: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (name, v) in map.iter_mut() {
                if (resource || node.embedded) && is_resource_meta(name, v) {
                    continue;
                }
                let field_path = child(path, name);
                if let Some(prop) = node.property(name) {
                    prune(Some(prop), v, &field_path, prop.embedded, pruned);
                } else if let Some(extra) = node.additional_schema() {
                    prune(Some(extra), v, &field_path, extra.embedded, pruned);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = &node.items {
                for (i, item) in items.iter_mut().enumerate() {
                    skip_prune(item_node, item, &index(path, i), item_node.embedded, pruned);
                }
            }
        }
        _ => {}
    }
}
