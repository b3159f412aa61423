//! The built-in ConfigurationPolicy (`policy.open-cluster-management.io/v1`,
//! `config-policy-controller`): its spec, and the pure part of its evaluation — which objects
//! comply with an object template and what enforcing it would write. Reading and writing the
//! spoke is [`super::engine`]'s business; everything here works on JSON values, so it can be
//! tested and benchmarked without a cluster.
//!
//! Semantics (OCM's, kept reasonable where OCM is vague):
//!
//! - `musthave`: the object holds every field the template gives (maps recursively; a list
//!   item of the template must match some item of the object's list, OCM's merge semantics).
//! - `mustonlyhave`: as `musthave` for `metadata`; every other top-level field the template
//!   gives must be equal, maps with exactly the same keys and lists equal up to order.
//! - `mustnothave`: a named object must not exist; without a name, no object may match the
//!   given fields.
//! - Without `metadata.name`: `musthave`/`mustonlyhave` need one matching object in each
//!   namespace, unless the template has an `objectSelector`, in which case every selected
//!   object must match (and `mustnothave` applies to each selected object).
//! - A namespaced kind without `metadata.namespace` is evaluated in every namespace the
//!   policy's `namespaceSelector` selects.

use std::fmt;

use flotilla_apimachinery::selector::LabelSelector;
use serde_json::{Map, Value};

/// `spec.remediationAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remediation {
    Inform,
    Enforce,
}

impl Remediation {
    /// `inform`/`enforce`, any case (the Policy says `Inform`, ConfigurationPolicy `inform`).
    pub fn parse(text: &str, field: &str) -> Result<Remediation, String> {
        match text.to_ascii_lowercase().as_str() {
            "inform" => Ok(Remediation::Inform),
            "enforce" => Ok(Remediation::Enforce),
            _ => Err(format!("{field}: must be inform or enforce, not {text:?}")),
        }
    }
}

/// `complianceType` of an object template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplianceType {
    MustHave,
    MustOnlyHave,
    MustNotHave,
}

/// What every policy template starts with, built in or Wasm: its name, its spec and its own
/// `remediationAction` (`inform` when it has none). Errors name the field under `at`.
pub(crate) fn template_head<'a>(object: &'a Value, at: &str) -> Result<(String, &'a Value, Remediation), String> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{at}.metadata.name: required"))?
        .to_string();
    let spec = object.get("spec").filter(|s| s.is_object()).ok_or_else(|| format!("{at}.spec: required"))?;
    let remediation = match spec.get("remediationAction").and_then(Value::as_str) {
        Some(text) => Remediation::parse(text, &format!("{at}.spec.remediationAction"))?,
        None => Remediation::Inform,
    };
    Ok((name, spec, remediation))
}

impl ComplianceType {
    fn parse(text: &str, field: &str) -> Result<ComplianceType, String> {
        match text.to_ascii_lowercase().as_str() {
            "musthave" => Ok(ComplianceType::MustHave),
            "mustonlyhave" => Ok(ComplianceType::MustOnlyHave),
            "mustnothave" => Ok(ComplianceType::MustNotHave),
            _ => Err(format!("{field}: must be musthave, mustonlyhave or mustnothave, not {text:?}")),
        }
    }
}

/// `pruneObjectBehavior`: what goes when the policy or the template goes (enforce only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum PruneBehavior {
    #[default]
    None,
    DeleteIfCreated,
    DeleteAll,
}

/// `recordDiff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordDiff {
    #[default]
    None,
    Log,
    InStatus,
}

/// `namespaceSelector`: `include`/`exclude` globs and a label selector, for namespaced
/// object templates without a namespace.
#[derive(Debug, Clone, Default)]
pub struct NamespaceSelector {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// `matchLabels`/`matchExpressions`; `None` when neither is given.
    pub labels: Option<LabelSelector>,
}

