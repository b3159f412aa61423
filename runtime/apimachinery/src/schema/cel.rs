//! `x-kubernetes-validations`: CEL rules compiled once with `cel-interpreter` and
//! evaluated with `self` (and, on update, `oldSelf`) as apiextensions-apiserver does.
//!
//! Differences from Kubernetes, because `cel-interpreter` is not cel-go:
//! - There is no static type checking: a rule that parses compiles; type mistakes
//!   surface as evaluation errors (FieldValueInvalid with the error message).
//! - Kubernetes CEL libraries are mostly absent: no `quantity`, `url`, `ip`, `cidr`,
//!   `format`, `isSorted`, `sum`, regex `find`/`findAll`, set ext functions, or
//!   two-variable comprehensions. A few string helpers are provided
//!   (`lowerAscii`, `upperAscii`, `trim`, `split`, `join`, `replace`, `indexOf`,
//!   `lastIndexOf`), `size()` counts characters as Kubernetes does, and CEL optionals
//!   are emulated only for `optionalOldSelf` (`hasValue`, `orValue`, `value`).
//! - `format: byte` strings are strings, not bytes; `date-time` and `duration`
//!   strings become timestamps and durations as in Kubernetes.
//! - There is no cost budget: evaluation time is bounded only by the rule itself.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cel_interpreter::extractors::{Arguments, This};
use cel_interpreter::{Context, ExecutionError, FunctionContext, Program, Value as Cel};
use serde_json::{Map, Value, json};

use super::messages::{child, duplicate, forbidden, index, invalid, key, required};
use super::node::{JsonType, ListKind, Node};
use crate::status::FieldError;

/// `reason` of a rule: the cause type of the error it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Invalid,
    Forbidden,
    Required,
    Duplicate,
}

/// One compiled `x-kubernetes-validations` entry.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    source: String,
    program: Arc<Program>,
    message: Option<String>,
    message_expression: Option<Arc<Program>>,
    /// `fieldPath`, normalized to a field path suffix (`foo.bar` or `foo[key]`).
    field_path: Option<String>,
    reason: Reason,
    /// Transition rules (those that read `oldSelf`) run only on update.
    uses_old_self: bool,
    optional_old_self: bool,
}

/// Compiles the rules of the node at `path`; `node` is already compiled (for `fieldPath`).
pub(crate) fn compile_rules(raw: Option<&Value>, node: &Node, path: &str) -> Result<Vec<Rule>, String> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let Some(entries) = raw.as_array() else {
        return Err(format!("{path}.x-kubernetes-validations: must be an array"));
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| compile_rule(entry, node, &format!("{path}.x-kubernetes-validations[{i}]")))
        .collect()
}

fn compile_rule(entry: &Value, node: &Node, path: &str) -> Result<Rule, String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("{path}.{key}: must be a string, got {other}")),
        }
    };
    let source =
        text("rule")?.filter(|r| !r.trim().is_empty()).ok_or_else(|| format!("{path}.rule: Required value"))?;
    let program = compile_program(&source)
        .map_err(|e| format!("{path}.rule: Invalid value: {source:?}: compilation failed: {e}"))?;
    let message_expression = match text("messageExpression")? {
        Some(expr) => Some(Arc::new(
            compile_program(&expr)
                .map_err(|e| format!("{path}.messageExpression: Invalid value: {expr:?}: compilation failed: {e}"))?,
        )),
        None => None,
    };
    let field_path = match text("fieldPath")? {
        Some(fp) => Some(
            normalize_field_path(&fp, node)
                .map_err(|e| format!("{path}.fieldPath: Invalid value: {fp:?}: fieldPath must be a valid path: {e}"))?,
        ),
        None => None,
    };
    let reason = parse_reason(text("reason")?.as_deref()).map_err(|e| format!("{path}.reason: {e}"))?;
    let optional_old_self = entry.get("optionalOldSelf").and_then(Value::as_bool).unwrap_or(false);
    Ok(Rule {
        uses_old_self: program.references().has_variable("oldSelf"),
        source,
        program: Arc::new(program),
        message: text("message")?.map(|m| m.trim().to_string()).filter(|m| !m.is_empty()),
        message_expression,
        field_path,
        reason,
        optional_old_self,
    })
}

