//! The hub's plugin host and what it does on a push: `WasmPlugin` objects are validated when
//! they are created or their component changes, by loading the blob their `spec.digest` names
//! as their `spec.world`. A write is refused, naming the field and the exact
//! reason, unless the blob was uploaded, parses as a component, exports the world at a
//! compatible version, imports nothing outside the world's grant, instantiates, and
//! `describe()` answers with the version `spec.version` declares.
//!
//! The plugin host (one per hub process, its compilation cache under `DATA_DIR/plugin-cache`)
//! is created on first use, so a hub without plugins reserves no instance pool. Its per-plugin
//! counters go on `/metrics`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flotilla_apimachinery::{ApiError, FieldError};
use flotilla_apiserver::{MetricsSource, Operation, Resource, ValidatingAdmission};
use flotilla_plugin_host::{HostConfig, Limits, LimitsOverride, PluginError, PluginHost, World};
use serde_json::Value;

use crate::blobs::{BlobDigest, BlobStore};

pub const GROUP: &str = "flotilla.dev";
pub const KIND: &str = "WasmPlugin";

/// The hub's plugin host, created on first use, and the blobs it loads from.
pub struct HubPlugins {
    cache_dir: PathBuf,
    blobs: Arc<BlobStore>,
    host: Mutex<Option<Arc<PluginHost>>>,
}

impl HubPlugins {
    pub fn new(cache_dir: impl Into<PathBuf>, blobs: Arc<BlobStore>) -> HubPlugins {
        HubPlugins { cache_dir: cache_dir.into(), blobs, host: Mutex::new(None) }
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
        tracing::info!(plugin = %name, %world, %digest, version = %described, "plugin validated");
        Ok(())
    }
}
