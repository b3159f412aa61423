//! Shared by the integration tests: builds the plugins under `plugins/` (once per test
//! process; cargo makes it a no-op when nothing changed and serializes concurrent builds),
//! and creates hosts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flotilla_plugin_host::*;

/// The directory with the built `.wasm` components.
pub fn artifacts() -> &'static Path {
    flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}"))
}

/// The bytes of a built plugin, by crate name (`label-filter`, `hostile-trap`).
pub fn wasm(name: &str) -> Vec<u8> {
    let path = artifacts().join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A cache directory shared by the tests of every process, so each component compiles once
/// per run; tests about the cache itself use their own.
pub fn shared_cache() -> PathBuf {
    let dir = std::env::temp_dir().join("flotilla-plugin-host-tests");
    std::fs::create_dir_all(&dir).expect("cache dir");
    dir
}

pub fn host() -> PluginHost {
    host_in(shared_cache())
}

pub fn host_in(dir: impl Into<PathBuf>) -> PluginHost {
    let mut config = HostConfig::new(dir);
    config.max_concurrent_instances = 4;
    PluginHost::new(config).expect("plugin host")
}

pub fn owner() -> OwnerRef {
    OwnerRef { kind: "Placement".into(), namespace: "default".into(), name: "web".into() }
}

/// Small limits for hostile plugins, so tests stay fast.
pub fn tight() -> Limits {
    Limits { timeout: Duration::from_millis(200), memory_bytes: 32 << 20, max_output_bytes: 1 << 20, ..Limits::DEFAULT }
}

pub fn cluster(name: &str, labels: &[(&str, &str)], claims: &[(&str, &str)]) -> ClusterInfo {
    ClusterInfo {
        name: name.into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        claims: claims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

/// Loads a plugin and prepares it with a configuration.
pub fn prepared(host: &PluginHost, name: &str, world: World, config: &str) -> Prepared {
    let plugin = host.load(name, world, &wasm(name)).unwrap_or_else(|e| panic!("load {name}: {e}"));
    host.prepare(&plugin, config).unwrap_or_else(|e| panic!("prepare {name}: {e}"))
}

pub fn load(host: &PluginHost, name: &str, world: World) -> Arc<Plugin> {
    host.load(name, world, &wasm(name)).unwrap_or_else(|e| panic!("load {name}: {e}"))
}

/// The built-in label filter over a small fleet: the good plugin whose calls must keep
/// working after every hostile one.
pub fn good_filter_works(host: &PluginHost) {
    let p = prepared(
        host,
        "label-filter",
        World::PlacementFilter,
        r#"{"labels": [{"key": "region", "operator": "In", "values": ["eu"]}]}"#,
    );
    let fleet = [cluster("a", &[("region", "eu")], &[]), cluster("b", &[("region", "us")], &[])];
    let r =
        host.placement_filter(&p, &owner(), &p.batch(&fleet), &Limits::DEFAULT).expect("the good plugin still works");
    assert_eq!((r.keeps(0), r.keeps(1)), (true, false));
}
