//! ManifestWork size limits against a real hub over TLS on loopback: works up to
//! `maxManifestWorkBytes` (8 MiB) are stored and read back intact, larger manifests are
//! refused with 422 naming the field, the size and the limit (for ManifestWorkReplicaSet
//! templates too), bodies over `maxBodyBytes` get a 413 Status, and nothing refused is stored.

#[path = "../../registration/tests/common/mod.rs"]
mod common;

use common::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const MIB: usize = 1 << 20;

fn manifest_works() -> ApiResource {
    ApiResource {
        group: "work.open-cluster-management.io".into(),
        version: "v1".into(),
        api_version: "work.open-cluster-management.io/v1".into(),
        kind: "ManifestWork".into(),
        plural: "manifestworks".into(),
    }
}

fn replica_sets() -> ApiResource {
    ApiResource {
        group: "work.open-cluster-management.io".into(),
        version: "v1alpha1".into(),
        api_version: "work.open-cluster-management.io/v1alpha1".into(),
        kind: "ManifestWorkReplicaSet".into(),
        plural: "manifestworkreplicasets".into(),
    }
}

/// ConfigMaps whose compact JSON adds up to exactly `total` bytes, at most 1 MiB each.
fn manifests(total: usize) -> Value {
    let empty = |i: usize| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("blob-{i}"), "namespace": "default"}, "data": {"blob": ""}})
    };
    let count = total.div_ceil(MIB);
    let overhead: usize = (0..count).map(|i| empty(i).to_string().len()).sum();
    let mut left = total - overhead;
    let items: Vec<Value> = (0..count)
        .map(|i| {
            let n = left.div_ceil(count - i);
            left -= n;
            let mut cm = empty(i);
            // Characters that need no escaping: one byte each in JSON.
            cm["data"]["blob"] = json!("0123456789abcdef".repeat(n.div_ceil(16))[..n]);
            cm
        })
        .collect();
    let items = Value::Array(items);
    assert_eq!(flotilla_hub::works::manifests_size(&items), total);
    items
}

fn work(name: &str, manifests: Value) -> DynamicObject {
    let mut obj = DynamicObject::new(name, &manifest_works());
    obj.data = json!({"spec": {"workload": {"manifests": manifests}}});
    obj
}

