//! OCM's rollout engine (sdk-go `pkg/apis/cluster/v1alpha1/rollout.go`) as a pure function of
//! the strategy, the clusters and `now`, and the parser of OCM's `RolloutStrategy`.
//!
//! The semantics are sdk-go's:
//!
//! - **Classification** (`determineRolloutStatus`): `ToApply` is in the rollout set;
//!   `Succeeded` is in it only while soaking (`now < lastTransitionTime + minSuccessTime`);
//!   `TimeOut` and `Skip` are ignored; `Progressing`, `Failed` and anything else are in it until
//!   `lastTransitionTime + progressDeadline`, then they time out. A deadline of `None` never
//!   passes, `0s` passes at once. Without a last transition time, soak and deadline count
//!   from `now`, as sdk-go: callers give one for every applied cluster.
//! - **Sizes** (`calculateRolloutSize`): an integer or a percentage of a total, rounded up; a
//!   result of 0 or less, or above the total, falls back to the default.
//! - **`All`**: every cluster in the rollout set proceeds; only the deadline matters.
//! - **`Progressive`**: mandatory decision groups first, group by group, tolerating no
//!   failure; then every other cluster in alphabetical order, at most `maxConcurrency` in
//!   flight (by default all of them); `maxFailures` counts over all clusters.
//! - **`ProgressivePerGroup`**: mandatory groups first as above, then the groups in index
//!   order; a group starts when the one before it has settled (every cluster succeeded past
//!   its soak, timed out or skipped) within its own `maxFailures` (a share of the group), as
//!   the API documents. A `Failed` cluster within budget holds its group until it recovers or
//!   times out (sdk-go moved on while it was still failing).
//!
//! Where sdk-go is wrong, this engine does what the API promises, and says so where it
//! differs (each marked *sdk-go bug*):
//!
//! 1. `ProgressivePerGroup` did not advance after `minSuccessTime` (ocm#327): nothing asked to
//!    decide again when a soak ended, and a timed-out cluster was subtracted from the clusters
//!    still in flight although it is not one of them. Here `recheck_after` is always the
//!    earliest soak end or deadline, and a group advances exactly when it has settled.
//! 2. `maxFailures` did not stop the rollout (ocm#327): sdk-go counted failures while it was
//!    filling the rollout set, so clusters alphabetically before a failure were started
//!    anyway, failures after the concurrency window were never counted, and a group that
//!    breached still started its own pending clusters. Here failures are counted over every
//!    cluster first; on a breach only clusters already started proceed, and `stop` is set.
//! 3. A mandatory group whose cluster had already been recorded as `TimeOut` let the rollout
//!    go on (sdk-go only stopped in the cycle the timeout happened). Here any failure in a
//!    mandatory group stops the rollout.
//! 4. In-flight clusters alphabetically after the concurrency window lost their slot (a new
//!    cluster sorting before them was started on top of them). Here clusters already started
//!    hold their slots first, and pending ones fill what is left.
//! 5. Percentages were computed in floating point (`10%` of 30 gave 4); here exactly.
//! 6. `maxFailures` above the number of clusters fell back to the default 0, turning the most
//!    tolerant setting into the strictest; here it means every cluster may fail.
//! 7. With mandatory groups, sdk-go's mandatory pass returned as soon as any cluster anywhere
//!    was in flight, so `Progressive` went in batches (no new cluster until the whole batch
//!    had soaked). Here the mandatory groups hold the rollout only until they have settled;
//!    after that `maxConcurrency` is a sliding window.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use flotilla_plugin_host::LimitsOverride;
use serde_json::{Map, Value};

use crate::types::{Millis, RolloutCluster, RolloutDecision, RolloutStatus, StrategyError};

// ---------------------------------------------------------------------------------------------
// The strategy, as OCM's API (`cluster.open-cluster-management.io/v1alpha1` `RolloutStrategy`)
// ---------------------------------------------------------------------------------------------

/// A parsed `rolloutStrategy`: one of OCM's built-in types, or a Wasm plugin (Flotilla's
/// `type: Plugin` extension).
#[derive(Clone, Debug, PartialEq)]
pub enum RolloutStrategy {
    Builtin(BuiltinRollout),
    Plugin(PluginStrategy),
}

impl Default for RolloutStrategy {
    /// OCM's default: `{type: All, all: {progressDeadline: None}}`.
    fn default() -> Self {
        RolloutStrategy::Builtin(BuiltinRollout::All(RolloutAll::default()))
    }
}

impl RolloutStrategy {
    /// The `type` as written in the API.
    pub fn type_name(&self) -> &'static str {
        match self {
            RolloutStrategy::Builtin(b) => b.type_name(),
            RolloutStrategy::Plugin(_) => "Plugin",
        }
    }
}

/// OCM's built-in rollout types, which [`decide`] runs.
#[derive(Clone, Debug, PartialEq)]
pub enum BuiltinRollout {
    All(RolloutAll),
    Progressive(RolloutProgressive),
    ProgressivePerGroup(RolloutProgressivePerGroup),
}

impl BuiltinRollout {
    pub fn type_name(&self) -> &'static str {
        match self {
            BuiltinRollout::All(_) => "All",
            BuiltinRollout::Progressive(_) => "Progressive",
            BuiltinRollout::ProgressivePerGroup(_) => "ProgressivePerGroup",
        }
    }
}

/// OCM's `RolloutConfig`, shared by every built-in type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RolloutConfig {
    /// How long a cluster must stay `Succeeded` before it frees its slot (the soak time).
    pub min_success_time: Duration,
    /// How long a cluster may stay `Progressing` or `Failed` before it times out; `None`
    /// (OCM's `"None"`, the default) never.
    pub progress_deadline: Option<Duration>,
    /// How many failed or timed-out clusters the rollout tolerates; `None` is OCM's default 0.
    pub max_failures: Option<Size>,
}

/// `type: All`: everywhere at once. OCM ignores `minSuccessTime` and `maxFailures` here.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RolloutAll {
    pub config: RolloutConfig,
}

/// `type: Progressive`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RolloutProgressive {
    pub config: RolloutConfig,
    pub mandatory_decision_groups: Vec<DecisionGroupRef>,
    /// At most this many clusters in flight outside the mandatory groups; `None`: all of them.
    pub max_concurrency: Option<Size>,
}

/// `type: ProgressivePerGroup`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RolloutProgressivePerGroup {
    pub config: RolloutConfig,
    pub mandatory_decision_groups: Vec<DecisionGroupRef>,
}

/// A `mandatoryDecisionGroups` entry: by name when `groupName` is set (it wins), else by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecisionGroupRef {
    Name(String),
    Index(u32),
}

/// `type: Plugin`: a Wasm `rollout-strategy` plugin decides (a Flotilla extension).
#[derive(Clone, Debug, PartialEq)]
pub struct PluginStrategy {
    /// The `WasmPlugin`'s name.
    pub name: String,
    /// The configuration as the plugin receives it: the JSON text of the object (`{}` when
    /// absent).
    pub configuration: String,
    /// `None`: the WasmPlugin's default.
    pub failure_policy: Option<FailurePolicy>,
    /// Limits for this reference, applied after the WasmPlugin's own.
    pub limits: Option<LimitsOverride>,
}

/// What a failing strategy plugin (trap, timeout, error) does to the rollout: `Fail` (the
/// default) reports it and changes nothing; `Ignore` goes on without the plugin (the
/// ManifestWorkReplicaSet controller then rolls out as `All`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    #[default]
    Fail,
    Ignore,
}

/// A count or a percentage of a total, as OCM's `intstr.IntOrString` sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Size {
    Count(i64),
    /// `mantissa / 10^decimals` percent, kept exact.
    Percent {
        mantissa: u64,
        decimals: u32,
    },
}

impl Size {
    /// The size over `total` (sdk-go's `calculateRolloutSize`): percentages round up; a
    /// result of 0 or less, or above `total`, is `default`.
    pub fn of(&self, total: usize, default: usize) -> usize {
        let n = self.raw(total);
        if n <= 0 || n > total as i128 { default } else { n as usize }
    }

