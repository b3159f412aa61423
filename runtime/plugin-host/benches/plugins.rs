//! Side by side in one run, over 10,000 clusters with realistic labels and claims: the
//! built-in Wasm filter and scorer against the same logic in native Rust; the cost of one
//! instantiation; and the first load of a component against a cached one.
//!
//! `cargo bench -p flotilla-plugin-host --bench plugins` (builds the plugins with
//! `plugins/build.sh` first). Prints a table; asserts nothing about time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flotilla_plugin_host::*;

const CLUSTERS: usize = 10_000;

fn artifacts() -> PathBuf {
    flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}")).to_path_buf()
}

/// Builds `benches/py_region` with componentize-py, when it is installed.
fn python_component(dir: &Path) -> Option<Vec<u8>> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = dir.join("py_region.wasm");
    let status = Command::new("componentize-py")
        .arg("-d")
        .arg(here.join("../../wit/placement-filter"))
        .args(["-w", "placement-filter", "componentize", "--stub-wasi", "-p"])
        .arg(here.join("benches/py_region"))
        .arg("app")
        .arg("-o")
        .arg(&out)
        .output()
        .ok()?;
    if !status.status.success() {
        println!("componentize-py failed: {}", String::from_utf8_lossy(&status.stderr));
        return None;
    }
    std::fs::read(out).ok()
}

