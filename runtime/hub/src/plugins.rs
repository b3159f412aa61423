//! The hub's plugin host and what it does on a push: `WasmPlugin` objects are validated when
//! they are created or their component changes, by loading the blob their `spec.digest` names
//! as their `spec.world`. A write is refused, naming the field and the exact
//! reason, unless the blob was uploaded, parses as a component, exports the world at a
//! compatible version, imports nothing outside the world's grant, instantiates, and
//! `describe()` answers with the version `spec.version` declares.
//!
//! The plugin host (one per hub process, its compilation cache under `DATA_DIR/plugin-cache`)
//! is created on first use, so a hub without plugins reserves no instance pool. Its per-plugin
//! counters go on `/metrics`. [`WasmPluginStatus`] reports each plugin's `Validated`
//! condition and `describe()` answer in its status. [`PlacementPlugins`] resolves the
//! `WasmPlugin` names a Placement refers to for the placement scheduler.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use flotilla_apimachinery::{ApiError, FieldError};
use flotilla_apiserver::controller::Reconciler;
use flotilla_apiserver::objects::{meta, now_rfc3339};
use flotilla_apiserver::{MetricsSource, Operation, Resource, Storage, ValidatingAdmission, WriteOptions};
use flotilla_placement::{FailurePolicy, PluginResolver, ResolvedPlugin};
use flotilla_plugin_host::{HostConfig, Limits, LimitsOverride, Plugin, PluginError, PluginHost, World};
use flotilla_registration::conditions::{self, Condition};
use serde_json::{Value, json};

use crate::blobs::{BlobDigest, BlobStore};

pub const GROUP: &str = "flotilla.dev";
pub const KIND: &str = "WasmPlugin";

/// The hub's plugin host, created on first use, and the blobs it loads from.
pub struct HubPlugins {
    cache_dir: PathBuf,
    blobs: Arc<BlobStore>,
    host: Mutex<Option<Arc<PluginHost>>>,
    /// `describe()` answers by (digest, world) from validations in this process, so the
    /// status controller does not call the component again for what admission just did.
    described: Mutex<HashMap<(String, World), Value>>,
}

impl HubPlugins {
    pub fn new(cache_dir: impl Into<PathBuf>, blobs: Arc<BlobStore>) -> HubPlugins {
        HubPlugins { cache_dir: cache_dir.into(), blobs, host: Mutex::new(None), described: Mutex::new(HashMap::new()) }
    }

    pub fn blobs(&self) -> &Arc<BlobStore> {
        &self.blobs
    }

    /// The plugin host, created now if need be. Blocking (creating the engine takes a few
    /// milliseconds): call it from a blocking context.
    pub fn host(&self) -> Result<Arc<PluginHost>, PluginError> {
        let mut host = self.host.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = host.as_ref() {
            return Ok(h.clone());
        }
        let created = Arc::new(PluginHost::new(HostConfig::new(&self.cache_dir))?);
        tracing::info!(cache = %created.cache_dir().display(), pooling = created.pooling(), "plugin host started");
        *host = Some(created.clone());
        Ok(created)
    }

    fn remember_describe(&self, digest: &str, world: World, plugin: &flotilla_plugin_host::Plugin) {
        if let Ok(info) = serde_json::to_value(plugin.info()) {
            let describe = info.get("describe").cloned().unwrap_or(Value::Null);
            self.described.lock().unwrap_or_else(|e| e.into_inner()).insert((digest.to_string(), world), describe);
        }
    }

    fn described(&self, digest: &str, world: World) -> Option<Value> {
        self.described.lock().unwrap_or_else(|e| e.into_inner()).get(&(digest.to_string(), world)).cloned()
    }