impl NamespaceSelector {
    /// Whether the selector selects nothing at all (no include and no label selector).
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.labels.is_none()
    }

    /// Whether it selects the namespace `ns` (its object, for the labels).
    pub fn selects(&self, namespace: &Value) -> bool {
        let Some(name) = namespace.pointer("/metadata/name").and_then(Value::as_str) else { return false };
        if self.is_empty() {
            return false;
        }
        let included = self.include.is_empty() || self.include.iter().any(|g| glob_match(g, name));
        let excluded = self.exclude.iter().any(|g| glob_match(g, name));
        let labelled = self.labels.as_ref().is_none_or(|s| s.matches_object(namespace));
        included && !excluded && labelled
    }
}

/// A filepath glob as OCM's namespace selector uses them: `*` any run, `?` one character,
/// `[abc]`/`[a-z]` a class.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return t.first() == Some(&'[') && go(&p[1..], &t[1..]);
                };
                let Some(c) = t.first() else { return false };
                let class = &p[1..end];
                let (negated, class) = match class.first() {
                    Some('^' | '!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= *c && *c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == *c;
                        i += 1;
                    }
                }
                hit != negated && go(&p[end + 1..], &t[1..])
            }
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// One entry of `spec.object-templates`.
#[derive(Debug, Clone)]
pub struct ObjectTemplate {
    pub compliance_type: ComplianceType,
    /// The object definition as given.
    pub object: Value,
    pub api_version: String,
    pub kind: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
    /// `objectSelector`: the template applies to each selected object.
    pub object_selector: Option<LabelSelector>,
    pub record_diff: RecordDiff,
}

impl ObjectTemplate {
    /// `apiVersion` split into group and version.
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", self.api_version.as_str()),
        }
    }
}

/// A ConfigurationPolicy's spec.
#[derive(Debug, Clone)]
pub struct ConfigurationPolicy {
    pub name: String,
    pub remediation: Remediation,
    pub severity: Option<String>,
    pub namespace_selector: NamespaceSelector,
    pub prune: PruneBehavior,
    pub object_templates: Vec<ObjectTemplate>,
}

fn strings(value: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(str::to_string).ok_or_else(|| format!("{field}[{i}]: must be a string")))
            .collect(),
        Some(_) => Err(format!("{field}: must be a list of strings")),
    }
}

fn selector(value: &Value, field: &str) -> Result<Option<LabelSelector>, String> {
    let mut labels = Map::new();
    for key in ["matchLabels", "matchExpressions"] {
        if let Some(v) = value.get(key).filter(|v| !v.is_null()) {
            labels.insert(key.to_string(), v.clone());
        }
    }
    if labels.is_empty() {
        return Ok(None);
    }
    LabelSelector::from_object(&Value::Object(labels)).map(Some).map_err(|e| format!("{field}: {e}"))
}

