//! Placement scheduling, side by side in one run:
//!
//! (a) 10,000 clusters with realistic labels, claims and status, one Placement with label,
//!     claim and CEL predicates, a Wasm filter, a Wasm scorer and the built-in prioritizers,
//!     choosing 100: time per full schedule, against the same Placement with the plugins
//!     replaced by native built-ins (the filter by a label requirement, the scorer by the
//!     ResourceAllocatable prioritizers), and against label and claim predicates alone;
//! (b) 1,000 Placements over 1,000 clusters: the time to schedule them all, and the time to
//!     reschedule the placements one cluster's label change affects.
//!
//! `cargo bench -p flotilla-placement --bench schedule` (builds the plugins with
//! `plugins/build.sh` first). Prints a table; asserts nothing about time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flotilla_placement::{
    FailurePolicy, Inventory, PluginResolver, ResolvedPlugin, Schedule, ScheduleOptions, schedule, schedule_with,
};
use flotilla_plugin_host::{HostConfig, PluginHost, World};
use jiff::Timestamp;
use serde_json::{Value, json};

fn artifacts() -> PathBuf {
    flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}")).to_path_buf()
}

struct Resolver {
    host: PluginHost,
    plugins: Mutex<HashMap<String, ResolvedPlugin>>,
}

impl Resolver {
    fn new() -> Resolver {
        let dir = std::env::temp_dir().join("flotilla-placement-bench");
        std::fs::create_dir_all(&dir).expect("cache dir");
        let host = PluginHost::new(HostConfig::new(dir)).expect("host");
        let art = artifacts();
        let mut plugins = HashMap::new();
        for (name, file, world) in [
            ("label-filter", "label_filter", World::PlacementFilter),
            ("capacity-scorer", "capacity_scorer", World::PlacementScorer),
        ] {
            let bytes = std::fs::read(art.join(format!("{file}.wasm"))).expect("wasm");
            let plugin = host.load(name, world, &bytes).expect("load");
            plugins
                .insert(name.to_string(), ResolvedPlugin { plugin, failure_policy: FailurePolicy::Fail, limits: None });
        }
        Resolver { host, plugins: Mutex::new(plugins) }
    }
}

impl PluginResolver for Resolver {
    fn host(&self) -> &PluginHost {
        &self.host
    }

    fn resolve(&self, name: &str) -> Result<ResolvedPlugin, String> {
        self.plugins.lock().expect("lock").get(name).cloned().ok_or_else(|| format!("{name} not found"))
    }
}

/// A deterministic pseudo-random source.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const REGIONS: [&str; 6] = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "ap-northeast-1"];
const ENVS: [&str; 4] = ["prod", "staging", "dev", "qa"];
const PLATFORMS: [&str; 6] = ["AWS", "GCP", "Azure", "IBM", "VSphere", "Other"];
const SETS: u64 = 20;

