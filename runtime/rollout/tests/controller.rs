//! The ManifestWorkReplicaSet controller against a real hub in-process, over TLS on loopback.
//! The PlacementDecisions are written by the test (a placement controller would write the
//! same), and so is the work status an agent reports, so that every step is exact: works
//! follow the decisions group by group, OCM's conditions and counts, removed clusters, the
//! state kept across a hub restart, revisions and their renumbering, and deletion.

#[path = "../../registration/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() { version.into() } else { format!("{group}/{version}") },
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn replica_sets(hub: &Hub) -> Api<DynamicObject> {
    let res =
        resource("work.open-cluster-management.io", "v1alpha1", "ManifestWorkReplicaSet", "manifestworkreplicasets");
    Api::namespaced_with(hub.admin.clone(), "apps", &res)
}

fn decisions(hub: &Hub) -> Api<DynamicObject> {
    let res = resource("cluster.open-cluster-management.io", "v1beta1", "PlacementDecision", "placementdecisions");
    Api::namespaced_with(hub.admin.clone(), "apps", &res)
}

fn revisions(hub: &Hub) -> Api<DynamicObject> {
    Api::namespaced_with(
        hub.admin.clone(),
        "apps",
        &resource("apps", "v1", "ControllerRevision", "controllerrevisions"),
    )
}

fn works(hub: &Hub, cluster: &str) -> Api<DynamicObject> {
    Api::namespaced_with(hub.admin.clone(), cluster, &manifest_works())
}

async fn namespace(hub: &Hub, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(hub.admin.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
}

/// PlacementDecision `p-decision-<n>` of placement `p`, for decision group `group`.
async fn put_decision(hub: &Hub, n: u32, group: u32, clusters: &[&str]) {
    let api = decisions(hub);
    let name = format!("p-decision-{n}");
    if api.get_opt(&name).await.expect("read decision").is_none() {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "cluster.open-cluster-management.io/v1beta1", "kind": "PlacementDecision",
            "metadata": {"name": name, "namespace": "apps", "labels": {
                "cluster.open-cluster-management.io/placement": "p",
                "cluster.open-cluster-management.io/decision-group-index": group.to_string(),
                "cluster.open-cluster-management.io/decision-group-name": ""}},
        }))
        .expect("decision");
        api.create(&PostParams::default(), &obj).await.expect("create decision");
    }
    let list: Vec<Value> = clusters.iter().map(|c| json!({"clusterName": c, "reason": ""})).collect();
    let status = json!({"status": {"decisions": list}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("decision status");
}

fn template(data: &str) -> Value {
    json!({"workload": {"manifests": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": "web"},
         "data": {"version": data}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "web"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}},
    ]}})
}

async fn create_replica_set(hub: &Hub, name: &str, placement: &str, strategy: Value) {
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "work.open-cluster-management.io/v1alpha1", "kind": "ManifestWorkReplicaSet",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"placementRefs": [{"name": placement, "rolloutStrategy": strategy}],
                 "manifestWorkTemplate": template("1")},
    }))
    .expect("replica set");
    replica_sets(hub).create(&PostParams::default(), &obj).await.expect("create replica set");
}

async fn set_template(hub: &Hub, data: &str) {
    let patch = json!({"spec": {"manifestWorkTemplate": template(data)}});
    replica_sets(hub).patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("new template");
}

/// What the agent reports for a work whose manifests are all applied and healthy.
async fn report_healthy(hub: &Hub, cluster: &str) {
    let api = works(hub, cluster);
    let work = to_value(&api.get("web").await.expect("work"));
    let generation = work.pointer("/metadata/generation").and_then(Value::as_i64).expect("generation");
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let cond = |t: &str, reason: &str| {
        json!({"type": t, "status": "True", "reason": reason, "message": "", "lastTransitionTime": now,
               "observedGeneration": generation})
    };
    let int = |name: &str, v: i64| json!({"name": name, "fieldValue": {"type": "Integer", "integer": v}});
    let status = json!({"status": {
        "conditions": [cond("Applied", "AppliedManifestWorkComplete"), cond("Available", "ResourcesAvailable")],
        "resourceStatus": {"manifests": [
            {"resourceMeta": {"ordinal": 0, "group": "", "version": "v1", "kind": "ConfigMap", "resource": "configmaps",
                              "name": "web-config", "namespace": "web"},
             "conditions": [cond("Applied", "AppliedManifestComplete"), cond("Available", "ResourceAvailable")]},
            {"resourceMeta": {"ordinal": 1, "group": "apps", "version": "v1", "kind": "Deployment",
                              "resource": "deployments", "name": "web", "namespace": "web"},
             "conditions": [cond("Applied", "AppliedManifestComplete"), cond("Available", "ResourceAvailable")],
             "statusFeedback": {"values": [int("Generation", 1), int("ObservedGeneration", 1),
                int("DesiredReplicas", 1), int("ReadyReplicas", 1), int("AvailableReplicas", 1),
                int("UpdatedReplicas", 1),
                {"name": "ProgressingReason", "fieldValue": {"type": "String", "string": "NewReplicaSetAvailable"}}]}},
        ]},
    }});
    api.patch_status("web", &PatchParams::default(), &Patch::Merge(&status)).await.expect("work status");
}

