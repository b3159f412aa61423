//! Built-in rollout strategy: a canary, then waves, each gated on the health of everything
//! before it.
//!
//! ```json
//! {"canary": 1, "waves": ["25%", "50%", "100%"], "maxFailures": 0,
//!  "progressDeadline": "10m", "minSuccessTime": "1m"}
//! ```
//! Clusters are ordered by decision group, then name. The first `canary` clusters form the
//! first stage; each wave extends the rollout to that share of all clusters (percentages round
//! up, as OCM). A stage starts when every cluster of the stages before it has succeeded and
//! soaked for `minSuccessTime`, or timed out within `maxFailures`. Statuses, deadlines and
//! failures follow OCM's sdk-go rollout engine: a cluster that is progressing or failed past
//! `progressDeadline` times out; failed and timed-out clusters count as failures; more than
//! `maxFailures` stops the rollout, keeping only clusters already started.

wit_bindgen::generate!({
    path: "../../../wit/rollout-strategy",
    world: "rollout-strategy",
    generate_all,
});

use exports::flotilla::rollout_strategy::strategy::{Guest, RolloutCluster, RolloutDecision, RolloutStatus};
use flotilla::types::types::{Description, OwnerRef, Reads, Timestamp};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    canary: Option<Size>,
    #[serde(default)]
    waves: Vec<Size>,
    #[serde(default)]
    max_failures: Option<Size>,
    #[serde(default)]
    progress_deadline: Option<String>,
    #[serde(default)]
    min_success_time: Option<String>,
}

/// A count or a percentage of all clusters, as OCM's `intstr`.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Size {
    Count(u32),
    Percent(String),
}

impl Size {
    fn validate(&self, what: &str) -> Result<(), String> {
        if let Size::Percent(p) = self {
            percent(p).ok_or_else(|| format!("{what}: {p:?} is neither a count nor a percentage like \"25%\""))?;
        }
        Ok(())
    }

    /// The size over `total` clusters; percentages round up.
    fn of(&self, total: usize) -> usize {
        match self {
            Size::Count(n) => *n as usize,
            Size::Percent(p) => percent(p).map_or(0, |p| (total * p as usize).div_ceil(100)),
        }
    }
}

fn percent(s: &str) -> Option<u32> {
    s.strip_suffix('%')?.trim().parse::<u32>().ok().filter(|p| *p <= 100)
}

/// Go-style durations as OCM's API: `90s`, `10m`, `1h30m`, `500ms`; `None` for no deadline.
fn duration_ms(s: &str) -> Result<Option<u64>, String> {
    if s == "None" {
        return Ok(None);
    }
    let mut total = 0u64;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else {
            return Err(format!("invalid duration {s:?}: use units h, m, s or ms, or None"));
        };
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(|| format!("{s:?} is too long"))?;
        rest = &rest[len..];
    }
    Ok(Some(total))
}

struct Config {
    canary: Size,
    waves: Vec<Size>,
    max_failures: Size,
    progress_deadline_ms: Option<u64>,
    min_success_ms: u64,
}

fn parse(config: &str) -> Result<Config, String> {
    let raw: RawConfig = serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    let canary = raw.canary.unwrap_or(Size::Count(1));
    canary.validate("canary")?;
    for w in &raw.waves {
        w.validate("waves")?;
    }
    let max_failures = raw.max_failures.unwrap_or(Size::Count(0));
    max_failures.validate("maxFailures")?;
    let progress_deadline_ms = match &raw.progress_deadline {
        Some(d) => duration_ms(d).map_err(|e| format!("progressDeadline: {e}"))?,
        None => None,
    };
    let min_success_ms = match &raw.min_success_time {
        Some(d) => duration_ms(d).map_err(|e| format!("minSuccessTime: {e}"))?.unwrap_or(0),
        None => 0,
    };
    let waves = if raw.waves.is_empty() { vec![Size::Percent("100%".into())] } else { raw.waves };
    Ok(Config { canary, waves, max_failures, progress_deadline_ms, min_success_ms })
}

/// A cluster's state at `now`, as sdk-go's `determineRolloutStatus` sees it.
#[derive(Clone, Copy, PartialEq)]
enum State {
    /// Not applied yet.
    Pending,
    /// Applied, not healthy yet, within its deadline.
    InFlight,
    /// Degraded, within its deadline: it keeps its slot and counts as a failure.
    Failing,
    /// Healthy, still soaking until the given time.
    Soaking(Timestamp),
    /// Healthy past its soak time.
    Done,
    /// Progressing or failed past its deadline, or already timed out.
    TimedOut,
}

