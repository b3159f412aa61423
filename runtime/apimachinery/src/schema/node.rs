//! The compiled form of one structural schema node, and its compilation from raw
//! `openAPIV3Schema` JSON. Compilation checks everything that can be checked once
//! (types, regexes, CEL rules, list types) so that evaluation never has to fail.

use regex::Regex;
use serde_json::{Map, Value};

use super::cel::{self, Rule};

/// The OpenAPI type of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl JsonType {
    fn parse(name: &str) -> Option<JsonType> {
        Some(match name {
            "object" => JsonType::Object,
            "array" => JsonType::Array,
            "string" => JsonType::String,
            "integer" => JsonType::Integer,
            "number" => JsonType::Number,
            "boolean" => JsonType::Boolean,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::String => "string",
            JsonType::Integer => "integer",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
        }
    }
}

/// What `additionalProperties` allows.
#[derive(Debug, Clone, Default)]
pub(crate) enum Additional {
    /// Not given: only declared properties are known.
    #[default]
    Unset,
    /// `true`: any value, kept as it is.
    Any,
    /// A schema every other property's value must follow.
    Schema(Box<Node>),
}

/// `x-kubernetes-list-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Atomic,
    Set,
    Map,
}

/// `minimum` or `maximum`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bound {
    pub value: f64,
    pub exclusive: bool,
}

/// A `pattern`, compiled once.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub source: String,
    pub regex: Regex,
}

/// One compiled schema node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub type_: Option<JsonType>,
    pub format: Option<String>,
    pub nullable: bool,
    /// Declared properties in declaration order.
    pub properties: Vec<(String, Node)>,
    pub required: Vec<String>,
    pub items: Option<Box<Node>>,
    pub additional: Additional,
    pub enum_: Vec<Value>,
    pub default: Option<Value>,
    pub pattern: Option<Pattern>,
    pub minimum: Option<Bound>,
    pub maximum: Option<Bound>,
    pub multiple_of: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub preserve_unknown: bool,
    pub int_or_string: bool,
    pub embedded: bool,
    pub list_type: Option<ListKind>,
    pub list_map_keys: Vec<String>,
    pub map_atomic: bool,
    pub all_of: Vec<Node>,
    pub any_of: Vec<Node>,
    pub one_of: Vec<Node>,
    pub not: Option<Box<Node>>,
    pub rules: Vec<Rule>,
    /// Whether this node or any node below it has CEL rules (so evaluation can skip
    /// rule-free subtrees).
    pub rules_below: bool,
}

impl Node {
    pub(crate) fn property(&self, name: &str) -> Option<&Node> {
        self.properties.iter().find(|(n, _)| n == name).map(|(_, node)| node)
    }

    /// The schema of a field that is not a declared property, if any.
    pub(crate) fn additional_schema(&self) -> Option<&Node> {
        match &self.additional {
            Additional::Schema(node) => Some(node),
            _ => None,
        }
    }

    /// The schema of field `name` of an object of this node: a declared property or
    /// the additionalProperties schema.
    pub(crate) fn field(&self, name: &str) -> Option<&Node> {
        self.property(name).or_else(|| self.additional_schema())
    }

    /// The type name used in messages and CEL errors ("" when untyped).
    pub(crate) fn type_name(&self) -> &'static str {
        self.type_.map_or("", JsonType::name)
    }
}