/// Parses a CEL program; a parser panic is a compile error, never a crash.
fn compile_program(source: &str) -> Result<Program, String> {
    match catch_unwind(|| Program::compile(source)) {
        Ok(Ok(program)) => Ok(program),
        Ok(Err(errors)) => Err(errors.to_string()),
        Err(_) => Err("the CEL parser failed on this expression".to_string()),
    }
}

fn parse_reason(reason: Option<&str>) -> Result<Reason, String> {
    match reason {
        None | Some("FieldValueInvalid") => Ok(Reason::Invalid),
        Some("FieldValueForbidden") => Ok(Reason::Forbidden),
        Some("FieldValueRequired") => Ok(Reason::Required),
        Some("FieldValueDuplicate") => Ok(Reason::Duplicate),
        Some(other) => Err(format!(
            "Unsupported value: {other:?}: supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
        )),
    }
}

/// Checks a rule's `fieldPath` (`.foo.bar`, `.foo['a.b']`) against the schema and
/// renders it as a field path suffix, as Kubernetes' `ValidFieldPath` does.
fn normalize_field_path(field_path: &str, node: &Node) -> Result<String, String> {
    let mut rendered = String::new();
    let mut current = node;
    for name in field_path_tokens(field_path)? {
        if current.property(&name).is_some() || !current.properties.is_empty() {
            current = current.property(&name).ok_or("does not refer to a valid field")?;
            rendered = child(&rendered, &name);
        } else if let Some(extra) = current.additional_schema() {
            current = extra;
            rendered = key(&rendered, &name);
        } else {
            return Err("does not refer to a valid field".to_string());
        }
    }
    Ok(rendered)
}

fn field_path_tokens(field_path: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut rest = field_path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let (name, tail) = after.split_at(end);
            if name.is_empty() {
                return Err("unexpected end of JSON path".to_string());
            }
            tokens.push(name.to_string());
            rest = tail;
        } else if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']").ok_or("expected ] after a single quoted string")?;
            tokens.push(after[..end].replace("\\'", "'"));
            rest = &after[end + 2..];
        } else {
            return Err(format!("expected [ or . but got: {rest}"));
        }
    }
    Ok(tokens)
}

/// Evaluates every rule of the resource. `old` is the stored object on update.
pub(crate) fn validate_root(root: &Node, obj: &Value, old: Option<&Value>, errors: &mut Vec<FieldError>) {
    let mut walker = Walker { env: environment(), errors };
    let nodes = Nodes { rules: root, types: root };
    walker.walk(nodes, obj, old, "", true);
}

/// The rules to run at a position (an allOf branch brings its own) and the schema
/// that types the values there.
#[derive(Clone, Copy)]
struct Nodes<'n> {
    rules: &'n Node,
    types: &'n Node,
}

struct Walker<'e> {
    env: Context<'static>,
    errors: &'e mut Vec<FieldError>,
}

