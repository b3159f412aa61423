//! The `flotilla` CLI against a real hub: get, describe, apply, delete.

use crate::common::{Server, fixtures, stderr, stdout};

#[test]
fn flotilla_cli_applies_gets_describes_and_deletes() {
    let hub = Server::hub();
    hub.namespace("cluster1");
    let dir = fixtures().join("ocm");
    let out = hub.flotilla(&["apply", "-f", dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let applied = stdout(&out);
    assert!(
        applied.contains("managedcluster.cluster.open-cluster-management.io/cluster1 serverside-applied"),
        "{applied}"
    );

    let out = hub.flotilla(&["get", "clusters"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("HUB ACCEPTED") && table.contains("cluster1"), "{table}");

    let out = hub.flotilla(&["get", "placements", "-A", "-o", "wide"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("NAMESPACE"), "{}", stdout(&out));

    // Works: every cluster namespace by default, one with -n; kubectl's view is unchanged.
    let out = hub.flotilla(&["get", "works"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAMESPACE", "NAME", "APPLIED", "AVAILABLE", "DEGRADED", "MANIFESTS", "AGE"], "{table}");
    assert!(table.contains("cluster1    my-first-work"), "{table}");
    let out = hub.flotilla(&["get", "works", "-n", "cluster1", "-o", "wide"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("NAME "), "{table}");
    assert!(table.lines().next().is_some_and(|h| h.ends_with("AGE   PROGRESSING   COMPLETE")), "{table}");
    let row = table.lines().find(|l| l.starts_with("my-first-work ")).unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    // No status yet: blank conditions, then the manifest count and the age.
    assert_eq!(cells.get(1), Some(&"2"), "{table}");
    let out = hub.kubectl(&["get", "manifestworks", "-A"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("NAMESPACE   NAME"), "{}", stdout(&out));

    let out = hub.flotilla(&["get", "managedcluster", "cluster1", "-o", "json"]);
    let obj: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json output");
    assert_eq!(obj["kind"], "ManagedCluster");

    let out = hub.flotilla(&["describe", "managedcluster", "cluster1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let described = stdout(&out);
    assert!(
        described.contains("Name:") && described.contains("cluster1") && described.contains("Spec:"),
        "{described}"
    );

    let out = hub.flotilla(&["get", "nonsense"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nonsense"), "{}", stderr(&out));

    let out = hub.flotilla(&["delete", "managedcluster", "cluster1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("deleted"), "{}", stdout(&out));
    let out = hub.flotilla(&["get", "managedcluster", "cluster1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("NotFound") || stderr(&out).contains("not found"), "{}", stderr(&out));
}
