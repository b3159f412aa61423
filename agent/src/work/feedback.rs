//! statusFeedback: the `feedbackRules` of a `manifestConfigs` entry evaluated against the live
//! spoke object, giving `status.resourceStatus.manifests[].statusFeedback.values` and the
//! per-manifest `StatusFeedbackSynced` condition, as OCM's work agent does
//! (`ocm:pkg/work/spoke/statusfeedback/reader.go`, `…/rules/rule.go` and
//! `…/controllers/statuscontroller/availablestatus_controller.go`).
//!
//! Semantics kept from OCM:
//! - Paths are Kubernetes JSONPath evaluated against the **whole object** (`.status.replicas`,
//!   not `.replicas`): that is what OCM's reader and its WellKnownStatus table do, whatever the
//!   CRD's "under status" wording suggests.
//! - A path that selects nothing, or selects `null`, yields no value and is not an error.
//! - Integers, strings and booleans map to `Integer`, `String`, `Boolean`. Anything else
//!   (objects, lists, several matches, non-integer numbers) becomes `JsonRaw` (compact JSON,
//!   OCM's `RawFeedbackJsonString` gate) if it fits in [`FeedbackLimits::max_json_raw_bytes`];
//!   a larger value is refused, never truncated, because a cut JSON document is not JSON.
//! - A `version` on a path that differs from the live object's version is an error.
//! - One failing path does not hide the others: every value that could be read is returned,
//!   and `StatusFeedbackSynced` turns False with every failure in its message.
//!
//! Deliberate differences:
//! - WellKnownStatus matches on group and kind only (OCM keys on group/version/kind, but the
//!   kinds in the table exist at a single version).
//! - Values are unique by name (the CRD makes `values` a list-map keyed by `name`, so a
//!   duplicate would make the hub reject the whole status update); later duplicates are
//!   dropped and reported as a failure.
//! - An unrecognized rule `type` is reported rather than silently ignored.

use flotilla_apimachinery::JsonPath;
use flotilla_apimachinery::json_kind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::condition::{Condition, ConditionStatus};

/// The per-manifest condition type.
pub const STATUS_FEEDBACK_SYNCED: &str = "StatusFeedbackSynced";
/// Reason when every rule was read.
pub const REASON_SYNCED: &str = "StatusFeedbackSynced";
/// Reason when the manifest has no feedback rules.
pub const REASON_NO_FEEDBACK: &str = "NoStatusFeedbackSynced";
/// Reason when at least one rule or path failed.
pub const REASON_SYNC_FAILED: &str = "StatusFeedbackSyncFailed";
/// OCM's `--max-json-raw-length` default and the CRD's `jsonRaw` `maxLength`.
pub const DEFAULT_MAX_JSON_RAW_BYTES: usize = 1024;
/// The most the hub's ManifestWork schema accepts in one `jsonRaw` (Flotilla raises OCM's
/// 1 KiB `maxLength` to this: `flotilla_kinds::vendored::MAX_FEEDBACK_JSON_RAW_BYTES`).
pub const MAX_JSON_RAW_BYTES: usize = 64 * 1024;

/// Bounds on what feedback may report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackLimits {
    /// Largest `jsonRaw` string, in bytes. Values above are refused (the CRD caps the field at
    /// 1024, so a larger setting only helps hubs with a relaxed schema). `0` turns raw JSON
    /// off, like OCM without the `RawFeedbackJsonString` gate: only scalars are reported.
    pub max_json_raw_bytes: usize,
}

impl Default for FeedbackLimits {
    fn default() -> Self {
        FeedbackLimits { max_json_raw_bytes: DEFAULT_MAX_JSON_RAW_BYTES }
    }
}

/// One entry of `statusFeedback.values`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackValue {
    pub name: String,
    pub field_value: FieldValue,
}

/// `fieldValue`: `{"type": "Integer", "integer": 3}` and so on, as in the CRD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum FieldValue {
    Integer {
        integer: i64,
    },
    String {
        string: String,
    },
    Boolean {
        boolean: bool,
    },
    JsonRaw {
        #[serde(rename = "jsonRaw")]
        json_raw: String,
    },
}

