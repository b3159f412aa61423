//! OCM's placement semantics, edge cases included.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::{
    REASON_ALL_SCHEDULED, REASON_ALL_SETS_EMPTY, REASON_MISCONFIGURED, REASON_NO_BINDINGS, REASON_NO_CLUSTER_MATCHED,
    REASON_NO_INTERSECTION, REASON_NOT_ALL_SCHEDULED, REASON_SUCCEED_CONFIGURED,
};

fn envs() -> Vec<Value> {
    vec![
        mc("c1", json!({"env": "prod", "region": "eu"}), &[("platform", "AWS")]),
        mc("c2", json!({"env": "prod", "region": "us"}), &[("platform", "GCP")]),
        mc("c3", json!({"env": "dev", "region": "eu"}), &[("platform", "AWS")]),
        mc("c4", json!({"env": "dev", "region": "us"}), &[]),
    ]
}

fn eliminated(s: &Schedule, cluster: &str) -> (String, String) {
    super::eliminated(s, cluster)
}

#[test]
fn no_bindings_selects_nothing() {
    let mut inv = inventory(&envs());
    inv.remove_binding(NS, "global");
    let s = run(&inv, json!({}));
    assert_eq!(s.satisfied.reason, REASON_NO_BINDINGS);
    assert_eq!(s.satisfied.status, "False");
    assert_eq!(s.satisfied.message, "No valid ManagedClusterSetBindings found in placement namespace");
    assert_eq!(s.misconfigured.reason, REASON_SUCCEED_CONFIGURED);
    assert_eq!(s.groups.len(), 1, "one empty group, for one empty PlacementDecision");
    assert!(s.groups[0].decisions.is_empty());
    assert_eq!(s.number_of_selected_clusters, 0);
    // A binding whose set does not exist is no binding.
    inv.upsert_binding(&json!({"metadata": {"namespace": NS, "name": "ghost"}}));
    assert_eq!(run(&inv, json!({})).satisfied.reason, REASON_NO_BINDINGS);
}

#[test]
fn cluster_sets_intersect_the_bindings() {
    let mut inv = inventory(&envs());
    inv.upsert_cluster_set(&json!({"metadata": {"name": "prod"}, "spec": {"clusterSelector": {
        "selectorType": "LabelSelector", "labelSelector": {"matchLabels": {"env": "prod"}}}}}));
    // Not bound yet: no intersection.
    let s = run(&inv, json!({"clusterSets": ["prod", "other"]}));
    assert_eq!(s.satisfied.reason, REASON_NO_INTERSECTION);
    assert_eq!(s.satisfied.message, "None of ManagedClusterSets [prod,other] is bound to placement namespace");
    inv.upsert_binding(&json!({"metadata": {"namespace": NS, "name": "prod"}}));
    let s = run(&inv, json!({"clusterSets": ["prod"]}));
    assert_eq!(selected(&s), ["c1", "c2"]);
    assert_eq!(s.satisfied.reason, REASON_ALL_SCHEDULED);
    assert_eq!(s.satisfied.status, "True");
    // Empty clusterSets: every bound set (global and prod).
    assert_eq!(selected(&run(&inv, json!({}))), ["c1", "c2", "c3", "c4"]);
}

#[test]
fn empty_sets_and_terminating_clusters() {
    let mut inv = inventory(&[]);
    let s = run(&inv, json!({}));
    assert_eq!(s.satisfied.reason, REASON_ALL_SETS_EMPTY);
    assert_eq!(s.satisfied.message, "All ManagedClusterSets [global] have no member ManagedCluster");
    let mut dying = mc("c1", json!({}), &[]);
    dying["metadata"]["deletionTimestamp"] = json!("2025-06-01T00:00:00Z");
    inv.upsert_cluster(&dying);
    assert_eq!(run(&inv, json!({})).satisfied.reason, REASON_ALL_SETS_EMPTY, "terminating clusters are never selected");
    inv.upsert_cluster(&mc("c2", json!({}), &[]));
    let s = run(&inv, json!({}));
    assert_eq!(selected(&s), ["c2"]);
    assert_eq!(s.explanation["clusterSets"]["terminating"], json!(["c1"]));
}

