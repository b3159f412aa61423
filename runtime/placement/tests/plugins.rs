//! Placements with Wasm filters and scorers against a real hub: the plugins are pushed as
//! `flotilla plugin push` does (blob upload, then the WasmPlugin), a predicate names a filter
//! and the prioritizer policy a scorer, and the decisions are what the plugins say. A plugin
//! that never returns is stopped at its deadline and follows its failure policy (`Fail`
//! keeps the previous decisions and says why in the status; `Ignore` goes on without it); a
//! configuration the plugin refuses makes the Placement `Misconfigured` with the plugin's
//! message; a changed WasmPlugin reschedules the placements that name it. The debug
//! endpoint explains a schedule, to admins only.

mod common;

use common::*;
use serde_json::{Value, json};

const NS: &str = "apps";

/// A hub with the built-in label filter and capacity scorer, the endless-loop test filter
/// (stopped after 300 ms), namespace `apps` bound to `default`, and three clusters with
/// regions and CPU.
async fn fleet() -> Hub {
    let hub = Hub::start().await;
    namespace(&hub, NS).await;
    bind(&hub, NS, "default").await;
    push_plugin(&hub, "region-filter", "label-filter", "placement-filter", json!({})).await;
    push_plugin(&hub, "capacity", "capacity-scorer", "placement-scorer", json!({})).await;
    push_plugin(&hub, "loop", "hostile-endless-loop", "placement-filter", json!({"limits": {"timeoutMillis": 300}}))
        .await;
    for (name, region, cpu) in [("eu-1", "eu", "4"), ("eu-2", "eu", "16"), ("us-1", "us", "32")] {
        cluster(&hub, name, json!({"region": region})).await;
        cluster_status(
            &hub,
            name,
            json!({"allocatable": {"cpu": cpu, "memory": "16Gi"}, "capacity": {"cpu": cpu, "memory": "16Gi"}}),
        )
        .await;
    }
    hub
}

fn region_filter(regions: &[&str]) -> Value {
    json!({"requiredClusterSelector": {"plugin": {"name": "region-filter",
        "configuration": {"labels": [{"key": "region", "operator": "In", "values": regions}]}}}})
}

