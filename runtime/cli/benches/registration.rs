//! Registration benchmark (issue #3): N simulated agents (default 1,000) join one hub.
//!
//! The hub runs as its own `flotilla hub serve` process (autoAccept for `bench-*` in
//! hub.json), so its RSS and CPU are read alone from /proc. The agents are the real
//! flotilla-agent library (`flotilla_agent::run`), N tokio tasks in this process, each with
//! its own data directory, key, CSR, bootstrap token client and mutual-TLS hub client.
//! They share one simulated spoke (`flotilla_spoke`, in this process, over HTTPS) through
//! `SpokeSource::Client`: the hub sees N independent agents; the spoke's answers (and so
//! each cluster's claims) are the same for all of them.
//!
//! Printed: time until all N ManagedClusters are accepted, joined and Available=True (50 %,
//! 90 %, 100 %); hub CPU per join; hub RSS before any cluster and at idle, per cluster; hub
//! CPU per lease renewal over an idle window (renewals counted from the hub's own request
//! metrics, cross-checked with the store revision); ratios against the published figures in
//! shared/reference/fleet-scale.md. Nothing is asserted about timings.
//!
//! Run: `cargo bench -p flotilla --bench registration`. Environment:
//! `FLOTILLA_BENCH_AGENTS` (1000), `FLOTILLA_BENCH_LEASE_SECONDS` (10),
//! `FLOTILLA_BENCH_IDLE_SECONDS` (60, one status period), `FLOTILLA_BENCH_SETTLE_SECONDS` (20),
//! `FLOTILLA_BENCH_JOIN_TIMEOUT_SECONDS` (900). `RUST_LOG` turns on the agents' logs.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_agent::AgentOptions;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

mod common;
use common::{
    HubProcess, bootstrap_token, client, cpu_time, env_usize, free_port, init_hub, raise_fd_limit, rss_kib,
    shared_spoke,
};

const CLUSTER_PREFIX: &str = "bench-";
const ACCEPTED: &str = "HubAcceptedManagedCluster";
const JOINED: &str = "ManagedClusterJoined";
const AVAILABLE: &str = "ManagedClusterConditionAvailable";
/// OCM's lease jitter (the agent renews every duration × (1 + U[0, 0.25))).
const LEASE_JITTER: f64 = 0.25;
/// OCM's defaults, for the extrapolation to a production setting.
const OCM_LEASE_SECONDS: f64 = 60.0;
const OCM_STATUS_SECONDS: f64 = 60.0;

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// When each cluster first reached each stage, since the agents started.
#[derive(Default)]
struct Stages {
    created: HashMap<String, Duration>,
    accepted: HashMap<String, Duration>,
    joined: HashMap<String, Duration>,
    available: HashMap<String, Duration>,
}