async fn namespace(hub: &Hub, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(hub.admin.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
}

/// One raw request: (status, body).
async fn raw(client: &kube::Client, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(kube::client::Body::from(body))
        .expect("request");
    let response = client.send(request).await.expect("send");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect_bytes().await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The message of a refused write, which must be a 422 about `field`.
fn refused(answer: Result<DynamicObject, kube::Error>, field: &str) -> String {
    assert_eq!(status_code(&answer), Some(422), "{}", message(&answer));
    let Err(kube::Error::Api(status)) = &answer else { panic!("not a Status") };
    assert_eq!(status.reason, "Invalid");
    let causes = status.details.as_ref().map(|d| d.causes.clone()).unwrap_or_default();
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert_eq!(causes[0].field, field);
    assert_eq!(causes[0].reason, "FieldValueTooLong");
    message(&answer)
}

#[tokio::test(flavor = "multi_thread")]
async fn works_up_to_the_limit_are_stored_and_larger_ones_refused() {
    let mut hub = Hub::start().await;
    namespace(&hub, "cluster1").await;
    let works: Api<DynamicObject> = Api::namespaced_with(hub.admin.clone(), "cluster1", &manifest_works());
    let pp = PostParams::default();

    // 7.5 MiB: stored, and read back byte for byte.
    let big = manifests(15 * MIB / 2);
    works.create(&pp, &work("big", big.clone())).await.expect("a 7.5 MiB work is accepted");
    let stored = works.get("big").await.expect("get big");
    assert!(stored.data["spec"]["workload"]["manifests"] == big, "the manifests come back intact");

    // 8.5 MiB: 422 on the manifests field, with the size, the limit and the way out.
    let huge = manifests(17 * MIB / 2);
    let msg = refused(works.create(&pp, &work("huge", huge.clone())).await, "spec.workload.manifests");
    for part in [
        "ManifestWork.work.open-cluster-management.io \"huge\" is invalid",
        "spec.workload.manifests: Too long",
        "8912896 bytes (8.5 MiB)",
        "limit of 8388608 bytes (8 MiB)",
        "maxManifestWorkBytes",
    ] {
        assert!(msg.contains(part), "{part:?} in {msg}");
    }
    assert!(works.get_opt("huge").await.expect("get").is_none(), "nothing stored");
    let (code, _) = raw(
        &hub.admin,
        "GET",
        "/apis/work.open-cluster-management.io/v1/namespaces/cluster1/manifestworks/huge",
        Vec::new(),
    )
    .await;
    assert_eq!(code, 404);

    // Growing a stored work past the limit: refused by update, merge patch and apply alike.
    let mut grown = stored.clone();
    grown.data["spec"]["workload"]["manifests"] = huge.clone();
    refused(works.replace("big", &pp, &grown).await, "spec.workload.manifests");
    let patch = json!({"spec": {"workload": {"manifests": huge.clone()}}});
    refused(works.patch("big", &PatchParams::default(), &Patch::Merge(&patch)).await, "spec.workload.manifests");
    let applied = json!({"apiVersion": "work.open-cluster-management.io/v1", "kind": "ManifestWork",
        "metadata": {"name": "big"}, "spec": {"workload": {"manifests": huge.clone()}}});
    refused(
        works.patch("big", &PatchParams::apply("test").force(), &Patch::Apply(&applied)).await,
        "spec.workload.manifests",
    );
    let again = works.get("big").await.expect("get big");
    assert_eq!(again.metadata.resource_version, stored.metadata.resource_version, "unchanged");

    // The template of a ManifestWorkReplicaSet follows the same rule.
    namespace(&hub, "ocm-ns").await;
    let sets: Api<DynamicObject> = Api::namespaced_with(hub.admin.clone(), "ocm-ns", &replica_sets());
    let mut set = DynamicObject::new("huge-set", &replica_sets());
    set.data = json!({"spec": {"placementRefs": [{"name": "all", "rolloutStrategy": {"type": "All"}}],
        "manifestWorkTemplate": {"workload": {"manifests": huge}}}});
    let msg = refused(sets.create(&pp, &set).await, "spec.manifestWorkTemplate.workload.manifests");
    assert!(msg.contains("ManifestWorkReplicaSet.work.open-cluster-management.io \"huge-set\""), "{msg}");
    assert!(sets.get_opt("huge-set").await.expect("get").is_none());
    set.data["spec"]["manifestWorkTemplate"]["workload"]["manifests"] = manifests(MIB);
    sets.create(&pp, &set).await.expect("a 1 MiB template is accepted");

    // A body over maxBodyBytes (16 MiB by default): a 413 Status, nothing stored.
    let mut body = serde_json::to_vec(&work("flood", manifests(17 * MIB))).expect("json");
    body.extend(std::iter::repeat_n(b' ', 16));
    let path = "/apis/work.open-cluster-management.io/v1/namespaces/cluster1/manifestworks";
    let (code, status) = raw(&hub.admin, "POST", path, body).await;
    assert_eq!(code, 413, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "RequestEntityTooLarge");
    assert_eq!(status["message"], "Request entity too large: limit is 16777216 bytes");
    assert!(works.get_opt("flood").await.expect("get").is_none());

    // A lower limit does not strand what is stored: its status and labels still change, its
    // manifests cannot grow.
    let config_path = hub.data_dir().join("hub.json");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("hub.json")).expect("json");
    config["maxManifestWorkBytes"] = json!(MIB);
    std::fs::write(&config_path, config.to_string()).expect("write hub.json");
    hub.restart_after(std::time::Duration::ZERO).await;
    let works: Api<DynamicObject> = Api::namespaced_with(hub.admin.clone(), "cluster1", &manifest_works());
    let status = json!({"status": {"conditions": [{"type": "Applied", "status": "True", "reason": "AppliedManifestWorkComplete",
        "message": "Apply manifest work complete", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}});
    works.patch_status("big", &PatchParams::default(), &Patch::Merge(&status)).await.expect("status of a stored work");
    let labels = json!({"metadata": {"labels": {"team": "a"}}});
    works.patch("big", &PatchParams::default(), &Patch::Merge(&labels)).await.expect("labels of a stored work");
    let patch = json!({"spec": {"workload": {"manifests": manifests(3 * MIB / 2)}}});
    let msg =
        refused(works.patch("big", &PatchParams::default(), &Patch::Merge(&patch)).await, "spec.workload.manifests");
    assert!(msg.contains("limit of 1048576 bytes (1 MiB)"), "{msg}");
    hub.stop().await;
}