impl Walker<'_> {
    /// Visits `value`, correlating `old` as Kubernetes does: through properties and
    /// map values always, through list items only for `x-kubernetes-list-type: map`.
    fn walk(&mut self, nodes: Nodes, value: &Value, old: Option<&Value>, path: &str, root: bool) {
        // Rules only see non-null values (a nullable field is checked from its parent).
        if !nodes.rules.rules_below || value.is_null() {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        if !nodes.rules.rules.is_empty() {
            let subject = Subject::new(nodes.types, value, old, root);
            for rule in &nodes.rules.rules {
                if let Some(error) = evaluate(&self.env, rule, &subject, path) {
                    self.errors.push(error);
                }
            }
        }
        for branch in &nodes.rules.all_of {
            let branch_nodes = Nodes { rules: branch, types: nodes.types };
            self.walk(branch_nodes, value, old, path, root);
        }
        match value {
            Value::Object(map) => self.walk_object(nodes, map, old, path),
            Value::Array(items) => self.walk_array(nodes, items, old, path),
            _ => {}
        }
    }

    fn walk_object(&mut self, nodes: Nodes, map: &Map<String, Value>, old: Option<&Value>, path: &str) {
        for (name, rules) in &nodes.rules.properties {
            let Some(v) = map.get(name) else {
                continue;
            };
            let types = nodes.types.property(name).unwrap_or(rules);
            let old_v = old.and_then(|o| o.get(name));
            self.walk(Nodes { rules, types }, v, old_v, &child(path, name), types.embedded);
        }
        if let Some(rules) = nodes.rules.additional_schema() {
            let types = nodes.types.additional_schema().unwrap_or(rules);
            for (name, v) in map {
                let old_v = old.and_then(|o| o.get(name));
                self.walk(Nodes { rules, types }, v, old_v, &key(path, name), types.embedded);
            }
        }
    }

    fn walk_array(&mut self, nodes: Nodes, items: &[Value], old: Option<&Value>, path: &str) {
        let Some(rules) = nodes.rules.items.as_deref() else {
            return;
        };
        let types = nodes.types.items.as_deref().unwrap_or(rules);
        let old_items = old.and_then(Value::as_array);
        for (i, item) in items.iter().enumerate() {
            let old_item = correlate(nodes.types, item, old_items);
            self.walk(Nodes { rules, types }, item, old_item, &index(path, i), types.embedded);
        }
    }
}

/// The old element with the same map keys, for list-type map lists only.
fn correlate<'a>(list: &Node, item: &Value, old_items: Option<&'a Vec<Value>>) -> Option<&'a Value> {
    if list.list_type != Some(ListKind::Map) {
        return None;
    }
    old_items?.iter().find(|old| list.list_map_keys.iter().all(|k| old.get(k) == item.get(k)))
}

/// The value rules at one position see, converted to CEL once for all of them.
struct Subject<'v> {
    types: &'v Node,
    value: &'v Value,
    this: Cel,
    /// `oldSelf`, when the position existed before the update.
    old: Option<Cel>,
}

impl<'v> Subject<'v> {
    fn new(types: &'v Node, value: &'v Value, old: Option<&Value>, root: bool) -> Self {
        Subject { types, value, this: to_cel(value, Some(types), root), old: old.map(|o| to_cel(o, Some(types), root)) }
    }
}

/// Runs one rule; returns the error it reports, if any.
fn evaluate(env: &Context, rule: &Rule, subject: &Subject, path: &str) -> Option<FieldError> {
    if rule.uses_old_self && subject.old.is_none() && !rule.optional_old_self {
        return None;
    }
    let mut scope = env.new_inner_scope();
    scope.add_variable_from_value("self", subject.this.clone());
    if rule.uses_old_self || rule.optional_old_self {
        // With optionalOldSelf an absent old value is null (optional.none()).
        scope.add_variable_from_value("oldSelf", subject.old.clone().unwrap_or(Cel::Null));
    }
    let type_name = json!(subject.types.type_name());
    let detail = match run(&rule.program, &scope) {
        Ok(Cel::Bool(true)) => return None,
        Ok(Cel::Bool(false)) => return Some(rule_failure(rule, &scope, subject, path)),
        Ok(other) => format!("expected a boolean result, got {:?}", other.type_of()),
        Err(e) => e,
    };
    Some(invalid(path, Some(&type_name), &format!("{detail} evaluating rule: {}", error_string(rule))))
}