/// A deterministic pseudo-random fleet: 12 labels and 6 claims per cluster, as OCM fleets
/// carry (cloud, region, zone, environment, team, versions, cluster-set membership, ...).
fn fleet(n: usize) -> Vec<ClusterInfo> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let regions = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "ap-northeast-1"];
    let envs = ["prod", "staging", "dev", "qa"];
    let platforms = ["AWS", "GCP", "Azure", "IBM", "VSphere", "Other"];
    (0..n)
        .map(|i| {
            let region = regions[(next() % 6) as usize];
            let labels: BTreeMap<String, String> = [
                ("name", format!("cluster-{i:05}")),
                ("cloud", platforms[(next() % 6) as usize].to_string()),
                ("region", region.to_string()),
                ("topology.kubernetes.io/zone", format!("{region}{}", ["a", "b", "c"][(next() % 3) as usize])),
                ("env", envs[(next() % 4) as usize].to_string()),
                ("team", format!("team-{}", next() % 40)),
                ("tier", ["gold", "silver", "bronze"][(next() % 3) as usize].to_string()),
                ("cost-center", format!("cc-{}", 1000 + next() % 200)),
                ("cluster.open-cluster-management.io/clusterset", format!("set-{}", next() % 20)),
                ("feature.open-cluster-management.io/addon-work-manager", "available".to_string()),
                ("vendor", ["OpenShift", "EKS", "GKE", "AKS"][(next() % 4) as usize].to_string()),
                ("openshiftVersion", format!("4.{}.{}", 12 + next() % 5, next() % 30)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let mut labels = labels;
            if next() % 50 == 0 {
                labels.insert("decommissioned".into(), "true".into());
            }
            let claims: BTreeMap<String, String> = [
                ("id.k8s.io", format!("{:016x}", next())),
                ("kubeversion.open-cluster-management.io", format!("v1.{}.{}", 28 + next() % 5, next() % 10)),
                ("platform.open-cluster-management.io", platforms[(next() % 6) as usize].to_string()),
                (
                    "product.open-cluster-management.io",
                    ["OpenShift", "EKS", "GKE", "AKS"][(next() % 4) as usize].to_string(),
                ),
                ("region.open-cluster-management.io", region.to_string()),
                ("gpu.flotilla.dev", ["none", "a100", "h100"][(next() % 3) as usize].to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let mut resources = BTreeMap::new();
            let cpu = 16_000 + (next() % 240) as i64 * 1000;
            let mem = (64 + (next() % 960) as i64) << 30;
            resources.insert(
                "cpu".into(),
                Quantity { capacity_milli: Some(cpu), allocatable_milli: Some(cpu - (next() % 8000) as i64) },
            );
            resources.insert(
                "memory".into(),
                Quantity { capacity_milli: Some(mem * 1000), allocatable_milli: Some((mem - (8 << 30)) * 1000) },
            );
            ClusterInfo { name: format!("cluster-{i:05}"), labels, claims, resources, object: None }
        })
        .collect()
}

const FILTER_CONFIG: &str = r#"{
    "labels": [{"key": "region", "operator": "In", "values": ["us-east-1", "eu-west-1", "eu-central-1"]},
               {"key": "env", "operator": "In", "values": ["prod", "staging"]},
               {"key": "decommissioned", "operator": "DoesNotExist"}],
    "claims": [{"key": "platform.open-cluster-management.io", "operator": "NotIn", "values": ["Other"]}]
}"#;

/// The label filter's logic, natively over the host's clusters: what the Wasm plugin does.
mod native {
    use super::*;

    pub enum Op {
        In(Vec<&'static str>),
        NotIn(Vec<&'static str>),
        DoesNotExist,
    }

    pub struct Req {
        pub key: &'static str,
        pub op: Op,
        pub claim: bool,
    }

    pub fn config() -> Vec<Req> {
        vec![
            Req { key: "region", op: Op::In(vec!["us-east-1", "eu-west-1", "eu-central-1"]), claim: false },
            Req { key: "env", op: Op::In(vec!["prod", "staging"]), claim: false },
            Req { key: "decommissioned", op: Op::DoesNotExist, claim: false },
            Req { key: "platform.open-cluster-management.io", op: Op::NotIn(vec!["Other"]), claim: true },
        ]
    }

    /// Per cluster 0 (kept) or 1 + the index of the first requirement it fails, and the
    /// reasons: the plugin's result, computed natively.
    pub fn filter(reqs: &[Req], clusters: &[ClusterInfo]) -> (Vec<String>, Vec<u32>) {
        let reasons = reqs
            .iter()
            .map(|r| {
                let what = if r.claim { "claim" } else { "label" };
                match &r.op {
                    Op::In(vs) => format!("{what} {} not in [{}]", r.key, vs.join(", ")),
                    Op::NotIn(vs) => format!("{what} {} in [{}]", r.key, vs.join(", ")),
                    Op::DoesNotExist => format!("{what} {} present", r.key),
                }
            })
            .collect();
        let verdicts = clusters
            .iter()
            .map(|c| {
                for (i, r) in reqs.iter().enumerate() {
                    let map = if r.claim { &c.claims } else { &c.labels };
                    let v = map.get(r.key).map(String::as_str);
                    let ok = match &r.op {
                        Op::In(vs) => v.is_some_and(|v| vs.contains(&v)),
                        Op::NotIn(vs) => v.is_none_or(|v| !vs.contains(&v)),
                        Op::DoesNotExist => v.is_none(),
                    };
                    if !ok {
                        return i as u32 + 1;
                    }
                }
                0
            })
            .collect();
        (reasons, verdicts)
    }

    /// OCM's allocatable formula per resource, weighted mean, as the capacity scorer.
    pub fn score(clusters: &[ClusterInfo]) -> Vec<i32> {
        let mut sums = vec![0.0f64; clusters.len()];
        for name in ["cpu", "memory"] {
            let values: Vec<Option<i64>> =
                clusters.iter().map(|c| c.resources.get(name).and_then(|q| q.allocatable_milli)).collect();
            let (min, max) = values.iter().flatten().fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            for (sum, v) in sums.iter_mut().zip(&values) {
                *sum += match v {
                    None => -100.0,
                    Some(_) if max <= min => 100.0,
                    Some(v) => ((*v - min) as f64 / (max - min) as f64 - 0.5) * 200.0,
                };
            }
        }
        sums.into_iter().map(|s| (s / 2.0).round().clamp(-100.0, 100.0) as i32).collect()
    }
}

/// The median of `runs` timings of `f`, after one warm-up.
fn median<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    std::hint::black_box(f());
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> String {
    format!("{:>9.3} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:>9.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let dir = artifacts();
    let read = |n: &str| std::fs::read(dir.join(format!("{n}.wasm"))).expect("plugin");
    let cache = tempfile::tempdir().expect("cache dir");
    let host = PluginHost::new(HostConfig::new(cache.path())).expect("host");
    let owner = OwnerRef { kind: "Placement".into(), namespace: "default".into(), name: "bench".into() };
    let limits = host.limits(&[]);
    let fleet = fleet(CLUSTERS);
    let runs = 21;
    // The scheduler's inventory: built once, then kept current cluster by cluster.
    let t_table = median(5, || fleet.iter().cloned().collect::<ClusterTable>());
    let mut table: ClusterTable = fleet.iter().cloned().collect();
    let t_upsert = {
        let mut relabelled = fleet[CLUSTERS / 2].clone();
        let t = Instant::now();
        for i in 0..1000 {
            relabelled.labels.insert("team".into(), format!("team-{}", i % 40));
            table.upsert(relabelled.clone());
        }
        t.elapsed() / 1000
    };
    table.upsert(fleet[CLUSTERS / 2].clone());

    println!("plugin host benchmark: {CLUSTERS} clusters, 12 labels and 6 claims each; median of {runs} runs");
    println!("pooling allocator: {}\n", host.pooling());

    // Filter.
    let filter = host.load("label-filter", World::PlacementFilter, &read("label_filter")).expect("filter");
    let fp = host.prepare(&filter, FILTER_CONFIG).expect("config");
    let reqs = native::config();
    let (native_reasons, native_verdicts) = native::filter(&reqs, &fleet);
    let batch = fp.batch_of(&table, None);
    assert_eq!(batch, fp.batch(&fleet), "the kept table projects like a fresh batch");
    let wasm_out = host.placement_filter(&fp, &owner, &batch, &limits).expect("filter");
    for (i, v) in native_verdicts.iter().enumerate() {
        let native_reason = (*v > 0).then(|| native_reasons[*v as usize - 1].as_str());
        assert_eq!(native_reason, wasm_out.reason(i), "native and Wasm filters disagree on cluster {i}");
    }
    let kept = native_verdicts.iter().filter(|v| **v == 0).count();
    let t_native_filter = median(runs, || native::filter(&reqs, &fleet));
    let t_batch_filter = median(runs, || fp.batch_of(&table, None));
    let t_batch_oneoff = median(5, || fp.batch(&fleet));
    let t_wasm_filter = median(runs, || host.placement_filter(&fp, &owner, &batch, &limits).expect("filter"));
    let t_wasm_filter_full =
        median(runs, || host.placement_filter(&fp, &owner, &fp.batch_of(&table, None), &limits).expect("filter"));

    // Scorer.
    let scorer = host.load("capacity-scorer", World::PlacementScorer, &read("capacity_scorer")).expect("scorer");
    let sp = host.prepare(&scorer, "{}").expect("config");
    let sbatch = sp.batch_of(&table, None);
    let wasm_scores = host.placement_scorer(&sp, &owner, &sbatch, &limits).expect("score");
    assert_eq!(native::score(&fleet), wasm_scores.scores, "native and Wasm scorers disagree");
    let t_native_score = median(runs, || native::score(&fleet));
    let t_wasm_score = median(runs, || host.placement_scorer(&sp, &owner, &sbatch, &limits).expect("score"));
    let t_wasm_score_full =
        median(runs, || host.placement_scorer(&sp, &owner, &sp.batch_of(&table, None), &limits).expect("score"));

    // For comparison: the same filter over row-shaped clusters (a record per cluster, labels
    // as key-value lists), which is what the columns replace.
    let rows: Vec<Cluster> = fleet.iter().map(|c| fp.project(c)).collect();
    let row_strings: usize = rows.iter().map(|c| 1 + 2 * (c.labels.len() + c.claims.len())).sum();

    // Instantiation: a call with no clusters is a fresh store, an instantiation, a call with
    // nothing to do, and the drop.
    let empty = fp.batch(&[]);
    let t_instantiate = median(1001, || host.placement_filter(&fp, &owner, &empty, &limits).expect("empty"));

    // First load (compile) against a cached load of a large component: a Python plugin
    // (CPython inside) when componentize-py is installed, else the largest Rust one. A fresh
    // host each time, so memory does not serve it.
    let work = tempfile::tempdir().expect("dir");
    let (big_name, big_world, big) = match python_component(work.path()) {
        Some(bytes) => ("py-region (Python)".to_string(), World::PlacementFilter, bytes),
        None => {
            println!("componentize-py not found: the large component is the largest Rust plugin");
            let (n, w) = [
                ("image_transform", World::ManifestTransform),
                ("required_labels", World::PolicyCheck),
                ("canary_waves", World::RolloutStrategy),
            ]
            .into_iter()
            .max_by_key(|(n, _)| read(n).len())
            .expect("a component");
            (n.to_string(), w, read(n))
        }
    };
    let first_dir = tempfile::tempdir().expect("dir");
    let t_first = {
        let h = PluginHost::new(HostConfig::new(first_dir.path())).expect("host");
        let t = Instant::now();
        let p = h.load("big", big_world, &big).expect("load");
        let d = t.elapsed();
        assert_eq!(h.cache_stats().compiled, 1, "compiled once");
        drop(p);
        d
    };
    let (t_cached, t_big_call) = {
        let mut loads = Vec::new();
        let mut calls = Vec::new();
        for _ in 0..5 {
            let h = PluginHost::new(HostConfig::new(first_dir.path())).expect("host");
            let t = Instant::now();
            let p = h.load("big", big_world, &big).expect("load");
            loads.push(t.elapsed());
            assert_eq!(h.cache_stats().compiled, 0, "from the disk cache");
            if big_world == World::PlacementFilter {
                let prepared = h.prepare(&p, r#"{"regions": ["eu-west-1"]}"#).expect("config");
                let b = prepared.batch(&fleet[..1000]);
                let t = Instant::now();
                h.placement_filter(&prepared, &owner, &b, &limits).expect("filter");
                calls.push(t.elapsed());
            }
        }
        loads.sort();
        calls.sort();
        (loads[2], calls.get(2).copied())
    };

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("| what | time | ratio |");
    println!("|---|---:|---:|");
    println!("| filter, native Rust over the host's clusters | {} | 1.00x |", ms(t_native_filter));
    println!(
        "| filter, Wasm plugin, projecting the batch from the fleet table each call | {} | {:.2}x |",
        ms(t_wasm_filter_full),
        ratio(t_wasm_filter_full, t_native_filter)
    );
    println!(
        "| filter, Wasm plugin, batch built once and reused | {} | {:.2}x |",
        ms(t_wasm_filter),
        ratio(t_wasm_filter, t_native_filter)
    );
    println!("| (projecting the batch alone: 3 label and 1 claim columns) | {} | |", ms(t_batch_filter));
    println!("| (a one-off batch from the clusters' maps, no table) | {} | |", ms(t_batch_oneoff));
    println!("| fleet table: built from {CLUSTERS} clusters (once) | {} | |", ms(t_table));
    println!("| fleet table: one cluster relabelled (upsert) | {} | |", us(t_upsert));
    println!("| scorer, native Rust | {} | 1.00x |", ms(t_native_score));
    println!(
        "| scorer, Wasm plugin, projecting the batch each call | {} | {:.2}x |",
        ms(t_wasm_score_full),
        ratio(t_wasm_score_full, t_native_score)
    );
    println!(
        "| scorer, Wasm plugin, batch reused | {} | {:.2}x |",
        ms(t_wasm_score),
        ratio(t_wasm_score, t_native_score)
    );
    println!("| one invocation with no clusters (store + instantiate + call) | {} | |", us(t_instantiate));
    println!("| first load of {big_name} ({} KiB): compile + validate | {} | |", big.len() / 1024, ms(t_first));
    println!(
        "| cached load of the same (disk cache, new engine) | {} | {:.1}x faster |",
        ms(t_cached),
        ratio(t_first, t_cached)
    );
    if let Some(t) = t_big_call {
        println!("| {big_name}: one filter call over 1,000 clusters (instantiation included) | {} | |", ms(t));
    }
    println!("\nfilter kept {kept} of {CLUSTERS}; target: Wasm within 3x of native for a full batch");
    println!(
        "as rows (a record per cluster) the same batch would lower {row_strings} strings, one guest allocation each"
    );
}
