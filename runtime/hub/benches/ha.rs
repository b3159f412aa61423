//! The hub on etcd against the hub on its embedded store: API creates per second and watch
//! fan-out latency, with one and with two replicas on one local etcd member (the test
//! harness's, `flotilla_store::etcd_testing`), every hub in this process, TLS on loopback,
//! clients through kube-rs.
//!
//! - creates: `CREATES` ConfigMaps written by `CLIENTS` concurrent clients (each its own
//!   connection), spread over the replicas; creates per second and per-request latency.
//! - fan-out: `WATCHERS` watches on a namespace, spread over the replicas; `EVENTS`
//!   ConfigMaps created one after the other through the first replica; for each, the time
//!   from sending the create until every watcher has the event (p50/p99 over events of the
//!   per-watcher delay, and of the slowest watcher).
//!
//! `cargo bench -p flotilla-hub --bench ha`. Environment: `FLOTILLA_BENCH_CLIENTS` (16),
//! `FLOTILLA_BENCH_CREATES` (2000), `FLOTILLA_BENCH_WATCHERS` (8), `FLOTILLA_BENCH_EVENTS`
//! (200). Prints a table; asserts nothing about time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_hub::HubStore;
use flotilla_store::etcd_testing::EtcdCluster;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use tokio::sync::mpsc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn client_for(kubeconfig: &Path) -> kube::Client {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await.expect("kube config");
    kube::Client::try_from(config).expect("kube client")
}

/// Hub replicas on one store, and what keeps them alive.
struct Hubs {
    kubeconfigs: Vec<std::path::PathBuf>,
    servers: Vec<flotilla_apiserver::host::RunningServer>,
    _dir: tempfile::TempDir,
    _etcd: Option<EtcdCluster>,
}

impl Hubs {
    async fn start(replicas: usize, etcd: bool) -> Hubs {
        let dir = tempfile::tempdir().expect("tempdir");
        let etcd = if etcd { Some(EtcdCluster::start(1).await.expect("etcd (Debian's etcd-server)")) } else { None };
        let mut kubeconfigs = Vec::new();
        let mut servers = Vec::new();
        for i in 0..replicas {
            let data = dir.path().join(format!("hub-{i}"));
            let loopback = "127.0.0.1:0".parse().expect("addr");
            flotilla_hub::init(&data, &flotilla_hub::HubConfig::new(loopback)).expect("hub init");
            let store = match &etcd {
                Some(etcd) => HubStore::Etcd {
                    endpoints: etcd.endpoints(),
                    prefix: flotilla_hub::DEFAULT_ETCD_PREFIX.to_string(),
                },
                None => HubStore::Embedded,
            };
            let server = flotilla_hub::start_with_store(&data, Some(loopback), store).await.expect("hub start");
            kubeconfigs.push(flotilla_hub::admin_kubeconfig_path(&data));
            servers.push(server);
        }
        Hubs { kubeconfigs, servers, _dir: dir, _etcd: etcd }
    }

    /// A new client (its own connections) on replica `i % replicas`.
    async fn client(&self, i: usize) -> kube::Client {
        client_for(&self.kubeconfigs[i % self.kubeconfigs.len()]).await
    }

    async fn stop(self) {
        for server in self.servers {
            server.shutdown().await;
        }
    }
}

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    let _ = Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await;
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"payload": "x".repeat(256)}})).expect("cm")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

struct Figures {
    creates_per_sec: f64,
    create_p50: Duration,
    create_p99: Duration,
    fanout_p50: Duration,
    fanout_p99: Duration,
    slowest_p50: Duration,
    slowest_p99: Duration,
}

async fn creates(hubs: &Hubs, clients: usize, total: usize) -> (f64, Duration, Duration) {
    let mut apis = Vec::new();
    for i in 0..clients {
        apis.push(Api::<ConfigMap>::namespaced(hubs.client(i).await, "creates"));
    }
    // Warm the connections.
    for (i, api) in apis.iter().enumerate() {
        api.create(&PostParams::default(), &config_map(&format!("warm-{i}"))).await.expect("warm-up create");
    }
    let started = Instant::now();
    let per_client = total.div_ceil(clients);
    let latencies: Vec<Vec<Duration>> = futures::future::join_all(apis.iter().enumerate().map(|(c, api)| async move {
        let mut latencies = Vec::with_capacity(per_client);
        for n in 0..per_client {
            let t = Instant::now();
            api.create(&PostParams::default(), &config_map(&format!("cm-{c}-{n}"))).await.expect("create");
            latencies.push(t.elapsed());
        }
        latencies
    }))
    .await;
    let elapsed = started.elapsed();
    let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
    all.sort();
    (all.len() as f64 / elapsed.as_secs_f64(), percentile(&all, 0.5), percentile(&all, 0.99))
}

