//! A deduplicating queue of work names for a fixed pool of workers, with client-go's
//! workqueue guarantees: a name is queued at most once, a name is never processed by two
//! workers at a time, and a name added while it is being processed is processed again
//! afterwards (so no change is lost and none is handled twice in parallel).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Default)]
struct State {
    order: VecDeque<String>,
    queued: HashSet<String>,
    active: HashSet<String>,
    /// Added while active: queued again by [`WorkQueue::done`].
    again: HashSet<String>,
    /// The earliest pending delayed add of each name (later ones are dropped).
    delayed: HashMap<String, Instant>,
}

#[derive(Default)]
pub(crate) struct WorkQueue {
    state: Mutex<State>,
    ready: Notify,
}

impl WorkQueue {
    pub fn new() -> Arc<WorkQueue> {
        Arc::new(WorkQueue::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in a holder (every update is a few
        // set operations), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `name` (no-op when it is already waiting).
    pub fn add(&self, name: &str) {
        let mut state = self.lock();
        if state.active.contains(name) {
            state.again.insert(name.to_string());
        } else if state.queued.insert(name.to_string()) {
            state.order.push_back(name.to_string());
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Queues `name` after `delay`, unless an earlier delayed add is already pending.
    pub fn add_after(self: &Arc<Self>, name: &str, delay: Duration) {
        if delay.is_zero() {
            self.add(name);
            return;
        }
        let at = Instant::now() + delay;
        {
            let mut state = self.lock();
            if state.delayed.get(name).is_some_and(|pending| *pending <= at) {
                return;
            }
            state.delayed.insert(name.to_string(), at);
        }
        let queue = Arc::downgrade(self);
        let name = name.to_string();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            // The engine is gone (shutdown): nothing to wake.
            let Some(queue) = queue.upgrade() else { return };
            let due = {
                let mut state = queue.lock();
                if state.delayed.get(&name) == Some(&at) {
                    state.delayed.remove(&name);
                    true
                } else {
                    false
                }
            };
            if due {
                queue.add(&name);
            }
        });
    }

    /// The next name to process; the caller must call [`WorkQueue::done`] with it.
    pub async fn next(&self) -> String {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(name) = self.try_pop() {
                return name;
            }
            notified.await;
        }
    }

    fn try_pop(&self) -> Option<String> {
        let mut state = self.lock();
        let name = state.order.pop_front()?;
        state.queued.remove(&name);
        state.active.insert(name.clone());
        let more = !state.order.is_empty();
        drop(state);
        // A single stored permit may stand for several adds: pass the wake-up on.
        if more {
            self.ready.notify_one();
        }
        Some(name)
    }

    /// Marks `name` processed; queues it again if it was added meanwhile.
    pub fn done(&self, name: &str) {
        let mut state = self.lock();
        state.active.remove(name);
        if state.again.remove(name) && state.queued.insert(name.to_string()) {
            state.order.push_back(name.to_string());
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Names waiting (not counting those being processed).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deduplicates_and_requeues_what_changed_while_active() {
        let queue = WorkQueue::new();
        queue.add("a");
        queue.add("b");
        queue.add("a");
        assert_eq!(queue.len(), 2);
        let first = queue.next().await;
        assert_eq!(first, "a");
        // Added while being processed: not handed to another worker now...
        queue.add("a");
        assert_eq!(queue.next().await, "b");
        assert_eq!(queue.len(), 0);
        // ...but queued again once done.
        queue.done("a");
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.next().await, "a");
        queue.done("a");
        queue.done("b");
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test]
    async fn delayed_adds_keep_the_earliest() {
        let queue = WorkQueue::new();
        queue.add_after("x", Duration::from_millis(400));
        queue.add_after("x", Duration::from_millis(50));
        queue.add_after("x", Duration::from_millis(200));
        let got = tokio::time::timeout(Duration::from_secs(5), queue.next()).await;
        assert_eq!(got.ok().as_deref(), Some("x"));
        queue.done("x");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(queue.len(), 0, "the later delayed adds were dropped");
    }

    #[tokio::test]
    async fn several_waiting_workers_all_get_work() {
        let queue = WorkQueue::new();
        let mut workers = Vec::new();
        for _ in 0..3 {
            let q = queue.clone();
            workers.push(tokio::spawn(async move { q.next().await }));
        }
        tokio::task::yield_now().await;
        for name in ["1", "2", "3"] {
            queue.add(name);
        }
        let mut got = Vec::new();
        for w in workers {
            got.push(tokio::time::timeout(Duration::from_secs(5), w).await.ok().and_then(Result::ok));
        }
        let mut got: Vec<String> = got.into_iter().flatten().collect();
        got.sort();
        assert_eq!(got, ["1", "2", "3"]);
    }
}
