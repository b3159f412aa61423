//! Garbage collection and namespace lifecycle, as Kubernetes' controllers do them:
//! dependents whose owners are all gone are deleted (background cascade), `orphan`
//! and `foregroundDeletion` finalizers are carried out, and a terminating Namespace
//! is emptied before it goes. Level-triggered: a full scan on start and on every
//! resync, then store events mark what needs another look; safe to restart anytime.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_store::{EventKind, WatchItem};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::objects::{self, REGISTRY_PREFIX, meta};
use crate::registry::Resource;
use crate::storage::{DeleteOptions, FINALIZER_FOREGROUND, FINALIZER_ORPHAN, Propagation, Storage, WriteOptions};

const MANAGER: &str = "flotilla-garbage-collector";
const NAMESPACE_FINALIZER: &str = "kubernetes";

#[derive(Debug, Clone)]
struct Entry {
    resource: Arc<Resource>,
    namespace: Option<String>,
    name: String,
    uid: String,
    owners: Vec<String>,
    deleting: bool,
    finalizers: Vec<String>,
}

#[derive(Default)]
struct Index {
    by_key: HashMap<String, Entry>,
    key_of_uid: HashMap<String, String>,
    dependents: HashMap<String, HashSet<String>>,
    by_namespace: HashMap<String, HashSet<String>>,
}

impl Index {
    fn insert(&mut self, key: String, entry: Entry) {
        self.remove(&key);
        self.key_of_uid.insert(entry.uid.clone(), key.clone());
        for owner in &entry.owners {
            self.dependents.entry(owner.clone()).or_default().insert(key.clone());
        }
        if let Some(ns) = &entry.namespace {
            self.by_namespace.entry(ns.clone()).or_default().insert(key.clone());
        }
        self.by_key.insert(key, entry);
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.by_key.remove(key)?;
        if self.key_of_uid.get(&entry.uid).is_some_and(|k| k == key) {
            self.key_of_uid.remove(&entry.uid);
        }
        for owner in &entry.owners {
            if let Some(set) = self.dependents.get_mut(owner) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(owner);
                }
            }
        }
        if let Some(ns) = &entry.namespace
            && let Some(set) = self.by_namespace.get_mut(ns)
        {
            set.remove(key);
        }
        Some(entry)
    }
}

fn is_namespace(res: &Resource) -> bool {
    res.def.group.is_empty() && res.def.kind == "Namespace"
}

/// Runs until `shutdown` fires. Errors are logged and retried; nothing here panics.
pub async fn run(storage: Storage, resync: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match run_once(&storage, resync, &mut shutdown).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %e, "garbage collector restarting after error");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

async fn run_once(
    storage: &Storage,
    resync: Duration,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), ApiError> {
    let (mut index, revision) = scan(storage).await?;
    let mut dirty: BTreeSet<String> = index.by_key.keys().cloned().collect();
    let mut events =
        storage.store.watch(REGISTRY_PREFIX, revision, Duration::from_secs(30)).await.map_err(objects::store_error)?;
    let resync_at = tokio::time::Instant::now() + resync;
    loop {
        let mut retry = BTreeSet::new();
        for key in std::mem::take(&mut dirty) {
            if let Err(e) = process(storage, &index, &key).await {
                tracing::debug!(%key, error = %e, "garbage collection step will be retried");
                retry.insert(key);
            }
        }
        let wait = if retry.is_empty() { Duration::from_secs(3600) } else { Duration::from_millis(500) };
        dirty = retry;
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            _ = tokio::time::sleep_until(resync_at) => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
            item = events.next() => {
                let Some(item) = item else { return Ok(()) };
                let mut batch = vec![item];
                // Take whatever else is already queued, then act once.
                while let Some(Some(more)) = futures::FutureExt::now_or_never(events.next()) {
                    batch.push(more);
                }
                for item in batch {
                    match item.map_err(objects::store_error)? {
                        WatchItem::Progress(_) => {}
                        WatchItem::Event(ev) => apply_event(storage, &mut index, &mut dirty, ev),
                    }
                }
            }
        }
    }
}

