//! `spreadPolicy.spreadConstraints`: OCM has the API and no scheduler for it. Flotilla gives
//! it Kubernetes' topology-spread meaning, applied while choosing the clusters:
//!
//! - A constraint's **domains** are the distinct values of its `topologyKey` (a label, or a
//!   claim with `topologyKeyType: Claim`) among the feasible clusters (those that passed every
//!   filter). A domain's **count** is how many clusters of it are selected so far; the
//!   **skew** of selecting cluster `c` in domain `d` is `count(d) + 1 − min(count)`, the min
//!   taken over all domains of the constraint (empty ones included).
//! - `DoNotSchedule`: a cluster is eligible only if it has the key and, for every such
//!   constraint, its skew is at most `maxSkew`. A cluster lacking the key is removed.
//! - `ScheduleAnyway`: a soft preference. A cluster's **penalty** is the sum over these
//!   constraints of `max(0, skew − maxSkew)` (0 for a cluster lacking the key).
//! - **Greedy choice**: the candidates are ranked by total score (desc) then name (asc), as
//!   without constraints. Each step picks, among the eligible candidates, the one with the
//!   lowest penalty, then the best rank; its domains' counts go up. Steps repeat until
//!   `numberOfClusters` are chosen (all feasible clusters when unset) or no candidate is
//!   eligible. Candidates with the same domain in every constraint are interchangeable for
//!   the constraints, so each step only compares the best-ranked remaining candidate of each
//!   such class: a step costs O(classes), not O(candidates).
//! - Consequences: with `DoNotSchedule`, fewer than `numberOfClusters` may be chosen even
//!   though more clusters are feasible (Kubernetes leaves such pods pending; here
//!   `PlacementSatisfied` is False, `NotAllDecisionsScheduled`); with only `ScheduleAnyway`
//!   constraints, as many clusters are chosen as without constraints, spread as evenly as the
//!   ranking allows; with no constraints the choice is exactly OCM's top-N.

use std::collections::HashMap;

use flotilla_plugin_host::ClusterInfo;

use crate::spec::{KeyType, SpreadConstraint};

/// Why a candidate was not chosen.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Skipped {
    /// It lacks the topology key of a `DoNotSchedule` constraint.
    MissingKey(String),
    /// Choosing it would have exceeded a `DoNotSchedule` constraint's `maxSkew`.
    Skew(String),
    /// Enough clusters were chosen before it.
    NotNeeded,
}

/// The outcome of choosing with constraints.
#[derive(Debug, Default)]
pub(crate) struct Choice {
    /// Indexes into the ranked candidates, in the order chosen.
    pub chosen: Vec<usize>,
    /// For every candidate not chosen (by index), why.
    pub skipped: Vec<(usize, Skipped)>,
    /// Choices that exceeded a `ScheduleAnyway` constraint's `maxSkew`.
    pub soft_violations: usize,
}

fn topology_value<'a>(c: &'a ClusterInfo, k: &SpreadConstraint) -> Option<&'a str> {
    match k.key_type {
        KeyType::Label => c.labels.get(&k.key),
        KeyType::Claim => c.claims.get(&k.key),
    }
    .map(String::as_str)
}

