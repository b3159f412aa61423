//! A real hub (the registration tests' harness: `flotilla_hub::start` on 127.0.0.1, kube-rs
//! over TLS) and what the placement tests write to it: namespaces, ManagedClusters (accepted,
//! without agents: written directly by the admin, their status through the status
//! subresource), ManagedClusterSetBindings, Placements, WasmPlugins and their blobs.
#![allow(dead_code)]

#[path = "../../../registration/tests/common/mod.rs"]
mod hub;

use std::collections::BTreeSet;
use std::path::Path;

pub use hub::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

pub const PLACEMENT_LABEL: &str = "cluster.open-cluster-management.io/placement";
pub const GROUP_INDEX_LABEL: &str = "cluster.open-cluster-management.io/decision-group-index";
pub const GROUP_NAME_LABEL: &str = "cluster.open-cluster-management.io/decision-group-name";

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub fn placements() -> ApiResource {
    resource("cluster.open-cluster-management.io", "v1beta1", "Placement", "placements")
}

pub fn placement_decisions() -> ApiResource {
    resource("cluster.open-cluster-management.io", "v1beta1", "PlacementDecision", "placementdecisions")
}

pub fn wasm_plugins() -> ApiResource {
    resource("flotilla.dev", "v1alpha1", "WasmPlugin", "wasmplugins")
}

fn object(res: &ApiResource, mut body: Value) -> DynamicObject {
    body["apiVersion"] = json!(res.api_version);
    body["kind"] = json!(res.kind);
    serde_json::from_value(body).expect("object")
}

pub async fn namespace(hub: &Hub, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(hub.admin.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
}

/// An accepted ManagedCluster with these labels (no agent: nothing taints it).
pub async fn cluster(hub: &Hub, name: &str, labels: Value) {
    let obj = object(
        &managed_clusters(),
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"hubAcceptsClient": true}}),
    );
    hub.clusters().create(&PostParams::default(), &obj).await.expect("create cluster");
}

/// Merges labels into a cluster's (`null` removes one).
pub async fn label_cluster(hub: &Hub, name: &str, labels: Value) {
    let patch = json!({"metadata": {"labels": labels}});
    hub.clusters().patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("label cluster");
}

/// Merges `status` into a cluster's status (what an agent reports).
pub async fn cluster_status(hub: &Hub, name: &str, status: Value) {
    let patch = json!({"status": status});
    hub.clusters().patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("cluster status");
}

/// Binds the cluster set `set` to namespace `ns`.
pub async fn bind(hub: &Hub, ns: &str, set: &str) {
    let obj = object(&bindings(), json!({"metadata": {"name": set, "namespace": ns}, "spec": {"clusterSet": set}}));
    Api::<DynamicObject>::namespaced_with(hub.admin.clone(), ns, &bindings())
        .create(&PostParams::default(), &obj)
        .await
        .expect("create binding");
}

pub fn placement_api(hub: &Hub, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(hub.admin.clone(), ns, &placements())
}

pub fn decision_api(hub: &Hub, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(hub.admin.clone(), ns, &placement_decisions())
}

pub async fn create_placement(hub: &Hub, ns: &str, name: &str, spec: Value) {
    let obj = object(&placements(), json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}));
    placement_api(hub, ns).create(&PostParams::default(), &obj).await.expect("create placement");
}

/// Merge-patches a Placement.
pub async fn patch_placement(hub: &Hub, ns: &str, name: &str, patch: Value) {
    placement_api(hub, ns).patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch placement");
}

pub async fn get_placement(hub: &Hub, ns: &str, name: &str) -> Value {
    to_value(&placement_api(hub, ns).get(name).await.expect("get placement"))
}