    /// The plugin host if it was created.
    pub fn started(&self) -> Option<Arc<PluginHost>> {
        self.host.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl MetricsSource for HubPlugins {
    fn render(&self, out: &mut String) {
        if let Some(host) = self.started() {
            out.push_str(&host.render_prometheus());
        }
    }
}

/// Validating admission of `WasmPlugin` writes.
pub struct WasmPluginValidation {
    plugins: Arc<HubPlugins>,
}

impl WasmPluginValidation {
    pub fn new(plugins: Arc<HubPlugins>) -> WasmPluginValidation {
        WasmPluginValidation { plugins }
    }
}

/// The spec fields that decide what the component is; a write that keeps them (status,
/// labels, description, limits) is not validated again.
fn component_fields(obj: &Value) -> [Option<&Value>; 3] {
    ["world", "digest", "version"].map(|f| obj.get("spec").and_then(|s| s.get(f)))
}

#[async_trait]
impl ValidatingAdmission for WasmPluginValidation {
    async fn validate(&self, res: &Resource, op: Operation, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
        if res.def.group != GROUP || res.def.kind != KIND || op == Operation::Delete {
            return Ok(());
        }
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let invalid = |errors: Vec<FieldError>| ApiError::invalid(KIND, GROUP, &name, errors);
        let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
        let field = |f: &str| spec.get(f).cloned().unwrap_or(Value::Null);

        let limits_value = match field("limits") {
            Value::Null => Value::Object(Default::default()),
            v => v,
        };
        let limits: LimitsOverride = serde_json::from_value(limits_value)
            .map_err(|e| invalid(vec![FieldError::invalid("spec.limits", &field("limits"), e.to_string())]))?;
        limits
            .check(&Limits::MAXIMA)
            .map_err(|e| invalid(vec![FieldError::invalid("spec.limits", &field("limits"), e)]))?;
        if old.is_some_and(|old| component_fields(old) == component_fields(obj)) {
            return Ok(());
        }

        let world: World = field("world")
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|e: String| invalid(vec![FieldError::invalid("spec.world", &field("world"), e)]))?;
        let digest: BlobDigest = field("digest")
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|e: String| invalid(vec![FieldError::invalid("spec.digest", &field("digest"), e)]))?;
        let bytes = self
            .plugins
            .blobs()
            .read(&digest)
            .await
            .map_err(|e| ApiError::internal(format!("cannot read blob {digest}: {e}")))?
            .ok_or_else(|| {
                invalid(vec![FieldError::invalid(
                    "spec.digest",
                    &field("digest"),
                    format!(
                        "blob {digest} was not uploaded: run `flotilla plugin push FILE --name {name}`, which uploads \
                         the component and sets the digest"
                    ),
                )])
            })?;

        // Compiling a large component takes seconds of CPU: off the async threads.
        let plugins = self.plugins.clone();
        let loading = name.clone();
        let loaded = tokio::task::spawn_blocking(move || plugins.host()?.load(&loading, world, &bytes))
            .await
            .map_err(|e| ApiError::internal(format!("validating plugin {name}: {e}")))?;
        let plugin = match loaded {
            Ok(plugin) => plugin,
            Err(PluginError::Host(e)) => {
                return Err(ApiError::internal(format!("the hub's plugin host failed to validate {digest}: {e}")));
            }
            Err(e @ (PluginError::WrongWorld(_) | PluginError::WorldMismatch { .. })) => {
                tracing::info!(plugin = %name, %digest, reason = e.reason(), error = %e, "refused a plugin");
                return Err(invalid(vec![FieldError::invalid("spec.world", &field("world"), e.to_string())]));
            }
            Err(e) => {
                tracing::info!(plugin = %name, %digest, reason = e.reason(), error = %e, "refused a plugin");
                return Err(invalid(vec![FieldError::invalid("spec.digest", &field("digest"), e.to_string())]));
            }
        };
        let described = &plugin.info().describe.version;
        if field("version").as_str() != Some(described.as_str()) {
            return Err(invalid(vec![FieldError::invalid(
                "spec.version",
                &field("version"),
                format!(
                    "the component's describe() reports version {described:?}; spec.version must be the version of \
                     the component it names (`flotilla plugin push` sets it)"
                ),
            )]));
        }
        self.plugins.remember_describe(&digest.to_string(), world, &plugin);
        tracing::info!(plugin = %name, %world, %digest, version = %described, "plugin validated");
        Ok(())
    }
}

/// Writes what the hub found into each `WasmPlugin`'s status: the `Validated` condition, the
/// component's `describe()` answer and the generation they describe. Admission already
/// refused every invalid component, so this mostly confirms; it still loads the blob (from
/// the compilation cache) so that the status reports the component actually stored, and says
/// why when it cannot be loaded any more (for example a blob removed from disk).
pub struct WasmPluginStatus {
    plugins: Arc<HubPlugins>,
    storage: Storage,
    resource: Arc<Resource>,
}

