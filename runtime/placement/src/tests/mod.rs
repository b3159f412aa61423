//! Schedules of whole Placements against small inventories: OCM's semantics and edge cases
//! (`semantics.rs`) and Wasm filters and scorers under their failure policies (`plugins.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod plugins;
mod semantics;

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use flotilla_plugin_host::{HostConfig, LimitsOverride, PluginHost, World};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{FailurePolicy, Inventory, PluginResolver, ResolvedPlugin, Schedule, schedule};

pub(crate) const NS: &str = "ns";

pub(crate) fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().expect("timestamp")
}

/// A ManagedCluster with labels and claims.
pub(crate) fn mc(name: &str, labels: Value, claims: &[(&str, &str)]) -> Value {
    let claims: Vec<Value> = claims.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    json!({
        "apiVersion": "cluster.open-cluster-management.io/v1",
        "kind": "ManagedCluster",
        "metadata": {"name": name, "labels": labels},
        "spec": {"hubAcceptsClient": true},
        "status": {"clusterClaims": claims},
    })
}

/// An inventory with the `global` set (every cluster) bound to `NS`, and these clusters.
pub(crate) fn inventory(clusters: &[Value]) -> Inventory {
    let mut inv = Inventory::new();
    inv.upsert_cluster_set(&json!({"metadata": {"name": "global"},
        "spec": {"clusterSelector": {"selectorType": "LabelSelector", "labelSelector": {}}}}));
    inv.upsert_binding(&json!({"metadata": {"namespace": NS, "name": "global"}, "spec": {"clusterSet": "global"}}));
    for c in clusters {
        inv.upsert_cluster(c);
    }
    inv
}

pub(crate) fn placement(spec: Value) -> Value {
    json!({"apiVersion": "cluster.open-cluster-management.io/v1beta1", "kind": "Placement",
           "metadata": {"namespace": NS, "name": "p"}, "spec": spec})
}

/// The selected clusters, group by group.
pub(crate) fn selected(s: &Schedule) -> Vec<String> {
    s.groups.iter().flat_map(|g| g.decisions.iter().map(|d| d.cluster_name.clone())).collect()
}

/// The stage and reason that removed `cluster`, from the explanation.
pub(crate) fn eliminated(s: &Schedule, cluster: &str) -> (String, String) {
    let e = &s.explanation["eliminated"][cluster];
    (e["stage"].as_str().unwrap_or_default().to_string(), e["reason"].as_str().unwrap_or_default().to_string())
}

pub(crate) fn run(inv: &Inventory, spec: Value) -> Schedule {
    schedule(inv, &placement(spec), resolver(), now())
}

/// Builds the plugins once per test process and prints where they are.
fn artifacts() -> &'static Path {
    flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}"))
}

/// Resolves names to the built plugins: `WasmPlugin` name -> (artifact, world, default
/// failure policy, default limits). Loads lazily, so tests without plugins build nothing.
pub(crate) struct TestResolver {
    host: PluginHost,
    loaded: std::sync::Mutex<HashMap<String, ResolvedPlugin>>,
}

fn catalogue(name: &str) -> Option<(&'static str, World, FailurePolicy, Option<LimitsOverride>)> {
    let fast = Some(LimitsOverride { timeout_millis: Some(200), ..Default::default() });
    Some(match name {
        "label-filter" | "cache-probe" => ("label_filter", World::PlacementFilter, FailurePolicy::Fail, None),
        "capacity-scorer" => ("capacity_scorer", World::PlacementScorer, FailurePolicy::Fail, None),
        "endless-loop" => ("hostile_endless_loop", World::PlacementFilter, FailurePolicy::Fail, fast),
        "endless-loop-ignore" => ("hostile_endless_loop", World::PlacementFilter, FailurePolicy::Ignore, fast),
        "trap" => ("hostile_trap", World::PlacementFilter, FailurePolicy::Fail, None),
        _ => return None,
    })
}

impl PluginResolver for TestResolver {
    fn host(&self) -> &PluginHost {
        &self.host
    }

    fn resolve(&self, name: &str) -> Result<ResolvedPlugin, String> {
        if let Some(r) = self.loaded.lock().expect("lock").get(name) {
            return Ok(r.clone());
        }
        let (artifact, world, failure_policy, limits) =
            catalogue(name).ok_or_else(|| format!("WasmPlugin {name} not found"))?;
        let bytes = std::fs::read(artifacts().join(format!("{artifact}.wasm"))).map_err(|e| e.to_string())?;
        let plugin = self.host.load(name, world, &bytes).map_err(|e| e.to_string())?;
        let r = ResolvedPlugin { plugin, failure_policy, limits };
        self.loaded.lock().expect("lock").insert(name.to_string(), r.clone());
        Ok(r)
    }
}

pub(crate) fn resolver() -> &'static TestResolver {
    static R: OnceLock<TestResolver> = OnceLock::new();
    R.get_or_init(|| {
        let dir = std::env::temp_dir().join("flotilla-placement-tests");
        std::fs::create_dir_all(&dir).expect("cache dir");
        let mut config = HostConfig::new(dir);
        config.max_concurrent_instances = 8;
        TestResolver { host: PluginHost::new(config).expect("plugin host"), loaded: Default::default() }
    })
}

#[test]
fn the_inventory_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Inventory>();
    shared::<crate::Schedule>();
    shared::<ResolvedPlugin>();
}