    /// As a `maxFailures`: like [`of`](Self::of) with default 0, except that a size above the
    /// total tolerates every cluster (*sdk-go bug* 6: it fell back to 0).
    pub fn failures_of(&self, total: usize) -> usize {
        let n = self.raw(total);
        if n <= 0 { 0 } else { n.min(total as i128) as usize }
    }

    fn raw(&self, total: usize) -> i128 {
        match *self {
            Size::Count(n) => i128::from(n),
            Size::Percent { mantissa, decimals } => {
                // ceil(mantissa * total / (100 * 10^decimals)), in integers (*sdk-go bug* 5).
                let denominator = 100 * 10i128.pow(decimals);
                let numerator = i128::from(mantissa) * total as i128;
                (numerator + denominator - 1) / denominator
            }
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Size::Count(n) => write!(f, "{n}"),
            Size::Percent { mantissa, decimals } => {
                let scale = 10u64.pow(decimals);
                let (whole, frac) = (mantissa / scale, mantissa % scale);
                if decimals == 0 {
                    write!(f, "{whole}%")
                } else {
                    write!(f, "{whole}.{frac:0width$}%", width = decimals as usize)
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

fn invalid(field: impl Into<String>, message: impl Into<String>) -> StrategyError {
    StrategyError::Invalid { field: field.into(), message: message.into() }
}

/// Parses a `rolloutStrategy` object; `field` is its path in the owning object (for example
/// `spec.placementRefs[0].rolloutStrategy`), which every error names with the offending key.
/// An absent or `null` strategy is OCM's default, `All` with no deadline.
///
/// Stricter than OCM where a typo would silently roll out everywhere at once: unknown keys
/// are refused, and so is a section for another type (`progressive` with `type: All`).
pub fn parse_strategy(value: Option<&Value>, field: &str) -> Result<RolloutStrategy, StrategyError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(RolloutStrategy::default());
    };
    let obj = object(value, field)?;
    check_keys(obj, &["type", "all", "progressive", "progressivePerGroup", "plugin"], field)?;
    let ty = match obj.get("type") {
        None | Some(Value::Null) => "All",
        Some(Value::String(s)) if s.is_empty() => "All",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(invalid(format!("{field}.type"), format!("must be a string, not {other}"))),
    };
    let section = match ty {
        "All" => "all",
        "Progressive" => "progressive",
        "ProgressivePerGroup" => "progressivePerGroup",
        "Plugin" => "plugin",
        other => {
            return Err(invalid(
                format!("{field}.type"),
                format!("{other:?} is not one of All, Progressive, ProgressivePerGroup, Plugin"),
            ));
        }
    };
    for other in ["all", "progressive", "progressivePerGroup", "plugin"] {
        if other != section && obj.get(other).is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                format!("{field}.{other}"),
                format!("is set but type is {ty}: set type to the strategy this section configures, or remove it"),
            ));
        }
    }
    let path = format!("{field}.{section}");
    let body = obj.get(section).filter(|v| !v.is_null());
    let empty = Map::new();
    let body = match body {
        Some(v) => object(v, &path)?,
        None if section == "plugin" => return Err(invalid(path, "is required with type Plugin")),
        None => &empty,
    };
    Ok(match section {
        "all" => {
            check_keys(body, &CONFIG_KEYS, &path)?;
            RolloutStrategy::Builtin(BuiltinRollout::All(RolloutAll { config: rollout_config(body, &path)? }))
        }
        "progressive" => {
            let keys = [&CONFIG_KEYS[..], &["mandatoryDecisionGroups", "maxConcurrency"]].concat();
            check_keys(body, &keys, &path)?;
            RolloutStrategy::Builtin(BuiltinRollout::Progressive(RolloutProgressive {
                config: rollout_config(body, &path)?,
                mandatory_decision_groups: mandatory_groups(body, &path)?,
                max_concurrency: size(body, "maxConcurrency", &path)?,
            }))
        }
        "progressivePerGroup" => {
            let keys = [&CONFIG_KEYS[..], &["mandatoryDecisionGroups"]].concat();
            check_keys(body, &keys, &path)?;
            RolloutStrategy::Builtin(BuiltinRollout::ProgressivePerGroup(RolloutProgressivePerGroup {
                config: rollout_config(body, &path)?,
                mandatory_decision_groups: mandatory_groups(body, &path)?,
            }))
        }
        _ => RolloutStrategy::Plugin(plugin_strategy(body, &path)?),
    })
}

/// `timeout` is the deprecated name of `progressDeadline`, still in OCM's API.
const CONFIG_KEYS: [&str; 4] = ["minSuccessTime", "progressDeadline", "maxFailures", "timeout"];

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, StrategyError> {
    v.as_object().ok_or_else(|| invalid(field, format!("must be an object, not {v}")))
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], field: &str) -> Result<(), StrategyError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(format!("{field}.{k}"), format!("unknown field (known: {})", allowed.join(", ")))),
        None => Ok(()),
    }
}

fn rollout_config(obj: &Map<String, Value>, field: &str) -> Result<RolloutConfig, StrategyError> {
    let min_success_time = match obj.get("minSuccessTime") {
        None | Some(Value::Null) => Duration::ZERO,
        Some(Value::String(s)) => {
            parse_go_duration(s).map_err(|m| invalid(format!("{field}.minSuccessTime"), format!("{s:?}: {m}")))?
        }
        Some(other) => {
            return Err(invalid(
                format!("{field}.minSuccessTime"),
                format!("must be a duration like \"5m\", not {other}"),
            ));
        }
    };
    // progressDeadline wins; the deprecated timeout applies when it is absent.
    let (key, deadline) = match obj.get("progressDeadline").filter(|v| !v.is_null()) {
        Some(v) => ("progressDeadline", Some(v)),
        None => ("timeout", obj.get("timeout")),
    };
    let progress_deadline = match deadline {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() || s == "None" => None,
        Some(Value::String(s)) => {
            Some(parse_go_duration(s).map_err(|m| invalid(format!("{field}.{key}"), format!("{s:?}: {m}")))?)
        }
        Some(other) => {
            return Err(invalid(
                format!("{field}.{key}"),
                format!("must be \"None\" or a duration like \"10m\", not {other}"),
            ));
        }
    };
    Ok(RolloutConfig { min_success_time, progress_deadline, max_failures: size(obj, "maxFailures", field)? })
}

fn size(obj: &Map<String, Value>, key: &str, field: &str) -> Result<Option<Size>, StrategyError> {
    let path = || format!("{field}.{key}");
    let not_a_size =
        |shown: &dyn fmt::Display| invalid(path(), format!("{shown} is neither an integer nor a percentage"));
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(Size::Count(i))),
            None => Err(not_a_size(n)),
        },
        Some(Value::String(s)) => parse_size(s).map(Some).ok_or_else(|| not_a_size(&format!("{s:?}"))),
        Some(other) => Err(not_a_size(other)),
    }
}