const CONDITION_VALIDATED: &str = "Validated";
const STATUS_MANAGER: &str = "flotilla-hub";

impl WasmPluginStatus {
    pub fn new(plugins: Arc<HubPlugins>, storage: Storage) -> Result<WasmPluginStatus, String> {
        let resource = storage
            .registry
            .by_kind(&format!("{GROUP}/v1alpha1"), KIND)
            .ok_or_else(|| format!("the hub does not serve {GROUP}/v1alpha1 {KIND}"))?;
        Ok(WasmPluginStatus { plugins, storage, resource })
    }

    /// Loads the component the object names: its `describe()` answer, or why it failed.
    async fn inspect(&self, obj: &Value) -> Result<Value, (String, String)> {
        let spec = |f: &str| obj.pointer(&format!("/spec/{f}")).and_then(Value::as_str).unwrap_or_default();
        let world: World = spec("world").parse().map_err(|e: String| ("InvalidWorld".to_string(), e))?;
        let digest: BlobDigest = spec("digest").parse().map_err(|e: String| ("InvalidDigest".to_string(), e))?;
        if let Some(describe) = self.plugins.described(&digest.to_string(), world) {
            return Ok(describe);
        }
        let bytes = match self.plugins.blobs().read(&digest).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(("BlobMissing".into(), format!("blob {digest} is not on the hub any more"))),
            Err(e) => return Err(("BlobUnreadable".into(), format!("cannot read blob {digest}: {e}"))),
        };
        let plugins = self.plugins.clone();
        let name = meta::name(obj).to_string();
        let loaded = tokio::task::spawn_blocking(move || plugins.host()?.load(&name, world, &bytes))
            .await
            .map_err(|e| ("InternalError".to_string(), e.to_string()))?;
        let plugin = loaded.map_err(|e| (e.reason().to_string(), e.to_string()))?;
        self.plugins.remember_describe(&digest.to_string(), world, &plugin);
        self.plugins.described(&digest.to_string(), world).ok_or_else(|| {
            ("InternalError".to_string(), "the component's describe() answer does not serialize".to_string())
        })
    }
}

impl Reconciler for WasmPluginStatus {
    fn name(&self) -> &'static str {
        "wasm-plugin-status"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        vec![self.resource.clone()]
    }

    fn keys_for(&self, _index: usize, obj: &Value, deleted: bool) -> Vec<String> {
        if deleted { Vec::new() } else { vec![meta::name(obj).to_string()] }
    }

    async fn reconcile(&self, key: &str) -> Result<Option<std::time::Duration>, ApiError> {
        let mut obj = match self.storage.get(&self.resource, None, key).await {
            Ok(obj) => obj,
            Err(e) if e.code == 404 => return Ok(None),
            Err(e) => return Err(e),
        };
        let generation = meta::generation(&obj);
        let observed = obj.pointer("/status/observedGeneration").and_then(Value::as_i64);
        if observed == Some(generation) && conditions::status_of(&obj, CONDITION_VALIDATED).is_some() {
            return Ok(None);
        }
        let world = obj.pointer("/spec/world").and_then(Value::as_str).unwrap_or_default().to_string();
        let version = obj.pointer("/spec/version").and_then(Value::as_str).unwrap_or_default().to_string();
        let (condition_status, reason, message, describe) = match self.inspect(&obj).await {
            Ok(describe) => (
                conditions::TRUE,
                "ComponentValidated".to_string(),
                format!("the component exports {world} and describe() reports version {version}"),
                describe,
            ),
            Err((reason, message)) => (conditions::FALSE, reason, message, Value::Null),
        };
        let mut list = conditions::of(&obj);
        let condition =
            Condition { type_: CONDITION_VALIDATED, status: condition_status, reason: &reason, message: &message };
        conditions::set(&mut list, &condition, generation, &now_rfc3339());
        let status = obj.as_object_mut().map(|o| o.entry("status").or_insert_with(|| json!({})));
        if let Some(status) = status.and_then(Value::as_object_mut) {
            status.insert("conditions".into(), json!(list));
            status.insert("observedGeneration".into(), json!(generation));
            if describe.is_null() {
                status.remove("describe");
            } else {
                status.insert("describe".into(), describe);
            }
        }
        self.storage
            .update(&self.resource, None, key, obj, Some("status"), &WriteOptions::manager(STATUS_MANAGER))
            .await?;
        Ok(None)
    }
}

