//! Field paths and field errors worded as kube-apiserver words them (kube-openapi's
//! messages wrapped by apimachinery's `field.Error` bodies).

use serde_json::Value;

use crate::status::{CauseType, FieldError};

/// `parent.name`, or `name` at the root.
pub(crate) fn child(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// `parent[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// `parent[key]`, how `field.Path.Key` renders map keys.
pub(crate) fn key(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

/// A value as `field.Error` prints it: strings quoted, scalars bare, compounds as JSON.
pub(crate) fn render(value: &Value) -> String {
    value.to_string()
}

/// Go's `strconv.Quote` (close enough: JSON string escaping).
pub(crate) fn quote(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

/// A number as Go's `%v` prints a float64 bound: integral values without a fraction.
pub(crate) fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { format!("{value}") }
}

/// The JSON type of a value as kube-openapi names it.
pub(crate) fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `Invalid value: "string": spec.x in body must be of type integer: "string"`.
pub(crate) fn type_invalid(path: &str, actual: &str, expected: &str) -> FieldError {
    FieldError::new(
        CauseType::FieldValueTypeInvalid,
        path,
        format!("Invalid value: {}: {} in body must be of type {expected}: {}", quote(actual), path, quote(actual)),
    )
}

/// A format violation, which kube-openapi reports as a type error on the value.
pub(crate) fn format_invalid(path: &str, value: &str, format: &str) -> FieldError {
    FieldError::new(
        CauseType::FieldValueTypeInvalid,
        path,
        format!("Invalid value: {}: {} in body must be of type {format}: {}", quote(value), path, quote(value)),
    )
}

/// `Invalid value: <value>: <path> in body <detail>`.
pub(crate) fn invalid_in_body(path: &str, value: &Value, detail: &str) -> FieldError {
    FieldError::new(
        CauseType::FieldValueInvalid,
        path,
        format!("Invalid value: {}: {} in body {detail}", render(value), path),
    )
}

/// `Invalid value: <value>: <detail>`, or just `Invalid value: <detail>` without a value.
pub(crate) fn invalid(path: &str, value: Option<&Value>, detail: &str) -> FieldError {
    let message = match value {
        Some(v) => format!("Invalid value: {}: {detail}", render(v)),
        None => format!("Invalid value: {detail}"),
    };
    FieldError::new(CauseType::FieldValueInvalid, path, message)
}

pub(crate) fn required(path: &str, detail: &str) -> FieldError {
    let message = if detail.is_empty() { "Required value".to_string() } else { format!("Required value: {detail}") };
    FieldError::new(CauseType::FieldValueRequired, path, message)
}

pub(crate) fn forbidden(path: &str, detail: &str) -> FieldError {
    FieldError::new(CauseType::FieldValueForbidden, path, format!("Forbidden: {detail}"))
}

/// `Duplicate value: <value>`, or just `Duplicate value` for compound values.
pub(crate) fn duplicate(path: &str, value: Option<&Value>) -> FieldError {
    let message = match value {
        Some(v) => format!("Duplicate value: {}", render(v)),
        None => "Duplicate value".to_string(),
    };
    FieldError::new(CauseType::FieldValueDuplicate, path, message)
}

/// `Unsupported value: "Foo": supported values: "A", "B"`; non-string allowed values
/// are JSON-encoded and then quoted, as Kubernetes does.
pub(crate) fn not_supported(path: &str, value: &Value, allowed: &[Value]) -> FieldError {
    let allowed: Vec<String> = allowed
        .iter()
        .map(|v| match v {
            Value::String(s) => quote(s),
            other => quote(&other.to_string()),
        })
        .collect();
    FieldError::new(
        CauseType::FieldValueNotSupported,
        path,
        format!("Unsupported value: {}: supported values: {}", render(value), allowed.join(", ")),
    )
}

/// `Too long: may not be more than N bytes` (the value is not repeated).
pub(crate) fn too_long(path: &str, max: u64) -> FieldError {
    let unit = if max == 1 { "byte" } else { "bytes" };
    FieldError::new(CauseType::FieldValueTooLong, path, format!("Too long: may not be more than {max} {unit}"))
}

/// `Too many: 3: must have at most 2 items` (also used for properties, as Kubernetes does).
pub(crate) fn too_many(path: &str, actual: usize, max: u64) -> FieldError {
    let unit = if max == 1 { "item" } else { "items" };
    FieldError::new(CauseType::FieldValueTooMany, path, format!("Too many: {actual}: must have at most {max} {unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        assert_eq!(child("", "spec"), "spec");
        assert_eq!(child("spec", "x"), "spec.x");
        assert_eq!(index("spec.items", 2), "spec.items[2]");
        assert_eq!(key("spec.labels", "a.b"), "spec.labels[a.b]");
    }

    #[test]
    fn numbers_print_like_go() {
        assert_eq!(number(10.0), "10");
        assert_eq!(number(-3.0), "-3");
        assert_eq!(number(1.5), "1.5");
    }

    #[test]
    fn not_supported_quotes_everything() {
        let err = not_supported("spec.x", &json!(3), &[json!("A"), json!(1), json!(true)]);
        assert_eq!(err.message, "Unsupported value: 3: supported values: \"A\", \"1\", \"true\"");
    }

    #[test]
    fn singular_units() {
        assert_eq!(too_long("x", 1).message, "Too long: may not be more than 1 byte");
        assert_eq!(too_many("x", 2, 1).message, "Too many: 2: must have at most 1 item");
        assert_eq!(required("x", "").message, "Required value");
        assert_eq!(duplicate("x", None).message, "Duplicate value");
    }
}
