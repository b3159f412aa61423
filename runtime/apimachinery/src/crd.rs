//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`): turning one into the
//! [`ResourceDef`]s it serves, and the validation Kubernetes applies to the CRD object
//! itself before accepting it.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::resource::{NameFormat, PrinterColumn, ResourceDef, ScaleSubresource};
use crate::status::{CauseType, FieldError};

/// The types `additionalPrinterColumns[].type` may take.
const COLUMN_TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];
/// The formats `additionalPrinterColumns[].format` may take.
const COLUMN_FORMATS: &[&str] = &["int32", "int64", "float", "double", "byte", "date", "date-time", "password"];
const SCOPES: &[&str] = &["Cluster", "Namespaced"];

/// One [`ResourceDef`] per served version of a `apiextensions.k8s.io/v1`
/// CustomResourceDefinition, in the order the CRD lists its versions.
///
/// Defaults as Kubernetes applies them: `listKind` is `kind + "List"`, `singular` is the
/// lowercased kind. The first missing or malformed field is reported as
/// `field.path: message`, for example `spec.names.plural: Required value`.
/// Rules about the CRD as a whole (name, exactly one storage version) are
/// [`validate_crd`]'s job.
pub fn resource_defs_from_crd(crd: &Value) -> Result<Vec<ResourceDef>, String> {
    let fail = |err: FieldError| err.to_message();
    let spec = crd.get("spec").and_then(Value::as_object).ok_or_else(|| fail(FieldError::required("spec")))?;
    let group = required_str(spec, "group", "spec.group").map_err(fail)?;
    let names = spec.get("names").and_then(Value::as_object).ok_or_else(|| fail(FieldError::required("spec.names")))?;
    let kind = required_str(names, "kind", "spec.names.kind").map_err(fail)?;
    let plural = required_str(names, "plural", "spec.names.plural").map_err(fail)?;
    let list_kind =
        optional_str(names, "listKind", "spec.names.listKind").map_err(fail)?.unwrap_or_else(|| format!("{kind}List"));
    let singular =
        optional_str(names, "singular", "spec.names.singular").map_err(fail)?.unwrap_or_else(|| kind.to_lowercase());
    let short_names = string_list(names, "shortNames", "spec.names.shortNames").map_err(fail)?;
    let categories = string_list(names, "categories", "spec.names.categories").map_err(fail)?;
    let scope = required_str(spec, "scope", "spec.scope").map_err(fail)?;
    let namespaced = match scope.as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        _ => return Err(fail(FieldError::not_supported("spec.scope", &json!(scope), &scope_values()))),
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|versions| !versions.is_empty())
        .ok_or_else(|| fail(FieldError::required("spec.versions")))?;

    let mut defs = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let version =
            version.as_object().ok_or_else(|| fail(FieldError::type_invalid(path.clone(), version, "object")))?;
        let name = required_str(version, "name", &format!("{path}.name")).map_err(fail)?;
        let served = optional_bool(version, "served", &format!("{path}.served")).map_err(fail)?;
        let storage = optional_bool(version, "storage", &format!("{path}.storage")).map_err(fail)?;
        if !served.unwrap_or(false) {
            continue;
        }
        let schema = match version.get("schema") {
            None | Some(Value::Null) => None,
            Some(schema) => match schema.get("openAPIV3Schema") {
                None | Some(Value::Null) => None,
                Some(raw @ Value::Object(_)) => Some(raw.clone()),
                Some(other) => {
                    return Err(fail(FieldError::type_invalid(
                        format!("{path}.schema.openAPIV3Schema"),
                        other,
                        "object",
                    )));
                }
            },
        };
        let status_subresource =
            version.get("subresources").and_then(|sub| sub.get("status")).is_some_and(|status| !status.is_null());
        let printer_columns = printer_columns(version, &path).map_err(fail)?;
        defs.push(ResourceDef {
            group: group.clone(),
            version: name,
            kind: kind.clone(),
            list_kind: list_kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            short_names: short_names.clone(),
            categories: categories.clone(),
            namespaced,
            status_subresource,
            schema,
            printer_columns,
            name_format: NameFormat::Dns1123Subdomain,
            validator: None,
            storage_version: storage.unwrap_or(false),
            scale: version.get("subresources").and_then(|s| s.get("scale")).filter(|s| s.is_object()).map(|scale| {
                let path = |key: &str| scale.get(key).and_then(Value::as_str).map(str::to_string);
                ScaleSubresource {
                    spec_replicas_path: path("specReplicasPath").unwrap_or_else(|| ".spec.replicas".into()),
                    status_replicas_path: path("statusReplicasPath").unwrap_or_else(|| ".status.replicas".into()),
                    label_selector_path: path("labelSelectorPath"),
                }
            }),
        });
    }
    Ok(defs)
}

