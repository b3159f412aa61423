//! The agent's work engine end to end, in one process over TLS on loopback: a real hub, a
//! simulated spoke and the agent library. The tests write ManifestWorks on the hub as an
//! administrator and check what the SPOKE holds, and what the agent reports back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use flotilla_agent::datadir::{AGENT_JSON, AgentRecord};
use futures::StreamExt;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::{Value, json};

const CLUSTER: &str = "c1";

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn config_map(ns: &str, name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data})
}

fn deployment(ns: &str, name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    })
}

fn job(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "run", "image": "busybox"}]}}},
    })
}

fn identifier(group: &str, resource: &str, ns: &str, name: &str) -> Value {
    json!({"group": group, "resource": resource, "namespace": ns, "name": name})
}

async fn create_work(env: &Env, name: &str, spec: Value) {
    let work: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": name, "namespace": CLUSTER},
        "spec": spec,
    }))
    .unwrap();
    env.works(CLUSTER).create(&PostParams::default(), &work).await.unwrap();
}

/// Replaces a work's spec (read, change, PUT; retried when the agent wrote meanwhile).
async fn set_spec(env: &Env, name: &str, spec: Value) {
    for _ in 0..20 {
        let mut work = env.work(CLUSTER, name).await.unwrap();
        work["spec"] = spec.clone();
        let object: DynamicObject = serde_json::from_value(work).unwrap();
        match env.works(CLUSTER).replace(name, &PostParams::default(), &object).await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("updating work {name}: {e}"),
        }
    }
    panic!("work {name} kept changing");
}

/// Waits for the work's status to say Applied and Available for its current generation.
async fn applied_and_available(env: &Env, name: &str) -> Value {
    eventually(&format!("work {name} applied and available"), || async {
        let work = env.work(CLUSTER, name).await?;
        let generation = work.pointer("/metadata/generation")?.clone();
        let conditions = work.pointer("/status/conditions")?;
        let current = ["Applied", "Available"].iter().all(|t| {
            condition(conditions, t).is_some_and(|c| c["status"] == "True" && c["observedGeneration"] == generation)
        });
        current.then_some(work)
    })
    .await
}

/// The conditions of the manifest with `ordinal` in a work's status.
fn manifest_status(work: &Value, ordinal: i64) -> Value {
    work.pointer("/status/resourceStatus/manifests")
        .and_then(Value::as_array)
        .and_then(|m| m.iter().find(|m| m["resourceMeta"]["ordinal"] == ordinal))
        .cloned()
        .unwrap_or(Value::Null)
}

