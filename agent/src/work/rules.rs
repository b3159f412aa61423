//! conditionRules: CEL (and WellKnownConditions) rules of a `manifestConfigs` entry evaluated
//! against the live spoke object into per-manifest conditions, and their aggregation into
//! ManifestWork conditions, as OCM's work agent does (`ocm:pkg/work/spoke/conditions/reader.go`,
//! `…/conditions/rules/rule.go`, `…/conditions/helpers.go`).
//!
//! Semantics kept from OCM:
//! - `celExpressions` are ANDed and evaluated in order; the first `false` ends the rule
//!   (False, `ConditionRuleEvaluated`), so a later broken expression is not reached.
//! - An expression that does not parse, fails at run time, or is not a bool gives False with
//!   `ConditionRuleExpressionError` and the error as message. OCM uses
//!   `ConditionRuleInvalid` only for a rule whose `type` it does not know (status Unknown);
//!   `ConditionRuleInternalError` (Unknown) is for failures the user cannot cause, here a
//!   panic inside the interpreter.
//! - The message is `messageExpression` (variables `object` and `result`) when it yields a
//!   non-empty string, else `message`, else `Manifest is <condition>` / `Manifest is not
//!   <condition>`. A failing `messageExpression` puts its error in the message but leaves
//!   status and reason alone.
//! - `WellKnownConditions` looks up a built-in rule by (kind, `condition`): `Complete` for
//!   Jobs and Pods. `message`/`messageExpression` on the rule override the built-in ones.
//!   Any other pair gives no condition at all, so a condition it set earlier is pruned by
//!   the caller (rule conditions carry the work generation; OCM drops those of an older one).
//! - Work-level aggregation covers conditions whose reason starts with `ConditionRule`:
//!   `Progressing` is True if any manifest is; every other type is False if any is False,
//!   else Unknown if any is Unknown, else True.
//!
//! Differences from OCM, because `cel-interpreter` is not cel-go: there is no type checking
//! (an unknown variable or function fails at run time, still `ConditionRuleExpressionError`),
//! no cost budget, and only the interpreter's standard functions plus `hasConditions`.
//! Error texts are the interpreter's (`No such key: phase` where cel-go says
//! `no such key: phase`).

use flotilla_apimachinery::cel::json_to_cel;
use flotilla_apimachinery::json_kind;
use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cel_interpreter::extractors::Arguments;
use cel_interpreter::objects::Key;
use cel_interpreter::{Context, ExecutionError, FunctionContext, Program, Value as Cel};
use serde_json::{Map, Value};

pub use super::condition::{Condition, ConditionStatus};

/// The expressions' result is known (True or False).
pub const REASON_EVALUATED: &str = "ConditionRuleEvaluated";
/// The rule itself is unusable (an unknown `type`, a malformed entry).
pub const REASON_INVALID: &str = "ConditionRuleInvalid";
/// An expression did not parse, failed, or did not give a bool.
pub const REASON_EXPRESSION_ERROR: &str = "ConditionRuleExpressionError";
/// The interpreter itself failed.
pub const REASON_INTERNAL_ERROR: &str = "ConditionRuleInternalError";
/// Reason of the work-level conditions built by [`aggregate`].
pub const REASON_AGGREGATED: &str = "ConditionRulesAggregated";
/// The prefix OCM uses to recognize conditions produced by rules.
pub const RULE_REASON_PREFIX: &str = "ConditionRule";
/// A manifest (and a work) that is `Complete` is no longer updated.
pub const CONDITION_COMPLETE: &str = "Complete";
/// Aggregated with "any True wins" instead of "any False wins".
pub const CONDITION_PROGRESSING: &str = "Progressing";

const JOB_COMPLETE_EXPRESSION: &str = "hasConditions(object.status)
    ? object.status.conditions.filter(c, c.type == 'Complete' || c.type == 'Failed').exists(c, c.status == 'True')
    : false";
const JOB_COMPLETE_MESSAGE: &str = r#"result ? "Job is finished" : "Job is not finished""#;
const POD_COMPLETE_EXPRESSION: &str = "object.status.phase in ['Succeeded', 'Failed']";
const POD_COMPLETE_MESSAGE: &str = r#""Pod is in phase " + object.status.phase"#;

/// A problem that keeps a rule entry from producing any condition (there is no condition
/// type to report it under). The CRD's schema rules these out; they matter only if the
/// hub's validation was bypassed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("conditionRules must be an array, got {got}")]
    NotAnArray { got: &'static str },
    #[error("conditionRules[{index}] must be an object")]
    NotAnObject { index: usize },
    #[error("conditionRules[{index}].condition: Required value")]
    MissingCondition { index: usize },
}

/// A parsed CEL program, or why it did not parse (reported when evaluation reaches it).
type Compiled = Result<Arc<Program>, String>;

#[derive(Debug)]
enum CompiledRule {
    Cel(CelRule),
    /// Reported as is on every evaluation.
    Invalid(Condition),
}

#[derive(Debug)]
struct CelRule {
    condition: String,
    expressions: Vec<Compiled>,
    message: Option<String>,
    message_expression: Option<Compiled>,
}