/// What one evaluation produced: the values to store and the condition to set.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackResult {
    /// In rule order, then path order (what OCM reports).
    pub values: Vec<FeedbackValue>,
    /// `StatusFeedbackSynced`: True (`StatusFeedbackSynced` or `NoStatusFeedbackSynced`) or
    /// False (`StatusFeedbackSyncFailed`, naming every failed rule and path).
    pub synced: Condition,
    /// The failures behind a False `synced`, for logs and metrics.
    pub errors: Vec<FeedbackError>,
}

/// Why a rule or a path gave no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackError {
    #[error("feedbackRules must be an array, got {got}")]
    NotAnArray { got: &'static str },
    #[error("feedbackRules[{index}]: {message}")]
    MalformedRule { index: usize, message: String },
    #[error("feedbackRules[{index}]: unrecognized feedback rule type {type_:?}")]
    UnknownRuleType { index: usize, type_: String },
    #[error("cannot find the wellknown statuses for resource with gvk {gvk}")]
    NoWellKnownStatus { gvk: String },
    #[error(
        "version set in the path {name} is not matched for the related resource (path version {wanted}, resource version {actual})"
    )]
    VersionMismatch { name: String, wanted: String, actual: String },
    #[error("failed to parse json path {path} of {name} with error: {message}")]
    InvalidPath { name: String, path: String, message: String },
    #[error(
        "the length of returned json raw string for name {name} (path {path}) is {length}, larger than the maximum length {limit}"
    )]
    TooLarge { name: String, path: String, length: usize, limit: usize },
    #[error(
        "the value for name {name} (path {path}) is {kind}, not an integer, string or boolean, and raw JSON feedback is disabled"
    )]
    NotScalar { name: String, path: String, kind: &'static str },
    #[error("duplicate feedback value name {name} (path {path}): only the first value with this name is reported")]
    DuplicateName { name: String, path: String },
}

/// One `{name, path}` a rule asks for.
struct Wanted<'a> {
    name: &'a str,
    path: &'a str,
}

