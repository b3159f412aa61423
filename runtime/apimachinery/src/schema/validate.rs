//! Structural validation: what kube-openapi's schema validator, the apiextensions
//! list-type validator and the embedded-resource ObjectMeta validator check, with
//! their field paths and wording.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::format;
use super::messages::{
    child, duplicate, format_invalid, index, invalid, invalid_in_body, not_supported, number, required, too_long,
    too_many, type_invalid, type_of,
};
use super::node::{JsonType, ListKind, Node};
use crate::names;
use crate::status::FieldError;

/// Validates the object at the root of a resource. `metadata` is the server's
/// business except for constraints the schema places on `name` and `generateName`.
pub(crate) fn validate_root(root: &Node, obj: &Value, errors: &mut Vec<FieldError>) {
    validate(root, obj, "", true, errors);
}

fn validate(node: &Node, value: &Value, path: &str, resource_root: bool, errors: &mut Vec<FieldError>) {
    if !check_type(node, value, path, errors) || value.is_null() {
        return;
    }
    validate_combinators(node, value, path, errors);
    match value {
        Value::String(text) => validate_string(node, text, value, path, errors),
        Value::Number(_) => validate_number(node, value, path, errors),
        Value::Array(items) => validate_array(node, items, path, errors),
        _ => {}
    }
    validate_enum(node, value, path, errors);
    if let Value::Object(map) = value {
        validate_object(node, map, path, resource_root, errors);
    }
}

/// Reports a type mismatch; false means the value is not worth checking further.
fn check_type(node: &Node, value: &Value, path: &str, errors: &mut Vec<FieldError>) -> bool {
    let allowed: &[&str] = match (node.int_or_string, node.type_) {
        (true, _) => &["integer", "string"],
        (false, Some(t)) => match t {
            JsonType::Object => &["object"],
            JsonType::Array => &["array"],
            JsonType::String => &["string"],
            JsonType::Integer => &["integer"],
            JsonType::Number => &["number"],
            JsonType::Boolean => &["boolean"],
        },
        (false, None) => return true,
    };
    let actual = type_of(value);
    let ok = match actual {
        "null" => node.nullable,
        // kube-openapi accepts 1.0 for an integer and any integer for a number.
        "number" => allowed.contains(&"number") || (allowed.contains(&"integer") && is_integral(value)),
        "integer" => allowed.contains(&"integer") || allowed.contains(&"number"),
        other => allowed.contains(&other),
    };
    if !ok {
        errors.push(type_invalid(path, actual, &allowed.join(",")));
    }
    ok
}