/// The `conditionRules` of one manifest, parsed once and evaluated against each new
/// version of the live object.
#[derive(Debug)]
pub struct CompiledRules {
    rules: Vec<CompiledRule>,
    problems: Vec<RuleError>,
}

impl CompiledRules {
    /// Compiles a manifest's `conditionRules` (the JSON array from its `manifestConfigs`
    /// entry; `None`/`null` when it has none). `group` and `kind` are the manifest's, and
    /// select the WellKnownConditions built-ins. Never fails: a broken rule becomes a
    /// condition that says what is wrong, or, without a condition type, a [`RuleError`].
    pub fn compile(group: &str, kind: &str, condition_rules: Option<&Value>) -> CompiledRules {
        let mut compiled = CompiledRules { rules: Vec::new(), problems: Vec::new() };
        let entries = match condition_rules {
            None | Some(Value::Null) => return compiled,
            Some(Value::Array(entries)) => entries,
            Some(other) => {
                compiled.problems.push(RuleError::NotAnArray { got: json_kind(other) });
                return compiled;
            }
        };
        for (index, entry) in entries.iter().enumerate() {
            let Some(entry) = entry.as_object() else {
                compiled.problems.push(RuleError::NotAnObject { index });
                continue;
            };
            match compile_rule(group, kind, index, entry) {
                Ok(Some(rule)) => compiled.rules.push(rule),
                Ok(None) => {}
                Err(problem) => compiled.problems.push(problem),
            }
        }
        compiled
    }

    /// Rule entries that produce no condition because they are malformed.
    pub fn problems(&self) -> &[RuleError] {
        &self.problems
    }

    /// True when no rule produces a condition (nothing to evaluate).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The manifest conditions the rules give for `live`, in rule order, without
    /// `observedGeneration`/`lastTransitionTime` (the caller sets them).
    pub fn evaluate(&self, live: &Value) -> Vec<Condition> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let mut scope = environment();
        scope.add_variable_from_value("object", json_to_cel(live));
        self.rules
            .iter()
            .map(|rule| match rule {
                CompiledRule::Invalid(condition) => condition.clone(),
                CompiledRule::Cel(rule) => evaluate_rule(rule, &scope),
            })
            .collect()
    }
}

/// `Ok(None)`: a WellKnownConditions rule without a built-in for this kind (no condition).
fn compile_rule(
    group: &str,
    kind: &str,
    index: usize,
    entry: &Map<String, Value>,
) -> Result<Option<CompiledRule>, RuleError> {
    let condition = match entry.get("condition") {
        Some(Value::String(c)) if !c.is_empty() => c.clone(),
        _ => return Err(RuleError::MissingCondition { index }),
    };
    let invalid = |message: String| {
        Ok(Some(CompiledRule::Invalid(Condition::new(&condition, ConditionStatus::Unknown, REASON_INVALID, message))))
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("conditionRules[{index}].{key} must be a string, got {}", json_kind(other))),
        }
    };
    let (type_, message, message_expression) = match (text("type"), text("message"), text("messageExpression")) {
        (Ok(t), Ok(m), Ok(me)) => (t.unwrap_or_default(), m, me),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return invalid(e),
    };
    match type_.as_str() {
        "CEL" => {
            let sources = match entry.get("celExpressions") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => {
                    let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                    match strings {
                        Some(strings) => strings,
                        None => return invalid(format!("conditionRules[{index}].celExpressions must be strings")),
                    }
                }
                Some(other) => {
                    return invalid(format!(
                        "conditionRules[{index}].celExpressions must be an array, got {}",
                        json_kind(other)
                    ));
                }
            };
            Ok(Some(CompiledRule::Cel(CelRule {
                condition,
                expressions: sources.into_iter().map(compile).collect(),
                message,
                message_expression: message_expression.as_deref().map(compile),
            })))
        }
        "WellKnownConditions" => {
            let Some((expression, builtin_message)) = well_known_condition(group, kind, &condition) else {
                return Ok(None);
            };
            Ok(Some(CompiledRule::Cel(CelRule {
                condition,
                expressions: vec![compile(expression)],
                message,
                message_expression: Some(compile(message_expression.as_deref().unwrap_or(builtin_message))),
            })))
        }
        other => invalid(format!("unrecognized condition rule type {other}")),
    }
}

/// OCM's built-in rules (`ocm:pkg/work/spoke/conditions/rules/rule.go`): the expression and
/// the message expression for a (group, kind, condition).
pub fn well_known_condition(group: &str, kind: &str, condition: &str) -> Option<(&'static str, &'static str)> {
    match (group, kind, condition) {
        ("batch", "Job", CONDITION_COMPLETE) => Some((JOB_COMPLETE_EXPRESSION, JOB_COMPLETE_MESSAGE)),
        ("", "Pod", CONDITION_COMPLETE) => Some((POD_COMPLETE_EXPRESSION, POD_COMPLETE_MESSAGE)),
        _ => None,
    }
}

