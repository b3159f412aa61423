//! The plugin host: one wasmtime `Engine` per process, the compilation cache, validation on
//! load, and one fresh `Store` per invocation under limits.

use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Instance, InstancePre, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, WasmBacktrace,
};

use crate::bindings::exports::flotilla::manifest_transform::transform;
use crate::bindings::exports::flotilla::placement_filter::filter::{self, FilterResult};
use crate::bindings::exports::flotilla::placement_scorer::scorer::{self, ScoreResult};
use crate::bindings::exports::flotilla::policy_check::check::{self, CheckResult};
use crate::bindings::exports::flotilla::rollout_strategy::strategy::{self, RolloutCluster, RolloutDecision};
use crate::bindings::flotilla::types::types::{
    Cluster, ClusterBatch, Description, KindRef, OwnerRef, Reads, Timestamp,
};
use crate::cluster::{ClusterInfo, ClusterTable, Projection};
use crate::error::PluginError;
use crate::limits::{HostConfig, Limits};
use crate::metrics::{MetricsKey, MetricsSnapshot, PluginMetrics, Registry};
use crate::output::{self, OutputSize, TransformOutput};
use crate::state::{self, HostState, SpokeAccess, SpokeReader};
use crate::world::{ItemName, Version, World};

/// Where a loaded component came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LoadSource {
    /// Compiled by Cranelift now (and written to the cache).
    Compiled,
    /// Read from the on-disk compilation cache.
    DiskCache,
    /// Already loaded in this process.
    Memory,
}

/// What validation found in a component: what `flotilla plugin inspect` prints and the hub
/// keeps in `WasmPlugin.status.describe`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginInfo {
    pub world: World,
    /// The version of the world's package the component exports.
    pub world_version: String,
    /// `sha256:` and the hex digest of the component's bytes.
    pub digest: String,
    pub size_bytes: u64,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    #[serde(with = "describe_json")]
    pub describe: Description,
    pub loaded_from: LoadSource,
}

/// `describe()`'s answer in an object's status: camelCase, as Kubernetes fields.
mod describe_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::bindings::flotilla::types::types::{Description, KindRef, Reads};

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct D {
        name: String,
        version: String,
        summary: String,
        reads: R,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config_schema: Option<String>,
    }

    #[derive(Serialize, Deserialize)]
    struct R {
        labels: Vec<String>,
        claims: Vec<String>,
        resources: Vec<String>,
        fields: Vec<String>,
        kinds: Vec<K>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct K {
        api_version: String,
        kind: String,
    }

    pub fn serialize<S: Serializer>(d: &Description, s: S) -> Result<S::Ok, S::Error> {
        let r = &d.reads;
        D {
            name: d.name.clone(),
            version: d.version.clone(),
            summary: d.summary.clone(),
            reads: R {
                labels: r.labels.clone(),
                claims: r.claims.clone(),
                resources: r.resources.clone(),
                fields: r.fields.clone(),
                kinds: r.kinds.iter().map(|k| K { api_version: k.api_version.clone(), kind: k.kind.clone() }).collect(),
            },
            config_schema: d.config_schema.clone(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, De: Deserializer<'de>>(de: De) -> Result<Description, De::Error> {
        let d = D::deserialize(de)?;
        Ok(Description {
            name: d.name,
            version: d.version,
            summary: d.summary,
            reads: Reads {
                labels: d.reads.labels,
                claims: d.reads.claims,
                resources: d.reads.resources,
                fields: d.reads.fields,
                kinds: d
                    .reads
                    .kinds
                    .into_iter()
                    .map(|k| KindRef { api_version: k.api_version, kind: k.kind })
                    .collect(),
            },
            config_schema: d.config_schema,
        })
    }
}

/// A component's imports and exports as they are, before validation (see
/// [`PluginHost::interface`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentInterface {
    /// `sha256:` and the hex digest of the component's bytes.
    pub digest: String,
    pub size_bytes: u64,
    /// The Flotilla world the component exports, if exactly one.
    pub world: Option<World>,
    /// The version of that world's package, as exported.
    pub world_version: Option<String>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Counters of the compilation cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Components compiled by Cranelift.
    pub compiled: u64,
    /// Components read from the on-disk cache.
    pub disk_hits: u64,
    /// Loads served by a component already in memory.
    pub memory_hits: u64,
}

/// A validated plugin, ready to call. Cheap to share (`Arc`); every call instantiates it in a
/// fresh store.
pub struct Plugin {
    name: Arc<str>,
    info: PluginInfo,
    pre: InstancePre<HostState>,
    exports: Exports,
    metrics: Arc<PluginMetrics>,
}

impl Plugin {
    /// The name it was loaded under (the `WasmPlugin`'s name).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn world(&self) -> World {
        self.info.world
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("name", &self.name).field("world", &self.info.world).finish()
    }
}

/// A plugin with a configuration it accepted, and what it reads under it. Callers keep one
/// per (plugin, configuration) and use it for every call.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub plugin: Arc<Plugin>,
    pub config: String,
    pub reads: Reads,
    projection: Projection,
}

impl Prepared {
    /// The cluster as this plugin reads it under this configuration.
    pub fn project(&self, cluster: &ClusterInfo) -> Cluster {
        self.projection.apply(cluster)
    }