const DEPLOYMENT: &[(&str, &str)] = &[
    ("ReadyReplicas", ".status.readyReplicas"),
    ("Replicas", ".status.replicas"),
    ("AvailableReplicas", ".status.availableReplicas"),
];
const DAEMONSET: &[(&str, &str)] = &[
    ("NumberReady", ".status.numberReady"),
    ("DesiredNumberScheduled", ".status.desiredNumberScheduled"),
    ("NumberAvailable", ".status.numberAvailable"),
];
const JOB: &[(&str, &str)] =
    &[("JobComplete", r#".status.conditions[?(@.type=="Complete")].status"#), ("JobSucceeded", ".status.succeeded")];
const POD: &[(&str, &str)] =
    &[("PodReady", r#".status.conditions[?(@.type=="Ready")].status"#), ("PodPhase", ".status.phase")];

/// OCM's WellKnownStatus table (`ocm:pkg/work/spoke/statusfeedback/rules/rule.go`). Note
/// that `JobComplete` and `PodReady` are the condition's status *string* (`"True"`).
pub fn well_known_status(group: &str, kind: &str) -> Option<&'static [(&'static str, &'static str)]> {
    match (group, kind) {
        ("apps", "Deployment") => Some(DEPLOYMENT),
        ("apps", "DaemonSet") => Some(DAEMONSET),
        ("batch", "Job") => Some(JOB),
        ("", "Pod") => Some(POD),
        _ => None,
    }
}

/// Evaluates a manifest's `feedbackRules` (the JSON array from its `manifestConfigs` entry,
/// `None`/`null`/`[]` when it has none) against `live`, the object read from the spoke.
/// `group` and `kind` select the WellKnownStatus paths.
pub fn evaluate(
    group: &str,
    kind: &str,
    live: &Value,
    feedback_rules: Option<&Value>,
    limits: &FeedbackLimits,
) -> FeedbackResult {
    let rules = match feedback_rules {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(rules)) => rules.as_slice(),
        Some(other) => {
            let errors = vec![FeedbackError::NotAnArray { got: json_kind(other) }];
            return FeedbackResult { values: Vec::new(), synced: failed(&errors), errors };
        }
    };
    if rules.is_empty() {
        let synced = Condition::new(STATUS_FEEDBACK_SYNCED, ConditionStatus::True, REASON_NO_FEEDBACK, "");
        return FeedbackResult { values: Vec::new(), synced, errors: Vec::new() };
    }
    let live_version = object_version(live);
    let mut values: Vec<FeedbackValue> = Vec::new();
    let mut errors = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let wanted = match rule_paths(index, rule, group, kind, live_version, &mut errors) {
            Ok(wanted) => wanted,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        for Wanted { name, path } in wanted {
            match read_value(name, path, live, limits) {
                Ok(None) => {}
                Ok(Some(_)) if values.iter().any(|v| v.name == name) => {
                    errors.push(FeedbackError::DuplicateName { name: name.to_string(), path: path.to_string() });
                }
                Ok(Some(field_value)) => values.push(FeedbackValue { name: name.to_string(), field_value }),
                Err(error) => errors.push(error),
            }
        }
    }
    let synced = if errors.is_empty() {
        Condition::new(STATUS_FEEDBACK_SYNCED, ConditionStatus::True, REASON_SYNCED, "")
    } else {
        failed(&errors)
    };
    FeedbackResult { values, synced, errors }
}

/// The paths one rule asks for. Per-path problems (a version mismatch) go to `errors` so
/// that the rule's other paths are still read; a rule that cannot be used at all is `Err`.
fn rule_paths<'r>(
    index: usize,
    rule: &'r Value,
    group: &str,
    kind: &str,
    live_version: &str,
    errors: &mut Vec<FeedbackError>,
) -> Result<Vec<Wanted<'r>>, FeedbackError> {
    let malformed = |message: String| FeedbackError::MalformedRule { index, message };
    let Some(rule) = rule.as_object() else {
        return Err(malformed(format!("must be an object, got {}", json_kind(rule))));
    };
    let type_ = string_field(rule, "type").map_err(malformed)?.unwrap_or_default();
    match type_ {
        "WellKnownStatus" => {
            let table = well_known_status(group, kind)
                .ok_or_else(|| FeedbackError::NoWellKnownStatus { gvk: gvk_string(group, live_version, kind) })?;
            Ok(table.iter().map(|(name, path)| Wanted { name, path }).collect())
        }
        "JSONPaths" => {
            let paths = match rule.get("jsonPaths") {
                None | Some(Value::Null) => return Ok(Vec::new()),
                Some(Value::Array(paths)) => paths,
                Some(other) => return Err(malformed(format!("jsonPaths must be an array, got {}", json_kind(other)))),
            };
            let mut wanted = Vec::with_capacity(paths.len());
            for (i, entry) in paths.iter().enumerate() {
                let malformed = |message: String| malformed(format!("jsonPaths[{i}]: {message}"));
                let Some(entry) = entry.as_object() else {
                    errors.push(malformed(format!("must be an object, got {}", json_kind(entry))));
                    continue;
                };
                let fields = (string_field(entry, "name"), string_field(entry, "path"), string_field(entry, "version"));
                let (name, path, version) = match fields {
                    (Ok(Some(name)), Ok(Some(path)), Ok(version)) => (name, path, version.unwrap_or_default()),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                        errors.push(malformed(e));
                        continue;
                    }
                    (Ok(None), _, _) => {
                        errors.push(malformed("name: Required value".to_string()));
                        continue;
                    }
                    (_, Ok(None), _) => {
                        errors.push(malformed("path: Required value".to_string()));
                        continue;
                    }
                };
                if !version.is_empty() && version != live_version {
                    errors.push(FeedbackError::VersionMismatch {
                        name: name.to_string(),
                        wanted: version.to_string(),
                        actual: live_version.to_string(),
                    });
                    continue;
                }
                wanted.push(Wanted { name, path });
            }
            Ok(wanted)
        }
        other => Err(FeedbackError::UnknownRuleType { index, type_: other.to_string() }),
    }
}