impl ConfigurationPolicy {
    /// Reads a ConfigurationPolicy object (as in a Policy's `policy-templates[].objectDefinition`).
    /// Errors name the field at fault, under `at` (the template's path in the Policy).
    pub fn parse(object: &Value, at: &str) -> Result<ConfigurationPolicy, String> {
        let (name, spec, remediation) = template_head(object, at)?;
        let severity = spec.get("severity").and_then(Value::as_str).map(str::to_string);
        let prune = match spec.get("pruneObjectBehavior").and_then(Value::as_str) {
            None | Some("None") => PruneBehavior::None,
            Some("DeleteIfCreated") => PruneBehavior::DeleteIfCreated,
            Some("DeleteAll") => PruneBehavior::DeleteAll,
            Some(other) => {
                return Err(format!(
                    "{at}.spec.pruneObjectBehavior: must be DeleteAll, DeleteIfCreated or None, not {other:?}"
                ));
            }
        };
        let namespace_selector = match spec.get("namespaceSelector").filter(|v| !v.is_null()) {
            None => NamespaceSelector::default(),
            Some(ns) => {
                let field = format!("{at}.spec.namespaceSelector");
                NamespaceSelector {
                    include: strings(ns.get("include"), &format!("{field}.include"))?,
                    exclude: strings(ns.get("exclude"), &format!("{field}.exclude"))?,
                    labels: selector(ns, &field)?,
                }
            }
        };
        if spec.get("object-templates-raw").is_some() {
            return Err(format!("{at}.spec.object-templates-raw: templates are not supported; use object-templates"));
        }
        let templates = match spec.get("object-templates") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            _ => return Err(format!("{at}.spec.object-templates: must be a non-empty list")),
        };
        let object_templates = templates
            .iter()
            .enumerate()
            .map(|(i, t)| parse_object_template(t, &format!("{at}.spec.object-templates[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ConfigurationPolicy { name, remediation, severity, namespace_selector, prune, object_templates })
    }
}

fn parse_object_template(template: &Value, at: &str) -> Result<ObjectTemplate, String> {
    let compliance_type = ComplianceType::parse(
        template
            .get("complianceType")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}.complianceType: required"))?,
        &format!("{at}.complianceType"),
    )?;
    let object = template
        .get("objectDefinition")
        .filter(|o| o.is_object())
        .ok_or_else(|| format!("{at}.objectDefinition: required (an object)"))?
        .clone();
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty());
    let api_version = text("/apiVersion").ok_or_else(|| format!("{at}.objectDefinition.apiVersion: required"))?;
    let kind = text("/kind").ok_or_else(|| format!("{at}.objectDefinition.kind: required"))?;
    let record_diff = match template.get("recordDiff").and_then(Value::as_str) {
        None | Some("None") => RecordDiff::None,
        Some("Log") => RecordDiff::Log,
        Some("InStatus") => RecordDiff::InStatus,
        Some(other) => return Err(format!("{at}.recordDiff: must be Log, InStatus or None, not {other:?}")),
    };
    let object_selector = match template.get("objectSelector").filter(|v| !v.is_null()) {
        // `{}` selects every object of the kind.
        Some(sel) => Some(selector(sel, &format!("{at}.objectSelector"))?.unwrap_or_else(LabelSelector::everything)),
        None => None,
    };
    Ok(ObjectTemplate {
        compliance_type,
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: text("/metadata/name").map(str::to_string),
        namespace: text("/metadata/namespace").map(str::to_string),
        object_selector,
        record_diff,
        object,
    })
}

/// Whether `live` holds `want` in the sense of `musthave` (`exact`: `mustonlyhave`).
pub fn matches(want: &Value, live: &Value, exact: bool) -> bool {
    let (Value::Object(want), Value::Object(live)) = (want, live) else { return false };
    want.iter().all(|(key, value)| {
        let found = live.get(key).unwrap_or(&Value::Null);
        match key.as_str() {
            // Identity and bookkeeping fields are compared by musthave rules whatever the type.
            "metadata" => field_matches(&without_identity(value), found, false),
            // Where the object was read from says these (list items may omit them).
            "status" | "apiVersion" | "kind" => true,
            _ => field_matches(value, found, exact),
        }
    })
}

