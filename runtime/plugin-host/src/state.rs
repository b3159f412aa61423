//! What one invocation's `Store` holds: WASI with no ambient authority, the resource limiter,
//! the log budget and, for policy checks, the spoke reader.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime::{ResourceLimiter, Result as WasmResult};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream, WasiCli};
use wasmtime_wasi::clocks::WasiClocks;
use wasmtime_wasi::filesystem::WasiFilesystem;
use wasmtime_wasi::p2::bindings::sync as wasi;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::flotilla::policy_check::spoke;
use crate::bindings::flotilla::types::log::{self, Level};
use crate::bindings::flotilla::types::types::KindRef;
use crate::limits::Limits;
use crate::metrics::PluginMetrics;
use crate::world::World;

/// Read-only access to the spoke cluster's objects for policy checks, implemented by the
/// agent (over its informers or the spoke API). Called on the invocation's thread while the
/// guest waits; epochs cannot interrupt host code, so an implementation must bound its own
/// latency (a cache, or a timeout on each request).
pub trait SpokeReader: Send + Sync {
    /// Objects of `kind`, in `namespace` (`None`: all namespaces, or a cluster-scoped kind),
    /// matching a Kubernetes label selector when one is given, each as a JSON object.
    fn list(
        &self,
        kind: &KindRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<String>, String>;

    /// One object as JSON, or `None` when it does not exist.
    fn get(&self, kind: &KindRef, namespace: Option<&str>, name: &str) -> Result<Option<String>, String>;
}

/// Which resource limit a guest hit, kept so that the trap it causes is reported as a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LimitHit {
    pub what: &'static str,
    pub limit: u64,
    pub requested: Option<u64>,
}

/// The store limiter: like wasmtime's `StoreLimits` with `trap_on_grow_failure`, but it
/// remembers what was exceeded, so the error says "memory limit" and not "unreachable".
pub(crate) struct Limiter {
    memory_bytes: u64,
    table_elements: u64,
    instances: usize,
    pub hit: Option<LimitHit>,
}

impl Limiter {
    fn new(limits: &Limits) -> Limiter {
        Limiter {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.table_elements,
            instances: limits.instances as usize,
            hit: None,
        }
    }
}

/// The error a refused growth traps with; the host reads the details from `Limiter::hit`.
#[derive(Debug, thiserror::Error)]
#[error("resource limit exceeded")]
pub(crate) struct LimitExceeded;

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> WasmResult<bool> {
        if desired as u64 > self.memory_bytes {
            self.hit = Some(LimitHit { what: "memory", limit: self.memory_bytes, requested: Some(desired as u64) });
            return Err(LimitExceeded.into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> WasmResult<bool> {
        if desired as u64 > self.table_elements {
            self.hit = Some(LimitHit { what: "table", limit: self.table_elements, requested: Some(desired as u64) });
            return Err(LimitExceeded.into());
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.instances
    }

    fn memories(&self) -> usize {
        self.instances
    }
}

/// The store data of one invocation.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: Limiter,
    pub output: CapturedOutput,
    plugin: Arc<str>,
    log_budget: u32,
    metrics: Arc<PluginMetrics>,
    spoke: Option<SpokeAccess>,
}

/// The spoke reader of a policy check and what it may read.
pub(crate) struct SpokeAccess {
    pub reader: Arc<dyn SpokeReader>,
    pub kinds: Vec<KindRef>,
    pub budget: u32,
    /// Kinds the plugin asked for without having declared them, in order, once each: the
    /// caller reports them even when the plugin swallowed the error.
    pub refused: Arc<Mutex<Vec<KindRef>>>,
}

impl HostState {
    pub fn new(
        world: World,
        plugin: Arc<str>,
        limits: &Limits,
        metrics: Arc<PluginMetrics>,
        spoke: Option<SpokeAccess>,
    ) -> HostState {
        let output = CapturedOutput::new(OUTPUT_CAPTURE_BYTES);
        let mut b = WasiCtxBuilder::new();
        // No environment, arguments or preopens: the builder's defaults, spelled out because
        // they are the sandbox. stdin is empty; stdout and stderr land in a small buffer that
        // the host shows when the plugin traps (a Rust panic prints its message there).
        b.stdout(output.clone()).stderr(output.clone());
        if world.deterministic() {
            b.wall_clock(FixedClock).monotonic_clock(FixedClock);
            b.secure_random(wasmtime_wasi::Deterministic::new(vec![0]));
            b.insecure_random(wasmtime_wasi::Deterministic::new(vec![0]));
            b.insecure_random_seed(0);
        }
        // Bound what one `get-random-bytes` call may ask the host to allocate.
        b.max_random_size(1 << 20);
        HostState {
            wasi: b.build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(limits),
            output,
            plugin,
            log_budget: limits.log_lines,
            metrics,
            spoke,
        }
    }
}

/// How much of a plugin's stdout and stderr the host keeps, for error messages.
const OUTPUT_CAPTURE_BYTES: usize = 4096;

/// The longest log line kept; longer ones are cut.
const MAX_LOG_LINE: usize = 4096;

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        if self.log_budget == 0 {
            self.metrics.logs_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        self.log_budget -= 1;
        let message = truncate(&message, MAX_LOG_LINE);
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "flotilla::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "flotilla::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "flotilla::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "flotilla::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "flotilla::plugin", plugin, "{message}"),
        }
    }
}

