//! Workload status simulation on a real simulated spoke (TLS on 127.0.0.1), driven with
//! kube-rs: what appears in the status of Deployments, StatefulSets, ReplicaSets,
//! DaemonSets, Jobs and Pods, the `sim.flotilla.dev/*` annotations, scaling, and a restart.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use flotilla_apiserver::host::RunningServer;
use flotilla_spoke::SpokeOptions;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);

async fn start(dir: &Path, ready_delay: Duration) -> (RunningServer, kube::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = flotilla_spoke::start(SpokeOptions {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        name: "sim".into(),
        nodes: 2,
        ready_delay,
    })
    .await
    .expect("start the simulated spoke");
    let kc = kube::config::Kubeconfig::read_from(flotilla_spoke::kubeconfig_path(dir)).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kube config");
    (server, kube::Client::try_from(config).expect("client"))
}

/// Polls `check` until it returns `Some`, or fails the test with `what`.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The object as JSON once `ready` holds for it.
async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value
where
    K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    eventually(what, || async {
        let obj = api.get(name).await.ok()?;
        let obj = serde_json::to_value(obj).ok()?;
        ready(&obj).then_some(obj)
    })
    .await
}

fn obj<K: DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("object")
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == type_)
}

/// `(status, reason)` of a condition.
fn cond(obj: &Value, type_: &str) -> (String, String) {
    let c = condition(obj, type_);
    let get = |k: &str| c.and_then(|c| c.get(k)).and_then(Value::as_str).unwrap_or_default().to_string();
    (get("status"), get("reason"))
}

fn annotated(mut value: Value, key: &str, val: &str) -> Value {
    value["metadata"]["annotations"] = json!({key: val});
    value
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}},
        },
    })
}

fn job(name: &str) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                 "containers": [{"name": "run", "image": "busybox", "command": ["true"]}]}}},
    })
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    })
}

