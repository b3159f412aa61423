//! Work distribution across real processes: a hub, simulated spokes and agents, each a
//! `flotilla` process on loopback. What the OCM work agent promises under failure: a hub
//! killed in the middle of a stream of updates loses none of them and makes no agent delete
//! or recreate anything; an agent cut off from its hub keeps its workloads, and converges
//! once it can reach the hub again.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use flotilla_agent::work::manifest_works;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};

use crate::common::*;

const DEADLINE: Duration = Duration::from_secs(90);

/// `flotilla agent join` against `hub_url` (the hub, or a proxy in front of it) for a spoke
/// served by another process, with 2-second leases and a 1-second work resync.
fn join(hub: &Server, hub_url: &str, spoke: &Server, base: &Path, name: &str) -> Process {
    join_with_token(&hub.flotilla(&["token", "create", "--ttl", "10m"]), &[hub_url], spoke, &base.join(name), name)
}

/// `flotilla agent join` as cluster `name`, with the token and CA hash that `token_create`
/// (the output of `flotilla token create`) printed, given every hub URL in order, for a spoke
/// served by another process, with 2-second leases and a 1-second work resync.
pub(crate) fn join_with_token(
    token_create: &Output,
    hub_urls: &[&str],
    spoke: &Server,
    dir: &Path,
    name: &str,
) -> Process {
    assert!(token_create.status.success(), "token create: {}", stderr(token_create));
    let printed = stdout(token_create);
    let token = printed.lines().find_map(|l| l.strip_prefix("token: ")).expect("token").to_string();
    let command = printed.lines().map(str::trim).find(|l| l.starts_with("flotilla agent join")).expect("command");
    let words: Vec<&str> = command.split_whitespace().collect();
    let hash = words[words.iter().position(|w| *w == "--hub-ca-hash").expect("hash") + 1].to_string();
    let (dir_text, kubeconfig) = (dir.display().to_string(), spoke.kubeconfig.display().to_string());
    let mut args = vec!["--kubeconfig", &kubeconfig, "agent", "join"];
    for url in hub_urls {
        args.extend(["--hub-url", url]);
    }
    args.extend([
        "--cluster-name",
        name,
        "--token",
        &token,
        "--hub-ca-hash",
        &hash,
        "--data-dir",
        &dir_text,
        "--lease-duration-seconds",
        "2",
        "--work-resync-seconds",
        "1",
    ]);
    Process::flotilla(&args, dir.with_extension("log"))
}

fn cluster_condition(hub: &Server, name: &str, type_: &str) -> Option<String> {
    let out = hub.kubectl(&["get", "managedcluster", name, "-o", "json"]);
    let mc: Value = serde_json::from_slice(&out.stdout).ok()?;
    mc.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["status"].as_str())
        .map(str::to_string)
}

fn wait_available(hub: &Server, name: &str, agent: &mut Process) {
    eventually(DEADLINE, || {
        (cluster_condition(hub, name, "ManagedClusterConditionAvailable")? == "True").then_some(())
    })
    .unwrap_or_else(|| panic!("{name} never became Available; agent log:\n{}", agent.log()));
}

/// A work with a ConfigMap that carries `generation` and a Deployment.
fn work(name: &str, generation: u32) -> DynamicObject {
    let object = json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": name},
        "spec": {"workload": {"manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": format!("{name}-config"), "namespace": "default"},
             "data": {"generation": generation.to_string()}},
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": format!("{name}-app"), "namespace": "default"},
             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                      "template": {"metadata": {"labels": {"app": name}},
                                   "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}},
        ]}},
    });
    serde_json::from_value(object).expect("a ManifestWork")
}

