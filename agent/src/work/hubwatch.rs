//! The agent's copy of the hub objects of its cluster namespace that it acts on (its
//! ManifestWorks, its replicated Policies): watched on the hub, kept in memory for the
//! workers and on disk under `DATA_DIR/<dir>/<name>.json` (one atomic, owner-only write per
//! change: works may carry Secrets), so that an agent restarted while the hub is down goes
//! on applying, repairing and evaluating what it was told last. One [`HubStore`] and one
//! [`HubWatch`] per [`WatchedKind`].
//!
//! The watch is a plain list+watch loop rather than `kube::runtime::watcher`: it must keep
//! its resourceVersion across hub client swaps (certificate rotation) and connection
//! failures, relist only on 410 Gone, and tell the engine whether the hub has answered
//! (eviction of AppliedManifestWorks may only act on what a reachable hub said).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, WatchEvent, WatchParams};
use serde_json::Value;
use tokio::sync::watch;

use super::queue::WorkQueue;
use crate::AgentError;
use crate::client::SharedClient;
use crate::error::{api_code, api_message};
use crate::util::{Backoff, sleep_or_shutdown};

/// Server-side watch timeout (below the client's read timeout, so the server ends it).
const WATCH_TIMEOUT_SECS: u32 = 290;
const LIST_PAGE: u32 = 500;
/// A watch that delivers nothing, not even a bookmark (the hub sends one every few
/// seconds), for this long is taken for a dead connection.
const WATCH_IDLE: Duration = Duration::from_secs(90);
/// How many removed objects are remembered (see [`HubStore::remove`]).
const MAX_REMOVED_MARKS: usize = 10_000;

/// `work.open-cluster-management.io/v1` ManifestWorks, for kube-rs dynamic APIs.
pub fn manifest_works() -> ApiResource {
    ApiResource {
        group: "work.open-cluster-management.io".into(),
        version: "v1".into(),
        api_version: "work.open-cluster-management.io/v1".into(),
        kind: "ManifestWork".into(),
        plural: "manifestworks".into(),
    }
}

/// A kind of hub object the agent watches in its cluster namespace.
#[derive(Clone)]
pub struct WatchedKind {
    pub resource: ApiResource,
    /// What makes an object worth processing again: not its status (the agent's own writes
    /// come back through the watch and must not loop).
    pub interesting: for<'a> fn(&'a Value) -> [Option<&'a Value>; 5],
}

impl WatchedKind {
    /// The cluster's ManifestWorks.
    pub fn manifest_works() -> WatchedKind {
        WatchedKind { resource: manifest_works(), interesting }
    }
}

/// The objects of one kind in this cluster's namespace as last seen, shared by the watch
/// and the workers.
pub struct HubStore {
    kind: WatchedKind,
    dir: PathBuf,
    objects: RwLock<BTreeMap<String, Arc<Value>>>,
    /// The resourceVersion at which each removed object was seen gone: a late response to the
    /// agent's own write (say, the finalizer removal that let the work go) carries an older
    /// one and must not bring the work back.
    removed: Mutex<BTreeMap<String, u64>>,
    /// Serializes disk writes (the atomic write uses one temporary name per file).
    disk: Mutex<()>,
    /// A list from the hub succeeded since the agent started: works missing from the store
    /// are really gone from the hub, not just unknown.
    synced: AtomicBool,
    /// The hub answers right now (the last list or watch request succeeded).
    connected: AtomicBool,
    queue: Arc<WorkQueue>,
}

/// A work's name, as it may be used for a file name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn name_of(object: &Value) -> Option<&str> {
    object.pointer("/metadata/name").and_then(Value::as_str).filter(|n| valid_name(n))
}

fn resource_version(object: &Value) -> Option<u64> {
    object.pointer("/metadata/resourceVersion").and_then(Value::as_str).and_then(|rv| rv.parse().ok())
}

/// What makes a work worth reconciling again: not its status.
fn interesting(object: &Value) -> [Option<&Value>; 5] {
    [
        object.get("spec"),
        object.pointer("/metadata/deletionTimestamp"),
        object.pointer("/metadata/finalizers"),
        object.pointer("/metadata/generation"),
        object.pointer("/metadata/uid"),
    ]
}

