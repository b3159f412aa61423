//! Server-side printing: the `meta.k8s.io/v1` `Table` kube-apiserver returns for
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, built the way the
//! apiextensions-apiserver's CRD table convertor builds it: a `Name` column, then
//! the printer columns (a kind without any gets `Age` from
//! `.metadata.creationTimestamp`, as CRD defaulting adds). Cells are JSONPath
//! results converted to the column type; missing values are null; `date` cells are
//! rendered as a human-readable age, as kube-apiserver does.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::jsonpath::JsonPath;
use crate::resource::{PrinterColumn, ResourceDef};

/// ObjectMeta's documentation of `name`, the description Kubernetes gives the Name column.
const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// What each row carries in `object` (the `includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No `object` in rows.
    None,
    /// A `PartialObjectMetadata` (the default, and what kubectl asks for).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses `includeObject`; absent, empty or unrecognised means `Metadata`
    /// (use [`IncludeObject::try_parse`] to reject unknown values with a 400).
    pub fn parse(value: Option<&str>) -> IncludeObject {
        IncludeObject::try_parse(value).unwrap_or_default()
    }

    /// Parses `includeObject` strictly, as kube-apiserver does: absent or empty means
    /// `Metadata`; an unknown value is an error whose message belongs in a 400
    /// (`ApiError::bad_request`).
    pub fn try_parse(value: Option<&str>) -> Result<IncludeObject, String> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(format!("unrecognized includeObject value: {other:?}")),
        }
    }
}

/// Builds the Table for `objects` (one object for a GET, the items for a LIST).
/// `list_meta` becomes the table's `metadata` (resourceVersion, continue,
/// remainingItemCount). Ages are computed against the current time.
pub fn to_table(def: &ResourceDef, objects: &[Value], include_object: IncludeObject, list_meta: Value) -> Value {
    to_table_at(def, objects, include_object, list_meta, Timestamp::now())
}

/// [`to_table`] with an explicit "now" for the age of `date` columns.
pub fn to_table_at(
    def: &ResourceDef,
    objects: &[Value],
    include_object: IncludeObject,
    list_meta: Value,
    now: Timestamp,
) -> Value {
    let columns = effective_columns(def);
    let paths: Vec<Option<JsonPath>> = columns.iter().map(|c| JsonPath::parse(&c.json_path).ok()).collect();
    let rows: Vec<Value> = objects.iter().map(|obj| row(obj, &columns, &paths, include_object, now)).collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": table_metadata(list_meta),
        "columnDefinitions": column_definitions(def),
        "rows": rows,
    })
}

/// The `columnDefinitions` of a kind's tables: Name first, then its printer columns.
pub fn column_definitions(def: &ResourceDef) -> Vec<Value> {
    let name = json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": NAME_DESCRIPTION,
        "priority": 0,
    });
    let rest = effective_columns(def).into_iter().map(|column| {
        let description = if column.description.is_empty() {
            format!("Custom resource definition column (in JSONPath format): {}", column.json_path)
        } else {
            column.description.clone()
        };
        json!({
            "name": column.name,
            "type": column.type_,
            "format": column.format.clone().unwrap_or_default(),
            "description": description,
            "priority": column.priority,
        })
    });
    std::iter::once(name).chain(rest).collect()
}

/// The printer columns, or the `Age` column CRD defaulting adds when there are none.
fn effective_columns(def: &ResourceDef) -> Vec<PrinterColumn> {
    if !def.printer_columns.is_empty() {
        return def.printer_columns.clone();
    }
    vec![PrinterColumn {
        name: "Age".to_string(),
        type_: "date".to_string(),
        format: None,
        description: String::new(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".to_string(),
    }]
}

fn table_metadata(list_meta: Value) -> Value {
    match list_meta {
        Value::Object(map) => Value::Object(map),
        _ => Value::Object(Map::new()),
    }
}

fn row(
    obj: &Value,
    columns: &[PrinterColumn],
    paths: &[Option<JsonPath>],
    include_object: IncludeObject,
    now: Timestamp,
) -> Value {
    let name = obj.pointer("/metadata/name").cloned().unwrap_or_else(|| json!(""));
    let mut cells = vec![name];
    for (column, path) in columns.iter().zip(paths) {
        let value = path.as_ref().and_then(|p| p.first(obj));
        cells.push(value.map_or(Value::Null, |v| cell(&column.type_, v, now)));
    }
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    match include_object {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row.insert("object".into(), partial_object_metadata(obj));
        }
        IncludeObject::Object => {
            row.insert("object".into(), obj.clone());
        }
    }
    Value::Object(row)
}

