//! `flotilla placement explain` against a real hub: per cluster, selected or which filter
//! removed it and why, and the prioritizers' scores with their weights; `-o json` raw.

use std::time::Duration;

use crate::common::{Server, eventually, stderr, stdout};

const OBJECTS: &str = "\
apiVersion: cluster.open-cluster-management.io/v1
kind: ManagedCluster
metadata:
  name: prod-1
  labels: {env: prod}
spec:
  hubAcceptsClient: true
---
apiVersion: cluster.open-cluster-management.io/v1
kind: ManagedCluster
metadata:
  name: dev-1
  labels: {env: dev}
spec:
  hubAcceptsClient: true
---
apiVersion: cluster.open-cluster-management.io/v1beta2
kind: ManagedClusterSetBinding
metadata:
  name: default
  namespace: apps
spec:
  clusterSet: default
---
apiVersion: cluster.open-cluster-management.io/v1beta1
kind: Placement
metadata:
  name: web
  namespace: apps
spec:
  predicates:
  - requiredClusterSelector:
      labelSelector:
        matchLabels: {env: prod}
";

#[test]
fn placement_explain_says_why_each_cluster_is_in_or_out() {
    let hub = Server::hub();
    hub.namespace("apps");
    let out = hub.kubectl_stdin(&["apply", "-f", "-"], OBJECTS);
    assert!(out.status.success(), "{}", stderr(&out));

    let table = eventually(Duration::from_secs(30), || {
        let out = hub.flotilla(&["placement", "explain", "web", "-n", "apps"]);
        let text = stdout(&out);
        (out.status.success() && text.contains("AllDecisionsScheduled")).then_some(text)
    })
    .unwrap_or_else(|| panic!("no explanation: {}", hub.log()));
    let row = |name: &str| table.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_default().to_string();
    assert!(row("prod-1").contains("selected"), "{table}");
    assert!(row("dev-1").contains("filtered by"), "{table}");
    let header = table.lines().find(|l| l.starts_with("CLUSTER")).unwrap_or_default();
    assert!(header.contains("BALANCE(x1)") && header.contains("STEADY(x1)") && header.contains("TOTAL"), "{table}");

    let out = hub.flotilla(&["placement", "explain", "web", "-n", "apps", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(answer["explanation"]["selected"], serde_json::json!(["prod-1"]));

    let out = hub.flotilla(&["placement", "explain", "nope", "-n", "apps"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}
