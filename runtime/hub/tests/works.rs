//! ManifestWorks against a real hub over TLS on loopback.
//!
//! Size limits: works up to `maxManifestWorkBytes` (8 MiB) are stored and read back intact,
//! larger manifests are refused with 422 naming the field, the size and the limit (for
//! ManifestWorkReplicaSet templates too), bodies over `maxBodyBytes` get a 413 Status, and
//! nothing refused is stored.
//!
//! Bad manifests (no name, generateName, the same object twice, none at all) get a 422 naming
//! the manifest's field, and nothing is stored.
//!
//! `spec.deleteOption.ttlSecondsAfterFinished`: the test plays the agent, writing the
//! work-level `Complete` condition, and the hub deletes the work once the TTL has passed.

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

/// A 422 `Invalid` Status whose causes are exactly `expected` (field, reason): its message.
fn invalid_with(answer: Result<DynamicObject, kube::Error>, expected: &[(&str, &str)]) -> String {
    assert_eq!(status_code(&answer), Some(422), "{}", message(&answer));
    let Err(kube::Error::Api(status)) = &answer else { panic!("not a Status") };
    assert_eq!(status.reason, "Invalid");
    let causes = status.details.as_ref().map(|d| d.causes.clone()).unwrap_or_default();
    let got: Vec<(&str, &str)> = causes.iter().map(|c| (c.field.as_str(), c.reason.as_str())).collect();
    assert_eq!(got, expected, "{}", status.message);
    status.message.clone()
}

/// Nothing refused is stored: the work is absent through kube-rs and a raw GET is a 404.
async fn not_stored(hub: &Hub, works: &Api<DynamicObject>, name: &str) {
    assert!(works.get_opt(name).await.expect("get").is_none(), "{name} was stored");
    let path = format!("/apis/work.open-cluster-management.io/v1/namespaces/cluster1/manifestworks/{name}");
    let (code, status) = raw(&hub.admin, "GET", &path, Vec::new()).await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_without_a_name_duplicated_or_empty_are_refused_naming_the_field() {
    let hub = Hub::start().await;
    namespace(&hub, "cluster1").await;
    let works: Api<DynamicObject> = Api::namespaced_with(hub.admin.clone(), "cluster1", &manifest_works());
    let pp = PostParams::default();
    let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}});

    // No metadata.name on the second manifest.
    let unnamed = json!([cm("a"), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "default"}}]);
    let msg = invalid_with(
        works.create(&pp, &work("unnamed", unnamed)).await,
        &[("spec.workload.manifests[1].metadata.name", "FieldValueRequired")],
    );
    assert_eq!(
        msg,
        "ManifestWork.work.open-cluster-management.io \"unnamed\" is invalid: \
         spec.workload.manifests[1].metadata.name: Required value"
    );
    not_stored(&hub, &works, "unnamed").await;

    // generateName instead of a name: the name is missing and generateName is forbidden.
    let generated =
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "cm-", "namespace": "default"}}]);
    let msg = invalid_with(
        works.create(&pp, &work("generated", generated)).await,
        &[
            ("spec.workload.manifests[0].metadata.name", "FieldValueRequired"),
            ("spec.workload.manifests[0].metadata.generateName", "FieldValueForbidden"),
        ],
    );
    assert!(
        msg.contains(
            "spec.workload.manifests[0].metadata.generateName: Forbidden: generateName must not be set in a \
             manifest; set metadata.name"
        ),
        "{msg}"
    );
    not_stored(&hub, &works, "generated").await;

    // The same object twice (same group/kind/namespace/name), another object in between; the
    // same name in another namespace or of another kind is a different object and passes.
    let mut other_ns = cm("a");
    other_ns["metadata"]["namespace"] = json!("other");
    let mut secret = cm("a");
    secret["kind"] = json!("Secret");
    let twice = json!([cm("a"), cm("b"), other_ns, secret, cm("a")]);
    let msg = invalid_with(
        works.create(&pp, &work("twice", twice)).await,
        &[("spec.workload.manifests[4]", "FieldValueDuplicate")],
    );
    assert_eq!(
        msg,
        "ManifestWork.work.open-cluster-management.io \"twice\" is invalid: spec.workload.manifests[4]: Duplicate \
         value: {\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"namespace\":\"default\",\"name\":\"a\"}"
    );
    not_stored(&hub, &works, "twice").await;

    // No manifests at all: an empty list, or no list.
    for (name, manifests) in [("empty", json!([])), ("absent", Value::Null)] {
        let mut obj = work(name, manifests);
        if obj.data["spec"]["workload"]["manifests"].is_null() {
            obj.data = json!({"spec": {"workload": {}}});
        }
        let msg = invalid_with(works.create(&pp, &obj).await, &[("spec.workload.manifests", "FieldValueRequired")]);
        assert!(msg.ends_with("spec.workload.manifests: Required value: manifests should not be empty"), "{msg}");
        not_stored(&hub, &works, name).await;
    }

    // The same rules on update: a stored work cannot gain a duplicate.
    works.create(&pp, &work("good", json!([cm("a")]))).await.expect("a valid work is stored");
    let patch = json!({"spec": {"workload": {"manifests": [cm("a"), cm("a")]}}});
    let answer = works.patch("good", &PatchParams::default(), &Patch::Merge(&patch)).await;
    invalid_with(answer, &[("spec.workload.manifests[1]", "FieldValueDuplicate")]);
    let stored = works.get("good").await.expect("get good");
    assert_eq!(stored.data["spec"]["workload"]["manifests"], json!([cm("a")]), "unchanged");
    hub.stop().await;
}

