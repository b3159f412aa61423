//! kubectl against the hub: discovery, every read and write path, watch, and OCM's
//! own example YAML.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{Server, eventually, fixtures, stderr, stdout};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn discovery_serves_ocm_and_flotilla_kinds() {
    let hub = Server::hub();
    let resources = hub.kubectl_ok(&["api-resources", "-o", "wide"]);
    for expected in [
        "managedclusters",
        "managedclustersets",
        "managedclustersetbindings",
        "placements",
        "placementdecisions",
        "addonplacementscores",
        "manifestworks",
        "manifestworkreplicasets",
        "policies",
        "placementbindings",
        "policysets",
        "namespaces",
        "leases",
        "certificatesigningrequests",
        "events",
        "wasmplugins",
    ] {
        assert!(resources.lines().any(|l| l.starts_with(expected)), "api-resources lacks {expected}:\n{resources}");
    }
    let versions = hub.kubectl_ok(&["api-versions"]);
    for gv in [
        "cluster.open-cluster-management.io/v1",
        "work.open-cluster-management.io/v1",
        "policy.open-cluster-management.io/v1",
        "flotilla.dev/v1alpha1",
        "v1",
    ] {
        assert!(versions.lines().any(|l| l == gv), "api-versions lacks {gv}:\n{versions}");
    }
    let version = hub.kubectl_ok(&["version", "-o", "json"]);
    assert_eq!(json(&version)["serverVersion"]["major"], "1");
    // Short names resolve like kubectl users expect.
    hub.kubectl_ok(&["get", "mcl"]);
}