/// `"25%"`, `"12.5%"` or an integer (also accepted as a string, which OCM refuses).
fn parse_size(s: &str) -> Option<Size> {
    let Some(p) = s.strip_suffix('%') else {
        return s.trim().parse::<i64>().ok().map(Size::Count);
    };
    let (whole, frac) = p.split_once('.').unwrap_or((p, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 6 {
        return None;
    }
    let decimals = frac.len() as u32;
    let mantissa = format!("{whole}{frac}").parse::<u64>().ok()?;
    // Far above 100% is certainly a mistake, and keeps the arithmetic small.
    (mantissa <= 1_000_000 * 10u64.pow(decimals)).then_some(Size::Percent { mantissa, decimals })
}

fn mandatory_groups(obj: &Map<String, Value>, field: &str) -> Result<Vec<DecisionGroupRef>, StrategyError> {
    let path = format!("{field}.mandatoryDecisionGroups");
    let list = match obj.get("mandatoryDecisionGroups") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(invalid(path, format!("must be a list, not {other}"))),
    };
    list.iter()
        .enumerate()
        .map(|(i, g)| {
            let at = format!("{path}[{i}]");
            let g = object(g, &at)?;
            check_keys(g, &["groupName", "groupIndex"], &at)?;
            let name = match g.get("groupName") {
                None | Some(Value::Null) => "",
                Some(Value::String(s)) => s.as_str(),
                Some(other) => {
                    return Err(invalid(format!("{at}.groupName"), format!("must be a string, not {other}")));
                }
            };
            if !name.is_empty() {
                return Ok(DecisionGroupRef::Name(name.to_string()));
            }
            match g.get("groupIndex") {
                None | Some(Value::Null) => Ok(DecisionGroupRef::Index(0)),
                Some(Value::Number(n)) => n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(DecisionGroupRef::Index)
                    .ok_or_else(|| invalid(format!("{at}.groupIndex"), format!("{n} is not a group index"))),
                Some(other) => Err(invalid(format!("{at}.groupIndex"), format!("must be an integer, not {other}"))),
            }
        })
        .collect()
}

fn plugin_strategy(obj: &Map<String, Value>, field: &str) -> Result<PluginStrategy, StrategyError> {
    check_keys(obj, &["name", "configuration", "failurePolicy", "limits"], field)?;
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(invalid(format!("{field}.name"), "is required: the WasmPlugin's name")),
    };
    let configuration = match obj.get("configuration") {
        None | Some(Value::Null) => "{}".to_string(),
        Some(c @ Value::Object(_)) => c.to_string(),
        Some(other) => {
            return Err(invalid(format!("{field}.configuration"), format!("must be a JSON object, not {other}")));
        }
    };
    let failure_policy = match obj.get("failurePolicy") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "Fail" => Some(FailurePolicy::Fail),
        Some(Value::String(s)) if s == "Ignore" => Some(FailurePolicy::Ignore),
        Some(other) => {
            return Err(invalid(format!("{field}.failurePolicy"), format!("must be Fail or Ignore, not {other}")));
        }
    };
    let limits = match obj.get("limits") {
        None | Some(Value::Null) => None,
        Some(l) => Some(
            serde_json::from_value::<LimitsOverride>(l.clone())
                .map_err(|e| invalid(format!("{field}.limits"), e.to_string()))?,
        ),
    };
    Ok(PluginStrategy { name, configuration, failure_policy, limits })
}

/// A Go duration (`time.ParseDuration`) as OCM's API writes them: `90s`, `5m`, `1h30m`,
/// `1.5h`, `500ms`, `0`. Negative durations are refused.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err("must not be negative".into());
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total: u128 = 0;
    if rest.is_empty() {
        return Err("invalid duration".into());
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err("invalid duration: expected a number before each unit".into());
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err("invalid duration: missing unit (h, m, s, ms, us, ns)".into()),
            other => return Err(format!("invalid duration: unknown unit {other:?} (h, m, s, ms, us, ns)")),
        };
        let too_long = || "duration too long".to_string();
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_long())? };
        let mut value = whole.checked_mul(unit_ns).ok_or_else(too_long)?;
        if !frac.is_empty() {
            // Fractions beyond nanoseconds are dropped, as Go does.
            let digits = &frac[..frac.len().min(18)];
            let f: u128 = digits.parse().map_err(|_| too_long())?;
            value += f * unit_ns / 10u128.pow(digits.len() as u32);
        }
        total = total.checked_add(value).ok_or_else(too_long)?;
        rest = next;
    }
    // Go's durations are int64 nanoseconds.
    if total > i64::MAX as u128 {
        return Err("duration too long".into());
    }
    Ok(Duration::from_nanos(total as u64))
}

// ---------------------------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------------------------

/// A cluster's state at `now`, as sdk-go's `determineRolloutStatus` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// `ToApply`: in the rollout set, not started.
    Pending,
    /// `Progressing` (or any other applied status) within its deadline, if any.
    InFlight { deadline: Option<Millis> },
    /// `Failed` within its deadline: holds its slot and counts as a failure.
    Failing { deadline: Option<Millis> },
    /// `Succeeded`, still soaking until `until`: holds its slot.
    Soaking { until: Millis },
    /// `Succeeded` past its soak time.
    Done,
    /// Past its deadline this cycle (`converted`), or already `TimeOut`: a failure.
    TimedOut { converted: bool },
    /// `Skip`: left out.
    Skipped,
}

impl State {
    /// Applied and in the rollout set: it keeps getting the revision and holds a slot.
    fn started(self) -> bool {
        matches!(self, State::InFlight { .. } | State::Failing { .. } | State::Soaking { .. })
    }

    /// Counts against `maxFailures`.
    fn failure(self) -> bool {
        matches!(self, State::Failing { .. } | State::TimedOut { .. })
    }

    /// Nothing more will happen to it in this rollout: a group of settled clusters is done.
    fn settled(self) -> bool {
        matches!(self, State::Done | State::TimedOut { .. } | State::Skipped)
    }

