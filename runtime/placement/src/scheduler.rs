//! One schedule of one Placement, in OCM's order (`controllers/scheduling`):
//!
//! 1. **Cluster sets**: the namespace's ManagedClusterSetBindings whose set exists,
//!    intersected with `spec.clusterSets` (empty: all bound sets); the candidates are the
//!    clusters of those sets that are not terminating.
//! 2. **Configuration**: predicates (label, claim and CEL selectors compiled; a CEL compile
//!    error is `Predicate:compilation failed: ...`) and tolerations are checked when there are
//!    candidates (as OCM's filters, which return early on none), then the prioritizer policy,
//!    the spread constraints and the group strategy, then every Wasm plugin's configuration
//!    (refused: `<plugin>:<its message>`). A misconfiguration selects nothing, as OCM's.
//! 3. **Filters**: predicates are ORed, each ANDs its label selector, claim selector, CEL
//!    expressions and (Flotilla) its Wasm filter; taints and tolerations. A Wasm filter runs
//!    once per schedule over the clusters still in the running for its predicate (those that
//!    passed the predicate's native parts and the taints, and no earlier predicate).
//! 4. **Prioritizers** over the feasible clusters, `total = Σ weight × score`; Wasm scorers
//!    run once over all feasible clusters.
//! 5. **Choice**: ranked by total (desc) then name (asc); the top `numberOfClusters` (all when
//!    unset), or the spread-constrained choice (`spread.rs`).
//! 6. **Decision groups** (`groups.rs`), conditions, the requeue time and the explanation.
//!
//! A plugin that fails at run time follows its failure policy: `Fail` keeps the placement's
//! previous decisions (regrouped with the current strategy) with `PlacementSatisfied` False,
//! reason `PluginFailed`; `Ignore` goes on without it (a filter keeps every cluster it was
//! given, a scorer scores 0) and says so in the condition's message and the warnings.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use flotilla_plugin_host::{ClusterInfo, OwnerRef, World};
use jiff::Timestamp;
use serde_json::Value;

use crate::cel::{self, Mismatch};
use crate::explain::Explain;
use crate::groups;
use crate::inventory::{Inventory, PlacementKey};
use crate::plugins::{FailurePolicy, PluginRef, Ready, RefError, call_error};
use crate::prioritize;
use crate::spec::{self, Coordinate, Misconfig, Predicate};
use crate::spread::{self, Skipped};
use crate::taints::{self, Toleration, Verdict};
use crate::{
    ConditionOutcome, Decision, DecisionGroup, PluginResolver, REASON_ALL_SCHEDULED, REASON_ALL_SETS_EMPTY,
    REASON_MISCONFIGURED, REASON_NO_BINDINGS, REASON_NO_CLUSTER_MATCHED, REASON_NO_INTERSECTION,
    REASON_NOT_ALL_SCHEDULED, REASON_PLUGIN_FAILED, REASON_SUCCEED_CONFIGURED, SCHEDULING_DISABLE_ANNOTATION, Schedule,
};

/// Whether the Placement asks not to be scheduled
/// (`cluster.open-cluster-management.io/experimental-scheduling-disable: "true"`): an
/// external scheduler writes its decisions.
pub fn scheduling_disabled(placement: &Value) -> bool {
    placement
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(SCHEDULING_DISABLE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true")
}

/// Why a schedule stopped before choosing.
enum Stop {
    Misconfigured(Misconfig),
    /// A plugin with failure policy `Fail` failed; the message says which and why.
    PluginFailed(String),
}

impl From<Misconfig> for Stop {
    fn from(m: Misconfig) -> Stop {
        Stop::Misconfigured(m)
    }
}

/// A plugin reference ready to call, or ignored (policy `Ignore`) after a failure to prepare.
enum Slot {
    Ready(Box<Ready>, String),
    Ignored,
}

/// Why a cluster failed one predicate (strings are built only for clusters no predicate
/// matched).
enum Miss {
    Labels,
    Claims,
    Cel(usize, Mismatch),
    Plugin(String, String),
}

/// What the choosing part of a schedule produced.
struct Chosen {
    decisions: Vec<(usize, Decision)>,
    unscheduled: usize,
}

fn condition(status: &'static str, reason: &str, message: String) -> ConditionOutcome {
    ConditionOutcome { status, reason: reason.to_string(), message }
}

fn until(now: Timestamp, t: Timestamp) -> Duration {
    Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO)
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How to schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleOptions {
    /// Build [`Schedule::explanation`] (`Value::Null` when false). A schedule that only
    /// writes decisions does not need it, and at 10,000 clusters it is a large part of the time.
    pub explain: bool,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        ScheduleOptions { explain: true }
    }
}