/// The placement scheduler's view of the hub's plugins: a `WasmPlugin` name resolves to the
/// component its `spec.digest` names, loaded as its `spec.world` (compiled once per digest by
/// the host, and kept here per name and digest so a schedule does not instantiate
/// `describe()` again), with the object's `failurePolicy` and `limits`.
///
/// The object is read on every resolve, so a changed digest, failure policy or limits is used
/// by the next schedule; the placement controller reschedules the placements naming a
/// plugin when its spec changes.
///
/// Calls come from the scheduler's blocking thread (the plugin host must not run on an async
/// task), which reads the object through the runtime handle.
pub struct PlacementPlugins {
    plugins: Arc<HubPlugins>,
    storage: Storage,
    resource: Arc<Resource>,
    runtime: tokio::runtime::Handle,
    /// The host, once a plugin was resolved (a hub whose placements use no plugin starts none).
    host: OnceLock<Arc<PluginHost>>,
    /// Name -> the plugin loaded for it.
    loaded: Mutex<HashMap<String, Loaded>>,
}

/// A plugin loaded for a WasmPlugin name, and which component (digest, world) it is.
#[derive(Clone)]
struct Loaded {
    digest: String,
    world: World,
    plugin: Arc<Plugin>,
}

impl PlacementPlugins {
    /// Call from the runtime whose storage it reads.
    pub fn new(plugins: Arc<HubPlugins>, storage: Storage) -> Result<PlacementPlugins, String> {
        let resource = storage
            .registry
            .by_kind(&format!("{GROUP}/v1alpha1"), KIND)
            .ok_or_else(|| format!("the hub does not serve {GROUP}/v1alpha1 {KIND}"))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| format!("the placement plugin resolver needs a tokio runtime: {e}"))?;
        Ok(PlacementPlugins {
            plugins,
            storage,
            resource,
            runtime,
            host: OnceLock::new(),
            loaded: Mutex::new(HashMap::new()),
        })
    }

    fn started_host(&self) -> Result<&Arc<PluginHost>, String> {
        if let Some(host) = self.host.get() {
            return Ok(host);
        }
        let host = self.plugins.host().map_err(|e| format!("the hub's plugin host cannot start: {e}"))?;
        Ok(self.host.get_or_init(|| host))
    }
}

impl PluginResolver for PlacementPlugins {
    /// The scheduler asks for the host only after a plugin resolved, which started it.
    fn host(&self) -> &PluginHost {
        match self.started_host() {
            Ok(host) => host,
            // Unreachable through the scheduler (see above); on the scheduler's blocking
            // thread a panic fails that one schedule, which the controller retries.
            Err(e) => panic!("{e}"),
        }
    }

    fn resolve(&self, name: &str) -> Result<ResolvedPlugin, String> {
        let obj = match self.runtime.block_on(self.storage.get(&self.resource, None, name)) {
            Ok(obj) => obj,
            Err(e) if e.code == 404 => return Err(format!("WasmPlugin {name} not found")),
            Err(e) => return Err(format!("cannot read WasmPlugin {name}: {e}")),
        };
        let spec = |f: &str| obj.pointer(&format!("/spec/{f}")).cloned().unwrap_or(Value::Null);
        let world: World = spec("world").as_str().unwrap_or_default().parse()?;
        let digest: BlobDigest = spec("digest").as_str().unwrap_or_default().parse()?;
        let failure_policy = match spec("failurePolicy").as_str() {
            Some("Ignore") => FailurePolicy::Ignore,
            _ => FailurePolicy::Fail,
        };
        let limits = match spec("limits") {
            Value::Null => None,
            l => Some(
                serde_json::from_value::<LimitsOverride>(l)
                    .map_err(|e| format!("WasmPlugin {name} spec.limits: {e}"))?,
            ),
        };
        let cached = self.loaded.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned();
        let plugin = match cached {
            Some(loaded) if loaded.digest == digest.to_string() && loaded.world == world => loaded.plugin,
            _ => {
                let path = self.plugins.blobs().path(&digest);
                let bytes = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(format!("blob {digest} of WasmPlugin {name} is not on the hub"));
                    }
                    Err(e) => return Err(format!("cannot read blob {digest} of WasmPlugin {name}: {e}")),
                };
                let plugin = self.started_host()?.load(name, world, &bytes).map_err(|e| e.to_string())?;
                tracing::info!(plugin = name, %world, %digest, "plugin loaded for placement");
                self.loaded
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.to_string(), Loaded { digest: digest.to_string(), world, plugin: plugin.clone() });
                plugin
            }
        };
        Ok(ResolvedPlugin { plugin, failure_policy, limits })
    }
}