    /// Clusters as this plugin reads them under this configuration, by column, for the
    /// worlds that take a whole fleet.
    pub fn batch<'a>(&self, clusters: impl IntoIterator<Item = &'a ClusterInfo>) -> ClusterBatch {
        self.projection.batch(clusters)
    }

    /// Clusters of a [`ClusterTable`] the caller keeps current (all of them when `rows` is
    /// `None`) as this plugin reads them: the fast path for repeated calls over a fleet.
    pub fn batch_of(&self, table: &ClusterTable, rows: Option<&[usize]>) -> ClusterBatch {
        self.projection.batch_of(table, rows)
    }

    /// Narrows the kinds a policy check may read to those also in `allowed` (an operator's
    /// allow-list): reads of any other kind fail inside the plugin.
    pub fn restrict_kinds(mut self, allowed: &[KindRef]) -> Prepared {
        self.reads.kinds.retain(|k| allowed.contains(k));
        self
    }
}

/// The typed exports of each world, resolved once per plugin.
enum Exports {
    Filter(filter::GuestIndices),
    Scorer(scorer::GuestIndices),
    Check(check::GuestIndices),
    Strategy(strategy::GuestIndices),
    Transform(transform::GuestIndices),
}

impl Exports {
    fn new(world: World, pre: &InstancePre<HostState>) -> wasmtime::Result<Exports> {
        Ok(match world {
            World::PlacementFilter => Exports::Filter(filter::GuestIndices::new(pre)?),
            World::PlacementScorer => Exports::Scorer(scorer::GuestIndices::new(pre)?),
            World::PolicyCheck => Exports::Check(check::GuestIndices::new(pre)?),
            World::RolloutStrategy => Exports::Strategy(strategy::GuestIndices::new(pre)?),
            World::ManifestTransform => Exports::Transform(transform::GuestIndices::new(pre)?),
        })
    }
}

/// The plugin host of a process (hub or agent). Create one and share it.
///
/// Calls are synchronous and CPU-bound: make them from a blocking context
/// (`tokio::task::spawn_blocking` or a plain thread), never directly from an async task,
/// where WASI's blocking stream operations would panic (the host catches that too and
/// reports it as a host error). Wasm runs on the caller's stack: the thread needs room for
/// `max_wasm_stack` (1 MiB by default) plus the host's own frames, which the 2 MiB default of
/// Rust and tokio threads gives.
pub struct PluginHost {
    engine: Engine,
    config: HostConfig,
    linkers: HashMap<World, Linker<HostState>>,
    cache_dir: PathBuf,
    components: Mutex<HashMap<String, Component>>,
    pres: Mutex<HashMap<(String, World), InstancePre<HostState>>>,
    compile_lock: Mutex<()>,
    slots: Slots,
    ticker: Ticker,
    registry: Registry,
    compiled: AtomicU64,
    disk_hits: AtomicU64,
    memory_hits: AtomicU64,
    pooling: bool,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost").field("cache_dir", &self.cache_dir).field("pooling", &self.pooling).finish()
    }
}

fn chain(e: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        // wasmtime repeats a cause inside its context at times; keep each once.
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

fn engine_config(config: &HostConfig, pooling: bool) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.max_wasm_stack(config.max_wasm_stack);
    // Determinism: the same NaN bits on every CPU, no relaxed SIMD (results vary by CPU); the
    // threads proposal is compiled out (no `threads` feature). Component-model async (WASIp3) is off: no world uses it, and it makes every
    // store and call heavier.
    c.cranelift_nan_canonicalization(true);
    c.wasm_relaxed_simd(false);
    c.concurrency_support(false);
    c.parallel_compilation(true);
    // A short backtrace for trap messages.
    c.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(16));
    if pooling {
        let n = config.max_concurrent_instances.max(1);
        let mut p = PoolingAllocationConfig::default();
        // Interpreter components (componentize-py, -js) hold dozens of core instances and a
        // few memories and tables each; Rust ones three or four instances and one memory.
        p.total_component_instances(n)
            .total_core_instances(n * 32)
            .total_memories(n * 4)
            .total_tables(n * 8)
            .max_core_instances_per_component(config.maxima.instances)
            .max_memories_per_component(16)
            .max_tables_per_component(32)
            .max_core_instance_size(16 << 20)
            .max_component_instance_size(16 << 20)
            .max_memory_size(config.maxima.memory_bytes as usize)
            .table_elements(config.maxima.table_elements as usize)
            // Reset small plugins' memory by memset rather than madvise: faster for the
            // first pages that every call touches (the shadow stack, the heap's start).
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            // Where the kernel has it (Linux 6.7+), find the pages the call dirtied with the
            // PAGEMAP_SCAN ioctl and reset only those, wherever they are in the memory, up to
            // the resident budget above: a call over a fleet dirties its heap past the first
            // MiB, and without the scan every such page is dropped and faults in again on the
            // next call (about half the time of a 10,000-cluster scorer call). Elsewhere
            // this falls back to the plain memset-then-madvise reset.
            .pagemap_scan(Enabled::Auto);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    c
}