impl HostState {
    fn spoke_access(&mut self, kind: &KindRef) -> Result<&SpokeAccess, String> {
        let access = self.spoke.as_mut().ok_or("no spoke reader is available to this call")?;
        if !access.kinds.iter().any(|k| k == kind) {
            let mut refused = access.refused.lock().unwrap_or_else(|e| e.into_inner());
            if !refused.contains(kind) {
                refused.push(kind.clone());
            }
            return Err(format!(
                "kind {} {} was not declared in the plugin's reads (validate-config's reads.kinds)",
                kind.api_version, kind.kind
            ));
        }
        if access.budget == 0 {
            return Err("too many spoke reads in one call".into());
        }
        access.budget -= 1;
        Ok(access)
    }
}

impl spoke::Host for HostState {
    fn list_objects(
        &mut self,
        kind: KindRef,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> Result<Vec<String>, String> {
        let access = self.spoke_access(&kind)?;
        access.reader.list(&kind, namespace.as_deref(), label_selector.as_deref())
    }

    fn get_object(&mut self, kind: KindRef, namespace: Option<String>, name: String) -> Result<Option<String>, String> {
        let access = self.spoke_access(&kind)?;
        access.reader.get(&kind, namespace.as_deref(), &name)
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Links what the world grants, and nothing else (see [`World::grants`]).
pub(crate) fn linker(engine: &wasmtime::Engine, world: World) -> WasmResult<Linker<HostState>> {
    let mut l = Linker::<HostState>::new(engine);
    log::add_to_linker::<HostState, Me>(&mut l, |s| s)?;
    if world == World::PolicyCheck {
        spoke::add_to_linker::<HostState, Me>(&mut l, |s| s)?;
    }
    // WASI, as wasmtime-wasi's `add_to_linker_sync` without sockets.
    wasi::io::error::add_to_linker::<HostState, Table>(&mut l, |s| &mut s.table)?;
    wasi::io::poll::add_to_linker::<HostState, Table>(&mut l, |s| &mut s.table)?;
    wasi::io::streams::add_to_linker::<HostState, Table>(&mut l, |s| &mut s.table)?;
    wasi::clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(&mut l, HostState::clocks)?;
    wasi::clocks::monotonic_clock::add_to_linker::<HostState, WasiClocks>(&mut l, HostState::clocks)?;
    wasi::random::random::add_to_linker::<HostState, WasiRandom>(&mut l, |s| s.wasi.random())?;
    wasi::random::insecure::add_to_linker::<HostState, WasiRandom>(&mut l, |s| s.wasi.random())?;
    wasi::random::insecure_seed::add_to_linker::<HostState, WasiRandom>(&mut l, |s| s.wasi.random())?;
    wasi::cli::exit::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    wasi::cli::environment::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    wasi::cli::stdin::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    wasi::cli::stdout::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    wasi::cli::stderr::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    wasi::cli::terminal_input::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    wasi::cli::terminal_output::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    wasi::cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    wasi::cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    wasi::cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    // No preopens are ever configured, so no descriptor exists and no path can be opened; the
    // interfaces are linked only because some toolchains (CPython) import them.
    wasi::filesystem::types::add_to_linker::<HostState, WasiFilesystem>(&mut l, HostState::filesystem)?;
    wasi::filesystem::preopens::add_to_linker::<HostState, WasiFilesystem>(&mut l, HostState::filesystem)?;
    Ok(l)
}

use wasmtime_wasi::cli::WasiCliView as _;
use wasmtime_wasi::clocks::WasiClocksView as _;
use wasmtime_wasi::filesystem::WasiFilesystemView as _;

/// `HasData` for host traits implemented on `HostState` itself.
struct Me;

impl HasData for Me {
    type Data<'a> = &'a mut HostState;
}

/// `HasData` for the WASI io interfaces, implemented on the resource table.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// A clock stopped at the Unix epoch: deterministic worlds read 0 from both clocks.
struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        0
    }
}

/// A plugin's stdout and stderr: the first `capacity` bytes are kept, the rest dropped
/// silently (a plugin that prints a lot is not an error, and must not grow host memory).
#[derive(Clone)]
pub(crate) struct CapturedOutput {
    buffer: Arc<Mutex<Vec<u8>>>,
    capacity: usize,
}

impl CapturedOutput {
    fn new(capacity: usize) -> CapturedOutput {
        CapturedOutput { buffer: Arc::new(Mutex::new(Vec::new())), capacity }
    }

    /// What the plugin printed, lossily decoded, trimmed.
    pub fn text(&self) -> String {
        let buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buffer).trim().to_string()
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASIp3 guests use this, and the host links no p3 interfaces.
        Box::new(tokio::io::sink())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.capacity.saturating_sub(buffer.len());
        buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}
