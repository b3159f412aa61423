//! Work distribution benchmark (issue #4): one ManifestWork to each of N simulated agents
//! (default 1,000).
//!
//! The hub runs as its own `flotilla hub serve` process, so its RSS and CPU are read alone.
//! The agents are the real flotilla-agent library, N tokio tasks in this process sharing one
//! in-process simulated spoke (as in the registration benchmark); each work holds a
//! ConfigMap and a Deployment named after its cluster, so the shared spoke ends up with N of
//! each. One more agent runs as its own `flotilla agent join` process against its own
//! `flotilla spoke serve` process: its RSS at idle is the figure to hold against OCM's
//! klusterlet.
//!
//! Printed: time from a work's creation until the hub shows it `Applied` and `Available`
//! (50 %, 99 %, 100 %), sustained works per second, hub CPU per work, hub RSS, agent RSS.
//! Nothing is asserted about timings.
//!
//! Run: `cargo bench -p flotilla --bench work`. Environment: `FLOTILLA_BENCH_AGENTS` (1000),
//! `FLOTILLA_BENCH_CONCURRENCY` (32 work creations in flight),
//! `FLOTILLA_BENCH_RESYNC_SECONDS` (10, OCM's status sync), `FLOTILLA_BENCH_TIMEOUT_SECONDS`
//! (900). `RUST_LOG` turns on the agents' logs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_agent::AgentOptions;
use flotilla_agent::work::manifest_works;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

mod common;
use common::{
    HubProcess, bootstrap_token, client, cpu_time, env_usize, free_port, init_hub, raise_fd_limit, rss_kib,
    shared_spoke, spawn_flotilla,
};

const CLUSTER_PREFIX: &str = "bench-";
const KLUSTERLET_MB: f64 = 122.0;

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A work for `cluster`: a ConfigMap and a two-replica Deployment named after it.
fn work_for(cluster: &str) -> DynamicObject {
    let object = json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": format!("app-{cluster}"), "namespace": cluster},
        "spec": {"workload": {"manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": format!("{cluster}-config"), "namespace": "default"},
             "data": {"greeting": "hello", "cluster": cluster}},
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": format!("{cluster}-web"), "namespace": "default"},
             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": cluster}},
                      "template": {"metadata": {"labels": {"app": cluster}},
                                   "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
        ]}},
    });
    serde_json::from_value(object).expect("a ManifestWork")
}