/// Reads one path: `Ok(None)` when it selects nothing (or `null`).
fn read_value(
    name: &str,
    path: &str,
    live: &Value,
    limits: &FeedbackLimits,
) -> Result<Option<FieldValue>, FeedbackError> {
    let parsed = JsonPath::parse(path).map_err(|message| FeedbackError::InvalidPath {
        name: name.to_string(),
        path: path.to_string(),
        message,
    })?;
    let found = parsed.eval(live);
    // Several matches (a filter or wildcard) are reported together, as a list.
    let list;
    let value = match found.as_slice() {
        [] | [Value::Null] => return Ok(None),
        [one] => *one,
        many => {
            list = Value::Array(many.iter().map(|v| (*v).clone()).collect());
            &list
        }
    };
    match value {
        Value::String(s) => return Ok(Some(FieldValue::String { string: s.clone() })),
        Value::Bool(b) => return Ok(Some(FieldValue::Boolean { boolean: *b })),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(Some(FieldValue::Integer { integer: i }));
            }
        }
        _ => {}
    }
    if limits.max_json_raw_bytes == 0 {
        return Err(FeedbackError::NotScalar {
            name: name.to_string(),
            path: path.to_string(),
            kind: json_kind(value),
        });
    }
    let raw = value.to_string();
    if raw.len() > limits.max_json_raw_bytes {
        return Err(FeedbackError::TooLarge {
            name: name.to_string(),
            path: path.to_string(),
            length: raw.len(),
            limit: limits.max_json_raw_bytes,
        });
    }
    Ok(Some(FieldValue::JsonRaw { json_raw: raw }))
}

/// The False condition, with OCM's message: one error as is, several as `[a, b]` (the
/// format of Kubernetes' aggregated errors), each message once.
fn failed(errors: &[FeedbackError]) -> Condition {
    let mut messages: Vec<String> = Vec::new();
    for message in errors.iter().map(ToString::to_string) {
        if !messages.contains(&message) {
            messages.push(message);
        }
    }
    let aggregated = if messages.len() == 1 { messages.concat() } else { format!("[{}]", messages.join(", ")) };
    Condition::new(
        STATUS_FEEDBACK_SYNCED,
        ConditionStatus::False,
        REASON_SYNC_FAILED,
        format!("Sync status feedback failed with error {aggregated}"),
    )
}

fn string_field<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(format!("{key} must be a string, got {}", json_kind(other))),
    }
}

/// The version part of the live object's `apiVersion` (`apps/v1` → `v1`, `v1` → `v1`).
fn object_version(live: &Value) -> &str {
    let api_version = live.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    api_version.rsplit_once('/').map_or(api_version, |(_, version)| version)
}

