//! Controllers over a store gated on leadership run only while the replica leads, stop
//! when it loses leadership, and start over from a fresh list when it leads again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_apiserver::controller::{self, Reconciler};
use flotilla_apiserver::storage::{Storage, WriteOptions};
use flotilla_apiserver::{Registry, Resource};
use flotilla_store::{RedbStore, Store};
use serde_json::{Value, json};

struct Recording {
    resource: Arc<Resource>,
    reconciled: Arc<Mutex<Vec<String>>>,
}

impl Reconciler for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        vec![self.resource.clone()]
    }

    fn keys_for(&self, _index: usize, obj: &Value, _deleted: bool) -> Vec<String> {
        obj["metadata"]["name"].as_str().map(str::to_owned).into_iter().collect()
    }

    async fn reconcile(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        self.reconciled.lock().unwrap_or_else(|e| e.into_inner()).push(key.to_owned());
        Ok(None)
    }
}

async fn eventually_reconciled(reconciled: &Arc<Mutex<Vec<String>>>, key: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if reconciled.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|k| k == key) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{key} never reconciled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_controllers_run_only_while_leading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = RedbStore::open(&dir.path().join("store.redb"), Default::default()).expect("store");
    let registry = Registry::new(flotilla_kinds::hub_kinds().expect("kinds")).expect("registry");
    let storage = Storage::new(store.clone(), registry, flotilla_apiserver::builtin::builtin_admission());
    let resource = storage.registry.get("cluster.open-cluster-management.io", "v1", "managedclusters").expect("served");
    let create = |name: &str| {
        let storage = storage.clone();
        let resource = resource.clone();
        let obj = json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
            "metadata": {"name": name}, "spec": {"hubAcceptsClient": true}});
        async move { storage.create(&resource, None, obj, &WriteOptions::manager("test")).await.expect("create") }
    };
    create("c0").await;

    let (leader, leadership) = tokio::sync::watch::channel(false);
    controller::gate_on_leadership(&store, leadership);
    let reconciled = Arc::new(Mutex::new(Vec::new()));
    let (shutdown, signal) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(controller::run(
        Recording { resource: resource.clone(), reconciled: reconciled.clone() },
        storage.clone(),
        signal,
    ));

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(reconciled.lock().expect("lock").is_empty(), "a follower runs no controller");

    leader.send_replace(true);
    eventually_reconciled(&reconciled, "c0").await;

    leader.send_replace(false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    reconciled.lock().expect("lock").clear();
    create("c1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(reconciled.lock().expect("lock").is_empty(), "stopped after losing leadership");

    // Leading again: a fresh list covers what changed meanwhile.
    leader.send_replace(true);
    eventually_reconciled(&reconciled, "c1").await;
    eventually_reconciled(&reconciled, "c0").await;

    let _ = shutdown.send(true);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops on shutdown").expect("task");

    // Other stores are not gated.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other: Arc<dyn Store> =
        RedbStore::open(&other_dir.path().join("store.redb"), Default::default()).expect("store");
    let registry = Registry::new(flotilla_kinds::hub_kinds().expect("kinds")).expect("registry");
    let other_storage = Storage::new(other.clone(), registry, flotilla_apiserver::builtin::builtin_admission());
    let obj = json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
        "metadata": {"name": "elsewhere"}, "spec": {"hubAcceptsClient": true}});
    other_storage.create(&resource, None, obj, &WriteOptions::manager("test")).await.expect("create");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (_stop, signal) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(controller::run(Recording { resource, reconciled: seen.clone() }, other_storage, signal));
    eventually_reconciled(&seen, "elsewhere").await;
    task.abort();
}
