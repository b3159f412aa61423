//! The Kubernetes CEL libraries a `celSelector` can call beside OCM's own functions, as
//! `k8s.io/apiserver/pkg/cel/library` defines them:
//!
//! - semver: `semver(s)`, `semver(s, normalize)`, `isSemver(s)`, `isSemver(s, normalize)`,
//!   and on a version `major()`, `minor()`, `patch()`, `isGreaterThan(v)`, `isLessThan(v)`,
//!   `compareTo(v)`. With `normalize`, a leading `v` and a missing minor or patch are
//!   accepted (`v1.31` is `1.31.0`), as a ManagedCluster's `status.version.kubernetes` reads;
//! - quantity: `quantity(s)`, `isQuantity(s)`, and on a quantity `sign()`, `isInteger()`,
//!   `asInteger()`, `asApproximateFloat()`, `add(q|int)`, `sub(q|int)`, `isGreaterThan(q)`,
//!   `isLessThan(q)`, `compareTo(q)`;
//! - strings: `lowerAscii()`, `upperAscii()`, `trim()`, `split(sep)`, `join(sep)` on a list,
//!   `replace(old, new)`, `indexOf(s)`.
//!
//! The interpreter has no opaque types, so a version or a quantity is a map with one key
//! that field access cannot name (`@semver`, `@quantity`): the functions recognise it, and
//! `==` compares two of them by value as CEL does.

use std::collections::HashMap;
use std::sync::Arc;

use cel_interpreter::extractors::{Arguments, This};
use cel_interpreter::objects::Key;
use cel_interpreter::{Context, ExecutionError, FunctionContext, Value as Cel};
use flotilla_plugin_host::parse_quantity_milli;

const SEMVER: &str = "@semver";
const QUANTITY: &str = "@quantity";

/// Every function name this library adds (the compile-time check of references reads it).
pub(crate) const FUNCTIONS: &[&str] = &[
    "semver",
    "isSemver",
    "major",
    "minor",
    "patch",
    "quantity",
    "isQuantity",
    "sign",
    "isInteger",
    "asInteger",
    "asApproximateFloat",
    "add",
    "sub",
    "isGreaterThan",
    "isLessThan",
    "compareTo",
    "lowerAscii",
    "upperAscii",
    "trim",
    "split",
    "join",
    "replace",
    "indexOf",
];

