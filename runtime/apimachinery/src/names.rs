//! Kubernetes name, label and annotation validation with Kubernetes' own messages
//! (`k8s.io/apimachinery/pkg/util/validation` and `.../api/validation`), so clients
//! that match on them see what a real API server would say.

use serde_json::Value;

use crate::resource::NameFormat;
use crate::status::{CauseType, FieldError};

/// Most characters a DNS-1123 subdomain (and so most object names) may have.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Most characters a DNS-1123 or DNS-1035 label may have.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Most characters of the name part of a qualified name (label keys).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Most characters of a label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Most bytes all annotation keys and values of one object may add up to (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// Validates an object name (or, with `prefix`, a `generateName` prefix, whose
/// trailing '-' is ignored) and returns every problem, as Kubernetes' name
/// validators do. Empty means valid.
pub fn name_errors(format: NameFormat, name: &str, prefix: bool) -> Vec<String> {
    match format {
        NameFormat::Dns1123Subdomain => dns1123_subdomain_errors(mask_trailing_dash(name, prefix)),
        NameFormat::Dns1123Label => dns1123_label_errors(mask_trailing_dash(name, prefix)),
        NameFormat::PathSegment => path_segment_errors(name, prefix),
    }
}

/// Validates an object name; on failure the messages are joined with ", ".
pub fn validate_name(format: NameFormat, name: &str) -> Result<(), String> {
    as_result(name_errors(format, name, false))
}

/// Validates a label key (a qualified name with an optional DNS subdomain prefix).
pub fn validate_label_key(key: &str) -> Result<(), String> {
    as_result(qualified_name_errors(key))
}

/// Validates a label value: empty, or at most 63 characters of the label alphabet.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    as_result(label_value_errors(value))
}

fn as_result(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() { Ok(()) } else { Err(errors.join(", ")) }
}

/// A `generateName` prefix may end in '-'; Kubernetes checks it as if it ended in 'a'.
fn mask_trailing_dash(name: &str, prefix: bool) -> std::borrow::Cow<'_, str> {
    match name.strip_suffix('-') {
        Some(stem) if prefix && !stem.is_empty() => format!("{stem}a").into(),
        _ => name.into(),
    }
}

/// `IsDNS1123Label`.
pub fn dns1123_label_errors(value: impl AsRef<str>) -> Vec<String> {
    let value = value.as_ref();
    let mut errors = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errors.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !is_dns_label(value, false) {
        errors.push(regex_error(DNS1123_LABEL_ERR, DNS1123_LABEL_FMT, &["my-name", "123-abc"]));
    }
    errors
}

/// `IsDNS1123Subdomain`.
pub fn dns1123_subdomain_errors(value: impl AsRef<str>) -> Vec<String> {
    let value = value.as_ref();
    let mut errors = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errors.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !value.split('.').all(|label| is_dns_label(label, false)) {
        errors.push(regex_error(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    errors
}

/// `IsDNS1035Label`.
pub fn dns1035_label_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errors.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !is_dns_label(value, true) {
        errors.push(regex_error(DNS1035_LABEL_ERR, DNS1035_LABEL_FMT, &["my-name", "abc-123"]));
    }
    errors
}

/// `ValidatePathSegmentName`: no '/' or '%', and (unless a prefix) not "." or "..".
pub fn path_segment_errors(name: &str, prefix: bool) -> Vec<String> {
    if !prefix && (name == "." || name == "..") {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|illegal| name.contains(*illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// `IsQualifiedName`: `[prefix/]name`, the form of label and annotation keys.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                let prefixed = dns1123_subdomain_errors(prefix);
                errors.extend(prefixed.into_iter().map(|msg| format!("prefix part {msg}")));
            }
            *name
        }
        _ => {
            let detail = regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, QUALIFIED_EXAMPLES);
            return vec![format!(
                "a qualified name {detail} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errors.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX_LENGTH)));
    }
    if !is_qualified_token(name) {
        let detail = regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, QUALIFIED_EXAMPLES);
        errors.push(format!("name part {detail}"));
    }
    errors
}

const QUALIFIED_EXAMPLES: &[&str] = &["MyName", "my.name", "123-abc"];

/// `IsValidLabelValue`.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errors.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !is_qualified_token(value) {
        errors.push(regex_error(LABEL_VALUE_ERR, LABEL_VALUE_FMT, &["MyValue", "my_value", "12345"]));
    }
    errors
}