fn capacity_scorer(weight: i64) -> Value {
    json!({"scoreCoordinate": {"type": "Plugin", "plugin": {"name": "capacity",
        "configuration": {"resources": [{"name": "cpu"}]}}}, "weight": weight})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wasm_filter_and_a_wasm_scorer_decide_the_placement() {
    let hub = fleet().await;
    create_placement(
        &hub,
        NS,
        "web",
        json!({
            "numberOfClusters": 1,
            "predicates": [region_filter(&["eu"])],
            "prioritizerPolicy": {"mode": "Exact", "configurations": [capacity_scorer(2)]}
        }),
    )
    .await;
    // The filter keeps the EU clusters; the scorer prefers the one with more CPU.
    wait_selected(&hub, NS, "web", &["eu-2"]).await;
    wait_condition(&hub, NS, "web", "PlacementSatisfied", "True", "AllDecisionsScheduled").await;

    // The explanation names the plugin that removed us-1 and the scorer's scores and weight.
    let (status, body) = raw(&hub.admin, "GET", "/debug/placements/apps/web", Vec::new()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(answer["placement"], json!({"namespace": NS, "name": "web"}));
    assert_eq!(answer["currentDecisions"], json!(["eu-2"]));
    let explanation = &answer["explanation"];
    assert_eq!(explanation["selected"], json!(["eu-2"]));
    let removed = explanation["eliminated"]["us-1"].to_string();
    assert!(removed.contains("region"), "why us-1 is out: {removed}");
    let scorer = explanation["prioritizeResults"]
        .as_array()
        .and_then(|p| p.iter().find(|r| r["name"].as_str().is_some_and(|n| n.contains("capacity"))))
        .cloned()
        .unwrap_or_else(|| panic!("the scorer in {explanation}"));
    assert_eq!(scorer["weight"], 2);
    let (low, high) = (scorer["scores"]["eu-1"].as_i64(), scorer["scores"]["eu-2"].as_i64());
    assert!(low.zip(high).is_some_and(|(l, h)| h > l), "{scorer}");

    // us-1 moves to the EU: it passes the filter and has the most CPU.
    label_cluster(&hub, "us-1", json!({"region": "eu"})).await;
    wait_selected(&hub, NS, "web", &["us-1"]).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_times_out_follows_its_failure_policy() {
    let hub = fleet().await;
    create_placement(&hub, NS, "p", json!({"predicates": [region_filter(&["eu"])]})).await;
    wait_selected(&hub, NS, "p", &["eu-1", "eu-2"]).await;

    // Fail: the endless loop is stopped at its deadline, the previous decisions stay, and
    // the status says why.
    let looping = |policy: &str| json!({"spec": {"predicates": [{"requiredClusterSelector": {"plugin": {"name": "loop", "failurePolicy": policy}}}]}});
    patch_placement(&hub, NS, "p", looping("Fail")).await;
    let failed = wait_condition(&hub, NS, "p", "PlacementSatisfied", "False", "PluginFailed").await;
    let message = failed["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("loop"), "{message}");
    assert!(message.to_lowercase().contains("time") || message.contains("deadline"), "{message}");
    assert_eq!(selected(&hub, NS, "p").await, ["eu-1", "eu-2"], "previous decisions kept");
    assert_eq!(get_placement(&hub, NS, "p").await["status"]["numberOfSelectedClusters"], 2);

    // Ignore: the schedule goes on without the filter (it keeps every cluster).
    patch_placement(&hub, NS, "p", looping("Ignore")).await;
    wait_selected(&hub, NS, "p", &["eu-1", "eu-2", "us-1"]).await;
    let satisfied = wait_condition(&hub, NS, "p", "PlacementSatisfied", "True", "AllDecisionsScheduled").await;
    assert!(
        satisfied["message"].as_str().unwrap_or_default().contains("loop"),
        "the ignored plugin is named: {satisfied}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_wasm_plugin_reschedules_the_placements_naming_it() {
    let hub = fleet().await;
    // No failure policy on the reference: the WasmPlugin's (Fail by default) applies.
    create_placement(&hub, NS, "q", json!({"predicates": [{"requiredClusterSelector": {"plugin": {"name": "loop"}}}]}))
        .await;
    wait_condition(&hub, NS, "q", "PlacementSatisfied", "False", "PluginFailed").await;
    assert!(selected(&hub, NS, "q").await.is_empty(), "nothing was decided before");
    patch_plugin(&hub, "loop", json!({"failurePolicy": "Ignore"})).await;
    wait_selected(&hub, NS, "q", &["eu-1", "eu-2", "us-1"]).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_the_plugin_refuses_is_a_misconfiguration() {
    let hub = fleet().await;
    let bad = json!({"requiredClusterSelector": {"plugin": {"name": "region-filter",
        "configuration": {"labels": [{"key": "region", "operator": "In"}]}}}});
    create_placement(&hub, NS, "bad", json!({"predicates": [bad]})).await;
    let c = wait_condition(&hub, NS, "bad", "PlacementMisconfigured", "True", "Misconfigured").await;
    let message = c["message"].as_str().unwrap_or_default();
    assert!(message.contains("operator In and NotIn need values"), "the plugin's own message: {message}");
    assert!(selected(&hub, NS, "bad").await.is_empty());

    // Fixed: configured, and scheduled.
    patch_placement(&hub, NS, "bad", json!({"spec": {"predicates": [region_filter(&["us"])]}})).await;
    wait_selected(&hub, NS, "bad", &["us-1"]).await;
    wait_condition(&hub, NS, "bad", "PlacementMisconfigured", "False", "Succeedconfigured").await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_debug_endpoint_is_for_admins() {
    let hub = Hub::start().await;
    namespace(&hub, NS).await;
    create_placement(&hub, NS, "p", json!({})).await;
    let (status, body) = raw(&hub.admin, "GET", "/debug/placements/apps/p", Vec::new()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(answer["satisfied"]["reason"], "NoManagedClusterSetBindings");

    let (status, _) = raw(&hub.admin, "GET", "/debug/placements/apps/missing", Vec::new()).await;
    assert_eq!(status, 404);
    let (status, _) = raw(&hub.admin, "GET", "/debug/placements/apps", Vec::new()).await;
    assert_eq!(status, 400);
    let (status, _) = raw(&hub.admin, "POST", "/debug/placements/apps/p", Vec::new()).await;
    assert_eq!(status, 405);

    cluster(&hub, "c1", json!({})).await;
    let agent = hub.agent_client(&identity("c1", "agent-1")).await;
    let (status, body) = raw(&agent, "GET", "/debug/placements/apps/p", Vec::new()).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    hub.stop().await;
}
