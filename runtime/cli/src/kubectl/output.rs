//! `-o yaml|json|name` printing, shaped like kubectl's (sorted keys, 4-space JSON, `List`).

use serde::Serialize as _;
use serde_json::{Map, Value};

use super::resolve::ResourceInfo;

/// `-o` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Wide,
    Yaml,
    Json,
    Name,
}

/// Sorts object keys recursively, as Go's encoders do for unstructured objects.
pub fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect::<Map<String, Value>>())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// YAML like kubectl's: sorted keys, block style, multi-line strings as literal blocks,
/// long single-line strings never folded.
pub fn to_yaml(v: &Value) -> anyhow::Result<String> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX / 2;
    Ok(serde_saphyr::to_string_with_options(&sorted(v.clone()), options)?)
}

/// JSON like kubectl's: sorted keys, 4-space indent, trailing newline.
pub fn to_json(v: &Value) -> anyhow::Result<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    sorted(v.clone()).serialize(&mut ser)?;
    let mut s = String::from_utf8(out)?;
    s.push('\n');
    Ok(s)
}

/// kubectl's `List` wrapper for several objects.
pub fn list_of(items: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    })
}

/// List items often lack `apiVersion` and `kind`; kubectl fills them in.
pub fn with_type(mut obj: Value, res: &ResourceInfo) -> Value {
    if let Value::Object(map) = &mut obj {
        if !map.contains_key("apiVersion") {
            map.insert("apiVersion".into(), Value::String(res.api_version()));
        }
        if !map.contains_key("kind") {
            map.insert("kind".into(), Value::String(res.kind.clone()));
        }
    }
    obj
}

/// Drops `metadata.managedFields`, which kubectl hides unless `--show-managed-fields`.
pub fn without_managed_fields(mut obj: Value) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    obj
}

/// Prints objects one by one (for `--watch`): YAML documents separated by `---`, JSON
/// objects one after another, or names.
pub struct ObjectStream {
    format: OutputFormat,
    res: ResourceInfo,
    count: usize,
}

impl ObjectStream {
    pub fn new(format: OutputFormat, res: ResourceInfo) -> Self {
        Self { format, res, count: 0 }
    }

    pub fn render(&mut self, obj: Value) -> anyhow::Result<String> {
        let obj = with_type(obj, &self.res);
        let text = match self.format {
            OutputFormat::Yaml => {
                let yaml = to_yaml(&obj)?;
                if self.count > 0 { format!("---\n{yaml}") } else { yaml }
            }
            OutputFormat::Json => to_json(&obj)?,
            OutputFormat::Name | OutputFormat::Wide => format!("{}\n", name_of(&self.res, &obj)),
        };
        self.count += 1;
        Ok(text)
    }
}

/// `kind.group/name`, kubectl's `-o name`.
pub fn name_of(res: &ResourceInfo, obj: &Value) -> String {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    format!("{}/{name}", res.kind_group())
}

/// Prints objects in a machine format; `watch_separator` puts `---` between YAML documents
/// of a stream.
pub fn render_objects(
    format: OutputFormat,
    res: &ResourceInfo,
    objects: Vec<Value>,
    single: bool,
) -> anyhow::Result<String> {
    let objects: Vec<Value> = objects.into_iter().map(|o| with_type(o, res)).collect();
    match format {
        OutputFormat::Name => Ok(objects.iter().map(|o| format!("{}\n", name_of(res, o))).collect()),
        OutputFormat::Yaml | OutputFormat::Json => {
            let value = if single && objects.len() == 1 {
                objects.into_iter().next().unwrap_or(Value::Null)
            } else {
                list_of(objects)
            };
            if format == OutputFormat::Yaml { to_yaml(&value) } else { to_json(&value) }
        }
        OutputFormat::Wide => anyhow::bail!("wide is a table format"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn mc() -> ResourceInfo {
        ResourceInfo {
            group: "cluster.open-cluster-management.io".into(),
            version: "v1".into(),
            kind: "ManagedCluster".into(),
            plural: "managedclusters".into(),
            singular: "managedcluster".into(),
            namespaced: false,
            short_names: vec![],
            verbs: vec![],
            preferred: true,
        }
    }

    #[test]
    fn yaml_is_sorted_and_plain() {
        let obj = json!({
            "spec": {"hubAcceptsClient": true, "b": "x"},
            "metadata": {"name": "c1", "labels": {"z": "1", "a": "2"}},
            "kind": "ManagedCluster",
            "apiVersion": "cluster.open-cluster-management.io/v1",
            "status": {"caBundle": "A".repeat(200), "msg": "line1\nline2\n", "n": "123"}
        });
        let yaml = to_yaml(&obj).expect("yaml");
        let keys: Vec<&str> =
            yaml.lines().filter(|l| !l.starts_with(' ')).map(|l| l.split(':').next().unwrap_or("")).collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec", "status"]);
        assert!(yaml.contains(&format!("caBundle: {}", "A".repeat(200))), "{yaml}");
        assert!(yaml.contains("msg: |"), "{yaml}");
        // Round trip through a YAML parser gives the same value back.
        let back: Value = serde_saphyr::from_str(&yaml).expect("parse");
        assert_eq!(back, obj);
    }

    #[test]
    fn streams_separate_yaml_documents() {
        let mut s = ObjectStream::new(OutputFormat::Yaml, mc());
        let first = s.render(json!({"metadata": {"name": "a"}})).unwrap();
        let second = s.render(json!({"metadata": {"name": "b"}})).unwrap();
        assert!(first.starts_with("apiVersion: "), "{first}");
        assert!(second.starts_with("---\napiVersion: "), "{second}");
        let mut n = ObjectStream::new(OutputFormat::Name, mc());
        assert_eq!(
            n.render(json!({"metadata": {"name": "a"}})).unwrap(),
            "managedcluster.cluster.open-cluster-management.io/a\n"
        );
    }

    #[test]
    fn json_uses_four_spaces_and_sorted_keys() {
        let out = to_json(&json!({"b": 1, "a": {"d": [1], "c": null}})).expect("json");
        assert_eq!(
            out,
            "{\n    \"a\": {\n        \"c\": null,\n        \"d\": [\n            1\n        ]\n    },\n    \"b\": 1\n}\n"
        );
    }

    #[test]
    fn lists_names_and_types() {
        let items = vec![json!({"metadata": {"name": "a"}}), json!({"metadata": {"name": "b"}})];
        let out = render_objects(OutputFormat::Name, &mc(), items.clone(), false).expect("name");
        assert_eq!(
            out,
            "managedcluster.cluster.open-cluster-management.io/a\nmanagedcluster.cluster.open-cluster-management.io/b\n"
        );
        let json = render_objects(OutputFormat::Json, &mc(), items, false).expect("json");
        let v: Value = serde_json::from_str(&json).expect("parse");
        assert_eq!(v["kind"], "List");
        assert_eq!(v["items"][1]["kind"], "ManagedCluster");
        assert_eq!(v["items"][1]["apiVersion"], "cluster.open-cluster-management.io/v1");
        let one =
            render_objects(OutputFormat::Yaml, &mc(), vec![json!({"metadata": {"name": "a"}})], true).expect("yaml");
        assert!(one.starts_with("apiVersion: cluster.open-cluster-management.io/v1\nkind: ManagedCluster\n"), "{one}");
    }
}
