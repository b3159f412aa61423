//! Sets of field paths and their `FieldsV1` JSON form, after
//! `sigs.k8s.io/structured-merge-diff/fieldpath`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of a map: `f:name` in FieldsV1, `.name` in messages.
    Field(String),
    /// An item of a map list, by its key fields, held as canonical JSON (keys
    /// sorted, compact): `k:{"name":"web"}`, `[name="web"]` in messages.
    Key(String),
    /// An item of a set list, by its value, held as canonical JSON: `v:"x"`.
    Value(String),
    /// An item by position (lists whose items cannot be keyed): `i:3`.
    Index(usize),
}

impl PathElement {
    /// The element for a map-list item with these key fields.
    pub fn key<'a>(fields: impl IntoIterator<Item = (&'a str, &'a Value)>) -> PathElement {
        let object: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        PathElement::Key(canonical_json(&Value::Object(object)))
    }

    /// The element for a set-list item.
    pub fn value(value: &Value) -> PathElement {
        PathElement::Value(canonical_json(value))
    }

    /// The FieldsV1 key for this element (`f:name`, `k:{...}`, `v:...`, `i:N`).
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(json) => format!("k:{json}"),
            PathElement::Value(json) => format!("v:{json}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a FieldsV1 key.
    pub fn from_fields_v1_key(key: &str) -> Result<PathElement, String> {
        let Some((kind, rest)) = key.split_once(':') else {
            return Err(format!("invalid FieldsV1 key {key:?}: missing prefix"));
        };
        let parse_json =
            || serde_json::from_str::<Value>(rest).map_err(|e| format!("invalid FieldsV1 key {key:?}: {e}"));
        match kind {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => match parse_json()? {
                key_object @ Value::Object(_) => Ok(PathElement::Key(canonical_json(&key_object))),
                _ => Err(format!("invalid FieldsV1 key {key:?}: keys must be a JSON object")),
            },
            "v" => Ok(PathElement::Value(canonical_json(&parse_json()?))),
            "i" => rest.parse().map(PathElement::Index).map_err(|e| format!("invalid FieldsV1 key {key:?}: {e}")),
            _ => Err(format!("invalid FieldsV1 key {key:?}: unknown prefix {kind:?}")),
        }
    }
}

impl fmt::Display for PathElement {
    /// As structured-merge-diff prints paths in conflict messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(json) => match serde_json::from_str::<Map<String, Value>>(json) {
                Ok(fields) => {
                    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    write!(f, "[{}]", parts.join(","))
                }
                Err(_) => write!(f, "[{json}]"),
            },
            PathElement::Value(json) => write!(f, "[={json}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the root of an object, printed like `.spec.containers[name="web"].image`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FieldPath(pub Vec<PathElement>);

impl FieldPath {
    /// A path of plain field names (`FieldPath::fields(&["spec", "replicas"])`).
    pub fn fields(names: &[&str]) -> FieldPath {
        FieldPath(names.iter().map(|n| PathElement::Field(n.to_string())).collect())
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|pe| write!(f, "{pe}"))
    }
}

/// A set of field paths, as managed fields record them. A path may be a member
/// (owned itself) and also have children (paths below it that are owned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    /// Never holds an empty set.
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub fn new() -> Self {
        FieldSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds a path (the empty path, the object itself, is never a member).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn contains(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    pub(crate) fn has_member(&self, element: &PathElement) -> bool {
        self.members.contains(element)
    }

    /// The set of paths below `element`.
    pub fn child(&self, element: &PathElement) -> Option<&FieldSet> {
        self.children.get(element)
    }

    pub(crate) fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Paths in `self` that are not in `other`. A member is removed only by the same
    /// member: owning a parent does not remove owned children, nor the reverse.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(pe.clone(), rest);
            }
        }
        FieldSet { members, children }
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(pe.clone(), both);
                }
            }
        }
        FieldSet { members, children }
    }

    /// The same set where every field with owned paths below it is owned too
    /// (structured-merge-diff's `EnsureNamedFieldsAreMembers`, with every map
    /// field treated as named). List items are not added.
    pub(crate) fn with_parents(&self) -> FieldSet {
        let mut out = FieldSet { members: self.members.clone(), children: BTreeMap::new() };
        for (pe, child) in &self.children {
            if matches!(pe, PathElement::Field(_)) {
                out.members.insert(pe.clone());
            }
            out.children.insert(pe.clone(), child.with_parents());
        }
        out
    }

    /// Every member path, in FieldsV1 order.
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<FieldPath>) {
        for pe in self.elements() {
            prefix.push(pe.clone());
            if self.members.contains(pe) {
                out.push(FieldPath(prefix.clone()));
            }
            if let Some(child) = self.children.get(pe) {
                child.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    /// Members and children elements, sorted, each once.
    fn elements(&self) -> BTreeSet<&PathElement> {
        self.members.iter().chain(self.children.keys()).collect()
    }

    /// The `fieldsV1` JSON of a managed fields entry: members are `{}`, and a
    /// member that also has children carries `".": {}`.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        for pe in self.elements() {
            let mut node = Map::new();
            if let Some(child) = self.children.get(pe) {
                if self.members.contains(pe) {
                    node.insert(".".to_string(), Value::Object(Map::new()));
                }
                if let Value::Object(inner) = child.to_fields_v1() {
                    node.extend(inner);
                }
            }
            out.insert(pe.to_fields_v1_key(), Value::Object(node));
        }
        Value::Object(out)
    }

    /// Reads `fieldsV1` JSON.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, String> {
        let Some(object) = value.as_object() else {
            return Err("FieldsV1 must be a JSON object".to_string());
        };
        let mut set = FieldSet::new();
        for (key, node) in object {
            if key == "." {
                continue;
            }
            let pe = PathElement::from_fields_v1_key(key)?;
            let Some(inner) = node.as_object() else {
                return Err(format!("invalid FieldsV1 entry {key:?}: must be a JSON object"));
            };
            if inner.is_empty() || inner.contains_key(".") {
                set.members.insert(pe.clone());
            }
            let child = FieldSet::from_fields_v1(node)?;
            if !child.is_empty() {
                set.children.insert(pe, child);
            }
        }
        Ok(set)
    }
}

/// JSON with object keys sorted at every level and no whitespace: the form
/// FieldsV1 uses for `k:` and `v:` elements, and a stable input for content hashes.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key.as_str()) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