/// Creates or replaces a work, retrying while the hub is down or the write races.
async fn put_work(works: &Api<DynamicObject>, name: &str, generation: u32) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut desired = work(name, generation);
        let result = match works.get_opt(name).await {
            Ok(Some(current)) => {
                desired.metadata.resource_version = current.metadata.resource_version;
                works.replace(name, &PostParams::default(), &desired).await.map(|_| ())
            }
            Ok(None) => works.create(&PostParams::default(), &desired).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot write work {name}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The ConfigMap's `generation` and the uids of both objects of a work on a spoke.
fn on_spoke(spoke: &Server, work: &str) -> Option<(String, String, String)> {
    let out = spoke.kubectl(&["get", "configmap", &format!("{work}-config"), "-n", "default", "-o", "json"]);
    let cm: Value = serde_json::from_slice(&out.stdout).ok()?;
    let out = spoke.kubectl(&["get", "deployment", &format!("{work}-app"), "-n", "default", "-o", "json"]);
    let deploy: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((
        cm["data"]["generation"].as_str()?.to_string(),
        cm["metadata"]["uid"].as_str()?.to_string(),
        deploy["metadata"]["uid"].as_str()?.to_string(),
    ))
}

/// The work's `Applied` condition is True for its current generation.
pub(crate) fn applied_at_generation(work: &DynamicObject) -> bool {
    let generation = work.metadata.generation.unwrap_or(0);
    work.data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Applied"))
        .is_some_and(|c| c["status"] == "True" && c["observedGeneration"] == generation)
}

/// Waits until the work is Applied at its current generation.
pub(crate) async fn wait_applied(works: &Api<DynamicObject>, name: &str, agent: &Process) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(Some(w)) = works.get_opt(name).await
            && applied_at_generation(&w)
        {
            return;
        }
        assert!(Instant::now() < deadline, "work {name} never Applied; agent log:\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_stream_loses_no_update_and_no_workload_is_recreated() {
    let mut hub = Server::hub_with(|c| c["autoAccept"] = json!(["*"]));
    let base = tempfile::tempdir().expect("agents dir");
    let url = format!("https://{}", hub.addr);
    let spokes = [Server::spoke(), Server::spoke()];
    let names = ["east", "west"];
    let mut agents: Vec<Process> =
        names.iter().zip(&spokes).map(|(name, spoke)| join(&hub, &url, spoke, base.path(), name)).collect();
    for (name, agent) in names.iter().zip(agents.iter_mut()) {
        wait_available(&hub, name, agent);
    }
    let admin = hub.client().await;
    let works_per_cluster = ["web", "api", "jobs"];
    for cluster in names {
        let works: Api<DynamicObject> = Api::namespaced_with(admin.clone(), cluster, &manifest_works());
        for w in works_per_cluster {
            put_work(&works, w, 0).await;
        }
    }
    let mut first = Vec::new();
    for ((cluster, spoke), agent) in names.iter().zip(&spokes).zip(agents.iter_mut()) {
        let works: Api<DynamicObject> = Api::namespaced_with(admin.clone(), cluster, &manifest_works());
        for w in works_per_cluster {
            wait_applied(&works, w, agent).await;
            let (_, cm_uid, deploy_uid) = on_spoke(spoke, w).expect("applied objects on the spoke");
            first.push((cluster.to_string(), w, cm_uid, deploy_uid));
        }
    }

    // A stream of updates; the hub is SIGKILLed in the middle and restarted.
    const LAST: u32 = 30;
    let mut admin = admin;
    for generation in 1..=LAST {
        if generation == LAST / 2 {
            hub.kill9();
            hub.start();
            admin = hub.client().await;
        }
        for cluster in names {
            let works: Api<DynamicObject> = Api::namespaced_with(admin.clone(), cluster, &manifest_works());
            for w in works_per_cluster {
                put_work(&works, w, generation).await;
            }
        }
    }

    // Every work reaches its last generation on every spoke, and nothing was recreated.
    for ((cluster, spoke), agent) in names.iter().zip(&spokes).zip(agents.iter_mut()) {
        let works: Api<DynamicObject> = Api::namespaced_with(admin.clone(), cluster, &manifest_works());
        for w in works_per_cluster {
            wait_applied(&works, w, agent).await;
            let (generation, cm_uid, deploy_uid) = eventually(DEADLINE, || {
                on_spoke(spoke, w).filter(|(generation, _, _)| generation == &LAST.to_string())
            })
            .unwrap_or_else(|| panic!("{cluster}/{w} never reached generation {LAST}:\n{}", agent.log()));
            assert_eq!(generation, LAST.to_string());
            let (_, _, cm0, deploy0) =
                first.iter().find(|(c, name, _, _)| c == cluster && *name == w).expect("first uids");
            assert_eq!(&cm_uid, cm0, "{cluster}/{w}: the ConfigMap was deleted and created again");
            assert_eq!(&deploy_uid, deploy0, "{cluster}/{w}: the Deployment was deleted and created again");
        }
        assert!(agent.exited().is_none(), "the agent of {cluster} exited:\n{}", agent.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cut_off_from_its_hub_keeps_its_workloads_and_converges_after() {
    // Leases of 2 s and a grace of 2 leases: the hub gives up on the cluster after ~4 s.
    let hub = Server::hub_with(|c| {
        c["autoAccept"] = json!(["*"]);
        c["leaseGraceFactor"] = json!(2);
    });
    let proxy = Proxy::start(hub.addr);
    let spoke = Server::spoke();
    let base = tempfile::tempdir().expect("agents dir");
    let mut agent = join(&hub, &format!("https://{}", proxy.addr), &spoke, base.path(), "edge");
    wait_available(&hub, "edge", &mut agent);
    let admin = hub.client().await;
    let works: Api<DynamicObject> = Api::namespaced_with(admin, "edge", &manifest_works());
    put_work(&works, "web", 1).await;
    wait_applied(&works, "web", &agent).await;
    let (_, cm_uid, deploy_uid) = on_spoke(&spoke, "web").expect("applied");

    proxy.cut();
    eventually(DEADLINE, || {
        (cluster_condition(&hub, "edge", "ManagedClusterConditionAvailable")? == "Unknown").then_some(())
    })
    .unwrap_or_else(|| panic!("the hub never noticed the cut; agent log:\n{}", agent.log()));
    // The hub moves on while the agent cannot see it; the agent keeps what it has.
    put_work(&works, "web", 2).await;
    std::thread::sleep(Duration::from_secs(5));
    let (generation, cm_now, deploy_now) = on_spoke(&spoke, "web").expect("the workload stays while cut off");
    assert_eq!(generation, "1", "the agent cannot have seen generation 2");
    assert_eq!((cm_now.as_str(), deploy_now.as_str()), (cm_uid.as_str(), deploy_uid.as_str()));
    assert!(agent.exited().is_none(), "the agent gave up:\n{}", agent.log());

    proxy.restore();
    wait_available(&hub, "edge", &mut agent);
    wait_applied(&works, "web", &agent).await;
    let (generation, cm_after, deploy_after) =
        eventually(DEADLINE, || on_spoke(&spoke, "web").filter(|(g, _, _)| g == "2")).expect("converged");
    assert_eq!(generation, "2");
    assert_eq!((cm_after, deploy_after), (cm_uid, deploy_uid), "converged in place, nothing recreated");
}