/// Per event: (each watcher's delay, the slowest watcher's delay).
async fn fanout(hubs: &Hubs, watchers: usize, events: usize) -> (Vec<Duration>, Vec<Duration>) {
    let writer = Api::<ConfigMap>::namespaced(hubs.client(0).await, "fanout");
    let rv = writer.list(&ListParams::default().limit(1)).await.expect("list").metadata.resource_version.expect("rv");
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Duration)>();
    let mut tasks = Vec::new();
    for w in 0..watchers {
        let api = Api::<ConfigMap>::namespaced(hubs.client(w).await, "fanout");
        let (sent, tx, rv) = (sent.clone(), tx.clone(), rv.clone());
        tasks.push(tokio::spawn(async move {
            let stream = api.watch(&WatchParams::default().timeout(290), &rv).await.expect("watch");
            let mut stream = std::pin::pin!(stream);
            while let Ok(Some(event)) = stream.try_next().await {
                if let WatchEvent::Added(cm) = event {
                    let name = cm.metadata.name.unwrap_or_default();
                    let at = sent.lock().unwrap().get(&name).copied();
                    if let Some(at) = at
                        && tx.send((name, at.elapsed())).is_err()
                    {
                        return;
                    }
                }
            }
        }));
    }
    drop(tx);
    // Every watcher is established once each has seen a marker.
    let mut seen = 0;
    let mut attempt = 0;
    while seen < watchers {
        let name = format!("ready-{attempt}");
        attempt += 1;
        sent.lock().unwrap().insert(name.clone(), Instant::now());
        writer.create(&PostParams::default(), &config_map(&name)).await.expect("marker");
        let deadline = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(deadline);
        seen = 0;
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Some((n, _)) if n == name => { seen += 1; if seen == watchers { break } }
                    Some(_) => {}
                    None => panic!("the watchers ended"),
                },
                () = &mut deadline => break,
            }
        }
    }
    let mut each = Vec::with_capacity(events * watchers);
    let mut slowest = Vec::with_capacity(events);
    for e in 0..events {
        let name = format!("event-{e}");
        sent.lock().unwrap().insert(name.clone(), Instant::now());
        writer.create(&PostParams::default(), &config_map(&name)).await.expect("create");
        let mut got = 0;
        let mut worst = Duration::ZERO;
        while got < watchers {
            let (n, delay) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("every watcher gets the event within 30 s")
                .expect("watchers running");
            if n == name {
                got += 1;
                worst = worst.max(delay);
                each.push(delay);
            }
        }
        slowest.push(worst);
    }
    for task in tasks {
        task.abort();
    }
    each.sort();
    slowest.sort();
    (each, slowest)
}

async fn run(
    label: &str,
    replicas: usize,
    etcd: bool,
    clients: usize,
    total: usize,
    watchers: usize,
    events: usize,
) -> Figures {
    let hubs = Hubs::start(replicas, etcd).await;
    let admin = hubs.client(0).await;
    namespace(&admin, "creates").await;
    namespace(&admin, "fanout").await;
    let (creates_per_sec, create_p50, create_p99) = creates(&hubs, clients, total).await;
    let (each, slowest) = fanout(&hubs, watchers, events).await;
    let figures = Figures {
        creates_per_sec,
        create_p50,
        create_p99,
        fanout_p50: percentile(&each, 0.5),
        fanout_p99: percentile(&each, 0.99),
        slowest_p50: percentile(&slowest, 0.5),
        slowest_p99: percentile(&slowest, 0.99),
    };
    eprintln!("{label}: done");
    hubs.stop().await;
    figures
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let clients = env("FLOTILLA_BENCH_CLIENTS", 16).max(1);
    let total = env("FLOTILLA_BENCH_CREATES", 2000).max(clients);
    let watchers = env("FLOTILLA_BENCH_WATCHERS", 8).max(1);
    let events = env("FLOTILLA_BENCH_EVENTS", 200).max(1);
    println!(
        "hub HA: {total} ConfigMap creates by {clients} concurrent clients; {events} creates fanned out to {watchers} watchers"
    );
    let scenarios =
        [("embedded (redb), 1 replica", 1, false), ("etcd, 1 replica", 1, true), ("etcd, 2 replicas", 2, true)];
    let mut rows = Vec::new();
    for (label, replicas, etcd) in scenarios {
        let figures = run(label, replicas, etcd, clients, total, watchers, events).await;
        rows.push((label, figures));
    }
    let base = rows[0].1.creates_per_sec;
    let base_fanout = rows[0].1.fanout_p50.as_secs_f64();
    println!();
    println!(
        "| store | creates/s | vs embedded | create p50 ms | create p99 ms | fan-out p50 ms | fan-out p99 ms | slowest watcher p50 ms | slowest watcher p99 ms | fan-out p50 vs embedded |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (label, f) in &rows {
        println!(
            "| {label} | {:.0} | {:.2}x | {} | {} | {} | {} | {} | {} | {:.2}x |",
            f.creates_per_sec,
            f.creates_per_sec / base,
            ms(f.create_p50),
            ms(f.create_p99),
            ms(f.fanout_p50),
            ms(f.fanout_p99),
            ms(f.slowest_p50),
            ms(f.slowest_p99),
            f.fanout_p50.as_secs_f64() / base_fanout.max(f64::MIN_POSITIVE),
        );
    }
}