    /// When this cluster's state changes by the clock alone: its soak end or its deadline.
    fn wake_at(self) -> Option<Millis> {
        match self {
            State::InFlight { deadline } | State::Failing { deadline } => deadline,
            State::Soaking { until } => Some(until),
            _ => None,
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn classify(c: &RolloutCluster, config: &RolloutConfig, min_success_time: Duration, now: Millis) -> State {
    let since = c.last_transition_time.unwrap_or(now);
    let deadline = config.progress_deadline.map(|d| since.saturating_add(millis(d)));
    let within = |deadline: Option<Millis>| deadline.is_none_or(|at| now < at);
    match c.status {
        RolloutStatus::ToApply => State::Pending,
        RolloutStatus::Succeeded => {
            let until = since.saturating_add(millis(min_success_time));
            if now < until { State::Soaking { until } } else { State::Done }
        }
        RolloutStatus::TimeOut => State::TimedOut { converted: false },
        RolloutStatus::Skip => State::Skipped,
        RolloutStatus::Progressing if within(deadline) => State::InFlight { deadline },
        RolloutStatus::Failed if within(deadline) => State::Failing { deadline },
        RolloutStatus::Progressing | RolloutStatus::Failed => State::TimedOut { converted: true },
    }
}

/// One cycle's clusters, sorted by name, with their states.
struct Cycle<'a> {
    now: Millis,
    clusters: Vec<&'a RolloutCluster>,
    states: Vec<State>,
}

impl<'a> Cycle<'a> {
    fn new(clusters: &'a [RolloutCluster], config: &RolloutConfig, min_success_time: Duration, now: Millis) -> Self {
        let mut clusters: Vec<&RolloutCluster> = clusters.iter().collect();
        clusters.sort_by(|a, b| a.name.cmp(&b.name));
        let states = clusters.iter().map(|c| classify(c, config, min_success_time, now)).collect();
        Cycle { now, clusters, states }
    }

    fn all(&self) -> impl Iterator<Item = usize> + '_ {
        0..self.clusters.len()
    }

    fn names(&self, rows: impl IntoIterator<Item = usize>) -> Vec<String> {
        rows.into_iter().map(|i| self.clusters[i].name.clone()).collect()
    }

    fn started(&self) -> Vec<usize> {
        self.all().filter(|&i| self.states[i].started()).collect()
    }

    /// The decision groups, in index order, with their rows (sorted by name).
    fn groups(&self) -> Vec<Group> {
        let mut by_index: BTreeMap<u32, Group> = BTreeMap::new();
        for i in self.all() {
            let c = self.clusters[i];
            let g = by_index.entry(c.group_index).or_insert_with(|| Group {
                index: c.group_index,
                name: c.group_name.clone(),
                rows: Vec::new(),
            });
            if g.name.is_empty() {
                g.name.clone_from(&c.group_name);
            }
            g.rows.push(i);
        }
        by_index.into_values().collect()
    }

    /// The decision for `proceed` (rows), with the failures, timeouts and recheck of every
    /// cluster.
    fn decision(&self, mut proceed: Vec<usize>, stop: bool, message: String) -> RolloutDecision {
        proceed.sort_unstable();
        proceed.dedup();
        // The earliest moment a cluster in flight changes by the clock alone.
        let recheck_at = proceed.iter().filter_map(|&i| self.states[i].wake_at()).filter(|&at| at > self.now).min();
        RolloutDecision {
            proceed: self.names(proceed),
            timed_out: self.names(self.all().filter(|&i| self.states[i] == State::TimedOut { converted: true })),
            failed: self.names(self.all().filter(|&i| self.states[i].failure())),
            stop,
            recheck_after: recheck_at.map(|at| Duration::from_millis(at.abs_diff(self.now))),
            message: Some(message),
        }
    }

    fn failures(&self, rows: &[usize]) -> usize {
        rows.iter().filter(|&&i| self.states[i].failure()).count()
    }

    /// "3 to apply, 2 progressing, 1 failed, waiting until 12:00:05 for 2 to soak", over
    /// `rows` (with `starting` the pending ones that proceed now).
    fn tally(&self, rows: &[usize], starting: usize) -> String {
        let (mut progressing, mut failing, mut soaking, mut soak_end, mut timed_out) = (0, 0, 0, None, 0);
        for &i in rows {
            match self.states[i] {
                State::InFlight { .. } => progressing += 1,
                State::Failing { .. } => failing += 1,
                State::Soaking { until } => {
                    soaking += 1;
                    soak_end = soak_end.max(Some(until));
                }
                State::TimedOut { .. } => timed_out += 1,
                State::Pending | State::Done | State::Skipped => {}
            }
        }
        let mut parts = Vec::new();
        if starting > 0 {
            parts.push(format!("{starting} to apply"));
        }
        if progressing > 0 {
            parts.push(format!("{progressing} progressing"));
        }
        if failing > 0 {
            parts.push(format!("{failing} failed"));
        }
        if timed_out > 0 {
            parts.push(format!("{timed_out} timed out"));
        }
        if let Some(end) = soak_end {
            parts.push(format!("waiting until {} for {soaking} to soak", clock(end)));
        }
        if parts.is_empty() { "nothing in flight".to_string() } else { parts.join(", ") }
    }
}

/// `HH:MM:SS` UTC, for messages.
fn clock(at: Millis) -> String {
    jiff::Timestamp::from_millisecond(at)
        .map(|t| t.strftime("%H:%M:%S").to_string())
        .unwrap_or_else(|_| format!("{at} ms"))
}

struct Group {
    index: u32,
    name: String,
    rows: Vec<usize>,
}

impl Group {
    fn label(&self, position: usize, count: usize) -> String {
        if self.name.is_empty() {
            format!("group {position}/{count}")
        } else {
            format!("group {position}/{count} ({})", self.name)
        }
    }
}

/// Decides one cycle of a built-in rollout: a pure function of the strategy, the clusters of
/// the placement's current decisions (with their groups and statuses) and `now`. Clusters
/// gone from the decisions must not be passed (see [`removed_clusters`]).
pub fn decide(rollout: &BuiltinRollout, clusters: &[RolloutCluster], now: Millis) -> RolloutDecision {
    match rollout {
        BuiltinRollout::All(all) => decide_all(all, clusters, now),
        BuiltinRollout::Progressive(p) => decide_progressive(p, clusters, now),
        BuiltinRollout::ProgressivePerGroup(p) => decide_progressive_per_group(p, clusters, now),
    }
}

/// sdk-go's `ClustersRemoved`: the clusters that had a rollout status (`existing`, for
/// example the clusters with a ManifestWork of the rollout) but are no longer among the
/// placement's decisions (`clusters`), sorted. They take no part in the rollout: no slot, no
/// failure; the caller removes what it applied there.
pub fn removed_clusters<'a>(existing: impl IntoIterator<Item = &'a str>, clusters: &[RolloutCluster]) -> Vec<String> {
    let current: std::collections::HashSet<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
    let mut removed: Vec<String> = existing.into_iter().filter(|n| !current.contains(n)).map(String::from).collect();
    removed.sort_unstable();
    removed.dedup();
    removed
}

fn decide_all(all: &RolloutAll, clusters: &[RolloutCluster], now: Millis) -> RolloutDecision {
    // sdk-go runs the per-cluster algorithm with every cluster as the concurrency and the
    // failure budget, and no soak: everything in the rollout set proceeds, nothing breaches.
    let cycle = Cycle::new(clusters, &all.config, Duration::ZERO, now);
    let proceed: Vec<usize> =
        cycle.all().filter(|&i| matches!(cycle.states[i], State::Pending) || cycle.states[i].started()).collect();
    let pending = proceed.iter().filter(|&&i| cycle.states[i] == State::Pending).count();
    let everyone: Vec<usize> = cycle.all().collect();
    let message = if proceed.is_empty() {
        format!("complete: {}", settled_summary(&cycle, &everyone))
    } else {
        format!("all {} clusters: {}", clusters.len(), cycle.tally(&everyone, pending))
    };
    cycle.decision(proceed, false, message)
}

/// "12 clusters rolled out, 1 timed out".
fn settled_summary(cycle: &Cycle<'_>, rows: &[usize]) -> String {
    let done = rows.iter().filter(|&&i| cycle.states[i] == State::Done).count();
    let timed_out = rows.iter().filter(|&&i| matches!(cycle.states[i], State::TimedOut { .. })).count();
    let skipped = rows.iter().filter(|&&i| cycle.states[i] == State::Skipped).count();
    let mut s = format!("{done} cluster(s) rolled out");
    if timed_out > 0 {
        s.push_str(&format!(", {timed_out} timed out"));
    }
    if skipped > 0 {
        s.push_str(&format!(", {skipped} skipped"));
    }
    s
}

/// The outcome of walking groups: either every group settled, or the cycle's decision.
enum GroupWalk {
    Settled,
    Decided(RolloutDecision),
}

/// sdk-go's `progressivePerGroup` over `groups` in order: the first group that has not
/// settled proceeds (its pending clusters start), or the first whose failures exceed its
/// budget stops the rollout. Clusters already started anywhere keep proceeding.
/// `max_failures` gives a group's budget from its size; `numbering` is (first position,
/// number of groups) for messages, `mandatory` marks mandatory groups in them.
fn walk_groups(
    cycle: &Cycle<'_>,
    groups: &[&Group],
    max_failures: &dyn Fn(usize) -> usize,
    numbering: (usize, usize),
    mandatory: bool,
) -> GroupWalk {
    let started = cycle.started();
    for (k, group) in groups.iter().enumerate() {
        let label = {
            let l = group.label(numbering.0 + k, numbering.1);
            if mandatory { format!("mandatory {l}") } else { l }
        };
        let budget = max_failures(group.rows.len());
        let failures = cycle.failures(&group.rows);
        if failures > budget {
            // *sdk-go bug* 2: sdk-go also started the breaching group's pending clusters.
            let message = format!(
                "stopped at {label}: {failures} failed or timed out, more than maxFailures {budget}{}",
                if mandatory { " (a mandatory group tolerates none)" } else { "" }
            );
            return GroupWalk::Decided(cycle.decision(started, true, message));
        }
        if group.rows.iter().all(|&i| cycle.states[i].settled()) {
            continue;
        }
        let pending: Vec<usize> = group.rows.iter().copied().filter(|&i| cycle.states[i] == State::Pending).collect();
        let message = format!("{label}: {}", cycle.tally(&group.rows, pending.len()));
        let proceed = started.iter().copied().chain(pending).collect();
        return GroupWalk::Decided(cycle.decision(proceed, false, message));
    }
    GroupWalk::Settled
}

/// Splits the groups into the mandatory ones (in index order) and the rest.
fn split_mandatory<'g>(groups: &'g [Group], refs: &[DecisionGroupRef]) -> (Vec<&'g Group>, Vec<&'g Group>) {
    groups.iter().partition(|g| {
        refs.iter().any(|r| match r {
            DecisionGroupRef::Name(n) => g.name == *n,
            DecisionGroupRef::Index(i) => g.index == *i,
        })
    })
}