/// The state of one schedule.
struct Run<'a> {
    inv: &'a Inventory,
    resolver: &'a dyn PluginResolver,
    spec: &'a Value,
    key: PlacementKey,
    now: Timestamp,
    owner: OwnerRef,
    explain: Explain,
    /// Whether to record the explanation.
    explaining: bool,
    /// Notes for the `PlacementSatisfied` message: plugins ignored under `Ignore`.
    ignored: Vec<String>,
    requeue: Option<Duration>,
}

/// Schedules one Placement against the inventory, with its explanation. Pure: reads the
/// inventory and calls plugins, writes nothing. `now` decides toleration and AddOn score
/// expiry.
pub fn schedule(inventory: &Inventory, placement: &Value, plugins: &dyn PluginResolver, now: Timestamp) -> Schedule {
    schedule_with(inventory, placement, plugins, now, ScheduleOptions::default())
}

/// [`schedule`] with options (without the explanation, for the controller's writes).
pub fn schedule_with(
    inventory: &Inventory,
    placement: &Value,
    plugins: &dyn PluginResolver,
    now: Timestamp,
    options: ScheduleOptions,
) -> Schedule {
    let namespace = placement.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let name = placement.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let null = Value::Null;
    let spec = placement.get("spec").unwrap_or(&null);
    let run = Run {
        inv: inventory,
        resolver: plugins,
        spec,
        key: PlacementKey::new(namespace, name),
        now,
        owner: OwnerRef { kind: "Placement".into(), namespace: namespace.into(), name: name.into() },
        explain: Explain { namespace: namespace.into(), name: name.into(), ..Default::default() },
        explaining: options.explain,
        ignored: Vec::new(),
        requeue: None,
    };
    run.run()
}