pub(crate) fn register(ctx: &mut Context) {
    ctx.add_function("semver", semver);
    ctx.add_function("isSemver", is_semver);
    ctx.add_function("major", |ftx: &FunctionContext, This(v): This<Cel>| part(ftx, &v, 0));
    ctx.add_function("minor", |ftx: &FunctionContext, This(v): This<Cel>| part(ftx, &v, 1));
    ctx.add_function("patch", |ftx: &FunctionContext, This(v): This<Cel>| part(ftx, &v, 2));
    ctx.add_function("quantity", quantity);
    ctx.add_function("isQuantity", |s: Arc<String>| parse_quantity_milli(&s).is_some());
    ctx.add_function("sign", |ftx: &FunctionContext, This(q): This<Cel>| milli(ftx, &q).map(i64::signum));
    ctx.add_function("isInteger", |ftx: &FunctionContext, This(q): This<Cel>| milli(ftx, &q).map(|m| m % 1000 == 0));
    ctx.add_function("asInteger", as_integer);
    ctx.add_function("asApproximateFloat", |ftx: &FunctionContext, This(q): This<Cel>| {
        milli(ftx, &q).map(|m| m as f64 / 1000.0)
    });
    ctx.add_function("add", |ftx: &FunctionContext, This(q): This<Cel>, other: Cel| arithmetic(ftx, &q, &other, 1));
    ctx.add_function("sub", |ftx: &FunctionContext, This(q): This<Cel>, other: Cel| arithmetic(ftx, &q, &other, -1));
    ctx.add_function("isGreaterThan", |ftx: &FunctionContext, This(a): This<Cel>, b: Cel| {
        compare(ftx, &a, &b).map(|o| o.is_gt())
    });
    ctx.add_function("isLessThan", |ftx: &FunctionContext, This(a): This<Cel>, b: Cel| {
        compare(ftx, &a, &b).map(|o| o.is_lt())
    });
    ctx.add_function("compareTo", |ftx: &FunctionContext, This(a): This<Cel>, b: Cel| {
        compare(ftx, &a, &b).map(|o| o as i64)
    });
    ctx.add_function("lowerAscii", |This(s): This<Arc<String>>| s.to_ascii_lowercase());
    ctx.add_function("upperAscii", |This(s): This<Arc<String>>| s.to_ascii_uppercase());
    ctx.add_function("trim", |This(s): This<Arc<String>>| s.trim().to_string());
    ctx.add_function("split", |This(s): This<Arc<String>>, sep: Arc<String>| -> Result<Cel, ExecutionError> {
        Ok(Cel::List(Arc::new(s.split(sep.as_str()).map(|p| Cel::String(Arc::new(p.to_string()))).collect())))
    });
    ctx.add_function("join", join);
    ctx.add_function("replace", |This(s): This<Arc<String>>, from: Arc<String>, to: Arc<String>| {
        s.replace(from.as_str(), &to)
    });
    ctx.add_function("indexOf", |This(s): This<Arc<String>>, needle: Arc<String>| {
        // CEL counts code points, not bytes.
        s.find(needle.as_str()).map(|byte| s[..byte].chars().count() as i64).unwrap_or(-1)
    });
}

fn tagged(tag: &str, value: Cel) -> Cel {
    Cel::from(HashMap::from([(tag.to_string(), value)]))
}

fn untag<'v>(tag: &str, value: &'v Cel) -> Option<&'v Cel> {
    match value {
        Cel::Map(m) if m.map.len() == 1 => m.map.get(&Key::String(Arc::new(tag.to_string()))),
        _ => None,
    }
}

/// A version as (major, minor, patch, pre-release): Semantic Versioning 2.0.0, which
/// Kubernetes' library follows; build metadata does not take part in comparisons.
fn parse_semver(text: &str, normalize: bool) -> Option<semver::Version> {
    if !normalize {
        return semver::Version::parse(text).ok();
    }
    let text = text.strip_prefix('v').unwrap_or(text);
    // The core is at most three numbers; fill in the missing ones.
    let core_end = text.find(['-', '+']).unwrap_or(text.len());
    let (core, rest) = text.split_at(core_end);
    let mut parts: Vec<String> = core.split('.').map(|p| p.trim_start_matches('0').to_string()).collect();
    for p in &mut parts {
        if p.is_empty() {
            *p = "0".into();
        }
    }
    while parts.len() < 3 {
        parts.push("0".into());
    }
    semver::Version::parse(&format!("{}{rest}", parts.join("."))).ok()
}

fn normalize_flag(ftx: &FunctionContext, args: &Arguments) -> Result<(Arc<String>, bool), ExecutionError> {
    match args.0.as_slice() {
        [Cel::String(s)] => Ok((s.clone(), false)),
        [Cel::String(s), Cel::Bool(n)] => Ok((s.clone(), *n)),
        _ => Err(ftx.error(format!("{}: expected (string) or (string, bool)", ftx.name))),
    }
}

fn semver(ftx: &FunctionContext, args: Arguments) -> Result<Cel, ExecutionError> {
    let (text, normalize) = normalize_flag(ftx, &args)?;
    let version = parse_semver(&text, normalize).ok_or_else(|| ftx.error(format!("invalid semver: {text}")))?;
    Ok(tagged(SEMVER, Cel::String(Arc::new(version.to_string()))))
}

