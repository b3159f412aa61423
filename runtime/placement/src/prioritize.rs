//! The built-in prioritizers, each a score in [-100, 100] per feasible cluster, exactly as
//! OCM computes them (`plugins/{balance,steady,resource,addon}`), plus Flotilla's
//! `TaintToleration`:
//!
//! - `Balance`: 100 for a cluster no *other* placement selected; otherwise
//!   `2 · trunc(100 · (0.5 − count / maxCount))`, where `maxCount` is the most decisions of
//!   other placements on any cluster of the fleet;
//! - `Steady`: 100 for a cluster already in this placement's decisions, else 0;
//! - `ResourceAllocatableCPU` / `ResourceAllocatableMemory`: over the feasible clusters that
//!   report both the allocatable and the capacity of the resource,
//!   `trunc(((alloc − min) / (max − min) − 0.5) · 200)`, 100 for all when they are equal; 0
//!   for a cluster that does not report them;
//! - `AddOn/<resource>/<score>`: the score's value in the cluster's AddOnPlacementScore
//!   `<resource>`; 0 when the object or the score is missing or `validUntil` has passed
//!   (with a warning listing the expired ones); the schedule is requeued at the earliest
//!   `validUntil` still to come;
//! - `TaintToleration` (Flotilla; OCM ignores `PreferNoSelect`): 0 for a cluster without
//!   PreferNoSelect taints that no toleration matches, otherwise
//!   `−trunc(100 · count / maxCount)` over the feasible clusters, as Kubernetes' score for
//!   `PreferNoSchedule`. Its default weight is 1 in the `Additive` mode, as Balance and
//!   Steady; list `builtIn: TaintToleration` to weigh it otherwise.

use std::collections::HashSet;

use flotilla_plugin_host::ClusterInfo;
use jiff::Timestamp;

use crate::inventory::{Inventory, PlacementKey};

/// The highest score of a prioritizer.
pub(crate) const MAX_SCORE: i64 = 100;

/// `Balance` for each of `clusters`.
pub(crate) fn balance(inv: &Inventory, own: &HashSet<&str>, clusters: &[&ClusterInfo]) -> Vec<i64> {
    let max = inv.max_count_excluding(own) as f64;
    clusters
        .iter()
        .map(|c| {
            let count = inv.decision_count(&c.name).saturating_sub(usize::from(own.contains(c.name.as_str())));
            if count == 0 {
                MAX_SCORE
            } else {
                let usage = count as f64 / max;
                2 * ((MAX_SCORE as f64) * (0.5 - usage)) as i64
            }
        })
        .collect()
}

/// `Steady` for each of `clusters`.
pub(crate) fn steady(inv: &Inventory, key: &PlacementKey, clusters: &[&ClusterInfo]) -> Vec<i64> {
    clusters.iter().map(|c| if inv.is_decided(key, &c.name) { MAX_SCORE } else { 0 }).collect()
}

/// `ResourceAllocatable<resource>` (`cpu` or `memory`) for each of `clusters`.
pub(crate) fn resource_allocatable(resource: &str, clusters: &[&ClusterInfo]) -> Vec<i64> {
    // OCM reads a resource only when the cluster reports both allocatable and capacity.
    let alloc: Vec<Option<f64>> = clusters
        .iter()
        .map(|c| {
            let q = c.resources.get(resource)?;
            q.capacity_milli?;
            Some(q.allocatable_milli? as f64 / 1000.0)
        })
        .collect();
    let (min, max) =
        alloc.iter().flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    alloc
        .iter()
        .map(|a| match a {
            None => 0,
            Some(_) if max - min == 0.0 => MAX_SCORE,
            Some(v) => (((v - min) / (max - min) - 0.5) * 2.0 * 100.0) as i64,
        })
        .collect()
}

/// What `AddOn` found besides the scores.
#[derive(Debug, Default)]
pub(crate) struct AddOnOutcome {
    pub scores: Vec<i64>,
    /// `<cluster>/<resource>` of the expired AddOnPlacementScores.
    pub expired: Vec<String>,
    /// The earliest `validUntil` after `now`.
    pub next_expiry: Option<Timestamp>,
}

/// `AddOn/<resource>/<score>` for each of `clusters`.
pub(crate) fn addon(
    inv: &Inventory,
    resource: &str,
    score: &str,
    clusters: &[&ClusterInfo],
    now: Timestamp,
) -> AddOnOutcome {
    let mut out = AddOnOutcome { scores: Vec::with_capacity(clusters.len()), ..Default::default() };
    for c in clusters {
        let Some(s) = inv.addon_scores.get(&c.name).and_then(|m| m.get(resource)) else {
            out.scores.push(0);
            continue;
        };
        match s.valid_until {
            Some(until) if now > until => {
                out.expired.push(format!("{}/{resource}", c.name));
                out.scores.push(0);
                continue;
            }
            Some(until) => out.next_expiry = Some(out.next_expiry.map_or(until, |e| e.min(until))),
            None => {}
        }
        out.scores.push(s.score(score).unwrap_or(0));
    }
    out
}