impl HubStore {
    /// Loads the objects saved under `dir`. A file that cannot be read is skipped with a
    /// warning (the hub will send the object again); the store starts unsynced.
    pub fn load(dir: &Path, queue: Arc<WorkQueue>, kind: WatchedKind) -> Result<HubStore, AgentError> {
        std::fs::create_dir_all(dir).map_err(AgentError::io("creating", dir))?;
        let mut objects = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(AgentError::io("reading", dir))?;
        for entry in entries {
            let entry = entry.map_err(AgentError::io("reading", dir))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string()));
            match parsed {
                Ok(object) => match name_of(&object) {
                    Some(name) if path.file_stem().and_then(|s| s.to_str()) == Some(name) => {
                        objects.insert(name.to_string(), Arc::new(object));
                    }
                    _ => {
                        tracing::warn!(path = %path.display(), "ignoring a saved object whose name does not match its file")
                    }
                },
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable saved object"),
            }
        }
        if !objects.is_empty() {
            tracing::info!(kind = %kind.resource.kind, count = objects.len(), dir = %dir.display(), "loaded the saved objects");
        }
        for name in objects.keys() {
            queue.add(name);
        }
        Ok(HubStore {
            kind,
            dir: dir.to_path_buf(),
            objects: RwLock::new(objects),
            removed: Mutex::new(BTreeMap::new()),
            disk: Mutex::new(()),
            synced: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            queue,
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Value>> {
        self.objects.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.objects.read().unwrap_or_else(std::sync::PoisonError::into_inner).keys().cloned().collect()
    }

    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Release);
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn persist(&self, name: &str, object: Option<&Value>) {
        let _guard = self.disk.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = self.path(name);
        let result = match object {
            Some(object) => serde_json::to_vec(object).map_err(|e| e.to_string()).and_then(|bytes| {
                flotilla_pki::write_private_file_atomically(&path, &bytes).map_err(|e| e.to_string())
            }),
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            // The in-memory copy is still right; only a restart without the hub would miss it.
            tracing::warn!(path = %path.display(), error = %e, "cannot save the local copy of a hub object");
        }
    }

    /// Records a newer version of an object (from the watch, a list, or the response to the
    /// agent's own write). An older resourceVersion than the one held is ignored, so a late
    /// response never rolls the copy back. Queues the object when more than its status changed.
    pub fn upsert(&self, object: Value) {
        let Some(name) = name_of(&object).map(str::to_string) else {
            tracing::warn!(kind = %self.kind.resource.kind, "ignoring an object without a usable name");
            return;
        };
        {
            let mut removed = self.removed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(gone_at) = removed.get(&name) {
                match resource_version(&object) {
                    Some(rv) if rv > *gone_at => {
                        removed.remove(&name);
                    }
                    _ => return,
                }
            }
        }
        let object = Arc::new(object);
        let changed = {
            let mut objects = self.objects.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(old) = objects.get(&name) {
                if let (Some(held), Some(new)) = (resource_version(old), resource_version(&object))
                    && new < held
                {
                    return;
                }
                if **old == *object {
                    return;
                }
            }
            let interesting = self.kind.interesting;
            let interesting = objects.get(&name).is_none_or(|old| interesting(old) != interesting(&object));
            objects.insert(name.clone(), object.clone());
            interesting
        };
        self.persist(&name, Some(&object));
        if changed {
            self.queue.add(&name);
        }
    }

    /// Forgets an object that is gone from the hub; the engine then looks after what it left
    /// on the spoke.
    pub fn remove(&self, name: &str, resource_version: Option<u64>) {
        if let Some(rv) = resource_version {
            let mut removed = self.removed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            removed.insert(name.to_string(), rv);
            // Late responses come within seconds: the oldest marks can go.
            if removed.len() > MAX_REMOVED_MARKS
                && let Some(oldest) = removed.iter().min_by_key(|(_, rv)| **rv).map(|(n, _)| n.clone())
            {
                removed.remove(&oldest);
            }
        }
        let removed = self.objects.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name).is_some();
        if removed {
            self.persist(name, None);
            tracing::info!(kind = %self.kind.resource.kind, name = %name, "gone from the hub");
            self.queue.add(name);
        }
    }

    /// Replaces the contents with a complete list from the hub (at `list_version`).
    fn replace_all(&self, objects: Vec<Value>, list_version: Option<u64>) {
        let listed: std::collections::BTreeSet<String> =
            objects.iter().filter_map(name_of).map(str::to_string).collect();
        // The list is the truth: what it holds is no longer gone.
        self.removed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|name, _| !listed.contains(name));
        for object in objects {
            self.upsert(object);
        }
        for name in self.names() {
            if !listed.contains(&name) {
                self.remove(&name, list_version);
            }
        }
        self.synced.store(true, Ordering::Release);
    }
}