fn apply_event(storage: &Storage, index: &mut Index, dirty: &mut BTreeSet<String>, ev: flotilla_store::WatchEvent) {
    let key = ev.kv.key.clone();
    match ev.kind {
        EventKind::Put => {
            if let Some(entry) = entry_of(storage, &ev.kv) {
                let uid = entry.uid.clone();
                let namespace = entry.namespace.clone();
                index.insert(key.clone(), entry);
                dirty.insert(key.clone());
                // A new object may be the owner that dangling dependents were waiting for.
                if let Some(deps) = index.dependents.get(&uid) {
                    dirty.extend(deps.iter().cloned());
                }
                mark_namespace(index, dirty, namespace.as_deref());
            }
        }
        EventKind::Delete => {
            if let Some(entry) = index.remove(&key) {
                if let Some(deps) = index.dependents.get(&entry.uid) {
                    dirty.extend(deps.iter().cloned());
                }
                for owner in &entry.owners {
                    if let Some(owner_key) = index.key_of_uid.get(owner) {
                        dirty.insert(owner_key.clone());
                    }
                }
                mark_namespace(index, dirty, entry.namespace.as_deref());
            }
        }
    }
}

fn mark_namespace(index: &Index, dirty: &mut BTreeSet<String>, namespace: Option<&str>) {
    if let Some(ns) = namespace {
        let key = objects::namespace_key(ns);
        if index.by_key.get(&key).is_some_and(|e| e.deleting) {
            dirty.insert(key);
        }
    }
}

fn entry_of(storage: &Storage, kv: &flotilla_store::KeyValue) -> Option<Entry> {
    let resource = resource_for_key(storage, &kv.key)?;
    let obj = objects::decode(&resource, kv).ok()?;
    Some(Entry {
        namespace: meta::namespace(&obj).map(str::to_string),
        name: meta::name(&obj).to_string(),
        uid: meta::uid(&obj).to_string(),
        owners: meta::owner_uids(&obj),
        deleting: meta::deletion_timestamp(&obj).is_some(),
        finalizers: meta::finalizers(&obj),
        resource,
    })
}

/// The served resource stored under a key (`/registry/GROUP/PLURAL/...`).
fn resource_for_key(storage: &Storage, key: &str) -> Option<Arc<Resource>> {
    let rest = key.strip_prefix(REGISTRY_PREFIX)?;
    let mut parts = rest.splitn(3, '/');
    let group = parts.next()?;
    let plural = parts.next()?;
    let group = if group == "core" { "" } else { group };
    storage.registry.by_storage(group, plural)
}

async fn scan(storage: &Storage) -> Result<(Index, i64), ApiError> {
    let mut index = Index::default();
    let mut revision = storage.store.current_revision().await.map_err(objects::store_error)?;
    for resource in storage.registry.storage_resources() {
        let prefix = objects::kind_prefix(&resource);
        let mut after: Option<String> = None;
        loop {
            let range =
                storage.store.range(&prefix, after.as_deref(), Some(2048)).await.map_err(objects::store_error)?;
            revision = revision.max(range.revision);
            for kv in &range.kvs {
                if let Some(entry) = entry_of(storage, kv) {
                    index.insert(kv.key.clone(), entry);
                }
            }
            match range.kvs.last() {
                Some(last) if range.more => after = Some(last.key.clone()),
                _ => break,
            }
        }
    }
    // Watch from the lowest revision the scan may have missed changes after.
    let start = storage.store.current_revision().await.map_err(objects::store_error)?.min(revision);
    Ok((index, start))
}

