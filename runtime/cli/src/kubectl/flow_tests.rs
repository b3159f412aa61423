//! The commands end to end against the in-memory fake API: requests sent and output printed.

#![allow(clippy::unwrap_used)]

use std::process::ExitCode;

use clap::Parser as _;
use serde_json::{Value, json};

use super::fake_api::FakeApi;
use crate::args::{Cli, Command};

const MC: &str = "cluster.open-cluster-management.io";
const WORK: &str = "work.open-cluster-management.io";

fn fake() -> FakeApi {
    let api = FakeApi::default();
    let now = jiff::Timestamp::now();
    let ago = |secs: i64| now.checked_sub(jiff::SignedDuration::from_secs(secs)).unwrap().to_string();
    api.insert(
        MC,
        "managedclusters",
        json!({"apiVersion": format!("{MC}/v1"), "kind": "ManagedCluster",
               "metadata": {"name": "cluster1", "labels": {"env": "prod"}, "creationTimestamp": ago(300)},
               "spec": {"hubAcceptsClient": true, "url": "https://c1"},
               "status": {"available": "True"}}),
    );
    api.insert(
        MC,
        "managedclusters",
        json!({"apiVersion": format!("{MC}/v1"), "kind": "ManagedCluster",
               "metadata": {"name": "cluster-two", "labels": {"env": "dev"}, "creationTimestamp": ago(52 * 3600)},
               "spec": {"hubAcceptsClient": false}}),
    );
    api.insert(
        WORK,
        "manifestworks",
        json!({"apiVersion": format!("{WORK}/v1"), "kind": "ManifestWork",
               "metadata": {"name": "w1", "namespace": "cluster1", "creationTimestamp": ago(10)},
               "spec": {"workload": {"manifests": []}}}),
    );
    api
}

/// Parses a command line and runs it against the fake; returns (exit, stdout, stderr).
async fn run(api: &FakeApi, line: &[&str]) -> (ExitCode, String, String) {
    let cli = Cli::try_parse_from(std::iter::once("flotilla").chain(line.iter().copied())).unwrap();
    let (session, captured) = api.session();
    let result = match cli.command {
        Command::Get(a) => super::get::run(&session, a).await,
        Command::Describe(a) => super::describe::run(&session, a).await,
        Command::Apply(a) => super::apply::run(&session, a).await,
        Command::Delete(a) => super::delete::run(&session, a).await,
        other => panic!("not a client command: {other:?}"),
    };
    let c = captured.lock().unwrap().clone();
    match result {
        Ok(code) => (code, c.out, c.err),
        Err(e) => (ExitCode::FAILURE, c.out, format!("{}error: {e:#}\n", c.err)),
    }
}