fn int(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

fn deployment_ready(replicas: i64, generation: i64) -> impl Fn(&Value) -> bool {
    move |d| {
        int(d, "/status/observedGeneration") == Some(generation)
            && int(d, "/status/readyReplicas") == Some(replicas)
            && int(d, "/status/availableReplicas") == Some(replicas)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workloads_get_the_status_a_cluster_would_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (spoke, client) = start(dir.path(), Duration::ZERO).await;
    let pp = PostParams::default();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // A Deployment becomes available, as the deployment controller reports it.
    deployments.create(&pp, &obj(deployment("web", 2))).await.expect("create web");
    let web = wait_for(&deployments, "web", "web ready", deployment_ready(2, 1)).await;
    assert_eq!(int(&web, "/status/replicas"), Some(2));
    assert_eq!(int(&web, "/status/updatedReplicas"), Some(2));
    assert_eq!(cond(&web, "Available"), ("True".into(), "MinimumReplicasAvailable".into()));
    assert_eq!(cond(&web, "Progressing"), ("True".into(), "NewReplicaSetAvailable".into()));
    assert_eq!(web["metadata"]["generation"], 1, "a status write does not bump the generation");
    assert_eq!(web["spec"]["replicas"], 2);
    let managers: Vec<&str> = web["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["subresource"] == "status")
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["kube-controller-manager"]);

    // Scaling (through /scale, as `kubectl scale` does) rolls out the new generation.
    let scale = json!({"spec": {"replicas": 4}});
    deployments.patch_scale("web", &PatchParams::default(), &Patch::Merge(&scale)).await.expect("scale");
    let web = wait_for(&deployments, "web", "web scaled to 4", deployment_ready(4, 2)).await;
    assert_eq!(web["metadata"]["generation"], 2);
    // And so does a spec change by patch.
    let patch = json!({"spec": {"replicas": 1}});
    deployments.patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
    wait_for(&deployments, "web", "web scaled to 1", deployment_ready(1, 3)).await;

    // Never ready: stays unavailable while progressing.
    let stuck = annotated(deployment("stuck", 3), "sim.flotilla.dev/never-ready", "true");
    deployments.create(&pp, &obj(stuck)).await.expect("create stuck");
    let stuck =
        wait_for(&deployments, "stuck", "stuck observed", |d| int(d, "/status/observedGeneration") == Some(1)).await;
    assert_eq!(int(&stuck, "/status/replicas"), Some(3));
    assert_eq!(int(&stuck, "/status/readyReplicas"), Some(0));
    assert_eq!(int(&stuck, "/status/availableReplicas"), Some(0));
    assert_eq!(int(&stuck, "/status/unavailableReplicas"), Some(3));
    assert_eq!(cond(&stuck, "Available"), ("False".into(), "MinimumReplicasUnavailable".into()));
    assert_eq!(cond(&stuck, "Progressing"), ("True".into(), "ReplicaSetUpdated".into()));

    // Jobs complete, fail, or run forever.
    jobs.create(&pp, &obj(job("once"))).await.expect("create job");
    jobs.create(&pp, &obj(annotated(job("broken"), "sim.flotilla.dev/fail", "true"))).await.expect("failing job");
    jobs.create(&pp, &obj(annotated(job("forever"), "sim.flotilla.dev/never-ready", "true"))).await.expect("job");
    let once = wait_for(&jobs, "once", "job complete", |j| cond(j, "Complete").0 == "True").await;
    assert_eq!(int(&once, "/status/succeeded"), Some(1));
    assert_eq!(cond(&once, "Complete").1, "CompletionsReached");
    assert!(once.pointer("/status/startTime").and_then(Value::as_str).is_some(), "{once}");
    assert!(once.pointer("/status/completionTime").and_then(Value::as_str).is_some(), "{once}");
    let broken = wait_for(&jobs, "broken", "job failed", |j| cond(j, "Failed").0 == "True").await;
    assert_eq!(cond(&broken, "Failed").1, "BackoffLimitExceeded");
    assert_eq!(cond(&broken, "Complete").0, "");
    let forever = wait_for(&jobs, "forever", "job started", |j| int(j, "/status/active") == Some(1)).await;
    assert!(forever.pointer("/status/conditions").is_none(), "{forever}");

    // Pods run, finish (restartPolicy Never), fail, or stay pending.
    pods.create(&pp, &obj(pod("server"))).await.expect("pod");
    let mut once_pod = pod("task");
    once_pod["spec"]["restartPolicy"] = json!("Never");
    pods.create(&pp, &obj(once_pod)).await.expect("pod");
    pods.create(&pp, &obj(annotated(pod("crash"), "sim.flotilla.dev/fail", "true"))).await.expect("pod");
    pods.create(&pp, &obj(annotated(pod("waiting"), "sim.flotilla.dev/never-ready", "true"))).await.expect("pod");
    let phase = |phase: &'static str| move |p: &Value| p.pointer("/status/phase") == Some(&json!(phase));
    let server = wait_for(&pods, "server", "pod running", phase("Running")).await;
    assert_eq!(cond(&server, "Ready").0, "True");
    assert_eq!(server["status"]["containerStatuses"][0]["ready"], true);
    assert!(server["status"]["podIP"].as_str().is_some(), "{server}");
    wait_for(&pods, "task", "pod succeeded", phase("Succeeded")).await;
    wait_for(&pods, "crash", "pod failed", phase("Failed")).await;
    let waiting = wait_for(&pods, "waiting", "pod pending", phase("Pending")).await;
    assert_eq!(cond(&waiting, "Ready"), ("False".into(), "ContainersNotReady".into()));

    // StatefulSets, ReplicaSets and DaemonSets (one pod per Node).
    let mut sts = deployment("db", 3);
    sts["apiVersion"] = json!("apps/v1");
    sts["kind"] = json!("StatefulSet");
    sts["spec"]["serviceName"] = json!("db");
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    statefulsets.create(&pp, &obj(sts.clone())).await.expect("statefulset");
    let db = wait_for(&statefulsets, "db", "statefulset ready", |s| int(s, "/status/readyReplicas") == Some(3)).await;
    assert_eq!(int(&db, "/status/availableReplicas"), Some(3));
    assert_eq!(db["status"]["currentRevision"], db["status"]["updateRevision"]);
    let mut rs = deployment("rs", 2);
    rs["kind"] = json!("ReplicaSet");
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    replicasets.create(&pp, &obj(rs)).await.expect("replicaset");
    wait_for(&replicasets, "rs", "replicaset ready", |r| int(r, "/status/availableReplicas") == Some(2)).await;
    let mut ds = deployment("agent", 1);
    ds["kind"] = json!("DaemonSet");
    if let Some(spec) = ds["spec"].as_object_mut() {
        spec.remove("replicas");
    }
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    daemonsets.create(&pp, &obj(ds)).await.expect("daemonset");
    let agent = wait_for(&daemonsets, "agent", "daemonset ready", |d| int(d, "/status/numberReady") == Some(2)).await;
    for field in ["desiredNumberScheduled", "numberAvailable", "updatedNumberScheduled", "currentNumberScheduled"] {
        assert_eq!(int(&agent, &format!("/status/{field}")), Some(2), "{field}: {agent}");
    }
    // A third Node: the DaemonSet follows.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    nodes
        .create(&pp, &obj(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "sim-node-9"}})))
        .await
        .expect("node");
    wait_for(&daemonsets, "agent", "daemonset on 3 nodes", |d| int(d, "/status/numberReady") == Some(3)).await;

    // Anything else is left alone.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = configmaps.create(&pp, &obj(json!({"metadata": {"name": "cfg"}, "data": {"a": "b"}}))).await.expect("cm");
    assert_eq!(configmaps.get("cfg").await.expect("cm").metadata.resource_version, cm.metadata.resource_version);

    // The never-ready objects still are, after everything else settled.
    let stuck = serde_json::to_value(deployments.get("stuck").await.expect("stuck")).expect("json");
    assert_eq!(int(&stuck, "/status/readyReplicas"), Some(0));
    let waiting = serde_json::to_value(pods.get("waiting").await.expect("waiting")).expect("json");
    assert_eq!(waiting["status"]["phase"], "Pending");
    let forever = serde_json::to_value(jobs.get("forever").await.expect("forever")).expect("json");
    assert_eq!(int(&forever, "/status/active"), Some(1));
    spoke.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_wait_their_delay_and_a_restart_finishes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pp = PostParams::default();
    // An hour: nothing becomes ready while this spoke runs, except what asks for less.
    let (spoke, client) = start(dir.path(), Duration::from_secs(3600)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    deployments.create(&pp, &obj(deployment("slow", 2))).await.expect("deployment");
    jobs.create(&pp, &obj(job("slow-job"))).await.expect("job");
    pods.create(&pp, &obj(pod("slow-pod"))).await.expect("pod");
    let quick = annotated(deployment("quick", 1), "sim.flotilla.dev/ready-after-seconds", "0");
    deployments.create(&pp, &obj(quick)).await.expect("quick");

    let quick = wait_for(&deployments, "quick", "the annotation's delay", deployment_ready(1, 1)).await;
    let quick_version = quick["metadata"]["resourceVersion"].clone();
    let slow =
        wait_for(&deployments, "slow", "slow rolling out", |d| int(d, "/status/observedGeneration") == Some(1)).await;
    assert_eq!(int(&slow, "/status/readyReplicas"), Some(0));
    assert_eq!(cond(&slow, "Progressing"), ("True".into(), "ReplicaSetUpdated".into()));
    assert_eq!(cond(&slow, "Available").0, "False");
    let job = wait_for(&jobs, "slow-job", "job active", |j| int(j, "/status/active") == Some(1)).await;
    let started = job["status"]["startTime"].clone();
    assert!(started.is_string(), "{job}");
    wait_for(&pods, "slow-pod", "pod pending", |p| p.pointer("/status/phase") == Some(&json!("Pending"))).await;
    spoke.shutdown().await;

    // Started again with no delay, the spoke finishes what it had stored.
    let (spoke, client) = start(dir.path(), Duration::ZERO).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let slow = wait_for(&deployments, "slow", "slow ready after restart", deployment_ready(2, 1)).await;
    assert_eq!(cond(&slow, "Available"), ("True".into(), "MinimumReplicasAvailable".into()));
    let job = wait_for(&jobs, "slow-job", "job complete", |j| cond(j, "Complete").0 == "True").await;
    assert_eq!(job["status"]["startTime"], started, "the start time is kept");
    wait_for(&pods, "slow-pod", "pod running", |p| p.pointer("/status/phase") == Some(&json!("Running"))).await;
    // What was ready stays as it was: not even rewritten (the simulator reconciles `quick`
    // before `slow`, so it has seen it by now).
    let quick = serde_json::to_value(deployments.get("quick").await.expect("quick")).expect("json");
    assert_eq!(quick["metadata"]["resourceVersion"], quick_version);
    spoke.shutdown().await;
}