/// Executes a program; an interpreter panic becomes an error, never a crash.
fn run(program: &Program, scope: &Context) -> Result<Cel, String> {
    match catch_unwind(AssertUnwindSafe(|| program.execute(scope))) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("internal error in the CEL interpreter".to_string()),
    }
}

/// `ruleErrorString`: the message if there is one, else the rule.
fn error_string(rule: &Rule) -> &str {
    rule.message.as_deref().unwrap_or(rule.source.trim())
}

fn rule_failure(rule: &Rule, scope: &Context, subject: &Subject, path: &str) -> FieldError {
    let path = match &rule.field_path {
        Some(suffix) => child(path, suffix),
        None => path.to_string(),
    };
    let detail = rule
        .message_expression
        .as_ref()
        .and_then(|expr| evaluated_message(expr, scope))
        .or_else(|| rule.message.clone())
        .unwrap_or_else(|| format!("failed rule: {}", rule.source.trim()));
    // Kubernetes leaves compound values out of the message.
    let shown = match subject.types.type_ {
        Some(JsonType::Object | JsonType::Array) => None,
        _ if subject.value.is_object() || subject.value.is_array() => None,
        _ => Some(subject.value),
    };
    match rule.reason {
        Reason::Invalid => invalid(&path, shown, &detail),
        Reason::Forbidden => forbidden(&path, &detail),
        Reason::Required => required(&path, &detail),
        Reason::Duplicate => duplicate(&path, shown),
    }
}

/// A `messageExpression` result; when it fails or is unusable Kubernetes falls back
/// to `message` (or the default).
fn evaluated_message(expr: &Program, scope: &Context) -> Option<String> {
    match run(expr, scope) {
        Ok(Cel::String(text)) => {
            let trimmed = text.trim();
            (!trimmed.is_empty() && !trimmed.contains('\n')).then(|| trimmed.to_string())
        }
        _ => None,
    }
}

/// Converts JSON to CEL following the schema: integers are ints, numbers doubles,
/// `date-time` strings timestamps, `duration` strings durations; objects expose
/// declared properties under Kubernetes' escaped names; resource roots expose
/// `apiVersion`, `kind` and `metadata.name`/`metadata.generateName` only.
fn to_cel(value: &Value, node: Option<&Node>, resource_root: bool) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => number_to_cel(n, node.and_then(|n| n.type_)),
        Value::String(s) => string_to_cel(s, node.and_then(|n| n.format.as_deref())),
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            Cel::List(Arc::new(
                items.iter().map(|v| to_cel(v, item_node, item_node.is_some_and(|n| n.embedded))).collect(),
            ))
        }
        Value::Object(map) => object_to_cel(map, node, resource_root),
    }
}

fn number_to_cel(n: &serde_json::Number, type_: Option<JsonType>) -> Cel {
    match (type_, n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(JsonType::Number), _, _, Some(f)) => Cel::Float(f),
        (_, Some(i), _, _) => Cel::Int(i),
        (_, None, Some(u), _) => Cel::UInt(u),
        (Some(JsonType::Integer), None, None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => Cel::Int(f as i64),
        (_, _, _, Some(f)) => Cel::Float(f),
        _ => Cel::Null,
    }
}

fn string_to_cel(s: &str, format: Option<&str>) -> Cel {
    let converted = match format {
        Some("date-time" | "datetime") => cel_interpreter::functions::timestamp(Arc::new(s.to_string())).ok(),
        Some("duration") => cel_interpreter::functions::duration(Arc::new(s.to_string())).ok(),
        _ => None,
    };
    converted.unwrap_or_else(|| Cel::String(Arc::new(s.to_string())))
}

