//! Request and watch counters in the Prometheus text format.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    /// (verb, code) -> (count, total seconds)
    requests: Mutex<BTreeMap<(String, u16), (u64, f64)>>,
    watchers: Arc<AtomicI64>,
    sources: Mutex<Vec<Arc<dyn MetricsSource>>>,
}

/// More metric families for `/metrics`, from outside the API server (the hub's plugin host).
pub trait MetricsSource: Send + Sync + 'static {
    /// Appends complete families (`# HELP`, `# TYPE` and samples) in the Prometheus text format.
    fn render(&self, out: &mut String);
}

/// Decrements the open-watch gauge when the watch ends.
pub struct WatchGuard(Arc<AtomicI64>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn observe_request(&self, method: &str, code: u16, elapsed: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let entry = requests.entry((method.to_string(), code)).or_default();
        entry.0 += 1;
        entry.1 += elapsed.as_secs_f64();
    }

    /// Adds a source whose families follow the server's own on every scrape.
    pub fn register(&self, source: Arc<dyn MetricsSource>) {
        self.sources.lock().unwrap_or_else(|e| e.into_inner()).push(source);
    }

    pub fn watch_started(&self) -> WatchGuard {
        self.watchers.fetch_add(1, Ordering::Relaxed);
        WatchGuard(self.watchers.clone())
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP flotilla_apiserver_requests_total API requests by method and status code.\n");
        out.push_str("# TYPE flotilla_apiserver_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((method, code), (count, _)) in requests.iter() {
            out.push_str(&format!(
                "flotilla_apiserver_requests_total{{method=\"{method}\",code=\"{code}\"}} {count}\n"
            ));
        }
        out.push_str("# HELP flotilla_apiserver_request_duration_seconds_sum Total time spent serving requests.\n");
        out.push_str("# TYPE flotilla_apiserver_request_duration_seconds_sum counter\n");
        for ((method, code), (_, seconds)) in requests.iter() {
            out.push_str(&format!(
                "flotilla_apiserver_request_duration_seconds_sum{{method=\"{method}\",code=\"{code}\"}} {seconds:.6}\n"
            ));
        }
        out.push_str(
            "# HELP flotilla_apiserver_watches Open watch streams.\n# TYPE flotilla_apiserver_watches gauge\n",
        );
        out.push_str(&format!("flotilla_apiserver_watches {}\n", self.watchers.load(Ordering::Relaxed)));
        drop(requests);
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for source in sources {
            source.render(&mut out);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}