/// The main rules Kubernetes enforces on a CustomResourceDefinition object: the name is
/// `<plural>.<group>`, the group is a domain with a dot, the names are present and
/// well-formed, the scope is `Cluster` or `Namespaced`, versions are unique, each has a
/// schema, exactly one is the storage version, and printer columns are well-formed.
pub fn validate_crd(crd: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(spec) = crd.get("spec").and_then(Value::as_object) else {
        errs.push(FieldError::required("spec"));
        return errs;
    };

    let group = match spec.get("group") {
        None | Some(Value::Null) => {
            errs.push(FieldError::required("spec.group"));
            None
        }
        Some(Value::String(g)) if g.is_empty() => {
            errs.push(FieldError::required("spec.group"));
            None
        }
        Some(Value::String(g)) => {
            if !is_dns1123_subdomain(g) {
                errs.push(FieldError::invalid("spec.group", &json!(g), DNS1123_SUBDOMAIN_MSG));
            } else if !g.contains('.') {
                errs.push(FieldError::invalid("spec.group", &json!(g), "should be a domain with at least one dot"));
            }
            Some(g.as_str())
        }
        Some(other) => {
            errs.push(FieldError::type_invalid("spec.group", other, "string"));
            None
        }
    };

    let plural = validate_names(spec, &mut errs);

    if let (Some(plural), Some(group)) = (plural.as_deref(), group) {
        let expected = format!("{plural}.{group}");
        match crd.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str) {
            Some(name) if name == expected => {}
            Some(name) => errs.push(FieldError::invalid(
                "metadata.name",
                &json!(name),
                "must be spec.names.plural+\".\"+spec.group",
            )),
            None => errs.push(FieldError::required("metadata.name")),
        }
    }

    match spec.get("scope") {
        None | Some(Value::Null) => errs.push(FieldError::required("spec.scope")),
        Some(Value::String(s)) if s.is_empty() => errs.push(FieldError::required("spec.scope")),
        Some(scope @ Value::String(s)) if !SCOPES.contains(&s.as_str()) => {
            errs.push(FieldError::not_supported("spec.scope", scope, &scope_values()));
        }
        Some(Value::String(_)) => {}
        Some(other) => errs.push(FieldError::type_invalid("spec.scope", other, "string")),
    }

    validate_versions(spec, &mut errs);
    errs
}

/// Checks `spec.names`; returns the plural when it is usable for the name check.
fn validate_names(spec: &Map<String, Value>, errs: &mut Vec<FieldError>) -> Option<String> {
    let Some(names) = spec.get("names").and_then(Value::as_object) else {
        errs.push(FieldError::required("spec.names"));
        return None;
    };
    let mut check_label = |field: &str, lower: bool| -> Option<String> {
        let path = format!("spec.names.{field}");
        match names.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let candidate = if lower { s.to_lowercase() } else { s.clone() };
                if !s.is_empty() && !is_dns1035_label(&candidate) {
                    errs.push(FieldError::invalid(path, &json!(s), DNS1035_LABEL_MSG));
                }
                Some(s.clone())
            }
            Some(other) => {
                errs.push(FieldError::type_invalid(path, other, "string"));
                None
            }
        }
    };
    let plural = check_label("plural", false).filter(|p| !p.is_empty());
    check_label("singular", false);
    let kind = check_label("kind", true).filter(|k| !k.is_empty());
    let list_kind = check_label("listKind", true);
    if plural.is_none() {
        errs.push(FieldError::required("spec.names.plural"));
    }
    if kind.is_none() {
        errs.push(FieldError::required("spec.names.kind"));
    }
    if let (Some(kind), Some(list_kind)) = (kind.as_deref(), list_kind.as_deref())
        && kind == list_kind
    {
        errs.push(FieldError::invalid(
            "spec.names.listKind",
            &json!(list_kind),
            "kind and listKind may not be the same",
        ));
    }
    for list in ["shortNames", "categories"] {
        let path = format!("spec.names.{list}");
        match names.get(list) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                let mut seen = HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    match item.as_str() {
                        None => errs.push(FieldError::type_invalid(item_path, item, "string")),
                        Some(s) => {
                            if list == "shortNames" && !is_dns1035_label(s) {
                                errs.push(FieldError::invalid(item_path.clone(), item, DNS1035_LABEL_MSG));
                            }
                            if !seen.insert(s) {
                                errs.push(FieldError::new(
                                    CauseType::FieldValueDuplicate,
                                    item_path,
                                    format!("Duplicate value: {item}"),
                                ));
                            }
                        }
                    }
                }
            }
            Some(other) => errs.push(FieldError::type_invalid(path, other, "array")),
        }
    }
    plural
}