/// `metadata` without `name` and `namespace`: the scope and the read already chose them.
fn without_identity(metadata: &Value) -> Value {
    let mut metadata = metadata.clone();
    if let Some(map) = metadata.as_object_mut() {
        map.remove("name");
        map.remove("namespace");
    }
    metadata
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn field_matches(want: &Value, live: &Value, exact: bool) -> bool {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => {
            w.iter().all(|(k, v)| field_matches(v, l.get(k).unwrap_or(&Value::Null), exact))
                && (!exact || l.iter().all(|(k, v)| w.contains_key(k) || is_empty(v)))
        }
        (Value::Array(w), Value::Array(l)) => {
            let every_wanted = w.iter().all(|wi| l.iter().any(|li| field_matches(wi, li, exact)));
            if exact {
                every_wanted && w.len() == l.len() && l.iter().all(|li| w.iter().any(|wi| field_matches(wi, li, exact)))
            } else {
                every_wanted
            }
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        // Kubernetes stores `"1"` for a number given to a string field and the reverse.
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => n.to_string() == *s,
        (Value::Null, other) => is_empty(other),
        (want, Value::Null) => is_empty(want),
        (w, l) => w == l,
    }
}

/// `live` changed to hold `want`: musthave merges (lists gain missing items, an item with the
/// same `name` is merged in place); mustonlyhave replaces every top-level field but
/// `metadata` (whose labels and annotations are merged).
pub fn merged(want: &Value, live: &Value, exact: bool) -> Value {
    let mut out = live.clone();
    let (Value::Object(w), Some(o)) = (want, out.as_object_mut()) else { return want.clone() };
    for (key, value) in w {
        if key == "status" {
            continue;
        }
        let slot = o.entry(key.clone()).or_insert(Value::Null);
        if exact && key != "metadata" {
            *slot = value.clone();
        } else {
            merge_into(slot, value);
        }
    }
    out
}

fn merge_into(slot: &mut Value, want: &Value) {
    match (slot, want) {
        (Value::Object(have), Value::Object(w)) => {
            for (k, v) in w {
                merge_into(have.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (Value::Array(have), Value::Array(w)) => {
            for item in w {
                if have.iter().any(|h| field_matches(item, h, false)) {
                    continue;
                }
                let named = item.get("name").filter(|n| n.is_string());
                match named.and_then(|n| have.iter_mut().find(|h| h.get("name") == Some(n))) {
                    Some(existing) => merge_into(existing, item),
                    None => have.push(item.clone()),
                }
            }
        }
        (slot, want) => *slot = want.clone(),
    }
}

fn object_name(object: &Value) -> String {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// What one object template found in one scope (a namespace, or the cluster).
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeOutcome {
    pub compliant: bool,
    pub finding: Finding,
    /// Names of the objects the finding is about, sorted.
    pub names: Vec<String>,
    /// What enforcement would write to make the scope comply.
    pub fixes: Vec<Fix>,
    /// For `recordDiff`: per object, what differs (`field: want …, have …`).
    pub diffs: Vec<(String, Vec<String>)>,
}

/// OCM's wording of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    FoundAsSpecified,
    NotFound,
    FoundNotAsSpecified,
    MissingAsExpected,
    Found,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Finding::FoundAsSpecified => "found as specified",
            Finding::NotFound => "not found",
            Finding::FoundNotAsSpecified => "found but not as specified",
            Finding::MissingAsExpected => "missing as expected",
            Finding::Found => "found",
        })
    }
}

/// One write that enforcement makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Fix {
    /// Create the object (the template's definition, namespace filled in).
    Create(Value),
    /// Replace the live object's contents with this (the live object merged with the template).
    Update(Value),
    /// Delete the object of this name.
    Delete(String),
}

