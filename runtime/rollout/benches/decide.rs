//! Rollout decisions, side by side in one run, over 1,000 clusters in 10 decision groups:
//!
//! (a) one decision cycle of a rollout in mid-flight (four groups done, the fifth half
//!     progressing and half soaking, five to go): the built-in `ProgressivePerGroup` and
//!     `Progressive` (maxConcurrency 100) against the Wasm `canary-waves` plugin configured
//!     to the same gates as `ProgressivePerGroup` (a 10% canary, then waves of 10%: the
//!     strategy tests show it decides the same), through the plugin host; and, where they
//!     were built (`flotilla plugin build` in `plugins/examples/canary-waves/<language>`),
//!     the simpler example canary-waves (no soak, no deadline) in C, JavaScript and Python,
//!     for the cost of the same call in each language;
//! (b) a whole rollout on a simulated clock: each applied cluster becomes `Succeeded` 2 to
//!     10 s after it was applied (a fixed delay per name), and the controller decides again at
//!     every status change or when the decision asks (`recheck_after`). Prints the simulated
//!     time to complete, the number of cycles and the CPU time the decisions took (not for the
//!     examples, whose strategy differs).
//!
//! `cargo bench -p flotilla-rollout --bench decide` (builds the plugins with
//! `plugins/build.sh` first). Prints a table; asserts nothing about time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_plugin_host::{HostConfig, Limits, LimitsOverride, OwnerRef, Plugin, PluginHost};
use flotilla_rollout::engine::{PluginStrategy, parse_strategy};
use flotilla_rollout::strategy::{StrategyPlugins, build_strategy};
use flotilla_rollout::types::{Millis, RolloutCluster, RolloutStatus, Strategy};
use serde_json::{Value, json};

const CLUSTERS: usize = 1_000;
const GROUPS: usize = 10;
/// 2026-12-05T12:00:00Z.
const START: Millis = 1_796_472_000_000;

/// The plugins of this checkout: the built-in ones built by `plugins/build.sh` (in `dir`),
/// and the example canary-waves in other languages where they were built.
struct BuiltPlugins {
    host: Arc<PluginHost>,
    dir: PathBuf,
}

/// The example canary-waves components by plugin name, in `plugins/examples/canary-waves`.
fn example(name: &str) -> Option<PathBuf> {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plugins/examples/canary-waves");
    match name {
        "canary-waves-c" => Some(base.join("c/build/canary-waves.wasm")),
        "canary-waves-js" => Some(base.join("js/dist/canary-waves.wasm")),
        "canary-waves-python" => Some(base.join("python/canary_waves.wasm")),
        _ => None,
    }
}

impl StrategyPlugins for BuiltPlugins {
    fn host(&self) -> Arc<PluginHost> {
        self.host.clone()
    }

    fn resolve(&self, reference: &PluginStrategy) -> Result<(Arc<Plugin>, Limits), String> {
        let path = example(&reference.name)
            .unwrap_or_else(|| self.dir.join(format!("{}.wasm", reference.name.replace('-', "_"))));
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let plugin = self.host.load_detected(&reference.name, &bytes).map_err(|e| e.to_string())?;
        let overrides: Vec<&LimitsOverride> = reference.limits.iter().collect();
        Ok((plugin, self.host.limits(&overrides)))
    }
}

fn name(i: usize) -> String {
    format!("cluster-{i:04}")
}

/// 1,000 clusters, 100 per group, in name order; group 0 is the canary.
fn fleet() -> Vec<RolloutCluster> {
    (0..CLUSTERS)
        .map(|i| {
            let group = i / (CLUSTERS / GROUPS);
            RolloutCluster {
                name: name(i),
                group_index: group as u32,
                group_name: if group == 0 { "canary".into() } else { format!("wave-{group}") },
                status: RolloutStatus::ToApply,
                last_transition_time: None,
            }
        })
        .collect()
}