/// Hashes the engine's compatibility hash with sha256, stable across processes (unlike the
/// standard library's hasher, whose algorithm may change between Rust releases).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl PluginHost {
    /// Creates the engine (with the pooling allocator, falling back to on-demand allocation if
    /// the pool cannot reserve its memory), the linkers of every world, the cache directory,
    /// and the epoch ticker.
    pub fn new(config: HostConfig) -> Result<PluginHost, PluginError> {
        let (engine, pooling) = match Engine::new(&engine_config(&config, config.pooling)) {
            Ok(e) => (e, config.pooling),
            Err(e) if config.pooling => {
                tracing::warn!(error = %chain(&e), "pooling allocator unavailable; plugins use on-demand allocation");
                let e = Engine::new(&engine_config(&config, false)).map_err(|e| PluginError::Host(chain(&e)))?;
                (e, false)
            }
            Err(e) => return Err(PluginError::Host(chain(&e))),
        };
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = hex::encode(&hasher.0.finalize()[..12]);
        let cache_dir = config.cache_dir.join(compat);
        create_private_dir(&cache_dir).map_err(|e| {
            PluginError::Host(format!("cannot create the cache directory {}: {e}", cache_dir.display()))
        })?;
        let mut linkers = HashMap::new();
        for world in World::ALL {
            linkers.insert(world, state::linker(&engine, world).map_err(|e| PluginError::Host(chain(&e)))?);
        }
        let ticker = Ticker::start(engine.clone(), config.epoch_tick)?;
        Ok(PluginHost {
            slots: Slots::new(config.max_concurrent_instances.max(1)),
            engine,
            config,
            linkers,
            cache_dir,
            components: Mutex::new(HashMap::new()),
            pres: Mutex::new(HashMap::new()),
            compile_lock: Mutex::new(()),
            ticker,
            registry: Registry::default(),
            compiled: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            memory_hits: AtomicU64::new(0),
            pooling,
        })
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// The directory of this engine's compiled components.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
        }
    }

    /// The limits of a call: the host's defaults, then each override in order (the
    /// `WasmPlugin`'s, then the reference's), within the hub-wide maxima.
    pub fn limits(&self, overrides: &[&crate::limits::LimitsOverride]) -> Limits {
        overrides.iter().fold(self.config.defaults, |l, o| l.with(o, &self.config.maxima))
    }

    /// Every plugin's counters in the Prometheus text format, for `/metrics`.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let s = self.cache_stats();
        self.registry.render(&mut out, s.compiled, s.disk_hits);
        out
    }

    /// What a component imports and exports, and which of Flotilla's worlds it exports at
    /// which version, without validating anything else (`flotilla plugin inspect` shows this
    /// even for a component that [`load`](Self::load) refuses). Compiles the component, or
    /// takes it from the cache, as `load` does; a `load` that follows costs nothing more.
    pub fn interface(&self, bytes: &[u8]) -> Result<ComponentInterface, PluginError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let (component, _) = self.component(&digest, bytes)?;
        let ty = component.component_type();
        let imports: Vec<String> = ty.imports(&self.engine).map(|(n, _)| n.to_string()).collect();
        let exports: Vec<String> = ty.exports(&self.engine).map(|(n, _)| n.to_string()).collect();
        let world = world_of_exports(&exports).ok();
        let world_version = world.and_then(|w| {
            exports.iter().map(|e| ItemName::parse(e)).find(|n| n.world() == Some(w)).and_then(|n| n.version)
        });
        Ok(ComponentInterface {
            digest: format!("sha256:{digest}"),
            size_bytes: bytes.len() as u64,
            world,
            world_version,
            imports,
            exports,
        })
    }

    /// Validates a component and makes it callable: it parses as a component, exports
    /// `world` at a compatible version, imports nothing outside the world's grant,
    /// instantiates, and `describe()` answers. This is what a push does; the error says
    /// exactly what is wrong.
    pub fn load(&self, name: &str, world: World, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let (component, loaded_from) = self.component(&digest, bytes)?;
        let ty = component.component_type();
        let imports: Vec<String> = ty.imports(&self.engine).map(|(n, _)| n.to_string()).collect();
        let exports: Vec<String> = ty.exports(&self.engine).map(|(n, _)| n.to_string()).collect();
        let world_version = check_exports(world, &exports)?;
        check_imports(world, &imports)?;
        let linker = self.linkers.get(&world).ok_or_else(|| PluginError::Host(format!("no linker for {world}")))?;
        // One InstancePre per digest and world: imports are resolved and type-checked once,
        // however many names the same component is pushed under.
        let cached = lock(&self.pres).get(&(digest.clone(), world)).cloned();
        let pre = match cached {
            Some(pre) => pre,
            None => {
                let pre = linker.instantiate_pre(&component).map_err(|e| PluginError::Instantiate(chain(&e)))?;
                lock(&self.pres).insert((digest.clone(), world), pre.clone());
                pre
            }
        };
        let exports_idx = Exports::new(world, &pre).map_err(|e| {
            PluginError::WrongWorld(format!(
                "the component's {} does not match the host's {}: {}",
                world.export_base(),
                world.export_name(),
                chain(&e)
            ))
        })?;
        let metrics = self.registry.get(MetricsKey {
            name: name.to_string(),
            world,
            digest: format!("sha256:{}", &digest[..12]),
        });
        let placeholder = Description {
            name: String::new(),
            version: String::new(),
            summary: String::new(),
            reads: empty_reads(),
            config_schema: None,
        };
        let mut plugin = Plugin {
            name: Arc::from(name),
            info: PluginInfo {
                world,
                world_version: world_version.to_string(),
                digest: format!("sha256:{digest}"),
                size_bytes: bytes.len() as u64,
                imports,
                exports,
                describe: placeholder,
                loaded_from,
            },
            pre,
            exports: exports_idx,
            metrics,
        };
        let description = self.invoke(&plugin, world, &self.config.defaults, None, |exports, store, instance| {
            let d = match exports {
                Exports::Filter(i) => i.load(&mut *store, instance)?.call_describe(&mut *store)?,
                Exports::Scorer(i) => i.load(&mut *store, instance)?.call_describe(&mut *store)?,
                Exports::Check(i) => i.load(&mut *store, instance)?.call_describe(&mut *store)?,
                Exports::Strategy(i) => i.load(&mut *store, instance)?.call_describe(&mut *store)?,
                Exports::Transform(i) => i.load(&mut *store, instance)?.call_describe(&mut *store)?,
            };
            Ok(d)
        })?;
        output::check_description(&description)?;
        plugin.info.describe = description;
        tracing::info!(plugin = name, %world, digest = %plugin.info.digest, ?loaded_from, "plugin loaded");
        Ok(Arc::new(plugin))
    }

    /// The one Flotilla world a component exports, read from its exports (compiling it into
    /// the cache, as [`load`](Self::load) would): what `flotilla plugin push` uses when the user
    /// does not name the world. Refuses what is not a component (`Corrupt`) and a component
    /// that exports none of the worlds, or more than one (`WrongWorld`).
    pub fn detect_world(&self, bytes: &[u8]) -> Result<World, PluginError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let (component, _) = self.component(&digest, bytes)?;
        let exports: Vec<String> =
            component.component_type().exports(&self.engine).map(|(n, _)| n.to_string()).collect();
        world_of_exports(&exports)
    }

    /// [`load`](Self::load) as the world the component exports ([`detect_world`](Self::detect_world)).
    pub fn load_detected(&self, name: &str, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        let world = self.detect_world(bytes)?;
        self.load(name, world, bytes)
    }

    /// The compiled component of `bytes`: from memory, from the on-disk cache, or compiled
    /// now and cached.
    fn component(&self, digest: &str, bytes: &[u8]) -> Result<(Component, LoadSource), PluginError> {
        if let Some(c) = lock(&self.components).get(digest) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok((c.clone(), LoadSource::Memory));
        }
        // One compilation at a time: the same digest pushed twice at once compiles once, and
        // Cranelift already uses every core for one component.
        let _compiling = lock(&self.compile_lock);
        if let Some(c) = lock(&self.components).get(digest) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok((c.clone(), LoadSource::Memory));
        }
        let path = self.cache_dir.join(format!("{digest}.cwasm"));
        let mut source = LoadSource::DiskCache;
        if !path.exists() {
            check_header(bytes)?;
            let started = Instant::now();
            let compiled = self.engine.precompile_component(bytes).map_err(|e| PluginError::Corrupt(chain(&e)))?;
            write_atomically(&path, &compiled)
                .map_err(|e| PluginError::Host(format!("cannot write {}: {e}", path.display())))?;
            self.compiled.fetch_add(1, Ordering::Relaxed);
            source = LoadSource::Compiled;
            tracing::info!(digest, elapsed_ms = started.elapsed().as_millis() as u64, "compiled plugin component");
        }
        // SAFETY: `deserialize_file` runs native code from the file, so it must only read
        // what this host wrote: the file is in our private (0700) cache directory, named by
        // the digest of the bytes it was compiled from and in a directory keyed by the
        // engine's compatibility hash, and written atomically (temporary file, then rename).
        // wasmtime itself refuses files from another version or configuration.
        let loaded = unsafe { Component::deserialize_file(&self.engine, &path) };
        let component = match loaded {
            Ok(c) => c,
            Err(e) if source == LoadSource::DiskCache => {
                // A damaged or foreign cache entry: compile again rather than fail the push.
                tracing::warn!(path = %path.display(), error = %chain(&e), "discarding unusable cache entry");
                let _ = fs::remove_file(&path);
                check_header(bytes)?;
                let compiled = self.engine.precompile_component(bytes).map_err(|e| PluginError::Corrupt(chain(&e)))?;
                write_atomically(&path, &compiled)
                    .map_err(|e| PluginError::Host(format!("cannot write {}: {e}", path.display())))?;
                self.compiled.fetch_add(1, Ordering::Relaxed);
                source = LoadSource::Compiled;
                // SAFETY: as above; this file was written by this call.
                unsafe { Component::deserialize_file(&self.engine, &path) }.map_err(|e| PluginError::Host(chain(&e)))?
            }
            Err(e) => return Err(PluginError::Host(chain(&e))),
        };
        if source == LoadSource::DiskCache {
            self.disk_hits.fetch_add(1, Ordering::Relaxed);
        }
        lock(&self.components).insert(digest.to_string(), component.clone());
        Ok((component, source))
    }

    /// Forgets a component (`sha256:…` or the bare hex digest) kept in memory, for a
    /// `WasmPlugin` that was deleted or replaced. Plugins already loaded keep working; the
    /// on-disk cache entry stays, so loading it again compiles nothing.
    pub fn evict(&self, digest: &str) {
        let digest = digest.strip_prefix("sha256:").unwrap_or(digest);
        lock(&self.components).remove(digest);
        lock(&self.pres).retain(|(d, _), _| d != digest);
    }

    /// The plugin's `describe()`, as answered when it was loaded.
    pub fn describe<'a>(&self, plugin: &'a Plugin) -> &'a Description {
        &plugin.info.describe
    }

    /// One invocation that instantiates the plugin in a fresh store under `limits` and calls
    /// nothing: the fixed cost of every call, for benchmarks. It counts as a call in the
    /// plugin's metrics.
    pub fn probe_instantiation(&self, plugin: &Plugin, limits: &Limits) -> Result<(), PluginError> {
        self.invoke(plugin, plugin.info.world, limits, None, |_, _, _| Ok(()))
    }

    /// Checks a configuration with the plugin's `validate-config`, and returns it prepared
    /// with what the plugin reads under it. A refusal is `ConfigRejected` with the plugin's
    /// own message.
    pub fn prepare(&self, plugin: &Arc<Plugin>, config: &str) -> Result<Prepared, PluginError> {
        self.prepare_with(plugin, config, &self.config.defaults)
    }

    /// [`prepare`](Self::prepare) with explicit limits.
    pub fn prepare_with(&self, plugin: &Arc<Plugin>, config: &str, limits: &Limits) -> Result<Prepared, PluginError> {
        let world = plugin.info.world;
        let answer = self.invoke(plugin, world, limits, None, |exports, store, instance| {
            let r = match exports {
                Exports::Filter(i) => i.load(&mut *store, instance)?.call_validate_config(&mut *store, config)?,
                Exports::Scorer(i) => i.load(&mut *store, instance)?.call_validate_config(&mut *store, config)?,
                Exports::Check(i) => i.load(&mut *store, instance)?.call_validate_config(&mut *store, config)?,
                Exports::Strategy(i) => i.load(&mut *store, instance)?.call_validate_config(&mut *store, config)?,
                Exports::Transform(i) => i.load(&mut *store, instance)?.call_validate_config(&mut *store, config)?,
            };
            Ok(r)
        })?;
        let reads = answer.map_err(|m| PluginError::ConfigRejected(output::message(m)))?;
        Ok(Prepared { plugin: plugin.clone(), config: config.to_string(), projection: Projection::new(&reads), reads })
    }

    /// Runs a placement filter over one scheduling cycle's candidates.
    pub fn placement_filter(
        &self,
        p: &Prepared,
        owner: &OwnerRef,
        clusters: &ClusterBatch,
        limits: &Limits,
    ) -> Result<FilterResult, PluginError> {
        let r =
            self.invoke(&p.plugin, World::PlacementFilter, limits, None, |exports, store, instance| match exports {
                Exports::Filter(i) => {
                    i.load(&mut *store, instance)?.call_filter(&mut *store, &p.config, owner, clusters)
                }
                _ => unreachable_world(),
            })?;
        let r = r.map_err(|m| PluginError::Failed(output::message(m)))?;
        output::check_filter(&r, clusters.count as usize)?;
        Ok(r)
    }

    /// Runs a placement scorer over one scheduling cycle's candidates.
    pub fn placement_scorer(
        &self,
        p: &Prepared,
        owner: &OwnerRef,
        clusters: &ClusterBatch,
        limits: &Limits,
    ) -> Result<ScoreResult, PluginError> {
        let r =
            self.invoke(&p.plugin, World::PlacementScorer, limits, None, |exports, store, instance| match exports {
                Exports::Scorer(i) => {
                    i.load(&mut *store, instance)?.call_score(&mut *store, &p.config, owner, clusters)
                }
                _ => unreachable_world(),
            })?;
        let r = r.map_err(|m| PluginError::Failed(output::message(m)))?;
        output::check_scores(&r, clusters.count as usize)?;
        Ok(r)
    }

    /// Runs a policy check on the agent's cluster, reading spoke objects through `spoke`
    /// (limited to the kinds the configuration's reads declare).
    pub fn policy_check(
        &self,
        p: &Prepared,
        owner: &OwnerRef,
        cluster: &Cluster,
        spoke: Arc<dyn SpokeReader>,
        limits: &Limits,
    ) -> Result<CheckResult, PluginError> {
        self.policy_check_reporting(p, owner, cluster, spoke, limits).0
    }

    /// [`policy_check`](Self::policy_check), and the kinds the host refused to read for the
    /// plugin because it had not declared them (whether or not the plugin passed the error
    /// on), so that the caller can report them.
    pub fn policy_check_reporting(
        &self,
        p: &Prepared,
        owner: &OwnerRef,
        cluster: &Cluster,
        spoke: Arc<dyn SpokeReader>,
        limits: &Limits,
    ) -> (Result<CheckResult, PluginError>, Vec<KindRef>) {
        let refused = Arc::new(std::sync::Mutex::new(Vec::new()));
        let access = SpokeAccess {
            reader: spoke,
            kinds: p.reads.kinds.clone(),
            budget: limits.host_calls,
            refused: refused.clone(),
        };
        let result = self.run_policy_check(p, owner, cluster, access, limits);
        let refused = std::mem::take(&mut *refused.lock().unwrap_or_else(|e| e.into_inner()));
        (result, refused)
    }

    fn run_policy_check(
        &self,
        p: &Prepared,
        owner: &OwnerRef,
        cluster: &Cluster,
        access: SpokeAccess,
        limits: &Limits,
    ) -> Result<CheckResult, PluginError> {
        let r =
            self.invoke(
                &p.plugin,
                World::PolicyCheck,
                limits,
                Some(access),
                |exports, store, instance| match exports {
                    Exports::Check(i) => {
                        i.load(&mut *store, instance)?.call_check(&mut *store, &p.config, owner, cluster)
                    }
                    _ => unreachable_world(),
                },
            )?;
        let r = r.map_err(|m| PluginError::Failed(output::message(m)))?;
        output::check_policy(&r)?;
        Ok(r)
    }

    /// Runs one rollout decision. `now` is milliseconds since the Unix epoch.
    pub fn rollout_strategy(
        &self,
        p: &Prepared,
        owner: &OwnerRef,
        now: Timestamp,
        clusters: &[RolloutCluster],
        limits: &Limits,
    ) -> Result<RolloutDecision, PluginError> {
        let r =
            self.invoke(&p.plugin, World::RolloutStrategy, limits, None, |exports, store, instance| match exports {
                Exports::Strategy(i) => {
                    i.load(&mut *store, instance)?.call_decide(&mut *store, &p.config, owner, now, clusters)
                }
                _ => unreachable_world(),
            })?;
        let r = r.map_err(|m| PluginError::Failed(output::message(m)))?;
        output::check_rollout(&r, clusters)?;
        Ok(r)
    }

    /// Transforms a work's manifests (JSON objects) for each cluster: per cluster, its
    /// manifests or the plugin's reason it cannot have them.
    pub fn manifest_transform(
        &self,
        p: &Prepared,
        owner: &OwnerRef,
        manifests: &[String],
        clusters: &ClusterBatch,
        limits: &Limits,
    ) -> Result<TransformOutput, PluginError> {
        let r =
            self.invoke(&p.plugin, World::ManifestTransform, limits, None, |exports, store, instance| match exports {
                Exports::Transform(i) => {
                    let out = i.load(&mut *store, instance)?.call_transform(
                        &mut *store,
                        &p.config,
                        owner,
                        manifests,
                        clusters,
                    )?;
                    Ok(out.map(Raw))
                }
                _ => unreachable_world(),
            })?;
        let r = r.map_err(|m| PluginError::Failed(output::message(m)))?;
        output::check_transform(r.0, clusters.count as usize)
    }

    /// One invocation: a slot from the pool, a fresh store with the call's limits and
    /// deadline, instantiation, the call, and the mapping of every failure to its typed error.
    /// Panics in host code are caught: a plugin must never take the process down.
    fn invoke<R: OutputSize>(
        &self,
        plugin: &Plugin,
        world: World,
        limits: &Limits,
        spoke: Option<SpokeAccess>,
        call: impl FnOnce(&Exports, &mut Store<HostState>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if plugin.info.world != world {
            return Err(PluginError::WorldMismatch {
                plugin: plugin.name.to_string(),
                expected: world,
                actual: plugin.info.world,
            });
        }
        let limits = limits.clamp_to(&self.config.maxima);
        let _slot = self.slots.acquire();
        let _ticking = self.ticker.active();
        let started = Instant::now();
        let result =
            catch_unwind(AssertUnwindSafe(|| self.run(plugin, world, &limits, spoke, call))).unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(PluginError::Host(format!("host code panicked during the call: {what}")))
            });
        let elapsed = started.elapsed();
        plugin.metrics.record(elapsed, result.as_ref().map(|_| ()));
        match &result {
            Ok(_) => {
                tracing::debug!(plugin = %plugin.name, %world, elapsed_us = elapsed.as_micros() as u64, "plugin call")
            }
            Err(e) => {
                tracing::warn!(plugin = %plugin.name, %world, reason = e.reason(), error = %e, "plugin call failed")
            }
        }
        result
    }

    fn run<R: OutputSize>(
        &self,
        plugin: &Plugin,
        world: World,
        limits: &Limits,
        spoke: Option<SpokeAccess>,
        call: impl FnOnce(&Exports, &mut Store<HostState>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let state = HostState::new(world, plugin.name.clone(), limits, plugin.metrics.clone(), spoke);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Ticks past the current epoch: rounded up, plus one because the current tick may be
        // about to end, so a deadline never fires early.
        let tick = self.config.epoch_tick.as_nanos().max(1);
        store.set_epoch_deadline((limits.timeout.as_nanos().div_ceil(tick) + 1) as u64);
        store.epoch_deadline_trap();
        let instance = plugin.pre.instantiate(&mut store).map_err(|e| self.classify(e, &store, limits, true))?;
        let value =
            call(&plugin.exports, &mut store, &instance).map_err(|e| self.classify(e, &store, limits, false))?;
        output::check_size(&value, limits.max_output_bytes)?;
        Ok(value)
    }

    fn classify(
        &self,
        e: wasmtime::Error,
        store: &Store<HostState>,
        limits: &Limits,
        instantiating: bool,
    ) -> PluginError {
        let data = store.data();
        if let Some(hit) = data.limiter.hit {
            return PluginError::MemoryLimit { what: hit.what, limit: hit.limit, requested: hit.requested };
        }
        if let Some(trap) = e.downcast_ref::<Trap>() {
            match trap {
                Trap::Interrupt => return PluginError::Timeout { timeout_ms: limits.timeout.as_millis() as u64 },
                Trap::StackOverflow => {
                    return PluginError::StackOverflow { max_wasm_stack: self.config.max_wasm_stack };
                }
                _ => {}
            }
            let mut detail = Vec::new();
            // What the plugin printed: a Rust panic's "panicked at FILE:LINE:COL:" and its
            // message, without the thread name and the hint about RUST_BACKTRACE.
            let printed = data.output.text();
            let mut panic = None;
            let mut lines = Vec::new();
            for l in printed.lines().map(str::trim) {
                if l.starts_with("thread ")
                    && let Some((_, at)) = l.split_once(" panicked at ")
                {
                    panic = Some(at);
                } else if !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE") {
                    lines.push(l);
                }
            }
            match panic {
                Some(at) => detail.push(format!("panicked at {at} {}", lines.join(" ")).trim_end().to_string()),
                None if !lines.is_empty() => detail.push(format!("output: {}", lines.join(" "))),
                None => {}
            }
            // Function names survive only in components built with a name section.
            if let Some(bt) = e.downcast_ref::<WasmBacktrace>() {
                let frames: Vec<&str> = bt.frames().iter().filter_map(|f| f.func_name()).take(5).collect();
                if !frames.is_empty() {
                    detail.push(format!("in {}", frames.join(" < ")));
                }
            }
            let message = trap.to_string();
            return PluginError::Trap {
                message: message.strip_prefix("wasm trap: ").unwrap_or(&message).to_string(),
                detail: (!detail.is_empty()).then(|| output::message(detail.join("; "))),
            };
        }
        if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return PluginError::Trap { message: format!("the plugin exited with status {}", exit.0), detail: None };
        }
        if instantiating {
            return PluginError::Instantiate(chain(&e));
        }
        PluginError::Trap { message: chain(&e), detail: None }
    }
}