/// Chooses up to `want` of `ranked` (best first) under `constraints` (see the module doc).
pub(crate) fn choose(ranked: &[&ClusterInfo], constraints: &[SpreadConstraint], want: usize) -> Choice {
    let mut choice = Choice::default();
    // Domain ids per constraint, and each candidate's domain per constraint.
    let mut ids: Vec<HashMap<&str, usize>> = vec![HashMap::new(); constraints.len()];
    let mut domains_of: Vec<Vec<Option<usize>>> = Vec::with_capacity(ranked.len());
    for c in ranked {
        let mut ds = Vec::with_capacity(constraints.len());
        for (k, ids) in constraints.iter().zip(ids.iter_mut()) {
            ds.push(topology_value(c, k).map(|v| {
                let next = ids.len();
                *ids.entry(v).or_insert(next)
            }));
        }
        domains_of.push(ds);
    }
    let mut counts: Vec<Vec<usize>> = ids.iter().map(|m| vec![0; m.len()]).collect();
    // Classes of candidates with the same domains, each a queue in rank order.
    let mut class_of: HashMap<&[Option<usize>], usize> = HashMap::new();
    let mut classes: Vec<(Vec<Option<usize>>, Vec<usize>, usize)> = Vec::new();
    for (i, ds) in domains_of.iter().enumerate() {
        if let Some((k, _)) = constraints.iter().zip(ds).find(|(k, d)| k.hard && d.is_none()) {
            choice.skipped.push((i, Skipped::MissingKey(k.key.clone())));
            continue;
        }
        let class = *class_of.entry(ds.as_slice()).or_insert_with(|| {
            classes.push((ds.clone(), Vec::new(), 0));
            classes.len() - 1
        });
        classes[class].1.push(i);
    }
    let min_of = |counts: &Vec<usize>| counts.iter().copied().min().unwrap_or(0);
    while choice.chosen.len() < want {
        let mins: Vec<usize> = counts.iter().map(min_of).collect();
        let mut best: Option<(usize, usize, usize)> = None; // (penalty, rank, class)
        for (ci, (ds, queue, head)) in classes.iter().enumerate() {
            let Some(&rank) = queue.get(*head) else { continue };
            let mut penalty = 0;
            let mut eligible = true;
            for (k, (d, (counts, min))) in constraints.iter().zip(ds.iter().zip(counts.iter().zip(&mins))) {
                let Some(d) = d else { continue };
                let skew = counts[*d] + 1 - min;
                if skew > k.max_skew {
                    if k.hard {
                        eligible = false;
                        break;
                    }
                    penalty += skew - k.max_skew;
                }
            }
            if eligible && best.is_none_or(|(p, r, _)| (penalty, rank) < (p, r)) {
                best = Some((penalty, rank, ci));
            }
        }
        let Some((penalty, rank, ci)) = best else { break };
        if penalty > 0 {
            choice.soft_violations += 1;
        }
        choice.chosen.push(rank);
        let (ds, _, head) = &mut classes[ci];
        *head += 1;
        for (counts, d) in counts.iter_mut().zip(ds.iter()) {
            if let Some(d) = d {
                counts[*d] += 1;
            }
        }
    }
    // Whoever is left: blocked by a hard constraint if the choice stopped short.
    let short = choice.chosen.len() < want;
    let mut values: Vec<Vec<&str>> = ids.iter().map(|m| vec![""; m.len()]).collect();
    for (values, ids) in values.iter_mut().zip(&ids) {
        for (v, &id) in ids {
            values[id] = v;
        }
    }
    let mins: Vec<usize> = counts.iter().map(min_of).collect();
    for (ds, queue, head) in &classes {
        let why = if short {
            let blocking = constraints.iter().enumerate().find_map(|(k, c)| {
                let d = ds[k]?;
                (c.hard && counts[k][d] + 1 - mins[k] > c.max_skew).then(|| (c, values[k][d]))
            });
            match blocking {
                Some((c, value)) => {
                    Skipped::Skew(format!("{}={value} would exceed maxSkew {} (DoNotSchedule)", c.key, c.max_skew))
                }
                None => Skipped::NotNeeded,
            }
        } else {
            Skipped::NotNeeded
        };
        for &rank in &queue[*head..] {
            choice.skipped.push((rank, why.clone()));
        }
    }
    choice.skipped.sort_by_key(|(i, _)| *i);
    choice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, zone: Option<&str>) -> ClusterInfo {
        let mut c = ClusterInfo { name: name.into(), ..Default::default() };
        if let Some(z) = zone {
            c.labels.insert("zone".into(), z.into());
        }
        c
    }

    fn zone(max_skew: usize, hard: bool) -> SpreadConstraint {
        SpreadConstraint { key: "zone".into(), key_type: KeyType::Label, max_skew, hard }
    }

    fn names(ranked: &[&ClusterInfo], choice: &Choice) -> Vec<String> {
        choice.chosen.iter().map(|&i| ranked[i].name.clone()).collect()
    }

    #[test]
    fn skew_is_kept_within_max_skew() {
        // The top 4 by score are all in zone a; zone b and c have lower scores.
        let cs = [
            c("a1", Some("a")),
            c("a2", Some("a")),
            c("a3", Some("a")),
            c("a4", Some("a")),
            c("b1", Some("b")),
            c("b2", Some("b")),
            c("c1", Some("c")),
        ];
        let ranked: Vec<&ClusterInfo> = cs.iter().collect();
        let choice = choose(&ranked, &[zone(1, true)], 4);
        assert_eq!(names(&ranked, &choice), ["a1", "b1", "c1", "a2"]);
        let choice = choose(&ranked, &[zone(2, true)], 4);
        assert_eq!(names(&ranked, &choice), ["a1", "a2", "b1", "b2"]);
        // Without constraints: OCM's top-N.
        let choice = choose(&ranked, &[], 4);
        assert_eq!(names(&ranked, &choice), ["a1", "a2", "a3", "a4"]);
    }

    #[test]
    fn do_not_schedule_may_choose_fewer_and_drops_clusters_without_the_key() {
        let cs = [c("a1", Some("a")), c("a2", Some("a")), c("a3", Some("a")), c("b1", Some("b")), c("x", None)];
        let ranked: Vec<&ClusterInfo> = cs.iter().collect();
        let choice = choose(&ranked, &[zone(1, true)], 5);
        assert_eq!(names(&ranked, &choice), ["a1", "b1", "a2"]);
        assert_eq!(choice.skipped[0], (2, Skipped::Skew("zone=a would exceed maxSkew 1 (DoNotSchedule)".into())));
        assert_eq!(choice.skipped[1], (4, Skipped::MissingKey("zone".into())));
    }

    #[test]
    fn schedule_anyway_prefers_spreading_but_fills_up() {
        let cs = [c("a1", Some("a")), c("a2", Some("a")), c("a3", Some("a")), c("b1", Some("b")), c("x", None)];
        let ranked: Vec<&ClusterInfo> = cs.iter().collect();
        let choice = choose(&ranked, &[zone(1, false)], 5);
        // a1, b1 (spread), a2 (skew 1 ok), then x (no key: no penalty) before a3 (skew 2).
        assert_eq!(names(&ranked, &choice), ["a1", "b1", "a2", "x", "a3"]);
        assert_eq!(choice.soft_violations, 1);
    }

    #[test]
    fn two_constraints_together() {
        let mut cs = Vec::new();
        for (n, zone, region) in
            [("1", "a", "r1"), ("2", "a", "r1"), ("3", "b", "r1"), ("4", "c", "r2"), ("5", "c", "r2")]
        {
            let mut x = c(n, Some(zone));
            x.claims.insert("region".into(), region.into());
            cs.push(x);
        }
        let ranked: Vec<&ClusterInfo> = cs.iter().collect();
        let region = SpreadConstraint { key: "region".into(), key_type: KeyType::Claim, max_skew: 1, hard: true };
        let choice = choose(&ranked, &[zone(1, true), region], 4);
        assert_eq!(names(&ranked, &choice), ["1", "4", "3", "5"]);
    }
}
