//! ManifestWorkReplicaSet rollouts across real processes: a hub, simulated spokes and their
//! agents. A healthy progressive rollout completes group by group and `rollout undo` takes it
//! back; a rollout where one spoke never gets healthy stops and puts that cluster back on its
//! previous revision; a Wasm strategy (the built-in canary-waves) rolls out; a Wasm transform
//! (the built-in image-transform) gives each cluster its own manifests.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::work::join_with_token;

const DEADLINE: Duration = Duration::from_secs(120);

/// A hub and `names.len()` spokes joined as those clusters, with the namespace `apps` bound
/// to the default cluster set, and a Placement `web` with one cluster per decision group.
struct Fleet {
    hub: Server,
    spokes: Vec<Server>,
    agents: Vec<Process>,
    names: Vec<&'static str>,
    _base: tempfile::TempDir,
}

impl Fleet {
    fn start(names: &[&'static str], before_join: impl Fn(&str, &Server)) -> Fleet {
        let hub = Server::hub_with(|c| c["autoAccept"] = json!(["*"]));
        let base = tempfile::tempdir().expect("agents dir");
        let url = format!("https://{}", hub.addr);
        let mut spokes = Vec::new();
        let mut agents = Vec::new();
        for name in names {
            let spoke = Server::spoke();
            before_join(name, &spoke);
            let token = hub.flotilla(&["token", "create", "--ttl", "10m"]);
            agents.push(join_with_token(&token, &[&url], &spoke, &base.path().join(name), name));
            spokes.push(spoke);
        }
        let fleet = Fleet { hub, spokes, agents, names: names.to_vec(), _base: base };
        for (i, name) in names.iter().enumerate() {
            eventually(DEADLINE, || {
                let out = fleet.hub.kubectl(&["get", "managedcluster", name, "-o", "json"]);
                let mc: Value = serde_json::from_slice(&out.stdout).ok()?;
                let conditions = mc.pointer("/status/conditions")?.as_array()?.clone();
                conditions
                    .iter()
                    .any(|c| c["type"] == "ManagedClusterConditionAvailable" && c["status"] == "True")
                    .then_some(())
            })
            .unwrap_or_else(|| panic!("{name} never became Available:\n{}", fleet.agents[i].log()));
        }
        fleet.hub.namespace("apps");
        fleet.apply(
            "apiVersion: cluster.open-cluster-management.io/v1beta2
kind: ManagedClusterSetBinding
metadata: {name: default, namespace: apps}
spec: {clusterSet: default}
---
apiVersion: cluster.open-cluster-management.io/v1beta1
kind: Placement
metadata: {name: web, namespace: apps}
spec:
  decisionStrategy:
    groupStrategy:
      clustersPerDecisionGroup: 1
",
        );
        fleet
    }

    fn apply(&self, yaml: &str) {
        let out = self.hub.kubectl_stdin(&["apply", "-f", "-"], yaml);
        assert!(out.status.success(), "kubectl apply: {}\n{yaml}", stderr(&out));
    }

    fn spoke(&self, name: &str) -> &Server {
        &self.spokes[self.names.iter().position(|n| *n == name).expect("a cluster of the fleet")]
    }

    fn logs(&self) -> String {
        let agents: Vec<String> = self.agents.iter().map(Process::log).collect();
        format!("--- hub ---\n{}\n--- agents ---\n{}", self.hub.log(), agents.join("\n"))
    }

    fn replica_set(&self, name: &str) -> Option<Value> {
        let out = self.hub.kubectl(&["get", "manifestworkreplicaset", name, "-n", "apps", "-o", "json"]);
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Waits until the rollout's phase is `phase` for revision `revision`; returns the object.
    fn wait_phase(&self, name: &str, revision: i64, phase: &str) -> Value {
        eventually(DEADLINE, || {
            let obj = self.replica_set(name)?;
            let rollout = &obj["status"]["rollout"];
            (rollout["revision"] == revision && rollout["phase"] == phase).then_some(obj)
        })
        .unwrap_or_else(|| {
            panic!(
                "{name} never reached {phase} at revision {revision}: {}\n{}",
                self.replica_set(name).map(|o| o["status"].to_string()).unwrap_or_default(),
                self.logs()
            )
        })
    }

    fn work(&self, cluster: &str, name: &str) -> Option<Value> {
        let out = self.hub.kubectl(&["get", "manifestwork", name, "-n", cluster, "-o", "json"]);
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The image of Deployment `web` in namespace `web` on a cluster's spoke.
    fn spoke_image(&self, cluster: &str) -> Option<String> {
        let out = self.spoke(cluster).kubectl(&["get", "deployment", "web", "-n", "web", "-o", "json"]);
        let d: Value = serde_json::from_slice(&out.stdout).ok()?;
        d.pointer("/spec/template/spec/containers/0/image")?.as_str().map(str::to_string)
    }
}

/// A ManifestWorkReplicaSet `name` over placement `web`: Namespace `web` and Deployment `web`
/// with `image`, ready one second after each rollout on the simulated spokes.
fn replica_set(name: &str, strategy: &str, image: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: work.open-cluster-management.io/v1alpha1
kind: ManifestWorkReplicaSet
metadata: {{name: {name}, namespace: apps}}
spec:
{extra_spec}  placementRefs:
  - name: web
    rolloutStrategy:
{strategy}
  manifestWorkTemplate:
    workload:
      manifests:
      - apiVersion: v1
        kind: Namespace
        metadata: {{name: web}}
      - apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: web
          annotations: {{sim.flotilla.dev/ready-after-seconds: \"1\"}}
        spec:
          replicas: 2
          selector: {{matchLabels: {{app: web}}}}
          template:
            metadata: {{labels: {{app: web}}}}
            spec:
              containers:
              - {{name: web, image: \"{image}\"}}
"
    )
}

const PER_GROUP: &str = "      type: ProgressivePerGroup
      progressivePerGroup:
        progressDeadline: 60s
        maxFailures: 0
";

fn clusters(obj: &Value) -> Vec<Value> {
    obj.pointer("/status/rollout/clusters").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn cluster<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no cluster {name} in {all:?}"))
}

/// No cluster holds the current revision unless every cluster of an earlier group succeeded.
fn group_order_holds(obj: &Value) -> Result<(), String> {
    let current = obj.pointer("/status/rollout/revision").and_then(Value::as_i64);
    let all = clusters(obj);
    for c in all.iter().filter(|c| c["revision"].as_i64() == current && c["status"] != "ToApply") {
        let group = c["groupIndex"].as_i64().unwrap_or(0);
        for earlier in all.iter().filter(|e| e["groupIndex"].as_i64().unwrap_or(0) < group) {
            if earlier["status"] != "Succeeded" {
                return Err(format!("{} started before {} succeeded: {all:?}", c["name"], earlier["name"]));
            }
        }
    }
    Ok(())
}

/// Polls the rollout until `phase` at `revision`, checking the group order at every look.
fn follow_in_group_order(fleet: &Fleet, name: &str, revision: i64, phase: &str) -> Value {
    eventually(DEADLINE, || {
        let obj = fleet.replica_set(name)?;
        if let Err(e) = group_order_holds(&obj) {
            panic!("{e}");
        }
        let rollout = &obj["status"]["rollout"];
        (rollout["revision"] == revision && rollout["phase"] == phase).then_some(obj)
    })
    .unwrap_or_else(|| panic!("{name} never reached {phase} at revision {revision}\n{}", fleet.logs()))
}

#[test]
fn a_healthy_progressive_rollout_completes_group_by_group_and_undo_takes_it_back() {
    let fleet = Fleet::start(&["east", "north", "west"], |_, _| {});
    let spec = "  rollback: {automatic: true}\n";
    fleet.apply(&replica_set("web", PER_GROUP, "nginx:1.27", spec));
    let obj = follow_in_group_order(&fleet, "web", 1, "Complete");
    for name in &fleet.names {
        let c = cluster(&clusters(&obj), name).clone();
        assert_eq!((c["status"].as_str(), c["revision"].as_i64()), (Some("Succeeded"), Some(1)), "{c}");
        let work = fleet.work(name, "web").unwrap_or_else(|| panic!("no work in {name}"));
        let labels = &work["metadata"]["labels"];
        assert_eq!(labels["work.open-cluster-management.io/manifestworkreplicaset"], "apps.web");
        assert_eq!(labels["work.open-cluster-management.io/placementname"], "web");
        assert_eq!(fleet.spoke_image(name).as_deref(), Some("nginx:1.27"));
    }
    let conditions = obj["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let reason = |t: &str| conditions.iter().find(|c| c["type"] == t).map(|c| c["reason"].clone());
    assert_eq!(reason("PlacementVerified"), Some(json!("AsExpected")));
    assert_eq!(reason("PlacementRolledOut"), Some(json!("Complete")));
    assert_eq!(reason("ManifestworkApplied"), Some(json!("AsExpected")));
    assert_eq!(obj["status"]["summary"]["total"], 3);
    assert_eq!(obj["status"]["summary"]["available"], 3);
    assert_eq!(obj["status"]["placementSummary"][0]["availableDecisionGroups"], "3/3");

    // Version 2, followed with `rollout status --watch` until it completes.
    fleet.apply(&replica_set("web", PER_GROUP, "nginx:1.28", spec));
    // Bounded, so that a rollout that never settles fails the test instead of hanging it.
    let out = std::process::Command::new("timeout")
        .arg(DEADLINE.as_secs().to_string())
        .arg(flotilla_bin())
        .arg("--kubeconfig")
        .arg(&fleet.hub.kubeconfig)
        .args(["rollout", "status", "web", "-n", "apps", "--watch"])
        .output()
        .expect("run flotilla rollout status --watch");
    let watched = stdout(&out);
    assert!(out.status.success(), "rollout status --watch: {}\n{watched}", stderr(&out));
    assert!(watched.contains("revision 2, Complete"), "{watched}");
    assert!(watched.contains("group 2"), "{watched}");
    let obj = follow_in_group_order(&fleet, "web", 2, "Complete");
    assert!(clusters(&obj).iter().all(|c| c["revision"] == 2));
    for name in &fleet.names {
        assert_eq!(fleet.spoke_image(name).as_deref(), Some("nginx:1.28"));
    }

    // Undo: revision 1's template comes back as revision 3.
    let out = fleet.hub.flotilla(&["rollout", "undo", "web", "-n", "apps"]);
    assert!(out.status.success(), "rollout undo: {}", stderr(&out));
    assert!(stdout(&out).contains("rolled back to revision 1"), "{}", stdout(&out));
    fleet.wait_phase("web", 3, "Complete");
    for name in &fleet.names {
        let image = eventually(DEADLINE, || fleet.spoke_image(name).filter(|i| i == "nginx:1.27"));
        assert_eq!(image.as_deref(), Some("nginx:1.27"), "{name} was not rolled back");
    }
    let out = fleet.hub.flotilla(&["rollout", "history", "web", "-n", "apps"]);
    let history = stdout(&out);
    assert!(history.lines().any(|l| l.starts_with("2 ")) && history.lines().any(|l| l.starts_with("3 ")), "{history}");
    assert!(!history.lines().any(|l| l.starts_with("1 ")), "revision 1 became 3:\n{history}");

    // Deleting the ManifestWorkReplicaSet deletes its works.
    fleet.hub.kubectl_ok(&["delete", "manifestworkreplicaset", "web", "-n", "apps", "--wait=false"]);
    for name in &fleet.names {
        eventually(DEADLINE, || fleet.work(name, "web").is_none().then_some(()))
            .unwrap_or_else(|| panic!("the work in {name} was not deleted\n{}", fleet.logs()));
    }
}

#[test]
fn a_rollout_with_a_never_ready_spoke_stops_and_rolls_that_cluster_back() {
    let fleet = Fleet::start(&["east", "north", "west"], |_, _| {});
    let strategy = "      type: ProgressivePerGroup
      progressivePerGroup:
        progressDeadline: 4s
        maxFailures: 0
";
    let spec = "  rollback: {automatic: true}\n";
    fleet.apply(&replica_set("web", strategy, "nginx:1.27", spec));
    fleet.wait_phase("web", 1, "Complete");
    // north's next rollout never gets ready (its spoke keeps the annotation across applies).
    fleet.spoke("north").kubectl_ok(&[
        "annotate",
        "deployment",
        "web",
        "-n",
        "web",
        "sim.flotilla.dev/never-ready=true",
    ]);

    fleet.apply(&replica_set("web", strategy, "nginx:1.28", spec));
    let obj = fleet.wait_phase("web", 2, "Stopped");
    let all = clusters(&obj);
    let north = cluster(&all, "north");
    assert_eq!(north["rolledBackTo"], 1, "{north}");
    assert_eq!(north["succeededRevision"], 1, "{north}");
    assert_eq!(cluster(&all, "east")["revision"], 2, "east, the first group, succeeded with revision 2");
    assert_eq!(cluster(&all, "west")["revision"], 1, "west, after north, never got revision 2");
    assert_eq!(obj["status"]["rollout"]["stoppedRevision"], 2);
    let message = obj["status"]["rollout"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("north to revision 1"), "{message}");
    let rolled_out = obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PlacementRolledOut"))
        .cloned();
    assert_eq!(rolled_out.map(|c| c["reason"].clone()), Some(json!("RolloutStopped")));

    // north's work and spoke hold revision 1 again; west was never touched.
    let work = fleet.work("north", "web").expect("north's work");
    assert_eq!(work["metadata"]["annotations"]["rollout.flotilla.dev/revision"], "1");
    let image = eventually(DEADLINE, || fleet.spoke_image("north").filter(|i| i == "nginx:1.27"));
    assert_eq!(image.as_deref(), Some("nginx:1.27"), "north's spoke was not rolled back\n{}", fleet.logs());
    assert_eq!(fleet.spoke_image("west").as_deref(), Some("nginx:1.27"));
    assert_eq!(fleet.spoke_image("east").as_deref(), Some("nginx:1.28"));

    // The stop holds: later cycles start nobody.
    std::thread::sleep(Duration::from_secs(3));
    let obj = fleet.replica_set("web").expect("the replica set");
    assert_eq!(obj["status"]["rollout"]["phase"], "Stopped");
    assert_eq!(cluster(&clusters(&obj), "west")["revision"], 1);
    let out = fleet.hub.flotilla(&["rollout", "status", "web", "-n", "apps"]);
    let screen = stdout(&out);
    assert!(screen.contains("revision 2, Stopped") && screen.contains("RolledBack->1"), "{screen}");
}

fn component(name: &str) -> PathBuf {
    flotilla_plugin_host::source_tree_plugins()
        .unwrap_or_else(|e| panic!("{e}"))
        .join(format!("{}.wasm", name.replace('-', "_")))
}

fn push(fleet: &Fleet, plugin: &str, name: &str) {
    let file = component(plugin);
    let out = fleet.hub.flotilla(&["plugin", "push", file.to_str().expect("utf-8 path"), "--name", name]);
    assert!(out.status.success(), "plugin push {plugin}: {}", stderr(&out));
}

#[test]
fn a_wasm_strategy_rolls_out_and_a_missing_one_is_reported() {
    let fleet = Fleet::start(&["east", "west"], |_, _| {});
    push(&fleet, "canary-waves", "waves");
    let strategy = "      type: Plugin
      plugin:
        name: waves
        configuration: {canary: 1, waves: [\"100%\"], progressDeadline: 60s}
";
    fleet.apply(&replica_set("web", strategy, "nginx:1.27", ""));
    let obj = fleet.wait_phase("web", 1, "Complete");
    assert!(clusters(&obj).iter().all(|c| c["status"] == "Succeeded"), "{obj}");
    for name in &fleet.names {
        assert_eq!(fleet.spoke_image(name).as_deref(), Some("nginx:1.27"));
    }

    let missing = "      type: Plugin
      plugin: {name: nope}
";
    fleet.apply(&replica_set("other", missing, "nginx:1.27", ""));
    let obj = fleet.wait_phase("other", 1, "Failed");
    let condition = obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PlacementRolledOut"))
        .cloned()
        .expect("PlacementRolledOut");
    assert_eq!(condition["reason"], "StrategyFailed");
    assert!(condition["message"].as_str().unwrap_or_default().contains("nope"), "{condition}");
    assert!(fleet.work("east", "other").is_none(), "no work without a strategy");

    // Under failurePolicy Ignore the same missing plugin rolls out as All, and says why.
    let lenient = "      type: Plugin
      plugin: {name: nope, failurePolicy: Ignore}
";
    fleet.apply(&replica_set("lenient", lenient, "nginx:1.27", ""));
    let obj = fleet.wait_phase("lenient", 1, "Complete");
    let message = obj["status"]["rollout"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nope") && message.contains("failurePolicy Ignore"), "{message}");
}

/// A ClusterClaim on a spoke (the agent reports it in its ManagedCluster's status).
fn claim(spoke: &Server, name: &str, value: &str) {
    let claim = format!(
        "apiVersion: cluster.open-cluster-management.io/v1alpha1
kind: ClusterClaim
metadata: {{name: {name}}}
spec: {{value: {value}}}
"
    );
    let out = spoke.kubectl_stdin(&["apply", "-f", "-"], &claim);
    assert!(out.status.success(), "claim: {}", stderr(&out));
}

#[test]
fn a_wasm_transform_gives_each_cluster_its_own_manifests() {
    // west claims its own registry, south a replica count that is no number, east nothing.
    let fleet = Fleet::start(&["east", "south", "west"], |name, spoke| match name {
        "west" => claim(spoke, "registry.flotilla.dev", "eu.registry.example.com"),
        "south" => claim(spoke, "replicas.flotilla.dev", "lots"),
        _ => {}
    });
    for (cluster, name) in [("west", "registry.flotilla.dev"), ("south", "replicas.flotilla.dev")] {
        eventually(DEADLINE, || {
            let out = fleet.hub.kubectl(&["get", "managedcluster", cluster, "-o", "json"]);
            let mc: Value = serde_json::from_slice(&out.stdout).ok()?;
            let claims = mc.pointer("/status/clusterClaims")?.as_array()?.clone();
            claims.iter().any(|c| c["name"] == name).then_some(())
        })
        .unwrap_or_else(|| panic!("{cluster} never reported its claim\n{}", fleet.logs()));
    }
    push(&fleet, "image-transform", "registries");
    let spec = "  manifestTransform:
    name: registries
    configuration: {registryClaim: registry.flotilla.dev, defaultRegistry: registry.example.com,
                    replicasClaim: replicas.flotilla.dev}
";
    let all = "      type: All\n";
    fleet.apply(&replica_set("web", all, "nginx:1.27", spec));
    let obj = eventually(DEADLINE, || {
        let obj = fleet.replica_set("web")?;
        let all = clusters(&obj);
        let done = |name: &str| all.iter().any(|c| c["name"] == name && c["status"] == "Succeeded");
        let refused = all.iter().any(|c| {
            c["name"] == "south" && c["message"].as_str().unwrap_or_default().contains("refused this cluster")
        });
        (done("east") && done("west") && refused).then_some(obj)
    })
    .unwrap_or_else(|| {
        panic!(
            "no per-cluster transform: {:?}\n{}",
            fleet.replica_set("web").map(|o| o["status"].clone()),
            fleet.logs()
        )
    });
    assert_eq!(fleet.spoke_image("east").as_deref(), Some("registry.example.com/nginx:1.27"));
    assert_eq!(fleet.spoke_image("west").as_deref(), Some("eu.registry.example.com/nginx:1.27"));
    let work = fleet.work("west", "web").expect("west's work");
    let image = work.pointer("/spec/workload/manifests/1/spec/template/spec/containers/0/image").cloned();
    assert_eq!(image, Some(json!("eu.registry.example.com/nginx:1.27")));
    // The refused cluster gets no work, and its status says why.
    assert!(fleet.work("south", "web").is_none(), "south was refused: no work there");
    let south = cluster(&clusters(&obj), "south").clone();
    assert_eq!(south["status"], "ToApply");
    assert!(south["message"].as_str().unwrap_or_default().contains("not a replica count"), "{south}");
    assert_eq!(obj["status"]["rollout"]["phase"], "Progressing", "not complete while south has no work");
}
