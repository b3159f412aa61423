//! Flotilla's WebAssembly plugin host, shared by the hub and the agent.
//!
//! Plugins are WebAssembly components implementing one of the worlds in `wit/` (placement
//! filter and scorer, policy check, rollout strategy, manifest transform). The host:
//!
//! - keeps one wasmtime [`Engine`](wasmtime::Engine) per process, with the pooling
//!   allocator, Cranelift, epoch interruption and deterministic floating point;
//! - compiles each component once per sha256 into an on-disk cache keyed by the digest and
//!   the engine's compatibility hash, and keeps one `InstancePre` per loaded plugin;
//! - validates on load (a push): the bytes are a component, it exports the declared world at
//!   a compatible version, imports nothing outside that world's grant, instantiates, and
//!   `describe()` answers ([`PluginHost::load`]);
//! - runs every call in a fresh `Store` with a deadline, memory, table and instance limits,
//!   a bounded wasm stack and a bounded result, and maps every failure to a typed
//!   [`PluginError`] whose message goes into the owning object's status;
//! - gives no ambient authority: no filesystem, sockets, HTTP or environment, and no clock
//!   and no randomness in the deterministic worlds;
//! - counts calls, latency, traps and timeouts per plugin ([`PluginHost::render_prometheus`]).
//!
//! [`Fixture`]s describe one invocation as JSON with the result it must give, rendered by
//! [`render`]: what `flotilla plugin run`, `test` and `bench` use.
//!
//! ```no_run
//! # use flotilla_plugin_host::*;
//! # fn main() -> Result<(), PluginError> {
//! let host = PluginHost::new(HostConfig::new("/var/lib/flotilla/plugin-cache"))?;
//! let bytes = std::fs::read("label_filter.wasm").map_err(|e| PluginError::Host(e.to_string()))?;
//! let plugin = host.load("label-filter", World::PlacementFilter, &bytes)?;
//! let prepared = host.prepare(&plugin, r#"{"labels": [{"key": "region", "operator": "Exists"}]}"#)?;
//! // The fleet by column, kept current with `upsert`/`remove` as ManagedClusters change.
//! let objects: Vec<serde_json::Value> = vec![];
//! let fleet: ClusterTable = objects.iter().map(ClusterInfo::from_managed_cluster).collect();
//! let clusters = prepared.batch_of(&fleet, None); // only what the plugin reads, by column
//! let owner = OwnerRef { kind: "Placement".into(), namespace: "default".into(), name: "web".into() };
//! let result = host.placement_filter(&prepared, &owner, &clusters, &host.limits(&[]))?;
//! let kept = (0..fleet.len()).filter(|&i| result.keeps(i)).count();
//! # Ok(()) }
//! ```

pub mod bindings;
mod cluster;
mod error;
mod fixture;
mod host;
mod limits;
mod metrics;
mod output;
mod state;
mod world;

pub use bindings::exports::flotilla::placement_filter::filter::FilterResult;
pub use bindings::exports::flotilla::placement_scorer::scorer::ScoreResult;
pub use bindings::exports::flotilla::policy_check::check::{CheckResult, Compliance, ObjectRef, Violation};
pub use bindings::exports::flotilla::rollout_strategy::strategy::{RolloutCluster, RolloutDecision, RolloutStatus};
pub use bindings::flotilla::types::types::{
    Cluster, ClusterBatch, Description, KindRef, OwnerRef, Reads, ResourceColumn, ResourceQuantity, StringColumn,
    Timestamp,
};
pub use cluster::{ClusterInfo, ClusterTable, Projection, Quantity, parse_quantity_milli};
pub use error::PluginError;
pub use fixture::{
    Call, Expect, Fixture, FixtureInput, FixtureSpoke, RolloutClusterInput, check_outcome, json_diff, render,
    run_fixture,
};
pub use host::{CacheStats, ComponentInterface, LoadSource, Plugin, PluginHost, PluginInfo, Prepared};
pub use limits::{HostConfig, Limits, LimitsOverride};
pub use metrics::MetricsSnapshot;
pub use output::TransformOutput;
pub use state::SpokeReader;
pub use world::{ItemName, Version, WIT_VERSION, World};

/// The content address of a component: `sha256:` and the hex digest of its bytes, as in
/// `WasmPlugin.spec.digest` and the hub's `/blobs/` paths.
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The WIT sources of every package, as `(path under wit/, contents)`, for tools that write
/// them into a new plugin project (`flotilla plugin new`).
pub const WIT_SOURCES: &[(&str, &str)] = &[
    ("types/types.wit", include_str!("../../../wit/types/types.wit")),
    ("placement-filter/placement-filter.wit", include_str!("../../../wit/placement-filter/placement-filter.wit")),
    ("placement-scorer/placement-scorer.wit", include_str!("../../../wit/placement-scorer/placement-scorer.wit")),
    ("policy-check/policy-check.wit", include_str!("../../../wit/policy-check/policy-check.wit")),
    ("rollout-strategy/rollout-strategy.wit", include_str!("../../../wit/rollout-strategy/rollout-strategy.wit")),
    (
        "manifest-transform/manifest-transform.wit",
        include_str!("../../../wit/manifest-transform/manifest-transform.wit"),
    ),
];

/// The components of this checkout's `plugins/` (the built-in and hostile test plugins),
/// built for wasm32-wasip2 by `plugins/build.sh` once per process (incremental: instant when
/// nothing changed), as the directory of their `.wasm` files. For what runs from the source
/// tree: the demo, tests and benchmarks. The error carries the script's output.
pub fn source_tree_plugins() -> Result<&'static std::path::Path, String> {
    static DIR: std::sync::OnceLock<Result<std::path::PathBuf, String>> = std::sync::OnceLock::new();
    let built = DIR.get_or_init(|| {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/build.sh");
        if !script.exists() {
            return Err(format!("{} is not here: the plugins are built from the source tree", script.display()));
        }
        let out = std::process::Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed:\n{}{}",
                script.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let dir = stdout.lines().last().map(str::trim).unwrap_or_default();
        if dir.is_empty() {
            return Err(format!("{} printed no artifact directory", script.display()));
        }
        Ok(std::path::PathBuf::from(dir))
    });
    built.as_deref().map_err(Clone::clone)
}