fn validate_versions(spec: &Map<String, Value>, errs: &mut Vec<FieldError>) {
    let versions = match spec.get("versions") {
        None | Some(Value::Null) => {
            errs.push(FieldError::required("spec.versions"));
            return;
        }
        Some(Value::Array(v)) if v.is_empty() => {
            errs.push(FieldError::required("spec.versions"));
            return;
        }
        Some(Value::Array(v)) => v,
        Some(other) => {
            errs.push(FieldError::type_invalid("spec.versions", other, "array"));
            return;
        }
    };
    let mut storage_count = 0usize;
    let mut seen = HashSet::new();
    for (i, version) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let Some(version) = version.as_object() else {
            errs.push(FieldError::type_invalid(path, version, "object"));
            continue;
        };
        match version.get("name") {
            Some(Value::String(name)) if !name.is_empty() => {
                if !is_dns1035_label(name) {
                    errs.push(FieldError::invalid(format!("{path}.name"), &json!(name), DNS1035_LABEL_MSG));
                }
                if !seen.insert(name.as_str()) {
                    errs.push(FieldError::new(
                        CauseType::FieldValueDuplicate,
                        format!("{path}.name"),
                        format!("Duplicate value: {}", json!(name)),
                    ));
                }
            }
            Some(Value::String(_)) | None | Some(Value::Null) => {
                errs.push(FieldError::required(format!("{path}.name")))
            }
            Some(other) => errs.push(FieldError::type_invalid(format!("{path}.name"), other, "string")),
        }
        for flag in ["served", "storage"] {
            match version.get(flag) {
                None | Some(Value::Null) | Some(Value::Bool(_)) => {}
                Some(other) => errs.push(FieldError::type_invalid(format!("{path}.{flag}"), other, "boolean")),
            }
        }
        if version.get("storage").and_then(Value::as_bool).unwrap_or(false) {
            storage_count += 1;
        }
        match version.get("schema").and_then(|s| s.get("openAPIV3Schema")) {
            None | Some(Value::Null) => {
                errs.push(FieldError::new(
                    CauseType::FieldValueRequired,
                    format!("{path}.schema.openAPIV3Schema"),
                    "Required value: schemas are required",
                ));
            }
            Some(Value::Object(_)) => {}
            Some(other) => {
                errs.push(FieldError::type_invalid(format!("{path}.schema.openAPIV3Schema"), other, "object"))
            }
        }
        if let Err(err) = printer_columns(version, &path) {
            errs.push(err);
        }
    }
    if storage_count != 1 {
        let summary: Vec<Value> = versions
            .iter()
            .map(|v| {
                json!({
                    "name": v.get("name").cloned().unwrap_or(Value::Null),
                    "storage": v.get("storage").cloned().unwrap_or(Value::Bool(false)),
                })
            })
            .collect();
        errs.push(FieldError::invalid(
            "spec.versions",
            &Value::Array(summary),
            "must have exactly one version marked as storage version",
        ));
    }
}

