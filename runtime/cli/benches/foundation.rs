//! Foundation benchmark (issue #2), side by side in one run:
//! raw redb store writes/s against API creates/s through HTTPS; a list of 100,000
//! objects; watch fan-out of one change to 1,000 watchers; hub RSS with 100,000 objects.
//!
//! Run: `cargo bench -p flotilla --bench foundation` (env FLOTILLA_BENCH_OBJECTS and
//! FLOTILLA_BENCH_WATCHERS scale it down for a quick look).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flotilla_apiserver::registry::Registry;
use flotilla_apiserver::storage::{Storage, WriteOptions};
use flotilla_store::{Compare, Op, RedbStore, Store, Txn};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

mod common;
use common::{HubProcess, client, env_usize, free_port, init_hub, rss_kib};

fn lease(name: &str) -> Lease {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"bench": "true"}}, "spec": {"holderIdentity": name, "leaseDurationSeconds": 60}}))
        .expect("lease")
}

async fn raw_store_writes(dir: &Path, count: usize, concurrency: usize) -> f64 {
    let store = RedbStore::open(&dir.join("raw.redb"), Default::default()).expect("open store");
    let value = Bytes::from(serde_json::to_vec(&lease("x")).expect("json"));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for i in (worker..count).step_by(concurrency) {
                let key = format!("/registry/coordination.k8s.io/leases/default/raw-{i}");
                let txn = Txn {
                    compares: vec![Compare::ModRevision(key.clone(), 0)],
                    ops: vec![Op::Put { key, value: value.clone() }],
                };
                store.txn(txn).await.expect("txn");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

async fn api_creates(kubeconfig: &Path, count: usize, concurrency: usize) -> f64 {
    // Several clients so the requests spread over several connections.
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(client(kubeconfig).await);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let leases: Api<Lease> = Api::namespaced(clients[worker % clients.len()].clone(), "default");
        tasks.push(tokio::spawn(async move {
            for i in (worker..count).step_by(concurrency) {
                leases.create(&PostParams::default(), &lease(&format!("api-{i}"))).await.expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Fills the hub's store through the real REST storage (no HTTP) while the hub is down.
async fn populate(data: &Path, count: usize) -> Duration {
    let store = RedbStore::open(&data.join("store.redb"), Default::default()).expect("open hub store");
    let registry = Registry::new(flotilla_kinds::hub_kinds().expect("kinds")).expect("registry");
    let storage =
        Storage::new(store.clone() as Arc<dyn Store>, registry, flotilla_apiserver::builtin::builtin_admission());
    let res = storage.registry.get("coordination.k8s.io", "v1", "leases").expect("leases served");
    let started = Instant::now();
    let mut tasks = Vec::new();
    let workers = 64;
    for worker in 0..workers {
        let storage = storage.clone();
        let res = res.clone();
        tasks.push(tokio::spawn(async move {
            let opts = WriteOptions::manager("bench");
            for i in (worker..count).step_by(workers) {
                let obj = serde_json::to_value(lease(&format!("obj-{i:06}"))).expect("json");
                let mut obj = obj;
                obj["apiVersion"] = json!("coordination.k8s.io/v1");
                obj["kind"] = json!("Lease");
                storage.create(&res, Some("default"), obj, &opts).await.expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("populate");
    }
    started.elapsed()
}

async fn watch_fanout(kubeconfig: &Path, watchers: usize) -> (Duration, Duration) {
    let mut clients = Vec::new();
    for _ in 0..16 {
        clients.push(client(kubeconfig).await);
    }
    let api: Api<Lease> = Api::namespaced(clients[0].clone(), "kube-public");
    let start_rv =
        api.list(&ListParams::default().limit(1)).await.expect("list").metadata.resource_version.unwrap_or_default();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(watchers);
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::channel::<Instant>(watchers);
    let opened = Instant::now();
    for w in 0..watchers {
        let api: Api<Lease> = Api::namespaced(clients[w % clients.len()].clone(), "kube-public");
        let ready_tx = ready_tx.clone();
        let seen_tx = seen_tx.clone();
        let rv = start_rv.clone();
        tokio::spawn(async move {
            let params = kube::api::WatchParams::default().timeout(290);
            let stream = api.watch(&params, &rv).await.expect("watch");
            let _ = ready_tx.send(()).await;
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                if let Ok(kube::api::WatchEvent::Added(_)) = ev {
                    let _ = seen_tx.send(Instant::now()).await;
                    break;
                }
            }
        });
    }
    for _ in 0..watchers {
        ready_rx.recv().await.expect("watch ready");
    }
    let open_time = opened.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    api.create(&PostParams::default(), &lease("fanout")).await.expect("create");
    let mut last = sent;
    for _ in 0..watchers {
        last = seen_rx.recv().await.expect("event");
    }
    (open_time, last.duration_since(sent))
}

#[tokio::main]
async fn main() {
    let objects = env_usize("FLOTILLA_BENCH_OBJECTS", 100_000);
    let watchers = env_usize("FLOTILLA_BENCH_WATCHERS", 1_000);
    let writes = env_usize("FLOTILLA_BENCH_WRITES", 20_000);
    let concurrency = 64;
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "Flotilla foundation benchmark ({} cores)",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    let raw = raw_store_writes(dir.path(), writes, concurrency).await;

    let data = dir.path().join("hub");
    let port = free_port();
    init_hub(&data, port, |_| {});
    let hub = HubProcess::serve(&data, port);
    let idle_rss = rss_kib(hub.pid());
    let api = api_creates(&hub.kubeconfig, writes, concurrency).await;
    hub.stop();

    let populate_time = populate(&data, objects).await;
    let hub = HubProcess::serve(&data, port);
    let started_rss = rss_kib(hub.pid());
    let kube = client(&hub.kubeconfig).await;
    let leases: Api<Lease> = Api::namespaced(kube.clone(), "default");
    let started = Instant::now();
    let full = leases.list(&ListParams::default()).await.expect("list");
    let list_full = started.elapsed();
    let listed = full.items.len();
    drop(full);
    let started = Instant::now();
    let mut paged = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = leases.list(&params).await.expect("page");
        paged += page.items.len();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let list_paged = started.elapsed();
    let loaded_rss = rss_kib(hub.pid());
    let (open_time, fanout) = watch_fanout(&hub.kubeconfig, watchers).await;
    let watch_rss = rss_kib(hub.pid());
    hub.stop();

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| raw redb creates/s ({concurrency} concurrent writers, fsync'd group commit) | {raw:.0} |");
    println!("| API creates/s over HTTPS ({concurrency} concurrent, kube-rs) | {api:.0} |");
    println!("| ratio raw store / API | {:.2}x |", raw / api);
    println!("| populate {objects} objects through REST storage (in-process) | {:.1} s |", populate_time.as_secs_f64());
    println!("| list {listed} objects, one request | {:.2} s |", list_full.as_secs_f64());
    println!("| list {paged} objects, pages of 500 | {:.2} s |", list_paged.as_secs_f64());
    println!("| open {watchers} watches | {:.2} s |", open_time.as_secs_f64());
    println!(
        "| one change to {watchers} watchers, until the last receives it | {:.1} ms |",
        fanout.as_secs_f64() * 1000.0
    );
    println!("| hub RSS idle, empty | {:.1} MiB |", idle_rss as f64 / 1024.0);
    println!(
        "| hub RSS with {objects} objects, started, before any request | {:.1} MiB |",
        started_rss as f64 / 1024.0
    );
    println!("| hub RSS with {objects} objects after listing | {:.1} MiB |", loaded_rss as f64 / 1024.0);
    println!("| hub RSS with {objects} objects and {watchers} watches | {:.1} MiB |", watch_rss as f64 / 1024.0);
}