/// Evaluates one object template in one scope against `objects`: the objects of its kind
/// there (for a named template, at most the one of that name). `namespace` is the scope's
/// namespace (`None` for cluster-scoped kinds). Pure: reads nothing, writes nothing.
pub fn evaluate(template: &ObjectTemplate, namespace: Option<&str>, objects: &[Value]) -> ScopeOutcome {
    let exact = template.compliance_type == ComplianceType::MustOnlyHave;
    let mut want = template.object.clone();
    if let (Some(ns), Some(meta)) = (namespace, want.get_mut("metadata").and_then(Value::as_object_mut)) {
        meta.insert("namespace".into(), Value::String(ns.to_string()));
    }
    let candidates: Vec<&Value> = objects
        .iter()
        .filter(|o| template.name.as_ref().is_none_or(|n| object_name(o) == *n))
        .filter(|o| template.object_selector.as_ref().is_none_or(|s| s.matches_object(o)))
        .collect();
    let outcome = |compliant, finding, names: Vec<String>, fixes| ScopeOutcome {
        compliant,
        finding,
        names,
        fixes,
        diffs: Vec::new(),
    };
    let sorted = |mut names: Vec<String>| {
        names.sort();
        names.dedup();
        names
    };
    match (template.compliance_type, &template.name, &template.object_selector) {
        // A named object (with or without a selector, which then narrows it further).
        (ComplianceType::MustHave | ComplianceType::MustOnlyHave, Some(name), _) => match candidates.first() {
            None => outcome(false, Finding::NotFound, vec![name.clone()], vec![Fix::Create(want)]),
            Some(live) if matches(&want, live, exact) => {
                outcome(true, Finding::FoundAsSpecified, vec![name.clone()], Vec::new())
            }
            Some(live) => {
                let mut result = outcome(
                    false,
                    Finding::FoundNotAsSpecified,
                    vec![name.clone()],
                    vec![Fix::Update(merged(&want, live, exact))],
                );
                result.diffs.push((name.clone(), difference(&want, live)));
                result
            }
        },
        (ComplianceType::MustNotHave, Some(name), _) => match candidates.first() {
            None => outcome(true, Finding::MissingAsExpected, vec![name.clone()], Vec::new()),
            Some(_) => outcome(false, Finding::Found, vec![name.clone()], vec![Fix::Delete(name.clone())]),
        },
        // Every selected object must match.
        (ComplianceType::MustHave | ComplianceType::MustOnlyHave, None, Some(_)) => {
            let (good, bad): (Vec<&Value>, Vec<&Value>) = candidates.iter().partition(|o| matches(&want, o, exact));
            if bad.is_empty() {
                outcome(true, Finding::FoundAsSpecified, sorted(good.iter().map(|o| object_name(o)).collect()), vec![])
            } else {
                let fixes = bad.iter().map(|o| Fix::Update(merged(&want, o, exact))).collect();
                let mut result = outcome(
                    false,
                    Finding::FoundNotAsSpecified,
                    sorted(bad.iter().map(|o| object_name(o)).collect()),
                    fixes,
                );
                result.diffs = bad.iter().map(|o| (object_name(o), difference(&want, o))).collect();
                result
            }
        }
        // One matching object is enough; without a name, nothing can be created.
        (ComplianceType::MustHave | ComplianceType::MustOnlyHave, None, None) => {
            let good: Vec<String> =
                candidates.iter().filter(|o| matches(&want, o, exact)).map(|o| object_name(o)).collect();
            if good.is_empty() {
                outcome(false, Finding::NotFound, Vec::new(), Vec::new())
            } else {
                outcome(true, Finding::FoundAsSpecified, sorted(good), Vec::new())
            }
        }
        // No (selected) object may match the given fields.
        (ComplianceType::MustNotHave, None, _) => {
            let bad: Vec<String> =
                candidates.iter().filter(|o| matches(&want, o, false)).map(|o| object_name(o)).collect();
            if bad.is_empty() {
                outcome(true, Finding::MissingAsExpected, Vec::new(), Vec::new())
            } else {
                let bad = sorted(bad);
                let fixes = bad.iter().cloned().map(Fix::Delete).collect();
                outcome(false, Finding::Found, bad, fixes)
            }
        }
    }
}

/// What differs between what a template wants and a live object, one line per field.
pub fn difference(want: &Value, live: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into(want, live, String::new(), &mut out);
    out
}

fn diff_into(want: &Value, live: &Value, path: String, out: &mut Vec<String>) {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => {
            for (k, v) in w {
                if path.is_empty() && matches!(k.as_str(), "status" | "apiVersion" | "kind") {
                    continue;
                }
                let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                if sub == "metadata" {
                    diff_into(&without_identity(v), l.get(k).unwrap_or(&Value::Null), sub, out);
                    continue;
                }
                diff_into(v, l.get(k).unwrap_or(&Value::Null), sub, out);
            }
        }
        (w, l) if field_matches(w, l, false) => {}
        (w, l) => out.push(format!("{path}: want {w}, have {l}")),
    }
}