/// ManagedClusters as agents report them: 12 labels, 6 claims, capacity and allocatable,
/// conditions and version (the fleet of `plugin-host`'s benchmark, as whole objects).
fn fleet(n: usize, seed: u64) -> Vec<Value> {
    let mut r = Rng(seed);
    (0..n)
        .map(|i| {
            let name = format!("cluster-{i:05}");
            let region = r.pick(&REGIONS);
            let mut labels = json!({
                "name": name,
                "cloud": r.pick(&PLATFORMS),
                "region": region,
                "topology.kubernetes.io/zone": format!("{region}{}", r.pick(&["a", "b", "c"])),
                "env": r.pick(&ENVS),
                "team": format!("team-{}", r.next() % 40),
                "tier": r.pick(&["gold", "silver", "bronze"]),
                "cost-center": format!("cc-{}", 1000 + r.next() % 200),
                "cluster.open-cluster-management.io/clusterset": format!("set-{}", r.next() % SETS),
                "feature.open-cluster-management.io/addon-work-manager": "available",
                "vendor": r.pick(&["OpenShift", "EKS", "GKE", "AKS"]),
                "openshiftVersion": format!("4.{}.{}", 12 + r.next() % 5, r.next() % 30),
            });
            if r.next().is_multiple_of(50) {
                labels["decommissioned"] = json!("true");
            }
            let claims = json!([
                {"name": "id.k8s.io", "value": format!("{:016x}", r.next())},
                {"name": "kubeversion.open-cluster-management.io", "value": format!("v1.{}.{}", 28 + r.next() % 5, r.next() % 10)},
                {"name": "platform.open-cluster-management.io", "value": r.pick(&PLATFORMS)},
                {"name": "product.open-cluster-management.io", "value": r.pick(&["OpenShift", "EKS", "GKE", "AKS"])},
                {"name": "region.open-cluster-management.io", "value": region},
                {"name": "gpu.flotilla.dev", "value": r.pick(&["none", "a100", "h100"])},
            ]);
            let cpu = 16 + r.next() % 240;
            let mem = 64 + r.next() % 960;
            let mut cluster = json!({
                "apiVersion": "cluster.open-cluster-management.io/v1",
                "kind": "ManagedCluster",
                "metadata": {"name": name, "labels": labels, "resourceVersion": "1",
                             "creationTimestamp": "2025-01-01T00:00:00Z", "uid": format!("uid-{i}")},
                "spec": {"hubAcceptsClient": true, "leaseDurationSeconds": 60},
                "status": {
                    "clusterClaims": claims,
                    "capacity": {"cpu": cpu.to_string(), "memory": format!("{mem}Gi")},
                    "allocatable": {"cpu": format!("{}m", cpu * 1000 - r.next() % 8000), "memory": format!("{}Gi", mem - 8)},
                    "version": {"kubernetes": format!("v1.{}.{}", 28 + r.next() % 5, r.next() % 10)},
                    "conditions": [
                        {"type": "HubAcceptedManagedCluster", "status": "True", "reason": "HubClusterAdminAccepted"},
                        {"type": "ManagedClusterJoined", "status": "True", "reason": "ManagedClusterJoined"},
                        {"type": "ManagedClusterConditionAvailable", "status": "True", "reason": "ManagedClusterAvailable"},
                    ],
                },
            });
            if r.next().is_multiple_of(100) {
                cluster["spec"]["taints"] = json!([{"key": "cluster.open-cluster-management.io/unreachable",
                    "effect": "NoSelect", "timeAdded": "2025-06-01T00:00:00Z"}]);
            }
            cluster
        })
        .collect()
}

/// Every set of the fleet (exclusive label), plus `global`.
fn sets(inv: &mut Inventory) {
    for s in 0..SETS {
        inv.upsert_cluster_set(&json!({"metadata": {"name": format!("set-{s}")},
            "spec": {"clusterSelector": {"selectorType": "ExclusiveClusterSetLabel"}}}));
    }
    inv.upsert_cluster_set(&json!({"metadata": {"name": "global"},
        "spec": {"clusterSelector": {"selectorType": "LabelSelector", "labelSelector": {}}}}));
}

fn placement(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "cluster.open-cluster-management.io/v1beta1", "kind": "Placement",
           "metadata": {"namespace": ns, "name": name}, "spec": spec})
}

const WANTED_REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "eu-central-1"];

/// (a)'s Placement: native label/claim/CEL predicates, a Wasm filter and a Wasm scorer.
fn with_plugins() -> Value {
    json!({
        "numberOfClusters": 100,
        "predicates": [{"requiredClusterSelector": {
            "labelSelector": {"matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "decommissioned", "operator": "DoesNotExist"}]},
            "claimSelector": {"matchExpressions": [
                {"key": "platform.open-cluster-management.io", "operator": "NotIn", "values": ["Other"]}]},
            "celSelector": {"celExpressions": ["managedCluster.metadata.labels[\"tier\"] != \"bronze\""]},
            "plugin": {"name": "label-filter", "configuration": {"labels": [
                {"key": "region", "operator": "In", "values": WANTED_REGIONS}]}}
        }}],
        "prioritizerPolicy": {"mode": "Additive", "configurations": [
            {"scoreCoordinate": {"builtIn": "ResourceAllocatableCPU"}, "weight": 1},
            {"scoreCoordinate": {"type": "Plugin", "plugin": {"name": "capacity-scorer",
                "configuration": {"resources": [{"name": "cpu", "weight": 2}, {"name": "memory", "weight": 1}]}}}, "weight": 2}
        ]}
    })
}

/// The same choice made natively: the filter as a label requirement, the scorer as the
/// ResourceAllocatable prioritizers.
fn native(cel: bool) -> Value {
    let mut selector = json!({
        "labelSelector": {"matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "staging"]},
            {"key": "decommissioned", "operator": "DoesNotExist"},
            {"key": "region", "operator": "In", "values": WANTED_REGIONS}]},
        "claimSelector": {"matchExpressions": [
            {"key": "platform.open-cluster-management.io", "operator": "NotIn", "values": ["Other"]}]},
    });
    if cel {
        selector["celSelector"] = json!({"celExpressions": ["managedCluster.metadata.labels[\"tier\"] != \"bronze\""]});
    }
    json!({
        "numberOfClusters": 100,
        "predicates": [{"requiredClusterSelector": selector}],
        "prioritizerPolicy": {"mode": "Additive", "configurations": [
            {"scoreCoordinate": {"builtIn": "ResourceAllocatableCPU"}, "weight": 5},
            {"scoreCoordinate": {"builtIn": "ResourceAllocatableMemory"}, "weight": 2}
        ]}
    })
}