fn owner_uids(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|r| r.iter().map(|r| r["uid"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The store revision at which the object was created, from a watch replaying the spoke's
/// history since `since` (revisions are global, so they order creations across kinds).
async fn creation_revision(env: &Env, ar: &ApiResource, ns: Option<&str>, name: &str, since: &str) -> u64 {
    let api = env.spoke_api(ar, ns);
    let params = WatchParams::default().fields(&format!("metadata.name={name}")).timeout(10);
    let stream = api.watch(&params, since).await.unwrap();
    tokio::pin!(stream);
    while let Some(event) = tokio::time::timeout(WAIT, stream.next()).await.expect("a watch event") {
        if let Ok(WatchEvent::Added(object)) = event {
            return object.metadata.resource_version.unwrap().parse().unwrap();
        }
    }
    panic!("no ADDED event for {name}");
}

async fn spoke_revision(env: &Env) -> String {
    let list = env.spoke_api(&config_maps(), Some("default")).list(&ListParams::default().limit(1)).await.unwrap();
    list.metadata.resource_version.unwrap()
}

/// Waits until the work is gone from the hub.
async fn work_gone(env: &Env, name: &str) {
    eventually(&format!("work {name} gone from the hub"), || async {
        env.work(CLUSTER, name).await.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_in_order_records_updates_removes_and_deletes() {
    let env = Env::start().await;
    let agent = joined_agent(&env, env.options(CLUSTER)).await;
    let since = spoke_revision(&env).await;

    // Listed backwards: the agent must still create the namespace first.
    let manifests = vec![
        deployment("app", "web", 2, "nginx:1.25"),
        config_map("app", "settings", json!({"mode": "blue"})),
        namespace("app"),
    ];
    create_work(&env, "app", json!({"workload": {"manifests": manifests.clone()}})).await;
    let work = applied_and_available(&env, "app").await;

    // The agent took the work over: finalizer on the hub.
    assert!(
        work["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .contains(&json!("cluster.open-cluster-management.io/manifest-work-cleanup"))
    );
    // Per-manifest status with OCM's resourceMeta.
    let web = manifest_status(&work, 0);
    assert_eq!(
        web["resourceMeta"],
        json!({"ordinal": 0, "group": "apps", "version": "v1", "kind": "Deployment", "resource": "deployments",
            "name": "web", "namespace": "app"})
    );
    assert_eq!(condition(&web["conditions"], "Applied").unwrap()["reason"], "AppliedManifestComplete");
    assert_eq!(condition(&web["conditions"], "Available").unwrap()["reason"], "ResourceAvailable");
    assert_eq!(manifest_status(&work, 2)["resourceMeta"]["namespace"], "", "a Namespace is cluster-scoped");
    assert_eq!(condition(&work["status"]["conditions"], "Applied").unwrap()["reason"], "AppliedManifestWorkComplete");
    assert_eq!(condition(&work["status"]["conditions"], "Available").unwrap()["reason"], "ResourcesAvailable");

    // The spoke holds all three, created in OCM's order.
    let ns_rev = creation_revision(&env, &namespaces(), None, "app", &since).await;
    let cm_rev = creation_revision(&env, &config_maps(), Some("app"), "settings", &since).await;
    let deploy_rev = creation_revision(&env, &deployments(), Some("app"), "web", &since).await;
    assert!(
        ns_rev < cm_rev && cm_rev < deploy_rev,
        "apply order: namespace {ns_rev}, configmap {cm_rev}, deployment {deploy_rev}"
    );

    // Recorded in the AppliedManifestWork, which the objects point at.
    let applied_name = env.applied_name("app");
    let applied = env.spoke_get(&applied_manifest_works(), None, &applied_name).await.expect("an AppliedManifestWork");
    let record: AgentRecord =
        serde_json::from_str(&std::fs::read_to_string(env.agent_dir(CLUSTER).join(AGENT_JSON)).unwrap()).unwrap();
    assert_eq!(applied["spec"]["agentID"], record.agent_id.as_str());
    assert_eq!(applied["spec"]["manifestWorkName"], "app");
    assert_eq!(applied_name, format!("{}-app", applied["spec"]["hubHash"].as_str().unwrap()));
    let applied_uid = applied["metadata"]["uid"].as_str().unwrap().to_string();
    let cm = env.spoke_get(&config_maps(), Some("app"), "settings").await.unwrap();
    let deploy = env.spoke_get(&deployments(), Some("app"), "web").await.unwrap();
    let ns = env.spoke_get(&namespaces(), None, "app").await.unwrap();
    for object in [&cm, &deploy, &ns] {
        assert_eq!(owner_uids(object), std::slice::from_ref(&applied_uid));
        assert_eq!(object["metadata"]["ownerReferences"][0]["kind"], "AppliedManifestWork");
        assert_eq!(object["metadata"]["ownerReferences"][0]["name"], applied_name.as_str());
    }
    assert_eq!(cm["data"]["mode"], "blue");
    assert_eq!(deploy["spec"]["replicas"], 2);
    let resources = eventually("the applied resources", || async {
        let applied = env.spoke_get(&applied_manifest_works(), None, &applied_name).await?;
        let resources = applied.pointer("/status/appliedResources")?.as_array()?.clone();
        (resources.len() == 3).then_some(resources)
    })
    .await;
    assert!(resources.contains(&json!({"group": "", "version": "v1", "resource": "configmaps", "namespace": "app",
        "name": "settings", "uid": cm["metadata"]["uid"]})));
    assert!(resources.contains(&json!({"group": "", "version": "v1", "resource": "namespaces", "namespace": "",
        "name": "app", "uid": ns["metadata"]["uid"]})));
    // A local copy is kept for restarts without the hub.
    assert!(env.agent_dir(CLUSTER).join("works/app.json").exists());

    // Update a manifest: the spoke follows, with a new object hash.
    let old_hash = cm["metadata"]["annotations"]["open-cluster-management.io/object-hash"].clone();
    assert!(old_hash.is_string());
    let mut updated = manifests.clone();
    updated[1] = config_map("app", "settings", json!({"mode": "green"}));
    set_spec(&env, "app", json!({"workload": {"manifests": updated}})).await;
    let cm = eventually("the configmap update", || async {
        let cm = env.spoke_get(&config_maps(), Some("app"), "settings").await?;
        (cm["data"]["mode"] == "green").then_some(cm)
    })
    .await;
    assert_ne!(cm["metadata"]["annotations"]["open-cluster-management.io/object-hash"], old_hash);

    // Remove a manifest: it is deleted from the spoke and no longer recorded.
    set_spec(&env, "app", json!({"workload": {"manifests": [manifests[0].clone(), manifests[2].clone()]}})).await;
    eventually("the removed configmap to go", || async {
        env.spoke_get(&config_maps(), Some("app"), "settings").await.is_none().then_some(())
    })
    .await;
    eventually("two applied resources", || async {
        let applied = env.spoke_get(&applied_manifest_works(), None, &applied_name).await?;
        (applied.pointer("/status/appliedResources")?.as_array()?.len() == 2).then_some(())
    })
    .await;
    let work = applied_and_available(&env, "app").await;
    assert_eq!(work["status"]["resourceStatus"]["manifests"].as_array().unwrap().len(), 2);
    assert!(env.spoke_get(&deployments(), Some("app"), "web").await.is_some());

    // Delete the work (Foreground): when it is gone from the hub, its resources are gone
    // from the spoke already.
    env.works(CLUSTER).delete("app", &DeleteParams::default()).await.unwrap();
    work_gone(&env, "app").await;
    assert!(env.spoke_get(&deployments(), Some("app"), "web").await.is_none());
    assert!(env.spoke_get(&namespaces(), None, "app").await.is_none());
    assert!(env.spoke_get(&applied_manifest_works(), None, &applied_name).await.is_none());
    eventually("the local copy to go", || async {
        (!env.agent_dir(CLUSTER).join("works/app.json").exists()).then_some(())
    })
    .await;

    agent.stop().await.expect("a clean stop");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_objects_outlive_their_work() {
    let env = Env::start().await;
    let agent = joined_agent(&env, env.options(CLUSTER)).await;

    create_work(
        &env,
        "orphan",
        json!({
            "workload": {"manifests": [config_map("default", "all-kept", json!({"a": "1"}))]},
            "deleteOption": {"propagationPolicy": "Orphan"},
        }),
    )
    .await;
    create_work(
        &env,
        "selective",
        json!({
            "workload": {"manifests": [
                config_map("default", "kept", json!({"a": "1"})),
                config_map("default", "dropped", json!({"a": "1"})),
            ]},
            "deleteOption": {"propagationPolicy": "SelectivelyOrphan", "selectivelyOrphans": {"orphaningRules": [
                identifier("", "configmaps", "default", "kept"),
            ]}},
        }),
    )
    .await;
    applied_and_available(&env, "orphan").await;
    applied_and_available(&env, "selective").await;

    // Orphaned objects never point at the AppliedManifestWork; owned ones do.
    let all_kept = env.spoke_get(&config_maps(), Some("default"), "all-kept").await.unwrap();
    assert!(owner_uids(&all_kept).is_empty());
    let kept = env.spoke_get(&config_maps(), Some("default"), "kept").await.unwrap();
    assert!(owner_uids(&kept).is_empty());
    let dropped = env.spoke_get(&config_maps(), Some("default"), "dropped").await.unwrap();
    assert_eq!(owner_uids(&dropped).len(), 1);

    env.works(CLUSTER).delete("orphan", &DeleteParams::default()).await.unwrap();
    env.works(CLUSTER).delete("selective", &DeleteParams::default()).await.unwrap();
    work_gone(&env, "orphan").await;
    work_gone(&env, "selective").await;
    assert!(env.spoke_get(&config_maps(), Some("default"), "dropped").await.is_none());
    // The spoke's garbage collector has nothing to hold against the orphans either.
    assert!(env.spoke_get(&applied_manifest_works(), None, &env.applied_name("selective")).await.is_none());
    for name in ["all-kept", "kept"] {
        let object = env.spoke_get(&config_maps(), Some("default"), name).await.expect("an orphan stays");
        assert_eq!(object["data"]["a"], "1");
        assert!(owner_uids(&object).is_empty());
    }

    agent.stop().await.expect("a clean stop");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_only_and_read_only() {
    let env = Env::start().await;
    // A deployment someone else runs, for the read-only manifest to report on.
    let existing: DynamicObject = serde_json::from_value(deployment("default", "theirs", 3, "nginx")).unwrap();
    env.spoke_api(&deployments(), Some("default")).create(&PostParams::default(), &existing).await.unwrap();
    let agent = joined_agent(&env, env.options(CLUSTER)).await;

    let manifests = vec![
        config_map("default", "seed", json!({"a": "1"})),
        deployment("default", "theirs", 1, "ignored"),
        config_map("default", "absent", json!({"a": "1"})),
    ];
    let configs = json!([
        {"resourceIdentifier": identifier("", "configmaps", "default", "seed"), "updateStrategy": {"type": "CreateOnly"}},
        {"resourceIdentifier": identifier("apps", "deployments", "default", "theirs"), "updateStrategy": {"type": "ReadOnly"},
            "feedbackRules": [{"type": "WellKnownStatus"}, {"type": "JSONPaths", "jsonPaths": [{"name": "image", "path": ".spec.template.spec.containers[0].image"}]}]},
        {"resourceIdentifier": identifier("", "configmaps", "default", "absent"), "updateStrategy": {"type": "ReadOnly"}},
    ]);
    create_work(
        &env,
        "modes",
        json!({"workload": {"manifests": manifests.clone()}, "manifestConfigs": configs.clone()}),
    )
    .await;

    // ReadOnly: never created, and feedback read from the object that exists.
    let work = eventually("feedback from the read-only deployment", || async {
        let work = env.work(CLUSTER, "modes").await?;
        let values = manifest_status(&work, 1).pointer("/statusFeedback/values")?.as_array()?.clone();
        values
            .contains(&json!({"name": "ReadyReplicas", "fieldValue": {"type": "Integer", "integer": 3}}))
            .then_some(work)
    })
    .await;
    let theirs = manifest_status(&work, 1);
    assert!(
        theirs["statusFeedback"]["values"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "image", "fieldValue": {"type": "String", "string": "nginx"}}))
    );
    assert_eq!(condition(&theirs["conditions"], "StatusFeedbackSynced").unwrap()["status"], "True");
    let absent = manifest_status(&work, 2);
    assert_eq!(condition(&absent["conditions"], "Available").unwrap()["reason"], "ResourceNotAvailable");
    assert!(env.spoke_get(&config_maps(), Some("default"), "absent").await.is_none());
    let theirs = env.spoke_get(&deployments(), Some("default"), "theirs").await.unwrap();
    assert_eq!(theirs["spec"]["replicas"], 3, "read-only is never written");
    assert!(owner_uids(&theirs).is_empty());

    // CreateOnly: created once; an edit on the spoke stays, even across later passes.
    let seed = env.spoke_get(&config_maps(), Some("default"), "seed").await.unwrap();
    assert_eq!(seed["data"]["a"], "1");
    let patch = json!({"data": {"a": "edited"}});
    env.spoke_api(&config_maps(), Some("default"))
        .patch("seed", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    // A change to the work makes the agent apply it again; the new manifest shows when.
    let mut more = manifests.clone();
    more.push(config_map("default", "marker", json!({"a": "1"})));
    set_spec(&env, "modes", json!({"workload": {"manifests": more}, "manifestConfigs": configs})).await;
    eventually("the marker", || async { env.spoke_get(&config_maps(), Some("default"), "marker").await }).await;
    let seed = env.spoke_get(&config_maps(), Some("default"), "seed").await.unwrap();
    assert_eq!(seed["data"]["a"], "edited", "CreateOnly does not overwrite");
    // Deleted on the spoke: created again (OCM's CreateOnly creates whatever is missing).
    env.spoke_api(&config_maps(), Some("default")).delete("seed", &DeleteParams::default()).await.unwrap();
    let seed = eventually("the recreated seed", || async {
        let seed = env.spoke_get(&config_maps(), Some("default"), "seed").await?;
        (seed["data"]["a"] == "1").then_some(seed)
    })
    .await;
    assert_eq!(owner_uids(&seed).len(), 1);

    // Deleting the work never deletes what it only read.
    env.works(CLUSTER).delete("modes", &DeleteParams::default()).await.unwrap();
    work_gone(&env, "modes").await;
    assert!(env.spoke_get(&config_maps(), Some("default"), "seed").await.is_none());
    let theirs = env.spoke_get(&deployments(), Some("default"), "theirs").await.expect("read-only objects stay");
    assert_eq!(theirs["spec"]["replicas"], 3);

    agent.stop().await.expect("a clean stop");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_ignores_fields_and_reports_conflicts() {
    let env = Env::start().await;
    // Another field manager owns data.key of "contested".
    let theirs = config_map("default", "contested", json!({"key": "theirs"}));
    env.spoke_api(&config_maps(), Some("default"))
        .patch("contested", &PatchParams::apply("other-manager"), &Patch::Apply(&theirs))
        .await
        .unwrap();
    let agent = joined_agent(&env, env.options(CLUSTER)).await;

    let ssa = |force: bool, ignore: bool| {
        let mut strategy = json!({"type": "ServerSideApply", "serverSideApply": {"force": force}});
        if ignore {
            strategy["serverSideApply"]["ignoreFields"] =
                json!([{"condition": "OnSpokePresent", "jsonPaths": [".spec.replicas"]}]);
        }
        strategy
    };
    let spec = |image: &str, force: bool| {
        json!({
            "workload": {"manifests": [
                deployment("default", "scaled", 2, image),
                config_map("default", "contested", json!({"key": "ours"})),
            ]},
            "manifestConfigs": [
                {"resourceIdentifier": identifier("apps", "deployments", "default", "scaled"), "updateStrategy": ssa(false, true)},
                {"resourceIdentifier": identifier("", "configmaps", "default", "contested"), "updateStrategy": ssa(force, false)},
            ],
        })
    };
    create_work(&env, "ssa", spec("nginx:1.25", false)).await;

    // The conflict fails that manifest only, naming the other manager.
    let work = eventually("the apply conflict", || async {
        let work = env.work(CLUSTER, "ssa").await?;
        let applied = condition(&manifest_status(&work, 1)["conditions"], "Applied")?.clone();
        (applied["reason"] == "ApplyConflict").then_some(work)
    })
    .await;
    let contested = manifest_status(&work, 1);
    let applied = condition(&contested["conditions"], "Applied").unwrap();
    assert_eq!(applied["status"], "False");
    let message = applied["message"].as_str().unwrap();
    assert!(message.contains("other-manager") && message.contains(".data.key"), "{message}");
    assert_eq!(condition(&work["status"]["conditions"], "Applied").unwrap()["status"], "False");
    assert_eq!(env.spoke_get(&config_maps(), Some("default"), "contested").await.unwrap()["data"]["key"], "theirs");
    let scaled = manifest_status(&work, 0);
    assert_eq!(condition(&scaled["conditions"], "Applied").unwrap()["status"], "True", "{scaled}");

    // The deployment was applied by work-agent, with the hash of the applied config.
    let scaled = env.spoke_get(&deployments(), Some("default"), "scaled").await.unwrap();
    assert_eq!(scaled["spec"]["replicas"], 2, "the ignored field is set on creation");
    assert!(scaled["metadata"]["annotations"]["open-cluster-management.io/config-spec-hash"].is_string());
    let managers: Vec<&str> =
        scaled["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|m| m["manager"].as_str()).collect();
    assert!(managers.contains(&"work-agent"), "{managers:?}");

    // Scaled on the spoke: the ignored field keeps the spoke's value, even when the work
    // changes and is applied again.
    let patch = json!({"spec": {"replicas": 5}});
    env.spoke_api(&deployments(), Some("default"))
        .patch("scaled", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    set_spec(&env, "ssa", spec("nginx:1.26", false)).await;
    let scaled = eventually("the new image", || async {
        let scaled = env.spoke_get(&deployments(), Some("default"), "scaled").await?;
        (scaled["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26").then_some(scaled)
    })
    .await;
    assert_eq!(scaled["spec"]["replicas"], 5);

    // With force, the work wins the conflict.
    set_spec(&env, "ssa", spec("nginx:1.26", true)).await;
    eventually("the forced apply", || async {
        let cm = env.spoke_get(&config_maps(), Some("default"), "contested").await?;
        (cm["data"]["key"] == "ours").then_some(())
    })
    .await;
    let work = applied_and_available(&env, "ssa").await;
    assert_eq!(
        condition(&manifest_status(&work, 1)["conditions"], "Applied").unwrap()["reason"],
        "AppliedManifestComplete"
    );
    let scaled = env.spoke_get(&deployments(), Some("default"), "scaled").await.unwrap();
    assert_eq!(scaled["spec"]["replicas"], 5);

    agent.stop().await.expect("a clean stop");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired_cheaply_and_an_unknown_kind_fails_alone() {
    let env = Env::start().await;
    let agent = joined_agent(&env, env.options(CLUSTER)).await;
    let widget =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}});
    let manifests =
        vec![config_map("default", "drift", json!({"a": "1"})), deployment("default", "drift-web", 1, "nginx"), widget];
    create_work(&env, "drift", json!({"workload": {"manifests": manifests.clone()}})).await;

    let work = eventually("the work's status", || async {
        let work = env.work(CLUSTER, "drift").await?;
        has(&work["status"]["conditions"], "Applied", "False").then_some(work)
    })
    .await;
    let widget = condition(&manifest_status(&work, 2)["conditions"], "Applied").unwrap().clone();
    assert_eq!(widget["reason"], "AppliedManifestFailed");
    assert!(widget["message"].as_str().unwrap().contains("doesn't have a resource type \"Widget\""), "{widget}");
    assert_eq!(condition(&work["status"]["conditions"], "Applied").unwrap()["reason"], "AppliedManifestWorkFailed");
    for ordinal in [0, 1] {
        assert_eq!(condition(&manifest_status(&work, ordinal)["conditions"], "Applied").unwrap()["status"], "True");
    }
    let cm = env.spoke_get(&config_maps(), Some("default"), "drift").await.unwrap();
    let original_uid =
        env.spoke_get(&deployments(), Some("default"), "drift-web").await.unwrap()["metadata"]["uid"].clone();

    // Nothing changed: several resyncs later (a work change makes sure passes ran), the
    // configmap has not been written again.
    let mut more = manifests.clone();
    more.push(config_map("default", "marker", json!({})));
    set_spec(&env, "drift", json!({"workload": {"manifests": more}})).await;
    eventually("the marker", || async { env.spoke_get(&config_maps(), Some("default"), "marker").await }).await;
    eventually("another status report", || async {
        let work = env.work(CLUSTER, "drift").await?;
        (work["status"]["resourceStatus"]["manifests"].as_array()?.len() == 4).then_some(())
    })
    .await;
    let same = env.spoke_get(&config_maps(), Some("default"), "drift").await.unwrap();
    assert_eq!(same["metadata"]["resourceVersion"], cm["metadata"]["resourceVersion"], "no write without a change");

    // Edited on the spoke: put back.
    let patch = json!({"data": {"a": "tampered", "extra": "x"}});
    env.spoke_api(&config_maps(), Some("default"))
        .patch("drift", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually("the edit undone", || async {
        let cm = env.spoke_get(&config_maps(), Some("default"), "drift").await?;
        (cm["data"] == json!({"a": "1"})).then_some(())
    })
    .await;

    // Deleted on the spoke: created again and recorded under its new UID.
    env.spoke_api(&deployments(), Some("default")).delete("drift-web", &DeleteParams::default()).await.unwrap();
    let recreated = eventually("the deployment recreated", || async {
        let d = env.spoke_get(&deployments(), Some("default"), "drift-web").await?;
        (d["metadata"]["uid"] != original_uid).then_some(d)
    })
    .await;
    eventually("the new UID recorded", || async {
        let applied = env.spoke_get(&applied_manifest_works(), None, &env.applied_name("drift")).await?;
        let resources = applied.pointer("/status/appliedResources")?.as_array()?.clone();
        resources.iter().any(|r| r["name"] == "drift-web" && r["uid"] == recreated["metadata"]["uid"]).then_some(())
    })
    .await;

    agent.stop().await.expect("a clean stop");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_and_condition_rules_reach_the_hub() {
    let env = Env::start().await;
    let agent = joined_agent(&env, env.options(CLUSTER)).await;
    let mut stuck = deployment("default", "stuck", 1, "nginx");
    stuck["metadata"]["annotations"] = json!({"sim.flotilla.dev/never-ready": "true"});
    let ready_rule = json!([{"condition": "Available", "type": "CEL",
        "celExpressions": ["hasConditions(object.status)", "object.status.readyReplicas == object.spec.replicas"],
        "messageExpression": "result ? 'all replicas ready' : 'waiting for replicas'"}]);
    create_work(
        &env,
        "rules",
        json!({
            "workload": {"manifests": [deployment("default", "ready", 2, "nginx"), stuck, job("default", "once")]},
            "manifestConfigs": [
                {"resourceIdentifier": identifier("apps", "deployments", "default", "ready"),
                    "feedbackRules": [{"type": "WellKnownStatus"}, {"type": "JSONPaths", "jsonPaths": [{"name": "wanted", "path": ".spec.replicas"}]}],
                    "conditionRules": ready_rule.clone()},
                {"resourceIdentifier": identifier("apps", "deployments", "default", "stuck"), "conditionRules": ready_rule},
                {"resourceIdentifier": identifier("batch", "jobs", "default", "once"),
                    "conditionRules": [{"condition": "Complete", "type": "WellKnownConditions"}]},
            ],
        }),
    )
    .await;

    let work = eventually("feedback, rule conditions and completion", || async {
        let work = env.work(CLUSTER, "rules").await?;
        let ready = manifest_status(&work, 0);
        let values = ready.pointer("/statusFeedback/values")?.as_array()?.clone();
        let done = values.contains(&json!({"name": "ReadyReplicas", "fieldValue": {"type": "Integer", "integer": 2}}))
            && has(&ready["conditions"], "Available", "True")
            && has(&work["status"]["conditions"], "Complete", "True");
        done.then_some(work)
    })
    .await;
    let ready = manifest_status(&work, 0);
    assert!(
        ready["statusFeedback"]["values"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "wanted", "fieldValue": {"type": "Integer", "integer": 2}}))
    );
    let available = condition(&ready["conditions"], "Available").unwrap();
    assert_eq!(available["reason"], "ConditionRuleEvaluated");
    assert_eq!(available["message"], "all replicas ready");
    let stuck = condition(&manifest_status(&work, 1)["conditions"], "Available").unwrap().clone();
    assert_eq!((stuck["status"].as_str(), stuck["message"].as_str()), (Some("False"), Some("waiting for replicas")));
    assert_eq!(
        condition(&manifest_status(&work, 2)["conditions"], "Complete").unwrap()["reason"],
        "ConditionRuleEvaluated"
    );
    // Work level: aggregated, reason ConditionRulesAggregated; one False manifest wins.
    let conditions = &work["status"]["conditions"];
    let available = condition(conditions, "Available").unwrap();
    assert_eq!(
        (available["status"].as_str(), available["reason"].as_str()),
        (Some("False"), Some("ConditionRulesAggregated"))
    );
    let complete = condition(conditions, "Complete").unwrap();
    assert_eq!(complete["reason"], "ConditionRulesAggregated");
    assert_eq!(complete["message"], "Job is finished", "a lone contributor's message is kept");

    // Complete: the job is no longer updated, whatever the work now says.
    let job_before = env.spoke_get(&jobs(), Some("default"), "once").await.unwrap();
    let mut spec = work["spec"].clone();
    spec["workload"]["manifests"][2]["metadata"]["labels"] = json!({"changed": "yes"});
    set_spec(&env, "rules", spec).await;
    let generation = env.work(CLUSTER, "rules").await.unwrap()["metadata"]["generation"].clone();
    eventually("the new generation reported", || async {
        let work = env.work(CLUSTER, "rules").await?;
        (condition(&work["status"]["conditions"], "Applied")?["observedGeneration"] == generation).then_some(())
    })
    .await;
    let job_after = env.spoke_get(&jobs(), Some("default"), "once").await.unwrap();
    assert!(job_after["metadata"].get("labels").is_none_or(|l| l.get("changed").is_none()));
    assert_eq!(job_after["metadata"]["uid"], job_before["metadata"]["uid"]);

    agent.stop().await.expect("a clean stop");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicts_applied_works_whose_work_is_gone_after_the_grace() {
    let env = Env::start().await;
    let mut opts = env.options(CLUSTER);
    opts.applied_work_eviction_grace = Duration::from_secs(4);
    let agent = joined_agent(&env, opts.clone()).await;
    create_work(&env, "gone", json!({"workload": {"manifests": [config_map("default", "gone", json!({"a": "1"}))]}}))
        .await;
    create_work(&env, "back", json!({"workload": {"manifests": [config_map("default", "back", json!({"a": "1"}))]}}))
        .await;
    applied_and_available(&env, "gone").await;
    applied_and_available(&env, "back").await;
    agent.stop().await.expect("a clean stop");

    // While the agent is down, both works vanish from the hub without it (finalizer removed).
    for name in ["gone", "back"] {
        let patch = json!({"metadata": {"finalizers": null}});
        env.works(CLUSTER).patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        env.works(CLUSTER).delete(name, &DeleteParams::default()).await.unwrap();
        work_gone(&env, name).await;
    }
    // A leftover of this agent under another hub URL (another hub hash), owning a configmap.
    let record: AgentRecord =
        serde_json::from_str(&std::fs::read_to_string(env.agent_dir(CLUSTER).join(AGENT_JSON)).unwrap()).unwrap();
    let foreign: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "AppliedManifestWork",
        "metadata": {"name": "0123abcd-old", "labels": {"flotilla.dev/agent-id": record.agent_id},
            "finalizers": ["cluster.open-cluster-management.io/applied-manifest-work-cleanup"]},
        "spec": {"hubHash": "0123abcd", "agentID": record.agent_id, "manifestWorkName": "old"},
    }))
    .unwrap();
    let foreign =
        env.spoke_api(&applied_manifest_works(), None).create(&PostParams::default(), &foreign).await.unwrap();
    let mut left = config_map("default", "left-over", json!({"a": "1"}));
    left["metadata"]["ownerReferences"] = json!([{"apiVersion": "work.open-cluster-management.io/v1",
        "kind": "AppliedManifestWork", "name": "0123abcd-old", "uid": foreign.metadata.uid}]);
    let left: DynamicObject = serde_json::from_value(left).unwrap();
    let left = env.spoke_api(&config_maps(), Some("default")).create(&PostParams::default(), &left).await.unwrap();
    let status = json!({"status": {"appliedResources": [{"group": "", "version": "v1", "resource": "configmaps",
        "namespace": "default", "name": "left-over", "uid": left.metadata.uid}]}});
    env.spoke_api(&applied_manifest_works(), None)
        .patch_status("0123abcd-old", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    opts.token = None;
    let agent = RunningAgent::start(opts);

    // Once the hub has answered, the eviction clock starts...
    for name in ["gone", "back"] {
        eventually("the eviction start", || async {
            let applied = env.spoke_get(&applied_manifest_works(), None, &env.applied_name(name)).await?;
            applied.pointer("/status/evictionStartTime")?.as_str().map(|_| ())
        })
        .await;
    }
    // ...and stops for a work that comes back.
    create_work(&env, "back", json!({"workload": {"manifests": [config_map("default", "back", json!({"a": "1"}))]}}))
        .await;
    eventually("the eviction cancelled", || async {
        let applied = env.spoke_get(&applied_manifest_works(), None, &env.applied_name("back")).await?;
        applied.pointer("/status/evictionStartTime").is_none_or(Value::is_null).then_some(())
    })
    .await;

    // After the grace, the AppliedManifestWork and what it applied are gone.
    eventually("the eviction", || async {
        let applied = env.spoke_get(&applied_manifest_works(), None, &env.applied_name("gone")).await;
        let cm = env.spoke_get(&config_maps(), Some("default"), "gone").await;
        (applied.is_none() && cm.is_none()).then_some(())
    })
    .await;
    assert!(!env.agent_dir(CLUSTER).join("works/gone.json").exists());
    eventually("the other hub's leftovers evicted", || async {
        let applied = env.spoke_get(&applied_manifest_works(), None, "0123abcd-old").await;
        let cm = env.spoke_get(&config_maps(), Some("default"), "left-over").await;
        (applied.is_none() && cm.is_none()).then_some(())
    })
    .await;
    let back = env.spoke_get(&config_maps(), Some("default"), "back").await.expect("the returned work's object stays");
    assert_eq!(back["data"]["a"], "1");
    assert!(env.spoke_get(&applied_manifest_works(), None, &env.applied_name("back")).await.is_some());

    agent.stop().await.expect("a clean stop");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_working_from_local_copies_while_the_hub_is_down() {
    let mut env = Env::start().await;
    let mut opts = env.options(CLUSTER);
    // Even a zero-ish grace must not evict anything because the hub is away.
    opts.applied_work_eviction_grace = Duration::from_millis(1);
    let agent = joined_agent(&env, opts.clone()).await;
    create_work(
        &env,
        "steady",
        json!({"workload": {"manifests": [config_map("default", "steady", json!({"a": "1"}))]}}),
    )
    .await;
    applied_and_available(&env, "steady").await;

    env.stop_hub().await;
    // Drift is still repaired.
    let patch = json!({"data": {"a": "tampered"}});
    env.spoke_api(&config_maps(), Some("default"))
        .patch("steady", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually("repair without the hub", || async {
        let cm = env.spoke_get(&config_maps(), Some("default"), "steady").await?;
        (cm["data"]["a"] == "1").then_some(())
    })
    .await;

    // A restarted agent goes on from its local copy while the hub is still down.
    agent.stop().await.expect("a clean stop");
    opts.token = None;
    let agent = RunningAgent::start(opts);
    env.spoke_api(&config_maps(), Some("default")).delete("steady", &DeleteParams::default()).await.unwrap();
    eventually("recreation without the hub", || async {
        env.spoke_get(&config_maps(), Some("default"), "steady").await
    })
    .await;
    let applied = env.spoke_get(&applied_manifest_works(), None, &env.applied_name("steady")).await.unwrap();
    assert!(applied.pointer("/status/evictionStartTime").is_none_or(Value::is_null), "no eviction without the hub");

    // The hub comes back: status is reported again, nothing was lost.
    env.restart_hub().await;
    let patch = json!({"data": {"a": "tampered-again"}});
    env.spoke_api(&config_maps(), Some("default"))
        .patch("steady", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually("repair with the hub back", || async {
        let cm = env.spoke_get(&config_maps(), Some("default"), "steady").await?;
        (cm["data"]["a"] == "1").then_some(())
    })
    .await;
    applied_and_available(&env, "steady").await;
    assert!(env.spoke_get(&applied_manifest_works(), None, &env.applied_name("steady")).await.is_some());

    agent.stop().await.expect("a clean stop");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_rules_fail_alone_and_the_manifests_are_still_applied() {
    let env = Env::start().await;
    let agent = joined_agent(&env, env.options(CLUSTER)).await;
    // `==` with nothing after it makes the CEL parser panic (caught: a syntax error); the other
    // expression gets the parser's own report, line and column included.
    let truncated = "object.status.readyReplicas ==";
    let unparsable = "object.status.readyReplicas == object.(";
    let parser_error = match cel_interpreter::Program::compile(unparsable) {
        Ok(_) => panic!("{unparsable:?} parses"),
        Err(e) => e.to_string(),
    };
    assert!(parser_error.starts_with("ERROR: <input>:1:"), "{parser_error}");
    let broken_path = ".status.conditions[?(@.type==";
    let path_error = path_error(broken_path);
    let good_rule = json!({"condition": "Ready", "type": "CEL", "celExpressions": ["object.status.readyReplicas == object.spec.replicas"]});
    let spec = |ready: &str, healthy: &str, path: &str| {
        json!({
            "workload": {"manifests": [
                config_map("default", "rules-cm", json!({"a": "1"})),
                deployment("default", "broken", 1, "nginx"),
                deployment("default", "fine", 1, "nginx"),
            ]},
            "manifestConfigs": [
                {"resourceIdentifier": identifier("apps", "deployments", "default", "broken"),
                    "conditionRules": [
                        {"condition": "Ready", "type": "CEL", "celExpressions": [ready]},
                        {"condition": "Healthy", "type": "CEL", "celExpressions": [healthy]},
                    ],
                    "feedbackRules": [{"type": "JSONPaths", "jsonPaths": [
                        {"name": "broken", "path": path},
                        {"name": "wanted", "path": ".spec.replicas"},
                    ]}]},
                {"resourceIdentifier": identifier("apps", "deployments", "default", "fine"),
                    "conditionRules": [good_rule.clone()],
                    "feedbackRules": [{"type": "WellKnownStatus"}]},
            ],
        })
    };
    create_work(&env, "broken-rules", spec(truncated, unparsable, broken_path)).await;

    let work = eventually("the broken rules reported", || async {
        let work = env.work(CLUSTER, "broken-rules").await?;
        let broken = manifest_status(&work, 1);
        let fine = manifest_status(&work, 2);
        let reported = has(&broken["conditions"], "Ready", "False")
            && has(&broken["conditions"], "Healthy", "False")
            && has(&broken["conditions"], "StatusFeedbackSynced", "False")
            && has(&fine["conditions"], "Ready", "True")
            && has(&work["status"]["conditions"], "Applied", "True");
        reported.then_some(work)
    })
    .await;

    // Every manifest is applied: the rules only report.
    for ordinal in [0, 1, 2] {
        let applied = condition(&manifest_status(&work, ordinal)["conditions"], "Applied").unwrap().clone();
        assert_eq!(
            (applied["status"].as_str(), applied["reason"].as_str()),
            (Some("True"), Some("AppliedManifestComplete")),
            "{applied}"
        );
    }
    assert!(env.spoke_get(&config_maps(), Some("default"), "rules-cm").await.is_some());
    assert!(env.spoke_get(&deployments(), Some("default"), "broken").await.is_some());
    assert!(env.spoke_get(&deployments(), Some("default"), "fine").await.is_some());

    // The broken deployment: each bad expression is a False rule condition carrying the error.
    let broken = manifest_status(&work, 1);
    let ready = condition(&broken["conditions"], "Ready").unwrap();
    assert_eq!(ready["reason"], "ConditionRuleExpressionError");
    assert_eq!(ready["message"], format!("ERROR: <input>: Syntax error: cannot parse {truncated:?}"));
    let healthy = condition(&broken["conditions"], "Healthy").unwrap();
    assert_eq!(healthy["reason"], "ConditionRuleExpressionError");
    assert_eq!(healthy["message"], parser_error.as_str());
    // The bad path fails alone: its error names it, the good path of the same rule is read.
    let synced = condition(&broken["conditions"], "StatusFeedbackSynced").unwrap();
    assert_eq!(synced["reason"], "StatusFeedbackSyncFailed");
    assert_eq!(synced["message"], format!("Sync status feedback failed with error {path_error}"));
    assert_eq!(
        broken["statusFeedback"]["values"],
        json!([{"name": "wanted", "fieldValue": {"type": "Integer", "integer": 1}}])
    );

    // The other deployment's rules and feedback are unaffected.
    let fine = manifest_status(&work, 2);
    assert_eq!(condition(&fine["conditions"], "Ready").unwrap()["reason"], "ConditionRuleEvaluated");
    assert_eq!(condition(&fine["conditions"], "StatusFeedbackSynced").unwrap()["status"], "True");
    // Work level: False wins the aggregation of Ready; Applied stays True.
    let ready = condition(&work["status"]["conditions"], "Ready").unwrap();
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("ConditionRulesAggregated")));

    // The agent is still at work: fixed rules are compiled and evaluated.
    let expression = "object.status.readyReplicas == object.spec.replicas";
    set_spec(&env, "broken-rules", spec(expression, expression, ".status.readyReplicas")).await;
    eventually("the fixed rules evaluated", || async {
        let work = env.work(CLUSTER, "broken-rules").await?;
        let broken = manifest_status(&work, 1);
        let conditions = &broken["conditions"];
        let fixed = ["Ready", "Healthy"].iter().all(|t| {
            condition(conditions, t).is_some_and(|c| c["status"] == "True" && c["reason"] == "ConditionRuleEvaluated")
        }) && has(conditions, "StatusFeedbackSynced", "True")
            && has(&work["status"]["conditions"], "Ready", "True");
        fixed.then_some(())
    })
    .await;

    agent.stop().await.expect("a clean stop");
    env.stop().await;
}

/// The feedback error the agent reports for the path named `broken`.
fn path_error(path: &str) -> String {
    let message = match flotilla_apimachinery::JsonPath::parse(path) {
        Ok(_) => panic!("{path:?} parses"),
        Err(e) => e,
    };
    format!("failed to parse json path {path} of broken with error: {message}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_work_with_a_ttl_is_deleted_and_its_objects_cleaned_up() {
    let env = Env::start().await;
    let agent = joined_agent(&env, env.options(CLUSTER)).await;
    create_work(
        &env,
        "finished",
        json!({
            "workload": {"manifests": [config_map("default", "finished-cm", json!({})), job("default", "finished")]},
            "deleteOption": {"propagationPolicy": "Foreground", "ttlSecondsAfterFinished": 1},
            "manifestConfigs": [{"resourceIdentifier": identifier("batch", "jobs", "default", "finished"),
                "conditionRules": [{"condition": "Complete", "type": "WellKnownConditions"}]}],
        }),
    )
    .await;
    eventually("the job applied", || async { env.spoke_get(&jobs(), Some("default"), "finished").await }).await;

    // The agent reports Complete, the hub deletes the work after the TTL, and the agent's
    // finalizer removes what it applied before the work goes.
    work_gone(&env, "finished").await;
    eventually("the applied objects removed", || async {
        let cm = env.spoke_get(&config_maps(), Some("default"), "finished-cm").await;
        let job = env.spoke_get(&jobs(), Some("default"), "finished").await;
        let applied = env.spoke_get(&applied_manifest_works(), None, &env.applied_name("finished")).await;
        (cm.is_none() && job.is_none() && applied.is_none()).then_some(())
    })
    .await;

    agent.stop().await.expect("a clean stop");
    env.stop().await;
}