fn condition_true(obj: &Value, type_: &str) -> bool {
    obj.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten().any(|c| {
        c.get("type").and_then(Value::as_str) == Some(type_) && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

/// The time by which `fraction` of `total` had happened.
fn quantile(times: &[Duration], total: usize, fraction: f64) -> Option<Duration> {
    let mut sorted = times.to_vec();
    sorted.sort();
    let index = ((total as f64 * fraction).ceil() as usize).clamp(1, total);
    sorted.get(index - 1).copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn available_clusters(admin: &kube::Client) -> usize {
    let clusters: Api<DynamicObject> = Api::all_with(admin.clone(), &flotilla_agent::status::managed_clusters());
    match clusters.list(&Default::default()).await {
        Ok(list) => list
            .items
            .iter()
            .filter(|c| {
                let v = serde_json::to_value(c).unwrap_or(Value::Null);
                condition_true(&v, "ManagedClusterConditionAvailable")
            })
            .count(),
        Err(_) => 0,
    }
}

#[tokio::main]
async fn main() {
    common::init();
    let agents = env_usize("FLOTILLA_BENCH_AGENTS", 1_000).max(1);
    let concurrency = env_usize("FLOTILLA_BENCH_CONCURRENCY", 32).max(1);
    let resync = Duration::from_secs(env_usize("FLOTILLA_BENCH_RESYNC_SECONDS", 10).max(1) as u64);
    let timeout = Duration::from_secs(env_usize("FLOTILLA_BENCH_TIMEOUT_SECONDS", 900) as u64);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    raise_fd_limit(6 * agents as u64 + 1_024);
    println!("Flotilla work benchmark: one ManifestWork to each of {agents} agents ({cores} cores)");
    let dir = tempfile::tempdir().expect("tempdir");

    let data = dir.path().join("hub");
    let port = free_port();
    init_hub(&data, port, |config| config["autoAccept"] = json!([format!("{CLUSTER_PREFIX}*")]));
    let mut hub = HubProcess::serve(&data, port);
    let hub_url = format!("https://{}", hub.addr);
    let admin = client(&hub.kubeconfig).await;
    wait_until("the hub", Duration::from_secs(30), async || {
        admin.request_text(http::Request::get("/readyz").body(Vec::new()).expect("request")).await.is_ok()
    })
    .await;

    let (token, ca_hash) = bootstrap_token(&admin, &data, "work benchmark").await;
    let (spoke, spoke_source) = shared_spoke(&dir.path().join("spoke")).await;

    // The agents; all clusters Available before any work exists.
    let bench_rss_before_agents = rss_kib(std::process::id());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut handles = Vec::with_capacity(agents);
    let names: Vec<String> = (0..agents).map(|i| format!("{CLUSTER_PREFIX}{i:05}")).collect();
    for name in &names {
        let mut opts = AgentOptions::new(&hub_url, name, dir.path().join("agents").join(name), spoke_source.clone());
        opts.token = Some(token.expose());
        opts.hub_ca_hash = Some(ca_hash.clone());
        opts.lease_duration = Some(Duration::from_secs(60));
        opts.work_resync_period = resync;
        let mut stop = stop_rx.clone();
        let failures = failures.clone();
        let name = name.clone();
        handles.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = flotilla_agent::run(opts, shutdown).await {
                failures.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{name}: {e}"));
            }
        }));
    }
    let joined = Instant::now();
    wait_until("every cluster Available", timeout, async || available_clusters(&admin).await >= agents).await;
    eprintln!("{agents} clusters available after {:.1} s", joined.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let hub_rss_before = rss_kib(hub.pid());
    let bench_rss_idle = rss_kib(std::process::id());

    // Watch every work on the hub, then create one per cluster.
    let works: Api<DynamicObject> = Api::all_with(admin.clone(), &manifest_works());
    let mut events = watcher::watcher(works.clone(), watcher::Config::default()).boxed();
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let cpu_before = cpu_time(hub.pid());
    let started = Instant::now();
    let creating = {
        let created = created.clone();
        let admin = admin.clone();
        let names = names.clone();
        tokio::spawn(async move {
            futures::stream::iter(names)
                .for_each_concurrent(concurrency, |cluster| {
                    let created = created.clone();
                    let api: Api<DynamicObject> = Api::namespaced_with(admin.clone(), &cluster, &manifest_works());
                    async move {
                        let at = Instant::now();
                        api.create(&PostParams::default(), &work_for(&cluster)).await.expect("create a work");
                        created.lock().unwrap_or_else(|e| e.into_inner()).insert(cluster, at);
                    }
                })
                .await;
        })
    };
    let mut done: HashMap<String, Instant> = HashMap::new();
    let mut check = tokio::time::interval(Duration::from_secs(1));
    let mut report = tokio::time::interval(Duration::from_secs(10));
    report.tick().await;
    while done.len() < agents {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj))) => {
                    let value = serde_json::to_value(&obj).unwrap_or(Value::Null);
                    let generation = obj.metadata.generation.unwrap_or(0);
                    let current = value.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten()
                        .filter(|c| c["type"] == "Applied" || c["type"] == "Available")
                        .all(|c| c["observedGeneration"].as_i64().is_none_or(|g| g == generation));
                    if current && condition_true(&value, "Applied") && condition_true(&value, "Available")
                        && let Some(ns) = obj.metadata.namespace.clone() {
                        done.entry(ns).or_insert_with(Instant::now);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => eprintln!("watching works: {e} (the watcher retries)"),
                None => panic!("the work watch ended"),
            },
            _ = check.tick() => {
                assert!(hub.running(), "the hub exited:\n{}", hub.log_tail(60));
                let failed = failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
                assert!(failed.is_empty(), "{} agents stopped: {}", failed.len(), failed.join("\n"));
                assert!(started.elapsed() < timeout, "after {timeout:?} only {} of {agents} works are applied and available", done.len());
            }
            _ = report.tick() => eprintln!("[{:>4.0} s] created {}, applied and available {} of {agents}",
                started.elapsed().as_secs_f64(), created.lock().unwrap_or_else(|e| e.into_inner()).len(), done.len()),
        }
    }
    let total = started.elapsed();
    creating.await.expect("creating works");
    let hub_cpu = cpu_time(hub.pid()).saturating_sub(cpu_before);
    let created = created.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let creation_span = created.values().max().map(|t| t.duration_since(started)).unwrap_or_default();
    let latencies: Vec<Duration> =
        done.iter().filter_map(|(cluster, at)| Some(at.saturating_duration_since(*created.get(cluster)?))).collect();
    drop(events);

    // Idle with every work applied: RSS of the hub and of the in-process agents.
    tokio::time::sleep(resync * 2).await;
    let hub_rss_after = rss_kib(hub.pid());
    let bench_rss_after = rss_kib(std::process::id());

    // One agent as its own process against its own spoke process: the klusterlet figure.
    let solo_spoke_dir = dir.path().join("solo-spoke");
    let solo_port = free_port();
    let solo_spoke_dir_text = solo_spoke_dir.display().to_string();
    let mut solo_spoke = spawn_flotilla(
        &["spoke", "serve", "--data-dir", &solo_spoke_dir_text, "--listen", &format!("127.0.0.1:{solo_port}")],
        std::fs::File::create(dir.path().join("solo-spoke.log")).expect("log file"),
    );
    let solo_kubeconfig = flotilla_spoke::kubeconfig_path(&solo_spoke_dir);
    wait_until("the solo spoke", Duration::from_secs(60), async || solo_kubeconfig.exists()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let solo_name = format!("{CLUSTER_PREFIX}solo");
    let solo_dir = dir.path().join("solo-agent").display().to_string();
    let exposed = token.expose();
    let mut solo = spawn_flotilla(
        &[
            "--kubeconfig",
            &solo_kubeconfig.display().to_string(),
            "agent",
            "join",
            "--hub",
            &hub_url,
            "--cluster-name",
            &solo_name,
            "--token",
            &exposed,
            "--hub-ca-hash",
            &ca_hash,
            "--data-dir",
            &solo_dir,
        ],
        std::fs::File::create(dir.path().join("solo-agent.log")).expect("log file"),
    );
    let solo_works: Api<DynamicObject> = Api::namespaced_with(admin.clone(), &solo_name, &manifest_works());
    wait_until("the solo agent's cluster", timeout, async || available_clusters(&admin).await > agents).await;
    solo_works.create(&PostParams::default(), &work_for(&solo_name)).await.expect("the solo work");
    wait_until("the solo work", Duration::from_secs(120), async || {
        solo_works.get_opt(&format!("app-{solo_name}")).await.ok().flatten().is_some_and(|w| {
            let v = serde_json::to_value(&w).unwrap_or(Value::Null);
            condition_true(&v, "Applied") && condition_true(&v, "Available")
        })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let solo_rss = rss_kib(solo.id());
    let _ = solo.kill();
    let _ = solo_spoke.kill();
    let _ = solo.wait();
    let _ = solo_spoke.wait();

    let _ = stop_tx.send(true);
    for handle in handles {
        let _ = tokio::time::timeout(Duration::from_secs(15), handle).await;
    }
    hub.stop();
    spoke.shutdown().await;

    let n = agents as f64;
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| agents (tokio tasks in the bench process, one shared simulated spoke) | {agents} |");
    println!("| works (a ConfigMap and a 2-replica Deployment each), {concurrency} creations in flight | {agents} |");
    println!(
        "| creation to Applied and Available on the hub: 50 % / 99 % / 100 % | {} / {} / {} |",
        ms(quantile(&latencies, agents, 0.5)),
        ms(quantile(&latencies, agents, 0.99)),
        ms(quantile(&latencies, agents, 1.0))
    );
    println!(
        "| all {agents} works applied and available | {:.1} s (creations took {:.1} s) |",
        total.as_secs_f64(),
        creation_span.as_secs_f64()
    );
    println!("| sustained works per second (created to all available) | {:.1} |", n / total.as_secs_f64());
    println!("| hub CPU per work (creation, status updates) | {:.1} ms |", hub_cpu.as_secs_f64() * 1000.0 / n);
    println!("| hub RSS before the works / after | {:.1} / {:.1} MiB |", mib(hub_rss_before), mib(hub_rss_after));
    println!(
        "| bench process RSS per in-process agent, idle / with its work (agent state + shared spoke) | {:.0} / {:.0} KiB |",
        bench_rss_idle.saturating_sub(bench_rss_before_agents) as f64 / n,
        bench_rss_after.saturating_sub(bench_rss_before_agents) as f64 / n
    );
    println!(
        "| one agent process at idle with one work (vs klusterlet + work agent ~{KLUSTERLET_MB:.0} MB) | {:.1} MiB ({:.1}x less) |",
        mib(solo_rss),
        KLUSTERLET_MB * 1000.0 * 1000.0 / 1024.0 / 1024.0 / mib(solo_rss).max(0.001)
    );
}