/// Compiles the node at `path` (used in error messages, e.g.
/// `openAPIV3Schema.properties[spec].properties[replicas]`).
pub(crate) fn compile(raw: &Value, path: &str) -> Result<Node, String> {
    let Some(map) = raw.as_object() else {
        return Err(format!("{path}: must be a schema object, got {}", short(raw)));
    };
    if map.contains_key("$ref") {
        return Err(format!("{path}.$ref: Forbidden: $ref is not supported in structural schemas"));
    }
    let mut node = Node {
        type_: type_of(map, path)?,
        format: string(map, "format", path)?,
        nullable: flag(map, "nullable", path)?,
        required: strings(map, "required", path)?,
        enum_: array(map, "enum", path)?.cloned().unwrap_or_default(),
        default: map.get("default").cloned(),
        pattern: pattern(map, path)?,
        minimum: bound(map, "minimum", "exclusiveMinimum", path)?,
        maximum: bound(map, "maximum", "exclusiveMaximum", path)?,
        multiple_of: multiple_of(map, path)?,
        min_length: count(map, "minLength", path)?,
        max_length: count(map, "maxLength", path)?,
        min_items: count(map, "minItems", path)?,
        max_items: count(map, "maxItems", path)?,
        min_properties: count(map, "minProperties", path)?,
        max_properties: count(map, "maxProperties", path)?,
        preserve_unknown: flag(map, "x-kubernetes-preserve-unknown-fields", path)?,
        int_or_string: flag(map, "x-kubernetes-int-or-string", path)?,
        embedded: flag(map, "x-kubernetes-embedded-resource", path)?,
        list_type: list_type(map, path)?,
        list_map_keys: strings(map, "x-kubernetes-list-map-keys", path)?,
        map_atomic: map_atomic(map, path)?,
        ..Node::default()
    };
    node.properties = properties(map, path)?;
    node.items = items(map, path)?;
    node.additional = additional(map, path)?;
    node.all_of = sub_schemas(map, "allOf", path)?;
    node.any_of = sub_schemas(map, "anyOf", path)?;
    node.one_of = sub_schemas(map, "oneOf", path)?;
    node.not = match map.get("not") {
        Some(raw) => Some(Box::new(compile(raw, &format!("{path}.not"))?)),
        None => None,
    };
    check_consistency(&node, path)?;
    node.rules = cel::compile_rules(map.get("x-kubernetes-validations"), &node, path)?;
    node.rules_below = !node.rules.is_empty()
        || node.properties.iter().any(|(_, p)| p.rules_below)
        || node.items.as_ref().is_some_and(|i| i.rules_below)
        || node.additional_schema().is_some_and(|a| a.rules_below)
        || node.all_of.iter().any(|a| a.rules_below);
    Ok(node)
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 { format!("{}...", text.chars().take(57).collect::<String>()) } else { text }
}

fn type_of(map: &Map<String, Value>, path: &str) -> Result<Option<JsonType>, String> {
    let Some(name) = string(map, "type", path)? else {
        return Ok(None);
    };
    JsonType::parse(&name).map(Some).ok_or_else(|| {
        format!(
            "{path}.type: Unsupported value: {name:?}: supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""
        )
    })
}

fn string(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{path}.{key}: must be a string, got {}", short(other))),
    }
}

fn flag(map: &Map<String, Value>, key: &str, path: &str) -> Result<bool, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("{path}.{key}: must be a boolean, got {}", short(other))),
    }
}

fn array<'a>(map: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<&'a Vec<Value>>, String> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => Err(format!("{path}.{key}: must be an array, got {}", short(other))),
    }
}

fn strings(map: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<String>, String> {
    let Some(items) = array(map, key, path)? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{path}.{key}[{i}]: must be a string, got {}", short(item)))
        })
        .collect()
}

fn number(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<f64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| format!("{path}.{key}: must be a number")),
        Some(other) => Err(format!("{path}.{key}: must be a number, got {}", short(other))),
    }
}

fn count(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_u64().map(Some).ok_or_else(|| format!("{path}.{key}: must be a non-negative integer, got {n}"))
        }
        Some(other) => Err(format!("{path}.{key}: must be a non-negative integer, got {}", short(other))),
    }
}

fn bound(map: &Map<String, Value>, key: &str, exclusive_key: &str, path: &str) -> Result<Option<Bound>, String> {
    let exclusive = flag(map, exclusive_key, path)?;
    Ok(number(map, key, path)?.map(|value| Bound { value, exclusive }))
}