#[test]
fn ocm_examples_apply_unchanged_and_read_back() {
    let hub = Server::hub();
    let dir = fixtures().join("ocm");
    let dir = dir.to_str().expect("utf-8 path");
    // The examples' ManifestWork and AddOnPlacementScore live in cluster1's namespace.
    hub.namespace("cluster1");
    let applied = hub.kubectl_ok(&["apply", "-f", dir]);
    assert!(applied.contains("created"), "{applied}");
    // Re-applying the same files is a no-op.
    let again = hub.kubectl_ok(&["apply", "-f", dir]);
    assert!(again.contains("unchanged"), "{again}");
    // And server-side apply of the same files takes over cleanly.
    hub.kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", dir]);

    let table = hub.kubectl_ok(&["get", "managedclusters"]);
    assert!(table.contains("HUB ACCEPTED"), "printer columns from the CRD:\n{table}");
    let yaml = hub.kubectl_ok(&["get", "managedclusters", "-o", "yaml"]);
    assert!(yaml.contains("kind: List") || yaml.contains("kind: ManagedClusterList"), "{yaml}");
    let list = json(&hub.kubectl_ok(&["get", "placements", "-A", "-o", "json"]));
    let items = list["items"].as_array().expect("items");
    assert!(!items.is_empty(), "the example placement was stored");
    let placement = &items[0];
    let (ns, name) = (
        placement["metadata"]["namespace"].as_str().expect("ns"),
        placement["metadata"]["name"].as_str().expect("name"),
    );
    assert_eq!(placement["metadata"]["generation"], 1);
    assert!(placement["metadata"]["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let described = hub.kubectl_ok(&["describe", "placement", name, "-n", ns]);
    assert!(described.contains(&format!("Name:         {name}")) || described.contains(name), "{described}");
    hub.kubectl_ok(&["get", "manifestworks", "-A", "-o", "wide"]);
    hub.kubectl_ok(&["get", "policies", "-A"]);

    // Deleting a namespace empties it at once here, so later objects in it may be gone already.
    let deleted = hub.kubectl_ok(&["delete", "-f", dir, "--wait=false", "--ignore-not-found"]);
    assert!(deleted.contains("deleted"), "{deleted}");
}

fn cluster_yaml(name: &str, accept: bool) -> String {
    format!(
        "apiVersion: cluster.open-cluster-management.io/v1\nkind: ManagedCluster\nmetadata:\n  name: {name}\n  labels:\n    env: prod\nspec:\n  hubAcceptsClient: {accept}\n"
    )
}

#[test]
fn patches_status_subresource_and_generation() {
    let hub = Server::hub();
    let out = hub.kubectl_stdin(&["create", "-f", "-"], &cluster_yaml("c1", false));
    assert!(out.status.success(), "{}", stderr(&out));

    // Merge patch of spec bumps generation.
    hub.kubectl_ok(&["patch", "managedcluster", "c1", "--type=merge", "-p", r#"{"spec":{"hubAcceptsClient":true}}"#]);
    let obj = json(&hub.kubectl_ok(&["get", "managedcluster", "c1", "-o", "json"]));
    assert_eq!(obj["spec"]["hubAcceptsClient"], true);
    assert_eq!(obj["metadata"]["generation"], 2);

    // JSON patch.
    hub.kubectl_ok(&[
        "patch",
        "managedcluster",
        "c1",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/leaseDurationSeconds","value":30}]"#,
    ]);
    let obj = json(&hub.kubectl_ok(&["get", "managedcluster", "c1", "-o", "json"]));
    assert_eq!(obj["spec"]["leaseDurationSeconds"], 30);
    assert_eq!(obj["metadata"]["generation"], 3);

    // Labels and annotations (metadata) do not bump generation.
    hub.kubectl_ok(&["label", "managedcluster", "c1", "region=eu"]);
    hub.kubectl_ok(&["annotate", "managedcluster", "c1", "note=hello"]);
    let obj = json(&hub.kubectl_ok(&["get", "managedcluster", "c1", "-o", "json"]));
    assert_eq!(obj["metadata"]["labels"]["region"], "eu");
    assert_eq!(obj["metadata"]["annotations"]["note"], "hello");
    assert_eq!(obj["metadata"]["generation"], 3);

    // The status subresource changes status only, and the main resource ignores status.
    hub.kubectl_ok(&[
        "patch",
        "managedcluster",
        "c1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"version":{"kubernetes":"v1.34.0"}},"spec":{"hubAcceptsClient":false}}"#,
    ]);
    hub.kubectl_ok(&[
        "patch",
        "managedcluster",
        "c1",
        "--type=merge",
        "-p",
        r#"{"status":{"version":{"kubernetes":"bogus"}}}"#,
    ]);
    let obj = json(&hub.kubectl_ok(&["get", "managedcluster", "c1", "-o", "json"]));
    assert_eq!(obj["status"]["version"]["kubernetes"], "v1.34.0");
    assert_eq!(obj["spec"]["hubAcceptsClient"], true);
    assert_eq!(obj["metadata"]["generation"], 3);

    // Strategic merge patch on a built-in kind (what kubectl edit sends).
    hub.namespace("team-a");
    hub.kubectl_ok(&["patch", "namespace", "team-a", "-p", r#"{"metadata":{"labels":{"tier":"gold"}}}"#]);
    let ns = json(&hub.kubectl_ok(&["get", "namespace", "team-a", "-o", "json"]));
    assert_eq!(ns["metadata"]["labels"]["tier"], "gold");
    assert_eq!(ns["status"]["phase"], "Active");
}

#[test]
fn stale_resource_version_conflicts() {
    let hub = Server::hub();
    hub.kubectl_stdin(&["create", "-f", "-"], &cluster_yaml("c1", false));
    let stale = hub.kubectl_ok(&["get", "managedcluster", "c1", "-o", "json"]);
    hub.kubectl_ok(&["patch", "managedcluster", "c1", "--type=merge", "-p", r#"{"spec":{"hubAcceptsClient":true}}"#]);
    let out = hub.kubectl_stdin(&["replace", "-f", "-"], &stale);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("the object has been modified"), "{}", stderr(&out));
    let obj = json(&hub.kubectl_ok(&["get", "managedcluster", "c1", "-o", "json"]));
    assert_eq!(obj["spec"]["hubAcceptsClient"], true, "the stale replace changed nothing");
}

#[test]
fn server_side_apply_tracks_managers_and_reports_conflicts() {
    let hub = Server::hub();
    let apply = |manager: &str, accept: bool, force: bool| {
        let mut args = vec!["apply", "--server-side", "--field-manager", manager, "-f", "-"];
        if force {
            args.push("--force-conflicts");
        }
        hub.kubectl_stdin(&args, &cluster_yaml("c1", accept))
    };
    let out = apply("alice", false, false);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = apply("bob", true, false);
    assert!(!out.status.success(), "bob must conflict with alice");
    let err = stderr(&out);
    assert!(err.contains("conflict") && err.contains("alice") && err.contains(".spec.hubAcceptsClient"), "{err}");
    let obj = json(&hub.kubectl_ok(&["get", "managedcluster", "c1", "-o", "json"]));
    assert_eq!(obj["spec"]["hubAcceptsClient"], false, "a conflicting apply changes nothing");

    let out = apply("bob", true, true);
    assert!(out.status.success(), "{}", stderr(&out));
    let obj = json(&hub.kubectl_ok(&["get", "managedcluster", "c1", "-o", "json", "--show-managed-fields"]));
    assert_eq!(obj["spec"]["hubAcceptsClient"], true);
    let managers: Vec<&str> = obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"bob"), "{managers:?}");
}

#[test]
fn finalizers_hold_deletion_until_removed() {
    let hub = Server::hub();
    let yaml = "apiVersion: cluster.open-cluster-management.io/v1\nkind: ManagedCluster\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\nspec:\n  hubAcceptsClient: true\n";
    hub.kubectl_stdin(&["create", "-f", "-"], yaml);
    hub.kubectl_ok(&["delete", "managedcluster", "held", "--wait=false"]);
    let obj = json(&hub.kubectl_ok(&["get", "managedcluster", "held", "-o", "json"]));
    assert!(obj["metadata"]["deletionTimestamp"].is_string(), "{obj}");
    hub.kubectl_ok(&["patch", "managedcluster", "held", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
    let out = hub.kubectl(&["get", "managedcluster", "held"]);
    assert!(!out.status.success() && stderr(&out).contains("NotFound"), "{}", stderr(&out));
}

fn create_owner_and_dependent(hub: &Server, ns: &str) -> String {
    hub.namespace(ns);
    let placement = format!(
        "apiVersion: cluster.open-cluster-management.io/v1beta1\nkind: Placement\nmetadata:\n  name: owner\n  namespace: {ns}\nspec: {{}}\n"
    );
    hub.kubectl_stdin(&["create", "-f", "-"], &placement);
    let uid = hub.kubectl_ok(&["get", "placement", "owner", "-n", ns, "-o", "jsonpath={.metadata.uid}"]);
    // A ConfigMap as the dependent: the hub's placement controller writes the placement's own
    // PlacementDecisions, and garbage collection is the same for every kind.
    let dependent = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  namespace: {ns}\n  ownerReferences:\n  - apiVersion: cluster.open-cluster-management.io/v1beta1\n    kind: Placement\n    name: owner\n    uid: {uid}\n    blockOwnerDeletion: true\n"
    );
    let out = hub.kubectl_stdin(&["create", "-f", "-"], &dependent);
    assert!(out.status.success(), "{}", stderr(&out));
    uid
}

#[test]
fn owner_references_cascade_in_background_foreground_and_orphan() {
    let hub = Server::hub();
    let gone = |ns: &str| {
        eventually(Duration::from_secs(20), || {
            let out = hub.kubectl(&["get", "configmap", "owned", "-n", ns]);
            (!out.status.success()).then_some(())
        })
    };
    create_owner_and_dependent(&hub, "bg");
    hub.kubectl_ok(&["delete", "placement", "owner", "-n", "bg"]);
    assert!(gone("bg").is_some(), "background cascade deletes the dependent");

    create_owner_and_dependent(&hub, "fg");
    hub.kubectl_ok(&["delete", "placement", "owner", "-n", "fg", "--cascade=foreground"]);
    assert!(gone("fg").is_some(), "foreground cascade deletes the dependent");
    let owner_gone = eventually(Duration::from_secs(20), || {
        (!hub.kubectl(&["get", "placement", "owner", "-n", "fg"]).status.success()).then_some(())
    });
    assert!(owner_gone.is_some(), "the owner goes once its dependents are gone");

    create_owner_and_dependent(&hub, "orphan");
    hub.kubectl_ok(&["delete", "placement", "owner", "-n", "orphan", "--cascade=orphan"]);
    let orphaned = eventually(Duration::from_secs(20), || {
        let obj = json(&hub.kubectl_ok(&["get", "configmap", "owned", "-n", "orphan", "-o", "json"]));
        obj["metadata"].get("ownerReferences").is_none_or(|r| r.as_array().is_some_and(|a| a.is_empty())).then_some(())
    });
    assert!(orphaned.is_some(), "orphan deletion strips the owner reference and keeps the dependent");
    let owner_gone = eventually(Duration::from_secs(20), || {
        (!hub.kubectl(&["get", "placement", "owner", "-n", "orphan"]).status.success()).then_some(())
    });
    assert!(owner_gone.is_some());
}

#[test]
fn namespace_deletion_removes_its_contents() {
    let hub = Server::hub();
    create_owner_and_dependent(&hub, "doomed");
    hub.kubectl_ok(&["delete", "namespace", "doomed", "--wait=false"]);
    let gone = eventually(Duration::from_secs(30), || {
        (!hub.kubectl(&["get", "namespace", "doomed"]).status.success()).then_some(())
    });
    assert!(gone.is_some(), "namespace finalized after its contents went");
    let left = hub.kubectl_ok(&["get", "placements", "-A", "-o", "name"]);
    assert!(left.trim().is_empty(), "{left}");
}

#[test]
fn selectors_and_paging() {
    let hub = Server::hub();
    for i in 0..7 {
        let env = if i % 2 == 0 { "prod" } else { "dev" };
        let yaml = format!(
            "apiVersion: cluster.open-cluster-management.io/v1\nkind: ManagedCluster\nmetadata:\n  name: c{i}\n  labels:\n    env: {env}\nspec:\n  hubAcceptsClient: true\n"
        );
        let out = hub.kubectl_stdin(&["create", "-f", "-"], &yaml);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let names = hub.kubectl_ok(&["get", "managedclusters", "-l", "env=prod", "-o", "name"]);
    assert_eq!(names.lines().count(), 4, "{names}");
    let names = hub.kubectl_ok(&["get", "managedclusters", "-l", "env in (dev),env!=prod", "-o", "name"]);
    assert_eq!(names.lines().count(), 3, "{names}");
    let names = hub.kubectl_ok(&["get", "managedclusters", "--field-selector", "metadata.name=c3", "-o", "name"]);
    assert_eq!(names.trim(), "managedcluster.cluster.open-cluster-management.io/c3");
    // kubectl pages with limit/continue and must still see everything.
    let names = hub.kubectl_ok(&["get", "managedclusters", "--chunk-size=2", "-o", "name"]);
    assert_eq!(names.lines().count(), 7, "{names}");
    let page =
        json(&hub.kubectl_ok(&["get", "--raw", "/apis/cluster.open-cluster-management.io/v1/managedclusters?limit=3"]));
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(page["metadata"]["remainingItemCount"], 4);
    let token = page["metadata"]["continue"].as_str().expect("continue token");
    let next = json(&hub.kubectl_ok(&[
        "get",
        "--raw",
        &format!("/apis/cluster.open-cluster-management.io/v1/managedclusters?limit=3&continue={token}"),
    ]));
    assert_eq!(next["items"].as_array().map(Vec::len), Some(3));
    let ns_field = hub.kubectl_ok(&["get", "namespaces", "--field-selector", "metadata.name=default", "-o", "name"]);
    assert_eq!(ns_field.trim(), "namespace/default");
}

#[test]
fn watch_streams_events_to_kubectl() {
    let hub = Server::hub();
    let mut watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&hub.kubeconfig)
        .args(["get", "managedclusters", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl watch");
    let stdout_pipe = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout_pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(800));
    hub.kubectl_stdin(&["create", "-f", "-"], &cluster_yaml("w1", false));
    hub.kubectl_ok(&["patch", "managedcluster", "w1", "--type=merge", "-p", r#"{"spec":{"hubAcceptsClient":true}}"#]);
    hub.kubectl_ok(&["delete", "managedcluster", "w1"]);
    let mut seen: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|l: &String| l.starts_with("DELETED")) && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(line);
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let text = seen.join("\n");
    assert!(text.contains("ADDED") && text.contains("MODIFIED") && text.contains("DELETED"), "watch saw: {text}");
}

#[test]
fn invalid_objects_are_rejected_with_the_field_named() {
    let hub = Server::hub();
    hub.namespace("apps");
    let bad = "apiVersion: cluster.open-cluster-management.io/v1beta1\nkind: Placement\nmetadata:\n  name: bad\n  namespace: apps\nspec:\n  prioritizerPolicy:\n    mode: Sometimes\n";
    let out = hub.kubectl_stdin(&["create", "-f", "-"], bad);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("spec.prioritizerPolicy.mode") && err.contains("Sometimes"), "{err}");
    let out = hub.kubectl(&["get", "placement", "bad", "-n", "apps"]);
    assert!(!out.status.success(), "nothing stored");

    let work = "apiVersion: work.open-cluster-management.io/v1\nkind: ManifestWork\nmetadata:\n  name: w\n  namespace: nowhere\nspec:\n  workload:\n    manifests: []\n";
    let out = hub.kubectl_stdin(&["create", "-f", "-"], work);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("namespaces \"nowhere\" not found"), "{}", stderr(&out));
    let unknown_field = "apiVersion: cluster.open-cluster-management.io/v1\nkind: ManagedCluster\nmetadata:\n  name: typo\nspec:\n  hubAcceptClient: true\n";
    let out = hub.kubectl_stdin(&["create", "-f", "-"], unknown_field);
    assert!(!out.status.success(), "kubectl's strict validation rejects unknown fields");
    assert!(stderr(&out).contains("hubAcceptClient"), "{}", stderr(&out));
    assert!(stdout(&hub.kubectl(&["get", "managedclusters", "-o", "name"])).trim().is_empty());
}

#[test]
fn imperative_kubectl_commands_send_protobuf_and_work() {
    // `kubectl create namespace|secret|configmap` and `kubectl certificate approve` send
    // built-in kinds as application/vnd.kubernetes.protobuf.
    let hub = Server::hub();
    hub.kubectl_ok(&["create", "namespace", "imperative"]);
    hub.kubectl_ok(&["create", "secret", "generic", "creds", "-n", "imperative", "--from-literal=password=s3cr3t"]);
    hub.kubectl_ok(&["create", "configmap", "settings", "-n", "imperative", "--from-literal=mode=fast"]);
    let secret = json(&hub.kubectl_ok(&["get", "secret", "creds", "-n", "imperative", "-o", "json"]));
    assert_eq!(secret["data"]["password"], "czNjcjN0", "base64 of the literal: {secret}");
    assert_eq!(secret["type"], "Opaque");
    let config = json(&hub.kubectl_ok(&["get", "configmap", "settings", "-n", "imperative", "-o", "json"]));
    assert_eq!(config["data"]["mode"], "fast");
    // Creating it again is a clean AlreadyExists, not a decoding failure.
    let again = hub.kubectl(&["create", "namespace", "imperative"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("AlreadyExists"), "{}", stderr(&again));

    let (_, csr_pem) = flotilla_pki::generate_key_and_csr("operator", &["ops".to_string()]).expect("csr");
    let request = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, csr_pem);
    let csr = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: operator\nspec:\n  \
         request: {request}\n  signerName: kubernetes.io/kube-apiserver-client\n  usages: [client auth]\n"
    );
    let out = hub.kubectl_stdin(&["create", "-f", "-"], &csr);
    assert!(out.status.success(), "{}", stderr(&out));
    let approved = hub.kubectl_ok(&["certificate", "approve", "operator"]);
    assert!(approved.contains("approved"), "{approved}");
    let csr = json(&hub.kubectl_ok(&["get", "csr", "operator", "-o", "json"]));
    let conditions = csr["status"]["conditions"].as_array().expect("conditions");
    assert!(conditions.iter().any(|c| c["type"] == "Approved" && c["status"] == "True"), "{csr}");
}