fn state(c: &RolloutCluster, config: &Config, now: Timestamp) -> State {
    let since = c.last_transition_time.unwrap_or(now);
    let past_deadline = config.progress_deadline_ms.is_some_and(|d| now >= since.saturating_add(d as i64));
    match c.status {
        RolloutStatus::ToApply => State::Pending,
        RolloutStatus::Progressing if past_deadline => State::TimedOut,
        RolloutStatus::Progressing => State::InFlight,
        RolloutStatus::Failed if past_deadline => State::TimedOut,
        RolloutStatus::Failed => State::Failing,
        RolloutStatus::Succeeded => {
            let until = since.saturating_add(config.min_success_ms as i64);
            if now < until { State::Soaking(until) } else { State::Done }
        }
        RolloutStatus::TimeOut => State::TimedOut,
        // Callers filter skipped clusters out before this.
        RolloutStatus::Skip => State::Done,
    }
}

fn decide(config: &Config, now: Timestamp, clusters: &[RolloutCluster]) -> RolloutDecision {
    let mut live: Vec<&RolloutCluster> = clusters.iter().filter(|c| c.status != RolloutStatus::Skip).collect();
    live.sort_by(|a, b| (a.group_index, &a.cluster.name).cmp(&(b.group_index, &b.cluster.name)));
    let total = live.len();
    let states: Vec<State> = live.iter().map(|c| state(c, config, now)).collect();

    // Stage boundaries: the canary, then each wave, always ending with every cluster.
    let mut bounds = vec![config.canary.of(total).min(total)];
    for w in &config.waves {
        let prev = bounds.last().copied().unwrap_or(0);
        bounds.push(w.of(total).clamp(prev, total));
    }
    if bounds.last().copied().unwrap_or(0) < total {
        bounds.push(total);
    }
    bounds.dedup();
    bounds.retain(|b| *b > 0);

    let name = |i: usize| live[i].cluster.name.clone();
    let failed: Vec<String> =
        (0..total).filter(|&i| matches!(states[i], State::Failing | State::TimedOut)).map(name).collect();
    let timed_out: Vec<String> = (0..total).filter(|&i| states[i] == State::TimedOut).map(name).collect();
    let max_failures = config.max_failures.of(total);
    let started = |s: State| matches!(s, State::InFlight | State::Failing | State::Soaking(_));

    let mut recheck: Option<u64> = None;
    let mut wake = |at: Timestamp| {
        let after = at.saturating_sub(now).max(1) as u64;
        recheck = Some(recheck.map_or(after, |r| r.min(after)));
    };
    for (c, s) in live.iter().zip(&states) {
        match s {
            State::InFlight | State::Failing => {
                if let (Some(d), Some(since)) = (config.progress_deadline_ms, c.last_transition_time) {
                    wake(since.saturating_add(d as i64));
                }
            }
            State::Soaking(until) => wake(*until),
            _ => {}
        }
    }

    if failed.len() > max_failures {
        let proceed = (0..total).filter(|&i| started(states[i])).map(name).collect();
        return RolloutDecision {
            proceed,
            timed_out,
            failed: failed.clone(),
            stop: true,
            recheck_after_ms: recheck,
            message: Some(format!("stopped: {} failure(s), more than maxFailures {max_failures}", failed.len())),
        };
    }

    // The current stage is the first with a cluster that is neither done nor timed out.
    let mut start = 0;
    let mut stage = bounds.len();
    for (k, &end) in bounds.iter().enumerate() {
        if states[start..end].iter().any(|s| !matches!(s, State::Done | State::TimedOut)) {
            stage = k;
            break;
        }
        start = end;
    }
    let message = if stage == bounds.len() {
        format!("complete: {total} cluster(s)")
    } else {
        let end = bounds[stage];
        let waiting = states[..end].iter().filter(|s| !matches!(s, State::Done | State::TimedOut)).count();
        let label = if stage == 0 && config.canary.of(total) > 0 {
            "canary".to_string()
        } else {
            format!("stage {}", stage + 1)
        };
        format!("{label} of {}: waiting for {waiting} of {end} cluster(s)", bounds.len())
    };
    let end = bounds.get(stage).copied().unwrap_or(total);
    let proceed = (0..end).filter(|&i| matches!(states[i], State::Pending) || started(states[i])).map(name).collect();
    RolloutDecision { proceed, timed_out, failed, stop: false, recheck_after_ms: recheck, message: Some(message) }
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "canary-waves".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "A canary, then percentage waves, each gated on the health of the clusters before it, with \
                      OCM's progress deadline, soak time and maxFailures."
                .into(),
            reads: Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![] },
            config_schema: Some(include_str!("../config.schema.json").into()),
        }
    }

    fn validate_config(config: String) -> Result<Reads, String> {
        parse(&config)?;
        Ok(Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![] })
    }

    fn decide(
        config: String,
        _owner: OwnerRef,
        now: Timestamp,
        clusters: Vec<RolloutCluster>,
    ) -> Result<RolloutDecision, String> {
        let config = parse(&config)?;
        Ok(decide(&config, now, &clusters))
    }
}

export!(Plugin);