/// A scope's clause of a status message, OCM-style: `configmaps [app] not found in namespace prod`.
pub fn describe(plural: &str, namespace: Option<&str>, finding: impl fmt::Display, names: &[String]) -> String {
    let names = if names.is_empty() { String::new() } else { format!(" [{}]", names.join(", ")) };
    match namespace {
        Some(ns) => format!("{plural}{names} {finding} in namespace {ns}"),
        None => format!("{plural}{names} {finding}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn template(compliance: &str, object: Value) -> ObjectTemplate {
        parse_object_template(&json!({"complianceType": compliance, "objectDefinition": object}), "t").unwrap()
    }

    #[test]
    fn musthave_is_a_subset_match_with_list_merging() {
        let live = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}},
            "spec": {"containers": [{"name": "c1", "image": "i1"}, {"name": "c2", "image": "i2"}]}});
        assert!(matches(&json!({"metadata": {"labels": {"x": "1"}}}), &live, false));
        assert!(matches(&json!({"spec": {"containers": [{"name": "c2"}]}}), &live, false));
        assert!(!matches(&json!({"spec": {"containers": [{"name": "c3"}]}}), &live, false));
        // mustonlyhave: lists must be equal, maps without extra keys.
        assert!(!matches(&json!({"spec": {"containers": [{"name": "c2", "image": "i2"}]}}), &live, true));
        let merged = merged(&json!({"spec": {"containers": [{"name": "c3", "image": "i3"}]}}), &live, false);
        assert_eq!(merged["spec"]["containers"].as_array().unwrap().len(), 3);
        let replaced = super::merged(&json!({"spec": {"containers": [{"name": "c3"}]}}), &live, true);
        assert_eq!(replaced["spec"], json!({"containers": [{"name": "c3"}]}));
        assert_eq!(replaced["metadata"]["labels"], json!({"x": "1", "y": "2"}));
    }

    #[test]
    fn named_and_unnamed_templates() {
        let cm = |name: &str, data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data});
        let t = template("musthave", cm("app", json!({"k": "v"})));
        let out = evaluate(&t, Some("prod"), &[]);
        assert_eq!((out.compliant, out.finding), (false, Finding::NotFound));
        assert!(matches!(&out.fixes[0], Fix::Create(o) if o["metadata"]["namespace"] == "prod"));
        let out = evaluate(&t, Some("prod"), &[cm("app", json!({"k": "other"}))]);
        assert_eq!(out.finding, Finding::FoundNotAsSpecified);
        assert_eq!(out.diffs[0].1, vec![r#"data.k: want "v", have "other""#.to_string()]);
        let t = template("mustonlyhave", cm("app", json!({"k": "v"})));
        assert!(!evaluate(&t, Some("prod"), &[cm("app", json!({"k": "v", "extra": "x"}))]).compliant);
        assert!(evaluate(&t, Some("prod"), &[cm("app", json!({"k": "v"}))]).compliant);
        let t = template(
            "mustnothave",
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"securityContext": {"privileged": true}}]}}),
        );
        let pods = [
            json!({"metadata": {"name": "ok"}, "spec": {"containers": [{"name": "a"}]}}),
            json!({"metadata": {"name": "bad"}, "spec": {"containers": [{"name": "a"}, {"name": "b", "securityContext": {"privileged": true}}]}}),
        ];
        let out = evaluate(&t, Some("ns"), &pods);
        assert_eq!((out.compliant, out.names.clone()), (false, vec!["bad".to_string()]));
        assert_eq!(describe("pods", Some("ns"), out.finding, &out.names), "pods [bad] found in namespace ns");
    }

    #[test]
    fn globs_and_namespace_selection() {
        assert!(glob_match("prod-*", "prod-eu"));
        assert!(glob_match("kube-?", "kube-a"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("prod-*", "dev"));
        let sel = NamespaceSelector { include: vec!["*".into()], exclude: vec!["kube-*".into()], labels: None };
        assert!(sel.selects(&json!({"metadata": {"name": "prod"}})));
        assert!(!sel.selects(&json!({"metadata": {"name": "kube-system"}})));
        assert!(!NamespaceSelector::default().selects(&json!({"metadata": {"name": "prod"}})));
    }

    #[test]
    fn bad_input_names_the_field() {
        let err = ConfigurationPolicy::parse(
            &json!({"metadata": {"name": "p"}, "spec": {"object-templates": [{"complianceType": "maybe", "objectDefinition": {}}]}}),
            "spec.policy-templates[0].objectDefinition",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "spec.policy-templates[0].objectDefinition.spec.object-templates[0].complianceType: must be musthave, \
             mustonlyhave or mustnothave, not \"maybe\""
        );
    }
}
