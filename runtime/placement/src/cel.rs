//! CEL cluster selectors (`requiredClusterSelector.celSelector.celExpressions`), as OCM's
//! `helpers/cel.go` with sdk-go's ManagedCluster and JSON libraries:
//!
//! - the variable `managedCluster` is the ManagedCluster object (JSON to CEL: integers that
//!   fit are `int`, other numbers `uint`/`double`, objects maps with string keys);
//! - `managedCluster.scores("<AddOnPlacementScore name>")` is the list of that score's
//!   `status.scores` items (`{name, value}`) from the cluster's namespace; an error (so the
//!   expression does not match) when the cluster has no such AddOnPlacementScore, as OCM's;
//! - `parseJSON(string)` parses a JSON document into a CEL value;
//! - a result other than `true`, or an evaluation error, does not match.
//!
//! - the Kubernetes CEL libraries OCM's environment has: semver, quantity and the string
//!   extensions ([`crate::cel_library`]).
//!
//! The interpreter is `cel-interpreter`, which parses without type checking. As cel-go's
//! checker does, compiling refuses a reference to a variable other than `managedCluster` (and
//! the comprehensions' own) or to a function the environment does not have: `undeclared
//! reference to 'x'`, so the Placement is `PlacementMisconfigured`. A field the cluster does
//! not have is an evaluation error (the cluster does not match), as in OCM, where
//! `managedCluster` is dynamically typed. Each expression is compiled once per text and kept.
//!
//! Results are memoized per cluster version: an expression that does not call `scores`
//! depends on the ManagedCluster alone, so its result is kept beside the cluster until the
//! cluster changes (the inventory replaces its entry, memo included). A placement scheduled
//! again, or another placement with the same expression, reads the result instead of
//! evaluating it again.

use flotilla_apimachinery::cel::json_to_cel;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cel_interpreter::extractors::This;
use cel_interpreter::objects::Key;
use cel_interpreter::{Context, ExecutionError, FunctionContext, Program, Value as Cel};
use serde_json::Value;

use crate::inventory::AddonScore;

/// The hidden variable the `scores` function reads: the cluster's AddOnPlacementScores by
/// name (a function cannot borrow the inventory, so each evaluation passes them in).
const SCORES_VARIABLE: &str = "__flotilla_addon_scores__";

/// A compiled expression, and whether it calls `scores` (only then are the cluster's
/// AddOnPlacementScores converted for it).
#[derive(Debug)]
pub(crate) struct Compiled {
    pub source: String,
    program: Program,
    uses_scores: bool,
    /// Unique per compilation: the key of memoized results.
    id: u64,
}

/// A cluster's memoized results: (expression id, result). Small: a cluster meets few
/// distinct expressions; past [`MAX_MEMO`] it starts over.
pub(crate) type Memo = Mutex<Vec<(u64, Result<(), Mismatch>)>>;

const MAX_MEMO: usize = 64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Most expressions kept; past it the cache starts over.
const MAX_PROGRAMS: usize = 4096;

/// Compiled expressions by text.
#[derive(Default)]
pub(crate) struct CelCache {
    programs: Mutex<HashMap<String, Result<Arc<Compiled>, String>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CelCache {
    /// The compiled expression, or the error OCM would give (`compilation failed: ...`).
    pub fn compile(&self, source: &str) -> Result<Arc<Compiled>, String> {
        if let Some(c) = lock(&self.programs).get(source) {
            return c.clone();
        }
        let compiled = match catch_unwind(|| Program::compile(source)) {
            Ok(Ok(_)) if let Err(name) = check_references(source) => {
                Err(format!("compilation failed: ERROR: <input>: undeclared reference to '{name}' (in container '')"))
            }
            Ok(Ok(program)) => {
                let uses_scores = program.references().has_function("scores");
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                Ok(Arc::new(Compiled { source: source.to_string(), program, uses_scores, id }))
            }
            Ok(Err(errors)) => Err(format!("compilation failed: {errors}")),
            // The parser panics on some truncated inputs: a syntax error all the same.
            Err(_) => Err(format!("compilation failed: ERROR: <input>: Syntax error: cannot parse {source:?}")),
        };
        let mut programs = lock(&self.programs);
        if programs.len() >= MAX_PROGRAMS {
            programs.clear();
        }
        programs.insert(source.to_string(), compiled.clone());
        compiled
    }
}

/// The root scope: the interpreter's standard library, OCM's `scores` and `parseJSON`, and
/// the Kubernetes libraries. Built once per process.
fn root() -> &'static Context<'static> {
    static ROOT: OnceLock<Context<'static>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let mut ctx = Context::default();
        ctx.add_function("scores", scores);
        ctx.add_function("parseJSON", parse_json);
        crate::cel_library::register(&mut ctx);
        ctx
    })
}

