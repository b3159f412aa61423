//! Strategic merge patch, after `k8s.io/apimachinery/pkg/util/strategicpatch`
//! (`StrategicMergeMapPatch` with parallel lists merged, as the API server runs it).

use std::collections::HashSet;
use std::fmt::Display;

use serde_json::{Map, Value};

use crate::merge_schema::{ListType, MergeStrategy};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Merges `patch` into a copy of `target` and returns the result.
pub(super) fn apply(target: &Value, patch: &Value, strategy: &dyn MergeStrategy) -> Result<Value, String> {
    let Some(patch) = patch.as_object() else {
        return Err("invalid JSON document: a strategic merge patch must be a JSON object".to_string());
    };
    let original = target.as_object().cloned().unwrap_or_default();
    let merged = Merger { strategy }.merge_map(original, patch, &mut Vec::new())?;
    Ok(Value::Object(merged))
}

/// Keys that carry patch instructions rather than data.
fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// Prefixes an error with where it happened (`spec.template.spec.containers: ...`).
fn at(path: &[String], message: impl Display) -> String {
    if path.is_empty() { message.to_string() } else { format!("{}: {message}", path.join(".")) }
}

/// Scalar equality as Go's `interface{}` comparison sees decoded JSON: every number
/// is a float64, so `1` equals `1.0`.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn position(order: &[Value], id: Option<&Value>) -> Option<usize> {
    let id = id?;
    order.iter().position(|o| same(o, id))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

fn no_merge_key(item: &Map<String, Value>, key: &str) -> String {
    format!("map: {} does not contain declared merge key: {key}", Value::Object(item.clone()))
}

fn bad_patch_type(directive: &Value, item: &Map<String, Value>) -> String {
    format!("unknown patch type: {directive} in map: {}", Value::Object(item.clone()))
}

/// A list item with the value that identifies it (its merge key value, or itself
/// for lists of scalars).
struct Keyed {
    id: Option<Value>,
    item: Value,
}

struct Merger<'a> {
    strategy: &'a dyn MergeStrategy,
}

