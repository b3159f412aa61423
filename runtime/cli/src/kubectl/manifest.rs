//! Reading manifests for `apply -f` and `delete -f`: files, directories and stdin holding
//! multi-document YAML or JSON, `kind: List` expanded.

use flotilla_apimachinery::json_kind;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;

/// One object read from a manifest source.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The file it came from (`STDIN` for `-`).
    pub source: String,
    /// 1-based document number within the source.
    pub document: usize,
    /// 1-based item number when the document was a `List`.
    pub item: Option<usize>,
    pub object: Value,
}

impl Manifest {
    /// `file.yaml (document 2)` or `file.yaml (document 1, item 3)`.
    pub fn location(&self) -> String {
        match self.item {
            Some(item) => format!("{} (document {}, item {item})", self.source, self.document),
            None => format!("{} (document {})", self.source, self.document),
        }
    }

    pub fn str_field(&self, pointer: &str) -> &str {
        self.object.pointer(pointer).and_then(Value::as_str).unwrap_or("")
    }

    pub fn api_version(&self) -> &str {
        self.str_field("/apiVersion")
    }

    pub fn kind(&self) -> &str {
        self.str_field("/kind")
    }

    pub fn name(&self) -> &str {
        self.str_field("/metadata/name")
    }

    pub fn namespace(&self) -> &str {
        self.str_field("/metadata/namespace")
    }
}

/// Everything read from the sources: objects, plus one message per document or file that
/// could not be read (reading goes on after a bad document).
#[derive(Debug, Default)]
pub struct ReadResult {
    pub manifests: Vec<Manifest>,
    pub errors: Vec<String>,
}

/// Reads every `-f` argument: `-` is stdin, a directory contributes its `.yaml`, `.yml` and
/// `.json` files in name order (descending into subdirectories when `recursive`).
pub fn read_sources(paths: &[PathBuf], recursive: bool) -> ReadResult {
    let mut result = ReadResult::default();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => parse_into("STDIN", &text, &mut result),
                Err(e) => result.errors.push(format!("reading STDIN: {e}")),
            }
            continue;
        }
        match files_of(path, recursive) {
            Ok(files) => {
                for file in files {
                    match std::fs::read_to_string(&file) {
                        Ok(text) => parse_into(&file.display().to_string(), &text, &mut result),
                        Err(e) => result.errors.push(format!("reading {}: {e}", file.display())),
                    }
                }
            }
            Err(e) => result.errors.push(format!("{e:#}")),
        }
    }
    result
}

fn files_of(path: &Path, recursive: bool) -> anyhow::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).with_context(|| format!("the path \"{}\" does not exist", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading directory {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                files.extend(files_of(&entry, true)?);
            }
        } else if entry.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json")) {
            files.push(entry);
        }
    }
    Ok(files)
}

/// Splits multi-document YAML at `---` lines (and `...` document ends), as kubectl's YAML
/// reader does. Returns each document's text; content after `--- ` on the separator line
/// starts the next document.
pub fn split_yaml_documents(text: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            docs.push(std::mem::take(&mut current));
            continue;
        }
        if let Some(rest) = line.strip_prefix("--- ").or_else(|| line.strip_prefix("---\t")) {
            docs.push(std::mem::take(&mut current));
            current.push_str(rest);
            current.push('\n');
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push(current);
    docs
}

/// Whether a YAML document holds nothing but blank lines, comments and directives.
fn is_blank_yaml(doc: &str) -> bool {
    doc.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t.starts_with('%')
    })
}

/// Parses one source's text into objects (see [`read_sources`]).
#[cfg(test)]
pub fn parse_text(source: &str, text: &str) -> ReadResult {
    let mut result = ReadResult::default();
    parse_into(source, text, &mut result);
    result
}

fn parse_into(source: &str, text: &str, result: &mut ReadResult) {
    let documents: Vec<Result<Value, String>> = if text.trim_start().starts_with(['{', '[']) {
        // JSON: one or more concatenated values.
        let mut docs = Vec::new();
        for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            match value {
                Ok(v) => docs.push(Ok(v)),
                Err(e) => {
                    docs.push(Err(format!("invalid JSON: {e}")));
                    break; // cannot resynchronise
                }
            }
        }
        docs
    } else {
        split_yaml_documents(text)
            .into_iter()
            .map(|doc| {
                if is_blank_yaml(&doc) {
                    Ok(Value::Null)
                } else {
                    serde_saphyr::from_str::<Value>(&doc).map_err(|e| format!("invalid YAML: {e}"))
                }
            })
            .collect()
    };
    for (i, doc) in documents.into_iter().enumerate() {
        let document = i + 1;
        match doc {
            Err(e) => result.errors.push(format!("{source} (document {document}): {e}")),
            Ok(Value::Null) => {}
            Ok(Value::Array(items)) => push_items(source, document, items, result),
            Ok(Value::Object(map)) => {
                let obj = Value::Object(map);
                if is_list(&obj) {
                    let items = obj.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
                    push_items(source, document, items, result);
                } else {
                    result.manifests.push(Manifest { source: source.to_string(), document, item: None, object: obj });
                }
            }
            Ok(other) => result
                .errors
                .push(format!("{source} (document {document}): expected an object, found {}", json_kind(&other))),
        }
    }
}