/// Groups 0-3 done, group 4 half soaking and half progressing, groups 5-9 to apply.
fn mid_flight(now: Millis) -> Vec<RolloutCluster> {
    let mut clusters = fleet();
    for (i, c) in clusters.iter_mut().enumerate() {
        (c.status, c.last_transition_time) = match i / 100 {
            0..=3 => (RolloutStatus::Succeeded, Some(now - 600_000)),
            4 if i % 2 == 0 => (RolloutStatus::Succeeded, Some(now - 10_000)),
            4 => (RolloutStatus::Progressing, Some(now - 5_000)),
            _ => (RolloutStatus::ToApply, None),
        };
    }
    clusters
}

/// One strategy compared: its label, its `rolloutStrategy`, the decisions timed in (a), and
/// whether (b) simulates a whole rollout with it.
struct Contender {
    label: &'static str,
    spec: Value,
    iterations: usize,
    simulate: bool,
}

/// The strategies compared: the built-ins, and canary-waves with the same gates as
/// ProgressivePerGroup in each language that was built.
fn contenders() -> Vec<Contender> {
    let waves: Vec<String> = (2..=10).map(|k| format!("{}%", k * 10)).collect();
    let canary_waves = |name: &str| {
        json!({"type": "Plugin", "plugin": {"name": name, "configuration": {
            "canary": "10%", "waves": waves, "minSuccessTime": "30s", "progressDeadline": "10m", "maxFailures": "5%"}}})
    };
    let mut all = vec![
        Contender {
            label: "built-in ProgressivePerGroup",
            spec: json!({"type": "ProgressivePerGroup", "progressivePerGroup": {
                "minSuccessTime": "30s", "progressDeadline": "10m", "maxFailures": "5%"}}),
            iterations: 2_000,
            simulate: true,
        },
        Contender {
            label: "built-in Progressive (maxConcurrency 100)",
            spec: json!({"type": "Progressive", "progressive": {"maxConcurrency": 100,
                "minSuccessTime": "30s", "progressDeadline": "10m", "maxFailures": "5%"}}),
            iterations: 2_000,
            simulate: true,
        },
        Contender {
            label: "Wasm canary-waves, Rust (built-in plugin)",
            spec: canary_waves("canary-waves"),
            iterations: 300,
            simulate: true,
        },
    ];
    // The examples are a simpler canary-waves (integer sizes, no soak and no deadline): the
    // same call over the same clusters, for its cost in each language; not simulated.
    let example_waves: Vec<u32> = (2..=10).map(|k| k * 10).collect();
    for (label, name, iterations) in [
        ("Wasm canary-waves example, C", "canary-waves-c", 300),
        ("Wasm canary-waves example, JavaScript", "canary-waves-js", 20),
        ("Wasm canary-waves example, Python", "canary-waves-python", 20),
    ] {
        match example(name) {
            Some(path) if path.exists() => all.push(Contender {
                label,
                spec: json!({"type": "Plugin", "plugin": {"name": name, "configuration": {
                    "canary": 100, "waves": example_waves, "maxFailures": 50}}}),
                iterations,
                simulate: false,
            }),
            _ => println!("{label}: not built (flotilla plugin build), left out"),
        }
    }
    all
}

struct Timing {
    median: Duration,
    min: Duration,
}

