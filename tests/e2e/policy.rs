//! Governance across real processes: a hub, two simulated spokes and their agents, each a
//! `flotilla` process on loopback, driven with kubectl and the `flotilla` CLI. A Policy
//! bound to a Placement is replicated to the decided clusters, evaluated by the agents, and
//! its compliance flows back to the root (`flotilla get policies` counts it); a cluster that
//! leaves the decisions loses its replica; the hub is SIGKILLed and restarted in the middle;
//! switching the policy to enforce makes the violating spoke compliant.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::work::join_with_token;

const DEADLINE: Duration = Duration::from_secs(90);
/// OCM's Policy, fully qualified for kubectl (a category named `policy` on another kind would
/// otherwise win over the singular name).
const POLICIES: &str = "policies.policy.open-cluster-management.io";

const POLICY: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: policies
---
apiVersion: cluster.open-cluster-management.io/v1beta2
kind: ManagedClusterSetBinding
metadata:
  name: default
  namespace: policies
spec:
  clusterSet: default
---
apiVersion: cluster.open-cluster-management.io/v1beta1
kind: Placement
metadata:
  name: governed
  namespace: policies
spec:
  predicates:
  - requiredClusterSelector:
      labelSelector:
        matchLabels: {governed: \"true\"}
---
apiVersion: policy.open-cluster-management.io/v1
kind: Policy
metadata:
  name: prod-owner
  namespace: policies
spec:
  disabled: false
  remediationAction: inform
  policy-templates:
  - objectDefinition:
      apiVersion: policy.open-cluster-management.io/v1
      kind: ConfigurationPolicy
      metadata:
        name: prod-owner
      spec:
        remediationAction: inform
        severity: medium
        object-templates:
        - complianceType: musthave
          objectDefinition:
            apiVersion: v1
            kind: Namespace
            metadata:
              name: prod
              labels: {owner: platform}
---
apiVersion: policy.open-cluster-management.io/v1
kind: PlacementBinding
metadata:
  name: prod-owner
  namespace: policies
placementRef:
  apiGroup: cluster.open-cluster-management.io
  kind: Placement
  name: governed
subjects:
- apiGroup: policy.open-cluster-management.io
  kind: Policy
  name: prod-owner
";

fn cluster_available(hub: &Server, name: &str) -> bool {
    let out = hub.kubectl(&["get", "managedcluster", name, "-o", "json"]);
    let Ok(mc) = serde_json::from_slice::<Value>(&out.stdout) else { return false };
    mc.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "ManagedClusterConditionAvailable" && c["status"] == "True")
}