fn push_items(source: &str, document: usize, items: Vec<Value>, result: &mut ReadResult) {
    for (j, item) in items.into_iter().enumerate() {
        if item.is_object() {
            result.manifests.push(Manifest { source: source.to_string(), document, item: Some(j + 1), object: item });
        } else if !item.is_null() {
            result.errors.push(format!(
                "{source} (document {document}, item {}): expected an object, found {}",
                j + 1,
                json_kind(&item)
            ));
        }
    }
}

fn is_list(obj: &Value) -> bool {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    (kind == "List" || kind.ends_with("List")) && obj.get("items").is_some_and(Value::is_array)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn splits_documents_at_separators() {
        let text =
            "a: 1\n---\nb: 2\n--- \n\n---\n# only a comment\n---\nc: |\n  x\n  --- not a separator\n...\n--- d: 4\n";
        let docs = split_yaml_documents(text);
        assert_eq!(
            docs,
            vec!["a: 1\n", "b: 2\n", "\n", "# only a comment\n", "c: |\n  x\n  --- not a separator\n", "", "d: 4\n",]
        );
    }

    #[test]
    fn parses_multi_document_yaml_skipping_empty_documents() {
        let text = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n\n# nothing\n---\napiVersion: cluster.open-cluster-management.io/v1\nkind: ManagedCluster\nmetadata:\n  name: c1\nspec:\n  hubAcceptsClient: true\n";
        let r = parse_text("x.yaml", text);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.manifests.len(), 2);
        assert_eq!(r.manifests[0].name(), "a");
        assert_eq!(r.manifests[0].document, 2);
        assert_eq!(r.manifests[1].kind(), "ManagedCluster");
        assert_eq!(r.manifests[1].document, 4);
        assert_eq!(r.manifests[1].location(), "x.yaml (document 4)");
        assert_eq!(r.manifests[1].object["spec"]["hubAcceptsClient"], true);
    }

    #[test]
    fn bad_documents_are_reported_and_the_rest_read() {
        let text = "kind: A\nmetadata: {name: a}\n---\nkind: [unclosed\n---\n42\n---\nkind: B\nmetadata: {name: b}\n";
        let r = parse_text("f.yaml", text);
        assert_eq!(r.manifests.len(), 2);
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert!(r.errors[0].starts_with("f.yaml (document 2): invalid YAML"), "{}", r.errors[0]);
        assert_eq!(r.errors[1], "f.yaml (document 3): expected an object, found an integer");
    }

    #[test]
    fn expands_lists_and_reads_json_streams() {
        let text =
            "apiVersion: v1\nkind: List\nitems:\n- kind: A\n  metadata: {name: a}\n- kind: B\n  metadata: {name: b}\n";
        let r = parse_text("l.yaml", text);
        assert_eq!(r.manifests.len(), 2);
        assert_eq!(r.manifests[1].location(), "l.yaml (document 1, item 2)");

        let json = "{\"kind\": \"A\", \"metadata\": {\"name\": \"a\"}}\n{\"kind\": \"ConfigMapList\", \"items\": [{\"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"c\"}}]}";
        let r = parse_text("j.json", json);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.manifests.len(), 2);
        assert_eq!(r.manifests[1].name(), "c");
        assert_eq!(r.manifests[1].document, 2);
    }

    #[test]
    fn reads_directories_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("b.yaml"), "kind: B\nmetadata: {name: b}\n").expect("w");
        std::fs::write(dir.path().join("a.json"), "{\"kind\": \"A\", \"metadata\": {\"name\": \"a\"}}").expect("w");
        std::fs::write(dir.path().join("notes.txt"), "ignored").expect("w");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/c.yml"), "kind: C\nmetadata: {name: c}\n").expect("w");

        let flat = read_sources(&[dir.path().to_path_buf()], false);
        let kinds: Vec<&str> = flat.manifests.iter().map(Manifest::kind).collect();
        assert_eq!(kinds, ["A", "B"]);
        let deep = read_sources(&[dir.path().to_path_buf()], true);
        let kinds: Vec<&str> = deep.manifests.iter().map(Manifest::kind).collect();
        assert_eq!(kinds, ["A", "B", "C"]);

        let missing = read_sources(&[dir.path().join("nope.yaml")], false);
        assert_eq!(missing.errors.len(), 1);
        assert!(missing.errors[0].contains("nope.yaml"), "{}", missing.errors[0]);
    }
}