async fn replica_set(hub: &Hub, name: &str) -> Value {
    to_value(&replica_sets(hub).get(name).await.expect("replica set"))
}

fn rollout_cluster<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    obj.pointer("/status/rollout/clusters")?.as_array()?.iter().find(|c| c["name"] == name)
}

fn reason(obj: &Value, type_: &str) -> String {
    condition(obj, type_).and_then(|c| c["reason"].as_str()).unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn works_follow_decisions_group_by_group_and_survive_a_restart() {
    let mut hub = Hub::start().await;
    for ns in ["apps", "c1", "c2", "c3"] {
        namespace(&hub, ns).await;
    }
    put_decision(&hub, 1, 0, &["c1", "c2"]).await;
    put_decision(&hub, 2, 1, &["c3"]).await;
    create_replica_set(&hub, "web", "p", json!({"type": "ProgressivePerGroup", "progressivePerGroup": {}})).await;

    // Group 0 first: works in c1 and c2, none in c3 while they progress.
    let obj = eventually("group 0's works and status", || async {
        let obj = replica_set(&hub, "web").await;
        (obj.pointer("/status/summary/updated") == Some(&json!(2))).then_some(obj)
    })
    .await;
    assert!(works(&hub, "c3").get_opt("web").await.expect("read").is_none(), "group 1 waits for group 0");
    let work = to_value(&works(&hub, "c1").get("web").await.expect("c1's work"));
    let labels = &work["metadata"]["labels"];
    assert_eq!(labels["work.open-cluster-management.io/manifestworkreplicaset"], "apps.web");
    assert_eq!(labels["work.open-cluster-management.io/placementname"], "p");
    assert_eq!(work["metadata"]["annotations"]["rollout.flotilla.dev/revision"], "1");
    let config = &work["spec"]["manifestConfigs"][0];
    assert_eq!(config["resourceIdentifier"]["resource"], "deployments", "health feedback added: {work}");
    assert_eq!(config["feedbackRules"][0]["type"], "JSONPaths");
    assert!(to_value(&obj)["metadata"]["finalizers"].to_string().contains("manifest-work-cleanup"));
    assert_eq!(reason(&obj, "PlacementVerified"), "AsExpected");
    assert_eq!(reason(&obj, "PlacementRolledOut"), "Progressing");
    assert_eq!(reason(&obj, "ManifestworkApplied"), "Processing");
    assert_eq!(
        obj["status"]["summary"],
        json!({"total": 2, "applied": 0, "available": 0, "progressing": 2, "degraded": 0, "desiredTotal": 3, "updated": 2})
    );
    assert_eq!(obj["status"]["placementSummary"][0]["availableDecisionGroups"], "0/2");
    assert_eq!(rollout_cluster(&obj, "c3").map(|c| c["status"].clone()), Some(json!("ToApply")));

    // The agents report c1 and c2 healthy: group 1 starts.
    report_healthy(&hub, "c1").await;
    report_healthy(&hub, "c2").await;
    eventually("c3's work", || async { works(&hub, "c3").get_opt("web").await.ok().flatten() }).await;
    let before = eventually("c1 succeeded", || async {
        let obj = replica_set(&hub, "web").await;
        (rollout_cluster(&obj, "c1")?["status"] == "Succeeded").then_some(obj)
    })
    .await;
    let c1_since = rollout_cluster(&before, "c1").map(|c| c["lastTransitionTime"].clone()).expect("c1");

    // A restart in the middle: the stored state is where the controller resumes.
    hub.restart_after(Duration::from_millis(1100)).await;
    report_healthy(&hub, "c3").await;
    let obj = eventually("the rollout completes", || async {
        let obj = replica_set(&hub, "web").await;
        (obj.pointer("/status/rollout/phase") == Some(&json!("Complete"))).then_some(obj)
    })
    .await;
    assert_eq!(rollout_cluster(&obj, "c1").map(|c| c["lastTransitionTime"].clone()), Some(c1_since));
    assert_eq!(reason(&obj, "PlacementRolledOut"), "Complete");
    assert_eq!(reason(&obj, "ManifestworkApplied"), "AsExpected");
    assert_eq!(obj["status"]["placementSummary"][0]["availableDecisionGroups"], "2/2");
    assert_eq!(obj["status"]["summary"]["available"], 3);

    // c2 leaves the decisions: its work goes.
    put_decision(&hub, 1, 0, &["c1"]).await;
    eventually("c2's work deleted", || async { works(&hub, "c2").get_opt("web").await.ok()?.is_none().then_some(()) })
        .await;

    // A placement without decisions.
    create_replica_set(&hub, "lost", "nowhere", json!({"type": "All"})).await;
    eventually("PlacementDecisionNotFound", || async {
        let obj = replica_set(&hub, "lost").await;
        (reason(&obj, "PlacementVerified") == "PlacementDecisionNotFound").then_some(())
    })
    .await;

    // A new template is revision 2; going back to the first makes it revision 3.
    set_template(&hub, "2").await;
    eventually("revision 2", || async {
        let obj = replica_set(&hub, "web").await;
        (obj.pointer("/status/rollout/revision") == Some(&json!(2))).then_some(())
    })
    .await;
    set_template(&hub, "1").await;
    eventually("revision 3", || async {
        let obj = replica_set(&hub, "web").await;
        (obj.pointer("/status/rollout/revision") == Some(&json!(3))).then_some(())
    })
    .await;
    let selector = "work.open-cluster-management.io/manifestworkreplicaset=apps.web";
    let stored = revisions(&hub).list(&ListParams::default().labels(selector)).await.expect("revisions");
    let mut numbers: Vec<i64> = stored.items.iter().filter_map(|r| to_value(r)["revision"].as_i64()).collect();
    numbers.sort();
    assert_eq!(numbers, [2, 3], "the first template was renumbered, not stored twice");
    // c3 never got revision 2 (group 0 did not succeed with it): it holds the first template,
    // which is current again, without a new write.
    let obj = replica_set(&hub, "web").await;
    let c3 = rollout_cluster(&obj, "c3").cloned().expect("c3");
    assert_eq!((c3["status"].clone(), c3["revision"].clone()), (json!("Succeeded"), json!(3)), "{c3}");
    let work = to_value(&works(&hub, "c3").get("web").await.expect("c3's work"));
    assert_eq!(work["metadata"]["annotations"]["rollout.flotilla.dev/revision"], "1", "not rewritten");

    // Deleting the ManifestWorkReplicaSet deletes its works, then it goes.
    replica_sets(&hub).delete("web", &DeleteParams::default()).await.expect("delete");
    eventually("works and replica set gone", || async {
        let gone = works(&hub, "c1").get_opt("web").await.ok()?.is_none()
            && works(&hub, "c3").get_opt("web").await.ok()?.is_none()
            && replica_sets(&hub).get_opt("web").await.ok()?.is_none();
        gone.then_some(())
    })
    .await;

    // Foreground: the ManifestWorkReplicaSet stays until its works are gone. An agent's
    // finalizer holds c1's work, as the real agent's does until the spoke is cleaned up.
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "work.open-cluster-management.io/v1alpha1", "kind": "ManifestWorkReplicaSet",
        "metadata": {"name": "fg", "namespace": "apps"},
        "spec": {"cascadeDeletionPolicy": "Foreground", "placementRefs": [{"name": "p"}],
                 "manifestWorkTemplate": template("1")},
    }))
    .expect("replica set");
    replica_sets(&hub).create(&PostParams::default(), &obj).await.expect("create fg");
    eventually("fg's works", || async {
        let c1 = works(&hub, "c1").get_opt("fg").await.ok()??;
        works(&hub, "c3").get_opt("fg").await.ok()??;
        Some(c1)
    })
    .await;
    let hold = json!({"metadata": {"finalizers": ["agent.example.com/cleanup"]}});
    works(&hub, "c1").patch("fg", &PatchParams::default(), &Patch::Merge(&hold)).await.expect("finalizer");
    replica_sets(&hub).delete("fg", &DeleteParams::default()).await.expect("delete fg");
    eventually("c3's work gone, c1's terminating", || async {
        let c1 = to_value(&works(&hub, "c1").get_opt("fg").await.ok()??);
        let c3_gone = works(&hub, "c3").get_opt("fg").await.ok()?.is_none();
        (c3_gone && c1.pointer("/metadata/deletionTimestamp").is_some()).then_some(())
    })
    .await;
    let waiting = replica_sets(&hub).get_opt("fg").await.expect("read fg");
    assert!(waiting.is_some(), "Foreground: the replica set waits for its works");
    let release = json!({"metadata": {"finalizers": null}});
    works(&hub, "c1").patch("fg", &PatchParams::default(), &Patch::Merge(&release)).await.expect("release");
    eventually("fg gone after its works", || async {
        replica_sets(&hub).get_opt("fg").await.ok()?.is_none().then_some(())
    })
    .await;

    // A work of the same name that someone else owns is not taken over; the status says so.
    let foreign: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "work.open-cluster-management.io/v1", "kind": "ManifestWork",
        "metadata": {"name": "clash", "namespace": "c1"},
        "spec": {"workload": {"manifests": [{"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "mine", "namespace": "default"}}]}},
    }))
    .expect("work");
    works(&hub, "c1").create(&PostParams::default(), &foreign).await.expect("foreign work");
    create_replica_set(&hub, "clash", "p", json!({"type": "All"})).await;
    let c1 = eventually("the clash reported", || async {
        let obj = replica_set(&hub, "clash").await;
        let c1 = rollout_cluster(&obj, "c1")?.clone();
        c1["message"].as_str()?.contains("is in the way").then_some(c1)
    })
    .await;
    assert_eq!(c1["status"], "ToApply");
    let untouched = to_value(&works(&hub, "c1").get("clash").await.expect("foreign work"));
    assert!(untouched.pointer("/metadata/labels").is_none(), "the foreign work was left alone: {untouched}");
    eventually("c3's clash work", || async { works(&hub, "c3").get_opt("clash").await.ok().flatten() }).await;
    hub.stop().await;
}
