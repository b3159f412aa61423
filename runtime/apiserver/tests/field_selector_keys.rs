//! Field selectors on `metadata.name` and `metadata.namespace` are answered from the store
//! key before an object is decoded, and an exact name narrows the key range: lists and
//! watches must still return exactly what the full selector selects, no more (keys that
//! merely start with the name) and no less.

use std::sync::Arc;
use std::time::Duration;

use flotilla_apimachinery::selector::FieldSelector;
use flotilla_apiserver::storage::{DeleteOptions, Storage, WriteOptions};
use flotilla_apiserver::watch::WatchOptions;
use flotilla_apiserver::{ListOptions, Registry, Resource};
use flotilla_store::{RedbStore, Store};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};

fn storage(dir: &std::path::Path) -> Storage {
    let store = RedbStore::open(&dir.join("store.redb"), Default::default()).expect("store");
    let registry = Registry::new(flotilla_kinds::hub_kinds().expect("kinds")).expect("registry");
    Storage::new(store as Arc<dyn Store>, registry, flotilla_apiserver::builtin::builtin_admission())
}

fn selecting(fields: &str) -> ListOptions {
    ListOptions { field_selector: Some(FieldSelector::parse(fields).expect("selector")), ..Default::default() }
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|o| {
            let ns = o["metadata"]["namespace"].as_str().map(|n| format!("{n}/")).unwrap_or_default();
            format!("{ns}{}", o["metadata"]["name"].as_str().unwrap_or_default())
        })
        .collect()
}

async fn list(storage: &Storage, res: &Resource, ns: Option<&str>, fields: &str) -> Vec<String> {
    names(&storage.list(res, ns, &selecting(fields)).await.expect("list").items)
}

async fn next_event(events: &mut BoxStream<'static, Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("event").expect("some")
}

#[tokio::test]
async fn name_and_namespace_selectors_select_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = storage(dir.path());
    let opts = WriteOptions::manager("test");
    let clusters = storage.registry.get("cluster.open-cluster-management.io", "v1", "managedclusters").expect("served");
    for name in ["c1", "c10", "c1-x", "c2"] {
        let obj = json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
            "metadata": {"name": name}, "spec": {"hubAcceptsClient": true}});
        storage.create(&clusters, None, obj, &opts).await.expect("create cluster");
    }
    let namespaces = storage.registry.get("", "v1", "namespaces").expect("served");
    let leases = storage.registry.get("coordination.k8s.io", "v1", "leases").expect("served");
    for ns in ["a", "ab", "b"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        storage.create(&namespaces, None, obj, &opts).await.expect("create namespace");
        for name in ["l", "l2"] {
            let obj = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}});
            storage.create(&leases, Some(ns), obj, &opts).await.expect("create lease");
        }
    }

    assert_eq!(list(&storage, &clusters, None, "metadata.name=c1").await, ["c1"]);
    assert_eq!(list(&storage, &clusters, None, "metadata.name==c10").await, ["c10"]);
    assert!(list(&storage, &clusters, None, "metadata.name=c").await.is_empty());
    assert!(list(&storage, &clusters, None, "metadata.name=c1,metadata.name=c2").await.is_empty());
    assert_eq!(list(&storage, &clusters, None, "metadata.name!=c1").await, ["c1-x", "c10", "c2"]);
    // A cluster-scoped object has no namespace: the term is judged on the object itself.
    assert_eq!(list(&storage, &clusters, None, "metadata.namespace=,metadata.name=c2").await, ["c2"]);

    assert_eq!(list(&storage, &leases, Some("a"), "metadata.name=l").await, ["a/l"]);
    assert_eq!(list(&storage, &leases, None, "metadata.name=l").await, ["a/l", "ab/l", "b/l"]);
    assert_eq!(list(&storage, &leases, None, "metadata.namespace=a").await, ["a/l", "a/l2"]);
    assert_eq!(list(&storage, &leases, None, "metadata.namespace!=a,metadata.name=l2").await, ["ab/l2", "b/l2"]);
    assert_eq!(list(&storage, &leases, Some("a"), "metadata.namespace=b").await, Vec::<String>::new());

    // Paging through a narrowed list.
    let mut paged = Vec::new();
    let mut options = selecting("metadata.name=l2");
    options.limit = Some(1);
    loop {
        let page = storage.list(&leases, None, &options).await.expect("page");
        paged.extend(names(&page.items));
        match page.continue_token {
            Some(token) => options.continue_token = Some(token),
            None => break,
        }
    }
    assert_eq!(paged, ["a/l2", "ab/l2", "b/l2"]);
}

#[tokio::test]
async fn a_watch_of_one_object_sees_only_that_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = storage(dir.path());
    let opts = WriteOptions::manager("test");
    let clusters = storage.registry.get("cluster.open-cluster-management.io", "v1", "managedclusters").expect("served");
    let cluster = |name: &str, accepts: bool| {
        json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
            "metadata": {"name": name}, "spec": {"hubAcceptsClient": accepts}})
    };
    storage.create(&clusters, None, cluster("c1", false), &opts).await.expect("create");
    let watch = WatchOptions { list: selecting("metadata.name=c1"), ..Default::default() };
    let mut events = storage.watch(clusters.clone(), None, watch).await.expect("watch").boxed();
    let first = next_event(&mut events).await;
    assert_eq!((first["type"].as_str(), first["object"]["metadata"]["name"].as_str()), (Some("ADDED"), Some("c1")));

    // Objects whose keys start with the name, and others, are never seen.
    storage.create(&clusters, None, cluster("c10", false), &opts).await.expect("create");
    storage.create(&clusters, None, cluster("c2", false), &opts).await.expect("create");
    storage.update(&clusters, None, "c1", cluster("c1", true), None, &opts).await.expect("update");
    let modified = next_event(&mut events).await;
    assert_eq!(modified["type"], "MODIFIED", "{modified}");
    assert_eq!(modified["object"]["spec"]["hubAcceptsClient"], true);
    storage.delete(&clusters, None, "c10", &DeleteOptions::default()).await.expect("delete");
    storage.delete(&clusters, None, "c1", &DeleteOptions::default()).await.expect("delete");
    let deleted = next_event(&mut events).await;
    assert_eq!(
        (deleted["type"].as_str(), deleted["object"]["metadata"]["name"].as_str()),
        (Some("DELETED"), Some("c1"))
    );
}