fn condition_true(obj: &Value, type_: &str) -> bool {
    obj.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten().any(|c| {
        c.get("type").and_then(Value::as_str) == Some(type_) && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

impl Stages {
    fn observe(&mut self, obj: &DynamicObject, at: Duration) {
        let Some(name) = obj.metadata.name.as_deref().filter(|n| n.starts_with(CLUSTER_PREFIX)) else { return };
        let value = serde_json::to_value(obj).unwrap_or(Value::Null);
        self.created.entry(name.to_string()).or_insert(at);
        if condition_true(&value, ACCEPTED) {
            self.accepted.entry(name.to_string()).or_insert(at);
        }
        if condition_true(&value, JOINED) {
            self.joined.entry(name.to_string()).or_insert(at);
        }
        // Ready: accepted, joined and available, all at once.
        if condition_true(&value, ACCEPTED) && condition_true(&value, JOINED) && condition_true(&value, AVAILABLE) {
            self.available.entry(name.to_string()).or_insert(at);
        }
    }
}

/// The time by which `fraction` of `total` clusters had reached a stage.
fn time_to(times: &HashMap<String, Duration>, total: usize, fraction: f64) -> Option<Duration> {
    let mut sorted: Vec<Duration> = times.values().copied().collect();
    sorted.sort();
    let needed = ((fraction * total as f64).ceil() as usize).max(1);
    sorted.get(needed - 1).copied()
}

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1} s", d.as_secs_f64())).unwrap_or_else(|| "-".to_string())
}

/// The hub's request counters by (method, code), and its open watches, from `/metrics`.
async fn hub_metrics(admin: &kube::Client) -> (BTreeMap<(String, String), u64>, u64) {
    let request = http::Request::get("/metrics").body(Vec::new()).expect("request");
    let text = admin.request_text(request).await.expect("GET /metrics");
    let watches = text
        .lines()
        .find_map(|l| l.strip_prefix("flotilla_apiserver_watches "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut counts = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("flotilla_apiserver_requests_total{")) {
        let Some((labels, value)) = line.split_once("} ") else { continue };
        let label = |name: &str| {
            labels.split(&format!("{name}=\"")).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("").to_string()
        };
        if let Ok(value) = value.trim().parse::<u64>() {
            counts.insert((label("method"), label("code")), value);
        }
    }
    (counts, watches)
}

fn count_delta(
    before: &BTreeMap<(String, String), u64>,
    after: &BTreeMap<(String, String), u64>,
    pick: impl Fn(&str, &str) -> bool,
) -> u64 {
    after
        .iter()
        .filter(|((method, code), _)| pick(method, code))
        .map(|(key, n)| n.saturating_sub(before.get(key).copied().unwrap_or(0)))
        .sum()
}

/// The store's current revision (the resourceVersion of a list).
async fn revision(clusters: &Api<DynamicObject>) -> u64 {
    let list = clusters.list(&ListParams::default().limit(1)).await.expect("list managed clusters");
    list.metadata.resource_version.and_then(|rv| rv.parse().ok()).unwrap_or(0)
}

fn file_kib(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len() / 1024).unwrap_or(0)
}

#[tokio::main]
async fn main() {
    common::init();
    let agents = env_usize("FLOTILLA_BENCH_AGENTS", 1_000).max(1);
    let lease_seconds = env_usize("FLOTILLA_BENCH_LEASE_SECONDS", 10).max(1) as u64;
    let idle_seconds = env_usize("FLOTILLA_BENCH_IDLE_SECONDS", 60).max(1) as u64;
    let settle_seconds = env_usize("FLOTILLA_BENCH_SETTLE_SECONDS", 20) as u64;
    let join_timeout = Duration::from_secs(env_usize("FLOTILLA_BENCH_JOIN_TIMEOUT_SECONDS", 900) as u64);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

    // Each agent holds a TLS connection to the hub, and to the in-process spoke for a while
    // (both ends in this process); the hub inherits the limit.
    let wanted_fds = 4 * agents as u64 + 1_024;
    let fd_limit = raise_fd_limit(wanted_fds);
    if fd_limit < wanted_fds {
        eprintln!("warning: open-file limit {fd_limit} is below the {wanted_fds} that {agents} agents may need");
    }

    println!("Flotilla registration benchmark: {agents} agents against one hub process ({cores} cores)");
    let dir = tempfile::tempdir().expect("tempdir");

    // The hub, auto-accepting the benchmark's clusters by name.
    let data = dir.path().join("hub");
    let port = free_port();
    init_hub(&data, port, |config| config["autoAccept"] = json!([format!("{CLUSTER_PREFIX}*")]));
    let mut hub = HubProcess::serve(&data, port);
    let hub_url = format!("https://{}", hub.addr);
    let admin = client(&hub.kubeconfig).await;
    let ready_by = Instant::now() + Duration::from_secs(30);
    while admin.request_text(http::Request::get("/readyz").body(Vec::new()).expect("request")).await.is_err() {
        assert!(hub.running(), "the hub exited:\n{}", hub.log_tail(40));
        assert!(Instant::now() < ready_by, "the hub never became ready:\n{}", hub.log_tail(40));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (token, ca_hash) = bootstrap_token(&admin, &data, "registration benchmark").await;
    let (spoke, spoke_source) = shared_spoke(&dir.path().join("spoke")).await;

    // The empty hub: RSS, and CPU over a short idle window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let empty_rss = rss_kib(hub.pid());
    let baseline_cpu = cpu_time(hub.pid());
    let baseline_window = Duration::from_secs(5);
    tokio::time::sleep(baseline_window).await;
    let empty_idle_cpu = cpu_time(hub.pid()).saturating_sub(baseline_cpu);
    let bench_rss_before = rss_kib(std::process::id());

    // Watch the clusters (one admin watch, like `kubectl get managedclusters -w`).
    let clusters: Api<DynamicObject> = Api::all_with(admin.clone(), &flotilla_agent::status::managed_clusters());
    let mut events = watcher::watcher(clusters.clone(), watcher::Config::default()).boxed();

    // The agents, all at once.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let cpu_at_start = cpu_time(hub.pid());
    let bench_cpu_at_start = cpu_time(std::process::id());
    let started = Instant::now();
    let mut handles = Vec::with_capacity(agents);
    for i in 0..agents {
        let name = format!("{CLUSTER_PREFIX}{i:05}");
        let mut opts = AgentOptions::new(&hub_url, &name, dir.path().join("agents").join(&name), spoke_source.clone());
        opts.token = Some(token.expose());
        opts.hub_ca_hash = Some(ca_hash.clone());
        opts.lease_duration = Some(Duration::from_secs(lease_seconds));
        let mut stop = stop_rx.clone();
        let failures = failures.clone();
        handles.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = flotilla_agent::run(opts, shutdown).await {
                failures.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{name}: {e}"));
            }
        }));
    }

    let mut stages = Stages::default();
    let mut peak_rss = 0;
    let mut report = tokio::time::interval(Duration::from_secs(10));
    report.tick().await;
    let mut check = tokio::time::interval(Duration::from_millis(500));
    while stages.available.len() < agents {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj))) => {
                    stages.observe(&obj, started.elapsed());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => eprintln!("watching managed clusters: {e} (the watcher retries)"),
                None => panic!("the managed cluster watch ended"),
            },
            _ = check.tick() => {
                peak_rss = peak_rss.max(rss_kib(hub.pid()));
                assert!(hub.running(), "the hub exited during the join:\n{}", hub.log_tail(60));
                let failed = failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
                assert!(failed.is_empty(), "{} agents stopped with an error, e.g.:\n{}", failed.len(),
                    failed.iter().take(5).cloned().collect::<Vec<_>>().join("\n"));
                assert!(started.elapsed() < join_timeout,
                    "after {join_timeout:?} only {} of {agents} clusters are available ({} created, {} accepted, {} joined):\n{}",
                    stages.available.len(), stages.created.len(), stages.accepted.len(), stages.joined.len(), hub.log_tail(40));
            }
            _ = report.tick() => eprintln!(
                "[{:>4.0} s] created {}, accepted {}, joined {}, available {} of {agents}; hub CPU {:.1} s, RSS {:.0} MiB",
                started.elapsed().as_secs_f64(), stages.created.len(), stages.accepted.len(), stages.joined.len(),
                stages.available.len(), cpu_time(hub.pid()).saturating_sub(cpu_at_start).as_secs_f64(), mib(rss_kib(hub.pid())),
            ),
        }
    }
    let join_time = started.elapsed();
    let join_cpu = cpu_time(hub.pid()).saturating_sub(cpu_at_start);
    let bench_join_cpu = cpu_time(std::process::id()).saturating_sub(bench_cpu_at_start);
    peak_rss = peak_rss.max(rss_kib(hub.pid()));
    drop(events);

    // Idle: every cluster renews its lease, and reads its ManagedCluster once a minute.
    eprintln!("all {agents} available after {:.1} s; settling {settle_seconds} s", join_time.as_secs_f64());
    tokio::time::sleep(Duration::from_secs(settle_seconds)).await;
    let window = Duration::from_secs(idle_seconds);
    eprintln!("idle window of {idle_seconds} s");
    let (counts_before, watches_before) = hub_metrics(&admin).await;
    let rev_before = revision(&clusters).await;
    let cpu_before = cpu_time(hub.pid());
    let window_started = Instant::now();
    let mut idle_rss_samples = Vec::new();
    while window_started.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(1).min(window.saturating_sub(window_started.elapsed()))).await;
        idle_rss_samples.push(rss_kib(hub.pid()));
    }
    let idle_cpu = cpu_time(hub.pid()).saturating_sub(cpu_before);
    let window = window_started.elapsed();
    let (counts_after, watches_after) = hub_metrics(&admin).await;
    let rev_after = revision(&clusters).await;
    assert!(hub.running(), "the hub exited during the idle window:\n{}", hub.log_tail(60));
    // The two reads of the counters and the revision are themselves GETs: leave them out.
    let renewals = count_delta(&counts_before, &counts_after, |m, c| m == "PATCH" && c == "200");
    let gets = count_delta(&counts_before, &counts_after, |m, c| m == "GET" && c == "200").saturating_sub(2);
    let all_requests = count_delta(&counts_before, &counts_after, |_, _| true).saturating_sub(2);
    let failed_requests = count_delta(&counts_before, &counts_after, |_, c| !c.starts_with('2'));
    let writes = rev_after.saturating_sub(rev_before);
    idle_rss_samples.sort();
    let idle_rss = idle_rss_samples[idle_rss_samples.len() / 2];
    let store_kib = file_kib(&data.join("store.redb"));
    let bench_rss = rss_kib(std::process::id());
    let failed = failures.lock().unwrap_or_else(|e| e.into_inner()).len();

    // Stop the agents, then the hub and the spoke; the temp dir goes with `dir`.
    let _ = stop_tx.send(true);
    for handle in handles {
        let _ = tokio::time::timeout(Duration::from_secs(15), handle).await;
    }
    hub.stop();
    spoke.shutdown().await;

    let n = agents as f64;
    let rss_per_cluster_kib = idle_rss.saturating_sub(empty_rss) as f64 / n;
    let cpu_per_renewal_us = if renewals > 0 { idle_cpu.as_secs_f64() * 1e6 / renewals as f64 } else { f64::NAN };
    let cpu_per_request_us =
        if all_requests > 0 { idle_cpu.as_secs_f64() * 1e6 / all_requests as f64 } else { f64::NAN };
    let idle_mcpu_per_cluster = idle_cpu.as_secs_f64() / window.as_secs_f64() / n * 1000.0;
    let empty_idle_mcpu = empty_idle_cpu.as_secs_f64() / baseline_window.as_secs_f64() * 1000.0;
    let expected_renewals = n * window.as_secs_f64() / (lease_seconds as f64 * (1.0 + LEASE_JITTER / 2.0));
    // At OCM's defaults a cluster sends one renewal per 60 s × 1.125 and one status read per
    // 60 s; each request costing what the measured idle requests cost on average.
    let ocm_requests_per_s = 1.0 / (OCM_LEASE_SECONDS * (1.0 + LEASE_JITTER / 2.0)) + 1.0 / OCM_STATUS_SECONDS;
    let ocm_mcpu_per_cluster = cpu_per_request_us * ocm_requests_per_s / 1000.0;
    let join_cpu_per_cluster_ms = join_cpu.as_secs_f64() * 1000.0 / n;
    let bench_per_agent_kib = bench_rss.saturating_sub(bench_rss_before) as f64 / n;
    let p = |times: &HashMap<String, Duration>, f: f64| time_to(times, agents, f);

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| agents (tokio tasks in the bench process, one shared simulated spoke) | {agents} |");
    println!("| lease duration (renewal every duration × 1..1.25) | {lease_seconds} s |");
    for (what, times) in [
        ("ManagedCluster created", &stages.created),
        ("accepted (HubAcceptedManagedCluster=True)", &stages.accepted),
        ("joined (ManagedClusterJoined=True)", &stages.joined),
        ("accepted, joined and Available=True", &stages.available),
    ] {
        println!(
            "| {what}: 50 % / 90 % / 100 % of clusters | {} / {} / {} |",
            secs(p(times, 0.5)),
            secs(p(times, 0.9)),
            secs(p(times, 1.0))
        );
    }
    println!("| join throughput (all available) | {:.1} clusters/s |", n / join_time.as_secs_f64());
    println!(
        "| hub CPU during the join | {:.1} s ({:.0} % of one core) |",
        join_cpu.as_secs_f64(),
        join_cpu.as_secs_f64() / join_time.as_secs_f64() * 100.0
    );
    println!("| hub CPU per join | {join_cpu_per_cluster_ms:.1} ms |");
    println!(
        "| bench process CPU during the join (agents + spoke), per agent | {:.1} ms |",
        bench_join_cpu.as_secs_f64() * 1000.0 / n
    );
    println!("| hub RSS before any cluster | {:.1} MiB |", mib(empty_rss));
    println!("| hub RSS peak during the join | {:.1} MiB |", mib(peak_rss));
    println!("| hub RSS idle with {agents} clusters (median over the window) | {:.1} MiB |", mib(idle_rss));
    println!("| hub RSS per cluster | {rss_per_cluster_kib:.1} KiB |");
    println!("| hub store file per cluster | {:.1} KiB |", store_kib as f64 / n);
    println!("| empty hub idle CPU | {empty_idle_mcpu:.2} mCPU |");
    println!(
        "| idle window | {:.1} s: {renewals} lease renewals (PATCH; ~{expected_renewals:.0} expected), {gets} GETs, {all_requests} requests, {failed_requests} failed; {writes} store writes |",
        window.as_secs_f64()
    );
    println!("| open watches on the hub at the start / end of the idle window | {watches_before} / {watches_after} |");
    println!(
        "| hub CPU in the idle window | {:.2} s ({:.1} % of one core) |",
        idle_cpu.as_secs_f64(),
        idle_cpu.as_secs_f64() / window.as_secs_f64() * 100.0
    );
    println!("| hub CPU per lease renewal (all idle hub CPU / renewals) | {cpu_per_renewal_us:.0} µs |");
    println!("| hub CPU per API request in the idle window | {cpu_per_request_us:.0} µs |");
    println!("| hub CPU per idle cluster ({lease_seconds} s leases) | {idle_mcpu_per_cluster:.3} mCPU |");
    println!(
        "| hub CPU per idle cluster at OCM's 60 s lease and 60 s status period (extrapolated) | {ocm_mcpu_per_cluster:.3} mCPU |"
    );
    println!("| bench process RSS per agent (agent state, connections, shared spoke) | {bench_per_agent_kib:.0} KiB |");
    if failed > 0 {
        println!("| agents that stopped with an error | {failed} |");
    }

    // Published anchors (shared/reference/fleet-scale.md).
    const ACM_MB_PER_CLUSTER: f64 = 144.0;
    const ACM_MCPU_PER_CLUSTER: f64 = 30.0;
    const TARGET_KIB_PER_CLUSTER: f64 = 512.0;
    const TARGET_MCPU_PER_CLUSTER: f64 = 1.0;
    const KARMADA_REGISTER_MS: [f64; 3] = [5_356.0, 6_125.0, 6_904.0];
    const KLUSTERLET_MB: f64 = 122.0;
    let ready = |f: f64| p(&stages.available, f).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN);
    println!();
    println!("| against published figures (fleet-scale.md) | Flotilla | published | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| hub memory per cluster | {:.1} KiB | ACM ~144 MB per cluster at 3,500 SNO (peak, whole 3-node OpenShift hub) | {:.0}x less |",
        rss_per_cluster_kib,
        ACM_MB_PER_CLUSTER * 1000.0 * 1000.0 / 1024.0 / rss_per_cluster_kib
    );
    println!(
        "| hub CPU per idle cluster (OCM's 60 s lease, extrapolated) | {ocm_mcpu_per_cluster:.3} mCPU | ACM ~30 mCPU per cluster (peak, incl. platform) | {:.0}x less |",
        ACM_MCPU_PER_CLUSTER / ocm_mcpu_per_cluster
    );
    println!(
        "| hub CPU per idle cluster (measured, {lease_seconds} s lease) | {idle_mcpu_per_cluster:.3} mCPU | ACM ~30 mCPU per cluster (60 s lease) | {:.0}x less |",
        ACM_MCPU_PER_CLUSTER / idle_mcpu_per_cluster
    );
    println!(
        "| hub goal (fleet-scale §8: ≤ 0.5 MiB and ≤ 1 mCPU per idle cluster) | {rss_per_cluster_kib:.1} KiB, {idle_mcpu_per_cluster:.3} mCPU | 512 KiB, 1 mCPU | {:.2}x / {:.2}x of the budget |",
        rss_per_cluster_kib / TARGET_KIB_PER_CLUSTER,
        idle_mcpu_per_cluster / TARGET_MCPU_PER_CLUSTER
    );
    println!(
        "| registration latency P50 / P90 / P100 ({agents} joining at once) | {:.0} / {:.0} / {:.0} ms | Karmada cluster_register P50 / P90 / P99 5,356 / 6,125 / 6,904 ms (100 clusters) | {:.2}x / {:.2}x / {:.2}x |",
        ready(0.5),
        ready(0.9),
        ready(1.0),
        ready(0.5) / KARMADA_REGISTER_MS[0],
        ready(0.9) / KARMADA_REGISTER_MS[1],
        ready(1.0) / KARMADA_REGISTER_MS[2]
    );
    println!(
        "| agent memory | {bench_per_agent_kib:.0} KiB per in-process agent | klusterlet + klusterlet-agent ~122 MB per cluster | {:.0}x less |",
        KLUSTERLET_MB * 1000.0 * 1000.0 / 1024.0 / bench_per_agent_kib
    );
}