#[tokio::test]
async fn get_prints_the_server_table() {
    let api = fake();
    let (code, out, err) = run(&api, &["get", "clusters"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // ManagedClusters get a LABELS column on top of the server's table.
    assert_eq!(lines[0], "NAME          AVAILABLE   AGE    LABELS");
    assert_eq!(lines[1], "cluster1      True        5m     env=prod");
    assert_eq!(lines[2], "cluster-two               2d4h   env=dev");
    let list = api.seen().into_iter().find(|s| s.path == format!("/apis/{MC}/v1/managedclusters")).unwrap();
    assert_eq!(list.accept, "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
    assert_eq!(list.param("includeObject").as_deref(), Some("Metadata"));
    assert_eq!(list.param("limit").as_deref(), Some("500"));

    let (_, out, _) = run(&api, &["get", "mcl", "cluster1", "-o", "wide"]).await;
    assert_eq!(
        out,
        "NAME       AVAILABLE   AGE   URL          LABELS\ncluster1   True        5m    https://c1   env=prod\n"
    );
    let (_, out, _) = run(&api, &["get", "managedclusters", "-l", "env=dev"]).await;
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("cluster-two"));
}

#[tokio::test]
async fn get_namespaced_all_namespaces_and_empty() {
    let api = fake();
    let (code, out, err) = run(&api, &["get", "works", "-A"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{err}");
    assert!(out.starts_with("NAMESPACE   NAME"), "{out}");
    assert!(out.contains("cluster1    w1"), "{out}");
    assert!(api.seen().iter().any(|s| s.path == format!("/apis/{WORK}/v1/manifestworks")));

    let (code, out, err) = run(&api, &["get", "manifestworks", "-n", "default"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(out, "");
    assert_eq!(err, "No resources found in default namespace.\n");

    let (_, out, _) = run(&api, &["get", "mw", "-n", "cluster1", "-o", "name"]).await;
    assert_eq!(out, "manifestwork.work.open-cluster-management.io/w1\n");
}

#[tokio::test]
async fn get_yaml_json_and_missing_objects() {
    let api = fake();
    let (code, out, _) = run(&api, &["get", "clusters", "-o", "yaml"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    let list: Value = serde_saphyr::from_str(&out).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    let plain = api.seen().into_iter().rev().find(|s| s.path.ends_with("/managedclusters")).unwrap();
    assert_eq!(plain.accept, "");

    let (_, out, _) = run(&api, &["get", "clusters", "cluster1", "-o", "json"]).await;
    let obj: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(obj["kind"], "ManagedCluster");
    assert!(out.starts_with("{\n    \"apiVersion\""), "{out}");

    let (code, out, err) = run(&api, &["get", "clusters", "nope", "cluster1"]).await;
    assert_eq!(code, ExitCode::FAILURE);
    assert!(out.contains("cluster1"), "{out}");
    assert_eq!(
        err,
        "Error from server (NotFound): managedclusters.cluster.open-cluster-management.io \"nope\" not found\n"
    );

    let (code, _, err) = run(&api, &["get", "widgets"]).await;
    assert_eq!(code, ExitCode::FAILURE);
    assert!(err.contains("the server doesn't have a resource type \"widgets\""), "{err}");
}

#[tokio::test]
async fn get_watch_prints_rows_as_they_arrive() {
    let api = fake();
    api.set_watch_events(vec![json!({"apiVersion": format!("{MC}/v1"), "kind": "ManagedCluster",
        "metadata": {"name": "cluster3", "resourceVersion": "99", "creationTimestamp": "2025-01-01T00:00:00Z"},
        "status": {"available": "Unknown"}})]);
    let (code, out, err) = run(&api, &["get", "clusters", "-w"]).await;
    // The fake ends the watch with 410 Gone.
    assert_eq!(code, ExitCode::FAILURE);
    assert!(err.contains("410"), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[3].starts_with("cluster3      Unknown"), "{out}");
    let watch = api.seen().into_iter().find(|s| s.param("watch").is_some()).unwrap();
    assert_eq!(watch.param("resourceVersion").as_deref(), Some("3"));
    assert!(watch.accept.contains("as=Table"));
}

#[tokio::test]
async fn describe_renders_object_and_events_placeholder() {
    let api = fake();
    let (code, out, err) = run(&api, &["describe", "cluster", "cluster1"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{err}");
    assert!(out.starts_with("Name:         cluster1\n"), "{out}");
    assert!(out.contains("Labels:       env=prod\n"), "{out}");
    assert!(out.contains("API Version:  cluster.open-cluster-management.io/v1\n"), "{out}");
    assert!(out.contains("Spec:\n  Hub Accepts Client:  true\n"), "{out}");
    assert!(out.trim_end().ends_with("<none>"), "{out}");
    assert!(out.contains("Events:"), "{out}");
    let events = api.seen().into_iter().find(|s| s.path == "/api/v1/events").unwrap();
    assert_eq!(
        events.param("fieldSelector").as_deref(),
        Some("involvedObject.name=cluster1,involvedObject.namespace=,involvedObject.uid=uid-1")
    );
}

#[tokio::test]
async fn apply_reports_each_document() {
    let api = fake();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objs.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: {MC}/v1\nkind: ManagedCluster\nmetadata:\n  name: c9\nspec:\n  hubAcceptsClient: true\n\
             ---\n\
             apiVersion: {WORK}/v1\nkind: ManifestWork\nmetadata:\n  name: w9\nspec: {{}}\n\
             ---\n\
             apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: x\n\
             ---\n\
             apiVersion: {MC}/v1\nkind: ManagedCluster\nmetadata:\n  name: c10\n  labels: {{conflict: \"yes\"}}\n"
        ),
    )
    .unwrap();
    let path = file.display().to_string();
    let (code, out, err) = run(&api, &["apply", "-f", &path]).await;
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(
        out,
        "managedcluster.cluster.open-cluster-management.io/c9 serverside-applied\n\
         manifestwork.work.open-cluster-management.io/w9 serverside-applied\n"
    );
    assert!(err.contains(&format!("error: {path} (document 3): resource mapping not found")), "{err}");
    assert!(err.contains(&format!("error: {path} (document 4): Error from server (Conflict)")), "{err}");
    assert!(err.contains("--force-conflicts"), "{err}");

    let patch = api.seen().into_iter().find(|s| s.method == "PATCH" && s.path.ends_with("/c9")).unwrap();
    assert_eq!(patch.content_type, "application/apply-patch+yaml");
    assert_eq!(patch.param("fieldManager").as_deref(), Some("flotilla"));
    assert_eq!(patch.path, format!("/apis/{MC}/v1/managedclusters/c9"));
    let body: Value = serde_json::from_str(&patch.body).unwrap();
    assert_eq!(body["spec"]["hubAcceptsClient"], true);
    assert!(body["metadata"].get("namespace").is_none());
    let work = api.object(WORK, "manifestworks", "default", "w9").unwrap();
    assert_eq!(work["metadata"]["namespace"], "default");

    let (code, out, _) = run(&api, &["apply", "-f", &path, "--force-conflicts", "-n", "other"]).await;
    assert_eq!(code, ExitCode::FAILURE);
    assert!(out.contains("managedcluster.cluster.open-cluster-management.io/c10 serverside-applied"), "{out}");
    assert!(out.contains("manifestwork.work.open-cluster-management.io/w9 serverside-applied"), "{out}");
    assert!(api.object(WORK, "manifestworks", "other", "w9").is_some());
    let forced = api.seen().into_iter().rev().find(|s| s.method == "PATCH" && s.path.ends_with("/c10")).unwrap();
    assert_eq!(forced.param("force").as_deref(), Some("true"));
}

#[tokio::test]
async fn delete_by_name_and_from_files() {
    let api = fake();
    let (code, out, err) = run(&api, &["delete", "clusters", "cluster1"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{err}");
    assert_eq!(out, "managedcluster.cluster.open-cluster-management.io \"cluster1\" deleted\n");
    assert!(api.object(MC, "managedclusters", "", "cluster1").is_none());
    // --wait polled until the object was gone.
    assert!(api.seen().iter().any(|s| s.method == "GET" && s.path.ends_with("/managedclusters/cluster1")));

    let (code, _, err) = run(&api, &["delete", "clusters", "cluster1", "--wait=false"]).await;
    assert_eq!(code, ExitCode::FAILURE);
    assert!(err.starts_with("Error from server (NotFound)"), "{err}");
    let (code, _, _) = run(&api, &["delete", "clusters", "cluster1", "--ignore-not-found"]).await;
    assert_eq!(code, ExitCode::SUCCESS);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.yaml");
    std::fs::write(
        &file,
        format!("apiVersion: {WORK}/v1\nkind: ManifestWork\nmetadata:\n  name: w1\n  namespace: cluster1\n"),
    )
    .unwrap();
    let (code, out, err) = run(&api, &["delete", "-f", &file.display().to_string()]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{err}");
    assert_eq!(out, "manifestwork.work.open-cluster-management.io \"w1\" deleted\n");

    let (code, _, err) = run(&api, &["delete", "clusters"]).await;
    assert_eq!(code, ExitCode::FAILURE);
    assert!(err.contains("no name was specified"), "{err}");
    let (code, out, _) = run(&api, &["delete", "clusters", "--all"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(out.contains("\"cluster-two\" deleted"), "{out}");
}

/// Works in two cluster namespaces, with and without status.
fn fake_with_works() -> FakeApi {
    let api = fake();
    let now = jiff::Timestamp::now();
    let ago = |secs: i64| now.checked_sub(jiff::SignedDuration::from_secs(secs)).unwrap().to_string();
    let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}});
    let condition = |type_: &str, status: &str| {
        json!({"type": type_, "status": status, "reason": "Test",
        "lastTransitionTime": "2025-01-01T00:00:00Z"})
    };
    api.insert(
        WORK,
        "manifestworks",
        json!({"apiVersion": format!("{WORK}/v1"), "kind": "ManifestWork",
               "metadata": {"name": "app", "namespace": "cluster1", "creationTimestamp": ago(120)},
               "spec": {"workload": {"manifests": [cm("a"), cm("b")]}},
               "status": {"conditions": [condition("Applied", "True"), condition("Available", "True"),
                                         condition("Progressing", "False"), condition("Degraded", "False")]}}),
    );
    api.insert(
        WORK,
        "manifestworks",
        json!({"apiVersion": format!("{WORK}/v1"), "kind": "ManifestWork",
               "metadata": {"name": "app", "namespace": "cluster2", "creationTimestamp": ago(3600)},
               "spec": {"workload": {"manifests": [cm("a"), cm("b"), cm("c")]}},
               "status": {"conditions": [condition("Applied", "True"), condition("Available", "False"),
                                         condition("Complete", "True")]}}),
    );
    api
}

#[tokio::test]
async fn get_works_lists_every_cluster_with_condition_columns() {
    let api = fake_with_works();
    let (code, out, err) = run(&api, &["get", "works"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{err}");
    assert_eq!(
        out,
        "NAMESPACE   NAME   APPLIED   AVAILABLE   DEGRADED   MANIFESTS   AGE\n\
         cluster1    w1                                      0           10s\n\
         cluster1    app    True      True        False      2           2m\n\
         cluster2    app    True      False                  3           60m\n"
    );
    let list = api.seen().into_iter().rev().find(|s| s.path.ends_with("/manifestworks")).unwrap();
    assert_eq!(list.path, format!("/apis/{WORK}/v1/manifestworks"), "every namespace");
    assert_eq!(list.param("includeObject").as_deref(), Some("Object"), "the columns need the whole objects");

    // One cluster's works: no NAMESPACE column, as kubectl prints one namespace.
    let (code, out, _) = run(&api, &["get", "works", "-n", "cluster2"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(
        out,
        "NAME   APPLIED   AVAILABLE   DEGRADED   MANIFESTS   AGE\napp    True      False                  3           60m\n"
    );
    let list = api.seen().into_iter().rev().find(|s| s.path.ends_with("/manifestworks")).unwrap();
    assert_eq!(list.path, format!("/apis/{WORK}/v1/namespaces/cluster2/manifestworks"));

    // -o wide adds PROGRESSING and COMPLETE at the end; -A is the same as nothing.
    let (_, out, _) = run(&api, &["get", "works", "-A", "-o", "wide"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "NAMESPACE   NAME   APPLIED   AVAILABLE   DEGRADED   MANIFESTS   AGE   PROGRESSING   COMPLETE"
    );
    // Like kubectl (Go's tabwriter), an empty last cell leaves the one before it padded.
    assert!(lines[2].trim_end().ends_with("2m    False"), "{out}");
    assert!(lines[3].ends_with("60m                 True"), "{out}");

    // By name without -n: that work on every cluster.
    let (code, out, err) = run(&api, &["get", "works", "app"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().skip(1).all(|l| l.contains(" app ")), "{out}");
    let named = api.seen().into_iter().rev().find(|s| s.path.ends_with("/manifestworks")).unwrap();
    assert_eq!(named.param("fieldSelector").as_deref(), Some("metadata.name=app"));
    let (code, out, err) = run(&api, &["get", "works", "app", "nope"]).await;
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert_eq!(err, format!("Error from server (NotFound): manifestworks.{WORK} \"nope\" not found\n"));
    let (code, out, _) = run(&api, &["get", "works", "app", "-o", "name"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(out, format!("manifestwork.{WORK}/app\nmanifestwork.{WORK}/app\n"));
    let (_, out, _) = run(&api, &["get", "works", "app", "-n", "cluster1", "-o", "json"]).await;
    let obj: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(obj["metadata"]["namespace"], "cluster1");
    let (code, _, err) = run(&api, &["get", "works", "app", "-A"]).await;
    assert_eq!(code, ExitCode::FAILURE);
    assert!(err.contains("across all namespaces"), "{err}");

    // Other kinds still ask for metadata only.
    run(&api, &["get", "clusters"]).await;
    let clusters = api.seen().into_iter().rev().find(|s| s.path.ends_with("/managedclusters")).unwrap();
    assert_eq!(clusters.param("includeObject").as_deref(), Some("Metadata"));
}