#[test]
fn predicates_are_ored_and_their_parts_anded() {
    let inv = inventory(&envs());
    let spec = json!({"predicates": [
        {"requiredClusterSelector": {
            "labelSelector": {"matchLabels": {"env": "prod"}},
            "claimSelector": {"matchExpressions": [{"key": "platform", "operator": "In", "values": ["AWS"]}]}}},
        {"requiredClusterSelector": {
            "labelSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]},
            "celSelector": {"celExpressions": ["managedCluster.metadata.labels[\"region\"] == \"us\""]}}}
    ]});
    let s = run(&inv, spec);
    assert_eq!(selected(&s), ["c1", "c4"]);
    let (stage, reason) = eliminated(&s, "c2");
    assert_eq!(stage, "Predicate");
    assert!(reason.contains("predicates[0]: claimSelector platform in (AWS) does not match"), "{reason}");
    assert!(reason.contains("predicates[1]: labelSelector env in (dev) does not match"), "{reason}");
    let (_, reason) = eliminated(&s, "c3");
    assert!(reason.contains("predicates[1]: celExpressions[0]"), "{reason}");
    assert_eq!(s.explanation["filteredPipelineResults"][0]["filteredClusters"], json!(["c1", "c4"]));
}

#[test]
fn nothing_matching_and_fewer_than_wanted() {
    let inv = inventory(&envs());
    let s = run(
        &inv,
        json!({"predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"env": "qa"}}}}]}),
    );
    assert_eq!(s.satisfied.reason, REASON_NO_CLUSTER_MATCHED);
    assert_eq!(s.satisfied.message, "No ManagedCluster matches any of the cluster predicate");
    let s = run(
        &inv,
        json!({"numberOfClusters": 4,
        "predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"env": "prod"}}}}]}),
    );
    assert_eq!(selected(&s), ["c1", "c2"], "all of the fewer matches are selected");
    assert_eq!(s.satisfied.reason, REASON_NOT_ALL_SCHEDULED);
    assert_eq!(s.satisfied.message, "2 cluster decisions unscheduled");
    assert_eq!(run(&inv, json!({"numberOfClusters": 0})).satisfied.reason, REASON_NO_CLUSTER_MATCHED);
}

#[test]
fn ties_are_broken_by_name() {
    let inv = inventory(&[
        mc("zeta", json!({}), &[]),
        mc("alpha", json!({}), &[]),
        mc("mid", json!({}), &[]),
        mc("beta", json!({}), &[]),
    ]);
    let s = run(&inv, json!({"numberOfClusters": 2}));
    assert_eq!(selected(&s), ["alpha", "beta"]);
    assert_eq!(s.explanation["notSelected"], json!({"mid": "not among the top 2", "zeta": "not among the top 2"}));
}

#[test]
fn cel_compile_errors_misconfigure_select_nothing_new_and_keep_previous_decisions() {
    let inv = inventory(&envs());
    let spec = json!({"predicates": [{"requiredClusterSelector": {"celSelector": {"celExpressions": ["managedCluster.metadata.labels["]}}}]});
    let s = run(&inv, spec.clone());
    assert_eq!(s.misconfigured.status, "True");
    assert_eq!(s.misconfigured.reason, REASON_MISCONFIGURED);
    assert!(s.misconfigured.message.starts_with("Predicate:compilation failed: "), "{}", s.misconfigured.message);
    assert!(selected(&s).is_empty());
    assert_eq!(s.satisfied.reason, REASON_NO_CLUSTER_MATCHED);
    // As OCM's filters, which return early without clusters: no candidates, no check.
    let empty = inventory(&[]);
    assert_eq!(run(&empty, spec.clone()).misconfigured.status, "False");

    // A placement that had decisions keeps them while it is misconfigured: an edit with a
    // typo must not take workloads off the clusters it chose before.
    let mut inv = inventory(&envs());
    inv.set_decisions(NS, "p", vec!["c2".into(), "c3".into()]);
    let s = run(&inv, spec);
    assert_eq!(s.misconfigured.status, "True");
    assert!(s.kept_previous);
    assert_eq!(selected(&s), ["c2", "c3"]);
}

#[test]
fn cel_reads_addon_scores() {
    let mut inv = inventory(&envs());
    for (c, v) in [("c1", 80), ("c2", 20)] {
        inv.upsert_addon_score(&json!({"metadata": {"namespace": c, "name": "usage"},
            "status": {"scores": [{"name": "cpuAvailable", "value": v}]}}));
    }
    let s = run(
        &inv,
        json!({"predicates": [{"requiredClusterSelector": {"celSelector": {"celExpressions": [
        "managedCluster.scores(\"usage\").filter(s, s.name == \"cpuAvailable\").all(s, s.value > 50)"]}}}]}),
    );
    assert_eq!(selected(&s), ["c1"]);
    let (_, reason) = eliminated(&s, "c3");
    assert!(reason.contains("not found"), "{reason}");
}

#[test]
fn prioritizer_misconfiguration_is_reported_even_without_bindings() {
    let mut inv = inventory(&envs());
    inv.remove_binding(NS, "global");
    let s = run(&inv, json!({"prioritizerPolicy": {"configurations": [{"scoreCoordinate": {"builtIn": "Nope"}}]}}));
    assert_eq!(s.misconfigured.message, ":incorrect builtin prioritizer: Nope");
    assert_eq!(s.satisfied.reason, REASON_NO_BINDINGS);
    let s = run(&inventory(&envs()), json!({"tolerations": [{"operator": "Equal", "value": "x"}]}));
    assert_eq!(s.misconfigured.message, "TaintToleration:If the key is empty, operator must be Exists.");
}

fn tainted(name: &str, taints: Value) -> Value {
    let mut c = mc(name, json!({}), &[]);
    c["spec"]["taints"] = taints;
    c
}

#[test]
fn taints_and_tolerations() {
    let inv = inventory(&[
        tainted("gpu", json!([{"key": "gpu", "value": "true", "effect": "NoSelect"}])),
        tainted(
            "down",
            json!([{"key": "cluster.open-cluster-management.io/unreachable", "effect": "NoSelect",
                                 "timeAdded": "2025-06-01T11:59:00Z"}]),
        ),
        mc("plain", json!({}), &[]),
    ]);
    let s = run(&inv, json!({}));
    assert_eq!(selected(&s), ["plain"]);
    assert_eq!(eliminated(&s, "gpu"), ("TaintToleration".into(), "taint gpu=true:NoSelect is not tolerated".into()));
    let s = run(&inv, json!({"tolerations": [{"key": "gpu", "operator": "Equal", "value": "true"}]}));
    assert_eq!(selected(&s), ["gpu", "plain"]);
    assert_eq!(s.requeue_after, None);
    // Tolerating unreachable for 5 minutes from timeAdded (11:59): 4 minutes left.
    let s = run(
        &inv,
        json!({"tolerations": [{"key": "cluster.open-cluster-management.io/unreachable",
        "operator": "Exists", "tolerationSeconds": 300}]}),
    );
    assert_eq!(selected(&s), ["down", "plain"]);
    assert_eq!(s.requeue_after, Some(Duration::from_secs(240)));
    // Once expired, the cluster goes.
    let later: jiff::Timestamp = "2025-06-01T12:04:00Z".parse().expect("ts");
    let p = placement(json!({"tolerations": [{"key": "cluster.open-cluster-management.io/unreachable",
        "operator": "Exists", "tolerationSeconds": 300}]}));
    assert_eq!(selected(&crate::schedule(&inv, &p, resolver(), later)), ["plain"]);
}

#[test]
fn no_select_if_new_keeps_current_decisions() {
    let mut inv = inventory(&[
        tainted("old", json!([{"key": "maintenance", "effect": "NoSelectIfNew"}])),
        tainted("new", json!([{"key": "maintenance", "effect": "NoSelectIfNew"}])),
    ]);
    inv.set_decisions(NS, "p", vec!["old".into()]);
    assert_eq!(selected(&run(&inv, json!({}))), ["old"]);
}

#[test]
fn prefer_no_select_lowers_the_score() {
    let inv = inventory(&[tainted("a", json!([{"key": "spot", "effect": "PreferNoSelect"}])), mc("b", json!({}), &[])]);
    // By name alone "a" would win; its untolerated PreferNoSelect taint costs it 100.
    let s = run(&inv, json!({"numberOfClusters": 1}));
    assert_eq!(selected(&s), ["b"]);
    let tt = s.explanation["prioritizeResults"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "TaintToleration"))
        .cloned();
    assert_eq!(tt.map(|p| p["scores"].clone()), Some(json!({"a": -100, "b": 0})));
    // Tolerated: no penalty; and OCM's behaviour with Exact mode (TaintToleration not listed).
    let s = run(&inv, json!({"numberOfClusters": 1, "tolerations": [{"key": "spot", "operator": "Exists"}]}));
    assert_eq!(selected(&s), ["a"]);
    let s = run(&inv, json!({"numberOfClusters": 1, "prioritizerPolicy": {"mode": "Exact"}}));
    assert_eq!(selected(&s), ["a"]);
}

#[test]
fn steady_keeps_decisions_and_balance_spreads_placements() {
    let mut inv = inventory(&[mc("a", json!({}), &[]), mc("b", json!({}), &[]), mc("c", json!({}), &[])]);
    inv.set_decisions(NS, "p", vec!["c".into()]);
    // Steady: c has 100 + Balance 100; a and b have Balance 100 only.
    let s = run(&inv, json!({"numberOfClusters": 1}));
    assert_eq!(selected(&s), ["c"]);
    assert_eq!(s.groups[0].decisions[0].score, 200, "Balance 100 + Steady 100 + TaintToleration 0");
    // Two other placements on a, one on b: Balance prefers c, then b.
    let mut inv = inventory(&[mc("a", json!({}), &[]), mc("b", json!({}), &[]), mc("c", json!({}), &[])]);
    inv.set_decisions("other", "x", vec!["a".into(), "b".into()]);
    inv.set_decisions("other", "y", vec!["a".into()]);
    let s = run(&inv, json!({"numberOfClusters": 2}));
    assert_eq!(selected(&s), ["b", "c"]);
    assert_eq!(s.explanation["aggregatedScores"], json!({"a": -100, "b": 0, "c": 100}));
}

fn sized(name: &str, cpu: &str, memory: &str) -> Value {
    let mut c = mc(name, json!({}), &[]);
    c["status"]["allocatable"] = json!({"cpu": cpu, "memory": memory});
    c["status"]["capacity"] = json!({"cpu": "64", "memory": "256Gi"});
    c
}

#[test]
fn exact_mode_with_resources_and_addon_scores() {
    let mut inv = inventory(&[sized("small", "4", "200Gi"), sized("big", "32", "16Gi"), sized("mid", "16", "64Gi")]);
    let cpu = json!({"numberOfClusters": 1, "prioritizerPolicy": {"mode": "Exact", "configurations": [
        {"scoreCoordinate": {"builtIn": "ResourceAllocatableCPU"}, "weight": 2}]}});
    let s = run(&inv, cpu);
    assert_eq!(selected(&s), ["big"]);
    assert_eq!(s.explanation["aggregatedScores"], json!({"big": 200, "mid": -28, "small": -200}));
    let mem = json!({"numberOfClusters": 1, "prioritizerPolicy": {"mode": "Exact", "configurations": [
        {"scoreCoordinate": {"builtIn": "ResourceAllocatableMemory"}}]}});
    assert_eq!(selected(&run(&inv, mem)), ["small"]);
    // AddOn: mid's score is valid for an hour, big's has expired.
    inv.upsert_addon_score(&json!({"metadata": {"namespace": "mid", "name": "gpu"},
        "status": {"scores": [{"name": "free", "value": 90}], "validUntil": "2025-06-01T13:00:00Z"}}));
    inv.upsert_addon_score(&json!({"metadata": {"namespace": "big", "name": "gpu"},
        "status": {"scores": [{"name": "free", "value": 100}], "validUntil": "2025-06-01T11:00:00Z"}}));
    let addon = json!({"numberOfClusters": 1, "prioritizerPolicy": {"mode": "Exact", "configurations": [
        {"scoreCoordinate": {"type": "AddOn", "addOn": {"resourceName": "gpu", "scoreName": "free"}}, "weight": 3}]}});
    let s = run(&inv, addon);
    assert_eq!(selected(&s), ["mid"]);
    assert_eq!(s.requeue_after, Some(Duration::from_secs(3600)));
    assert_eq!(s.warnings, ["AddOnPlacementScores big/gpu expired"]);
}

#[test]
fn decision_groups_with_percentages_and_many_clusters() {
    let clusters: Vec<Value> = (0..250)
        .map(|i| mc(&format!("c{i:03}"), json!({"canary": if i < 10 { "true" } else { "false" }}), &[]))
        .collect();
    let inv = inventory(&clusters);
    let s = run(
        &inv,
        json!({"decisionStrategy": {"groupStrategy": {
            "clustersPerDecisionGroup": "25%",
            "decisionGroups": [{"groupName": "canary", "groupClusterSelector": {"labelSelector": {"matchLabels": {"canary": "true"}}}}]
        }}}),
    );
    assert_eq!(s.number_of_selected_clusters, 250);
    let shape: Vec<(usize, &str, usize)> =
        s.groups.iter().map(|g| (g.index, g.name.as_str(), g.decisions.len())).collect();
    // 25% of 250 = 62.5 -> 63 per group: canary (10), then 240 others in 63+63+63+51.
    assert_eq!(shape, [(0, "canary", 10), (1, "", 63), (2, "", 63), (3, "", 63), (4, "", 51)]);
    assert_eq!(s.groups[1].decisions[0].cluster_name, "c010", "each group in name order");
    // Without a strategy: one group of all 250 (the controller pages it 100 per object).
    let s = run(&inv, json!({}));
    assert_eq!(s.groups.len(), 1);
    assert_eq!(s.groups[0].decisions.len(), 250);
}

#[test]
fn spread_with_skew() {
    let mut clusters = Vec::new();
    for (name, zone) in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c")] {
        clusters.push(mc(name, json!({"zone": zone}), &[]));
    }
    clusters.push(mc("nozone", json!({}), &[]));
    let inv = inventory(&clusters);
    let s = run(
        &inv,
        json!({"numberOfClusters": 5, "spreadPolicy": {"spreadConstraints": [
        {"topologyKey": "zone", "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]}}),
    );
    // a1, b1, c1, a2; then a3 would make a=3 against b=c=1.
    assert_eq!(selected(&s), ["a1", "a2", "b1", "c1"]);
    assert_eq!(s.satisfied.reason, REASON_NOT_ALL_SCHEDULED);
    assert_eq!(eliminated(&s, "nozone").0, "SpreadConstraints");
    assert!(eliminated(&s, "a3").1.contains("zone=a would exceed maxSkew 1"), "{:?}", eliminated(&s, "a3"));
    // ScheduleAnyway fills up, spreading first.
    let s = run(
        &inv,
        json!({"numberOfClusters": 5, "spreadPolicy": {"spreadConstraints": [
        {"topologyKey": "zone", "maxSkew": 1}]}}),
    );
    assert_eq!(s.number_of_selected_clusters, 5);
    assert_eq!(s.satisfied.reason, REASON_ALL_SCHEDULED);
    assert_eq!(s.explanation["selected"], json!(["a1", "b1", "c1", "a2", "nozone"]));
}

#[test]
fn changes_report_the_placements_they_affect() {
    let mut inv = inventory(&envs());
    let p = placement(json!({}));
    let a = inv.upsert_cluster(&mc("c1", json!({"env": "qa"}), &[]));
    assert!(a.affects(&p));
    let a = inv.upsert_cluster_set(&json!({"metadata": {"name": "unbound"}}));
    assert!(!a.affects(&p), "nobody binds the set");
    let a = inv.upsert_addon_score(&json!({"metadata": {"namespace": "c1", "name": "s"}, "status": {}}));
    assert!(a.affects(&p));
    assert!(inv.upsert_addon_score(&json!({"metadata": {"namespace": "c1", "name": "s"}, "status": {}})).is_empty());
}

#[test]
fn a_cluster_change_affects_only_placements_whose_selectors_reach_it() {
    let mut inv = inventory(&envs());
    let prod = placement(
        json!({"predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"env": "prod"}}}}]}),
    );
    let mut gpu = placement(json!({"predicates": [
        {"requiredClusterSelector": {"claimSelector": {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}}}]}));
    gpu["metadata"]["name"] = json!("gpu");
    let either = placement(json!({"predicates": [
        {"requiredClusterSelector": {"labelSelector": {"matchLabels": {"env": "dev"}}}},
        {"requiredClusterSelector": {"labelSelector": {"matchLabels": {"env": "qa"}}}}]}));
    let everything = placement(json!({}));
    let cel_only =
        placement(json!({"predicates": [{"requiredClusterSelector": {"celSelector": {"celExpressions": ["false"]}}}]}));

    // A new qa cluster: the qa predicate, and placements without label or claim selectors.
    let a = inv.upsert_cluster(&mc("n1", json!({"env": "qa"}), &[]));
    assert!(!a.affects(&prod) && !a.affects(&gpu));
    assert!(a.affects(&either) && a.affects(&everything) && a.affects(&cel_only));
    // qa -> prod: the placements that could select it before, and those that can now.
    let mut moved = mc("n1", json!({"env": "prod"}), &[]);
    moved["metadata"]["resourceVersion"] = json!("2");
    let a = inv.upsert_cluster(&moved);
    assert!(a.affects(&prod) && a.affects(&either) && !a.affects(&gpu));
    // Only its taints change: those that can select it as it is.
    let mut tainted = moved.clone();
    tainted["metadata"]["resourceVersion"] = json!("3");
    tainted["spec"]["taints"] = json!([{"key": "k", "effect": "NoSelect"}]);
    let a = inv.upsert_cluster(&tainted);
    assert!(a.affects(&prod) && !a.affects(&either) && !a.affects(&gpu));
    // A placement that holds the cluster is affected whatever its selectors say now.
    inv.set_decisions(NS, "gpu", vec!["n1".to_string()]);
    let a = inv.remove_cluster("n1");
    assert!(a.affects(&gpu), "it held the cluster");
    assert!(!a.affects(&either));
    // Changes that are not a cluster's are not narrowed, and neither is a merge with one.
    let mut a = inv.upsert_cluster(&mc("n2", json!({"env": "qa"}), &[]));
    assert!(!a.affects(&prod));
    a.merge(inv.remove_binding(NS, "global"));
    assert!(a.affects(&prod));
}

#[test]
fn the_disable_annotation_is_recognised() {
    let mut p = placement(json!({}));
    assert!(!crate::scheduling_disabled(&p));
    p["metadata"]["annotations"] =
        json!({"cluster.open-cluster-management.io/experimental-scheduling-disable": "true"});
    assert!(crate::scheduling_disabled(&p));
}

#[test]
fn the_explanation_is_optional() {
    let inv = inventory(&envs());
    let spec = json!({"numberOfClusters": 2, "predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"region": "eu"}}}}]});
    let full = run(&inv, spec.clone());
    let bare =
        crate::schedule_with(&inv, &placement(spec), resolver(), now(), crate::ScheduleOptions { explain: false });
    assert_eq!(bare.explanation, Value::Null);
    assert_eq!(bare.groups, full.groups);
    assert_eq!(bare.satisfied, full.satisfied);
    assert_eq!(full.explanation["selected"], json!(["c1", "c3"]));
    let out = json!({"stage": "Predicate", "reason": "predicates[0]: labelSelector region=eu does not match"});
    assert_eq!(full.explanation["eliminated"], json!({"c2": out, "c4": out}));
}

#[test]
fn every_cluster_is_accounted_for_in_the_explanation() {
    let mut clusters = envs();
    let mut dying = mc("c5", json!({"env": "prod"}), &[]);
    dying["metadata"]["deletionTimestamp"] = json!("2025-06-01T00:00:00Z");
    clusters.push(dying);
    clusters.push(tainted("c6", json!([{"key": "k", "effect": "NoSelect"}])));
    let mut inv = inventory(&clusters);
    inv.upsert_cluster_set(&json!({"metadata": {"name": "prod"}, "spec": {"clusterSelector": {
        "selectorType": "LabelSelector", "labelSelector": {"matchLabels": {"env": "prod"}}}}}));
    inv.upsert_binding(&json!({"metadata": {"namespace": NS, "name": "prod"}}));
    let s = run(
        &inv,
        json!({"clusterSets": ["prod", "global"], "numberOfClusters": 1,
        "predicates": [{"requiredClusterSelector": {"labelSelector": {"matchExpressions": [{"key": "env", "operator": "Exists"}]}}}]}),
    );
    let e = &s.explanation;
    let mut seen: Vec<String> =
        e["selected"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
    for key in ["eliminated", "notSelected"] {
        seen.extend(e[key].as_object().into_iter().flatten().map(|(c, _)| c.clone()));
    }
    seen.sort();
    assert_eq!(seen, ["c1", "c2", "c3", "c4", "c5", "c6"]);
    assert_eq!(eliminated(&s, "c5"), ("ClusterSets".into(), "terminating (deletionTimestamp is set)".into()));
    assert_eq!(eliminated(&s, "c6").0, "Predicate");
    // Only the prod set: the others are outside it.
    let s = run(&inv, json!({"clusterSets": ["prod"]}));
    assert_eq!(eliminated(&s, "c3"), ("ClusterSets".into(), "not in the eligible cluster sets [prod]".into()));
}