fn is_integral(value: &Value) -> bool {
    value.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn validate_string(node: &Node, text: &str, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let length = text.chars().count();
    if let Some(max) = node.max_length
        && length as u64 > max
    {
        errors.push(too_long(path, max));
    }
    if let Some(min) = node.min_length
        && (length as u64) < min
    {
        errors.push(invalid_in_body(path, value, &format!("should be at least {min} chars long")));
    }
    if let Some(pattern) = &node.pattern
        && !pattern.regex.is_match(text)
    {
        errors.push(invalid_in_body(path, value, &format!("should match '{}'", pattern.source)));
    }
    if let Some(fmt) = &node.format
        && !format::is_valid(fmt, text)
    {
        errors.push(format_invalid(path, text, fmt));
    }
}

fn validate_number(node: &Node, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(n) = value.as_f64() else {
        return;
    };
    if let Some(factor) = node.multiple_of
        && ((n / factor).fract() != 0.0)
    {
        errors.push(invalid_in_body(path, value, &format!("should be a multiple of {}", number(factor))));
    }
    if let Some(max) = node.maximum {
        let (fails, relation) =
            if max.exclusive { (n >= max.value, "less than") } else { (n > max.value, "less than or equal to") };
        if fails {
            errors.push(invalid_in_body(path, value, &format!("should be {relation} {}", number(max.value))));
        }
    }
    if let Some(min) = node.minimum {
        let (fails, relation) =
            if min.exclusive { (n <= min.value, "greater than") } else { (n < min.value, "greater than or equal to") };
        if fails {
            errors.push(invalid_in_body(path, value, &format!("should be {relation} {}", number(min.value))));
        }
    }
}

fn validate_array(node: &Node, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    if let Some(max) = node.max_items
        && items.len() as u64 > max
    {
        errors.push(too_many(path, items.len(), max));
    }
    if let Some(min) = node.min_items
        && (items.len() as u64) < min
    {
        errors.push(invalid_in_body(path, &json!(items.len()), &format!("should have at least {min} items")));
    }
    if let Some(item_node) = &node.items {
        for (i, item) in items.iter().enumerate() {
            validate(item_node, item, &index(path, i), item_node.embedded, errors);
        }
    }
    match node.list_type {
        Some(ListKind::Set) => validate_set(items, path, errors),
        Some(ListKind::Map) => validate_list_map(&node.list_map_keys, items, path, errors),
        _ => {}
    }
}

fn validate_enum(node: &Node, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if !node.enum_.is_empty() && !node.enum_.iter().any(|allowed| json_equal(allowed, value)) {
        errors.push(not_supported(path, value, &node.enum_));
    }
}

/// Equality with numbers compared by value (kube-openapi converts before comparing).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn validate_object(
    node: &Node,
    map: &Map<String, Value>,
    path: &str,
    resource_root: bool,
    errors: &mut Vec<FieldError>,
) {
    if let Some(max) = node.max_properties
        && map.len() as u64 > max
    {
        errors.push(too_many(path, map.len(), max));
    }
    if let Some(min) = node.min_properties
        && (map.len() as u64) < min
    {
        errors.push(invalid_in_body(path, &json!(map.len()), &format!("should have at least {min} properties")));
    }
    for name in &node.required {
        if !map.contains_key(name) {
            errors.push(required(&child(path, name), ""));
        }
    }
    for (name, value) in map {
        let field_path = child(path, name);
        match node.property(name) {
            Some(prop) if resource_root && name == "metadata" => validate_metadata(prop, value, &field_path, errors),
            Some(prop) => validate(prop, value, &field_path, prop.embedded, errors),
            None => {
                if let Some(extra) = node.additional_schema() {
                    validate(extra, value, &field_path, extra.embedded, errors);
                }
            }
        }
    }
    if node.embedded && !path.is_empty() {
        validate_embedded_resource(map, path, errors);
    }
}

/// Only `metadata.name` and `metadata.generateName` may carry schema constraints.
fn validate_metadata(node: &Node, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    for field in ["name", "generateName"] {
        if let (Some(prop), Some(v)) = (node.property(field), value.get(field)) {
            validate(prop, v, &child(path, field), false, errors);
        }
    }
}

/// `x-kubernetes-embedded-resource`: apiVersion and kind are required and sane, and
/// metadata is a valid ObjectMeta (names are checked as path segments).
fn validate_embedded_resource(map: &Map<String, Value>, path: &str, errors: &mut Vec<FieldError>) {
    match map.get("apiVersion") {
        None => errors.push(required(&child(path, "apiVersion"), "must not be empty")),
        Some(v) => validate_api_version(v, &child(path, "apiVersion"), errors),
    }
    match map.get("kind") {
        None => errors.push(required(&child(path, "kind"), "must not be empty")),
        Some(v) => validate_kind(v, &child(path, "kind"), errors),
    }
    if let Some(meta) = map.get("metadata") {
        validate_object_meta(meta, &child(path, "metadata"), errors);
    }
}

fn validate_api_version(value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    match value.as_str() {
        None => errors.push(invalid(path, Some(value), "must be a string")),
        Some("") => errors.push(invalid(path, Some(value), "must not be empty")),
        Some(text) if text.matches('/').count() > 1 => {
            errors.push(invalid(path, Some(value), &format!("unexpected GroupVersion string: {text}")));
        }
        Some(_) => {}
    }
}

fn validate_kind(value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    match value.as_str() {
        None => errors.push(invalid(path, Some(value), "must be a string")),
        Some("") => errors.push(invalid(path, Some(value), "must not be empty")),
        Some(kind) => {
            let problems = names::dns1035_label_errors(&kind.to_lowercase());
            if !problems.is_empty() {
                let detail = format!("may have mixed case, but should otherwise match: {}", problems.join(","));
                errors.push(invalid(path, Some(value), &detail));
            }
        }
    }
}

