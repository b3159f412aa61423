//! Wasm filters and scorers as a Placement refers to them: the reference in the Placement,
//! how the hub resolves a name to a loaded plugin ([`PluginResolver`]), and the cache of
//! configurations the plugins accepted, so a schedule never validates a configuration twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use flotilla_plugin_host::{Limits, LimitsOverride, Plugin, PluginError, PluginHost, Prepared, World};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happens when a plugin fails at run time (traps, times out, reports an error,
/// returns something invalid): `Fail` keeps the Placement's previous decisions and reports
/// `PluginFailed`; `Ignore` goes on without it (a filter keeps every cluster, a scorer
/// scores 0) and notes it in the status message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailurePolicy {
    #[default]
    Fail,
    Ignore,
}

impl FailurePolicy {
    fn parse(s: &str) -> Option<FailurePolicy> {
        match s {
            "Fail" => Some(FailurePolicy::Fail),
            "Ignore" => Some(FailurePolicy::Ignore),
            _ => None,
        }
    }
}

/// A plugin the hub has loaded for a `WasmPlugin` name, with that WasmPlugin's defaults.
#[derive(Clone, Debug)]
pub struct ResolvedPlugin {
    pub plugin: Arc<Plugin>,
    /// `WasmPlugin.spec.failurePolicy`: used when the reference does not set one.
    pub failure_policy: FailurePolicy,
    /// `WasmPlugin.spec.limits`: applied before the reference's own.
    pub limits: Option<LimitsOverride>,
}

/// How the scheduler reaches plugins: the hub implements it over its `WasmPlugin`s (loading
/// the blob a WasmPlugin names), tests over the built-in plugins. Calls come from the
/// scheduling thread, never from an async task (see [`PluginHost`]).
pub trait PluginResolver: Send + Sync {
    fn host(&self) -> &PluginHost;
    /// The loaded plugin of `WasmPlugin` `name`; the error says why there is none (not
    /// found, not yet loaded, refused at push), and becomes the reference's failure. Called
    /// once per plugin reference per schedule: keep it a lookup.
    fn resolve(&self, name: &str) -> Result<ResolvedPlugin, String>;
}

/// A reference to a plugin from a Placement: `requiredClusterSelector.plugin` (a filter) or
/// `scoreCoordinate.plugin` (a scorer).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PluginRef {
    pub name: String,
    /// The configuration as the plugin receives it: the JSON text of the object (`{}` when
    /// absent).
    pub configuration: String,
    /// `None`: the WasmPlugin's default.
    pub failure_policy: Option<FailurePolicy>,
    pub limits: Option<LimitsOverride>,
}

impl PluginRef {
    /// Reads a reference; the error is the message for `PlacementMisconfigured`.
    pub fn parse(v: &Value, field: &str) -> Result<PluginRef, String> {
        let Some(obj) = v.as_object() else {
            return Err(format!("{field} must be an object"));
        };
        let name = match obj.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(format!("{field}.name is required")),
        };
        let configuration = match obj.get("configuration") {
            None | Some(Value::Null) => "{}".to_string(),
            Some(c @ Value::Object(_)) => c.to_string(),
            Some(_) => return Err(format!("{field}.configuration must be a JSON object")),
        };
        let failure_policy = match obj.get("failurePolicy") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                FailurePolicy::parse(s)
                    .ok_or_else(|| format!("{field}.failurePolicy must be Fail or Ignore, not {s:?}"))?,
            ),
            Some(_) => return Err(format!("{field}.failurePolicy must be Fail or Ignore")),
        };
        let limits = match obj.get("limits") {
            None | Some(Value::Null) => None,
            Some(l) => {
                Some(serde_json::from_value::<LimitsOverride>(l.clone()).map_err(|e| format!("{field}.limits: {e}"))?)
            }
        };
        Ok(PluginRef { name, configuration, failure_policy, limits })
    }
}

/// Why a plugin reference could not be used or its call failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub(crate) enum RefError {
    /// The configuration (or the plugin's kind) is wrong: `PlacementMisconfigured`.
    #[error("{0}")]
    Misconfigured(String),
    /// A failure subject to the reference's failure policy.
    #[error("{message}")]
    Failed { message: String, policy: FailurePolicy },
}

