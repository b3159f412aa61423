//! Per-call limits, their defaults and the hub-wide maxima, and the host's configuration.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The limits of one invocation: the deadline covers instantiation and the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline, enforced by epoch interruption.
    pub timeout: Duration,
    /// Largest size of each linear memory.
    pub memory_bytes: u64,
    /// Largest number of elements of each table.
    pub table_elements: u64,
    /// Largest size of the result, counted as the bytes of its strings plus a few per value
    /// (see `output.rs`).
    pub max_output_bytes: u64,
    /// Largest number of core instances, memories and tables one component may create.
    /// Interpreter-based components (componentize-py, -js) need a few dozen.
    pub instances: u32,
    /// Log lines one call may write through `flotilla:types/log`; the rest are dropped and
    /// counted.
    pub log_lines: u32,
    /// Reads of spoke objects one policy check may make.
    pub host_calls: u32,
}

impl Limits {
    /// Defaults for every call: generous for Rust plugins over 10,000 clusters, enough for
    /// interpreted ones.
    pub const DEFAULT: Limits = Limits {
        timeout: Duration::from_millis(1_000),
        memory_bytes: 128 << 20,
        table_elements: 20_000,
        max_output_bytes: 16 << 20,
        instances: 64,
        log_lines: 100,
        host_calls: 1_000,
    };

    /// Hub-wide maxima that no plugin or reference can exceed.
    pub const MAXIMA: Limits = Limits {
        timeout: Duration::from_secs(60),
        memory_bytes: 1 << 30,
        table_elements: 1_000_000,
        max_output_bytes: 256 << 20,
        instances: 1_000,
        log_lines: 10_000,
        host_calls: 100_000,
    };

    /// `self` with each field lowered to at most `maxima`'s.
    pub fn clamp_to(self, maxima: &Limits) -> Limits {
        Limits {
            timeout: self.timeout.min(maxima.timeout),
            memory_bytes: self.memory_bytes.min(maxima.memory_bytes),
            table_elements: self.table_elements.min(maxima.table_elements),
            max_output_bytes: self.max_output_bytes.min(maxima.max_output_bytes),
            instances: self.instances.min(maxima.instances),
            log_lines: self.log_lines.min(maxima.log_lines),
            host_calls: self.host_calls.min(maxima.host_calls),
        }
    }

    /// `self` with the fields `o` sets replaced, then clamped to `maxima`. Apply the
    /// `WasmPlugin`'s limits first, then the plugin reference's.
    pub fn with(self, o: &LimitsOverride, maxima: &Limits) -> Limits {
        Limits {
            timeout: o.timeout_millis.map_or(self.timeout, Duration::from_millis),
            memory_bytes: o.memory_bytes.unwrap_or(self.memory_bytes),
            table_elements: o.table_elements.unwrap_or(self.table_elements),
            max_output_bytes: o.max_output_bytes.unwrap_or(self.max_output_bytes),
            instances: self.instances,
            log_lines: self.log_lines,
            host_calls: self.host_calls,
        }
        .clamp_to(maxima)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Limits set on a `WasmPlugin` (`spec.limits`) or a plugin reference: the same field names,
/// so the hub deserializes them straight from the object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitsOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_millis: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_elements: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
}

impl LimitsOverride {
    /// Checks the override against the maxima, for admission: a request above a maximum is
    /// an error the user sees, not a silent clamp.
    pub fn check(&self, maxima: &Limits) -> Result<(), String> {
        let mut over = Vec::new();
        let mut check = |name: &str, value: Option<u64>, max: u64| {
            if let Some(v) = value {
                if v > max {
                    over.push(format!("{name} {v} is above the maximum {max}"));
                } else if v == 0 {
                    over.push(format!("{name} must be above 0"));
                }
            }
        };
        check("timeoutMillis", self.timeout_millis, maxima.timeout.as_millis() as u64);
        check("memoryBytes", self.memory_bytes, maxima.memory_bytes);
        check("tableElements", self.table_elements, maxima.table_elements);
        check("maxOutputBytes", self.max_output_bytes, maxima.max_output_bytes);
        if over.is_empty() { Ok(()) } else { Err(over.join("; ")) }
    }
}

/// How the process's plugin host is set up.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Where compiled components are cached, under a subdirectory per engine compatibility
    /// hash. The host creates it with mode 0700: whoever can write here can run native code
    /// in the process.
    pub cache_dir: PathBuf,
    /// Limits of calls that set none.
    pub defaults: Limits,
    /// Limits no plugin or reference can exceed; also sizes the pooling allocator.
    pub maxima: Limits,
    /// Period of the epoch ticker, the granularity of deadlines. The ticker runs only while
    /// calls are in flight.
    pub epoch_tick: Duration,
    /// Instances that may run at once; sizes the pooling allocator. Further calls wait.
    pub max_concurrent_instances: u32,
    /// The wasm stack of every call (engine-wide in wasmtime: one value for all plugins).
    pub max_wasm_stack: usize,
    /// Use the pooling instance allocator (falls back to on-demand allocation, with a
    /// warning, when the pool cannot reserve its virtual memory).
    pub pooling: bool,
}

impl HostConfig {
    /// The compilation cache of a user's tools (`flotilla plugin push`, `inspect`):
    /// `$FLOTILLA_PLUGIN_CACHE`, else `$XDG_CACHE_HOME/flotilla/plugin-cache`, else
    /// `~/.cache/flotilla/plugin-cache`. Servers keep theirs in their data directory.
    pub fn user_cache_dir() -> PathBuf {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = var("FLOTILLA_PLUGIN_CACHE") {
            return dir;
        }
        let base =
            var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache"))).unwrap_or_else(std::env::temp_dir);
        base.join("flotilla").join("plugin-cache")
    }

    pub fn new(cache_dir: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            cache_dir: cache_dir.into(),
            defaults: Limits::DEFAULT,
            maxima: Limits::MAXIMA,
            epoch_tick: Duration::from_millis(1),
            max_concurrent_instances: 16,
            max_wasm_stack: 1 << 20,
            pooling: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_in_order_and_stay_within_maxima() {
        let plugin = LimitsOverride { timeout_millis: Some(200), memory_bytes: Some(64 << 20), ..Default::default() };
        let reference = LimitsOverride { timeout_millis: Some(500_000), ..Default::default() };
        let l = Limits::DEFAULT.with(&plugin, &Limits::MAXIMA).with(&reference, &Limits::MAXIMA);
        assert_eq!(l.timeout, Limits::MAXIMA.timeout, "clamped to the maximum");
        assert_eq!(l.memory_bytes, 64 << 20, "the plugin's value stays when the reference sets none");
        assert_eq!(l.max_output_bytes, Limits::DEFAULT.max_output_bytes);
    }

    #[test]
    fn admission_says_what_is_over() {
        let o: LimitsOverride = serde_json::from_str(r#"{"timeoutMillis": 120000, "memoryBytes": 0}"#).expect("json");
        assert_eq!(
            o.check(&Limits::MAXIMA),
            Err("timeoutMillis 120000 is above the maximum 60000; memoryBytes must be above 0".into())
        );
        assert_eq!(LimitsOverride::default().check(&Limits::MAXIMA), Ok(()));
    }
}