/// The PlacementDecisions labelled for a placement, by name.
pub async fn decisions_of(hub: &Hub, ns: &str, placement: &str) -> Vec<Value> {
    let params = ListParams::default().labels(&format!("{PLACEMENT_LABEL}={placement}"));
    let mut items: Vec<Value> =
        decision_api(hub, ns).list(&params).await.expect("list decisions").items.iter().map(to_value).collect();
    items.sort_by_key(|d| d["metadata"]["name"].as_str().unwrap_or_default().to_string());
    items
}

/// The clusters the PlacementDecisions of a placement list, in order.
pub async fn selected(hub: &Hub, ns: &str, placement: &str) -> Vec<String> {
    let mut out = Vec::new();
    for pd in decisions_of(hub, ns, placement).await {
        for d in pd.pointer("/status/decisions").and_then(Value::as_array).cloned().unwrap_or_default() {
            out.push(d["clusterName"].as_str().unwrap_or_default().to_string());
        }
    }
    out
}

/// Waits until the placement's decisions are exactly `clusters` (as a set).
pub async fn wait_selected(hub: &Hub, ns: &str, placement: &str, clusters: &[&str]) -> Vec<String> {
    let want: BTreeSet<String> = clusters.iter().map(|c| c.to_string()).collect();
    eventually(&format!("{ns}/{placement} to select {want:?}"), || async {
        let now = selected(hub, ns, placement).await;
        (now.iter().cloned().collect::<BTreeSet<_>>() == want && now.len() == want.len()).then_some(now)
    })
    .await
}

/// Waits until a condition of the placement has this status and reason.
pub async fn wait_condition(hub: &Hub, ns: &str, placement: &str, type_: &str, status: &str, reason: &str) -> Value {
    eventually(&format!("{ns}/{placement} {type_}={status} ({reason})"), || async {
        let p = get_placement(hub, ns, placement).await;
        condition(&p, type_).filter(|c| c["status"] == status && c["reason"] == reason).cloned()
    })
    .await
}

pub async fn delete_decision(hub: &Hub, ns: &str, name: &str) {
    decision_api(hub, ns).delete(name, &DeleteParams::default()).await.expect("delete decision");
}

/// The directory of the built plugins (`plugins/build.sh`, once per test process).
pub fn artifacts() -> &'static Path {
    flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}"))
}

pub fn wasm(name: &str) -> Vec<u8> {
    let path = artifacts().join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// One raw request as the given client: (status, body).
pub async fn raw(client: &kube::Client, method: &str, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let request =
        http::Request::builder().method(method).uri(path).body(kube::client::Body::from(body)).expect("request");
    let response = client.send(request).await.expect("send");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect_bytes().await.expect("body").to_vec();
    (status, bytes)
}

/// Uploads a built plugin's component and creates its WasmPlugin (as `flotilla plugin push`
/// does), with `spec` fields merged in (failurePolicy, limits).
pub async fn push_plugin(hub: &Hub, name: &str, artifact: &str, world: &str, extra_spec: Value) {
    let bytes = wasm(artifact);
    let digest = flotilla_plugin_host::digest_of(&bytes);
    let (status, body) = raw(&hub.admin, "PUT", &format!("/blobs/{digest}"), bytes.clone()).await;
    assert!(status == 200 || status == 201, "upload {artifact}: {status} {}", String::from_utf8_lossy(&body));
    // What describe() reports for every plugin of the workspace (admission checks it).
    let version = "0.1.0";
    let mut spec = json!({"world": world, "version": version, "digest": digest});
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(extra.clone());
    }
    let obj = object(&wasm_plugins(), json!({"metadata": {"name": name}, "spec": spec}));
    Api::<DynamicObject>::all_with(hub.admin.clone(), &wasm_plugins())
        .create(&PostParams::default(), &obj)
        .await
        .expect("create WasmPlugin");
}

/// Merge-patches a WasmPlugin's spec.
pub async fn patch_plugin(hub: &Hub, name: &str, spec: Value) {
    let patch = json!({"spec": spec});
    Api::<DynamicObject>::all_with(hub.admin.clone(), &wasm_plugins())
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch WasmPlugin");
}