fn multiple_of(map: &Map<String, Value>, path: &str) -> Result<Option<f64>, String> {
    match number(map, "multipleOf", path)? {
        Some(factor) if factor <= 0.0 => Err(format!("{path}.multipleOf: must be greater than zero")),
        other => Ok(other),
    }
}

fn pattern(map: &Map<String, Value>, path: &str) -> Result<Option<Pattern>, String> {
    let Some(source) = string(map, "pattern", path)? else {
        return Ok(None);
    };
    let regex = Regex::new(&source).map_err(|e| format!("{path}.pattern: Invalid value: {source:?}: {e}"))?;
    Ok(Some(Pattern { source, regex }))
}

fn list_type(map: &Map<String, Value>, path: &str) -> Result<Option<ListKind>, String> {
    let Some(name) = string(map, "x-kubernetes-list-type", path)? else {
        return Ok(None);
    };
    Ok(Some(match name.as_str() {
        "atomic" => ListKind::Atomic,
        "set" => ListKind::Set,
        "map" => ListKind::Map,
        _ => {
            return Err(format!(
                "{path}.x-kubernetes-list-type: Unsupported value: {name:?}: supported values: \"atomic\", \"set\", \"map\""
            ));
        }
    }))
}

fn map_atomic(map: &Map<String, Value>, path: &str) -> Result<bool, String> {
    match string(map, "x-kubernetes-map-type", path)?.as_deref() {
        None | Some("granular") => Ok(false),
        Some("atomic") => Ok(true),
        Some(other) => Err(format!(
            "{path}.x-kubernetes-map-type: Unsupported value: {other:?}: supported values: \"granular\", \"atomic\""
        )),
    }
}

fn properties(map: &Map<String, Value>, path: &str) -> Result<Vec<(String, Node)>, String> {
    match map.get("properties") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(props)) => props
            .iter()
            .map(|(name, raw)| Ok((name.clone(), compile(raw, &format!("{path}.properties[{name}]"))?)))
            .collect(),
        Some(other) => Err(format!("{path}.properties: must be an object, got {}", short(other))),
    }
}

fn items(map: &Map<String, Value>, path: &str) -> Result<Option<Box<Node>>, String> {
    match map.get("items") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(_)) => {
            Err(format!("{path}.items: Forbidden: items must be a schema object and not an array"))
        }
        Some(raw) => Ok(Some(Box::new(compile(raw, &format!("{path}.items"))?))),
    }
}

fn additional(map: &Map<String, Value>, path: &str) -> Result<Additional, String> {
    match map.get("additionalProperties") {
        None | Some(Value::Null) => Ok(Additional::Unset),
        Some(Value::Bool(true)) => Ok(Additional::Any),
        Some(Value::Bool(false)) => {
            Err(format!("{path}.additionalProperties: Forbidden: additionalProperties cannot be set to false"))
        }
        Some(raw) => Ok(Additional::Schema(Box::new(compile(raw, &format!("{path}.additionalProperties"))?))),
    }
}

fn sub_schemas(map: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<Node>, String> {
    let Some(items) = array(map, key, path)? else {
        return Ok(Vec::new());
    };
    items.iter().enumerate().map(|(i, raw)| compile(raw, &format!("{path}.{key}[{i}]"))).collect()
}

/// The structural-schema rules Kubernetes enforces on keyword combinations that
/// evaluation relies on.
fn check_consistency(node: &Node, path: &str) -> Result<(), String> {
    // `additionalProperties: true` beside properties is allowed (unknown fields stay).
    if !node.properties.is_empty() && matches!(node.additional, Additional::Schema(_)) {
        return Err(format!(
            "{path}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
        ));
    }
    match (node.list_type, node.list_map_keys.is_empty()) {
        (Some(ListKind::Map), true) => Err(format!(
            "{path}.x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
        )),
        (Some(ListKind::Map), false) | (_, true) => Ok(()),
        (_, false) => Err(format!(
            "{path}.x-kubernetes-list-map-keys: Forbidden: must only be used if x-kubernetes-list-type is map"
        )),
    }
}
