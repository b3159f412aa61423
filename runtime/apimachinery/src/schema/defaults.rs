//! Structural defaulting, as apiextensions-apiserver does it on decode:
//! `PruneNonNullableNullsWithoutDefaults` followed by `Default`.

use serde_json::Value;

use super::node::Node;

/// Drops nulls of non-nullable properties without a default, then fills defaults.
pub(crate) fn apply(node: &Node, value: &mut Value) {
    drop_non_nullable_nulls(node, value);
    default(node, value);
}

fn is_non_nullable_null(value: &Value, node: &Node) -> bool {
    value.is_null() && !node.nullable
}

/// A `null` for a property that may not be null and has no default means "unset".
fn drop_non_nullable_nulls(node: &Node, value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|name, v| {
                !node.property(name).is_some_and(|p| is_non_nullable_null(v, p) && p.default.is_none())
            });
            for (name, v) in map.iter_mut() {
                if let Some(sub) = node.field(name) {
                    drop_non_nullable_nulls(sub, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = &node.items {
                for item in items {
                    drop_non_nullable_nulls(item_node, item);
                }
            }
        }
        _ => {}
    }
}

/// Fills absent (or non-nullable null) fields that have a default, then descends,
/// so defaults inside defaults apply too.
fn default(node: &Node, value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (name, prop) in &node.properties {
                let Some(default_value) = &prop.default else {
                    continue;
                };
                let missing = map.get(name).is_none_or(|v| is_non_nullable_null(v, prop));
                if missing {
                    map.insert(name.clone(), default_value.clone());
                }
            }
            for (name, v) in map.iter_mut() {
                if let Some(prop) = node.property(name) {
                    default(prop, v);
                } else if let Some(extra) = node.additional_schema() {
                    fill_null(extra, v);
                    default(extra, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = &node.items {
                for item in items {
                    fill_null(item_node, item);
                    default(item_node, item);
                }
            }
        }
        _ => {}
    }
}

/// A non-nullable null list item or map value takes the schema's default.
fn fill_null(node: &Node, value: &mut Value) {
    if is_non_nullable_null(value, node)
        && let Some(default_value) = &node.default
    {
        *value = default_value.clone();
    }
}