fn object_to_cel(map: &Map<String, Value>, node: Option<&Node>, resource_root: bool) -> Cel {
    let mut fields: HashMap<String, Cel> = HashMap::new();
    if resource_root {
        insert_resource_meta(map, &mut fields);
    }
    match node {
        Some(n) if !n.properties.is_empty() => {
            for (name, prop) in &n.properties {
                let is_meta = resource_root && matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
                if let (false, Some(v), Some(escaped)) = (is_meta, map.get(name), escape(name)) {
                    fields.insert(escaped, to_cel(v, Some(prop), prop.embedded));
                }
            }
        }
        Some(n) if n.additional_schema().is_some() => {
            let extra = n.additional_schema();
            for (name, v) in map {
                fields.insert(name.clone(), to_cel(v, extra, extra.is_some_and(|e| e.embedded)));
            }
        }
        _ => {
            for (name, v) in map {
                let is_meta = resource_root && matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
                if !is_meta {
                    fields.insert(name.clone(), to_cel(v, None, false));
                }
            }
        }
    }
    Cel::from(fields)
}

fn insert_resource_meta(map: &Map<String, Value>, fields: &mut HashMap<String, Cel>) {
    for name in ["apiVersion", "kind"] {
        if let Some(Value::String(s)) = map.get(name) {
            fields.insert(name.to_string(), Cel::String(Arc::new(s.clone())));
        }
    }
    if let Some(Value::Object(meta)) = map.get("metadata") {
        let mut visible: HashMap<String, Cel> = HashMap::new();
        for name in ["name", "generateName"] {
            if let Some(Value::String(s)) = meta.get(name) {
                visible.insert(name.to_string(), Cel::String(Arc::new(s.clone())));
            }
        }
        fields.insert("metadata".to_string(), Cel::from(visible));
    }
}

const CEL_RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Kubernetes' property name escaping for CEL: `__` → `__underscores__`, `.` →
/// `__dot__`, `-` → `__dash__`, `/` → `__slash__`, reserved words → `__word__`.
/// Names that cannot be escaped are not visible to rules.
fn escape(name: &str) -> Option<String> {
    let first = name.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    if CEL_RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')) {
        return None;
    }
    let mut escaped = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if let Some(tail) = rest.strip_prefix("__") {
            escaped.push_str("__underscores__");
            rest = tail;
            continue;
        }
        match c {
            '.' => escaped.push_str("__dot__"),
            '-' => escaped.push_str("__dash__"),
            '/' => escaped.push_str("__slash__"),
            other => escaped.push(other),
        }
        rest = &rest[c.len_utf8()..];
    }
    Some(escaped)
}

/// The root CEL context: the standard library plus the Kubernetes helpers we have.
fn environment() -> Context<'static> {
    let mut env = Context::default();
    env.add_function("size", size);
    env.add_function("lowerAscii", lower_ascii);
    env.add_function("upperAscii", upper_ascii);
    env.add_function("trim", trim);
    env.add_function("split", split);
    env.add_function("join", join);
    env.add_function("replace", replace);
    env.add_function("indexOf", index_of);
    env.add_function("lastIndexOf", last_index_of);
    env.add_function("hasValue", has_value);
    env.add_function("orValue", or_value);
    env.add_function("value", optional_value);
    env
}

type CelResult = Result<Cel, ExecutionError>;

fn string_value(text: String) -> Cel {
    Cel::String(Arc::new(text))
}