/// The printer columns of one version; the first malformed field is the error.
fn printer_columns(version: &Map<String, Value>, path: &str) -> Result<Vec<PrinterColumn>, FieldError> {
    let columns_path = format!("{path}.additionalPrinterColumns");
    let columns = match version.get("additionalPrinterColumns") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(columns)) => columns,
        Some(other) => return Err(FieldError::type_invalid(columns_path, other, "array")),
    };
    let mut out = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let path = format!("{columns_path}[{i}]");
        let column = column.as_object().ok_or_else(|| FieldError::type_invalid(path.clone(), column, "object"))?;
        let name = required_str(column, "name", &format!("{path}.name"))?;
        let type_ = required_str(column, "type", &format!("{path}.type"))?;
        if !COLUMN_TYPES.contains(&type_.as_str()) {
            let allowed: Vec<Value> = COLUMN_TYPES.iter().map(|t| json!(t)).collect();
            return Err(FieldError::not_supported(format!("{path}.type"), &json!(type_), &allowed));
        }
        let format = optional_str(column, "format", &format!("{path}.format"))?.filter(|f| !f.is_empty());
        if let Some(format) = &format
            && !COLUMN_FORMATS.contains(&format.as_str())
        {
            let allowed: Vec<Value> = COLUMN_FORMATS.iter().map(|t| json!(t)).collect();
            return Err(FieldError::not_supported(format!("{path}.format"), &json!(format), &allowed));
        }
        let json_path = required_str(column, "jsonPath", &format!("{path}.jsonPath"))?;
        let description = optional_str(column, "description", &format!("{path}.description"))?.unwrap_or_default();
        let priority = match column.get("priority") {
            None | Some(Value::Null) => 0,
            Some(value) => {
                let priority = value
                    .as_i64()
                    .ok_or_else(|| FieldError::type_invalid(format!("{path}.priority"), value, "integer"))?;
                if priority < 0 {
                    return Err(FieldError::invalid(
                        format!("{path}.priority"),
                        value,
                        "must be greater than or equal to 0",
                    ));
                }
                i32::try_from(priority)
                    .map_err(|_| FieldError::invalid(format!("{path}.priority"), value, "must fit in int32"))?
            }
        };
        out.push(PrinterColumn { name, type_, format, description, priority, json_path });
    }
    Ok(out)
}

fn scope_values() -> Vec<Value> {
    SCOPES.iter().map(|s| json!(s)).collect()
}

fn required_str(obj: &Map<String, Value>, key: &str, path: &str) -> Result<String, FieldError> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        None | Some(Value::Null) | Some(Value::String(_)) => Err(FieldError::required(path)),
        Some(other) => Err(FieldError::type_invalid(path, other, "string")),
    }
}

fn optional_str(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(FieldError::type_invalid(path, other, "string")),
    }
}

fn optional_bool(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<bool>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(FieldError::type_invalid(path, other, "boolean")),
    }
}

fn string_list(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<String>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| FieldError::type_invalid(format!("{path}[{i}]"), item, "string"))
            })
            .collect(),
        Some(other) => Err(FieldError::type_invalid(path, other, "array")),
    }
}

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";