async fn process(storage: &Storage, index: &Index, key: &str) -> Result<(), ApiError> {
    let Some(entry) = index.by_key.get(key) else { return Ok(()) };
    // Dependents whose owners are gone.
    if !entry.owners.is_empty() && !entry.deleting {
        let missing: Vec<&String> = entry.owners.iter().filter(|o| !index.key_of_uid.contains_key(*o)).collect();
        if missing.len() == entry.owners.len() {
            tracing::info!(kind = %entry.resource.def.kind, namespace = ?entry.namespace, name = %entry.name, "deleting object whose owners are gone");
            return ignore_not_found(delete(storage, entry, Propagation::Background).await);
        }
        if !missing.is_empty() {
            let missing: HashSet<String> = missing.into_iter().cloned().collect();
            return ignore_not_found(remove_owner_refs(storage, entry, &missing).await);
        }
    }
    if !entry.deleting {
        return Ok(());
    }
    let dependents: Vec<&Entry> = index
        .dependents
        .get(&entry.uid)
        .map(|keys| keys.iter().filter_map(|k| index.by_key.get(k)).collect())
        .unwrap_or_default();
    if entry.finalizers.iter().any(|f| f == FINALIZER_ORPHAN) {
        let owner: HashSet<String> = [entry.uid.clone()].into();
        for dependent in &dependents {
            ignore_not_found(remove_owner_refs(storage, dependent, &owner).await)?;
        }
        return ignore_not_found(remove_finalizer(storage, entry, FINALIZER_ORPHAN).await);
    }
    if entry.finalizers.iter().any(|f| f == FINALIZER_FOREGROUND) {
        if dependents.is_empty() {
            return ignore_not_found(remove_finalizer(storage, entry, FINALIZER_FOREGROUND).await);
        }
        for dependent in dependents.iter().filter(|d| !d.deleting) {
            ignore_not_found(delete(storage, dependent, Propagation::Foreground).await)?;
        }
        return Ok(());
    }
    if is_namespace(&entry.resource) {
        let contents: Vec<&Entry> = index
            .by_namespace
            .get(&entry.name)
            .map(|keys| keys.iter().filter_map(|k| index.by_key.get(k)).collect())
            .unwrap_or_default();
        if contents.is_empty() {
            return ignore_not_found(finalize_namespace(storage, entry).await);
        }
        for object in contents.iter().filter(|o| !o.deleting) {
            ignore_not_found(delete(storage, object, Propagation::Background).await)?;
        }
    }
    Ok(())
}

fn ignore_not_found(result: Result<(), ApiError>) -> Result<(), ApiError> {
    match result {
        Err(e) if e.code == 404 => Ok(()),
        other => other,
    }
}

async fn delete(storage: &Storage, entry: &Entry, propagation: Propagation) -> Result<(), ApiError> {
    let opts = DeleteOptions {
        propagation: Some(propagation),
        precondition_uid: Some(entry.uid.clone()),
        ..Default::default()
    };
    storage.delete(&entry.resource, entry.namespace.as_deref(), &entry.name, &opts).await.map(|_| ())
}

/// Read-modify-write with a resourceVersion precondition (a lost race is retried).
async fn update_with(storage: &Storage, entry: &Entry, change: impl Fn(&mut Value) -> bool) -> Result<(), ApiError> {
    let mut obj = storage.get(&entry.resource, entry.namespace.as_deref(), &entry.name).await?;
    if meta::uid(&obj) != entry.uid || !change(&mut obj) {
        return Ok(());
    }
    let opts = WriteOptions::manager(MANAGER);
    storage.update(&entry.resource, entry.namespace.as_deref(), &entry.name, obj, None, &opts).await.map(|_| ())
}

async fn remove_owner_refs(storage: &Storage, entry: &Entry, owners: &HashSet<String>) -> Result<(), ApiError> {
    update_with(storage, entry, |obj| {
        let Some(refs) = obj.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) else {
            return false;
        };
        let before = refs.len();
        refs.retain(|r| r.get("uid").and_then(Value::as_str).is_none_or(|uid| !owners.contains(uid)));
        refs.len() != before
    })
    .await
}

async fn remove_finalizer(storage: &Storage, entry: &Entry, finalizer: &str) -> Result<(), ApiError> {
    update_with(storage, entry, |obj| {
        let finalizers = meta::finalizers(obj);
        if !finalizers.iter().any(|f| f == finalizer) {
            return false;
        }
        let kept: Vec<String> = finalizers.into_iter().filter(|f| f != finalizer).collect();
        meta::set(obj, "finalizers", json!(kept));
        true
    })
    .await
}

/// Clears the Namespace's `kubernetes` finalizer (the `/finalize` step) so it can go.
async fn finalize_namespace(storage: &Storage, entry: &Entry) -> Result<(), ApiError> {
    let mut obj = storage.get(&entry.resource, None, &entry.name).await?;
    let Some(finalizers) = obj.pointer_mut("/spec/finalizers").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let before = finalizers.len();
    finalizers.retain(|f| f.as_str() != Some(NAMESPACE_FINALIZER));
    if finalizers.len() == before {
        return Ok(());
    }
    let opts = WriteOptions::manager(MANAGER);
    storage.update(&entry.resource, None, &entry.name, obj, None, &opts).await.map(|_| ())
}