/// `size()` counting Unicode code points for strings, as Kubernetes' CEL does.
fn size(ftx: &FunctionContext, This(this): This<Cel>) -> CelResult {
    let n = match &this {
        Cel::String(s) => s.chars().count(),
        Cel::Bytes(b) => b.len(),
        Cel::List(l) => l.len(),
        Cel::Map(m) => m.map.len(),
        other => return Err(ftx.error(format!("size() is not supported on {:?}", other.type_of()))),
    };
    Ok(Cel::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn lower_ascii(This(this): This<Arc<String>>) -> CelResult {
    Ok(string_value(this.to_ascii_lowercase()))
}

fn upper_ascii(This(this): This<Arc<String>>) -> CelResult {
    Ok(string_value(this.to_ascii_uppercase()))
}

fn trim(This(this): This<Arc<String>>) -> CelResult {
    Ok(string_value(this.trim().to_string()))
}

fn split(This(this): This<Arc<String>>, separator: Arc<String>) -> CelResult {
    let parts: Vec<Cel> = this.split(separator.as_str()).map(|p| string_value(p.to_string())).collect();
    Ok(Cel::List(Arc::new(parts)))
}

fn join(ftx: &FunctionContext, This(this): This<Arc<Vec<Cel>>>, Arguments(args): Arguments) -> CelResult {
    let separator = match args.first() {
        None => String::new(),
        Some(Cel::String(s)) => s.to_string(),
        Some(_) => return Err(ftx.error("join() separator must be a string")),
    };
    let parts: Result<Vec<String>, ExecutionError> = this
        .iter()
        .map(|v| match v {
            Cel::String(s) => Ok(s.to_string()),
            _ => Err(ftx.error("join() needs a list of strings")),
        })
        .collect();
    Ok(string_value(parts?.join(&separator)))
}

fn replace(This(this): This<Arc<String>>, from: Arc<String>, to: Arc<String>) -> CelResult {
    Ok(string_value(this.replace(from.as_str(), to.as_str())))
}

fn char_index(text: &str, byte_index: Option<usize>) -> Cel {
    let index = byte_index.map_or(-1, |b| i64::try_from(text[..b].chars().count()).unwrap_or(i64::MAX));
    Cel::Int(index)
}

fn index_of(This(this): This<Arc<String>>, needle: Arc<String>) -> CelResult {
    Ok(char_index(&this, this.find(needle.as_str())))
}

fn last_index_of(This(this): This<Arc<String>>, needle: Arc<String>) -> CelResult {
    Ok(char_index(&this, this.rfind(needle.as_str())))
}

/// Optional emulation for `optionalOldSelf`: an absent old value is null.
fn has_value(This(this): This<Cel>) -> CelResult {
    Ok(Cel::Bool(!matches!(this, Cel::Null)))
}

fn or_value(This(this): This<Cel>, fallback: Cel) -> CelResult {
    Ok(if matches!(this, Cel::Null) { fallback } else { this })
}

fn optional_value(ftx: &FunctionContext, This(this): This<Cel>) -> CelResult {
    match this {
        Cel::Null => Err(ftx.error("optional.none() dereference")),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names_are_escaped_like_kubernetes() {
        assert_eq!(escape("replicas"), Some("replicas".to_string()));
        assert_eq!(escape("a__b"), Some("a__underscores__b".to_string()));
        assert_eq!(escape("x-y.z/w"), Some("x__dash__y__dot__z__slash__w".to_string()));
        assert_eq!(escape("namespace"), Some("__namespace__".to_string()));
        assert_eq!(escape("1st"), None);
        assert_eq!(escape("a b"), None);
        assert_eq!(escape(""), None);
    }

    #[test]
    fn field_paths_normalize_against_the_schema() {
        let node = match super::super::node::compile(
            &serde_json::json!({"type": "object", "properties": {
                "a": {"type": "object", "properties": {"b": {"type": "string"}}},
                "m": {"type": "object", "additionalProperties": {"type": "object", "properties": {"c": {"type": "string"}}}}
            }}),
            "s",
        ) {
            Ok(node) => node,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(normalize_field_path(".a.b", &node), Ok("a.b".to_string()));
        assert_eq!(normalize_field_path(".m['x.y'].c", &node), Ok("m[x.y].c".to_string()));
        assert_eq!(normalize_field_path("['a']", &node), Ok("a".to_string()));
        assert!(normalize_field_path(".a.nope", &node).is_err());
        assert!(normalize_field_path(".a.b.c", &node).is_err());
        assert!(normalize_field_path("a", &node).is_err());
        assert!(normalize_field_path(".a[0]", &node).is_err());
        assert!(normalize_field_path(".", &node).is_err());
    }
}