/// The transform's raw result, sized before it is parsed.
struct Raw(Vec<Result<Vec<String>, String>>);

impl OutputSize for Raw {
    fn output_size(&self) -> u64 {
        output::transform_size(&self.0)
    }
}

fn unreachable_world<T>() -> wasmtime::Result<T> {
    // `invoke` checked the world; a plugin's exports always match its world.
    Err(wasmtime::Error::msg("plugin exports do not match its world"))
}

fn empty_reads() -> Reads {
    Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![] }
}

/// Refuses what is plainly not a component before Cranelift sees it, with a message that
/// says what it is instead.
fn check_header(bytes: &[u8]) -> Result<(), PluginError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(PluginError::Corrupt("the file does not start with the WebAssembly magic number \\0asm".into()));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(PluginError::Corrupt(
            "this is a core WebAssembly module, not a component: build for wasm32-wasip2, or wrap the module with \
             `wasm-tools component new`"
                .into(),
        ));
    }
    Ok(())
}

/// The exported world's version, or why the exports do not implement `world`.
fn check_exports(world: World, exports: &[String]) -> Result<Version, PluginError> {
    let names: Vec<ItemName> = exports.iter().map(|e| ItemName::parse(e)).collect();
    let required = world.required_version();
    if let Some(mine) = names.iter().find(|n| n.world() == Some(world)) {
        let version: Version = mine
            .version
            .as_deref()
            .ok_or_else(|| PluginError::WrongWorld(format!("{} is exported without a version", mine.full)))?
            .parse()
            .map_err(|e| PluginError::WrongWorld(format!("{}: {e}", mine.full)))?;
        if !version.satisfies(required) {
            return Err(PluginError::WrongWorld(format!(
                "the component exports {} but this host requires version {} of {} (0.x minors must match; from 1.0 \
                 the same major and at least the minor)",
                mine.full,
                required,
                world.export_base()
            )));
        }
        return Ok(version);
    }
    let others: Vec<String> =
        names.iter().filter_map(|n| n.world().map(|w| format!("{} (the {w} world)", n.full))).collect();
    Err(PluginError::WrongWorld(if others.is_empty() {
        format!(
            "declared {world}, but the component does not export {} (its exports: {})",
            world.export_name(),
            if exports.is_empty() { "none".to_string() } else { exports.join(", ") }
        )
    } else {
        format!("declared {world}, but the component exports {}", others.join(", "))
    }))
}