fn decide_progressive(p: &RolloutProgressive, clusters: &[RolloutCluster], now: Millis) -> RolloutDecision {
    let cycle = Cycle::new(clusters, &p.config, p.config.min_success_time, now);
    let total = clusters.len();
    let groups = cycle.groups();
    let (mandatory, rest) = split_mandatory(&groups, &p.mandatory_decision_groups);

    // Mandatory groups first, one at a time, tolerating no failure (*sdk-go bug* 3: any
    // failure there stops the rollout, also once it is recorded as TimeOut).
    if let GroupWalk::Decided(d) = walk_groups(&cycle, &mandatory, &|_| 0, (1, mandatory.len()), true) {
        return d;
    }

    // Then the rest, alphabetically, up to maxConcurrency in flight. maxFailures counts over
    // every cluster of the rollout, as sdk-go.
    let rows: Vec<usize> = rest.iter().flat_map(|g| g.rows.iter().copied()).collect();
    let max_failures = p.config.max_failures.as_ref().map_or(0, |s| s.failures_of(total));
    let concurrency = p.max_concurrency.as_ref().map_or(rows.len(), |s| s.of(rows.len(), rows.len()));
    // *sdk-go bug* 2: every failure is counted before anything is started.
    let failures = cycle.failures(&rows);
    // *sdk-go bug* 4: clusters already started hold their slots whatever their names.
    let started: Vec<usize> = rows.iter().copied().filter(|&i| cycle.states[i].started()).collect();
    let mut pending: Vec<usize> = rows.iter().copied().filter(|&i| cycle.states[i] == State::Pending).collect();
    pending.sort_unstable();
    if failures > max_failures {
        let message = format!(
            "stopped: {failures} failed or timed out, more than maxFailures {max_failures}; {}",
            cycle.tally(&rows, 0)
        );
        return cycle.decision(started, true, message);
    }
    let free = concurrency.saturating_sub(started.len());
    let starting: Vec<usize> = pending.iter().copied().take(free).collect();
    let waiting = pending.len() - starting.len();
    let message = if started.is_empty() && pending.is_empty() {
        format!("complete: {}", settled_summary(&cycle, &cycle.all().collect::<Vec<_>>()))
    } else {
        let done = rows.iter().filter(|&&i| cycle.states[i] == State::Done).count();
        let mut m = format!("{done} of {} cluster(s) done: {}", rows.len(), cycle.tally(&rows, starting.len()));
        if waiting > 0 {
            m.push_str(&format!("; {waiting} waiting for a slot (maxConcurrency {concurrency})"));
        }
        m
    };
    let proceed = started.into_iter().chain(starting).collect();
    cycle.decision(proceed, false, message)
}

