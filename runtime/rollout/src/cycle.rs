//! One rollout cycle of one placement, as a pure function: the clusters its decisions select,
//! what their works hold and report, the stored per-cluster state, the strategy and `now` in;
//! the new per-cluster state, which clusters get the current revision, and which go back to
//! an earlier one out. The controller ([`crate::controller`]) reads and writes around it.
//!
//! - A cluster's status is ToApply unless its work holds the current template; then it is
//!   what [`crate::works::rollout_status`] reads from the work.
//! - `lastTransitionTime` moves only when that status changes, so soak times and deadlines
//!   count from the real transition, also across controller restarts (OCM #1207 measured
//!   them from a stale time).
//! - The strategy sees every cluster with that status. A cluster it times out is kept
//!   Progressing (or Failed) with `timedOut`, so the next cycle times it out again from the
//!   same transition time instead of restarting its deadline.
//! - With automatic rollback, a stop (maxFailures breached) or clusters declared failed make
//!   the failed and timed-out clusters go back to the last revision that succeeded there, and
//!   the rollout of this revision stops: no cluster gets it any more until the template
//!   changes again.

use std::collections::{BTreeMap, BTreeSet};

use crate::status::{ClusterState, rfc3339};
use crate::types::{Millis, RolloutCluster, RolloutDecision, RolloutStatus, Strategy, StrategyError};

/// A cluster selected by a placement's decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub name: String,
    pub group_index: u32,
    pub group_name: String,
}

/// What a cluster's work holds and reports.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkView {
    pub revision: Option<i64>,
    pub hash: Option<String>,
    /// Its rollout status and why, read as if it held the current revision.
    pub status: RolloutStatus,
    pub message: String,
}

/// The inputs of one cycle.
pub struct Cycle<'a> {
    pub placement: &'a str,
    /// Sorted by name, each once.
    pub selected: &'a [Selected],
    pub works: &'a BTreeMap<String, WorkView>,
    pub previous: &'a BTreeMap<String, ClusterState>,
    pub revision: i64,
    pub hash: &'a str,
    /// The rollout of this revision was stopped by an automatic rollback.
    pub stopped: bool,
    pub automatic_rollback: bool,
    /// Revisions still stored (a rollback needs the template).
    pub stored_revisions: &'a BTreeSet<i64>,
    pub now: Millis,
}

/// What one cycle decided.
#[derive(Debug, Default)]
pub struct Outcome {
    pub clusters: Vec<ClusterState>,
    /// Clusters that get the current revision now (those that hold it already are skipped
    /// by the controller).
    pub apply: Vec<String>,
    /// Clusters that go back to a revision: (cluster, revision number).
    pub rollback: Vec<(String, i64)>,
    pub decision: Option<RolloutDecision>,
    pub error: Option<StrategyError>,
    /// This cycle stopped the rollout (automatic rollback).
    pub stopped_now: bool,
}