/// The list+watch loop on the hub, for the kind of its store.
pub struct HubWatch {
    pub cluster: String,
    pub hub: SharedClient,
    pub store: Arc<HubStore>,
    pub shutdown: watch::Receiver<bool>,
}

/// Why a watch ended.
enum Ended {
    /// The server closed it (timeout) or the client was swapped: resume from the last
    /// resourceVersion.
    Resume,
    /// 410 Gone: the resourceVersion is too old, list again.
    Relist,
    /// A failure: back off, then resume.
    Failed(String),
    Shutdown,
}

impl HubWatch {
    pub async fn run(mut self) {
        // Reconnecting is cheap, and a hub that comes back should see its agents soon.
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        let mut resource_version: Option<String> = None;
        let mut failing = false;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let rv = match resource_version.take() {
                Some(rv) => rv,
                None => match self.list().await {
                    Ok(rv) => rv,
                    Err(e) => {
                        self.store.set_connected(false);
                        self.hub.suspect();
                        let delay = backoff.next_delay();
                        if !failing {
                            tracing::warn!(cluster = %self.cluster, kind = %self.kind(), error = %e, retry_in = ?delay,
                                "cannot list on the hub; working from the local copies");
                        }
                        failing = true;
                        if self.pause(delay).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            if std::mem::take(&mut failing) {
                tracing::info!(cluster = %self.cluster, kind = %self.kind(), "watching the hub again");
            }
            let mut last = rv;
            match self.watch(&mut last).await {
                Ended::Resume => {
                    backoff.reset();
                    resource_version = Some(last);
                }
                Ended::Relist => {
                    tracing::info!(cluster = %self.cluster, kind = %self.kind(), "the watch expired (410); listing again");
                    resource_version = None;
                }
                Ended::Failed(e) => {
                    self.store.set_connected(false);
                    self.hub.suspect();
                    let delay = backoff.next_delay();
                    tracing::warn!(cluster = %self.cluster, kind = %self.kind(), error = %e, retry_in = ?delay, resource_version = %last,
                        "the watch failed; resuming from the last resourceVersion");
                    failing = true;
                    resource_version = Some(last);
                    if self.pause(delay).await {
                        return;
                    }
                }
                Ended::Shutdown => return,
            }
        }
    }

    /// Backs off for `delay`, cut short when a new hub client is published (another
    /// replica after a failover, or a rotated certificate); true on shutdown.
    async fn pause(&mut self, delay: Duration) -> bool {
        let (hub, shutdown) = (&mut self.hub, &mut self.shutdown);
        tokio::select! {
            stop = sleep_or_shutdown(delay, shutdown) => stop,
            () = hub.changed() => {
                tracing::debug!(cluster = %self.cluster, kind = %self.kind(), "new hub client; retrying the watch now");
                *self.shutdown.borrow()
            }
        }
    }

    fn kind(&self) -> &str {
        &self.store.kind.resource.kind
    }

    fn api(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.hub.get(), &self.cluster, &self.store.kind.resource)
    }

    /// Lists every object of the namespace (paged) into the store; the list's resourceVersion.
    async fn list(&self) -> Result<String, AgentError> {
        let api = self.api();
        let mut params = ListParams::default().limit(LIST_PAGE);
        let mut objects = Vec::new();
        let mut version = None;
        loop {
            let page = api.list(&params).await.map_err(AgentError::kube(format!(
                "listing {} in {}",
                self.store.kind.resource.plural, self.cluster
            )))?;
            for item in page.items {
                let value = serde_json::to_value(&item)
                    .map_err(|e| AgentError::Internal(format!("cannot encode a {}: {e}", self.kind())))?;
                objects.push(value);
            }
            if version.is_none() {
                version = page.metadata.resource_version.clone();
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        let version = version.filter(|v| !v.is_empty()).ok_or_else(|| {
            AgentError::Internal(format!("the hub's {} list in {} has no resourceVersion", self.kind(), self.cluster))
        })?;
        let count = objects.len();
        self.store.replace_all(objects, version.parse().ok());
        self.store.set_connected(true);
        tracing::debug!(cluster = %self.cluster, kind = %self.kind(), count, resource_version = %version, "listed");
        Ok(version)
    }

    /// Watches from `rv`, keeping it current; returns why the watch ended.
    async fn watch(&mut self, rv: &mut String) -> Ended {
        let params = WatchParams::default().timeout(WATCH_TIMEOUT_SECS);
        let stream = match self.api().watch(&params, rv).await {
            Ok(stream) => stream,
            Err(e) if api_code(&e) == Some(410) => return Ended::Relist,
            Err(e) => return Ended::Failed(api_message(&e)),
        };
        self.store.set_connected(true);
        tokio::pin!(stream);
        loop {
            tokio::select! {
                event = tokio::time::timeout(WATCH_IDLE, stream.next()) => match event {
                    // A connection that went silent (a network path that dropped without a
                    // reset) would otherwise hang until the read timeout: start over.
                    Err(_) => {
                        tracing::debug!(cluster = %self.cluster, kind = %self.kind(), idle = ?WATCH_IDLE, "the watch went quiet; resuming");
                        return Ended::Resume;
                    }
                    Ok(None) => return Ended::Resume,
                    Ok(Some(Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)))) => {
                        if let Some(version) = object.metadata.resource_version.clone() {
                            *rv = version;
                        }
                        match serde_json::to_value(&object) {
                            Ok(work) => self.store.upsert(work),
                            Err(e) => tracing::warn!(kind = %self.kind(), error = %e, "cannot encode an object"),
                        }
                    }
                    Ok(Some(Ok(WatchEvent::Deleted(object)))) => {
                        if let Some(version) = object.metadata.resource_version.clone() {
                            *rv = version;
                        }
                        if let Some(name) = &object.metadata.name {
                            let gone_at = object.metadata.resource_version.as_deref().and_then(|v| v.parse().ok());
                            self.store.remove(name, gone_at);
                        }
                    }
                    Ok(Some(Ok(WatchEvent::Bookmark(bookmark)))) => *rv = bookmark.metadata.resource_version,
                    Ok(Some(Ok(WatchEvent::Error(status)))) if status.code == 410 => return Ended::Relist,
                    Ok(Some(Ok(WatchEvent::Error(status)))) => return Ended::Failed(status.message),
                    Ok(Some(Err(e))) => return Ended::Failed(api_message(&e)),
                },
                () = self.hub.changed() => {
                    tracing::debug!(cluster = %self.cluster, kind = %self.kind(), "new hub client; restarting the watch");
                    return Ended::Resume;
                }
                _ = self.shutdown.changed() => return Ended::Shutdown,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn work(name: &str, rv: &str, spec: Value) -> Value {
        json!({"metadata": {"name": name, "resourceVersion": rv, "generation": 1}, "spec": spec})
    }

    #[test]
    fn keeps_newest_versions_on_disk_and_queues_only_real_changes() {
        let dir = tempfile::tempdir().unwrap();
        let queue = WorkQueue::new();
        let store = HubStore::load(dir.path(), queue.clone(), WatchedKind::manifest_works()).unwrap();
        store.upsert(work("w1", "5", json!({"a": 1})));
        assert_eq!(queue.len(), 1);
        // Status-only change: stored, not queued again.
        let mut with_status = work("w1", "6", json!({"a": 1}));
        with_status["status"] = json!({"conditions": []});
        store.upsert(with_status.clone());
        assert_eq!(queue.len(), 1);
        assert_eq!(store.get("w1").unwrap()["status"], json!({"conditions": []}));
        // An older version is ignored.
        store.upsert(work("w1", "4", json!({"a": 0})));
        assert_eq!(store.get("w1").unwrap()["metadata"]["resourceVersion"], "6");

        let reloaded = HubStore::load(dir.path(), WorkQueue::new(), WatchedKind::manifest_works()).unwrap();
        assert_eq!(*reloaded.get("w1").unwrap(), with_status);
        assert!(!reloaded.synced());

        store.replace_all(vec![work("w2", "7", json!({}))], Some(8));
        assert!(store.get("w1").is_none());
        assert!(store.synced());
        assert!(!dir.path().join("w1.json").exists());
        assert!(dir.path().join("w2.json").exists());
        assert_eq!(
            HubStore::load(dir.path(), WorkQueue::new(), WatchedKind::manifest_works()).unwrap().names(),
            ["w2"]
        );

        // A late copy from before the removal does not resurrect it; a recreation does.
        store.upsert(work("w1", "7", json!({"a": 1})));
        assert!(store.get("w1").is_none());
        store.remove("w2", Some(9));
        store.upsert(work("w2", "9", json!({})));
        assert!(store.get("w2").is_none());
        store.upsert(work("w2", "10", json!({"new": true})));
        assert_eq!(store.get("w2").unwrap()["spec"], json!({"new": true}));
    }

    #[test]
    fn unsafe_names_never_reach_the_disk() {
        for name in ["", "..", ".hidden", "a/b", "UPPER"] {
            assert!(!valid_name(name), "{name}");
        }
        assert!(valid_name("web-1.example"));
    }
}