/// `ValidateLabels`: every key a qualified name, every value a label value.
/// `field` is the path of the labels map, for example `metadata.labels`.
pub fn validate_labels(labels: &Value, field: &str) -> Vec<FieldError> {
    let Some(labels) = labels.as_object() else {
        return non_string_map(labels, field);
    };
    let mut errors = Vec::new();
    for (key, value) in labels {
        let key_value = Value::String(key.clone());
        for msg in qualified_name_errors(key) {
            errors.push(FieldError::invalid(field, &key_value, msg));
        }
        match value.as_str() {
            Some(text) => {
                for msg in label_value_errors(text) {
                    errors.push(FieldError::invalid(field, value, msg));
                }
            }
            None => errors.push(string_type_error(&format!("{field}.{key}"), value)),
        }
    }
    errors
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitively) and keys
/// plus values add up to at most 256 KiB.
pub fn validate_annotations(annotations: &Value, field: &str) -> Vec<FieldError> {
    let Some(map) = annotations.as_object() else {
        return non_string_map(annotations, field);
    };
    let mut errors = Vec::new();
    for (key, value) in map {
        let key_value = Value::String(key.clone());
        for msg in qualified_name_errors(&key.to_lowercase()) {
            errors.push(FieldError::invalid(field, &key_value, msg));
        }
        if !value.is_string() {
            errors.push(string_type_error(&format!("{field}.{key}"), value));
        }
    }
    if annotations_size(annotations) > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        errors.push(FieldError::new(
            CauseType::FieldValueTooLong,
            field,
            format!("Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT_BYTES} bytes"),
        ));
    }
    errors
}

/// Bytes of all annotation keys and string values, as Kubernetes counts them.
pub fn annotations_size(annotations: &Value) -> usize {
    annotations.as_object().map_or(0, |map| map.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum())
}

fn non_string_map(value: &Value, field: &str) -> Vec<FieldError> {
    if value.is_null() {
        return Vec::new();
    }
    vec![FieldError::new(
        CauseType::FieldValueTypeInvalid,
        field,
        format!("Invalid value: {value}: must be a map of strings"),
    )]
}

fn string_type_error(field: &str, value: &Value) -> FieldError {
    FieldError::new(CauseType::FieldValueTypeInvalid, field, format!("Invalid value: {value}: must be of type string"))
}