/// `schema.GroupVersionKind.String()`: `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`.
fn gvk_string(group: &str, version: &str, kind: &str) -> String {
    format!("{group}/{version}, Kind={kind}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "status": {
                "readyReplicas": 1, "replicas": 2,
                "conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}]
            }
        })
    }

    fn int(name: &str, integer: i64) -> FeedbackValue {
        FeedbackValue { name: name.to_string(), field_value: FieldValue::Integer { integer } }
    }

    fn string(name: &str, s: &str) -> FeedbackValue {
        FeedbackValue { name: name.to_string(), field_value: FieldValue::String { string: s.to_string() } }
    }

    fn raw(name: &str, json_raw: &str) -> FeedbackValue {
        FeedbackValue { name: name.to_string(), field_value: FieldValue::JsonRaw { json_raw: json_raw.to_string() } }
    }

    fn run(group: &str, kind: &str, live: &Value, rules: Value) -> FeedbackResult {
        evaluate(group, kind, live, Some(&rules), &FeedbackLimits::default())
    }

    fn paths(entries: Value) -> Value {
        json!([{"type": "JSONPaths", "jsonPaths": entries}])
    }

    fn assert_synced(result: &FeedbackResult) {
        assert_eq!(
            result.synced,
            Condition::new(STATUS_FEEDBACK_SYNCED, ConditionStatus::True, REASON_SYNCED, ""),
            "errors: {:?}",
            result.errors
        );
        assert!(result.errors.is_empty());
    }

    fn assert_failed(result: &FeedbackResult, message: &str) {
        assert_eq!(result.synced.type_, STATUS_FEEDBACK_SYNCED);
        assert_eq!(result.synced.status, ConditionStatus::False);
        assert_eq!(result.synced.reason, REASON_SYNC_FAILED);
        assert_eq!(result.synced.message, format!("Sync status feedback failed with error {message}"));
    }

    #[test]
    fn well_known_deployment_reports_the_fields_present() {
        let result = run("apps", "Deployment", &deployment(), json!([{"type": "WellKnownStatus"}]));
        // availableReplicas is absent: no value, and no failure.
        assert_eq!(result.values, vec![int("ReadyReplicas", 1), int("Replicas", 2)]);
        assert_synced(&result);
    }

    #[test]
    fn well_known_daemonset() {
        let live = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "status": {"numberReady": 2, "desiredNumberScheduled": 3, "numberAvailable": 2, "numberMisscheduled": 0}});
        let result = run("apps", "DaemonSet", &live, json!([{"type": "WellKnownStatus"}]));
        assert_eq!(
            result.values,
            vec![int("NumberReady", 2), int("DesiredNumberScheduled", 3), int("NumberAvailable", 2)]
        );
        assert_synced(&result);
    }

    #[test]
    fn well_known_job_reports_the_complete_condition_status_string() {
        let live = json!({"apiVersion": "batch/v1", "kind": "Job",
            "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}});
        let result = run("batch", "Job", &live, json!([{"type": "WellKnownStatus"}]));
        assert_eq!(result.values, vec![string("JobComplete", "True"), int("JobSucceeded", 1)]);
        assert_synced(&result);
    }

    #[test]
    fn well_known_pod() {
        let live = json!({"apiVersion": "v1", "kind": "Pod",
            "status": {"conditions": [{"type": "Ready", "status": "False"}], "phase": "Succeeded"}});
        let result = run("", "Pod", &live, json!([{"type": "WellKnownStatus"}]));
        assert_eq!(result.values, vec![string("PodReady", "False"), string("PodPhase", "Succeeded")]);
        assert_synced(&result);
    }

    #[test]
    fn well_known_on_an_unknown_kind_fails() {
        let mut live = deployment();
        live["apiVersion"] = json!("extensions/v1");
        let result = run("extensions", "Deployment", &live, json!([{"type": "WellKnownStatus"}]));
        assert!(result.values.is_empty());
        assert_failed(
            &result,
            "cannot find the wellknown statuses for resource with gvk extensions/v1, Kind=Deployment",
        );
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {}});
        let result = run("", "ConfigMap", &cm, json!([{"type": "WellKnownStatus"}]));
        assert_failed(&result, "cannot find the wellknown statuses for resource with gvk /v1, Kind=ConfigMap");
    }

    #[test]
    fn json_paths_are_evaluated_against_the_whole_object() {
        let rules = paths(json!([
            {"name": "available", "path": ".status.conditions[?(@.type==\"Available\")].status "},
            {"name": "replicas", "path": ".status.replicas"},
            {"name": "name", "path": "{.metadata.name}"},
        ]));
        let result = run("apps", "Deployment", &deployment(), rules);
        assert_eq!(result.values, vec![string("available", "True"), int("replicas", 2), string("name", "web")]);
        assert_synced(&result);
    }

    #[test]
    fn scalar_types_map_to_their_field_value_types() {
        let live = json!({"apiVersion": "example.com/v1", "kind": "Thing",
            "status": {"ready": true, "count": -4, "phase": "Up", "ratio": 1.5, "huge": 18446744073709551615u64}});
        let rules = paths(json!([
            {"name": "ready", "path": ".status.ready"},
            {"name": "count", "path": ".status.count"},
            {"name": "phase", "path": ".status.phase"},
            {"name": "ratio", "path": ".status.ratio"},
            {"name": "huge", "path": ".status.huge"},
        ]));
        let result = run("example.com", "Thing", &live, rules);
        assert_eq!(
            result.values,
            vec![
                FeedbackValue { name: "ready".to_string(), field_value: FieldValue::Boolean { boolean: true } },
                int("count", -4),
                string("phase", "Up"),
                // Not an int64: reported as raw JSON, as OCM does with a float64.
                raw("ratio", "1.5"),
                raw("huge", "18446744073709551615"),
            ]
        );
        assert_synced(&result);
    }

    #[test]
    fn missing_and_null_fields_give_no_value_and_no_failure() {
        let mut live = deployment();
        live["status"]["observedGeneration"] = Value::Null;
        let rules = paths(json!([
            {"name": "missing", "path": ".status.nothingHere"},
            {"name": "deep", "path": ".spec.template.spec.containers[0].image"},
            {"name": "null", "path": ".status.observedGeneration"},
            {"name": "nomatch", "path": ".status.conditions[?(@.type==\"Degraded\")].status"},
            {"name": "replicas", "path": ".status.replicas"},
        ]));
        let result = run("apps", "Deployment", &live, rules);
        assert_eq!(result.values, vec![int("replicas", 2)]);
        assert_synced(&result);
    }

    #[test]
    fn non_scalars_become_compact_raw_json() {
        let rules = paths(json!([
            {"name": "conditions", "path": ".status.conditions"},
            {"name": "trueTypes", "path": ".status.conditions[?(@.status==\"True\")].type"},
        ]));
        let result = run("apps", "Deployment", &deployment(), rules);
        assert_eq!(
            result.values,
            vec![
                raw("conditions", r#"[{"type":"Available","status":"True"},{"type":"Progressing","status":"True"}]"#),
                // Several matches are reported together, as a list.
                raw("trueTypes", r#"["Available","Progressing"]"#),
            ]
        );
        assert_synced(&result);
    }

    #[test]
    fn oversize_raw_json_is_refused_not_truncated() {
        let items: Vec<Value> = (0..200).map(|i| json!({"index": i})).collect();
        let live = json!({"apiVersion": "example.com/v1", "kind": "Thing", "status": {"items": items, "phase": "Up"}});
        let raw_len = live["status"]["items"].to_string().len();
        assert!(raw_len > DEFAULT_MAX_JSON_RAW_BYTES);
        let rules = paths(json!([
            {"name": "items", "path": ".status.items"},
            {"name": "phase", "path": ".status.phase"},
        ]));
        let result = run("example.com", "Thing", &live, rules);
        // The other path is still reported.
        assert_eq!(result.values, vec![string("phase", "Up")]);
        assert_eq!(
            result.errors,
            vec![FeedbackError::TooLarge {
                name: "items".to_string(),
                path: ".status.items".to_string(),
                length: raw_len,
                limit: 1024
            }]
        );
        assert_failed(
            &result,
            &format!(
                "the length of returned json raw string for name items (path .status.items) is {raw_len}, larger than the maximum length 1024"
            ),
        );
    }

    #[test]
    fn the_raw_json_limit_is_inclusive_and_configurable() {
        let live = json!({"status": {"list": ["abcdef"]}});
        let rules = paths(json!([{"name": "list", "path": ".status.list"}]));
        // `["abcdef"]` is 10 bytes.
        let exact = evaluate("", "X", &live, Some(&rules), &FeedbackLimits { max_json_raw_bytes: 10 });
        assert_eq!(exact.values, vec![raw("list", r#"["abcdef"]"#)]);
        assert_synced(&exact);
        let below = evaluate("", "X", &live, Some(&rules), &FeedbackLimits { max_json_raw_bytes: 9 });
        assert!(below.values.is_empty());
        assert_failed(
            &below,
            "the length of returned json raw string for name list (path .status.list) is 10, larger than the maximum length 9",
        );
        assert_eq!(FeedbackLimits::default().max_json_raw_bytes, 1024);
    }

    #[test]
    fn with_raw_json_off_non_scalars_fail() {
        let rules = paths(json!([
            {"name": "conditions", "path": ".status.conditions"},
            {"name": "replicas", "path": ".status.replicas"},
        ]));
        let off = FeedbackLimits { max_json_raw_bytes: 0 };
        let result = evaluate("apps", "Deployment", &deployment(), Some(&rules), &off);
        assert_eq!(result.values, vec![int("replicas", 2)]);
        assert_failed(
            &result,
            "the value for name conditions (path .status.conditions) is a list, not an integer, string or boolean, and raw JSON feedback is disabled",
        );
    }

    #[test]
    fn a_path_version_must_match_the_object() {
        let rules = paths(json!([
            {"name": "old", "version": "v1beta1", "path": ".status.replicas"},
            {"name": "current", "version": "v1", "path": ".status.replicas"},
        ]));
        let result = run("apps", "Deployment", &deployment(), rules);
        assert_eq!(result.values, vec![int("current", 2)]);
        assert_failed(
            &result,
            "version set in the path old is not matched for the related resource (path version v1beta1, resource version v1)",
        );
    }

    #[test]
    fn an_unparsable_path_names_the_rule_and_path() {
        let rules = paths(json!([{"name": "bad", "path": ".status.conditions[?(@.type=="}]));
        let result = run("apps", "Deployment", &deployment(), rules);
        assert!(result.values.is_empty());
        let [FeedbackError::InvalidPath { name, path, message }] = result.errors.as_slice() else {
            panic!("unexpected errors {:?}", result.errors);
        };
        assert_eq!((name.as_str(), path.as_str()), ("bad", ".status.conditions[?(@.type=="));
        assert_failed(
            &result,
            &format!("failed to parse json path .status.conditions[?(@.type== of bad with error: {message}"),
        );
    }

    #[test]
    fn several_failures_are_aggregated_like_kubernetes_errors() {
        let rules = json!([
            {"type": "WellKnownStatus"},
            {"type": "JSONPaths", "jsonPaths": [
                {"name": "old", "version": "v2", "path": ".status.replicas"},
                {"name": "bad", "path": ".status["},
            ]},
            {"type": "WellKnownStatus"},
        ]);
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        let result = run("", "ConfigMap", &live, rules);
        assert_eq!(result.errors.len(), 4);
        let parse_error = match &result.errors[2] {
            FeedbackError::InvalidPath { message, .. } => message.clone(),
            other => panic!("unexpected {other:?}"),
        };
        // The repeated WellKnownStatus failure appears once.
        assert_failed(
            &result,
            &format!(
                "[cannot find the wellknown statuses for resource with gvk /v1, Kind=ConfigMap, version set in the path old is not matched for the related resource (path version v2, resource version v1), failed to parse json path .status[ of bad with error: {parse_error}]"
            ),
        );
    }

    #[test]
    fn no_rules_is_synced_with_its_own_reason() {
        let expected = Condition::new(STATUS_FEEDBACK_SYNCED, ConditionStatus::True, REASON_NO_FEEDBACK, "");
        for rules in [None, Some(Value::Null), Some(json!([]))] {
            let result = evaluate("apps", "Deployment", &deployment(), rules.as_ref(), &FeedbackLimits::default());
            assert!(result.values.is_empty());
            assert_eq!(result.synced, expected);
        }
    }

    #[test]
    fn malformed_rules_are_reported() {
        let result = run("apps", "Deployment", &deployment(), json!({"type": "WellKnownStatus"}));
        assert_failed(&result, "feedbackRules must be an array, got an object");

        let result = run("apps", "Deployment", &deployment(), json!([{"type": "Everything"}, "x"]));
        assert_eq!(
            result.errors,
            vec![
                FeedbackError::UnknownRuleType { index: 0, type_: "Everything".to_string() },
                FeedbackError::MalformedRule { index: 1, message: "must be an object, got a string".to_string() },
            ]
        );

        let rules = paths(json!([{"name": "noPath"}, {"path": ".status.replicas"}, {"name": 3, "path": ".x"}]));
        let result = run("apps", "Deployment", &deployment(), rules);
        assert!(result.values.is_empty());
        assert_failed(
            &result,
            "[feedbackRules[0]: jsonPaths[0]: path: Required value, feedbackRules[0]: jsonPaths[1]: name: Required value, feedbackRules[0]: jsonPaths[2]: name must be a string, got an integer]",
        );
    }

    #[test]
    fn duplicate_names_keep_the_first_value() {
        let rules = json!([
            {"type": "WellKnownStatus"},
            {"type": "JSONPaths", "jsonPaths": [{"name": "Replicas", "path": ".status.readyReplicas"}]},
        ]);
        let result = run("apps", "Deployment", &deployment(), rules);
        assert_eq!(result.values, vec![int("ReadyReplicas", 1), int("Replicas", 2)]);
        assert_failed(
            &result,
            "duplicate feedback value name Replicas (path .status.readyReplicas): only the first value with this name is reported",
        );
    }

    #[test]
    fn values_serialize_as_the_crd_status_schema() {
        let values = vec![
            int("Replicas", 2),
            string("PodPhase", "Running"),
            FeedbackValue { name: "ok".to_string(), field_value: FieldValue::Boolean { boolean: false } },
            raw("conditions", "[]"),
        ];
        let serialized = match serde_json::to_value(&values) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            serialized,
            json!([
                {"name": "Replicas", "fieldValue": {"type": "Integer", "integer": 2}},
                {"name": "PodPhase", "fieldValue": {"type": "String", "string": "Running"}},
                {"name": "ok", "fieldValue": {"type": "Boolean", "boolean": false}},
                {"name": "conditions", "fieldValue": {"type": "JsonRaw", "jsonRaw": "[]"}},
            ])
        );
        let back: Vec<FeedbackValue> = match serde_json::from_value(serialized) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(back, values);
    }
}
