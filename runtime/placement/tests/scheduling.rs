//! The placement controller against a real hub over TLS on loopback: Placements get their
//! PlacementDecisions (OCM's names, labels, owner and paging) and status (selected count,
//! decision groups, conditions), and are rescheduled when what they read changes: cluster
//! labels, bindings, a cluster being deleted. Writes are minimal (a change that affects
//! nothing rewrites nothing) and tampering with a PlacementDecision is repaired.

mod common;

use common::*;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

const NS: &str = "apps";

/// A hub with namespace `apps` bound to the `default` cluster set (every cluster created
/// without a set label joins it).
async fn hub_with_binding() -> Hub {
    let hub = Hub::start().await;
    namespace(&hub, NS).await;
    bind(&hub, NS, "default").await;
    hub
}

fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_placement_gets_decisions_and_status_and_follows_cluster_labels() {
    let hub = hub_with_binding().await;
    for (name, env) in [("c1", "prod"), ("c2", "dev"), ("c3", "prod")] {
        cluster(&hub, name, json!({"env": env})).await;
    }
    create_placement(
        &hub,
        NS,
        "web",
        json!({"predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"env": "prod"}}}}]}),
    )
    .await;
    assert_eq!(wait_selected(&hub, NS, "web", &["c1", "c3"]).await, ["c1", "c3"], "sorted by name");

    let placement = get_placement(&hub, NS, "web").await;
    let pds = decisions_of(&hub, NS, "web").await;
    assert_eq!(pds.len(), 1);
    let pd = &pds[0];
    assert_eq!(pd["metadata"]["name"], "web-decision-1");
    assert_eq!(pd["metadata"]["labels"], json!({PLACEMENT_LABEL: "web", GROUP_INDEX_LABEL: "0", GROUP_NAME_LABEL: ""}));
    let owner = &pd["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Placement");
    assert_eq!(owner["name"], "web");
    assert_eq!(owner["uid"], placement["metadata"]["uid"]);
    assert_eq!((owner["controller"].clone(), owner["blockOwnerDeletion"].clone()), (json!(true), json!(true)));
    for d in pd["status"]["decisions"].as_array().cloned().unwrap_or_default() {
        assert_eq!(d["reason"], "");
        assert!(d["score"].is_i64(), "{d}");
    }

    let satisfied = wait_condition(&hub, NS, "web", "PlacementSatisfied", "True", "AllDecisionsScheduled").await;
    assert_eq!(satisfied["observedGeneration"], 1);
    let placement = get_placement(&hub, NS, "web").await;
    assert_eq!(placement["status"]["numberOfSelectedClusters"], 2);
    assert_eq!(
        placement["status"]["decisionGroups"],
        json!([{"decisionGroupIndex": 0, "decisionGroupName": "", "decisions": ["web-decision-1"], "clusterCount": 2}])
    );
    let misconfigured = condition(&placement, "PlacementMisconfigured").cloned().unwrap_or_default();
    assert_eq!(
        (misconfigured["status"].clone(), misconfigured["reason"].clone()),
        (json!("False"), json!("Succeedconfigured"))
    );

    // A cluster's labels change: it joins, another leaves.
    label_cluster(&hub, "c2", json!({"env": "prod"})).await;
    wait_selected(&hub, NS, "web", &["c1", "c2", "c3"]).await;
    label_cluster(&hub, "c1", json!({"env": "dev"})).await;
    wait_selected(&hub, NS, "web", &["c2", "c3"]).await;
    eventually("numberOfSelectedClusters 2 again", || async {
        let p = get_placement(&hub, NS, "web").await;
        (p["status"]["numberOfSelectedClusters"] == 2).then_some(())
    })
    .await;
    let satisfied_after =
        condition(&get_placement(&hub, NS, "web").await, "PlacementSatisfied").cloned().unwrap_or_default();
    assert_eq!(satisfied_after["lastTransitionTime"], satisfied["lastTransitionTime"], "same status, same transition");

    // A change that affects the placement but not its decisions writes nothing: c1 gets a
    // label web does not select on; then another placement (later in the queue) is given a
    // change, and once it shows, web's schedule has run.
    let before = decisions_of(&hub, NS, "web").await;
    let placement_before = get_placement(&hub, NS, "web").await;
    create_placement(
        &hub,
        NS,
        "zz-sync",
        json!({"predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"sync": "yes"}}}}]}),
    )
    .await;
    wait_condition(&hub, NS, "zz-sync", "PlacementSatisfied", "False", "NoManagedClusterMatched").await;
    label_cluster(&hub, "c1", json!({"team": "blue"})).await;
    label_cluster(&hub, "c3", json!({"sync": "yes"})).await;
    wait_selected(&hub, NS, "zz-sync", &["c3"]).await;
    let after = decisions_of(&hub, NS, "web").await;
    assert_eq!(after.iter().map(rv).collect::<Vec<_>>(), before.iter().map(rv).collect::<Vec<_>>(), "stable decisions");
    assert_eq!(rv(&get_placement(&hub, NS, "web").await), rv(&placement_before), "no status write");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn more_than_100_clusters_page_into_placement_decisions() {
    let hub = hub_with_binding().await;
    for i in 0..130 {
        cluster(&hub, &format!("m{i:03}"), json!({"fleet": "big"})).await;
    }
    create_placement(
        &hub,
        NS,
        "big",
        json!({"predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"fleet": "big"}}}}]}),
    )
    .await;
    let all: Vec<String> = (0..130).map(|i| format!("m{i:03}")).collect();
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_eq!(wait_selected(&hub, NS, "big", &names).await, all, "in name order across the pages");
    let pds = decisions_of(&hub, NS, "big").await;
    let shape: Vec<(String, usize, Value)> = pds
        .iter()
        .map(|pd| {
            (
                pd["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                pd["status"]["decisions"].as_array().map_or(0, Vec::len),
                pd["metadata"]["labels"][GROUP_INDEX_LABEL].clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [("big-decision-1".to_string(), 100, json!("0")), ("big-decision-2".to_string(), 30, json!("0"))]
    );
    let p = eventually("status of big", || async {
        let p = get_placement(&hub, NS, "big").await;
        (p["status"]["numberOfSelectedClusters"] == 130).then_some(p)
    })
    .await;
    assert_eq!(
        p["status"]["decisionGroups"],
        json!([{"decisionGroupIndex": 0, "decisionGroupName": "",
            "decisions": ["big-decision-1", "big-decision-2"], "clusterCount": 130}])
    );

    // Fewer clusters: the second page goes away.
    for i in 100..130 {
        label_cluster(&hub, &format!("m{i:03}"), json!({"fleet": null})).await;
    }
    wait_selected(&hub, NS, "big", &names[..100]).await;
    eventually("big-decision-2 deleted", || async {
        let pds = decisions_of(&hub, NS, "big").await;
        (pds.len() == 1).then_some(())
    })
    .await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn decision_groups_split_by_selector_and_percentage() {
    let hub = hub_with_binding().await;
    for i in 0..8 {
        let labels = if i < 2 { json!({"app": "shop", "canary": "true"}) } else { json!({"app": "shop"}) };
        cluster(&hub, &format!("g{i}"), labels).await;
    }
    create_placement(
        &hub,
        NS,
        "shop",
        json!({
            "predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"app": "shop"}}}}],
            "decisionStrategy": {"groupStrategy": {
                "clustersPerDecisionGroup": "50%",
                "decisionGroups": [{"groupName": "canary",
                    "groupClusterSelector": {"labelSelector": {"matchLabels": {"canary": "true"}}}}]
            }}
        }),
    )
    .await;
    wait_selected(&hub, NS, "shop", &["g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"]).await;
    let p = eventually("decision groups of shop", || async {
        let p = get_placement(&hub, NS, "shop").await;
        (p["status"]["numberOfSelectedClusters"] == 8).then_some(p)
    })
    .await;
    // 50% of 8 is 4 per group: the canary group takes its 2 first, the rest split in 4 and 2.
    assert_eq!(
        p["status"]["decisionGroups"],
        json!([
            {"decisionGroupIndex": 0, "decisionGroupName": "canary", "decisions": ["shop-decision-1"], "clusterCount": 2},
            {"decisionGroupIndex": 1, "decisionGroupName": "", "decisions": ["shop-decision-2"], "clusterCount": 4},
            {"decisionGroupIndex": 2, "decisionGroupName": "", "decisions": ["shop-decision-3"], "clusterCount": 2}
        ])
    );
    let pds = decisions_of(&hub, NS, "shop").await;
    let labels: Vec<(Value, Value)> = pds
        .iter()
        .map(|pd| {
            (pd["metadata"]["labels"][GROUP_INDEX_LABEL].clone(), pd["metadata"]["labels"][GROUP_NAME_LABEL].clone())
        })
        .collect();
    assert_eq!(labels, [(json!("0"), json!("canary")), (json!("1"), json!("")), (json!("2"), json!(""))]);
    let first: Vec<Value> = pds[0]["status"]["decisions"].as_array().cloned().unwrap_or_default();
    assert_eq!(first.iter().map(|d| d["clusterName"].clone()).collect::<Vec<_>>(), [json!("g0"), json!("g1")]);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_bindings_nothing_is_selected_until_a_set_is_bound() {
    let hub = Hub::start().await;
    namespace(&hub, NS).await;
    cluster(&hub, "c1", json!({})).await;
    create_placement(&hub, NS, "lonely", json!({})).await;
    let c = wait_condition(&hub, NS, "lonely", "PlacementSatisfied", "False", "NoManagedClusterSetBindings").await;
    assert_eq!(c["message"], "No valid ManagedClusterSetBindings found in placement namespace");
    let pds = eventually("an empty PlacementDecision", || async {
        let pds = decisions_of(&hub, NS, "lonely").await;
        (!pds.is_empty()).then_some(pds)
    })
    .await;
    assert_eq!(pds.len(), 1);
    assert_eq!(pds[0]["metadata"]["name"], "lonely-decision-1");
    assert_eq!(pds[0]["status"]["decisions"], json!([]));
    assert_eq!(get_placement(&hub, NS, "lonely").await["status"]["numberOfSelectedClusters"], 0);

    bind(&hub, NS, "default").await;
    wait_selected(&hub, NS, "lonely", &["c1"]).await;
    wait_condition(&hub, NS, "lonely", "PlacementSatisfied", "True", "AllDecisionsScheduled").await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminating_cluster_is_never_selected() {
    let hub = hub_with_binding().await;
    cluster(&hub, "stays", json!({})).await;
    cluster(&hub, "goes", json!({})).await;
    // A finalizer of the test's own keeps the deleted cluster terminating.
    let hold = json!({"metadata": {"finalizers": ["test.flotilla.dev/hold"]}});
    hub.clusters().patch("goes", &PatchParams::default(), &Patch::Merge(&hold)).await.expect("finalizer");
    create_placement(&hub, NS, "p", json!({})).await;
    wait_selected(&hub, NS, "p", &["goes", "stays"]).await;

    hub.clusters().delete("goes", &DeleteParams::default()).await.expect("delete cluster");
    wait_selected(&hub, NS, "p", &["stays"]).await;
    let goes = to_value(&hub.clusters().get("goes").await.expect("terminating cluster"));
    assert!(goes["metadata"]["deletionTimestamp"].is_string(), "{goes}");

    // A new placement never picks it either.
    create_placement(&hub, NS, "q", json!({})).await;
    wait_selected(&hub, NS, "q", &["stays"]).await;
    let release = json!({"metadata": {"finalizers": null}});
    let _ = hub.clusters().patch("goes", &PatchParams::default(), &Patch::Merge(&release)).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_placement_decisions_are_repaired() {
    let hub = hub_with_binding().await;
    cluster(&hub, "c1", json!({})).await;
    cluster(&hub, "c2", json!({})).await;
    create_placement(&hub, NS, "p", json!({})).await;
    wait_selected(&hub, NS, "p", &["c1", "c2"]).await;

    // Someone rewrites the decisions: the controller puts them back.
    let api = decision_api(&hub, NS);
    let forged = json!({"status": {"decisions": [{"clusterName": "evil", "reason": "forged"}]}});
    api.patch_status("p-decision-1", &PatchParams::default(), &Patch::Merge(&forged)).await.expect("forge");
    wait_selected(&hub, NS, "p", &["c1", "c2"]).await;

    // Someone deletes it: it comes back.
    delete_decision(&hub, NS, "p-decision-1").await;
    wait_selected(&hub, NS, "p", &["c1", "c2"]).await;

    // Someone relabels it: the labels come back.
    let relabel = json!({"metadata": {"labels": {GROUP_INDEX_LABEL: "9"}}});
    api.patch("p-decision-1", &PatchParams::default(), &Patch::Merge(&relabel)).await.expect("relabel");
    eventually("labels restored", || async {
        let pd = to_value(&api.get("p-decision-1").await.ok()?);
        (pd["metadata"]["labels"][GROUP_INDEX_LABEL] == "0").then_some(())
    })
    .await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn placements_annotated_to_disable_scheduling_are_left_alone() {
    let hub = hub_with_binding().await;
    cluster(&hub, "c1", json!({})).await;
    let api = placement_api(&hub, NS);
    let external: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.open-cluster-management.io/v1beta1", "kind": "Placement",
        "metadata": {"name": "external", "namespace": NS,
            "annotations": {"cluster.open-cluster-management.io/experimental-scheduling-disable": "true"}},
        "spec": {}
    }))
    .expect("placement");
    api.create(&Default::default(), &external).await.expect("create");
    // A placement created after it is scheduled; by then the annotated one would have been.
    create_placement(&hub, NS, "zz-after", json!({})).await;
    wait_selected(&hub, NS, "zz-after", &["c1"]).await;
    assert!(decisions_of(&hub, NS, "external").await.is_empty());
    assert!(get_placement(&hub, NS, "external").await["status"]["conditions"].is_null());

    // Dropping the annotation schedules it.
    let enable = json!({"metadata": {"annotations": {"cluster.open-cluster-management.io/experimental-scheduling-disable": null}}});
    api.patch("external", &PatchParams::default(), &Patch::Merge(&enable)).await.expect("enable");
    wait_selected(&hub, NS, "external", &["c1"]).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_cluster_changes_converges() {
    let hub = hub_with_binding().await;
    for i in 0..20 {
        cluster(&hub, &format!("b{i:02}"), json!({"tier": "low"})).await;
    }
    create_placement(
        &hub,
        NS,
        "gold",
        json!({"predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"tier": "gold"}}}}]}),
    )
    .await;
    wait_condition(&hub, NS, "gold", "PlacementSatisfied", "False", "NoManagedClusterMatched").await;
    // Twenty relabels at once; the decisions end up with all of them.
    let mut relabels = tokio::task::JoinSet::new();
    for i in 0..20 {
        let clusters: Api<DynamicObject> = hub.clusters();
        relabels.spawn(async move {
            let patch = json!({"metadata": {"labels": {"tier": "gold"}}});
            clusters.patch(&format!("b{i:02}"), &PatchParams::default(), &Patch::Merge(&patch)).await.expect("relabel");
        });
    }
    while let Some(done) = relabels.join_next().await {
        done.expect("relabel task");
    }
    let all: Vec<String> = (0..20).map(|i| format!("b{i:02}")).collect();
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    wait_selected(&hub, NS, "gold", &names).await;
    wait_condition(&hub, NS, "gold", "PlacementSatisfied", "True", "AllDecisionsScheduled").await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_survive_a_hub_restart_unchanged() {
    let mut hub = hub_with_binding().await;
    for i in 0..6 {
        cluster(&hub, &format!("r{i}"), json!({})).await;
    }
    // Three of six: which three is the scheduler's choice, and a restart must not change it.
    create_placement(&hub, NS, "three", json!({"numberOfClusters": 3})).await;
    let p = eventually("three selected", || async {
        let p = get_placement(&hub, NS, "three").await;
        (p["status"]["numberOfSelectedClusters"] == 3).then_some(p)
    })
    .await;
    let before = decisions_of(&hub, NS, "three").await;
    hub.restart_after(std::time::Duration::from_millis(100)).await;
    // A placement created after the restart shows the controller has caught up.
    create_placement(&hub, NS, "zz-after-restart", json!({})).await;
    wait_selected(&hub, NS, "zz-after-restart", &["r0", "r1", "r2", "r3", "r4", "r5"]).await;
    let after = decisions_of(&hub, NS, "three").await;
    assert_eq!(after, before, "same decisions, not even rewritten");
    assert_eq!(rv(&get_placement(&hub, NS, "three").await), rv(&p), "status not rewritten");
    hub.stop().await;
}