fn is_semver(ftx: &FunctionContext, args: Arguments) -> Result<bool, ExecutionError> {
    let (text, normalize) = normalize_flag(ftx, &args)?;
    Ok(parse_semver(&text, normalize).is_some())
}

fn version_of(ftx: &FunctionContext, value: &Cel) -> Result<semver::Version, ExecutionError> {
    match untag(SEMVER, value) {
        Some(Cel::String(s)) => semver::Version::parse(s).map_err(|e| ftx.error(e.to_string())),
        _ => Err(ftx.error(format!("{}: not a semver (make one with semver(string))", ftx.name))),
    }
}

fn part(ftx: &FunctionContext, value: &Cel, index: usize) -> Result<i64, ExecutionError> {
    let v = version_of(ftx, value)?;
    let n = [v.major, v.minor, v.patch][index];
    i64::try_from(n).map_err(|_| ftx.error(format!("{n} does not fit an int")))
}

fn quantity(ftx: &FunctionContext, text: Arc<String>) -> Result<Cel, ExecutionError> {
    let milli = parse_quantity_milli(&text).ok_or_else(|| ftx.error(format!("invalid quantity: {text}")))?;
    Ok(tagged(QUANTITY, Cel::Int(milli)))
}

fn milli(ftx: &FunctionContext, value: &Cel) -> Result<i64, ExecutionError> {
    match untag(QUANTITY, value) {
        Some(Cel::Int(m)) => Ok(*m),
        _ => Err(ftx.error(format!("{}: not a quantity (make one with quantity(string))", ftx.name))),
    }
}

fn as_integer(ftx: &FunctionContext, This(q): This<Cel>) -> Result<i64, ExecutionError> {
    let m = milli(ftx, &q)?;
    if m % 1000 != 0 {
        return Err(ftx.error("cannot convert a quantity with a fractional part to an int"));
    }
    Ok(m / 1000)
}

/// `q.add(other)` (`sign` 1) or `q.sub(other)` (`sign` -1): `other` a quantity or an int.
fn arithmetic(ftx: &FunctionContext, q: &Cel, other: &Cel, sign: i64) -> Result<Cel, ExecutionError> {
    let a = milli(ftx, q)?;
    let b = match other {
        Cel::Int(i) => i.checked_mul(1000).ok_or_else(|| ftx.error("quantity out of range"))?,
        other => milli(ftx, other)?,
    };
    let sum = b.checked_mul(sign).and_then(|b| a.checked_add(b)).ok_or_else(|| ftx.error("quantity out of range"))?;
    Ok(tagged(QUANTITY, Cel::Int(sum)))
}

/// Two versions or two quantities, in order.
fn compare(ftx: &FunctionContext, a: &Cel, b: &Cel) -> Result<std::cmp::Ordering, ExecutionError> {
    if untag(SEMVER, a).is_some() {
        Ok(version_of(ftx, a)?.cmp_precedence(&version_of(ftx, b)?))
    } else {
        Ok(milli(ftx, a)?.cmp(&milli(ftx, b)?))
    }
}

/// `list.join()` or `list.join(sep)`.
fn join(ftx: &FunctionContext, This(list): This<Cel>) -> Result<Cel, ExecutionError> {
    let Cel::List(list) = list else { return Err(ftx.error("join: not a list of strings")) };
    let sep = match ftx.args.as_slice() {
        [] => String::new(),
        [arg] => match Cel::resolve(arg, ftx.ptx)? {
            Cel::String(s) => s.to_string(),
            _ => return Err(ftx.error("join: the separator must be a string")),
        },
        _ => return Err(ftx.error("join: expected at most one argument, the separator")),
    };
    let parts: Result<Vec<&str>, ExecutionError> = list
        .iter()
        .map(|v| match v {
            Cel::String(s) => Ok(s.as_str()),
            other => Err(ftx.error(format!("join: list element {other:?} is not a string"))),
        })
        .collect();
    Ok(Cel::String(Arc::new(parts?.join(&sep))))
}