impl Cycle<'_> {
    /// The per-cluster state before the strategy: statuses from the works, transition times.
    pub fn observe(&self) -> Vec<ClusterState> {
        self.selected
            .iter()
            .map(|s| {
                let work = self.works.get(&s.name);
                let current = work.is_some_and(|w| w.hash.as_deref() == Some(self.hash));
                let (status, message) = match work {
                    Some(w) if current => (w.status, Some(w.message.clone()).filter(|m| !m.is_empty())),
                    _ => (RolloutStatus::ToApply, None),
                };
                let prev = self.previous.get(&s.name);
                let last_transition_time = match prev {
                    Some(p) if p.status == status && p.last_transition_time.is_some() => p.last_transition_time.clone(),
                    _ => Some(rfc3339(self.now)),
                };
                let succeeded_revision = if current && status == RolloutStatus::Succeeded {
                    Some(self.revision)
                } else {
                    prev.and_then(|p| p.succeeded_revision)
                };
                // A time-out holds while the cluster stays where it timed out.
                let timed_out = prev.is_some_and(|p| p.timed_out && p.status == status) && current;
                let rolled_back_to = prev.and_then(|p| p.rolled_back_to).filter(|_| !current);
                ClusterState {
                    name: s.name.clone(),
                    placement: self.placement.to_string(),
                    group_index: s.group_index,
                    group_name: s.group_name.clone(),
                    status,
                    last_transition_time,
                    revision: work.and_then(|w| w.revision),
                    succeeded_revision,
                    timed_out,
                    rolled_back_to,
                    message,
                }
            })
            .collect()
    }

    /// Runs the cycle with `strategy`.
    pub fn run(&self, strategy: &dyn Strategy) -> Outcome {
        let mut clusters = self.observe();
        if self.stopped {
            return Outcome { clusters, ..Default::default() };
        }
        let input: Vec<RolloutCluster> = clusters
            .iter()
            .map(|c| RolloutCluster {
                name: c.name.clone(),
                group_index: c.group_index,
                group_name: c.group_name.clone(),
                status: c.status,
                last_transition_time: c.last_transition_millis(),
            })
            .collect();
        let decision = match strategy.decide(self.now, &input) {
            Ok(decision) => decision,
            Err(error) => return Outcome { clusters, error: Some(error), ..Default::default() },
        };
        let timed_out: BTreeSet<&str> = decision.timed_out.iter().map(String::as_str).collect();
        for c in &mut clusters {
            if timed_out.contains(c.name.as_str()) {
                c.timed_out = true;
            }
        }
        let mut outcome = Outcome::default();
        if self.automatic_rollback && (decision.stop || !decision.failed.is_empty()) {
            let declared: BTreeSet<&str> = decision.failed.iter().map(String::as_str).collect();
            for c in &mut clusters {
                let failed = declared.contains(c.name.as_str())
                    || (decision.stop && (c.timed_out || c.status == RolloutStatus::Failed));
                if !failed {
                    continue;
                }
                match c.succeeded_revision.filter(|r| *r != self.revision && self.stored_revisions.contains(r)) {
                    Some(to) => {
                        outcome.rollback.push((c.name.clone(), to));
                        c.rolled_back_to = Some(to);
                    }
                    None => {
                        c.message = Some(format!(
                            "{}; no earlier revision succeeded here to roll back to",
                            c.message.as_deref().unwrap_or("failed")
                        ));
                    }
                }
            }
            outcome.stopped_now = true;
        } else {
            outcome.apply = decision.proceed.clone();
        }
        outcome.clusters = clusters;
        outcome.decision = Some(decision);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A strategy that answers what it was told to, and remembers what it saw.
    struct Scripted {
        answer: RolloutDecision,
        seen: std::sync::Mutex<Vec<RolloutCluster>>,
    }

    impl Strategy for Scripted {
        fn decide(&self, _now: Millis, clusters: &[RolloutCluster]) -> Result<RolloutDecision, StrategyError> {
            *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = clusters.to_vec();
            Ok(self.answer.clone())
        }
    }

    fn selected(names: &[&str]) -> Vec<Selected> {
        names.iter().map(|n| Selected { name: n.to_string(), group_index: 0, group_name: String::new() }).collect()
    }

    fn view(hash: &str, revision: i64, status: RolloutStatus) -> WorkView {
        WorkView { revision: Some(revision), hash: Some(hash.into()), status, message: String::new() }
    }

    #[test]
    fn statuses_come_from_works_holding_the_current_template() {
        let works = BTreeMap::from([
            ("a".to_string(), view("h2", 2, RolloutStatus::Succeeded)),
            ("b".to_string(), view("h1", 1, RolloutStatus::Succeeded)),
        ]);
        let previous = BTreeMap::new();
        let revisions = BTreeSet::from([1, 2]);
        let sel = selected(&["a", "b", "c"]);
        let cycle = Cycle {
            placement: "p",
            selected: &sel,
            works: &works,
            previous: &previous,
            revision: 2,
            hash: "h2",
            stopped: false,
            automatic_rollback: true,
            stored_revisions: &revisions,
            now: 1_000_000,
        };
        let strategy = Scripted {
            answer: RolloutDecision { proceed: vec!["b".into()], ..Default::default() },
            seen: Default::default(),
        };
        let out = cycle.run(&strategy);
        let seen = strategy.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let statuses: Vec<RolloutStatus> = seen.iter().map(|c| c.status).collect();
        assert_eq!(statuses, [RolloutStatus::Succeeded, RolloutStatus::ToApply, RolloutStatus::ToApply]);
        assert_eq!(out.apply, ["b"]);
        assert_eq!(out.clusters[0].succeeded_revision, Some(2));
        assert_eq!(out.clusters[1].revision, Some(1));
    }

    #[test]
    fn transition_times_move_only_with_the_status_and_time_outs_hold() {
        let works = BTreeMap::from([("a".to_string(), view("h2", 2, RolloutStatus::Progressing))]);
        let mut before = Cycle::observe(&Cycle {
            placement: "p",
            selected: &selected(&["a"]),
            works: &works,
            previous: &BTreeMap::new(),
            revision: 2,
            hash: "h2",
            stopped: false,
            automatic_rollback: false,
            stored_revisions: &BTreeSet::new(),
            now: 1_000_000,
        });
        before[0].timed_out = true;
        let previous = BTreeMap::from([("a".to_string(), before[0].clone())]);
        let sel = selected(&["a"]);
        let later = Cycle {
            placement: "p",
            selected: &sel,
            works: &works,
            previous: &previous,
            revision: 2,
            hash: "h2",
            stopped: false,
            automatic_rollback: false,
            stored_revisions: &BTreeSet::new(),
            now: 9_000_000,
        };
        let now = later.observe();
        assert_eq!(now[0].last_transition_time, before[0].last_transition_time);
        assert!(now[0].timed_out);
        let healthy = BTreeMap::from([("a".to_string(), view("h2", 2, RolloutStatus::Succeeded))]);
        let after = Cycle { works: &healthy, ..later }.observe();
        assert_ne!(after[0].last_transition_time, before[0].last_transition_time);
        assert!(!after[0].timed_out);
    }

    #[test]
    fn a_stop_rolls_failed_clusters_back_to_what_succeeded_there() {
        let works = BTreeMap::from([
            ("a".to_string(), view("h2", 2, RolloutStatus::Succeeded)),
            ("b".to_string(), view("h2", 2, RolloutStatus::Progressing)),
            ("c".to_string(), view("h2", 2, RolloutStatus::Failed)),
        ]);
        let ok_before = |name: &str, rev| {
            let mut c = Cycle {
                placement: "p",
                selected: &selected(&[name]),
                works: &BTreeMap::new(),
                previous: &BTreeMap::new(),
                revision: 1,
                hash: "h1",
                stopped: false,
                automatic_rollback: true,
                stored_revisions: &BTreeSet::new(),
                now: 0,
            }
            .observe()
            .remove(0);
            c.succeeded_revision = rev;
            (name.to_string(), c)
        };
        let previous = BTreeMap::from([ok_before("a", Some(1)), ok_before("b", Some(1)), ok_before("c", None)]);
        let revisions = BTreeSet::from([1, 2]);
        let sel = selected(&["a", "b", "c"]);
        let cycle = Cycle {
            placement: "p",
            selected: &sel,
            works: &works,
            previous: &previous,
            revision: 2,
            hash: "h2",
            stopped: false,
            automatic_rollback: true,
            stored_revisions: &revisions,
            now: 5_000,
        };
        let strategy = Scripted {
            answer: RolloutDecision {
                proceed: vec!["b".into(), "c".into()],
                timed_out: vec!["b".into()],
                stop: true,
                ..Default::default()
            },
            seen: Default::default(),
        };
        let out = cycle.run(&strategy);
        assert!(out.stopped_now);
        assert!(out.apply.is_empty(), "a stopped rollout gives the revision to nobody more");
        assert_eq!(out.rollback, [("b".to_string(), 1)], "c never succeeded anywhere before");
        assert_eq!(out.clusters[1].rolled_back_to, Some(1));
        assert!(out.clusters[2].message.as_deref().unwrap_or_default().contains("no earlier revision"));

        // Stopped: the strategy is not asked again.
        let stopped = Cycle { stopped: true, ..cycle };
        let out = stopped.run(&strategy);
        assert!(out.decision.is_none() && out.apply.is_empty() && out.rollback.is_empty());
    }
}