/// A plugin ready to call for one schedule.
pub(crate) struct Ready {
    pub prepared: Prepared,
    pub limits: Limits,
    pub policy: FailurePolicy,
}

/// Most prepared configurations kept; past it the cache starts over (configurations are few
/// in practice, and dropping the cache costs one validation each).
const MAX_PREPARED: usize = 4096;

/// Configurations the plugins accepted (or refused), by (component digest, configuration):
/// plugins are deterministic, so the answer never changes for the same pair.
#[derive(Default)]
pub(crate) struct PreparedCache {
    entries: Mutex<HashMap<(String, String), Result<Prepared, PluginError>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PreparedCache {
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Drops what was kept for a component (`sha256:...`), for a WasmPlugin deleted or
    /// replaced.
    pub fn forget(&self, digest: &str) {
        lock(&self.entries).retain(|(d, _), _| d != digest);
    }

    /// Resolves the reference, checks the plugin's world and prepares its configuration
    /// (from the cache when it was seen before).
    pub fn ready(&self, resolver: &dyn PluginResolver, r: &PluginRef, world: World) -> Result<Ready, RefError> {
        let resolved = resolver.resolve(&r.name).map_err(|e| RefError::Failed {
            message: format!("plugin {}: {e}", r.name),
            policy: r.failure_policy.unwrap_or_default(),
        })?;
        let policy = r.failure_policy.unwrap_or(resolved.failure_policy);
        if resolved.plugin.world() != world {
            return Err(RefError::Misconfigured(format!(
                "plugin {} implements {}, not {world}",
                r.name,
                resolved.plugin.world()
            )));
        }
        let host = resolver.host();
        let overrides: Vec<&LimitsOverride> = resolved.limits.iter().chain(r.limits.iter()).collect();
        let limits = host.limits(&overrides);
        let key = (resolved.plugin.info().digest.clone(), r.configuration.clone());
        let cached = lock(&self.entries).get(&key).cloned();
        let prepared = match cached {
            Some(p) => p,
            None => {
                let p = host.prepare_with(&resolved.plugin, &r.configuration, &limits);
                // Only deterministic answers are kept: an accepted or refused configuration.
                // A validation that trapped or timed out is tried again next time.
                if matches!(&p, Ok(_) | Err(PluginError::ConfigRejected(_))) {
                    let mut entries = lock(&self.entries);
                    if entries.len() >= MAX_PREPARED {
                        entries.clear();
                    }
                    entries.insert(key, p.clone());
                }
                p
            }
        };
        match prepared {
            Ok(prepared) => Ok(Ready { prepared, limits, policy }),
            Err(PluginError::ConfigRejected(m)) => Err(RefError::Misconfigured(m)),
            Err(e) => Err(RefError::Failed { message: format!("plugin {}: {e}", r.name), policy }),
        }
    }
}

/// Maps a failed call to the reference's outcome.
pub(crate) fn call_error(name: &str, e: PluginError, policy: FailurePolicy) -> RefError {
    match e {
        PluginError::ConfigRejected(m) => RefError::Misconfigured(m),
        PluginError::WorldMismatch { .. } => RefError::Misconfigured(format!("plugin {name}: {e}")),
        e => RefError::Failed { message: format!("plugin {name}: {e}"), policy },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_parse_with_defaults_and_refuse_bad_fields() {
        let r = PluginRef::parse(&json!({"name": "f"}), "p").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.configuration, "{}");
        assert_eq!(r.failure_policy, None);
        let r = PluginRef::parse(
            &json!({"name": "f", "configuration": {"a": 1}, "failurePolicy": "Ignore", "limits": {"timeoutMillis": 5}}),
            "p",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.configuration, r#"{"a":1}"#);
        assert_eq!(r.failure_policy, Some(FailurePolicy::Ignore));
        assert_eq!(r.limits.and_then(|l| l.timeout_millis), Some(5));
        for bad in [
            json!({}),
            json!({"name": ""}),
            json!({"name": "f", "configuration": "x"}),
            json!({"name": "f", "failurePolicy": "Maybe"}),
            json!("f"),
        ] {
            assert!(PluginRef::parse(&bad, "p").is_err(), "{bad}");
        }
    }
}
