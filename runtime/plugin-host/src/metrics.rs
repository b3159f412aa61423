//! Per-plugin counters, rendered in the Prometheus text format for the hub's and agent's
//! `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::PluginError;
use crate::world::World;

/// Counters of one plugin (one name and digest). Updated with relaxed atomics: each counter
/// is exact, a scrape may see one call counted in `calls` and not yet in `latency`.
#[derive(Debug, Default)]
pub struct PluginMetrics {
    pub calls: AtomicU64,
    pub latency_micros: AtomicU64,
    pub traps: AtomicU64,
    pub timeouts: AtomicU64,
    pub limits: AtomicU64,
    pub errors: AtomicU64,
    pub logs_dropped: AtomicU64,
}

/// A snapshot of [`PluginMetrics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub calls: u64,
    pub latency_micros: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub limits: u64,
    pub errors: u64,
    pub logs_dropped: u64,
}

impl PluginMetrics {
    pub(crate) fn record(&self, elapsed: Duration, outcome: Result<(), &PluginError>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.latency_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let counter = match outcome {
            Ok(()) => return,
            Err(PluginError::Trap { .. } | PluginError::StackOverflow { .. }) => &self.traps,
            Err(PluginError::Timeout { .. }) => &self.timeouts,
            Err(PluginError::MemoryLimit { .. } | PluginError::OutputTooLarge { .. }) => &self.limits,
            Err(_) => &self.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            latency_micros: self.latency_micros.load(Ordering::Relaxed),
            traps: self.traps.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            limits: self.limits.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            logs_dropped: self.logs_dropped.load(Ordering::Relaxed),
        }
    }
}

/// A metric family: name, type, help, and how to read its value from a snapshot.
type Family = (&'static str, &'static str, &'static str, fn(&MetricsSnapshot) -> f64);

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MetricsKey {
    pub name: String,
    pub world: World,
    pub digest: String,
}

/// Every plugin's counters, kept for the life of the process (a plugin pushed again under the
/// same name and digest continues its counters).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    plugins: Mutex<BTreeMap<MetricsKey, Arc<PluginMetrics>>>,
}

impl Registry {
    pub fn get(&self, key: MetricsKey) -> Arc<PluginMetrics> {
        let mut plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        plugins.entry(key).or_default().clone()
    }

    pub fn render(&self, out: &mut String, compiles: u64, cache_hits: u64) {
        let plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        let families: [Family; 7] = [
            ("flotilla_plugin_calls_total", "counter", "Plugin invocations.", |s| s.calls as f64),
            (
                "flotilla_plugin_call_seconds_total",
                "counter",
                "Time spent in plugin invocations, instantiation included.",
                |s| s.latency_micros as f64 / 1e6,
            ),
            ("flotilla_plugin_traps_total", "counter", "Invocations that trapped (panics, stack overflows).", |s| {
                s.traps as f64
            }),
            ("flotilla_plugin_timeouts_total", "counter", "Invocations stopped at their deadline.", |s| {
                s.timeouts as f64
            }),
            (
                "flotilla_plugin_limit_exceeded_total",
                "counter",
                "Invocations over a memory, table or output limit.",
                |s| s.limits as f64,
            ),
            (
                "flotilla_plugin_errors_total",
                "counter",
                "Invocations that failed otherwise (errors, invalid results).",
                |s| s.errors as f64,
            ),
            (
                "flotilla_plugin_log_lines_dropped_total",
                "counter",
                "Log lines dropped over the per-call budget.",
                |s| s.logs_dropped as f64,
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (key, m) in plugins.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{plugin=\"{}\",world=\"{}\",digest=\"{}\"}} {}",
                    escape(&key.name),
                    key.world,
                    escape(&key.digest),
                    value(&m.snapshot())
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP flotilla_plugin_compilations_total Components compiled by Cranelift.\n\
             # TYPE flotilla_plugin_compilations_total counter\nflotilla_plugin_compilations_total {compiles}\n\
             # HELP flotilla_plugin_cache_hits_total Components loaded from the compilation cache.\n\
             # TYPE flotilla_plugin_cache_hits_total counter\nflotilla_plugin_cache_hits_total {cache_hits}"
        );
    }
}

/// Label values escape backslash, double quote and newline, as the text format requires.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
