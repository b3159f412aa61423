//! kube-rs against the hub: typed and dynamic Api, watcher and reflector, and a
//! watch that resumes after a hub restart without relisting.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use serde_json::json;

use crate::common::Server;

fn managed_clusters() -> ApiResource {
    ApiResource {
        group: "cluster.open-cluster-management.io".into(),
        version: "v1".into(),
        api_version: "cluster.open-cluster-management.io/v1".into(),
        kind: "ManagedCluster".into(),
        plural: "managedclusters".into(),
    }
}

fn cluster(name: &str) -> DynamicObject {
    let mut obj = DynamicObject::new(name, &managed_clusters());
    obj.data = json!({"spec": {"hubAcceptsClient": true}});
    obj
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_and_dynamic_api_round_trip() {
    let hub = Server::hub();
    let client = hub.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let list = namespaces.list(&ListParams::default()).await.expect("list namespaces");
    assert!(list.items.iter().any(|n| n.metadata.name.as_deref() == Some("default")));

    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "l1"},
        "spec": {"holderIdentity": "agent-1", "leaseDurationSeconds": 60}
    }))
    .expect("lease");
    let created = leases.create(&PostParams::default(), &lease).await.expect("create lease");
    assert_eq!(created.spec.as_ref().and_then(|s| s.lease_duration_seconds), Some(60));
    let patched = leases
        .patch(
            "l1",
            // The creator owns holderIdentity (as in Kubernetes), so the new applier forces.
            &PatchParams::apply("agent").force(),
            &Patch::Apply(json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "spec": {"holderIdentity": "agent-2"}
            })),
        )
        .await
        .expect("apply lease");
    assert_eq!(patched.spec.and_then(|s| s.holder_identity).as_deref(), Some("agent-2"));

    let clusters: Api<DynamicObject> = Api::all_with(client.clone(), &managed_clusters());
    clusters.create(&PostParams::default(), &cluster("k1")).await.expect("create cluster");
    let got = clusters.get("k1").await.expect("get cluster");
    assert_eq!(got.data["spec"]["hubAcceptsClient"], true);
    clusters.delete("k1", &DeleteParams::default()).await.expect("delete cluster");
    let err = clusters.get("k1").await.expect_err("deleted");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_requests_are_unauthorized() {
    let hub = Server::hub();
    let mut config = kube::Config::new(format!("https://{}", hub.addr).parse().expect("url"));
    let ca = std::fs::read(hub.kubeconfig.parent().expect("dir").join("pki/ca.crt")).expect("ca");
    config.root_cert = Some(vec![rustls_pem_to_der(&ca)]);
    let client = kube::Client::try_from(config).expect("anonymous client");
    let namespaces: Api<Namespace> = Api::all(client);
    let err = namespaces.list(&ListParams::default()).await.expect_err("anonymous is refused");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 401), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_bearer_tokens_are_unauthorized() {
    let hub = Server::hub();
    let mut config = kube::Config::new(format!("https://{}", hub.addr).parse().expect("url"));
    let ca = std::fs::read(hub.kubeconfig.parent().expect("dir").join("pki/ca.crt")).expect("ca");
    config.root_cert = Some(vec![rustls_pem_to_der(&ca)]);
    config.auth_info.token = Some("not-a-real-token".to_string().into());
    let client = kube::Client::try_from(config).expect("client");
    let namespaces: Api<Namespace> = Api::all(client);
    let err = namespaces.list(&ListParams::default()).await.expect_err("unknown token is refused");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 401 && s.message.contains("token")), "{err:?}");
}

fn rustls_pem_to_der(pem: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let text = String::from_utf8_lossy(pem);
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).expect("CA PEM")
}

#[tokio::test(flavor = "multi_thread")]
async fn reflector_follows_changes() {
    let hub = Server::hub();
    let client = hub.client().await;
    let clusters: Api<DynamicObject> = Api::all_with(client.clone(), &managed_clusters());
    let writer = reflector::store::Writer::new(managed_clusters());
    let reader = writer.as_reader();
    let stream = reflector(writer, watcher::watcher(clusters.clone(), watcher::Config::default())).applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    reader.wait_until_ready().await.expect("reflector ready");
    for i in 0..5 {
        clusters.create(&PostParams::default(), &cluster(&format!("r{i}"))).await.expect("create");
    }
    clusters.delete("r0", &DeleteParams::default()).await.expect("delete");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reader.state().len() != 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reader.state().len(), 4);
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_resumes_after_hub_restart_without_relist() {
    let mut hub = Server::hub();
    let client = hub.client().await;
    let clusters: Api<DynamicObject> = Api::all_with(client.clone(), &managed_clusters());
    clusters.create(&PostParams::default(), &cluster("before")).await.expect("create");
    let config = watcher::Config::default().timeout(5);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watch_api = clusters.clone();
    let task = tokio::spawn(async move {
        let stream = watcher::watcher(watch_api, config);
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            let label = match ev {
                Ok(Event::Init) => "init".to_string(),
                Ok(Event::InitApply(o)) => format!("init-apply:{}", o.metadata.name.unwrap_or_default()),
                Ok(Event::InitDone) => "init-done".to_string(),
                Ok(Event::Apply(o)) => format!("apply:{}", o.metadata.name.unwrap_or_default()),
                Ok(Event::Delete(o)) => format!("delete:{}", o.metadata.name.unwrap_or_default()),
                Err(e) => format!("error:{e}"),
            };
            if tx.send(label).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    assert!(next_until(&mut seen, &mut rx, "init-done").await, "initial list: {seen:?}");
    clusters.create(&PostParams::default(), &cluster("during")).await.expect("create");
    assert!(next_until(&mut seen, &mut rx, "apply:during").await, "{seen:?}");
    let mark = seen.len();

    hub.restart();
    let client = hub.client().await;
    let clusters: Api<DynamicObject> = Api::all_with(client, &managed_clusters());
    clusters.create(&PostParams::default(), &cluster("after")).await.expect("create after restart");
    assert!(next_until(&mut seen, &mut rx, "apply:after").await, "{seen:?}");
    let after_restart = &seen[mark..];
    assert!(
        !after_restart.iter().any(|l| l == "init" || l.starts_with("init-")),
        "the watch resumed from its resourceVersion instead of relisting: {after_restart:?}"
    );
    task.abort();
}

/// Records watcher events until `want` arrives (true) or 30 s pass (false).
async fn next_until(seen: &mut Vec<String>, rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, want: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            Ok(Some(label)) => {
                let hit = label == want;
                seen.push(label);
                if hit {
                    return true;
                }
            }
            Ok(None) => return false,
            Err(_) => {}
        }
    }
    false
}
