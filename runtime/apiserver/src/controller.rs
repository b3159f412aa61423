//! A small controller runtime over the API storage: watch some resources, map each change
//! to queue keys, reconcile keys one at a time. Level-triggered and restart-safe: every
//! (re)start lists everything (a watch without a resourceVersion begins with every object
//! as ADDED), reconcilers read the current state and converge it, failures are retried
//! with backoff, and a reconciler can ask to be called again at a given time (lease
//! expiry). The loop restarts from a fresh list after a watch error and every resync.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_store::Store;
use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::registry::Resource;
use crate::storage::Storage;
use crate::watch::WatchOptions;

/// How often everything is listed and reconciled again, whatever the watches said.
const RESYNC: Duration = Duration::from_secs(600);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// One controller's logic.
pub trait Reconciler: Send + Sync + 'static {
    /// For logs.
    fn name(&self) -> &'static str;
    /// The resources whose changes this controller follows.
    fn watches(&self) -> Vec<Arc<Resource>>;
    /// The keys to reconcile when `obj`, of `watches()[index]`, was added, changed or deleted.
    fn keys_for(&self, index: usize, obj: &Value, deleted: bool) -> Vec<String>;
    /// Keys reconciled on every (re)start besides those of the listed objects.
    fn start_keys(&self) -> Vec<String> {
        Vec::new()
    }
    /// Converges the state for `key`. `Ok(Some(d))` asks to be called again after `d`.
    fn reconcile(&self, key: &str) -> impl Future<Output = Result<Option<Duration>, ApiError>> + Send;
}

/// Keys waiting to be reconciled: those due now, and those due later.
#[derive(Default)]
struct Queue {
    ready: BTreeSet<String>,
    later: HashMap<String, Instant>,
    failures: HashMap<String, u32>,
}

impl Queue {
    fn add(&mut self, key: String) {
        self.ready.insert(key);
    }

    fn add_at(&mut self, key: String, at: Instant) {
        let slot = self.later.entry(key).or_insert(at);
        if at < *slot {
            *slot = at;
        }
    }

    /// Moves every key due by `now` to the ready set.
    fn promote(&mut self, now: Instant) {
        let due: Vec<String> = self.later.iter().filter(|(_, at)| **at <= now).map(|(k, _)| k.clone()).collect();
        for key in due {
            self.later.remove(&key);
            self.ready.insert(key);
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.later.values().min().copied()
    }

    fn backoff(&mut self, key: &str) -> Duration {
        let failures = self.failures.entry(key.to_string()).or_insert(0);
        *failures = failures.saturating_add(1);
        let factor = 1u32.checked_shl(failures.saturating_sub(1).min(16)).unwrap_or(u32::MAX);
        BACKOFF_MIN.saturating_mul(factor).min(BACKOFF_MAX)
    }
}

/// Which store's controllers wait for leadership, and the leadership signal of each.
/// Keyed by the store's address, so several servers in one process (tests) stay apart;
/// the `Weak` tells a dead store from a new one at the same address.
type Gates = Vec<(Weak<dyn Store>, watch::Receiver<bool>)>;
static GATES: Mutex<Gates> = Mutex::new(Vec::new());

/// With several hub replicas on one store, controllers must run on one replica at a time:
/// from now on every controller [`run`] over `store` runs only while `leader` is true,
/// starting when it becomes true and stopping (to restart from a fresh list when it is
/// true again) when it becomes false. Controllers are level-triggered and restart-safe,
/// so stopping one mid-reconcile is safe. Call before spawning the controllers.
pub fn gate_on_leadership(store: &Arc<dyn Store>, leader: watch::Receiver<bool>) {
    let mut gates = GATES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    gates.retain(|(weak, _)| weak.strong_count() > 0 && !std::ptr::addr_eq(weak.as_ptr(), Arc::as_ptr(store)));
    gates.push((Arc::downgrade(store), leader));
}

fn gate_for(store: &Arc<dyn Store>) -> Option<watch::Receiver<bool>> {
    let gates = GATES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    gates.iter().find(|(weak, _)| std::ptr::addr_eq(weak.as_ptr(), Arc::as_ptr(store))).map(|(_, rx)| rx.clone())
}

/// Runs `reconciler` until `shutdown` fires. Never panics; errors are logged and retried.
/// If the store is gated ([`gate_on_leadership`]), runs only while this replica leads.
pub async fn run<R: Reconciler>(reconciler: R, storage: Storage, mut shutdown: watch::Receiver<bool>) {
    let reconciler = Arc::new(reconciler);
    let Some(mut leader) = gate_for(&storage.store) else {
        run_until_stopped(reconciler, &storage, &mut shutdown).await;
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            led = leader.wait_for(|leads| *leads) => if led.is_err() { return },
        }
        tracing::info!(controller = reconciler.name(), "leading: controller starting");
        tokio::select! {
            _ = run_until_stopped(reconciler.clone(), &storage, &mut shutdown) => return,
            lost = leader.wait_for(|leads| !*leads) => {
                if lost.is_err() {
                    return;
                }
                tracing::warn!(controller = reconciler.name(), "leadership lost: controller stopped");
            }
        }
    }
}

