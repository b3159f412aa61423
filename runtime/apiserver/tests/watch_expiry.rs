//! Watching from a revision that compaction removed yields an ERROR event with 410,
//! exactly what kube-rs and client-go expect before relisting.

use std::sync::Arc;
use std::time::Duration;

use flotilla_apiserver::storage::{Storage, WriteOptions};
use flotilla_apiserver::watch::WatchOptions;
use flotilla_apiserver::{ListOptions, Registry};
use flotilla_store::{RedbStore, Store};
use futures::StreamExt;
use serde_json::json;

#[tokio::test]
async fn watch_past_compaction_is_gone_and_recent_revisions_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("store.redb"), Default::default()).expect("store");
    let registry = Registry::new(flotilla_kinds::hub_kinds().expect("kinds")).expect("registry");
    let storage =
        Storage::new(store.clone() as Arc<dyn Store>, registry, flotilla_apiserver::builtin::builtin_admission());
    let res = storage.registry.get("cluster.open-cluster-management.io", "v1", "managedclusters").expect("served");
    let opts = WriteOptions::manager("test");
    let mut revisions = Vec::new();
    for i in 0..5 {
        let obj = json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
            "metadata": {"name": format!("c{i}")}, "spec": {"hubAcceptsClient": true}});
        let written = storage.create(&res, None, obj, &opts).await.expect("create");
        revisions
            .push(written.object["metadata"]["resourceVersion"].as_str().expect("rv").parse::<i64>().expect("int"));
    }
    store.compact(revisions[2]).await.expect("compact");

    let watch = |rv: i64| WatchOptions {
        list: ListOptions { resource_version: Some(rv.to_string()), ..Default::default() },
        allow_bookmarks: true,
        send_initial_events: false,
        progress_interval: Duration::from_millis(100),
    };
    let mut expired = storage.watch(res.clone(), None, watch(revisions[0])).await.expect("watch starts");
    let event = tokio::time::timeout(Duration::from_secs(5), expired.next()).await.expect("event").expect("some");
    assert_eq!(event["type"], "ERROR", "{event}");
    assert_eq!(event["object"]["code"], 410, "{event}");
    assert_eq!(event["object"]["reason"], "Expired", "{event}");
    assert!(
        tokio::time::timeout(Duration::from_secs(1), expired.next()).await.expect("ends").is_none(),
        "the stream ends after ERROR"
    );

    let mut recent = storage.watch(res.clone(), None, watch(revisions[2])).await.expect("watch starts");
    for name in ["c3", "c4"] {
        let event = tokio::time::timeout(Duration::from_secs(5), recent.next()).await.expect("event").expect("some");
        assert_eq!(event["type"], "ADDED", "{event}");
        assert_eq!(event["object"]["metadata"]["name"], name);
    }
    // A write elsewhere moves the store on; the idle watch learns of it as a BOOKMARK.
    let namespaces = storage.registry.get("", "v1", "namespaces").expect("served");
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}});
    let written = storage.create(&namespaces, None, ns, &opts).await.expect("create namespace");
    let bookmark = tokio::time::timeout(Duration::from_secs(5), recent.next()).await.expect("bookmark").expect("some");
    assert_eq!(bookmark["type"], "BOOKMARK", "{bookmark}");
    assert_eq!(bookmark["object"]["metadata"]["resourceVersion"], written.object["metadata"]["resourceVersion"]);
}