/// Parses a CEL program. The error is the parser's report (`ERROR: <input>:1:8: Syntax
/// error: …` followed by the source snippet, like cel-go's). `cel-parser` panics on some
/// truncated inputs (`a ==`, an unterminated string): that is a syntax error too, never a
/// crash of the agent.
/// Programs by source text, shared by every work: the same rules are compiled again on every
/// pass over a work (each resync), and parsing is most of a rule's cost. Bounded: cleared
/// when it holds this many (rules change rarely, so it refills with the ones in use).
const COMPILED_CACHE_SIZE: usize = 1024;

fn compile(source: &str) -> Compiled {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<HashMap<String, Compiled>>> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let lock = || cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(hit) = lock().get(source) {
        return hit.clone();
    }
    let compiled = match catch_unwind(|| Program::compile(source)) {
        Ok(Ok(program)) => Ok(Arc::new(program)),
        Ok(Err(errors)) => Err(errors.to_string()),
        Err(_) => Err(format!("ERROR: <input>: Syntax error: cannot parse {source:?}")),
    };
    let mut cache = lock();
    if cache.len() >= COMPILED_CACHE_SIZE {
        cache.clear();
    }
    cache.insert(source.to_string(), compiled.clone());
    compiled
}

/// How running a program went.
enum Outcome {
    Value(Cel),
    /// The expression's fault (bad syntax, missing key, wrong types).
    Error(String),
    /// The interpreter's fault.
    Internal(String),
}

fn run(program: &Compiled, scope: &Context) -> Outcome {
    let program = match program {
        Ok(program) => program,
        Err(parse_error) => return Outcome::Error(parse_error.clone()),
    };
    match catch_unwind(AssertUnwindSafe(|| program.execute(scope))) {
        Ok(Ok(value)) => Outcome::Value(value),
        Ok(Err(error)) => Outcome::Error(error.to_string()),
        Err(_) => Outcome::Internal("internal error in the CEL interpreter".to_string()),
    }
}

fn evaluate_rule(rule: &CelRule, scope: &Context) -> Condition {
    let condition = |status, reason: &str, message: String| Condition::new(&rule.condition, status, reason, message);
    let mut result = true;
    for expression in &rule.expressions {
        match run(expression, scope) {
            Outcome::Value(Cel::Bool(true)) => {}
            Outcome::Value(Cel::Bool(false)) => {
                result = false;
                break;
            }
            Outcome::Value(other) => {
                let message = format!("expected bool result, got {}", type_name(&other));
                return condition(ConditionStatus::False, REASON_EXPRESSION_ERROR, message);
            }
            Outcome::Error(message) => return condition(ConditionStatus::False, REASON_EXPRESSION_ERROR, message),
            Outcome::Internal(message) => return condition(ConditionStatus::Unknown, REASON_INTERNAL_ERROR, message),
        }
    }
    let status = if result { ConditionStatus::True } else { ConditionStatus::False };
    condition(status, REASON_EVALUATED, rule_message(rule, scope, result))
}

/// `messageExpression`, then `message`, then the default text.
fn rule_message(rule: &CelRule, scope: &Context, result: bool) -> String {
    if let Some(expression) = &rule.message_expression {
        let mut inner = scope.new_inner_scope();
        inner.add_variable_from_value("result", Cel::Bool(result));
        match run(expression, &inner) {
            Outcome::Value(Cel::String(text)) if !text.is_empty() => return text.to_string(),
            Outcome::Value(Cel::String(_)) => {}
            Outcome::Value(other) => {
                return format!("expected message expression to have a string result, got {}", type_name(&other));
            }
            // OCM keeps only the first line of a parse error here (no source snippet).
            Outcome::Error(message) | Outcome::Internal(message) => {
                return message.split("\n| ").next().unwrap_or_default().to_string();
            }
        }
    }
    if let Some(message) = &rule.message {
        return message.clone();
    }
    if result { format!("Manifest is {}", rule.condition) } else { format!("Manifest is not {}", rule.condition) }
}

/// The root scope: the interpreter's standard functions plus OCM's `hasConditions`.
fn environment() -> Context<'static> {
    let mut env = Context::default();
    env.add_function("hasConditions", has_conditions);
    env
}

/// `hasConditions(map) bool` (`sdk-go:pkg/cel/library/conditions.go`): true when the map
/// has a `conditions` key holding a non-empty list; false for anything else, including
/// non-maps, so rules can guard `object.status.conditions` before using it.
fn has_conditions(ftx: &FunctionContext, Arguments(args): Arguments) -> Result<Cel, ExecutionError> {
    match args.as_slice() {
        [Cel::Map(map)] => {
            let conditions = map.map.get(&Key::String(Arc::new("conditions".to_string())));
            Ok(Cel::Bool(matches!(conditions, Some(Cel::List(items)) if !items.is_empty())))
        }
        [_] => Ok(Cel::Bool(false)),
        _ => Err(ftx.error(format!("hasConditions() takes exactly one argument, got {}", args.len()))),
    }
}

/// Type names in error messages, spelled as OCM's (Go's) for the usual cases.
fn type_name(value: &Cel) -> &'static str {
    match value {
        Cel::Int(_) => "int64",
        Cel::UInt(_) => "uint64",
        Cel::Float(_) => "float64",
        Cel::String(_) => "string",
        Cel::Bool(_) => "bool",
        Cel::Bytes(_) => "[]uint8",
        Cel::List(_) => "list",
        Cel::Map(_) => "map",
        Cel::Null => "null",
        _ => "a non-bool value",
    }
}