/// `TaintToleration` from the number of untolerated PreferNoSelect taints of each cluster.
pub(crate) fn prefer_no_select(counts: &[usize]) -> Vec<i64> {
    let max = counts.iter().copied().max().unwrap_or(0) as i64;
    counts.iter().map(|&n| if n == 0 || max == 0 { 0 } else { -(MAX_SCORE * n as i64 / max) }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_plugin_host::Quantity;
    use serde_json::json;

    fn cluster(name: &str) -> ClusterInfo {
        ClusterInfo { name: name.into(), ..Default::default() }
    }

    #[test]
    fn balance_scores_as_ocm() {
        let mut inv = Inventory::new();
        // c1: 3 other placements, c2: 1, c3: none; this placement (p) holds c1.
        for (p, cs) in [("a", vec!["c1", "c2"]), ("b", vec!["c1"]), ("c", vec!["c1"]), ("p", vec!["c1"])] {
            inv.set_decisions("ns", p, cs.into_iter().map(String::from).collect());
        }
        let own: HashSet<&str> = HashSet::from(["c1"]);
        let (c1, c2, c3) = (cluster("c1"), cluster("c2"), cluster("c3"));
        // c1: usage 3/3 -> 2*trunc(100*-0.5) = -100; c2: 1/3 -> 2*trunc(16.67) = 32; c3: 100.
        assert_eq!(balance(&inv, &own, &[&c1, &c2, &c3]), [-100, 32, 100]);
    }

    #[test]
    fn steady_prefers_current_decisions() {
        let mut inv = Inventory::new();
        inv.set_decisions("ns", "p", vec!["c1".into()]);
        inv.set_decisions("ns", "q", vec!["c2".into()]);
        let (c1, c2) = (cluster("c1"), cluster("c2"));
        assert_eq!(steady(&inv, &PlacementKey::new("ns", "p"), &[&c1, &c2]), [100, 0]);
    }

    #[test]
    fn resource_allocatable_normalises_over_the_candidates() {
        let with = |name: &str, alloc: i64, cap: Option<i64>| {
            let mut c = cluster(name);
            c.resources.insert("cpu".into(), Quantity { capacity_milli: cap, allocatable_milli: Some(alloc) });
            c
        };
        let a = with("a", 2000, Some(8000));
        let b = with("b", 5000, Some(8000));
        let c = with("c", 8000, Some(8000));
        let no_capacity = with("d", 9000, None);
        let none = cluster("e");
        assert_eq!(resource_allocatable("cpu", &[&a, &b, &c, &no_capacity, &none]), [-100, 0, 100, 0, 0]);
        let x = with("x", 3333, Some(8000));
        // ((3.333-2)/(8-2) - 0.5) * 200 = -55.56 -> -55 (truncated).
        assert_eq!(resource_allocatable("cpu", &[&a, &x, &c]), [-100, -55, 100]);
        assert_eq!(resource_allocatable("cpu", &[&a]), [100]);
    }

    #[test]
    fn addon_scores_expire() {
        let mut inv = Inventory::new();
        let now: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap_or_else(|e| panic!("{e}"));
        inv.upsert_addon_score(&json!({"metadata": {"namespace": "c1", "name": "usage"},
            "status": {"scores": [{"name": "cpu", "value": 66}], "validUntil": "2025-01-01T01:00:00Z"}}));
        inv.upsert_addon_score(&json!({"metadata": {"namespace": "c2", "name": "usage"},
            "status": {"scores": [{"name": "cpu", "value": 90}], "validUntil": "2024-12-31T00:00:00Z"}}));
        inv.upsert_addon_score(&json!({"metadata": {"namespace": "c3", "name": "usage"},
            "status": {"scores": [{"name": "mem", "value": 90}]}}));
        let cs = [cluster("c1"), cluster("c2"), cluster("c3"), cluster("c4")];
        let refs: Vec<&ClusterInfo> = cs.iter().collect();
        let out = addon(&inv, "usage", "cpu", &refs, now);
        assert_eq!(out.scores, [66, 0, 0, 0]);
        assert_eq!(out.expired, ["c2/usage"]);
        assert_eq!(out.next_expiry, "2025-01-01T01:00:00Z".parse().ok());
    }

    #[test]
    fn prefer_no_select_penalises_in_proportion() {
        assert_eq!(prefer_no_select(&[0, 1, 2]), [0, -50, -100]);
        assert_eq!(prefer_no_select(&[0, 0]), [0, 0]);
    }
}