/// The functions of `cel-interpreter`'s standard library (`Context::default`, with its
/// `regex` and `chrono` features), and the macros the parser expands.
const STANDARD_FUNCTIONS: &[&str] = &[
    "contains",
    "size",
    "max",
    "min",
    "startsWith",
    "endsWith",
    "string",
    "bytes",
    "double",
    "int",
    "uint",
    "matches",
    "duration",
    "timestamp",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
];

fn declared_function(name: &str) -> bool {
    // Operators are named by their syntax (`_==_`, `@in`, `!_`).
    !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with('_')
        || matches!(name, "scores" | "parseJSON")
        || STANDARD_FUNCTIONS.contains(&name)
        || crate::cel_library::FUNCTIONS.contains(&name)
}

/// The first name an expression references that the environment does not declare.
fn check_references(source: &str) -> Result<(), String> {
    use cel_parser::ast::{EntryExpr, Expr};
    fn walk<'e>(e: &'e cel_parser::Expression, bound: &mut Vec<&'e str>) -> Result<(), String> {
        match &e.expr {
            Expr::Ident(name) => {
                if name == "managedCluster" || name.starts_with('@') || bound.contains(&name.as_str()) {
                    Ok(())
                } else {
                    Err(name.clone())
                }
            }
            Expr::Call(call) => {
                if !declared_function(&call.func_name) {
                    return Err(call.func_name.clone());
                }
                if let Some(t) = &call.target {
                    walk(t, bound)?;
                }
                call.args.iter().try_for_each(|a| walk(a, bound))
            }
            Expr::Comprehension(c) => {
                walk(&c.iter_range, bound)?;
                walk(&c.accu_init, bound)?;
                let depth = bound.len();
                bound.push(&c.iter_var);
                bound.extend(c.iter_var2.as_deref());
                bound.push(&c.accu_var);
                let inner = [&c.loop_cond, &c.loop_step, &c.result].into_iter().try_for_each(|part| walk(part, bound));
                bound.truncate(depth);
                inner
            }
            Expr::List(l) => l.elements.iter().try_for_each(|x| walk(x, bound)),
            Expr::Map(m) => m.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(kv) => walk(&kv.key, bound).and_then(|()| walk(&kv.value, bound)),
                EntryExpr::StructField(f) => walk(&f.value, bound),
            }),
            Expr::Struct(st) => st.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(kv) => walk(&kv.key, bound).and_then(|()| walk(&kv.value, bound)),
                EntryExpr::StructField(f) => walk(&f.value, bound),
            }),
            Expr::Select(sel) => walk(&sel.operand, bound),
            Expr::Literal(_) | Expr::Unspecified => Ok(()),
        }
    }
    // The program compiled, so this parse succeeds; if it does not, evaluation reports it.
    match catch_unwind(|| cel_parser::Parser::default().parse(source)) {
        Ok(Ok(ast)) => walk(&ast, &mut Vec::new()),
        _ => Ok(()),
    }
}

/// `managedCluster.scores(name)`.
fn scores(ftx: &FunctionContext, This(_cluster): This<Cel>, name: Arc<String>) -> Result<Cel, ExecutionError> {
    let all = ftx.ptx.get_variable(SCORES_VARIABLE).unwrap_or(Cel::Null);
    let found = match &all {
        Cel::Map(m) => m.map.get(&Key::String(name.clone())).cloned(),
        _ => None,
    };
    found.ok_or_else(|| ftx.error(format!("failed to get score: addonplacementscore {name:?} not found")))
}

/// `parseJSON(text)`.
fn parse_json(ftx: &FunctionContext, text: Arc<String>) -> Result<Cel, ExecutionError> {
    serde_json::from_str::<Value>(&text).map(|v| json_to_cel(&v)).map_err(|e| ftx.error(format!("parseJSON: {e}")))
}

/// A cluster's AddOnPlacementScores as `scores()` returns them: name -> list of
/// `{name, value}`.
pub(crate) fn scores_to_cel(scores: Option<&HashMap<String, AddonScore>>) -> Cel {
    let map: HashMap<String, Cel> = scores
        .into_iter()
        .flatten()
        .map(|(name, s)| {
            let items: Vec<Cel> = s
                .scores
                .iter()
                .map(|(n, v)| {
                    Cel::from(HashMap::from([
                        ("name".to_string(), Cel::String(Arc::new(n.clone()))),
                        ("value".to_string(), Cel::Int(*v)),
                    ]))
                })
                .collect();
            (name.clone(), Cel::List(Arc::new(items)))
        })
        .collect();
    Cel::from(map)
}