fn partial_object_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// `cellForJSONValue`: converts one JSONPath result to the column's type, or null.
fn cell(column_type: &str, value: &Value, now: Timestamp) -> Value {
    match (column_type, value) {
        (_, Value::Null) => Value::Null,
        ("string", v) => Value::String(text(v)),
        ("integer", Value::Number(n)) => n
            .as_i64()
            // Kubernetes truncates floats in integer columns.
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, Value::from),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => Value::String(age(s, now)),
        _ => Value::Null,
    }
}

/// How JSONPath prints a value: strings raw, integral floats as Go prints them ("2"
/// for 2.0), everything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// A creation-style timestamp as an age; "" and "null" are the zero time ("<unknown>").
fn age(timestamp: &str, now: Timestamp) -> String {
    if timestamp.is_empty() || timestamp == "null" {
        return "<unknown>".to_string();
    }
    match timestamp.parse::<Timestamp>() {
        Ok(then) => human_duration(now.as_second() - then.as_second()),
        Err(_) => "<invalid>".to_string(),
    }
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration` for whole seconds.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        let years = hours / 24 / 365;
        return if days == 0 { format!("{years}y") } else { format!("{years}y{days}d") };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::NameFormat;

    fn def(columns: Vec<PrinterColumn>) -> ResourceDef {
        ResourceDef {
            group: "cluster.open-cluster-management.io".into(),
            version: "v1".into(),
            kind: "ManagedCluster".into(),
            list_kind: "ManagedClusterList".into(),
            plural: "managedclusters".into(),
            singular: "managedcluster".into(),
            short_names: vec!["mcl".into()],
            categories: vec![],
            namespaced: false,
            status_subresource: true,
            schema: None,
            printer_columns: columns,
            name_format: NameFormat::Dns1123Subdomain,
            validator: None,
            storage_version: true,
            scale: None,
        }
    }

    fn column(name: &str, type_: &str, path: &str, priority: i32) -> PrinterColumn {
        PrinterColumn {
            name: name.into(),
            type_: type_.into(),
            format: None,
            description: String::new(),
            priority,
            json_path: path.into(),
        }
    }

    fn managed_cluster_columns() -> Vec<PrinterColumn> {
        vec![
            column("Hub Accepted", "boolean", ".spec.hubAcceptsClient", 0),
            column("Managed Cluster URLs", "string", ".spec.managedClusterClientConfigs[*].url", 0),
            column("Joined", "string", ".status.conditions[?(@.type==\"ManagedClusterJoined\")].status", 0),
            column("Replicas", "integer", ".status.replicas", 1),
            column("Ratio", "number", ".status.ratio", 1),
            column("Age", "date", ".metadata.creationTimestamp", 0),
        ]
    }

    fn now() -> Timestamp {
        "2024-01-01T12:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn cluster() -> Value {
        json!({
            "apiVersion": "cluster.open-cluster-management.io/v1",
            "kind": "ManagedCluster",
            "metadata": {"name": "cluster1", "resourceVersion": "7", "creationTimestamp": "2024-01-01T11:55:00Z"},
            "spec": {"hubAcceptsClient": true, "managedClusterClientConfigs": [{"url": "https://c1:6443"}, {"url": "https://c1b:6443"}]},
            "status": {
                "conditions": [{"type": "ManagedClusterJoined", "status": "True"}],
                "replicas": 3.7,
                "ratio": 2
            }
        })
    }

    #[test]
    fn columns_name_first_then_printer_columns() {
        let cols = column_definitions(&def(managed_cluster_columns()));
        assert_eq!(cols.len(), 7);
        assert_eq!(cols[0]["name"], "Name");
        assert_eq!(cols[0]["type"], "string");
        assert_eq!(cols[0]["format"], "name");
        assert_eq!(cols[0]["description"], NAME_DESCRIPTION);
        assert_eq!(cols[1]["name"], "Hub Accepted");
        assert_eq!(
            cols[1]["description"],
            "Custom resource definition column (in JSONPath format): .spec.hubAcceptsClient"
        );
        assert_eq!(cols[4]["priority"], 1);
        assert_eq!(cols[6]["type"], "date");
    }

    #[test]
    fn default_columns_are_name_and_age() {
        let cols = column_definitions(&def(vec![]));
        let names: Vec<&Value> = cols.iter().map(|c| &c["name"]).collect();
        assert_eq!(names, vec!["Name", "Age"]);
        assert_eq!(cols[1]["type"], "date");
        let table = to_table_at(&def(vec![]), &[cluster()], IncludeObject::None, json!({}), now());
        assert_eq!(table["rows"][0]["cells"], json!(["cluster1", "5m"]));
    }

    #[test]
    fn cells_follow_column_types() {
        let table = to_table_at(
            &def(managed_cluster_columns()),
            &[cluster()],
            IncludeObject::Metadata,
            json!({"resourceVersion": "42"}),
            now(),
        );
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(table["metadata"], json!({"resourceVersion": "42"}));
        assert_eq!(table["rows"][0]["cells"], json!(["cluster1", true, "https://c1:6443", "True", 3, 2.0, "5m"]));
    }

    #[test]
    fn missing_values_are_null_and_wrong_types_too() {
        let obj = json!({
            "metadata": {"name": "bare", "creationTimestamp": "not a time"},
            "spec": {"hubAcceptsClient": "yes"},
            "status": {"replicas": "three"}
        });
        let table = to_table_at(&def(managed_cluster_columns()), &[obj], IncludeObject::None, Value::Null, now());
        assert_eq!(table["rows"][0]["cells"], json!(["bare", null, null, null, null, null, "<invalid>"]));
        assert_eq!(table["metadata"], json!({}));
        assert!(table["rows"][0].get("object").is_none());
        let unset = json!({"metadata": {"name": "new", "creationTimestamp": ""}});
        let table = to_table_at(&def(vec![]), &[unset], IncludeObject::None, json!({}), now());
        assert_eq!(table["rows"][0]["cells"], json!(["new", "<unknown>"]));
        let no_meta = json!({"spec": {}});
        let table = to_table_at(&def(vec![]), &[no_meta], IncludeObject::Metadata, json!({}), now());
        assert_eq!(table["rows"][0]["cells"], json!(["", null]));
        assert_eq!(table["rows"][0]["object"]["metadata"], json!({}));
    }

    #[test]
    fn string_columns_print_non_strings_as_json() {
        let cols = vec![
            column("Spec", "string", ".spec", 0),
            column("N", "string", ".n", 0),
            column("F", "string", ".f", 0),
            column("G", "string", ".g", 0),
            column("Flag", "string", ".flag", 0),
        ];
        let obj = json!({"metadata": {"name": "x"}, "spec": {"a": 1}, "n": 5, "f": 2.0, "g": 2.5, "flag": false});
        let table = to_table_at(&def(cols), &[obj], IncludeObject::None, json!({}), now());
        assert_eq!(table["rows"][0]["cells"], json!(["x", "{\"a\":1}", "5", "2", "2.5", "false"]));
    }

    #[test]
    fn include_object_variants() {
        let d = def(managed_cluster_columns());
        let meta = to_table_at(&d, &[cluster()], IncludeObject::Metadata, json!({}), now());
        assert_eq!(
            meta["rows"][0]["object"],
            json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": cluster()["metadata"].clone()
            })
        );
        let full = to_table_at(&d, &[cluster()], IncludeObject::Object, json!({}), now());
        assert_eq!(full["rows"][0]["object"], cluster());
        let empty = to_table(&d, &[], IncludeObject::Object, json!({"continue": "abc"}));
        assert_eq!(empty["rows"], json!([]));
        assert_eq!(empty["metadata"]["continue"], "abc");
    }

    #[test]
    fn include_object_parse() {
        assert_eq!(IncludeObject::parse(None), IncludeObject::Metadata);
        assert_eq!(IncludeObject::parse(Some("")), IncludeObject::Metadata);
        assert_eq!(IncludeObject::parse(Some("None")), IncludeObject::None);
        assert_eq!(IncludeObject::parse(Some("Object")), IncludeObject::Object);
        assert_eq!(IncludeObject::parse(Some("Metadata")), IncludeObject::Metadata);
        assert_eq!(IncludeObject::parse(Some("all")), IncludeObject::Metadata);
        assert_eq!(IncludeObject::try_parse(Some("None")), Ok(IncludeObject::None));
        assert_eq!(IncludeObject::try_parse(Some("all")), Err("unrecognized includeObject value: \"all\"".to_string()));
    }

    #[test]
    fn human_durations_match_kubernetes() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (50 * 3600, "2d2h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (8 * 365 * 86400, "8y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(seconds), expected, "{seconds}");
        }
    }
}