fn is_dns1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sample() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"], "categories": ["all"]},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": true,
                        "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object"}},
                        "subresources": {"status": {}},
                        "additionalPrinterColumns": [
                            {"name": "Ready", "type": "string", "jsonPath": ".status.ready", "description": "d", "priority": 1},
                            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                        ]
                    },
                    {
                        "name": "v1beta1",
                        "served": true,
                        "storage": false,
                        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
                    },
                    {"name": "v1alpha1", "served": false, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}}
                ]
            }
        })
    }

    #[test]
    fn converts_served_versions_with_defaults() {
        let defs = resource_defs_from_crd(&sample()).unwrap();
        assert_eq!(defs.len(), 2);
        let v1 = &defs[0];
        assert_eq!(v1.group, "example.com");
        assert_eq!(v1.version, "v1");
        assert_eq!(v1.kind, "Widget");
        assert_eq!(v1.list_kind, "WidgetList");
        assert_eq!(v1.singular, "widget");
        assert_eq!(v1.plural, "widgets");
        assert_eq!(v1.short_names, vec!["wd"]);
        assert_eq!(v1.categories, vec!["all"]);
        assert!(v1.namespaced);
        assert!(v1.status_subresource);
        assert!(v1.storage_version);
        assert_eq!(v1.schema, Some(json!({"type": "object"})));
        assert_eq!(v1.printer_columns.len(), 2);
        assert_eq!(v1.printer_columns[0].name, "Ready");
        assert_eq!(v1.printer_columns[0].priority, 1);
        assert_eq!(v1.printer_columns[0].description, "d");
        assert_eq!(v1.printer_columns[1].type_, "date");
        assert_eq!(v1.printer_columns[1].json_path, ".metadata.creationTimestamp");
        assert_eq!(v1.api_version(), "example.com/v1");
        let beta = &defs[1];
        assert!(!beta.status_subresource);
        assert!(!beta.storage_version);
        assert!(beta.printer_columns.is_empty());
    }

    #[test]
    fn conversion_errors_name_the_field() {
        let mut crd = sample();
        crd["spec"]["names"].as_object_mut().unwrap().remove("plural");
        assert_eq!(resource_defs_from_crd(&crd).unwrap_err(), "spec.names.plural: Required value");

        let mut crd = sample();
        crd["spec"]["scope"] = json!("Global");
        let err = resource_defs_from_crd(&crd).unwrap_err();
        assert!(err.starts_with("spec.scope: Unsupported value: \"Global\""), "{err}");

        let mut crd = sample();
        crd["spec"]["versions"][0]["additionalPrinterColumns"][0]["type"] = json!("float");
        let err = resource_defs_from_crd(&crd).unwrap_err();
        assert!(err.starts_with("spec.versions[0].additionalPrinterColumns[0].type: Unsupported value"), "{err}");

        let mut crd = sample();
        crd["spec"]["versions"][1]["name"] = json!(7);
        let err = resource_defs_from_crd(&crd).unwrap_err();
        assert!(err.starts_with("spec.versions[1].name: Invalid value: 7"), "{err}");

        assert_eq!(resource_defs_from_crd(&json!({})).unwrap_err(), "spec: Required value");
    }

    #[test]
    fn valid_crd_has_no_errors() {
        assert_eq!(validate_crd(&sample()), Vec::new());
    }

    fn fields(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn name_must_be_plural_dot_group() {
        let mut crd = sample();
        crd["metadata"]["name"] = json!("widget.example.com");
        let errs = validate_crd(&crd);
        assert_eq!(fields(&errs), vec!["metadata.name"]);
        assert!(errs[0].message.contains("must be spec.names.plural+\".\"+spec.group"));
    }

    #[test]
    fn exactly_one_storage_version() {
        let mut crd = sample();
        crd["spec"]["versions"][1]["storage"] = json!(true);
        let errs = validate_crd(&crd);
        assert_eq!(fields(&errs), vec!["spec.versions"]);
        assert!(errs[0].message.contains("exactly one version marked as storage version"));

        let mut crd = sample();
        crd["spec"]["versions"][0]["storage"] = json!(false);
        assert_eq!(fields(&validate_crd(&crd)), vec!["spec.versions"]);
    }

    #[test]
    fn required_names_scope_and_group() {
        let mut crd = sample();
        crd["spec"]["names"] = json!({});
        crd["spec"]["scope"] = json!("Everywhere");
        crd["spec"]["group"] = json!("example");
        let errs = validate_crd(&crd);
        assert_eq!(fields(&errs), vec!["spec.group", "spec.names.plural", "spec.names.kind", "spec.scope"]);
        assert_eq!(errs[3].cause, CauseType::FieldValueNotSupported);

        let mut crd = sample();
        crd["spec"].as_object_mut().unwrap().remove("scope");
        crd["spec"].as_object_mut().unwrap().remove("group");
        assert_eq!(fields(&validate_crd(&crd)), vec!["spec.group", "spec.scope"]);
    }

    #[test]
    fn version_rules() {
        let mut crd = sample();
        crd["spec"]["versions"][1]["name"] = json!("v1");
        crd["spec"]["versions"][2]["schema"] = json!({});
        crd["spec"]["versions"][0]["additionalPrinterColumns"][1]["priority"] = json!(-1);
        let errs = validate_crd(&crd);
        assert_eq!(
            fields(&errs),
            vec![
                "spec.versions[0].additionalPrinterColumns[1].priority",
                "spec.versions[1].name",
                "spec.versions[2].schema.openAPIV3Schema",
            ]
        );

        let mut crd = sample();
        crd["spec"]["versions"] = json!([]);
        assert_eq!(fields(&validate_crd(&crd)), vec!["spec.versions"]);
    }

    #[test]
    fn names_are_well_formed() {
        let mut crd = sample();
        crd["spec"]["names"]["listKind"] = json!("Widget");
        crd["spec"]["names"]["shortNames"] = json!(["wd", "Bad_Name", "wd"]);
        let errs = validate_crd(&crd);
        assert_eq!(fields(&errs), vec!["spec.names.listKind", "spec.names.shortNames[1]", "spec.names.shortNames[2]"]);
    }

    #[test]
    fn dns_helpers() {
        assert!(is_dns1123_subdomain("cluster.open-cluster-management.io"));
        assert!(!is_dns1123_subdomain("Cluster.io"));
        assert!(is_dns1035_label("v1beta1"));
        assert!(!is_dns1035_label("1v"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
    }
}