/// Why a cluster did not match an expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mismatch {
    False,
    NotBool(String),
    Error(String),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::False => write!(f, "false"),
            Mismatch::NotBool(t) => write!(f, "not a bool ({t})"),
            Mismatch::Error(e) => write!(f, "error: {e}"),
        }
    }
}

fn evaluate(e: &Compiled, scope: &Context) -> Result<(), Mismatch> {
    match catch_unwind(AssertUnwindSafe(|| e.program.execute(scope))) {
        Ok(Ok(Cel::Bool(true))) => Ok(()),
        Ok(Ok(Cel::Bool(false))) => Err(Mismatch::False),
        Ok(Ok(other)) => Err(Mismatch::NotBool(format!("{:?}", other.type_of()))),
        Ok(Err(err)) => Err(Mismatch::Error(err.to_string())),
        Err(_) => Err(Mismatch::Error("internal error in the CEL interpreter".into())),
    }
}

/// Evaluates the expressions (ANDed) on one cluster; `Err((index, why))` names the first
/// that does not hold. `cluster` (the cluster as a CEL value) is asked for only when an
/// expression is not in `memo`, and `scores` only when an expression calls `scores`.
pub(crate) fn matches<'c>(
    expressions: &[Arc<Compiled>],
    cluster: impl FnOnce() -> &'c Cel,
    memo: Option<&Memo>,
    scores: impl FnOnce() -> Cel,
) -> Result<(), (usize, Mismatch)> {
    let mut cluster = Some(cluster);
    let mut scores = Some(scores);
    let mut scope: Option<Context> = None;
    for (i, e) in expressions.iter().enumerate() {
        let memo = memo.filter(|_| !e.uses_scores);
        let known = memo.and_then(|m| lock(m).iter().find(|(id, _)| *id == e.id).map(|(_, r)| r.clone()));
        let result = match known {
            Some(r) => r,
            None => {
                let scope = scope.get_or_insert_with(|| {
                    let mut s = root().new_inner_scope();
                    let value = cluster.take().map(|f| f().clone()).unwrap_or(Cel::Null);
                    s.add_variable_from_value("managedCluster", value);
                    s
                });
                if e.uses_scores
                    && let Some(f) = scores.take()
                {
                    scope.add_variable_from_value(SCORES_VARIABLE, f());
                }
                let r = evaluate(e, scope);
                if let Some(m) = memo {
                    let mut m = lock(m);
                    if m.len() >= MAX_MEMO {
                        m.clear();
                    }
                    m.push((e.id, r.clone()));
                }
                r
            }
        };
        result.map_err(|why| (i, why))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(c: &CelCache, s: &str) -> Arc<Compiled> {
        c.compile(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn expressions_see_the_cluster_and_its_scores() {
        let cache = CelCache::default();
        let mc = json_to_cel(&json!({
            "metadata": {"name": "c1", "labels": {"env": "prod", "version": "4.15"}},
            "status": {"allocatable": {"cpu": "8"}, "version": {"kubernetes": "v1.31.0"}}
        }));
        let scores = || {
            let mut m = HashMap::new();
            m.insert(
                "resource-usage".to_string(),
                AddonScore {
                    scores: vec![("cpuAvailable".into(), 70), ("memAvailable".into(), 20)],
                    valid_until: None,
                },
            );
            scores_to_cel(Some(&m))
        };
        let yes = [
            r#"managedCluster.metadata.labels["env"] == "prod""#,
            r#"managedCluster.status.version.kubernetes.startsWith("v1.31")"#,
            r#"managedCluster.scores("resource-usage").filter(s, s.name == "cpuAvailable").all(s, s.value > 50)"#,
            r#"parseJSON("{\"a\": 1}").a == 1"#,
        ];
        for e in yes {
            assert_eq!(matches(&[compile(&cache, e)], || &mc, None, scores), Ok(()), "{e}");
        }
        let no = [
            (r#"managedCluster.metadata.labels["env"] == "dev""#, Mismatch::False),
            (r#"managedCluster.metadata.name"#, Mismatch::NotBool("String".into())),
        ];
        for (e, why) in no {
            assert_eq!(matches(&[compile(&cache, e)], || &mc, None, scores), Err((0, why)), "{e}");
        }
        // A missing score, an unknown field: errors, not matches.
        for e in [r#"managedCluster.scores("nope").size() > 0"#, "managedCluster.nothing.here == 1"] {
            assert!(
                matches!(matches(&[compile(&cache, e)], || &mc, None, scores), Err((0, Mismatch::Error(_)))),
                "{e}"
            );
        }
        // ANDed: the index of the first that fails.
        let both = [compile(&cache, "true"), compile(&cache, "1 == 2")];
        assert_eq!(matches(&both, || &mc, None, scores), Err((1, Mismatch::False)));
        // Memoized: the second time the cluster is not asked for.
        let memo = Memo::default();
        assert_eq!(matches(&both, || &mc, Some(&memo), scores), Err((1, Mismatch::False)));
        assert_eq!(memo.lock().map(|m| m.len()).unwrap_or(0), 2);
        let asked = std::cell::Cell::new(false);
        let r = matches(
            &both,
            || {
                asked.set(true);
                &mc
            },
            Some(&memo),
            scores,
        );
        assert_eq!(r, Err((1, Mismatch::False)));
        assert!(!asked.get());
    }

    #[test]
    fn the_kubernetes_libraries_are_there() {
        let cache = CelCache::default();
        let mc = json_to_cel(&json!({
            "metadata": {"name": "c1", "labels": {"version": "v1.31"}},
            "status": {"allocatable": {"cpu": "7500m", "memory": "16Gi"}, "version": {"kubernetes": "v1.31.2"}}
        }));
        let yes = [
            r#"semver("1.31.2").isGreaterThan(semver("1.31.0"))"#,
            r#"semver(managedCluster.status.version.kubernetes, true).minor() == 31"#,
            r#"semver(managedCluster.metadata.labels.version, true) == semver("1.31.0")"#,
            r#"semver("1.2.3-rc.1").isLessThan(semver("1.2.3")) && semver("2.0.0").compareTo(semver("1.9.9")) == 1"#,
            r#"!isSemver("v1.2.3") && isSemver("v1.2.3", true) && semver("1.2.3").major() == 1 && semver("1.2.3").patch() == 3"#,
            r#"quantity(managedCluster.status.allocatable.memory).isGreaterThan(quantity("8Gi"))"#,
            r#"quantity(managedCluster.status.allocatable.cpu).compareTo(quantity("8")) == -1"#,
            r#"quantity("7500m").add(quantity("500m")).asInteger() == 8 && quantity("1").sub(2).sign() == -1"#,
            r#"!quantity("1500m").isInteger() && quantity("1500m").asApproximateFloat() == 1.5 && isQuantity("2Gi") && !isQuantity("2 Gi")"#,
            r#"" Eu-West ".trim().lowerAscii() == "eu-west" && "a,b".split(",").join("-") == "a-b""#,
            r#""eu-west-1".replace("-", "_") == "eu_west_1" && "eu-west".indexOf("west") == 3 && "x".upperAscii() == "X""#,
        ];
        for e in yes {
            assert_eq!(matches(&[compile(&cache, e)], || &mc, None, || Cel::Null), Ok(()), "{e}");
        }
        // A bad argument is an evaluation error: the cluster does not match.
        for e in [
            r#"semver("1.2").major() == 1"#,
            r#"quantity("lots").sign() == 1"#,
            r#"quantity("1500m").asInteger() == 1"#,
        ] {
            let r = matches(&[compile(&cache, e)], || &mc, None, || Cel::Null);
            assert!(matches!(r, Err((0, Mismatch::Error(_)))), "{e}: {r:?}");
        }
    }

    #[test]
    fn undeclared_references_do_not_compile() {
        let cache = CelCache::default();
        for (bad, name) in [
            ("cluster.metadata.name == 'a'", "cluster"),
            ("managedCluster.metadata.labels.exists(k, k == other)", "other"),
            ("nosuchfunction(managedCluster) == 1", "nosuchfunction"),
            ("managedCluster.metadata.name.reverse() == 'a'", "reverse"),
        ] {
            let e = cache.compile(bad).err().unwrap_or_default();
            assert_eq!(
                e,
                format!("compilation failed: ERROR: <input>: undeclared reference to '{name}' (in container '')"),
                "{bad}"
            );
        }
        // Comprehension variables are declared inside their macro, and every library is known.
        for good in [
            "managedCluster.metadata.labels.exists(k, k.startsWith('env'))",
            "[1, 2].map(x, x * 2).all(y, y > 0) && {'a': 1}.exists_one(k, k == 'a')",
            "has(managedCluster.metadata.labels) && managedCluster.metadata.name.matches('^c')",
            "managedCluster.scores('s').size() > 0 && parseJSON('{}').size() == 0",
        ] {
            assert!(cache.compile(good).is_ok(), "{good}: {:?}", cache.compile(good).err());
        }
    }

    #[test]
    fn compile_errors_read_as_ocm_and_are_cached() {
        let cache = CelCache::default();
        for bad in ["managedCluster.metadata.labels[", "a ==", "'unterminated"] {
            let e = cache.compile(bad).err().unwrap_or_default();
            assert!(e.starts_with("compilation failed: "), "{bad}: {e}");
        }
        let a = compile(&cache, "true");
        let b = compile(&cache, "true");
        assert!(Arc::ptr_eq(&a, &b));
    }
}