/// `MaxLenError`.
fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `RegexError`, including its historical double space between examples.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!("{msg} (e.g. {}regex used for validation is '{fmt}')", examples.join(" or "))
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, or with `alpha_first` `[a-z]([-a-z0-9]*[a-z0-9])?`.
fn is_dns_label(value: &str, alpha_first: bool) -> bool {
    let bytes = value.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    let first_ok = if alpha_first { first.is_ascii_lowercase() } else { is_lower_alnum(*first) };
    first_ok && is_lower_alnum(*last) && bytes.iter().all(|b| is_lower_alnum(*b) || *b == b'-')
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_qualified_token(value: &str) -> bool {
    let bytes = value.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `<namespace>.<name>`: how OCM names a namespaced object in a label value or in another
/// object's name (a root policy's replicas, a ManifestWorkReplicaSet's works).
pub fn dotted_key(namespace: &str, name: &str) -> String {
    format!("{namespace}.{name}")
}

/// The namespace and name of a [`dotted_key`]. Namespaces hold no dots, so the first one
/// separates them.
pub fn split_dotted_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('.').filter(|(namespace, name)| !namespace.is_empty() && !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    #[test]
    fn subdomain_names() {
        for ok in ["a", "example.com", "cluster-1", "a.b-c.d", "0", "x".repeat(253).as_str()] {
            assert_eq!(validate_name(NameFormat::Dns1123Subdomain, ok), Ok(()), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", ".a", "a_b", "a/b", "é"] {
            assert_eq!(validate_name(NameFormat::Dns1123Subdomain, bad), Err(SUBDOMAIN_MSG.to_string()), "{bad}");
        }
    }

    #[test]
    fn subdomain_too_long_reports_both_problems_in_order() {
        let long = "a".repeat(254);
        assert_eq!(
            name_errors(NameFormat::Dns1123Subdomain, &long, false),
            vec!["must be no more than 253 characters".to_string()]
        );
        let long_bad = format!("{}_", "a".repeat(253));
        let errors = name_errors(NameFormat::Dns1123Subdomain, &long_bad, false);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0], "must be no more than 253 characters");
        assert_eq!(errors[1], SUBDOMAIN_MSG);
    }

    #[test]
    fn label_names() {
        assert_eq!(validate_name(NameFormat::Dns1123Label, "open-cluster-management"), Ok(()));
        assert_eq!(
            validate_name(NameFormat::Dns1123Label, "a.b"),
            Err("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string())
        );
        let errors = name_errors(NameFormat::Dns1123Label, &"a".repeat(64), false);
        assert_eq!(errors, vec!["must be no more than 63 characters".to_string()]);
    }

    #[test]
    fn generate_name_prefix_may_end_in_dash() {
        assert!(name_errors(NameFormat::Dns1123Subdomain, "work-", true).is_empty());
        assert!(!name_errors(NameFormat::Dns1123Subdomain, "work-", false).is_empty());
        assert!(!name_errors(NameFormat::Dns1123Label, "Work-", true).is_empty());
    }

    #[test]
    fn path_segment_names() {
        assert_eq!(validate_name(NameFormat::PathSegment, "Any Name:1"), Ok(()));
        assert_eq!(validate_name(NameFormat::PathSegment, ".."), Err("may not be '..'".into()));
        assert_eq!(
            validate_name(NameFormat::PathSegment, "a/b%c"),
            Err("may not contain '/', may not contain '%'".into())
        );
        assert!(path_segment_errors(".", true).is_empty());
    }

    #[test]
    fn dns1035_labels() {
        assert!(dns1035_label_errors("managedcluster").is_empty());
        assert_eq!(
            dns1035_label_errors("1abc"),
            vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string()]
        );
    }

    #[test]
    fn label_keys() {
        for ok in ["app", "cluster.open-cluster-management.io/clusterset", "A_b.C-9", "a/b"] {
            assert_eq!(validate_label_key(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_label_key("/a"), Err("prefix part must be non-empty".into()));
        assert_eq!(
            validate_label_key("a/"),
            Err(format!(
                "name part must be non-empty, name part {}",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, QUALIFIED_EXAMPLES)
            ))
        );
        assert_eq!(validate_label_key("Example.com/a"), Err(format!("prefix part {SUBDOMAIN_MSG}")));
        assert_eq!(
            validate_label_key("a/b/c"),
            Err(String::from(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ))
        );
        assert_eq!(
            validate_label_key(&"a".repeat(64)),
            Err(String::from("name part must be no more than 63 characters"))
        );
        assert_eq!(
            validate_label_key("-a"),
            Err(String::from(
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ))
        );
    }

    #[test]
    fn label_values() {
        for ok in ["", "a", "true", "v1.2_3-x", &"a".repeat(63)] {
            assert_eq!(validate_label_value(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            validate_label_value("a b"),
            Err(String::from(
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ))
        );
        assert_eq!(validate_label_value(&"a".repeat(64)), Err(String::from("must be no more than 63 characters")));
    }

    #[test]
    fn labels_map() {
        let labels = json!({"app": "web", "bad key": "x", "tier": "a b", "n": 1});
        let errors = validate_labels(&labels, "metadata.labels");
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(errors[0].field, "metadata.labels");
        assert!(errors[0].message.starts_with("Invalid value: \"bad key\": name part must consist"));
        assert!(errors[1].message.starts_with("Invalid value: \"a b\": a valid label"));
        assert_eq!(errors[2].cause, CauseType::FieldValueTypeInvalid);
        assert!(validate_labels(&Value::Null, "metadata.labels").is_empty());
        assert_eq!(validate_labels(&json!("x"), "metadata.labels").len(), 1);
    }

    #[test]
    fn annotations_map() {
        let ok = json!({"Example.com/Some-Key": "anything at all"});
        assert!(validate_annotations(&ok, "metadata.annotations").is_empty());
        let big = json!({"k": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES)});
        let errors = validate_annotations(&big, "metadata.annotations");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].cause, CauseType::FieldValueTooLong);
        assert_eq!(errors[0].to_message(), "metadata.annotations: Too long: may not be more than 262144 bytes");
        let exact = json!({"k": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES - 1)});
        assert_eq!(annotations_size(&exact), TOTAL_ANNOTATION_SIZE_LIMIT_BYTES);
        assert!(validate_annotations(&exact, "metadata.annotations").is_empty());
        let bad_key = json!({"a/b/c": "v"});
        assert_eq!(validate_annotations(&bad_key, "metadata.annotations").len(), 1);
    }
}