/// The one world whose interface `exports` contains.
fn world_of_exports(exports: &[String]) -> Result<World, PluginError> {
    let mut worlds: Vec<World> = exports.iter().filter_map(|e| ItemName::parse(e).world()).collect();
    worlds.sort();
    worlds.dedup();
    match worlds.as_slice() {
        [world] => Ok(*world),
        [] => {
            let known: Vec<String> = World::ALL.iter().map(|w| w.export_name()).collect();
            Err(PluginError::WrongWorld(format!(
                "the component exports none of Flotilla's worlds (a plugin exports one of {}; its exports: {})",
                known.join(", "),
                if exports.is_empty() { "none".to_string() } else { exports.join(", ") }
            )))
        }
        several => {
            let names: Vec<&str> = several.iter().map(|w| w.name()).collect();
            Err(PluginError::WrongWorld(format!(
                "the component exports the interfaces of several worlds ({}); a plugin implements exactly one",
                names.join(", ")
            )))
        }
    }
}

/// Refuses any import outside the world's grant, naming them all.
fn check_imports(world: World, imports: &[String]) -> Result<(), PluginError> {
    let grants = world.grants();
    let forbidden: Vec<String> =
        imports.iter().filter(|i| !grants.contains(&ItemName::parse(i).base.as_str())).cloned().collect();
    if forbidden.is_empty() {
        Ok(())
    } else {
        Err(PluginError::ForbiddenImport {
            world,
            imports: forbidden,
            granted: grants.iter().map(|g| g.to_string()).collect(),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; carry on.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes to a temporary file beside `path` and renames it into place, so a reader never
/// sees a partial file, even after a crash.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!("tmp.{}.{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Bounds the instances alive at once to the pool's size, so a burst of calls waits for a
/// slot instead of failing on an exhausted pool.
struct Slots {
    free: Mutex<u32>,
    available: Condvar,
}

struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(n: u32) -> Slots {
        Slots { free: Mutex::new(n), available: Condvar::new() }
    }

    fn acquire(&self) -> Slot<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self.available.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.available.notify_one();
    }
}

/// The epoch ticker: a thread that advances the engine's epoch every tick while calls are in
/// flight, and sleeps otherwise (an idle hub does not wake up a thousand times a second).
struct Ticker {
    shared: Arc<TickerShared>,
    thread: Option<JoinHandle<()>>,
}

struct TickerShared {
    active: Mutex<usize>,
    wake: Condvar,
    stop: AtomicBool,
}

struct Ticking<'a>(&'a TickerShared);

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> Result<Ticker, PluginError> {
        let shared =
            Arc::new(TickerShared { active: Mutex::new(0), wake: Condvar::new(), stop: AtomicBool::new(false) });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                loop {
                    {
                        let mut active = lock(&s.active);
                        while *active == 0 && !s.stop.load(Ordering::Acquire) {
                            active = s.wake.wait(active).unwrap_or_else(|e| e.into_inner());
                        }
                    }
                    if s.stop.load(Ordering::Acquire) {
                        return;
                    }
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Host(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Ticker { shared, thread: Some(thread) })
    }

    fn active(&self) -> Ticking<'_> {
        *lock(&self.shared.active) += 1;
        self.shared.wake.notify_one();
        Ticking(&self.shared)
    }
}

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        *lock(&self.0.active) -= 1;
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_say_what_the_bytes_are() {
        assert!(matches!(check_header(b"hello world"), Err(PluginError::Corrupt(m)) if m.contains("magic")));
        assert!(
            matches!(check_header(b"\0asm\x01\0\0\0"), Err(PluginError::Corrupt(m)) if m.contains("core WebAssembly module"))
        );
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn exports_must_be_the_declared_world_at_a_compatible_version() {
        let w = World::PlacementFilter;
        assert_eq!(
            check_exports(w, &["flotilla:placement-filter/filter@0.1.3".into()]),
            Ok("0.1.3".parse().expect("version"))
        );
        let e = check_exports(w, &["flotilla:placement-filter/filter@0.2.0".into()]).expect_err("refused");
        assert!(e.to_string().contains("requires version 0.1.0"), "{e}");
        let e = check_exports(w, &["flotilla:rollout-strategy/strategy@0.1.0".into()]).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "wrong world: declared placement-filter, but the component exports \
             flotilla:rollout-strategy/strategy@0.1.0 (the rollout-strategy world)"
        );
        let e = check_exports(w, &["run".into()]).expect_err("refused");
        assert!(e.to_string().contains("does not export flotilla:placement-filter/filter@0.1.0 (its exports: run)"));
    }

    #[test]
    fn the_world_is_read_from_the_exports() {
        let filter = "flotilla:placement-filter/filter@0.1.0".to_string();
        assert_eq!(world_of_exports(std::slice::from_ref(&filter)), Ok(World::PlacementFilter));
        // A version this host cannot run is still recognized; `load` says what is wrong with it.
        assert_eq!(world_of_exports(&["flotilla:policy-check/check@0.2.0".into()]), Ok(World::PolicyCheck));
        let e = world_of_exports(&["run".into()]).expect_err("none");
        assert!(e.to_string().contains("exports none of Flotilla's worlds") && e.to_string().contains("run"), "{e}");
        let e = world_of_exports(&[filter, "flotilla:rollout-strategy/strategy@0.1.0".into()]).expect_err("two");
        assert!(e.to_string().contains("several worlds (placement-filter, rollout-strategy)"), "{e}");
    }

    #[test]
    fn imports_outside_the_grant_are_named() {
        let ok = ["wasi:io/streams@0.2.6".to_string(), "flotilla:types/log@0.1.0".to_string()];
        assert_eq!(check_imports(World::PlacementFilter, &ok), Ok(()));
        let spoke = ["flotilla:policy-check/spoke@0.1.0".to_string()];
        assert_eq!(check_imports(World::PolicyCheck, &spoke), Ok(()));
        let e = check_imports(World::PlacementFilter, &spoke).expect_err("refused");
        assert!(matches!(&e, PluginError::ForbiddenImport { imports, .. } if imports == &spoke.to_vec()));
    }
}