/// A work whose manifests are one ConfigMap and whose spec.deleteOption is `delete_option`.
fn work_with(name: &str, delete_option: Option<Value>) -> DynamicObject {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}});
    let mut obj = work(name, json!([cm]));
    if let Some(option) = delete_option {
        obj.data["spec"]["deleteOption"] = option;
    }
    obj
}

/// Plays the agent: writes a work-level `Complete` condition through the status subresource.
async fn report_complete(works: &Api<DynamicObject>, name: &str, status: &str, since: &str) {
    let patch = json!({"status": {"conditions": [{"type": "Complete", "status": status,
        "reason": "ConditionRulesAggregated", "message": "Job is finished", "lastTransitionTime": since}]}});
    works.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("status");
}

fn rfc3339(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn completed_works_are_deleted_once_their_ttl_has_passed() {
    let hub = Hub::start().await;
    namespace(&hub, "cluster1").await;
    let works: Api<DynamicObject> = Api::namespaced_with(hub.admin.clone(), "cluster1", &manifest_works());
    let pp = PostParams::default();
    let ttl = |seconds: i64| Some(json!({"propagationPolicy": "Foreground", "ttlSecondsAfterFinished": seconds}));
    let now = rfc3339(jiff::Timestamp::now());

    // Works that stay, written first so that the controller has seen them by the time the
    // expiring ones go: not Complete, Complete without a TTL, Complete with a TTL of an hour.
    works.create(&pp, &work_with("not-complete", ttl(1))).await.expect("create");
    report_complete(&works, "not-complete", "False", &now).await;
    works.create(&pp, &work_with("no-ttl", Some(json!({"propagationPolicy": "Orphan"})))).await.expect("create");
    report_complete(&works, "no-ttl", "True", &now).await;
    works.create(&pp, &work_with("no-delete-option", None)).await.expect("create");
    report_complete(&works, "no-delete-option", "True", &now).await;
    works.create(&pp, &work_with("hour", ttl(3600))).await.expect("create");
    report_complete(&works, "hour", "True", &now).await;
    works.create(&pp, &work_with("no-status", ttl(0))).await.expect("create");

    // Complete an hour ago with a TTL of 0: gone at once. With a TTL of 2 s from now: gone
    // once the TTL has passed (the condition's time has whole seconds, so at least 1 s later).
    works.create(&pp, &work_with("zero", ttl(0))).await.expect("create");
    report_complete(&works, "zero", "True", &rfc3339(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)))
        .await;
    works.create(&pp, &work_with("short", ttl(2))).await.expect("create");
    let completed = std::time::Instant::now();
    report_complete(&works, "short", "True", &rfc3339(jiff::Timestamp::now())).await;
    eventually("the work with a TTL of 0 deleted", || async {
        works.get_opt("zero").await.expect("get").is_none().then_some(())
    })
    .await;
    eventually("the work with a TTL of 2 s deleted", || async {
        works.get_opt("short").await.expect("get").is_none().then_some(())
    })
    .await;
    let waited = completed.elapsed();
    assert!(waited >= std::time::Duration::from_millis(900), "deleted after {waited:?}, before its TTL");
    assert!(waited < std::time::Duration::from_secs(10), "deleted after {waited:?}");

    for name in ["not-complete", "no-ttl", "no-delete-option", "hour", "no-status"] {
        assert!(works.get_opt(name).await.expect("get").is_some(), "{name} was deleted");
    }

    // Becoming Complete later starts the clock then.
    report_complete(&works, "not-complete", "True", &rfc3339(jiff::Timestamp::now())).await;
    eventually("the work completed later deleted", || async {
        works.get_opt("not-complete").await.expect("get").is_none().then_some(())
    })
    .await;

    // An ordinary delete: a finalizer (the agent's, here a stand-in) holds the work until the
    // spoke cleanup is done, and the controller does not delete it again meanwhile.
    let mut held = work_with("held", ttl(0));
    held.metadata.finalizers = Some(vec!["cluster.open-cluster-management.io/manifest-work-cleanup".into()]);
    works.create(&pp, &held).await.expect("create");
    report_complete(&works, "held", "True", &now).await;
    let deleting = eventually("the held work marked for deletion", || async {
        let work = works.get_opt("held").await.expect("get")?;
        work.metadata.deletion_timestamp.is_some().then_some(work)
    })
    .await;
    assert_eq!(
        deleting.metadata.finalizers.as_deref(),
        Some(&["cluster.open-cluster-management.io/manifest-work-cleanup".to_string()][..]),
        "no propagation finalizer added: the work's own deleteOption decides the spoke cleanup"
    );
    let release = json!({"metadata": {"finalizers": null}});
    works.patch("held", &PatchParams::default(), &Patch::Merge(&release)).await.expect("release");
    eventually("the released work gone", || async {
        works.get_opt("held").await.expect("get").is_none().then_some(())
    })
    .await;

    hub.stop().await;
}