fn decide_progressive_per_group(
    p: &RolloutProgressivePerGroup,
    clusters: &[RolloutCluster],
    now: Millis,
) -> RolloutDecision {
    let cycle = Cycle::new(clusters, &p.config, p.config.min_success_time, now);
    let groups = cycle.groups();
    let (mandatory, rest) = split_mandatory(&groups, &p.mandatory_decision_groups);
    let count = groups.len();
    if let GroupWalk::Decided(d) = walk_groups(&cycle, &mandatory, &|_| 0, (1, count), true) {
        return d;
    }
    // maxFailures is a share of each group (*sdk-go bug* 1: a group advances exactly when it
    // has settled within that budget, and recheck_after wakes the controller when a soak ends).
    let budget = |size: usize| p.config.max_failures.as_ref().map_or(0, |s| s.failures_of(size));
    match walk_groups(&cycle, &rest, &budget, (mandatory.len() + 1, count), false) {
        GroupWalk::Decided(d) => d,
        GroupWalk::Settled => {
            let all: Vec<usize> = cycle.all().collect();
            cycle.decision(
                cycle.started(),
                false,
                format!("complete: {} group(s), {}", count, settled_summary(&cycle, &all)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::types::RolloutStatus::{self, *};

    /// 2026-12-05T12:00:00Z: every case's `now` and transition times are relative to it.
    const T: Millis = 1_796_472_000_000;

    /// `secs` seconds after (or before) `T`.
    fn at(secs: i64) -> Millis {
        T + secs * 1000
    }

    /// A cluster in group `group` (named `g<group>`), with its status since `since` seconds.
    fn cl(name: &str, group: u32, status: RolloutStatus, since: Option<i64>) -> RolloutCluster {
        RolloutCluster {
            name: name.into(),
            group_index: group,
            group_name: format!("g{group}"),
            status,
            last_transition_time: since.map(at),
        }
    }

    fn new(name: &str, group: u32) -> RolloutCluster {
        cl(name, group, ToApply, None)
    }

    fn builtin(strategy: Value) -> BuiltinRollout {
        match parse_strategy(Some(&strategy), "spec.placementRefs[0].rolloutStrategy") {
            Ok(RolloutStrategy::Builtin(b)) => b,
            other => panic!("{strategy} is not a built-in strategy: {other:?}"),
        }
    }

    /// One case of a table: a strategy, clusters at `now`, and what must be decided.
    struct Case {
        what: &'static str,
        strategy: Value,
        clusters: Vec<RolloutCluster>,
        now: Millis,
        proceed: &'static [&'static str],
        timed_out: &'static [&'static str],
        failed: &'static [&'static str],
        stop: bool,
        /// Seconds.
        recheck: Option<u64>,
        /// The whole message, where a case checks it.
        message: Option<&'static str>,
    }

    impl Default for Case {
        fn default() -> Self {
            Case {
                what: "",
                strategy: json!({}),
                clusters: vec![],
                now: T,
                proceed: &[],
                timed_out: &[],
                failed: &[],
                stop: false,
                recheck: None,
                message: None,
            }
        }
    }

    fn run(cases: Vec<Case>) {
        for case in cases {
            let d = decide(&builtin(case.strategy.clone()), &case.clusters, case.now);
            let what = format!("{}: {:?}", case.what, d);
            assert_eq!(d.proceed, case.proceed, "proceed, {what}");
            assert_eq!(d.timed_out, case.timed_out, "timed out, {what}");
            assert_eq!(d.failed, case.failed, "failed, {what}");
            assert_eq!(d.stop, case.stop, "stop, {what}");
            assert_eq!(d.recheck_after, case.recheck.map(Duration::from_secs), "recheck, {what}");
            assert!(d.message.as_deref().is_some_and(|m| !m.is_empty() && !m.contains('\n')), "{what}");
            if let Some(message) = case.message {
                assert_eq!(d.message.as_deref(), Some(message), "{what}");
            }
        }
    }

    #[test]
    fn mandatory_groups_go_first_and_tolerate_no_failure() {
        let progressive = json!({"type": "Progressive", "progressive": {
            "mandatoryDecisionGroups": [{"groupName": "g0"}], "maxConcurrency": 2, "maxFailures": 5}});
        let per_group = json!({"type": "ProgressivePerGroup", "progressivePerGroup": {
            "mandatoryDecisionGroups": [{"groupIndex": 2}], "maxFailures": "100%"}});
        run(vec![
            Case {
                what: "nothing applied: only the mandatory group starts, beyond maxConcurrency",
                strategy: json!({"type": "Progressive", "progressive": {
                    "mandatoryDecisionGroups": [{"groupName": "g0"}], "maxConcurrency": 1}}),
                clusters: vec![new("a", 0), new("b", 0), new("c", 1), new("d", 1)],
                proceed: &["a", "b"],
                ..Case::default()
            },
            Case {
                what: "a mandatory cluster in flight holds the others back",
                strategy: progressive.clone(),
                clusters: vec![cl("a", 0, Progressing, Some(-5)), cl("b", 0, Succeeded, Some(-5)), new("c", 1)],
                proceed: &["a"],
                ..Case::default()
            },
            Case {
                what: "one mandatory failure stops the rollout although maxFailures is 5",
                strategy: progressive.clone(),
                clusters: vec![cl("a", 0, Failed, Some(-5)), cl("b", 0, Succeeded, Some(-5)), new("c", 1)],
                proceed: &["a"],
                failed: &["a"],
                stop: true,
                ..Case::default()
            },
            Case {
                what: "a mandatory cluster recorded as TimeOut still stops it (sdk-go went on)",
                strategy: progressive.clone(),
                clusters: vec![cl("a", 0, TimeOut, Some(-5)), cl("b", 0, Succeeded, Some(-5)), new("c", 1)],
                failed: &["a"],
                stop: true,
                ..Case::default()
            },
            Case {
                what: "mandatory group done: the rest start, up to maxConcurrency",
                strategy: progressive.clone(),
                clusters: vec![
                    cl("a", 0, Succeeded, Some(-5)),
                    cl("b", 0, Skip, None),
                    new("c", 1),
                    new("d", 1),
                    new("e", 2),
                ],
                proceed: &["c", "d"],
                ..Case::default()
            },
            Case {
                what: "after the mandatory group, maxConcurrency is a sliding window (sdk-go waited for the batch)",
                strategy: progressive,
                clusters: vec![
                    cl("a", 0, Succeeded, Some(-5)),
                    cl("c", 1, Progressing, Some(-5)),
                    cl("d", 1, Succeeded, Some(-5)),
                    new("e", 2),
                    new("f", 2),
                ],
                proceed: &["c", "e"],
                ..Case::default()
            },
            Case {
                what: "per group, by index: group 2 goes before groups 0 and 1",
                strategy: per_group.clone(),
                clusters: vec![new("a", 0), new("b", 1), new("c", 2)],
                proceed: &["c"],
                ..Case::default()
            },
            Case {
                what: "per group: a mandatory failure stops although maxFailures is 100%",
                strategy: per_group,
                clusters: vec![new("a", 0), new("b", 1), cl("c", 2, TimeOut, Some(-5))],
                failed: &["c"],
                stop: true,
                ..Case::default()
            },
        ]);
    }

    #[test]
    fn concurrency_slots_are_held_by_progressing_failed_and_soaking_clusters() {
        let strategy = json!({"type": "Progressive", "progressive": {
            "maxConcurrency": 3, "minSuccessTime": "1m", "progressDeadline": "10m", "maxFailures": 1}});
        run(vec![
            Case {
                what: "progressing, failed and soaking hold all three slots",
                strategy: strategy.clone(),
                clusters: vec![
                    cl("a", 0, Progressing, Some(-30)),
                    cl("b", 0, Failed, Some(-30)),
                    cl("c", 0, Succeeded, Some(-30)),
                    new("d", 0),
                    new("e", 0),
                ],
                proceed: &["a", "b", "c"],
                failed: &["b"],
                recheck: Some(30),
                message: Some(
                    "0 of 5 cluster(s) done: 1 progressing, 1 failed, waiting until 12:00:30 for 1 to soak; \
                     2 waiting for a slot (maxConcurrency 3)",
                ),
                ..Case::default()
            },
            Case {
                what: "a soaked cluster frees its slot",
                strategy: strategy.clone(),
                clusters: vec![
                    cl("a", 0, Progressing, Some(-90)),
                    cl("b", 0, Failed, Some(-90)),
                    cl("c", 0, Succeeded, Some(-90)),
                    new("d", 0),
                    new("e", 0),
                ],
                proceed: &["a", "b", "d"],
                failed: &["b"],
                recheck: Some(510),
                ..Case::default()
            },
            Case {
                what: "a timed-out cluster frees its slot and stays a failure",
                strategy: strategy.clone(),
                clusters: vec![
                    cl("a", 0, Progressing, Some(-30)),
                    cl("b", 0, TimeOut, Some(-700)),
                    cl("c", 0, Succeeded, Some(-30)),
                    new("d", 0),
                    new("e", 0),
                ],
                proceed: &["a", "c", "d"],
                failed: &["b"],
                recheck: Some(30),
                ..Case::default()
            },
            Case {
                what: "a new cluster sorting first does not take a started cluster's slot",
                strategy,
                clusters: vec![
                    new("0-new", 0),
                    cl("a", 0, Progressing, Some(-30)),
                    cl("b", 0, Progressing, Some(-30)),
                    cl("c", 0, Progressing, Some(-30)),
                ],
                proceed: &["a", "b", "c"],
                recheck: Some(570),
                ..Case::default()
            },
        ]);
    }

    #[test]
    fn deadlines_turn_progressing_and_failed_into_timeout() {
        run(vec![
            Case {
                what: "at and past the deadline: timed out; before it: in flight until then",
                strategy: json!({"type": "Progressive", "progressive": {
                    "progressDeadline": "5m", "maxFailures": 2, "maxConcurrency": 2}}),
                clusters: vec![
                    cl("a", 0, Progressing, Some(-300)),
                    cl("b", 0, Failed, Some(-360)),
                    cl("c", 0, Progressing, Some(-240)),
                    new("d", 0),
                    new("e", 0),
                ],
                proceed: &["c", "d"],
                timed_out: &["a", "b"],
                failed: &["a", "b"],
                recheck: Some(60),
                ..Case::default()
            },
            Case {
                what: "per group: a group whose clusters timed out within budget has settled",
                strategy: json!({"type": "ProgressivePerGroup", "progressivePerGroup": {
                    "progressDeadline": "1h30m", "maxFailures": 1}}),
                clusters: vec![cl("a", 0, Progressing, Some(-5400)), cl("b", 0, Succeeded, Some(-5400)), new("c", 1)],
                proceed: &["c"],
                timed_out: &["a"],
                failed: &["a"],
                ..Case::default()
            },
        ]);
    }

    #[test]
    fn none_deadline_never_passes_and_zero_passes_at_once() {
        let with = |deadline: &str| json!({"type": "All", "all": {"progressDeadline": deadline}});
        run(vec![
            Case {
                what: "None: progressing for a thousand hours is still in flight, no recheck",
                strategy: with("None"),
                clusters: vec![cl("a", 0, Progressing, Some(-3_600_000)), cl("b", 0, Failed, Some(-3_600_000))],
                proceed: &["a", "b"],
                failed: &["b"],
                ..Case::default()
            },
            Case {
                what: "absent is None",
                strategy: json!({"type": "All"}),
                clusters: vec![cl("a", 0, Progressing, Some(-3_600_000))],
                proceed: &["a"],
                ..Case::default()
            },
            Case {
                what: "0s: times out the moment it is applied; to-apply clusters still proceed",
                strategy: with("0s"),
                clusters: vec![cl("a", 0, Progressing, Some(0)), new("b", 0)],
                proceed: &["b"],
                timed_out: &["a"],
                failed: &["a"],
                ..Case::default()
            },
            Case {
                what: "0 without a unit is zero too",
                strategy: with("0"),
                clusters: vec![cl("a", 0, Failed, None)],
                timed_out: &["a"],
                failed: &["a"],
                ..Case::default()
            },
        ]);
    }

    #[test]
    fn percentages_round_up() {
        let ten: Vec<RolloutCluster> = (0..10).map(|i| new(&format!("c{i}"), 0)).collect();
        let thirty: Vec<RolloutCluster> = (0..30).map(|i| new(&format!("c{i:02}"), 0)).collect();
        let progressive =
            |concurrency: Value| json!({"type": "Progressive", "progressive": {"maxConcurrency": concurrency}});
        let started = |d: RolloutDecision| d.proceed.len();
        // maxConcurrency: 25% of 10 is 2.5, so 3; 10% of 30 is exactly 3 (sdk-go's floats gave 4).
        assert_eq!(started(decide(&builtin(progressive(json!("25%"))), &ten, T)), 3);
        assert_eq!(started(decide(&builtin(progressive(json!("10%"))), &thirty, T)), 3);
        assert_eq!(started(decide(&builtin(progressive(json!("12.5%"))), &ten, T)), 2);
        // 0% and above 100% fall back to the default, every remaining cluster.
        assert_eq!(started(decide(&builtin(progressive(json!("0%"))), &ten, T)), 10);
        assert_eq!(started(decide(&builtin(progressive(json!("150%"))), &ten, T)), 10);
        assert_eq!(started(decide(&builtin(progressive(json!(0))), &ten, T)), 10);
        assert_eq!(started(decide(&builtin(progressive(json!(-2))), &ten, T)), 10);

        // maxFailures: 25% of 10 tolerates 3 failures, not 4.
        let failing = |n: usize| -> Vec<RolloutCluster> {
            (0..10)
                .map(|i| if i < n { cl(&format!("c{i}"), 0, Failed, Some(-1)) } else { new(&format!("c{i}"), 0) })
                .collect()
        };
        let strategy = builtin(json!({"type": "Progressive", "progressive": {"maxFailures": "25%"}}));
        assert!(!decide(&strategy, &failing(3), T).stop, "3 of 10 failed, 25% tolerates ceil(2.5) = 3");
        assert!(decide(&strategy, &failing(4), T).stop, "4 of 10 failed");

        assert_eq!(Size::Percent { mantissa: 25, decimals: 0 }.of(10, 0), 3);
        assert_eq!(Size::Percent { mantissa: 10, decimals: 0 }.of(30, 0), 3);
        assert_eq!(Size::Percent { mantissa: 1, decimals: 0 }.of(1000, 0), 10);
        assert_eq!(Size::Percent { mantissa: 1, decimals: 0 }.of(1001, 0), 11);
        assert_eq!(Size::Count(7).failures_of(3), 3, "above the total tolerates every cluster");
        assert_eq!(Size::Count(7).of(3, 0), 0, "as a concurrency, above the total is the default");
    }

    #[test]
    fn max_failures_is_per_group_in_progressive_per_group() {
        // 50% of a 4-cluster group is 2; of a 2-cluster group, 1.
        let strategy = json!({"type": "ProgressivePerGroup", "progressivePerGroup": {"maxFailures": "50%"}});
        let group0 = |a: RolloutStatus, b: RolloutStatus, c: RolloutStatus| {
            vec![
                cl("a", 0, a, Some(-60)),
                cl("b", 0, b, Some(-60)),
                cl("c", 0, c, Some(-60)),
                cl("d", 0, Succeeded, Some(-60)),
            ]
        };
        run(vec![
            Case {
                what: "two timeouts in a group of four are within its budget: the next group starts",
                strategy: strategy.clone(),
                clusters: [group0(TimeOut, TimeOut, Succeeded), vec![new("e", 1), new("f", 1)]].concat(),
                proceed: &["e", "f"],
                failed: &["a", "b"],
                ..Case::default()
            },
            Case {
                what: "three are not: stop, nothing new starts",
                strategy: strategy.clone(),
                clusters: [group0(TimeOut, TimeOut, TimeOut), vec![new("e", 1), new("f", 1)]].concat(),
                failed: &["a", "b", "c"],
                stop: true,
                ..Case::default()
            },
            Case {
                what: "a failed cluster within budget and deadline holds its group until it times out",
                strategy: strategy.clone(),
                clusters: [
                    group0(Succeeded, Succeeded, Succeeded),
                    vec![cl("e", 1, Failed, Some(-5)), new("f", 1)],
                    vec![new("g", 2)],
                ]
                .concat(),
                proceed: &["e", "f"],
                failed: &["e"],
                ..Case::default()
            },
            Case {
                what: "two failures in the group of two exceed its budget of one",
                strategy,
                clusters: [
                    group0(Succeeded, Succeeded, Succeeded),
                    vec![cl("e", 1, TimeOut, Some(-5)), cl("f", 1, Failed, Some(-5)), new("g", 2)],
                ]
                .concat(),
                proceed: &["f"],
                failed: &["e", "f"],
                stop: true,
                ..Case::default()
            },
        ]);
    }

    #[test]
    fn removed_clusters_take_no_part() {
        let current = vec![new("a", 0), new("b", 0)];
        assert_eq!(removed_clusters(["zz", "a", "gone", "b", "gone"], &current), ["gone", "zz"]);
        // A failed cluster still in the decisions breaches maxFailures 0; once removed from
        // them it is neither a failure nor a slot.
        let strategy = json!({"type": "Progressive", "progressive": {"maxConcurrency": 2}});
        run(vec![
            Case {
                what: "with the failed cluster",
                strategy: strategy.clone(),
                clusters: [current.clone(), vec![cl("gone", 0, Failed, Some(-5))]].concat(),
                proceed: &["gone"],
                failed: &["gone"],
                stop: true,
                ..Case::default()
            },
            Case { what: "without it", strategy, clusters: current, proceed: &["a", "b"], ..Case::default() },
        ]);
    }

    #[test]
    fn all_rolls_out_everywhere_and_never_breaches() {
        run(vec![
            Case {
                what: "every to-apply and in-flight cluster proceeds; soak is ignored; no breach",
                strategy: json!({"type": "All", "all": {"progressDeadline": "10m", "minSuccessTime": "1h", "maxFailures": 0}}),
                clusters: vec![
                    new("a", 0),
                    cl("b", 1, Progressing, Some(-60)),
                    cl("c", 2, Failed, Some(-660)),
                    cl("d", 3, Succeeded, Some(-1)),
                    cl("e", 0, Skip, None),
                    cl("f", 1, Failed, Some(-60)),
                ],
                proceed: &["a", "b", "f"],
                timed_out: &["c"],
                failed: &["c", "f"],
                recheck: Some(540),
                ..Case::default()
            },
            Case {
                what: "the default strategy is All",
                strategy: Value::Null,
                clusters: vec![new("a", 0), new("b", 7)],
                proceed: &["a", "b"],
                ..Case::default()
            },
        ]);
        let d = decide(&builtin(json!({"type": "All"})), &[cl("a", 0, Succeeded, Some(-1))], T);
        assert_eq!(d.message.as_deref(), Some("complete: 1 cluster(s) rolled out"));
    }

    #[test]
    fn a_breach_stops_and_only_started_clusters_proceed() {
        run(vec![
            Case {
                what: "sdk-go started a (alphabetically before the failures); here nothing new starts",
                strategy: json!({"type": "Progressive", "progressive": {"maxFailures": 1}}),
                clusters: vec![
                    new("a", 0),
                    cl("b", 0, Failed, Some(-5)),
                    cl("c", 0, Progressing, Some(-5)),
                    cl("d", 0, Failed, Some(-5)),
                    new("e", 0),
                ],
                proceed: &["b", "c", "d"],
                failed: &["b", "d"],
                stop: true,
                ..Case::default()
            },
            Case {
                what: "failures beyond the concurrency window count too",
                strategy: json!({"type": "Progressive", "progressive": {"maxFailures": 0, "maxConcurrency": 1}}),
                clusters: vec![new("a", 0), new("b", 0), cl("z", 0, TimeOut, Some(-5))],
                failed: &["z"],
                stop: true,
                ..Case::default()
            },
        ]);
        let d = decide(
            &builtin(json!({"type": "Progressive", "progressive": {"maxFailures": 1}})),
            &[cl("a", 0, Failed, Some(-5)), cl("b", 0, TimeOut, Some(-5))],
            T,
        );
        assert_eq!(
            d.message.as_deref(),
            Some("stopped: 2 failed or timed out, more than maxFailures 1; 1 failed, 1 timed out")
        );
    }

    #[test]
    fn progressive_per_group_advances_after_min_success_time() {
        let strategy =
            json!({"type": "ProgressivePerGroup", "progressivePerGroup": {"minSuccessTime": "2m", "maxFailures": 1}});
        let soaking = vec![
            RolloutCluster { group_name: "canary".into(), ..cl("a", 0, Succeeded, Some(-60)) },
            RolloutCluster { group_name: "canary".into(), ..cl("b", 0, Succeeded, Some(-30)) },
            new("c", 1),
            new("d", 1),
            new("e", 2),
        ];
        run(vec![
            Case {
                what: "soaking: the group holds, and the engine asks to decide again when the first soak ends",
                strategy: strategy.clone(),
                clusters: soaking.clone(),
                proceed: &["a", "b"],
                recheck: Some(60),
                ..Case::default()
            },
            Case {
                what: "once the soak ended the next group starts (sdk-go stalled here, ocm#327)",
                strategy: strategy.clone(),
                clusters: soaking.clone(),
                now: at(90),
                proceed: &["c", "d"],
                ..Case::default()
            },
            Case {
                what: "a group settled with a timeout within budget starts only the next group \
                       (sdk-go subtracted the timeout from the next group and started two)",
                strategy,
                clusters: vec![
                    cl("a", 0, TimeOut, Some(-5)),
                    cl("b", 0, Succeeded, Some(-600)),
                    new("c", 1),
                    new("d", 2),
                ],
                proceed: &["c"],
                failed: &["a"],
                ..Case::default()
            },
        ]);
        let d = decide(
            &builtin(json!({"type": "ProgressivePerGroup", "progressivePerGroup": {"minSuccessTime": "2m"}})),
            &soaking,
            T,
        );
        assert_eq!(d.message.as_deref(), Some("group 1/3 (canary): waiting until 12:01:30 for 2 to soak"));
        let d = decide(
            &builtin(json!({"type": "ProgressivePerGroup"})),
            &[cl("a", 0, Succeeded, Some(-60)), cl("b", 1, Progressing, Some(-5)), new("c", 1), new("d", 2)],
            T,
        );
        assert_eq!(d.proceed, ["b", "c"]);
        assert_eq!(d.message.as_deref(), Some("group 2/3 (g1): 1 to apply, 1 progressing"));
    }

    #[test]
    fn recheck_is_the_earliest_future_soak_end_or_deadline() {
        run(vec![Case {
            what: "soak ends in 50 s, a deadline in 20 s",
            strategy: json!({"type": "Progressive", "progressive": {"minSuccessTime": "1m", "progressDeadline": "90s"}}),
            clusters: vec![cl("a", 0, Succeeded, Some(-10)), cl("b", 0, Progressing, Some(-70)), new("c", 0)],
            proceed: &["a", "b", "c"],
            recheck: Some(20),
            ..Case::default()
        }]);
    }

    #[test]
    fn strategies_parse_with_defaults_and_errors_name_the_field() {
        let field = "spec.placementRefs[0].rolloutStrategy";
        let parse = |v: Value| parse_strategy(Some(&v), field);
        assert_eq!(parse_strategy(None, field).expect("default"), RolloutStrategy::default());
        assert_eq!(
            parse(json!({"type": "Progressive", "progressive": {
                "mandatoryDecisionGroups": [{"groupName": "canary", "groupIndex": 3}, {"groupIndex": 1}],
                "maxConcurrency": "25%", "minSuccessTime": "1h30m", "progressDeadline": "90s", "maxFailures": 2}}))
            .expect("progressive"),
            RolloutStrategy::Builtin(BuiltinRollout::Progressive(RolloutProgressive {
                config: RolloutConfig {
                    min_success_time: Duration::from_secs(5400),
                    progress_deadline: Some(Duration::from_secs(90)),
                    max_failures: Some(Size::Count(2)),
                },
                mandatory_decision_groups: vec![DecisionGroupRef::Name("canary".into()), DecisionGroupRef::Index(1)],
                max_concurrency: Some(Size::Percent { mantissa: 25, decimals: 0 }),
            }))
        );
        assert_eq!(
            parse(json!({"type": "Plugin", "plugin": {"name": "canary-waves", "configuration": {"canary": 1},
                "failurePolicy": "Ignore", "limits": {"timeoutMillis": 50}}}))
            .expect("plugin"),
            RolloutStrategy::Plugin(PluginStrategy {
                name: "canary-waves".into(),
                configuration: r#"{"canary":1}"#.into(),
                failure_policy: Some(FailurePolicy::Ignore),
                limits: Some(LimitsOverride { timeout_millis: Some(50), ..Default::default() }),
            })
        );
        let deadline = |v: Value| match parse(v).expect("parse") {
            RolloutStrategy::Builtin(BuiltinRollout::All(all)) => all.config.progress_deadline,
            other => panic!("not All: {other:?}"),
        };
        assert_eq!(deadline(json!({"all": {"timeout": "2m"}})), Some(Duration::from_secs(120)), "deprecated timeout");
        assert_eq!(
            deadline(json!({"all": {"timeout": "2m", "progressDeadline": "None"}})),
            None,
            "progressDeadline wins"
        );
        for (value, error) in [
            (
                json!({"type": "Progressive", "progressive": {"maxConcurrency": "abc"}}),
                r#"spec.placementRefs[0].rolloutStrategy.progressive.maxConcurrency: "abc" is neither an integer nor a percentage"#,
            ),
            (
                json!({"type": "ProgressivePerGroup", "progressivePerGroup": {"maxFailures": 1.5}}),
                "spec.placementRefs[0].rolloutStrategy.progressivePerGroup.maxFailures: 1.5 is neither an integer nor a percentage",
            ),
            (
                json!({"type": "All", "all": {"progressDeadline": "soon"}}),
                r#"spec.placementRefs[0].rolloutStrategy.all.progressDeadline: "soon": invalid duration: expected a number before each unit"#,
            ),
            (
                json!({"type": "Progressive", "progressive": {"minSuccessTime": "5 minutes"}}),
                r#"spec.placementRefs[0].rolloutStrategy.progressive.minSuccessTime: "5 minutes": invalid duration: unknown unit " minutes" (h, m, s, ms, us, ns)"#,
            ),
            (
                json!({"type": "Progressive", "progressive": {"maxConcurency": 1}}),
                "spec.placementRefs[0].rolloutStrategy.progressive.maxConcurency: unknown field (known: minSuccessTime, progressDeadline, maxFailures, timeout, mandatoryDecisionGroups, maxConcurrency)",
            ),
            (
                json!({"progressive": {"maxConcurrency": 1}}),
                "spec.placementRefs[0].rolloutStrategy.progressive: is set but type is All: set type to the strategy this section configures, or remove it",
            ),
            (
                json!({"type": "Canary"}),
                r#"spec.placementRefs[0].rolloutStrategy.type: "Canary" is not one of All, Progressive, ProgressivePerGroup, Plugin"#,
            ),
            (
                json!({"type": "ProgressivePerGroup", "progressivePerGroup": {"mandatoryDecisionGroups": [{"groupIndex": -1}]}}),
                "spec.placementRefs[0].rolloutStrategy.progressivePerGroup.mandatoryDecisionGroups[0].groupIndex: -1 is not a group index",
            ),
            (json!({"type": "Plugin"}), "spec.placementRefs[0].rolloutStrategy.plugin: is required with type Plugin"),
            (
                json!({"type": "Plugin", "plugin": {"name": "x", "configuration": "canary=1"}}),
                r#"spec.placementRefs[0].rolloutStrategy.plugin.configuration: must be a JSON object, not "canary=1""#,
            ),
        ] {
            let e = parse(value.clone()).expect_err(&value.to_string());
            assert_eq!(e.to_string(), error);
        }
    }

    #[test]
    fn go_durations_parse_as_go_does() {
        for (s, ms) in [
            ("90s", 90_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1.5h", 5_400_000),
            ("500ms", 500),
            ("0", 0),
            ("0s", 0),
            ("1m0.5s", 60_500),
        ] {
            assert_eq!(parse_go_duration(s).map(|d| d.as_millis()), Ok(ms), "{s}");
        }
        for s in ["", "5", "-1s", "1d", "h", "1..5s", "99999999999999999999h"] {
            assert!(parse_go_duration(s).is_err(), "{s}");
        }
        assert_eq!(Size::Percent { mantissa: 125, decimals: 1 }.to_string(), "12.5%");
    }
}