struct Timing {
    median: Duration,
    min: Duration,
}

fn time(iterations: usize, mut f: impl FnMut()) -> Timing {
    for _ in 0..2 {
        f();
    }
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    Timing { median: samples[samples.len() / 2], min: samples[0] }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn selected(s: &Schedule) -> Vec<String> {
    s.groups.iter().flat_map(|g| g.decisions.iter().map(|d| d.cluster_name.clone())).collect()
}

fn main() {
    let resolver = Resolver::new();
    let now: Timestamp = "2025-06-01T12:00:00Z".parse().expect("now");

    // (a) One Placement over 10,000 clusters.
    let clusters = fleet(10_000, 0x9e37_79b9_7f4a_7c15);
    let t = Instant::now();
    let mut inv = Inventory::new();
    sets(&mut inv);
    inv.upsert_binding(&json!({"metadata": {"namespace": "bench", "name": "global"}}));
    for c in &clusters {
        inv.upsert_cluster(c);
    }
    let build = t.elapsed();
    // Other placements' decisions, for Balance: 50 placements of 100 clusters each.
    let mut r = Rng(7);
    for p in 0..50 {
        let picks = (0..100).map(|_| format!("cluster-{:05}", r.next() % 10_000)).collect();
        inv.set_decisions("others", &format!("p{p}"), picks);
    }
    let wasm = placement("bench", "web", with_plugins());
    let t = Instant::now();
    let first = schedule(&inv, &wasm, &resolver, now);
    let cold = t.elapsed();
    assert_eq!(first.misconfigured.status, "False", "{:?}", first.misconfigured);
    assert_eq!(first.number_of_selected_clusters, 100, "{:?}", first.satisfied);
    inv.set_decisions("bench", "web", selected(&first));
    let nat = placement("bench", "web", native(true));
    let nat_no_cel = placement("bench", "web", native(false));
    let candidates = first.explanation["clusterSets"]["candidates"].as_u64().unwrap_or(0);
    let feasible = first.explanation["aggregatedScores"].as_object().map_or(0, |m| m.len());
    let iterations = 30;
    let t_wasm = time(iterations, || {
        std::hint::black_box(schedule(&inv, &wasm, &resolver, now));
    });
    let quiet = ScheduleOptions { explain: false };
    let t_wasm_quiet = time(iterations, || {
        std::hint::black_box(schedule_with(&inv, &wasm, &resolver, now, quiet));
    });
    let t_native_quiet = time(iterations, || {
        std::hint::black_box(schedule_with(&inv, &nat, &resolver, now, quiet));
    });
    let t_native = time(iterations, || {
        std::hint::black_box(schedule(&inv, &nat, &resolver, now));
    });
    let t_plain = time(iterations, || {
        std::hint::black_box(schedule(&inv, &nat_no_cel, &resolver, now));
    });
    let native_sel = selected(&schedule(&inv, &nat, &resolver, now));
    let overlap = native_sel.iter().filter(|c| selected(&first).contains(c)).count();

    println!();
    println!(
        "(a) one Placement over {} clusters ({candidates} candidates, {feasible} feasible), choosing 100",
        clusters.len()
    );
    println!("    inventory build (10,000 upserts)                 {:>10}", ms(build));
    println!("    first schedule (CEL values built, plugins warm)  {:>10}", ms(cold));
    println!("    {:<48} {:>10} {:>10} {:>8}", "schedule", "median", "min", "ratio");
    let base = t_native.median.as_secs_f64();
    for (label, tm) in [
        ("label+claim+CEL, Wasm filter + Wasm scorer", &t_wasm),
        ("label+claim+CEL, native built-ins", &t_native),
        ("label+claim only, native built-ins", &t_plain),
        ("Wasm filter + scorer, no explanation", &t_wasm_quiet),
        ("native built-ins, no explanation", &t_native_quiet),
    ] {
        println!("    {:<48} {:>10} {:>10} {:>7.2}x", label, ms(tm.median), ms(tm.min), tm.median.as_secs_f64() / base);
    }
    println!(
        "    (the Wasm and native Placements agree on {overlap} of 100 clusters; their scorers weigh differently)"
    );

    // (b) 1,000 Placements over 1,000 clusters.
    let clusters = fleet(1_000, 42);
    let mut inv = Inventory::new();
    sets(&mut inv);
    // 50 namespaces, each bound to 4 of the 20 sets.
    let namespaces = 50u64;
    for n in 0..namespaces {
        for k in [0, 1, 5, 11] {
            inv.upsert_binding(
                &json!({"metadata": {"namespace": format!("ns-{n}"), "name": format!("set-{}", (n + k) % SETS)}}),
            );
        }
    }
    for c in &clusters {
        inv.upsert_cluster(c);
    }
    let mut r = Rng(99);
    let placements: Vec<Value> = (0..1000u64)
        .map(|i| {
            let n = i % namespaces;
            let mut spec = json!({"numberOfClusters": 5 + r.next() % 50,
                "predicates": [{"requiredClusterSelector": {"labelSelector": {"matchExpressions": [
                    {"key": "env", "operator": "In", "values": [r.pick(&ENVS), r.pick(&ENVS)]}]}}}]});
            match i % 10 {
                0 => spec["predicates"][0]["requiredClusterSelector"]["plugin"] = json!({"name": "label-filter",
                    "configuration": {"labels": [{"key": "region", "operator": "In", "values": [r.pick(&REGIONS)]}]}}),
                1 => spec["prioritizerPolicy"] = json!({"configurations": [{"scoreCoordinate": {"type": "Plugin",
                    "plugin": {"name": "capacity-scorer", "configuration": {}}}, "weight": 1}]}),
                2 => spec["predicates"][0]["requiredClusterSelector"]["celSelector"] =
                    json!({"celExpressions": [format!("managedCluster.metadata.labels[\"tier\"] != \"{}\"", r.pick(&["gold", "silver", "bronze"]))]}),
                3 => spec["prioritizerPolicy"] = json!({"configurations": [{"scoreCoordinate": {"builtIn": "ResourceAllocatableMemory"}, "weight": 2}]}),
                _ => {}
            }
            if i % 2 == 0 {
                spec["clusterSets"] = json!([format!("set-{}", (n + [0, 1, 5, 11][(r.next() % 4) as usize]) % SETS)]);
            }
            placement(&format!("ns-{n}"), &format!("p-{i}"), spec)
        })
        .collect();
    let key = |p: &Value| {
        (
            p["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
            p["metadata"]["name"].as_str().unwrap_or_default().to_string(),
        )
    };
    let t = Instant::now();
    let mut selected_total = 0;
    for p in &placements {
        let s = schedule_with(&inv, p, &resolver, now, quiet);
        selected_total += s.number_of_selected_clusters;
        let (ns, name) = key(p);
        inv.set_decisions(&ns, &name, selected(&s));
    }
    let all = t.elapsed();
    // A second pass: every placement again, decisions now in place (Steady, Balance).
    let t = Instant::now();
    for p in &placements {
        std::hint::black_box(schedule_with(&inv, p, &resolver, now, quiet));
    }
    let again = t.elapsed();
    // One cluster changes its labels: reschedule only the placements it affects.
    let mut changed = clusters[17].clone();
    changed["metadata"]["labels"]["env"] =
        json!(if changed["metadata"]["labels"]["env"] == "prod" { "dev" } else { "prod" });
    changed["metadata"]["resourceVersion"] = json!("2");
    let t = Instant::now();
    let affected = inv.upsert_cluster(&changed);
    let mut rescheduled = 0;
    for p in &placements {
        if affected.affects(p) {
            let s = schedule_with(&inv, p, &resolver, now, quiet);
            let (ns, name) = key(p);
            inv.set_decisions(&ns, &name, selected(&s));
            rescheduled += 1;
        }
    }
    let incremental = t.elapsed();

    println!();
    println!(
        "(b) 1,000 Placements over 1,000 clusters (10% with a Wasm filter, 10% a Wasm scorer, 10% CEL; as the controller schedules: no explanation)"
    );
    println!("    schedule all, first time                         {:>10}   ({selected_total} decisions)", ms(all));
    println!("    schedule all again (decisions in place)          {:>10}", ms(again));
    println!("    per placement                                    {:>10}", ms(all / 1000));
    println!(
        "    one cluster relabelled: {rescheduled:>3} affected placements rescheduled in {} ({:.1}% of scheduling all)",
        ms(incremental),
        100.0 * incremental.as_secs_f64() / again.as_secs_f64()
    );
    println!();
}