impl Merger<'_> {
    fn list_type(&self, path: &[String]) -> ListType {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        self.strategy.list_type(&path)
    }

    /// The merge key of a list (`None` for lists of scalars and atomic lists).
    fn merge_key(&self, path: &[String]) -> Option<String> {
        match self.list_type(path) {
            ListType::Map(keys) => keys.first().cloned(),
            ListType::Set | ListType::Atomic => None,
        }
    }

    fn merge_map(
        &self,
        original: Map<String, Value>,
        patch: &Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<Map<String, Value>, String> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            let mut rest = patch.clone();
            rest.shift_remove(DIRECTIVE);
            return match directive.as_str() {
                // The patch is the whole new map (its own directives still apply).
                Some("replace") => self.merge_map(Map::new(), &rest, path),
                Some("delete") => Ok(Map::new()),
                Some("merge") => self.merge_map(original, &rest, path),
                _ => Err(at(path, bad_patch_type(directive, patch))),
            };
        }
        let mut original = original;
        if let Some(keys) = patch.get(RETAIN_KEYS) {
            retain_keys(&mut original, patch, keys).map_err(|e| at(path, e))?;
        }
        let ordered = self.apply_element_orders(&mut original, patch, path)?;
        for (key, value) in patch {
            if is_directive_key(key) || ordered.contains(key.as_str()) {
                continue;
            }
            if value.is_null() {
                original.shift_remove(key);
                continue;
            }
            path.push(key.clone());
            let existing = original.get_mut(key).map(std::mem::take);
            let merged = match existing {
                Some(old) => self.merge_existing(old, value, path),
                None => self.new_value(value, path),
            };
            path.pop();
            original.insert(key.clone(), merged?);
        }
        delete_from_primitive_lists(&mut original, patch).map_err(|e| at(path, e))?;
        Ok(original)
    }

    fn merge_existing(&self, old: Value, patch: &Value, path: &mut Vec<String>) -> Result<Value, String> {
        match (old, patch) {
            (Value::Object(old), Value::Object(patch)) => Ok(Value::Object(self.merge_map(old, patch, path)?)),
            (Value::Array(old), Value::Array(patch)) => Ok(Value::Array(self.merge_list(old, patch, path)?)),
            // Type changes and scalars replace.
            (_, patch) => self.new_value(patch, path),
        }
    }

    /// A patch value with nothing to merge into: directives are still interpreted
    /// (and so removed), nulls inside new maps are dropped.
    fn new_value(&self, patch: &Value, path: &mut Vec<String>) -> Result<Value, String> {
        match patch {
            Value::Object(patch) => Ok(Value::Object(self.merge_map(Map::new(), patch, path)?)),
            Value::Array(patch) => Ok(Value::Array(self.merge_list(Vec::new(), patch, path)?)),
            other => Ok(other.clone()),
        }
    }

    fn merge_list(&self, original: Vec<Value>, patch: &[Value], path: &mut Vec<String>) -> Result<Vec<Value>, String> {
        match self.list_type(path) {
            ListType::Map(keys) => match keys.first() {
                Some(key) => self.merge_keyed_list(original, patch, key, path),
                None => self.replace_list(patch, path),
            },
            ListType::Set => self.merge_set_list(original, patch, path),
            ListType::Atomic => self.replace_list(patch, path),
        }
    }

    fn replace_list(&self, patch: &[Value], path: &mut Vec<String>) -> Result<Vec<Value>, String> {
        patch.iter().map(|item| self.new_value(item, path)).collect()
    }

    /// Union of two lists of scalars, keeping the patch's order for its items.
    fn merge_set_list(&self, original: Vec<Value>, patch: &[Value], path: &[String]) -> Result<Vec<Value>, String> {
        let mut replace = false;
        let mut items = Vec::new();
        for item in patch {
            match item.as_object().and_then(|m| m.get(DIRECTIVE).map(|d| (m, d))) {
                None => items.push(item.clone()),
                Some((_, d)) if d == "replace" => replace = true,
                Some((_, d)) if d == "merge" => {}
                Some((m, d)) => return Err(at(path, bad_patch_type(d, m))),
            }
        }
        if replace {
            return Ok(dedupe(items));
        }
        let server_order = original.clone();
        let merged = dedupe(original.into_iter().chain(items.iter().cloned()).collect());
        let keyed = merged.into_iter().map(|item| Keyed { id: Some(item.clone()), item }).collect();
        Ok(normalize_element_order(keyed, &items, &server_order))
    }

    /// Lists of maps merged by `key`: items with `$patch: delete` are removed,
    /// `$patch: replace` replaces the list, other items merge into the item with the
    /// same key value or are added.
    fn merge_keyed_list(
        &self,
        mut original: Vec<Value>,
        patch: &[Value],
        key: &str,
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, String> {
        if let Some(bad) = original.iter().find(|item| !item.is_object()) {
            return Err(at(path, format!("expected a map, but received a {}", type_name(bad))));
        }
        let mut regular = Vec::new();
        let mut replace = false;
        for item in patch {
            let Some(map) = item.as_object() else {
                return Err(at(path, format!("expected a map, but received a {}", type_name(item))));
            };
            match map.get(DIRECTIVE) {
                None => regular.push(map),
                Some(d) if d == "merge" => regular.push(map),
                Some(d) if d == "replace" => replace = true,
                Some(d) if d == "delete" => {
                    let id = map.get(key).ok_or_else(|| at(path, no_merge_key(map, key)))?;
                    original.retain(|o| !o.get(key).is_some_and(|v| same(v, id)));
                }
                Some(d) => return Err(at(path, bad_patch_type(d, map))),
            }
        }
        if replace {
            return regular.into_iter().map(|m| Ok(Value::Object(self.merge_map(Map::new(), m, path)?))).collect();
        }
        let server_order: Vec<Value> = original.iter().filter_map(|o| o.get(key).cloned()).collect();
        let mut patch_order = Vec::new();
        for map in regular {
            let id = map.get(key).ok_or_else(|| at(path, no_merge_key(map, key)))?;
            patch_order.push(id.clone());
            match original.iter().position(|o| o.get(key).is_some_and(|v| same(v, id))) {
                Some(i) => {
                    let old = match std::mem::take(&mut original[i]) {
                        Value::Object(old) => old,
                        _ => Map::new(),
                    };
                    original[i] = Value::Object(self.merge_map(old, map, path)?);
                }
                None => original.push(Value::Object(self.merge_map(Map::new(), map, path)?)),
            }
        }
        let keyed = original.into_iter().map(|item| Keyed { id: item.get(key).cloned(), item }).collect();
        Ok(normalize_element_order(keyed, &patch_order, &server_order))
    }

    /// Handles every `$setElementOrder/<field>` of `patch`: merges the field's list
    /// (if the patch has one) and puts the result in the given order. Returns the
    /// fields it handled so the main loop skips them.
    fn apply_element_orders(
        &self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<HashSet<String>, String> {
        let mut handled = HashSet::new();
        for (directive, order) in patch {
            let Some(field) = directive.strip_prefix(SET_ELEMENT_ORDER) else {
                continue;
            };
            let (true, Some(order)) = (!field.is_empty(), order.as_array()) else {
                return Err(at(path, "invalid patch format of setElementOrder list"));
            };
            // A null list is a deletion, which the main loop does.
            if patch.get(field).is_some_and(Value::is_null) {
                continue;
            }
            path.push(field.to_string());
            let ordered = self.ordered_list(original.get(field), patch.get(field), order, path);
            path.pop();
            if let Some(list) = ordered? {
                original.insert(field.to_string(), Value::Array(list));
            }
            handled.insert(field.to_string());
        }
        Ok(handled)
    }

    fn ordered_list(
        &self,
        original: Option<&Value>,
        patch: Option<&Value>,
        order: &[Value],
        path: &mut Vec<String>,
    ) -> Result<Option<Vec<Value>>, String> {
        let original = list_or_absent(original).map_err(|e| at(path, e))?;
        let patch = list_or_absent(patch).map_err(|e| at(path, e))?;
        let key = self.merge_key(path);
        let id = |v: &Value| -> Option<Value> {
            match &key {
                Some(k) => v.get(k).cloned(),
                None => Some(v.clone()),
            }
        };
        let order_ids = order_ids(order, key.as_deref()).map_err(|e| at(path, e))?;
        if let Some(patch) = patch {
            validate_order(patch, &order_ids, key.as_deref(), &id).map_err(|e| at(path, e))?;
        }
        let server_order: Vec<Value> = original.iter().flat_map(|l| l.iter()).filter_map(&id).collect();
        let merged = match (original, patch) {
            (Some(original), None) => original.clone(),
            (original, Some(patch)) => self.merge_list(original.cloned().unwrap_or_default(), patch, path)?,
            (None, None) => return Ok(None),
        };
        let keyed = merged.into_iter().map(|item| Keyed { id: id(&item), item }).collect();
        Ok(Some(normalize_element_order(keyed, &order_ids, &server_order)))
    }
}

fn list_or_absent(value: Option<&Value>) -> Result<Option<&Vec<Value>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => Ok(Some(list)),
        Some(other) => Err(format!("expected a list, but received a {}", type_name(other))),
    }
}

