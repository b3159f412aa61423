//! Wasm filters and scorers from Placements: results, explanations, misconfiguration and
//! failure policies (timeouts and traps under Fail and Ignore).

use serde_json::{Value, json};

use super::*;
use crate::{REASON_ALL_SCHEDULED, REASON_MISCONFIGURED, REASON_NO_CLUSTER_MATCHED, REASON_PLUGIN_FAILED};

fn fleet() -> Vec<Value> {
    let mut out = Vec::new();
    for (name, region, cpu) in [("eu1", "eu", "8"), ("eu2", "eu", "32"), ("us1", "us", "16"), ("ap1", "ap", "64")] {
        let mut c = mc(name, json!({"region": region}), &[("platform", "AWS")]);
        c["status"]["allocatable"] = json!({"cpu": cpu, "memory": "64Gi"});
        c["status"]["capacity"] = json!({"cpu": cpu, "memory": "64Gi"});
        out.push(c);
    }
    out
}

fn filter(name: &str, config: Value, extra: Value) -> Value {
    let mut plugin = json!({"name": name, "configuration": config});
    if let (Some(p), Some(e)) = (plugin.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({"requiredClusterSelector": {"plugin": plugin}})
}

fn region_in(regions: &[&str]) -> Value {
    json!({"labels": [{"key": "region", "operator": "In", "values": regions}]})
}

#[test]
fn a_wasm_filter_is_anded_into_its_predicate_and_ored_with_others() {
    let inv = inventory(&fleet());
    let mut p0 = filter("label-filter", region_in(&["eu", "us"]), json!({}));
    p0["requiredClusterSelector"]["labelSelector"] =
        json!({"matchExpressions": [{"key": "region", "operator": "NotIn", "values": ["us"]}]});
    let p1 = json!({"requiredClusterSelector": {"labelSelector": {"matchLabels": {"region": "ap"}}}});
    let s = run(&inv, json!({"predicates": [p0, p1]}));
    assert_eq!(selected(&s), ["ap1", "eu1", "eu2"]);
    let reason = eliminated(&s, "us1").1;
    assert!(reason.contains("predicates[0]: labelSelector"), "{reason}");
    // The plugin's own reason, when the native part passes and the plugin removes it.
    let s = run(&inv, json!({"predicates": [filter("label-filter", region_in(&["eu"]), json!({}))]}));
    assert_eq!(selected(&s), ["eu1", "eu2"]);
    let reason = eliminated(&s, "us1").1;
    assert_eq!(reason, "predicates[0]: plugin label-filter: label region not in [eu]");
}

#[test]
fn a_wasm_scorer_is_weighted_with_the_built_ins() {
    let inv = inventory(&fleet());
    let spec = json!({"numberOfClusters": 2, "prioritizerPolicy": {"mode": "Exact", "configurations": [
        {"scoreCoordinate": {"type": "Plugin", "plugin": {"name": "capacity-scorer",
            "configuration": {"resources": [{"name": "cpu"}]}}}, "weight": 2}]}});
    let s = run(&inv, spec);
    assert_eq!(selected(&s), ["ap1", "eu2"]);
    let scores = &s.explanation["prioritizeResults"][0];
    assert_eq!(scores["name"], "Plugin/capacity-scorer");
    assert_eq!(scores["weight"], 2);
    // cpu 8..64: ap1 100, eu2 (32-8)/56 -> -14, us1 -71, eu1 -100 (rounded by the plugin).
    assert_eq!(scores["scores"], json!({"ap1": 100, "eu1": -100, "eu2": -14, "us1": -71}));
    assert_eq!(s.explanation["aggregatedScores"]["ap1"], 200);
}

#[test]
fn a_refused_configuration_misconfigures_with_the_plugins_message() {
    let inv = inventory(&fleet());
    let bad = json!({"labels": [{"key": "region", "operator": "In"}]});
    let s = run(&inv, json!({"predicates": [filter("label-filter", bad, json!({}))]}));
    assert_eq!(s.misconfigured.status, "True");
    assert_eq!(s.misconfigured.reason, REASON_MISCONFIGURED);
    assert_eq!(s.misconfigured.message, "label-filter:requirement on region: operator In and NotIn need values");
    assert!(selected(&s).is_empty());
    assert_eq!(s.satisfied.reason, REASON_NO_CLUSTER_MATCHED);
    // A scorer named as a filter is misconfigured too.
    let s = run(&inv, json!({"predicates": [filter("capacity-scorer", json!({}), json!({}))]}));
    assert_eq!(
        s.misconfigured.message,
        "capacity-scorer:plugin capacity-scorer implements placement-scorer, not placement-filter"
    );
}

#[test]
fn a_timeout_under_fail_keeps_the_previous_decisions() {
    let mut inv = inventory(&fleet());
    inv.set_decisions(NS, "p", vec!["us1".into(), "eu1".into()]);
    let s = run(&inv, json!({"predicates": [filter("endless-loop", json!({}), json!({}))]}));
    assert!(s.kept_previous);
    assert_eq!(selected(&s), ["eu1", "us1"]);
    assert_eq!(s.satisfied.status, "False");
    assert_eq!(s.satisfied.reason, REASON_PLUGIN_FAILED);
    assert!(
        s.satisfied.message.contains("endless-loop") && s.satisfied.message.contains("deadline"),
        "{}",
        s.satisfied.message
    );
    assert_eq!(s.misconfigured.status, "False");
    // A trap, likewise.
    let s = run(&inv, json!({"predicates": [filter("trap", json!({}), json!({}))]}));
    assert!(s.kept_previous);
    assert!(s.satisfied.message.contains("trapped"), "{}", s.satisfied.message);
}

#[test]
fn a_timeout_under_ignore_keeps_every_cluster_and_says_so() {
    let inv = inventory(&fleet());
    // The WasmPlugin's default policy is Ignore here.
    let s = run(&inv, json!({"predicates": [filter("endless-loop-ignore", json!({}), json!({}))]}));
    assert!(!s.kept_previous);
    assert_eq!(selected(&s), ["ap1", "eu1", "eu2", "us1"]);
    assert_eq!(s.satisfied.reason, REASON_ALL_SCHEDULED);
    assert!(s.satisfied.message.contains("ignored: failurePolicy Ignore"), "{}", s.satisfied.message);
    assert_eq!(s.warnings.len(), 1);
    // The reference's policy overrides the WasmPlugin's: Ignore on a Fail plugin.
    let s = run(&inv, json!({"predicates": [filter("trap", json!({}), json!({"failurePolicy": "Ignore"}))]}));
    assert_eq!(selected(&s), ["ap1", "eu1", "eu2", "us1"]);
}

#[test]
fn a_missing_plugin_follows_the_failure_policy() {
    let mut inv = inventory(&fleet());
    inv.set_decisions(NS, "p", vec!["eu1".into()]);
    let scorer = |policy: &str| {
        json!({"prioritizerPolicy": {"configurations": [{"scoreCoordinate": {"type": "Plugin",
            "plugin": {"name": "nowhere", "failurePolicy": policy}}}]}})
    };
    let s = run(&inv, scorer("Fail"));
    assert!(s.kept_previous);
    assert_eq!(selected(&s), ["eu1"]);
    assert!(s.satisfied.message.contains("WasmPlugin nowhere not found"), "{}", s.satisfied.message);
    let s = run(&inv, scorer("Ignore"));
    assert!(!s.kept_previous);
    assert_eq!(selected(&s).len(), 4);
}

#[test]
fn configurations_are_validated_once() {
    let inv = inventory(&fleet());
    let spec = json!({"predicates": [filter("cache-probe", region_in(&["eu"]), json!({}))]});
    let before = inv.prepared_configurations();
    for _ in 0..3 {
        assert_eq!(selected(&run(&inv, spec.clone())), ["eu1", "eu2"]);
    }
    assert_eq!(inv.prepared_configurations(), before + 1);
    let plugin = resolver().resolve("cache-probe").expect("cache-probe");
    // describe at load, one validate-config, three filters.
    assert_eq!(plugin.plugin.metrics().calls, 5);
    inv.forget_plugin(&plugin.plugin.info().digest);
    assert_eq!(inv.prepared_configurations(), before);
}