fn validate_object_meta(meta: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(map) = meta.as_object() else {
        errors.push(invalid(path, Some(meta), "must be an object"));
        return;
    };
    for (field, prefix) in [("name", false), ("generateName", true)] {
        let Some(value) = map.get(field) else {
            continue;
        };
        let field_path = child(path, field);
        match value.as_str() {
            Some(name) => {
                for msg in names::name_errors(crate::NameFormat::PathSegment, name, prefix) {
                    errors.push(invalid(&field_path, Some(value), &msg));
                }
            }
            None => errors.push(type_invalid(&field_path, type_of(value), "string")),
        }
    }
    if let Some(labels) = map.get("labels") {
        errors.extend(names::validate_labels(labels, &child(path, "labels")));
    }
    if let Some(annotations) = map.get("annotations") {
        errors.extend(names::validate_annotations(annotations, &child(path, "annotations")));
    }
}

/// A canonical text of a value (object keys sorted) for duplicate detection, matching
/// Go's `json.Marshal` of unstructured content.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> =
                entries.into_iter().map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v))).collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// Indexes of the second occurrence of every repeated key (later repeats are not
/// reported again), as `validateListSet` does.
fn repeated(keys: impl Iterator<Item = String>) -> Vec<usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut repeats = Vec::new();
    for (i, key) in keys.enumerate() {
        let count = seen.entry(key).or_insert(0);
        *count += 1;
        if *count == 2 {
            repeats.push(i);
        }
    }
    repeats
}

fn validate_set(items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    for i in repeated(items.iter().map(canonical)) {
        errors.push(duplicate(&index(path, i), items.get(i)));
    }
}

fn validate_list_map(keys: &[String], items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() && !item.is_null() {
            errors.push(invalid(&index(path, i), Some(item), "must be an object for an array of list-type map"));
            return;
        }
    }
    let key_values: Vec<Value> = items.iter().map(|item| map_key(keys, item)).collect();
    for i in repeated(key_values.iter().map(canonical)) {
        errors.push(duplicate(&index(path, i), key_values.get(i)));
    }
}

/// The identifying keys of one list-map element: the key fields it sets.
fn map_key(keys: &[String], item: &Value) -> Value {
    let mut key = Map::new();
    for name in keys {
        if let Some(v) = item.get(name) {
            key.insert(name.clone(), v.clone());
        }
    }
    Value::Object(key)
}

fn validate_combinators(node: &Node, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if !node.all_of.is_empty() {
        let mut failed = false;
        for sub in &node.all_of {
            let sub_errors = errors_of(sub, value, path);
            failed |= !sub_errors.is_empty();
            errors.extend(sub_errors);
        }
        if failed {
            errors.push(composite(path, "must validate all the schemas (allOf)"));
        }
    }
    if !node.any_of.is_empty() {
        let results: Vec<Vec<FieldError>> = node.any_of.iter().map(|sub| errors_of(sub, value, path)).collect();
        if !results.iter().any(Vec::is_empty) {
            errors.push(composite(path, "must validate at least one schema (anyOf)"));
            errors.extend(fewest(results));
        }
    }
    if !node.one_of.is_empty() {
        let results: Vec<Vec<FieldError>> = node.one_of.iter().map(|sub| errors_of(sub, value, path)).collect();
        match results.iter().filter(|r| r.is_empty()).count() {
            1 => {}
            0 => {
                errors.push(composite(path, "must validate one and only one schema (oneOf). Found none valid"));
                errors.extend(fewest(results));
            }
            n => errors.push(composite(
                path,
                &format!("must validate one and only one schema (oneOf). Found {n} valid alternatives"),
            )),
        }
    }
    if let Some(not) = &node.not
        && errors_of(not, value, path).is_empty()
    {
        errors.push(composite(path, "must not validate the schema (not)"));
    }
}

fn errors_of(node: &Node, value: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate(node, value, path, false, &mut errors);
    errors
}

/// The failures of the alternative that came closest, as kube-openapi reports.
fn fewest(results: Vec<Vec<FieldError>>) -> Vec<FieldError> {
    results.into_iter().min_by_key(Vec::len).unwrap_or_default()
}

/// kube-openapi's composite errors, which kube-apiserver wraps as `Invalid value: ""`.
fn composite(path: &str, detail: &str) -> FieldError {
    invalid(path, Some(&json!("")), &format!("{path} {detail}"))
}