/// True when OCM would consider `condition` produced by a condition rule (its reason starts
/// with `ConditionRule`): those are the ones [`aggregate`] reads and the caller prunes.
pub fn is_rule_condition(condition: &Condition) -> bool {
    condition.reason.starts_with(RULE_REASON_PREFIX)
}

/// True when the manifest's conditions say it is `Complete`: the apply loop then stops
/// updating (and recreating) it, as OCM does.
pub fn is_complete(conditions: &[Condition]) -> bool {
    conditions.iter().any(|c| c.type_ == CONDITION_COMPLETE && c.is_true())
}

#[derive(Default)]
struct Tally<'c> {
    true_: Vec<usize>,
    false_: Vec<usize>,
    unknown: Vec<usize>,
    /// The last non-empty message (used when only one manifest has the condition).
    message: Option<&'c str>,
}

/// Work-level conditions from per-manifest ones: one per condition type produced by rules
/// (reason prefix `ConditionRule`; other conditions such as `Applied` are ignored, so whole
/// manifest condition lists can be passed), sorted by type, reason
/// `ConditionRulesAggregated`. Manifests are named by their index in `per_manifest`, so
/// pass them in `status.resourceStatus.manifests` order.
///
/// With a single contributing manifest its message is kept (OCM does this, so a lone Job's
/// "Job is finished" reaches the work); otherwise the message counts the manifests and
/// lists those holding the status back.
pub fn aggregate(per_manifest: &[&[Condition]]) -> Vec<Condition> {
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for (index, conditions) in per_manifest.iter().enumerate() {
        for condition in conditions.iter().filter(|c| is_rule_condition(c)) {
            let tally = tallies.entry(condition.type_.as_str()).or_default();
            match condition.status {
                ConditionStatus::True => tally.true_.push(index),
                ConditionStatus::False => tally.false_.push(index),
                ConditionStatus::Unknown => tally.unknown.push(index),
            }
            if !condition.message.is_empty() {
                tally.message = Some(&condition.message);
            }
        }
    }
    tallies.into_iter().map(|(type_, tally)| aggregate_one(type_, &tally)).collect()
}