/// The identities a `$setElementOrder` list names: merge key values, or scalars.
fn order_ids(order: &[Value], key: Option<&str>) -> Result<Vec<Value>, String> {
    order
        .iter()
        .map(|entry| match key {
            None => Ok(entry.clone()),
            Some(k) => match entry.as_object() {
                Some(m) => m.get(k).cloned().ok_or_else(|| no_merge_key(m, k)),
                None => Err(format!("expected a map, but received a {}", type_name(entry))),
            },
        })
        .collect()
}

/// The patch list must name its items in the same relative order as the
/// `$setElementOrder` list (deleted and directive-only items aside).
fn validate_order(
    patch: &[Value],
    order: &[Value],
    key: Option<&str>,
    id: &dyn Fn(&Value) -> Option<Value>,
) -> Result<(), String> {
    let relevant: Vec<&Value> =
        patch.iter().filter(|item| key.is_none() || item.get(DIRECTIVE).is_none_or(|d| d != "delete")).collect();
    let (mut p, mut o) = (0, 0);
    while p < relevant.len() && o < order.len() {
        if relevant[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if id(relevant[p]).is_some_and(|v| same(&v, &order[o])) {
            p += 1;
        }
        o += 1;
    }
    if p < relevant.len() {
        let shown = |items: Vec<Value>| Value::Array(items).to_string();
        return Err(format!(
            "the order in patch list {} doesn't match $setElementOrder list {}",
            shown(patch.to_vec()),
            shown(order.to_vec())
        ));
    }
    Ok(())
}

/// Puts merged items in order: items the patch named follow `patch_order`, the
/// others keep their order from the original list, and the two are interleaved by
/// their original positions (Kubernetes' `normalizeElementOrder`). Items the
/// original list did not have come before the original items they meet.
fn normalize_element_order(items: Vec<Keyed>, patch_order: &[Value], server_order: &[Value]) -> Vec<Value> {
    let (mut from_patch, mut server_only): (Vec<Keyed>, Vec<Keyed>) =
        items.into_iter().partition(|k| position(patch_order, k.id.as_ref()).is_some());
    from_patch.sort_by_key(|k| position(patch_order, k.id.as_ref()).unwrap_or(usize::MAX));
    server_only.sort_by_key(|k| position(server_order, k.id.as_ref()).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => matches!(
                (position(server_order, l.id.as_ref()), position(server_order, r.id.as_ref())),
                (Some(li), Some(ri)) if li < ri
            ),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next.map(|k| k.item));
    }
    out
}

fn dedupe(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        if !out.iter().any(|o| same(o, &item)) {
            out.push(item);
        }
    }
    out
}

/// `$retainKeys`: keys of the original not listed are cleared; every key the patch
/// sets must be listed.
fn retain_keys(original: &mut Map<String, Value>, patch: &Map<String, Value>, keys: &Value) -> Result<(), String> {
    let Some(keys) = keys.as_array() else {
        return Err("invalid patch format of retainKeys".to_string());
    };
    let keys: HashSet<&str> = keys.iter().filter_map(Value::as_str).collect();
    for (key, value) in patch {
        if value.is_null() || is_directive_key(key) {
            continue;
        }
        if !keys.contains(key.as_str()) {
            return Err(format!("invalid patch format of retainKeys: {key:?} is set but not retained"));
        }
    }
    original.retain(|k, _| keys.contains(k.as_str()));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>`: removes those values from the list, if any.
fn delete_from_primitive_lists(original: &mut Map<String, Value>, patch: &Map<String, Value>) -> Result<(), String> {
    for (directive, values) in patch {
        let Some(field) = directive.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else {
            continue;
        };
        let (true, Some(values)) = (!field.is_empty(), values.as_array()) else {
            return Err("invalid patch format of primitive list".to_string());
        };
        if let Some(Value::Array(list)) = original.get_mut(field) {
            list.retain(|item| !values.iter().any(|v| same(v, item)));
        }
    }
    Ok(())
}