fn time(iterations: usize, mut f: impl FnMut()) -> Timing {
    for _ in 0..3 {
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

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// How long a cluster takes to become ready once applied: 2 to 10 s, fixed per name (FNV-1a).
fn readiness_ms(name: &str) -> i64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    2_000 + (hash % 8_001) as i64
}

struct Simulated {
    outcome: &'static str,
    wall: Duration,
    cycles: usize,
    cpu: Duration,
}

/// Runs a rollout to its end on a simulated clock (see the module's comment).
fn simulate(strategy: &dyn Strategy) -> Simulated {
    let mut clusters = fleet();
    let index: HashMap<String, usize> = clusters.iter().enumerate().map(|(i, c)| (c.name.clone(), i)).collect();
    let mut ready_at: Vec<Option<Millis>> = vec![None; clusters.len()];
    let mut now = START;
    let mut cycles = 0;
    let mut cpu = Duration::ZERO;
    let outcome = loop {
        cycles += 1;
        let t = Instant::now();
        let d = strategy.decide(now, &clusters).expect("decide");
        cpu += t.elapsed();
        if d.stop {
            break "stopped";
        }
        if d.proceed.is_empty() && clusters.iter().all(|c| c.status == RolloutStatus::Succeeded) {
            break "complete";
        }
        for n in &d.proceed {
            let i = index[n];
            if clusters[i].status == RolloutStatus::ToApply {
                clusters[i].status = RolloutStatus::Progressing;
                clusters[i].last_transition_time = Some(now);
                ready_at[i] = Some(now + readiness_ms(n));
            }
        }
        // The next cycle: the next cluster to become ready (a watch event), or the recheck.
        let next_ready = ready_at.iter().flatten().copied().filter(|&at| at > now).min();
        let recheck = d.recheck_after.map(|r| now + r.as_millis() as i64);
        let Some(next) = [next_ready, recheck].into_iter().flatten().min() else {
            break "stuck";
        };
        now = next;
        for (c, at) in clusters.iter_mut().zip(&mut ready_at) {
            if let Some(t) = at.filter(|&t| t <= now) {
                (c.status, c.last_transition_time) = (RolloutStatus::Succeeded, Some(t));
                *at = None;
            }
        }
    };
    Simulated { outcome, wall: Duration::from_millis((now - START) as u64), cycles, cpu }
}

fn main() {
    let dir = flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}")).to_path_buf();
    let cache = std::env::temp_dir().join("flotilla-rollout-bench");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let plugins = BuiltPlugins { host: Arc::new(PluginHost::new(HostConfig::new(cache)).expect("host")), dir };
    let owner = OwnerRef { kind: "ManifestWorkReplicaSet".into(), namespace: "bench".into(), name: "web".into() };
    let field = "spec.placementRefs[0].rolloutStrategy";
    let t = Instant::now();
    let built: Vec<(Contender, Box<dyn Strategy>)> = contenders()
        .into_iter()
        .map(|c| {
            let spec = parse_strategy(Some(&c.spec), field).expect("strategy");
            let strategy = build_strategy(&spec, field, &owner, &plugins, []).expect("build");
            (c, strategy)
        })
        .collect();
    println!(
        "loaded and prepared the plugins in {:.1} s (compiled once, then cached on disk)",
        t.elapsed().as_secs_f64()
    );

    // (a) One decision cycle in mid-flight.
    let now = START + 3_600_000;
    let clusters = mid_flight(now);
    println!();
    println!("(a) one decision cycle, {CLUSTERS} clusters in {GROUPS} groups, mid-flight (group 5 of 10)");
    println!("    {:<44} {:>12} {:>12} {:>8}  proceed", "strategy", "median", "min", "ratio");
    let mut base = None;
    for (c, strategy) in &built {
        let t = time(c.iterations, || {
            std::hint::black_box(strategy.decide(now, &clusters).expect("decide"));
        });
        let d = strategy.decide(now, &clusters).expect("decide");
        let base = *base.get_or_insert(t.median.as_secs_f64());
        println!(
            "    {:<44} {:>12} {:>12} {:>7.1}x  {} ({})",
            c.label,
            us(t.median),
            us(t.min),
            t.median.as_secs_f64() / base,
            d.proceed.len(),
            d.message.unwrap_or_default()
        );
    }

    // (b) Whole rollouts on a simulated clock.
    println!();
    println!("(b) a whole rollout of {CLUSTERS} clusters, each ready 2-10 s after it is applied, 30 s soak");
    println!(
        "    {:<44} {:>9} {:>12} {:>8} {:>12} {:>12}",
        "strategy", "outcome", "simulated", "cycles", "CPU", "per cycle"
    );
    for (c, strategy) in built.iter().filter(|(c, _)| c.simulate) {
        let s = simulate(strategy.as_ref());
        println!(
            "    {:<44} {:>9} {:>10.1} s {:>8} {:>9.1} ms {:>12}",
            c.label,
            s.outcome,
            s.wall.as_secs_f64(),
            s.cycles,
            s.cpu.as_secs_f64() * 1e3,
            us(s.cpu / s.cycles.max(1) as u32)
        );
    }
    println!();
}
