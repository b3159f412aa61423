//! End to end through the hub: N ManagedClusters (default 1,000) selected by one Placement,
//! and M Policies (default 10) bound to it, created through the API of a real hub
//! (`flotilla_hub::start`, TLS on loopback). Measured: the time until every replica exists
//! (N × M Policies written by the propagator), the time until the replica statuses of one
//! policy, written as N agents would, are aggregated into its root (`status.summary`), and the
//! time until the replicas of a cluster that leaves the decisions are gone.
//!
//! `cargo bench -p flotilla-policy --bench propagation`. Environment: `FLOTILLA_BENCH_CLUSTERS`
//! (1000), `FLOTILLA_BENCH_POLICIES` (10). Prints figures; asserts nothing about time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::{Value, json};

/// How often the benchmark lists to check: each list is work for the hub it measures.
const POLL: Duration = Duration::from_millis(250);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn cluster_name(i: usize) -> String {
    format!("c{i:05}")
}

/// Polls `count` until it reaches `want`; returns the time taken.
async fn until<F, Fut>(what: &str, want: usize, mut count: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let t = Instant::now();
    loop {
        let n = count().await;
        if n == want {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(600), "{what}: {n} of {want} after 10 minutes");
        tokio::time::sleep(POLL).await;
    }
}

async fn replica_count(hub: &Hub) -> usize {
    let all: Api<DynamicObject> = Api::all_with(hub.admin.clone(), &policies());
    all.list_metadata(&ListParams::default().labels(ROOT_LABEL)).await.expect("list replicas").items.len()
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

#[tokio::main]
async fn main() {
    let clusters = env("FLOTILLA_BENCH_CLUSTERS", 1000).max(1);
    let policy_count = env("FLOTILLA_BENCH_POLICIES", 10).max(1);
    println!("policy propagation through the hub: {clusters} clusters, {policy_count} policies");
    let hub = Hub::start().await;
    namespace(&hub, NS).await;
    bind(&hub, NS, "default").await;
    futures::stream::iter(0..clusters)
        .for_each_concurrent(32, |i| {
            let hub = &hub;
            async move { cluster(hub, &cluster_name(i), json!({"governed": "true"})).await }
        })
        .await;
    // Registration creates each cluster's namespace; replicas go there.
    let namespaces: Api<Namespace> = Api::all(hub.admin.clone());
    until("cluster namespaces", clusters, || async {
        let list = namespaces.list_metadata(&ListParams::default()).await.expect("list namespaces");
        list.items.iter().filter(|n| n.metadata.name.as_deref().is_some_and(|n| n.starts_with('c'))).count()
    })
    .await;
    label_placement(&hub, "governed", "governed", "true").await;
    until("placement decisions", clusters, || async { selected(&hub, NS, "governed").await.len() }).await;

    let t = Instant::now();
    for p in 0..policy_count {
        create_simple_policy(&hub, &format!("p{p}")).await;
    }
    let subjects: Vec<(String, String)> = (0..policy_count).map(|p| ("Policy".to_string(), format!("p{p}"))).collect();
    let subjects: Vec<(&str, &str)> = subjects.iter().map(|(k, n)| (k.as_str(), n.as_str())).collect();
    create_binding(&hub, "all", "governed", &subjects, json!({})).await;
    let replicas = clusters * policy_count;
    let wait = until("replicas", replicas, || replica_count(&hub)).await;
    let created = t.elapsed();
    println!(
        "  replicated:  {replicas} replicas in {:.2?} ({:.0} replicas/s; the last poll alone took {:.2?})",
        created,
        per_second(replicas, created),
        created.saturating_sub(wait)
    );

    let t = Instant::now();
    futures::stream::iter(0..clusters)
        .for_each_concurrent(32, |i| {
            let hub = &hub;
            async move { report(hub, &cluster_name(i), "p0", "Compliant").await }
        })
        .await;
    let written = t.elapsed();
    until("aggregation", clusters, || async {
        let root = get_policy(&hub, NS, "p0").await;
        root.pointer("/status/summary/compliant").and_then(Value::as_u64).unwrap_or(0) as usize
    })
    .await;
    let aggregated = t.elapsed();
    println!(
        "  aggregated:  {clusters} replica statuses written in {written:.2?}, all counted in p0's root after {aggregated:.2?} \
         ({:.0} statuses/s end to end)",
        per_second(clusters, aggregated)
    );

    let t = Instant::now();
    label_cluster(&hub, &cluster_name(0), json!({"governed": null})).await;
    until("removal", replicas - policy_count, || replica_count(&hub)).await;
    println!("  removed:     a cluster left the decisions; its {policy_count} replicas gone after {:.2?}", t.elapsed());
    hub.stop().await;
}