fn aggregate_one(type_: &str, tally: &Tally) -> Condition {
    let status = if type_ == CONDITION_PROGRESSING {
        match (tally.true_.is_empty(), tally.unknown.is_empty()) {
            (false, _) => ConditionStatus::True,
            (true, false) => ConditionStatus::Unknown,
            (true, true) => ConditionStatus::False,
        }
    } else if !tally.false_.is_empty() {
        ConditionStatus::False
    } else if !tally.unknown.is_empty() || tally.true_.is_empty() {
        ConditionStatus::Unknown
    } else {
        ConditionStatus::True
    };
    let total = tally.true_.len() + tally.false_.len() + tally.unknown.len();
    let message = match tally.message {
        Some(message) if total == 1 => message.to_string(),
        _ => {
            let mut message = format!("Aggregated from {total} manifest conditions");
            let list = |indices: &[usize]| indices.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            if type_ == CONDITION_PROGRESSING {
                if !tally.true_.is_empty() {
                    message.push_str(&format!("; {type_}: manifests {}", list(&tally.true_)));
                }
            } else {
                if !tally.false_.is_empty() {
                    message.push_str(&format!("; not {type_}: manifests {}", list(&tally.false_)));
                }
                if !tally.unknown.is_empty() {
                    message.push_str(&format!("; {type_} unknown: manifests {}", list(&tally.unknown)));
                }
            }
            message
        }
    };
    Condition::new(type_, status, REASON_AGGREGATED, message)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "test"},
            "status": {"readyReplicas": 1, "replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
        })
    }

    fn job(conditions: Value, succeeded: i64) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "test"},
            "status": {"conditions": conditions, "succeeded": succeeded}})
    }

    fn pod(phase: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "test"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}], "phase": phase}})
    }

    fn cond(type_: &str, status: ConditionStatus, reason: &str, message: &str) -> Condition {
        Condition::new(type_, status, reason, message)
    }

    /// Evaluates one rule against `live` and returns its single condition.
    fn one(group: &str, kind: &str, live: &Value, rule: Value) -> Condition {
        let rules = json!([rule]);
        let compiled = CompiledRules::compile(group, kind, Some(&rules));
        assert!(compiled.problems().is_empty(), "{:?}", compiled.problems());
        match compiled.evaluate(live).as_slice() {
            [condition] => condition.clone(),
            other => panic!("expected one condition, got {other:?}"),
        }
    }

    fn cel(live: &Value, rule: Value) -> Condition {
        one("apps", "Deployment", live, rule)
    }

    fn parse_error(source: &str) -> String {
        match Program::compile(source) {
            Ok(_) => panic!("{source:?} parses"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn cel_rule_with_message_expression_sees_result() {
        let rule = |expression: &str| {
            json!({"type": "CEL", "condition": "Available", "celExpressions": [expression],
                "messageExpression": "result ? \"Deployment available\" : \"Deployment unavailable\""})
        };
        assert_eq!(
            cel(
                &deployment(),
                rule(r#"object.status.conditions.exists(c, c.type == "Available" && c.status == "True")"#)
            ),
            cond("Available", ConditionStatus::True, REASON_EVALUATED, "Deployment available")
        );
        assert_eq!(
            cel(&deployment(), rule("object.status.readyReplicas == object.status.replicas")),
            cond("Available", ConditionStatus::False, REASON_EVALUATED, "Deployment unavailable")
        );
    }

    #[test]
    fn expressions_are_anded_and_stop_at_the_first_false() {
        let rule = |expressions: Value| json!({"type": "CEL", "condition": "Ready", "celExpressions": expressions});
        assert_eq!(
            cel(&deployment(), rule(json!(["object.status.replicas == 2", "object.status.readyReplicas >= 1"]))),
            cond("Ready", ConditionStatus::True, REASON_EVALUATED, "Manifest is Ready")
        );
        assert_eq!(
            cel(&deployment(), rule(json!(["object.status.replicas == 2", "object.status.readyReplicas == 2"]))),
            cond("Ready", ConditionStatus::False, REASON_EVALUATED, "Manifest is not Ready")
        );
        // A later broken expression is never reached once one is false.
        assert_eq!(
            cel(&deployment(), rule(json!(["false", "object.(", "object.missing"]))),
            cond("Ready", ConditionStatus::False, REASON_EVALUATED, "Manifest is not Ready")
        );
        // No expressions: vacuously true, as in OCM.
        assert_eq!(
            cel(&deployment(), rule(json!([]))),
            cond("Ready", ConditionStatus::True, REASON_EVALUATED, "Manifest is Ready")
        );
    }

    #[test]
    fn invalid_cel_is_an_expression_error_with_the_parser_message() {
        let source = "object.(";
        let condition = cel(
            &deployment(),
            json!({"type": "CEL", "condition": "Available", "celExpressions": ["true", source], "message": "unused"}),
        );
        let expected = parse_error(source);
        assert_eq!(
            expected,
            "ERROR: <input>:1:8: Syntax error: no viable alternative at input '.('\n| object.(\n| .......^"
        );
        assert_eq!(condition, cond("Available", ConditionStatus::False, REASON_EXPRESSION_ERROR, &expected));
    }

    #[test]
    fn a_parser_panic_is_a_syntax_error() {
        for source in ["object.status.replicas ==", "'unterminated"] {
            let condition =
                cel(&deployment(), json!({"type": "CEL", "condition": "Available", "celExpressions": [source]}));
            assert_eq!(
                condition,
                cond(
                    "Available",
                    ConditionStatus::False,
                    REASON_EXPRESSION_ERROR,
                    &format!("ERROR: <input>: Syntax error: cannot parse {source:?}")
                )
            );
        }
    }

    #[test]
    fn runtime_errors_are_expression_errors() {
        let rule = |expression: &str| json!({"type": "CEL", "condition": "Available", "celExpressions": [expression]});
        assert_eq!(
            cel(&deployment(), rule("object.missing")),
            cond("Available", ConditionStatus::False, REASON_EXPRESSION_ERROR, "No such key: missing")
        );
        // `result` only exists for messageExpression.
        assert_eq!(
            cel(&deployment(), rule("result")),
            cond("Available", ConditionStatus::False, REASON_EXPRESSION_ERROR, "Undeclared reference to 'result'")
        );
        assert_eq!(cel(&deployment(), rule("noSuchFunction(object)")).reason, REASON_EXPRESSION_ERROR);
    }

    #[test]
    fn non_bool_results_are_expression_errors() {
        let rule = |expression: &str| json!({"type": "CEL", "condition": "Available", "celExpressions": [expression]});
        assert_eq!(
            cel(&deployment(), rule(r#"object.status.conditions.filter(c, c.type == "Available")[0].status"#)),
            cond("Available", ConditionStatus::False, REASON_EXPRESSION_ERROR, "expected bool result, got string")
        );
        assert_eq!(
            cel(&deployment(), rule("object.status.replicas")),
            cond("Available", ConditionStatus::False, REASON_EXPRESSION_ERROR, "expected bool result, got int64")
        );
        assert_eq!(cel(&deployment(), rule("object.status")).message, "expected bool result, got map");
    }

    #[test]
    fn message_expression_failures_only_change_the_message() {
        let rule = |message_expression: &str| {
            json!({"type": "CEL", "condition": "Available", "celExpressions": ["true"],
                "message": "static message", "messageExpression": message_expression})
        };
        // A parse error keeps its first line only (no source snippet), as in OCM.
        assert_eq!(
            cel(&deployment(), rule("result ? 'ok' : 'ko' x")),
            cond(
                "Available",
                ConditionStatus::True,
                REASON_EVALUATED,
                "ERROR: <input>:1:22: Syntax error: extraneous input 'x' expecting <EOF>"
            )
        );
        assert!(parse_error("result ? 'ok' : 'ko' x").contains("\n| "));
        assert_eq!(
            cel(&deployment(), rule("object.status.nope")),
            cond("Available", ConditionStatus::True, REASON_EVALUATED, "No such key: nope")
        );
        assert_eq!(
            cel(&deployment(), rule("object.status.replicas")),
            cond(
                "Available",
                ConditionStatus::True,
                REASON_EVALUATED,
                "expected message expression to have a string result, got int64"
            )
        );
        // An empty message falls back to `message`.
        assert_eq!(
            cel(&deployment(), rule("''")),
            cond("Available", ConditionStatus::True, REASON_EVALUATED, "static message")
        );
        // Expressions can use `object` and `result` together.
        assert_eq!(
            cel(
                &deployment(),
                rule(
                    "string(object.status.readyReplicas) + '/' + string(object.status.replicas) + (result ? ' ok' : ' not ok')"
                )
            ),
            cond("Available", ConditionStatus::True, REASON_EVALUATED, "1/2 ok")
        );
    }

    #[test]
    fn message_falls_back_to_message_then_default() {
        let with_message =
            json!({"type": "CEL", "condition": "Degraded", "celExpressions": ["false"], "message": "all good"});
        assert_eq!(
            cel(&deployment(), with_message),
            cond("Degraded", ConditionStatus::False, REASON_EVALUATED, "all good")
        );
        let bare = json!({"type": "CEL", "condition": "Degraded", "celExpressions": ["false"]});
        assert_eq!(
            cel(&deployment(), bare),
            cond("Degraded", ConditionStatus::False, REASON_EVALUATED, "Manifest is not Degraded")
        );
    }

    #[test]
    fn has_conditions_matches_sdk_go() {
        let rule = json!({"type": "CEL", "condition": "HasConditions", "message": "should work", "celExpressions": [
            "hasConditions(object.status)
                && !hasConditions({})
                && !hasConditions(\"badtype\")
                && !hasConditions({\"conditions\": []})
                && !hasConditions({\"conditions\": null})
                && !hasConditions({\"conditions\": \"x\"})"
        ]});
        assert_eq!(
            cel(&deployment(), rule),
            cond("HasConditions", ConditionStatus::True, REASON_EVALUATED, "should work")
        );
        let arity = json!({"type": "CEL", "condition": "X", "celExpressions": ["hasConditions(object, object)"]});
        let condition = cel(&deployment(), arity);
        assert_eq!((condition.status, condition.reason.as_str()), (ConditionStatus::False, REASON_EXPRESSION_ERROR));
        assert!(
            condition.message.contains("hasConditions() takes exactly one argument, got 2"),
            "{}",
            condition.message
        );
    }

    #[test]
    fn well_known_job_complete() {
        let rule = json!({"type": "WellKnownConditions", "condition": "Complete"});
        let finished = cond("Complete", ConditionStatus::True, REASON_EVALUATED, "Job is finished");
        let not_finished = cond("Complete", ConditionStatus::False, REASON_EVALUATED, "Job is not finished");
        let complete = job(json!([{"type": "Complete", "status": "True"}, {"type": "Another", "status": "True"}]), 1);
        assert_eq!(one("batch", "Job", &complete, rule.clone()), finished);
        let failed = job(json!([{"type": "Failed", "status": "True"}]), 0);
        assert_eq!(one("batch", "Job", &failed, rule.clone()), finished);
        let running = job(json!([{"type": "Complete", "status": "False"}, {"type": "Another", "status": "True"}]), 0);
        assert_eq!(one("batch", "Job", &running, rule.clone()), not_finished);
        // No conditions yet: hasConditions guards the access.
        assert_eq!(one("batch", "Job", &job(json!([]), 0), rule.clone()), not_finished);
        let fresh = json!({"apiVersion": "batch/v1", "kind": "Job", "status": {}});
        assert_eq!(one("batch", "Job", &fresh, rule), not_finished);
    }

    #[test]
    fn well_known_pod_complete() {
        let rule = json!({"type": "WellKnownConditions", "condition": "Complete"});
        assert_eq!(
            one("", "Pod", &pod("Succeeded"), rule.clone()),
            cond("Complete", ConditionStatus::True, REASON_EVALUATED, "Pod is in phase Succeeded")
        );
        assert_eq!(
            one("", "Pod", &pod("Failed"), rule.clone()),
            cond("Complete", ConditionStatus::True, REASON_EVALUATED, "Pod is in phase Failed")
        );
        assert_eq!(
            one("", "Pod", &pod("Running"), rule.clone()),
            cond("Complete", ConditionStatus::False, REASON_EVALUATED, "Pod is in phase Running")
        );
        // Without a phase the built-in expression fails, as cel-go's does.
        let no_phase = json!({"apiVersion": "v1", "kind": "Pod", "status": {}});
        assert_eq!(
            one("", "Pod", &no_phase, rule),
            cond("Complete", ConditionStatus::False, REASON_EXPRESSION_ERROR, "No such key: phase")
        );
    }

    #[test]
    fn well_known_message_overrides() {
        let rule = json!({"type": "WellKnownConditions", "condition": "Complete",
            "messageExpression": "result ? 'done: ' + object.status.phase : 'still ' + object.status.phase"});
        assert_eq!(
            one("", "Pod", &pod("Running"), rule),
            cond("Complete", ConditionStatus::False, REASON_EVALUATED, "still Running")
        );
        // `message` alone does not beat the built-in messageExpression (OCM keeps it).
        let rule = json!({"type": "WellKnownConditions", "condition": "Complete", "message": "custom"});
        assert_eq!(one("", "Pod", &pod("Running"), rule).message, "Pod is in phase Running");
    }

    #[test]
    fn well_known_conditions_without_a_built_in_give_nothing() {
        let rules = json!([
            {"type": "WellKnownConditions", "condition": "Complete"},
            {"type": "WellKnownConditions", "condition": "Available"},
        ]);
        let deployment_rules = CompiledRules::compile("apps", "Deployment", Some(&rules));
        assert!(deployment_rules.is_empty());
        assert!(deployment_rules.problems().is_empty());
        assert!(deployment_rules.evaluate(&deployment()).is_empty());
        // A Job only has `Complete`.
        let job_rules = CompiledRules::compile("batch", "Job", Some(&rules));
        let conditions = job_rules.evaluate(&job(json!([{"type": "Complete", "status": "True"}]), 1));
        assert_eq!(conditions, vec![cond("Complete", ConditionStatus::True, REASON_EVALUATED, "Job is finished")]);
        // Same kind name in another group is not a Job.
        assert!(CompiledRules::compile("example.com", "Job", Some(&rules)).is_empty());
    }

    #[test]
    fn unusable_rules_become_invalid_conditions_or_problems() {
        let rules = json!([
            {"type": "Magic", "condition": "Available"},
            {"type": "CEL", "condition": "Broken", "celExpressions": [1, 2]},
            {"type": "CEL", "condition": "Shape", "celExpressions": "true"},
            {"type": "CEL", "condition": "Msg", "celExpressions": ["true"], "message": 5},
            {"type": "CEL", "celExpressions": ["true"]},
            {"type": "CEL", "condition": "", "celExpressions": ["true"]},
            "not a rule",
            {"type": "CEL", "condition": "Fine", "celExpressions": ["true"]},
        ]);
        let compiled = CompiledRules::compile("apps", "Deployment", Some(&rules));
        assert_eq!(
            compiled.problems(),
            &[
                RuleError::MissingCondition { index: 4 },
                RuleError::MissingCondition { index: 5 },
                RuleError::NotAnObject { index: 6 },
            ]
        );
        assert_eq!(
            compiled.evaluate(&deployment()),
            vec![
                cond("Available", ConditionStatus::Unknown, REASON_INVALID, "unrecognized condition rule type Magic"),
                cond(
                    "Broken",
                    ConditionStatus::Unknown,
                    REASON_INVALID,
                    "conditionRules[1].celExpressions must be strings"
                ),
                cond(
                    "Shape",
                    ConditionStatus::Unknown,
                    REASON_INVALID,
                    "conditionRules[2].celExpressions must be an array, got a string"
                ),
                cond(
                    "Msg",
                    ConditionStatus::Unknown,
                    REASON_INVALID,
                    "conditionRules[3].message must be a string, got an integer"
                ),
                cond("Fine", ConditionStatus::True, REASON_EVALUATED, "Manifest is Fine"),
            ]
        );
        let not_array = CompiledRules::compile("", "Pod", Some(&json!({"type": "CEL"})));
        assert_eq!(not_array.problems(), &[RuleError::NotAnArray { got: "an object" }]);
        assert!(CompiledRules::compile("", "Pod", None).is_empty());
        assert!(CompiledRules::compile("", "Pod", Some(&Value::Null)).evaluate(&pod("Running")).is_empty());
    }

    #[test]
    fn compiled_rules_are_reused_across_objects() {
        let rules = json!([
            {"type": "CEL", "condition": "Progressing", "celExpressions": ["object.status.readyReplicas < object.status.replicas"]},
            {"type": "CEL", "condition": "Available", "celExpressions": ["object.status.readyReplicas > 0"]},
        ]);
        let compiled = CompiledRules::compile("apps", "Deployment", Some(&rules));
        let mut live = deployment();
        assert_eq!(
            compiled.evaluate(&live),
            vec![
                cond("Progressing", ConditionStatus::True, REASON_EVALUATED, "Manifest is Progressing"),
                cond("Available", ConditionStatus::True, REASON_EVALUATED, "Manifest is Available"),
            ]
        );
        live["status"]["readyReplicas"] = json!(2);
        assert_eq!(compiled.evaluate(&live)[0].status, ConditionStatus::False);
        live["status"]["readyReplicas"] = json!(0);
        assert_eq!(
            compiled.evaluate(&live),
            vec![
                cond("Progressing", ConditionStatus::True, REASON_EVALUATED, "Manifest is Progressing"),
                cond("Available", ConditionStatus::False, REASON_EVALUATED, "Manifest is not Available"),
            ]
        );
    }

    #[test]
    fn compiled_rules_can_be_shared_between_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CompiledRules>();
    }

    #[test]
    fn json_numbers_compare_naturally() {
        let live = json!({"status": {"ratio": 0.5, "big": 18446744073709551615u64, "n": -3}});
        let rule = json!({"type": "CEL", "condition": "Ok", "celExpressions":
            ["object.status.ratio < 1.0", "object.status.big > 0u", "object.status.n == -3", "object.status.n < 0"]});
        assert_eq!(one("", "Thing", &live, rule).status, ConditionStatus::True);
    }

    fn rule_condition(type_: &str, status: ConditionStatus, message: &str) -> Condition {
        cond(type_, status, REASON_EVALUATED, message)
    }

    #[test]
    fn aggregate_keeps_a_lone_manifest_message() {
        let job = [
            cond("Applied", ConditionStatus::True, "AppliedManifestComplete", "Apply manifest complete"),
            rule_condition("Complete", ConditionStatus::True, "Job is finished"),
        ];
        assert_eq!(
            aggregate(&[&job]),
            vec![cond("Complete", ConditionStatus::True, REASON_AGGREGATED, "Job is finished")]
        );
    }

    #[test]
    fn aggregate_false_wins_then_unknown_then_true() {
        let t = [rule_condition("Complete", ConditionStatus::True, "done")];
        let f = [rule_condition("Complete", ConditionStatus::False, "not yet")];
        let u = [cond("Complete", ConditionStatus::False, REASON_EXPRESSION_ERROR, "No such key: phase")];
        let unk = [cond("Complete", ConditionStatus::Unknown, REASON_INVALID, "bad")];
        let none: [Condition; 0] = [];
        assert_eq!(
            aggregate(&[&t, &f, &none, &u]),
            vec![cond(
                "Complete",
                ConditionStatus::False,
                REASON_AGGREGATED,
                "Aggregated from 3 manifest conditions; not Complete: manifests 1, 3"
            )]
        );
        assert_eq!(
            aggregate(&[&t, &unk, &f]),
            vec![cond(
                "Complete",
                ConditionStatus::False,
                REASON_AGGREGATED,
                "Aggregated from 3 manifest conditions; not Complete: manifests 2; Complete unknown: manifests 1"
            )]
        );
        assert_eq!(
            aggregate(&[&t, &unk]),
            vec![cond(
                "Complete",
                ConditionStatus::Unknown,
                REASON_AGGREGATED,
                "Aggregated from 2 manifest conditions; Complete unknown: manifests 1"
            )]
        );
        // Manifests without the condition do not hold the work back.
        assert_eq!(
            aggregate(&[&t, &none, &t]),
            vec![cond("Complete", ConditionStatus::True, REASON_AGGREGATED, "Aggregated from 2 manifest conditions")]
        );
    }

    #[test]
    fn aggregate_progressing_is_true_if_any_is() {
        let t = [rule_condition("Progressing", ConditionStatus::True, "rolling")];
        let f = [rule_condition("Progressing", ConditionStatus::False, "steady")];
        let u = [cond("Progressing", ConditionStatus::Unknown, REASON_INTERNAL_ERROR, "x")];
        let status = |per_manifest: &[&[Condition]]| match aggregate(per_manifest).as_slice() {
            [c] => (c.status, c.message.clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            status(&[&f, &t, &u]),
            (ConditionStatus::True, "Aggregated from 3 manifest conditions; Progressing: manifests 1".to_string())
        );
        assert_eq!(status(&[&f, &u]).0, ConditionStatus::Unknown);
        assert_eq!(status(&[&f, &f]), (ConditionStatus::False, "Aggregated from 2 manifest conditions".to_string()));
        assert_eq!(status(&[&f]), (ConditionStatus::False, "steady".to_string()));
    }

    #[test]
    fn aggregate_covers_every_rule_type_sorted_and_ignores_others() {
        let a = [
            rule_condition("Ready", ConditionStatus::True, "r"),
            rule_condition("Complete", ConditionStatus::True, "c"),
            cond("Available", ConditionStatus::False, "ResourceNotAvailable", "gone"),
            cond("StatusFeedbackSynced", ConditionStatus::False, "StatusFeedbackSyncFailed", "x"),
        ];
        let b = [rule_condition("Ready", ConditionStatus::True, "")];
        let aggregated = aggregate(&[&a, &b]);
        assert_eq!(
            aggregated,
            vec![
                cond("Complete", ConditionStatus::True, REASON_AGGREGATED, "c"),
                cond("Ready", ConditionStatus::True, REASON_AGGREGATED, "Aggregated from 2 manifest conditions"),
            ]
        );
        assert!(aggregate(&[]).is_empty());
        assert!(aggregate(&[&[cond("Applied", ConditionStatus::True, "AppliedManifestComplete", "")]]).is_empty());
    }

    #[test]
    fn is_complete_needs_a_true_complete_condition() {
        assert!(is_complete(&[
            cond("Applied", ConditionStatus::True, "AppliedManifestComplete", ""),
            rule_condition("Complete", ConditionStatus::True, "Job is finished"),
        ]));
        assert!(!is_complete(&[rule_condition("Complete", ConditionStatus::False, "Job is not finished")]));
        assert!(!is_complete(&[cond("Complete", ConditionStatus::Unknown, REASON_INVALID, "")]));
        assert!(!is_complete(&[rule_condition("Completed", ConditionStatus::True, "")]));
        assert!(!is_complete(&[]));
        assert!(is_rule_condition(&rule_condition("X", ConditionStatus::True, "")));
        assert!(!is_rule_condition(&cond("Applied", ConditionStatus::True, "AppliedManifestComplete", "")));
    }
}
