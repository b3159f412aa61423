//! An agent given two hub replicas on one etcd cluster (`--hub-url A --hub-url B`): the
//! replica it is connected to is killed in the middle of a stream of work changes. The agent
//! moves to the other replica without joining again (same ManagedCluster, no new CSR) and
//! without listing its works again (its watch resumes from its resourceVersion), no
//! acknowledged write is lost, and the spoke converges on every work without recreating
//! anything. Later in the stream one of the three etcd members is killed too, and the writes
//! and the spoke go on.

use std::time::{Duration, Instant};

use flotilla_agent::work::manifest_works;
use flotilla_store::etcd_testing::EtcdCluster;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};

use crate::common::{Process, Server, eventually};
use crate::hub_ha::{Replica, start_replica_with};
use crate::work::{join_with_token, wait_applied};

const DEADLINE: Duration = Duration::from_secs(90);
const CLUSTER: &str = "edge";
const WORKS: [&str; 3] = ["web", "api", "jobs"];
/// Generations written per work; the replica the agent uses is killed at `KILL_AT`.
const LAST: u32 = 16;
const KILL_AT: u32 = 8;
/// The generation at which one etcd member is killed as well.
const KILL_ETCD_MEMBER_AT: u32 = 12;

fn join(via: &Replica, urls: &[String], spoke: &Server, dir: &std::path::Path) -> Process {
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    join_with_token(&via.flotilla(&["token", "create", "--ttl", "10m"]), &urls, spoke, dir, CLUSTER)
}

fn get_json(replica: &Replica, args: &[&str]) -> Option<Value> {
    let out = replica.kubectl(args);
    out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
}

fn available(replica: &Replica) -> bool {
    get_json(replica, &["get", "managedcluster", CLUSTER, "-o", "json"])
        .and_then(|mc| {
            mc.pointer("/status/conditions")?
                .as_array()?
                .iter()
                .find(|c| c["type"] == "ManagedClusterConditionAvailable")
                .map(|c| c["status"] == "True")
        })
        .unwrap_or(false)
}

/// The ManagedCluster's uid and the names of the CSRs of the cluster.
fn registration(replica: &Replica) -> (String, Vec<String>) {
    let mc = get_json(replica, &["get", "managedcluster", CLUSTER, "-o", "json"]).expect("the ManagedCluster");
    let uid = mc["metadata"]["uid"].as_str().expect("uid").to_string();
    let selector = format!("open-cluster-management.io/cluster-name={CLUSTER}");
    let csrs = get_json(replica, &["get", "csr", "-l", &selector, "-o", "json"]).expect("CSRs");
    let mut names: Vec<String> = csrs["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    (uid, names)
}

fn work(name: &str, generation: u32) -> DynamicObject {
    let object = json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": name},
        "spec": {"workload": {"manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": format!("{name}-config"), "namespace": "default"},
             "data": {"generation": generation.to_string()}},
        ]}},
    });
    serde_json::from_value(object).expect("a ManifestWork")
}

/// One attempt at creating or replacing a work.
async fn try_put(works: &Api<DynamicObject>, name: &str, generation: u32) -> Result<(), kube::Error> {
    let mut desired = work(name, generation);
    match works.get_opt(name).await? {
        Some(current) => {
            desired.metadata.resource_version = current.metadata.resource_version;
            works.replace(name, &PostParams::default(), &desired).await.map(|_| ())
        }
        None => works.create(&PostParams::default(), &desired).await.map(|_| ()),
    }
}