fn root_policy(hub: &Server) -> Option<Value> {
    let out = hub.kubectl(&[
        "get",
        "policies.policy.open-cluster-management.io",
        "prod-owner",
        "-n",
        "policies",
        "-o",
        "json",
    ]);
    if !out.status.success() {
        eprintln!("kubectl get policy: {}", stderr(&out));
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The root's `status.summary` as (clusters, compliant, nonCompliant).
fn counts(hub: &Server) -> Option<(i64, i64, i64)> {
    let root = root_policy(hub)?;
    let n = |f: &str| root.pointer(&format!("/status/summary/{f}")).and_then(Value::as_i64);
    Some((n("clusters")?, n("compliant")?, n("nonCompliant")?))
}

fn wait_counts(hub: &Server, want: (i64, i64, i64), agents: &mut [Process]) {
    eventually(DEADLINE, || (counts(hub)? == want).then_some(())).unwrap_or_else(|| {
        let logs: Vec<String> = agents.iter().map(Process::log).collect();
        panic!(
            "the root never counted (clusters, compliant, nonCompliant) = {want:?}: {:?}\nroot: {:?}\nagent logs:\n{}",
            counts(hub),
            root_policy(hub).map(|r| r["status"].clone()),
            logs.join("\n---\n")
        )
    });
}

/// The namespaces holding a replica of the root on the hub.
fn replica_namespaces(hub: &Server) -> Vec<String> {
    let out = hub.kubectl(&[
        "get",
        POLICIES,
        "-A",
        "-l",
        "policy.open-cluster-management.io/root-policy=policies.prod-owner",
        "-o",
        "json",
    ]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut namespaces: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string))
        .collect();
    namespaces.sort();
    namespaces
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_is_replicated_evaluated_and_enforced_and_compliance_flows_back() {
    let mut hub = Server::hub_with(|c| c["autoAccept"] = json!(["*"]));
    let base = tempfile::tempdir().expect("agents dir");
    let url = format!("https://{}", hub.addr);
    let names = ["good", "bad"];
    let spokes = [Server::spoke(), Server::spoke()];
    // The good spoke has its prod namespace owned; the bad one's has no owner.
    for (spoke, labelled) in spokes.iter().zip([true, false]) {
        let out = spoke.kubectl(&["create", "namespace", "prod"]);
        assert!(out.status.success(), "{}", stderr(&out));
        if labelled {
            let out = spoke.kubectl(&["label", "namespace", "prod", "owner=platform"]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }
    let mut agents: Vec<Process> = names
        .iter()
        .zip(&spokes)
        .map(|(name, spoke)| {
            let token = hub.flotilla(&["token", "create", "--ttl", "10m"]);
            join_with_token(&token, &[url.as_str()], spoke, &base.path().join(name), name)
        })
        .collect();
    for (name, agent) in names.iter().zip(agents.iter_mut()) {
        eventually(DEADLINE, || cluster_available(&hub, name).then_some(()))
            .unwrap_or_else(|| panic!("{name} never became Available:\n{}", agent.log()));
        let out = hub.kubectl(&["label", "managedcluster", name, "governed=true"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    let out = hub.kubectl_stdin(&["apply", "-f", "-"], POLICY);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_counts(&hub, (2, 1, 1), &mut agents);
    assert_eq!(replica_namespaces(&hub), ["bad", "good"]);
    let root = root_policy(&hub).expect("root");
    assert_eq!(root["status"]["compliant"], "NonCompliant");
    assert_eq!(
        root["status"]["status"],
        json!([{"clustername": "bad", "clusternamespace": "bad", "compliant": "NonCompliant"},
            {"clustername": "good", "clusternamespace": "good", "compliant": "Compliant"}])
    );
    // What the operator sees.
    let out = hub.flotilla(&["get", "policies", "-n", "policies"]);
    let table = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let header = table.lines().next().unwrap_or_default();
    for column in ["REMEDIATION ACTION", "COMPLIANCE STATE", "COMPLIANT", "NONCOMPLIANT", "AGE"] {
        assert!(header.contains(column), "{column} in {table}");
    }
    let row: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(row[..5], ["prod-owner", "inform", "NonCompliant", "1", "1"], "{table}");

    let out = hub.flotilla(&["get", "policies", "-n", "policies", "-o", "wide"]);
    let wide = stdout(&out);
    let header = wide.lines().next().unwrap_or_default();
    assert!(header.contains("PENDING") && header.contains("CLUSTERS"), "{wide}");

    // The bad cluster leaves the decisions: its replica goes, the root counts the good one.
    let out = hub.kubectl(&["label", "managedcluster", "bad", "governed-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_counts(&hub, (1, 1, 0), &mut agents);
    assert_eq!(replica_namespaces(&hub), ["good"]);

    // The hub dies and comes back; the cluster returns; the policy is enforced.
    hub.kill9();
    hub.start();
    let out = hub.kubectl(&["label", "managedcluster", "bad", "governed=true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_counts(&hub, (2, 1, 1), &mut agents);
    let out = hub.kubectl(&[
        "patch",
        POLICIES,
        "prod-owner",
        "-n",
        "policies",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"remediationAction":"enforce"}}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_counts(&hub, (2, 2, 0), &mut agents);
    let out = spokes[1].kubectl(&["get", "namespace", "prod", "-o", "jsonpath={.metadata.labels.owner}"]);
    assert_eq!(stdout(&out).trim(), "platform", "the bad spoke was remediated");
    for (name, agent) in names.iter().zip(agents.iter_mut()) {
        assert!(agent.exited().is_none(), "the agent of {name} exited:\n{}", agent.log());
    }
}