impl<'a> Run<'a> {
    fn cluster(&self, row: usize) -> &'a ClusterInfo {
        &self.inv.table.clusters()[row]
    }

    fn run(mut self) -> Schedule {
        let inv = self.inv;
        // 1. Cluster sets ∩ bindings.
        let bound: Vec<&str> = inv
            .bindings
            .get(&self.key.namespace)
            .into_iter()
            .flatten()
            .filter(|b| inv.sets.contains_key(*b))
            .map(String::as_str)
            .collect();
        let wanted: Vec<&str> = self
            .spec
            .get("clusterSets")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let eligible: BTreeSet<&str> =
            bound.iter().copied().filter(|b| wanted.is_empty() || wanted.contains(b)).collect();
        let mut rows: Vec<usize> = Vec::new();
        if !eligible.is_empty() || self.explaining {
            let terminating: Arc<str> = Arc::from("terminating (deletionTimestamp is set)");
            let outside: Arc<str> = Arc::from(if bound.is_empty() {
                format!("no valid ManagedClusterSetBinding in namespace {}", self.key.namespace)
            } else if eligible.is_empty() {
                format!("none of spec.clusterSets [{}] is bound to the namespace", wanted.join(","))
            } else {
                let sets: Vec<&str> = eligible.iter().copied().collect();
                format!("not in the eligible cluster sets [{}]", sets.join(","))
            });
            // In name order (the order of every plugin batch and of the explanation).
            for &row in inv.by_name.values() {
                let side = &inv.side[row];
                let member = side.sets.iter().any(|s| eligible.contains(&**s));
                if member && !side.terminating {
                    rows.push(row);
                } else if self.explaining {
                    let name = self.cluster(row).name.clone();
                    if member {
                        self.explain.terminating.push(name.clone());
                        self.explain.eliminated.push((name, "ClusterSets", terminating.clone()));
                    } else {
                        self.explain.eliminated.push((name, "ClusterSets", outside.clone()));
                    }
                }
            }
        }
        self.explain.bound = bound.iter().map(|s| s.to_string()).collect();
        self.explain.eligible = eligible.iter().map(|s| s.to_string()).collect();
        self.explain.candidates = rows.len();

        let outcome = self.choose(&rows);
        let (chosen, misconfig, failed) = match outcome {
            Ok(c) => (Some(c), None, None),
            Err(Stop::Misconfigured(m)) => (None, Some(m), None),
            Err(Stop::PluginFailed(msg)) => (None, None, Some(msg)),
        };

        // Decision groups: the choice, or the previous decisions when a plugin failed.
        let (group_specs, per) = spec::group_strategy(self.spec).unwrap_or_default_groups();
        let mut kept_previous = false;
        let groups: Vec<DecisionGroup> = match (&chosen, &failed) {
            (Some(c), _) => {
                let selected = c.decisions.iter().map(|(row, d)| (self.cluster(*row), d.clone())).collect();
                groups::decision_groups(selected, &group_specs, per)
            }
            // A plugin that failed under Fail, or a configuration that is wrong now: the
            // previous decisions stay, so that bad input never takes workloads off clusters.
            (None, _) if failed.is_some() || misconfig.is_some() => {
                kept_previous = true;
                let previous = inv.decisions(&self.key.namespace, &self.key.name);
                // A cluster deleted since keeps its place; it matches no group selector.
                let gone = ClusterInfo::default();
                let selected = previous
                    .iter()
                    .map(|n| {
                        let d = Decision { cluster_name: n.clone(), reason: String::new(), score: 0 };
                        (inv.table.get(n).unwrap_or(&gone), d)
                    })
                    .collect();
                self.explain.note = Some(if failed.is_some() {
                    "a plugin failed under failure policy Fail: the previous decisions are kept".into()
                } else {
                    "the placement is misconfigured: the previous decisions are kept".into()
                });
                groups::decision_groups(selected, &group_specs, per)
            }
            (None, _) => groups::decision_groups(Vec::new(), &[], spec::PerGroup::Percent(100.0)),
        };
        let selected: usize = groups.iter().map(|g| g.decisions.len()).sum();

        // Conditions, as OCM's newSatisfiedCondition and newMisconfiguredCondition.
        let satisfied = if bound.is_empty() {
            condition(
                "False",
                REASON_NO_BINDINGS,
                "No valid ManagedClusterSetBindings found in placement namespace".into(),
            )
        } else if eligible.is_empty() {
            condition(
                "False",
                REASON_NO_INTERSECTION,
                format!("None of ManagedClusterSets [{}] is bound to placement namespace", wanted.join(",")),
            )
        } else if rows.is_empty() {
            let sets: Vec<&str> = eligible.iter().copied().collect();
            condition(
                "False",
                REASON_ALL_SETS_EMPTY,
                format!("All ManagedClusterSets [{}] have no member ManagedCluster", sets.join(",")),
            )
        } else if let Some(msg) = &failed {
            condition("False", REASON_PLUGIN_FAILED, msg.clone())
        } else if selected == 0 || chosen.is_none() {
            condition(
                "False",
                REASON_NO_CLUSTER_MATCHED,
                "No ManagedCluster matches any of the cluster predicate".into(),
            )
        } else {
            match chosen.as_ref().map_or(0, |c| c.unscheduled) {
                0 => condition("True", REASON_ALL_SCHEDULED, "All cluster decisions scheduled".into()),
                n => condition("False", REASON_NOT_ALL_SCHEDULED, format!("{n} cluster decisions unscheduled")),
            }
        };
        let mut satisfied = satisfied;
        if !self.ignored.is_empty() && failed.is_none() {
            satisfied.message = format!("{}; {}", satisfied.message, self.ignored.join("; "));
        }
        let misconfigured = match &misconfig {
            Some(m) => condition("True", REASON_MISCONFIGURED, format!("{}:{}", m.plugin, m.message)),
            None => condition("False", REASON_SUCCEED_CONFIGURED, "Placement configurations check pass".into()),
        };
        if let Some(m) = &misconfig {
            self.explain.note =
                Some(format!("misconfigured: {}:{} (the previous decisions are kept)", m.plugin, m.message));
        }
        let warnings = self.explain.warnings.clone();
        let explanation = if self.explaining { self.explain.render() } else { Value::Null };
        Schedule {
            groups,
            number_of_selected_clusters: selected,
            satisfied,
            misconfigured,
            requeue_after: self.requeue,
            explanation,
            kept_previous,
            warnings,
        }
    }

    /// Prepares a plugin reference: a refused configuration is a misconfiguration; a failure
    /// stops the schedule under `Fail` and ignores the plugin under `Ignore`.
    fn slot(&mut self, r: &PluginRef, world: World) -> Result<Slot, Stop> {
        match self.inv.prepared.ready(self.resolver, r, world) {
            Ok(ready) => Ok(Slot::Ready(Box::new(ready), r.name.clone())),
            Err(e) => self.failed(&r.name, e).map(|()| Slot::Ignored),
        }
    }

    /// Applies a reference's failure: `Ok` when it is ignored (noted), else why to stop.
    fn failed(&mut self, name: &str, e: RefError) -> Result<(), Stop> {
        match e {
            RefError::Misconfigured(m) => Err(Stop::Misconfigured(Misconfig::new(name, m))),
            RefError::Failed { message, policy: FailurePolicy::Fail } => Err(Stop::PluginFailed(message)),
            RefError::Failed { message, policy: FailurePolicy::Ignore } => {
                let note = format!("{message} (ignored: failurePolicy Ignore)");
                self.explain.warnings.push(note.clone());
                self.ignored.push(note);
                Ok(())
            }
        }
    }

    fn requeue_at(&mut self, t: Option<Timestamp>) {
        if let Some(t) = t {
            self.requeue = earliest(self.requeue, Some(until(self.now, t)));
        }
    }

    fn requeue_ms(&mut self, ms: Option<u64>) {
        self.requeue = earliest(self.requeue, ms.map(Duration::from_millis));
    }

    /// Steps 2 to 5 over the candidate `rows` (sorted by name).
    fn choose(&mut self, rows: &[usize]) -> Result<Chosen, Stop> {
        let inv = self.inv;
        let spec = self.spec;
        // 2. Configuration, in OCM's order.
        let (predicates, tolerations) = if rows.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let p = spec::predicates(spec, &inv.cel_cache)?;
            let t = Toleration::list_of(spec).map_err(|m| Misconfig::new("TaintToleration", m))?;
            (p, t)
        };
        let weights = spec::prioritizers(spec)?;
        let constraints = spec::spread_constraints(spec)?;
        spec::group_strategy(spec)?;
        if rows.is_empty() {
            return Ok(Chosen { decisions: Vec::new(), unscheduled: 0 });
        }
        // Every plugin's configuration before anything runs: a misconfiguration anywhere wins
        // over a failure.
        let mut filters: Vec<Option<Slot>> = Vec::with_capacity(predicates.len());
        let mut scorers: Vec<Option<Slot>> = Vec::with_capacity(weights.len());
        let mut first_failure: Option<Stop> = None;
        let plugin_refs = predicates
            .iter()
            .map(|p| (p.plugin.as_ref(), World::PlacementFilter))
            .chain(weights.iter().map(|w| match &w.coordinate {
                Coordinate::Plugin(r) => (Some(r), World::PlacementScorer),
                _ => (None, World::PlacementScorer),
            }))
            .collect::<Vec<_>>();
        for (i, (r, world)) in plugin_refs.into_iter().enumerate() {
            let slot = match r {
                None => None,
                Some(r) => match self.slot(r, world) {
                    Ok(s) => Some(s),
                    Err(Stop::Misconfigured(m)) => return Err(Stop::Misconfigured(m)),
                    Err(failure) => {
                        first_failure.get_or_insert(failure);
                        None
                    }
                },
            };
            if i < predicates.len() { filters.push(slot) } else { scorers.push(slot) }
        }
        if let Some(f) = first_failure {
            return Err(f);
        }

        // 3. Filters.
        let own: HashSet<&str> =
            inv.decisions(&self.key.namespace, &self.key.name).iter().map(String::as_str).collect();
        let verdicts: Vec<Verdict> = rows
            .iter()
            .map(|&r| {
                let c = self.cluster(r);
                taints::check(&inv.side[r].taints, &tolerations, own.contains(c.name.as_str()), self.now)
            })
            .collect();
        let matched = self.predicates(rows, &predicates, &mut filters, &verdicts)?;
        let mut feasible: Vec<usize> = Vec::new(); // indexes into rows
        let mut after_predicate = Vec::new();
        for (i, &m) in matched.iter().enumerate() {
            if !m {
                continue;
            }
            let name = &self.cluster(rows[i]).name;
            if self.explaining {
                after_predicate.push(name.clone());
            }
            match &verdicts[i].blocked_by {
                Some(why) if self.explaining => {
                    self.explain.eliminated.push((name.clone(), "TaintToleration", Arc::from(why.as_str())))
                }
                Some(_) => {}
                None => feasible.push(i),
            }
        }
        if self.explaining {
            let survivors: Vec<String> = feasible.iter().map(|&i| self.cluster(rows[i]).name.clone()).collect();
            self.explain.pipeline.push(("Predicate".into(), after_predicate));
            self.explain.pipeline.push(("Predicate,TaintToleration".into(), survivors.clone()));
            self.explain.scored = survivors;
        }
        for &i in &feasible {
            self.requeue_at(verdicts[i].expires);
        }

        // 4. Prioritizers.
        let clusters: Vec<&ClusterInfo> = feasible.iter().map(|&i| self.cluster(rows[i])).collect();
        let feasible_rows: Vec<usize> = feasible.iter().map(|&i| rows[i]).collect();
        let mut totals = vec![0i64; clusters.len()];
        if !clusters.is_empty() {
            for (w, slot) in weights.iter().zip(scorers.iter_mut()) {
                let scores = match &w.coordinate {
                    Coordinate::Balance => prioritize::balance(inv, &own, &clusters),
                    Coordinate::Steady => prioritize::steady(inv, &self.key, &clusters),
                    Coordinate::ResourceAllocatableCpu => prioritize::resource_allocatable("cpu", &clusters),
                    Coordinate::ResourceAllocatableMemory => prioritize::resource_allocatable("memory", &clusters),
                    Coordinate::TaintToleration => {
                        let counts: Vec<usize> = feasible.iter().map(|&i| verdicts[i].preferred_against).collect();
                        prioritize::prefer_no_select(&counts)
                    }
                    Coordinate::AddOn { resource, score } => {
                        let out = prioritize::addon(inv, resource, score, &clusters, self.now);
                        if !out.expired.is_empty() {
                            self.explain
                                .warnings
                                .push(format!("AddOnPlacementScores {} expired", out.expired.join(" ")));
                        }
                        self.requeue_at(out.next_expiry);
                        out.scores
                    }
                    Coordinate::Plugin(_) => self.score_with(slot.take(), &feasible_rows)?,
                };
                for (t, s) in totals.iter_mut().zip(&scores) {
                    *t = t.saturating_add(s.saturating_mul(w.weight));
                }
                if self.explaining {
                    self.explain.prioritizers.push((w.coordinate.name(), w.weight, scores));
                }
            }
        }
        if self.explaining {
            self.explain.totals = totals.clone();
        }

        // 5. Choice.
        let mut ranked: Vec<usize> = (0..clusters.len()).collect();
        ranked.sort_by(|&a, &b| totals[b].cmp(&totals[a]).then_with(|| clusters[a].name.cmp(&clusters[b].name)));
        let number = spec.get("numberOfClusters").and_then(Value::as_i64);
        let want = number.map_or(ranked.len(), |n| usize::try_from(n).unwrap_or(0));
        let chosen: Vec<usize> = if constraints.is_empty() {
            if self.explaining {
                let why: Arc<str> = Arc::from(format!("not among the top {want}"));
                for &i in ranked.iter().skip(want) {
                    self.explain.not_selected.push((clusters[i].name.clone(), why.clone()));
                }
            }
            ranked.iter().copied().take(want).collect()
        } else {
            let in_order: Vec<&ClusterInfo> = ranked.iter().map(|&i| clusters[i]).collect();
            let choice = spread::choose(&in_order, &constraints, want);
            if choice.soft_violations > 0 {
                self.explain.warnings.push(format!(
                    "{} choices exceeded the maxSkew of a ScheduleAnyway spread constraint",
                    choice.soft_violations
                ));
            }
            let not_needed: Arc<str> = Arc::from(format!("not among the {want} chosen"));
            for (pos, why) in choice.skipped.into_iter().filter(|_| self.explaining) {
                let name = in_order[pos].name.clone();
                match why {
                    Skipped::MissingKey(k) => self.explain.eliminated.push((
                        name,
                        "SpreadConstraints",
                        Arc::from(format!("no topology key {k} (DoNotSchedule)")),
                    )),
                    Skipped::Skew(m) => self.explain.eliminated.push((name, "SpreadConstraints", Arc::from(m))),
                    Skipped::NotNeeded => self.explain.not_selected.push((name, not_needed.clone())),
                }
            }
            choice.chosen.into_iter().map(|pos| ranked[pos]).collect()
        };
        if self.explaining {
            self.explain.selected = chosen.iter().map(|&i| clusters[i].name.clone()).collect();
        }
        let unscheduled = number.map_or(0, |n| usize::try_from(n).unwrap_or(0).saturating_sub(chosen.len()));
        let decisions = chosen
            .into_iter()
            .map(|i| {
                (
                    feasible_rows[i],
                    Decision { cluster_name: clusters[i].name.clone(), reason: String::new(), score: totals[i] },
                )
            })
            .collect();
        Ok(Chosen { decisions, unscheduled })
    }

    /// Step 3's predicates: per candidate, whether a predicate matched (all match when there
    /// are none). Eliminated candidates are recorded with their reasons.
    fn predicates(
        &mut self,
        rows: &[usize],
        predicates: &[Predicate],
        filters: &mut [Option<Slot>],
        verdicts: &[Verdict],
    ) -> Result<Vec<bool>, Stop> {
        let inv = self.inv;
        let mut matched = vec![predicates.is_empty(); rows.len()];
        if predicates.is_empty() {
            return Ok(matched);
        }
        // Why each candidate failed each predicate, for the explanation only.
        let mut misses: Vec<Vec<(usize, Miss)>> = Vec::new();
        if self.explaining {
            misses.resize_with(rows.len(), Vec::new);
        }
        for (pi, p) in predicates.iter().enumerate() {
            let has_filter = matches!(filters[pi], Some(Slot::Ready(..)));
            let mut for_filter: Vec<usize> = Vec::new();
            for (i, &row) in rows.iter().enumerate() {
                if matched[i] {
                    continue;
                }
                let c = self.cluster(row);
                let miss = if !p.labels.matches_map(&c.labels) {
                    Some(Miss::Labels)
                } else if !p.claims.matches_map(&c.claims) {
                    Some(Miss::Claims)
                } else if p.cel.is_empty() {
                    None
                } else {
                    let side = &inv.side[row];
                    let object = || {
                        c.object
                            .as_ref()
                            .map(flotilla_apimachinery::cel::json_to_cel)
                            .unwrap_or(cel_interpreter::Value::Null)
                    };
                    let value = || side.cel.get_or_init(object);
                    let scores = || cel::scores_to_cel(inv.addon_scores.get(&c.name));
                    cel::matches(&p.cel, value, Some(&side.cel_memo), scores).err().map(|(e, why)| Miss::Cel(e, why))
                };
                match miss {
                    Some(m) => {
                        if let Some(list) = misses.get_mut(i) {
                            list.push((pi, m));
                        }
                    }
                    // A cluster a taint removes anyway is not worth the plugin's time; it is
                    // reported as removed by the taint.
                    None if has_filter && verdicts[i].blocked_by.is_none() => for_filter.push(i),
                    None => matched[i] = true,
                }
            }
            let Some(Slot::Ready(ready, name)) = filters[pi].take() else { continue };
            if for_filter.is_empty() {
                continue;
            }
            let batch_rows: Vec<usize> = for_filter.iter().map(|&i| rows[i]).collect();
            let batch = ready.prepared.batch_of(&inv.table, Some(&batch_rows));
            let host = self.resolver.host();
            match host.placement_filter(&ready.prepared, &self.owner, &batch, &ready.limits) {
                Ok(result) => {
                    self.requeue_ms(result.requeue_after_ms);
                    for (j, &i) in for_filter.iter().enumerate() {
                        if result.keeps(j) {
                            matched[i] = true;
                        } else if let Some(list) = misses.get_mut(i) {
                            let why = result.reason(j).unwrap_or("removed").to_string();
                            list.push((pi, Miss::Plugin(name.clone(), why)));
                        }
                    }
                }
                Err(e) => {
                    self.failed(&name, call_error(&name, e, ready.policy))?;
                    for &i in &for_filter {
                        matched[i] = true;
                    }
                }
            }
        }
        if !self.explaining {
            return Ok(matched);
        }
        // Each selector's text once, not once per cluster.
        let texts: Vec<(String, String)> = predicates
            .iter()
            .enumerate()
            .map(|(pi, p)| {
                (
                    format!("predicates[{pi}]: labelSelector {} does not match", p.labels),
                    format!("predicates[{pi}]: claimSelector {} does not match", p.claims),
                )
            })
            .collect();
        let mut reason = String::new();
        // One string per distinct reason, shared by the clusters that have it.
        let mut interned: HashSet<Arc<str>> = HashSet::new();
        for (i, m) in matched.iter().enumerate() {
            if *m {
                continue;
            }
            reason.clear();
            for (pi, miss) in &misses[i] {
                if !reason.is_empty() {
                    reason.push_str("; ");
                }
                match miss {
                    Miss::Labels => reason.push_str(&texts[*pi].0),
                    Miss::Claims => reason.push_str(&texts[*pi].1),
                    Miss::Cel(e, why) => reason.push_str(&format!(
                        "predicates[{pi}]: celExpressions[{e}] {}: {why}",
                        predicates[*pi].cel[*e].source
                    )),
                    Miss::Plugin(name, why) => reason.push_str(&format!("predicates[{pi}]: plugin {name}: {why}")),
                }
            }
            let shared = match interned.get(reason.as_str()) {
                Some(r) => r.clone(),
                None => {
                    let r: Arc<str> = Arc::from(reason.as_str());
                    interned.insert(r.clone());
                    r
                }
            };
            self.explain.eliminated.push((self.cluster(rows[i]).name.clone(), "Predicate", shared));
        }
        Ok(matched)
    }

    /// Runs a Wasm scorer over the feasible clusters.
    fn score_with(&mut self, slot: Option<Slot>, rows: &[usize]) -> Result<Vec<i64>, Stop> {
        let Some(Slot::Ready(ready, name)) = slot else { return Ok(vec![0; rows.len()]) };
        let batch = ready.prepared.batch_of(&self.inv.table, Some(rows));
        match self.resolver.host().placement_scorer(&ready.prepared, &self.owner, &batch, &ready.limits) {
            Ok(result) => {
                self.requeue_ms(result.requeue_after_ms);
                Ok(result.scores.iter().map(|&s| i64::from(s)).collect())
            }
            Err(e) => {
                self.failed(&name, call_error(&name, e, ready.policy))?;
                Ok(vec![0; rows.len()])
            }
        }
    }
}

/// The group strategy, or none when it is invalid (a misconfiguration reported elsewhere).
trait OrDefaultGroups {
    fn unwrap_or_default_groups(self) -> (Vec<spec::GroupSpec>, spec::PerGroup);
}

impl OrDefaultGroups for Result<(Vec<spec::GroupSpec>, spec::PerGroup), Misconfig> {
    fn unwrap_or_default_groups(self) -> (Vec<spec::GroupSpec>, spec::PerGroup) {
        self.unwrap_or_else(|_| (Vec::new(), spec::PerGroup::Percent(100.0)))
    }
}
