//! End to end through the hub: N ManagedClusters and M Placements (default 1,000 × 1,000)
//! created through the API of a real hub (`flotilla_hub::start`, TLS on loopback); measured
//! until every Placement's status shows its clusters selected, so the figure includes the
//! controller's watches, the scheduling, and every PlacementDecision and status write. Then
//! one cluster's labels change, and the time until the placements it left no longer list it.
//!
//! `cargo bench -p flotilla-placement --bench hub`. Environment: `FLOTILLA_BENCH_CLUSTERS`
//! (1000), `FLOTILLA_BENCH_PLACEMENTS` (1000). Prints figures; asserts nothing about time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use kube::api::ListParams;
use serde_json::{Value, json};

const REGIONS: [&str; 5] = ["eu-west", "eu-central", "us-east", "us-west", "ap-south"];
const WANTED: i64 = 10;
/// How often the benchmark lists every Placement and PlacementDecision to check: each list is
/// work for the hub it measures, so not too often (the figures have this granularity).
const POLL: Duration = Duration::from_millis(250);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Placements whose status shows `WANTED` clusters selected, and the clusters they select.
async fn scheduled(hub: &Hub) -> (usize, Vec<Vec<String>>) {
    let list = placement_api(hub, "apps").list(&ListParams::default()).await.expect("list placements");
    let done = list
        .items
        .iter()
        .filter(|p| {
            let v = serde_json::to_value(p).unwrap_or(Value::Null);
            v.pointer("/status/numberOfSelectedClusters").and_then(Value::as_i64) == Some(WANTED)
        })
        .count();
    let decisions = decision_api(hub, "apps").list(&ListParams::default()).await.expect("list decisions");
    let chosen = decisions
        .items
        .iter()
        .map(|d| {
            let v = serde_json::to_value(d).unwrap_or(Value::Null);
            v.pointer("/status/decisions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| d["clusterName"].as_str().map(str::to_string))
                .collect()
        })
        .collect();
    (done, chosen)
}

#[tokio::main]
async fn main() {
    let clusters = env("FLOTILLA_BENCH_CLUSTERS", 1000).max(WANTED as usize);
    let placements = env("FLOTILLA_BENCH_PLACEMENTS", 1000).max(1);
    println!("placement through the hub: {clusters} clusters, {placements} placements choosing {WANTED} each");
    let hub = Hub::start().await;
    namespace(&hub, "apps").await;
    bind(&hub, "apps", "global").await;
    let t = Instant::now();
    futures::stream::iter(0..clusters)
        .for_each_concurrent(32, |i| {
            let hub = &hub;
            async move {
                let (region, tier) = (REGIONS[i % REGIONS.len()], ["gold", "silver"][i % 2]);
                let labels = json!({"region": region, "tier": tier});
                cluster(hub, &format!("c{i:05}"), labels).await;
            }
        })
        .await;
    let clusters_created = t.elapsed();

    let started = Instant::now();
    futures::stream::iter(0..placements)
        .for_each_concurrent(32, |i| {
            let hub = &hub;
            async move {
                let region = REGIONS[i % REGIONS.len()];
                let spec = json!({
                    "numberOfClusters": WANTED,
                    "predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"region": region}}}}],
                });
                create_placement(hub, "apps", &format!("p{i:05}"), spec).await;
            }
        })
        .await;
    let created = started.elapsed();
    loop {
        let (done, _) = scheduled(&hub).await;
        if done == placements {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "only {done} of {placements} scheduled after 10 min");
        tokio::time::sleep(POLL).await;
    }
    let all_scheduled = started.elapsed();

    // One cluster moves to a region no placement asks for: every placement that chose it
    // must choose another.
    let (_, before) = scheduled(&hub).await;
    let moved = "c00000";
    let holding = before.iter().filter(|d| d.iter().any(|c| c == moved)).count();
    let t = Instant::now();
    label_cluster(&hub, moved, json!({"region": "antarctica"})).await;
    loop {
        let (done, after) = scheduled(&hub).await;
        if done == placements && !after.iter().any(|d| d.iter().any(|c| c == moved)) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "the relabel never settled");
        tokio::time::sleep(POLL).await;
    }
    let relabel = t.elapsed();
    hub.stop().await;

    println!("| measure | value |");
    println!("|---|---|");
    println!("| {clusters} ManagedClusters created through the API | {:.2} s |", clusters_created.as_secs_f64());
    println!(
        "| {placements} Placements created, then all scheduled (decisions and status written) | {:.2} s (creation took {:.2} s) |",
        all_scheduled.as_secs_f64(),
        created.as_secs_f64()
    );
    println!(
        "| one cluster relabelled out of {holding} placements' decisions, until all moved off it | {:.0} ms |",
        relabel.as_secs_f64() * 1000.0
    );
}