async fn run_until_stopped<R: Reconciler>(reconciler: Arc<R>, storage: &Storage, shutdown: &mut watch::Receiver<bool>) {
    let storage = storage.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match run_once(reconciler.as_ref(), &storage, shutdown).await {
            Ok(Next::Stop) => return,
            Ok(Next::Restart) => tracing::debug!(controller = reconciler.name(), "resync"),
            Err(e) => {
                tracing::warn!(controller = reconciler.name(), error = %e, "controller restarting after error");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

enum Next {
    Stop,
    Restart,
}

async fn run_once<R: Reconciler>(
    reconciler: &R,
    storage: &Storage,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Next, ApiError> {
    let watched = reconciler.watches();
    let mut events: SelectAll<BoxStream<'static, (usize, Value)>> = SelectAll::new();
    for (index, resource) in watched.iter().enumerate() {
        let opts = WatchOptions { progress_interval: Duration::from_secs(60), ..Default::default() };
        let stream = storage.watch(resource.clone(), None, opts).await?;
        events.push(stream.map(move |ev| (index, ev)).boxed());
    }
    let mut queue = Queue::default();
    for key in reconciler.start_keys() {
        queue.add(key);
    }
    let resync_at = Instant::now() + RESYNC;
    loop {
        // Take every event already delivered (the initial list arrives this way), then act.
        while let Some(Some((index, event))) = futures::FutureExt::now_or_never(events.next()) {
            handle_event(reconciler, &mut queue, index, &event)?;
        }
        queue.promote(Instant::now());
        while let Some(key) = queue.ready.pop_first() {
            if *shutdown.borrow() {
                return Ok(Next::Stop);
            }
            match reconciler.reconcile(&key).await {
                Ok(again) => {
                    queue.failures.remove(&key);
                    if let Some(after) = again {
                        queue.add_at(key, Instant::now() + after);
                    }
                }
                Err(e) => {
                    let delay = queue.backoff(&key);
                    // Conflicts and missing namespaces are the normal races of a level-triggered loop.
                    if e.code == 409 || e.code == 404 {
                        tracing::debug!(controller = reconciler.name(), %key, error = %e, ?delay, "will retry");
                    } else {
                        tracing::warn!(controller = reconciler.name(), %key, error = %e, ?delay, "reconcile failed; will retry");
                    }
                    queue.add_at(key, Instant::now() + delay);
                }
            }
        }
        let next_due = queue.next_due().unwrap_or(resync_at).min(resync_at);
        tokio::select! {
            _ = shutdown.changed() => return Ok(Next::Stop),
            _ = tokio::time::sleep_until(next_due) => {
                if Instant::now() >= resync_at {
                    return Ok(Next::Restart);
                }
            }
            item = events.next() => match item {
                Some((index, event)) => handle_event(reconciler, &mut queue, index, &event)?,
                None => return Ok(Next::Restart),
            },
        }
    }
}

fn handle_event<R: Reconciler>(reconciler: &R, queue: &mut Queue, index: usize, event: &Value) -> Result<(), ApiError> {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or_default();
    let object = event.get("object").unwrap_or(&Value::Null);
    match kind {
        "ADDED" | "MODIFIED" | "DELETED" => {
            for key in reconciler.keys_for(index, object, kind == "DELETED") {
                queue.add(key);
            }
            Ok(())
        }
        "ERROR" => {
            let message = object.get("message").and_then(Value::as_str).unwrap_or("watch error");
            // A compacted or lagging watch: start over from a fresh list.
            Err(ApiError::gone(message.to_string()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let mut queue = Queue::default();
        let delays: Vec<Duration> = (0..12).map(|_| queue.backoff("k")).collect();
        assert_eq!(delays[0], BACKOFF_MIN);
        assert_eq!(delays[1], BACKOFF_MIN * 2);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().expect("delays"), BACKOFF_MAX);
    }

    #[test]
    fn later_keys_keep_the_earliest_time_and_promote() {
        let mut queue = Queue::default();
        let now = Instant::now();
        queue.add_at("a".into(), now + Duration::from_secs(10));
        queue.add_at("a".into(), now + Duration::from_secs(5));
        queue.add_at("b".into(), now + Duration::from_secs(20));
        assert_eq!(queue.next_due(), Some(now + Duration::from_secs(5)));
        queue.promote(now + Duration::from_secs(6));
        assert_eq!(queue.ready.iter().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(queue.next_due(), Some(now + Duration::from_secs(20)));
    }
}