/// Writes through `first`, else through `second` once `first` fails; retries until one
/// acknowledges the write.
async fn put(first: &Api<DynamicObject>, second: &Api<DynamicObject>, name: &str, generation: u32) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let Err(e) = try_put(first, name, generation).await else { return };
        let Err(e2) = try_put(second, name, generation).await else { return };
        assert!(Instant::now() < deadline, "cannot write work {name} at generation {generation}: {e}; {e2}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spoke_generation(spoke: &Server, name: &str) -> Option<(String, String)> {
    let out = spoke.kubectl(&["get", "configmap", &format!("{name}-config"), "-n", "default", "-o", "json"]);
    let cm: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((cm["data"]["generation"].as_str()?.to_string(), cm["metadata"]["uid"].as_str()?.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fails_over_between_hub_replicas_without_rejoining_or_relisting() {
    let mut etcd = EtcdCluster::start(3).await.unwrap_or_else(|e| panic!("starting etcd: {e}"));
    let endpoints = etcd.endpoints().join(",");
    let root = tempfile::tempdir().expect("tempdir");
    let accept_all = |c: &mut Value| c["autoAccept"] = json!(["*"]);
    let mut a = start_replica_with(root.path(), "a", &endpoints, accept_all);
    let b = start_replica_with(root.path(), "b", &endpoints, accept_all);
    let spoke = Server::spoke();
    let agent_dir = root.path().join("agent");
    // a first: the agent starts on a.
    let agent = join(&a, &[a.url(), b.url()], &spoke, &agent_dir);
    eventually(DEADLINE, || available(&b).then_some(()))
        .unwrap_or_else(|| panic!("{CLUSTER} never became Available; agent log:\n{}", agent.log()));
    let agent_json = std::fs::read_to_string(agent_dir.join("agent.json")).expect("agent.json");
    let (mc_uid, csrs) = registration(&b);
    assert_eq!(csrs.len(), 1, "one CSR to join: {csrs:?}");

    let on_a: Api<DynamicObject> =
        Api::namespaced_with(crate::common::client_for(&a.kubeconfig()).await, CLUSTER, &manifest_works());
    let on_b: Api<DynamicObject> =
        Api::namespaced_with(crate::common::client_for(&b.kubeconfig()).await, CLUSTER, &manifest_works());
    for w in WORKS {
        put(&on_a, &on_b, w, 0).await;
    }
    let mut first_uids = Vec::new();
    for w in WORKS {
        wait_applied(&on_b, w, &agent).await;
        let (_, uid) = spoke_generation(&spoke, w).expect("applied on the spoke");
        first_uids.push(uid);
    }
    assert!(
        !agent.log().contains("does not answer; failing over"),
        "no failover while both replicas run:\n{}",
        agent.log()
    );

    // A stream of changes through a; a is killed half-way and the writes go on through b.
    // A work created after the kill must reach the spoke too.
    let mut killed = None;
    for generation in 1..=LAST {
        if generation == KILL_AT {
            a.process.kill();
            killed = Some(Instant::now());
            put(&on_b, &on_b, "late", generation).await;
        }
        if generation == KILL_ETCD_MEMBER_AT {
            etcd.kill(0);
        }
        for w in WORKS {
            put(&on_a, &on_b, w, generation).await;
        }
    }
    let killed = killed.expect("a was killed");

    // Every acknowledged write is on the survivor.
    for w in WORKS {
        let stored = on_b.get(w).await.unwrap_or_else(|e| panic!("{w} on b: {e}"));
        let generation = stored.data.pointer("/spec/workload/manifests/0/data/generation").and_then(Value::as_str);
        assert_eq!(generation, Some(LAST.to_string().as_str()), "{w}: the last acknowledged write");
    }
    assert!(on_b.get_opt("late").await.expect("read late").is_some(), "the work created after the kill");

    // The spoke converges on all of them, through b, without recreating anything.
    for (w, uid0) in WORKS.iter().zip(&first_uids) {
        wait_applied(&on_b, w, &agent).await;
        let (generation, uid) =
            eventually(DEADLINE, || spoke_generation(&spoke, w).filter(|(g, _)| *g == LAST.to_string()))
                .unwrap_or_else(|| panic!("{w} never reached generation {LAST} on the spoke:\n{}", agent.log()));
        assert_eq!(generation, LAST.to_string());
        assert_eq!(&uid, uid0, "{w}: the ConfigMap was deleted and created again");
    }
    wait_applied(&on_b, "late", &agent).await;
    let converged = killed.elapsed();
    eventually(DEADLINE, || spoke_generation(&spoke, "late")).expect("the late work on the spoke");

    // The agent moved to b, kept its identity, did not list again, and is healthy on b.
    let log = agent.log();
    assert!(log.contains("does not answer; failing over"), "the agent logged its failover:\n{log}");
    assert!(!log.contains("listing again"), "the agent's watch resumed instead of listing again:\n{log}");
    assert!(!log.contains("joining again"), "the agent did not join again:\n{log}");
    let (mc_uid_after, csrs_after) = registration(&b);
    assert_eq!(mc_uid_after, mc_uid, "the same ManagedCluster");
    assert_eq!(csrs_after, csrs, "no new certificate signing request");
    assert_eq!(std::fs::read_to_string(agent_dir.join("agent.json")).expect("agent.json"), agent_json);
    eventually(DEADLINE, || available(&b).then_some(()))
        .unwrap_or_else(|| panic!("{CLUSTER} not Available through b:\n{}", agent.log()));
    for line in log.lines().filter(|l| l.contains("failing over") || l.contains("ManifestWork")) {
        eprintln!("agent: {line}");
    }
    eprintln!("spoke converged on all works {converged:?} after the agent's replica was killed");
    drop(etcd);
}