/// The rollout controller's view of the hub's plugins: rollout strategies
/// (`rolloutStrategy.type: Plugin`) and manifest transforms (`spec.manifestTransform`), resolved
/// by `WasmPlugin` name as [`PlacementPlugins`] resolves them (same loading and caching per
/// name and digest), with the call limits of the WasmPlugin and the reference.
///
/// Calls come from the rollout controller's blocking thread (it reads the object through the
/// runtime handle, as [`PlacementPlugins`]).
pub struct RolloutPlugins {
    plugins: Arc<HubPlugins>,
    named: PlacementPlugins,
    /// The host, once a plugin was resolved.
    host: OnceLock<Arc<PluginHost>>,
}

impl RolloutPlugins {
    /// Call from the runtime whose storage it reads.
    pub fn new(plugins: Arc<HubPlugins>, storage: Storage) -> Result<RolloutPlugins, String> {
        let named = PlacementPlugins::new(plugins.clone(), storage)?;
        Ok(RolloutPlugins { plugins, named, host: OnceLock::new() })
    }

    fn started_host(&self) -> Result<Arc<PluginHost>, String> {
        if let Some(host) = self.host.get() {
            return Ok(host.clone());
        }
        let host = self.plugins.host().map_err(|e| format!("the hub's plugin host cannot start: {e}"))?;
        Ok(self.host.get_or_init(|| host).clone())
    }

    /// The plugin, the call limits (the host's defaults, the WasmPlugin's, the reference's)
    /// and the WasmPlugin's failure policy.
    fn resolve_with(
        &self,
        name: &str,
        reference_limits: Option<&LimitsOverride>,
    ) -> Result<(Arc<Plugin>, Limits, FailurePolicy), String> {
        let host = self.started_host()?;
        let resolved = self.named.resolve(name)?;
        let overrides: Vec<&LimitsOverride> = resolved.limits.iter().chain(reference_limits).collect();
        Ok((resolved.plugin, host.limits(&overrides), resolved.failure_policy))
    }
}

impl flotilla_rollout::strategy::StrategyPlugins for RolloutPlugins {
    /// Asked for only after a plugin resolved, which started the host.
    fn host(&self) -> Arc<PluginHost> {
        match self.started_host() {
            Ok(host) => host,
            // Unreachable through the controller (see above); on its blocking thread a panic
            // fails that one reconcile, which the controller retries.
            Err(e) => panic!("{e}"),
        }
    }

    fn resolve(&self, reference: &flotilla_rollout::engine::PluginStrategy) -> Result<(Arc<Plugin>, Limits), String> {
        self.resolve_with(&reference.name, reference.limits.as_ref()).map(|(plugin, limits, _)| (plugin, limits))
    }
}

impl flotilla_rollout::transform::NamedPlugins for RolloutPlugins {
    fn host(&self) -> Arc<PluginHost> {
        flotilla_rollout::strategy::StrategyPlugins::host(self)
    }

    fn resolve_named(&self, name: &str) -> Result<flotilla_rollout::transform::ResolvedPlugin, String> {
        let (plugin, limits, policy) = self.resolve_with(name, None)?;
        let failure_policy = match policy {
            FailurePolicy::Fail => flotilla_rollout::engine::FailurePolicy::Fail,
            FailurePolicy::Ignore => flotilla_rollout::engine::FailurePolicy::Ignore,
        };
        Ok(flotilla_rollout::transform::ResolvedPlugin { plugin, limits, failure_policy })
    }
}
