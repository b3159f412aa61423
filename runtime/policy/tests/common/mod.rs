//! A real hub (the placement tests' harness: `flotilla_hub::start` on 127.0.0.1, kube-rs over
//! TLS, accepted ManagedClusters without agents, Placements scheduled by the real placement
//! controller) and what the policy tests write to it: Policies, PlacementBindings, PolicySets,
//! and replica status as an agent writes it.
#![allow(dead_code)]

#[path = "../../../placement/tests/common/mod.rs"]
mod placement;

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
pub use placement::*;
use serde_json::{Value, json};

pub const NS: &str = "policies";
pub const GROUP: &str = "policy.open-cluster-management.io";
pub const ROOT_LABEL: &str = "policy.open-cluster-management.io/root-policy";

fn resource(version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: version.into(),
        api_version: format!("{GROUP}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub fn policies() -> ApiResource {
    resource("v1", "Policy", "policies")
}

pub fn placement_bindings() -> ApiResource {
    resource("v1", "PlacementBinding", "placementbindings")
}

pub fn policy_sets() -> ApiResource {
    resource("v1beta1", "PolicySet", "policysets")
}

fn dynamic(res: &ApiResource, mut body: Value) -> DynamicObject {
    body["apiVersion"] = json!(res.api_version);
    body["kind"] = json!(res.kind);
    serde_json::from_value(body).expect("object")
}

pub fn api(hub: &Hub, res: &ApiResource, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(hub.admin.clone(), ns, res)
}

/// A hub with namespace `policies` bound to the `default` cluster set, and these clusters
/// (accepted, labelled; every cluster created without a set label joins `default`).
pub async fn hub_with_clusters(clusters: &[(&str, Value)]) -> Hub {
    let hub = Hub::start().await;
    namespace(&hub, NS).await;
    bind(&hub, NS, "default").await;
    for (name, labels) in clusters {
        cluster(&hub, name, labels.clone()).await;
    }
    hub
}

/// A ConfigurationPolicy template: musthave a Namespace `prod` labelled `owner`.
pub fn configuration_template(name: &str) -> Value {
    json!({"objectDefinition": {
        "apiVersion": "policy.open-cluster-management.io/v1",
        "kind": "ConfigurationPolicy",
        "metadata": {"name": name},
        "spec": {"remediationAction": "inform", "severity": "low", "object-templates": [{
            "complianceType": "musthave",
            "objectDefinition": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "labels": {"owner": "ops"}}}
        }]}
    }})
}

pub async fn create_policy(hub: &Hub, ns: &str, name: &str, spec: Value) {
    let obj = dynamic(&policies(), json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}));
    api(hub, &policies(), ns).create(&PostParams::default(), &obj).await.expect("create policy");
}

/// A Policy with one ConfigurationPolicy template and `remediationAction: inform`.
pub async fn create_simple_policy(hub: &Hub, name: &str) {
    let spec = json!({"disabled": false, "remediationAction": "inform", "policy-templates": [configuration_template("prod-ns")]});
    create_policy(hub, NS, name, spec).await;
}

pub async fn patch_policy(hub: &Hub, ns: &str, name: &str, patch: Value) {
    api(hub, &policies(), ns).patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch policy");
}

pub async fn get_policy(hub: &Hub, ns: &str, name: &str) -> Value {
    to_value(&api(hub, &policies(), ns).get(name).await.expect("get policy"))
}

pub async fn delete(hub: &Hub, res: &ApiResource, ns: &str, name: &str) {
    api(hub, res, ns).delete(name, &DeleteParams::default()).await.expect("delete");
}

/// A PlacementBinding of `placement` to subjects `(kind, name)`, with extra top-level fields
/// (`bindingOverrides`, `subFilter`).
pub async fn create_binding(hub: &Hub, name: &str, placement: &str, subjects: &[(&str, &str)], extra: Value) {
    let subjects: Vec<Value> = subjects.iter().map(|(k, n)| json!({"apiGroup": GROUP, "kind": k, "name": n})).collect();
    let mut body = json!({
        "metadata": {"name": name, "namespace": NS},
        "placementRef": {"apiGroup": "cluster.open-cluster-management.io", "kind": "Placement", "name": placement},
        "subjects": subjects,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let obj = dynamic(&placement_bindings(), body);
    api(hub, &placement_bindings(), NS).create(&PostParams::default(), &obj).await.expect("create binding");
}

pub async fn create_policy_set(hub: &Hub, name: &str, spec: Value) {
    let obj = dynamic(&policy_sets(), json!({"metadata": {"name": name, "namespace": NS}, "spec": spec}));
    api(hub, &policy_sets(), NS).create(&PostParams::default(), &obj).await.expect("create policy set");
}

/// A Placement over the `default` set selecting clusters with label `key=value`.
pub async fn label_placement(hub: &Hub, name: &str, key: &str, value: &str) {
    let spec = json!({"predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {key: value}}}}]});
    create_placement(hub, NS, name, spec).await;
}

/// The replicas of root policy `policies/<name>`, by cluster namespace.
pub async fn replicas(hub: &Hub, name: &str) -> BTreeMap<String, Value> {
    let all: Api<DynamicObject> = Api::all_with(hub.admin.clone(), &policies());
    let params = ListParams::default().labels(&format!("{ROOT_LABEL}={NS}.{name}"));
    all.list(&params)
        .await
        .expect("list replicas")
        .items
        .iter()
        .map(|r| (r.metadata.namespace.clone().unwrap_or_default(), to_value(r)))
        .collect()
}

/// Waits until root policy `policies/<name>` is replicated to exactly these clusters.
pub async fn wait_replicas(hub: &Hub, name: &str, clusters: &[&str]) -> BTreeMap<String, Value> {
    let want: BTreeSet<&str> = clusters.iter().copied().collect();
    eventually(&format!("{NS}/{name} replicated to {want:?}"), || async {
        let now = replicas(hub, name).await;
        (now.keys().map(String::as_str).collect::<BTreeSet<_>>() == want).then_some(now)
    })
    .await
}

/// Waits until the root policy's status satisfies `check`.
pub async fn wait_policy<F: Fn(&Value) -> bool>(hub: &Hub, name: &str, what: &str, check: F) -> Value {
    eventually(&format!("{NS}/{name}: {what}"), || async {
        let p = get_policy(hub, NS, name).await;
        check(&p).then_some(p)
    })
    .await
}

/// The condition of a type in an object's status.
pub fn status_condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == type_)
}

/// Writes a replica's status as the agent does (status subresource, merge patch).
pub async fn report(hub: &Hub, cluster: &str, root: &str, compliant: &str) {
    let status = json!({"status": {"compliant": compliant, "details": [{
        "templateMeta": {"name": "prod-ns"}, "compliant": compliant,
        "history": [{"lastTimestamp": "2030-01-01T00:00:00Z", "message": format!("{compliant}; by the test"), "eventName": "e1"}]
    }]}});
    api(hub, &policies(), cluster)
        .patch_status(&format!("{NS}.{root}"), &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("write replica status");
}
