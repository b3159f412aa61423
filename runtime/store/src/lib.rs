//! The hub's store: etcd's model (a revisioned key space, transactions that compare
//! on revisions, watch from a revision, compaction) behind one trait, with an
//! embedded redb backend and an etcd backend for several hub replicas. Every acknowledged
//! write is durable.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub mod conformance;
pub mod etcd_leader;
pub mod etcd_store;
pub mod etcd_testing;
pub mod redb_store;

pub use etcd_leader::{Election, ElectionOptions};
pub use etcd_store::{EtcdStore, EtcdStoreOptions};
pub use redb_store::{RedbStore, RedbStoreOptions};

/// A revision of the whole key space. Every successful write transaction that changes
/// something gets the next revision; revisions start at 1 and never repeat.
pub type Revision = i64;

/// One key at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision at which the key was (last) created.
    pub create_revision: Revision,
    /// Revision of the last change; for a deletion event, the revision of the deletion.
    pub mod_revision: Revision,
    /// Number of writes since the key was created (1 on creation).
    pub version: i64,
}

/// A condition of a transaction, checked against the state before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's `mod_revision` equals this; 0 means "the key does not exist".
    ModRevision(String, Revision),
    /// The key exists (any revision).
    Exists(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Bytes,
    },
    /// Deleting a missing key is not an error; it simply records nothing.
    Delete {
        key: String,
    },
}

/// All compares true: apply `ops` atomically at one new revision. Otherwise nothing changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    /// Applied. `revision` is the new revision, or the current one if `ops` changed nothing.
    Succeeded { revision: Revision },
    /// A compare failed; `current` holds the present state of every key named in the
    /// compares (None where absent), so callers can tell "not found" from "conflict".
    Failed { revision: Revision, current: Vec<(String, Option<KeyValue>)> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeResult {
    /// Keys in ascending byte order.
    pub kvs: Vec<KeyValue>,
    /// More keys match beyond `limit`.
    pub more: bool,
    /// The store revision the range was read at.
    pub revision: Revision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change to one key. For `Delete`, `kv.value` is the value the key had before it was
/// deleted and `kv.mod_revision` is the revision of the deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// For `Put` of an existing key, the previous version (None on creation).
    pub prev: Option<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchItem {
    Event(WatchEvent),
    /// No event for this watch's prefix exists up to and including this revision that
    /// was not already delivered. Sent at most once per `progress_interval` while idle.
    Progress(Revision),
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchItem, StoreError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The requested revision is older than the compaction point.
    #[error("revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted { requested: Revision, compacted: Revision },
    /// The requested revision has not happened yet.
    #[error("revision {requested} is in the future (current is {current})")]
    FutureRevision { requested: Revision, current: Revision },
    /// A watcher fell too far behind and the events it missed are no longer available.
    #[error("watch fell behind and was closed: {0}")]
    WatchLagged(String),
    #[error("store is closed")]
    Closed,
    #[error("storage error: {0}")]
    Backend(String),
    #[error("corrupt record under key {key:?}: {detail}")]
    Corrupt { key: String, detail: String },
}

/// The store contract shared by the embedded (redb) and etcd backends.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Keys starting with `prefix`, strictly after `start_after` when given, at most
    /// `limit` when given, in ascending order.
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<RangeResult, StoreError>;

    /// Number of keys under `prefix`.
    async fn count(&self, prefix: &str) -> Result<u64, StoreError>;

    /// Atomic compare-and-apply. Durable when it returns `Ok`.
    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError>;

    /// Events for keys under `prefix` with revision strictly greater than `after`,
    /// in revision order, then live events. `Compacted` if `after` is older than the
    /// compaction point; `FutureRevision` if it is newer than the current revision.
    async fn watch(
        &self,
        prefix: &str,
        after: Revision,
        progress_interval: std::time::Duration,
    ) -> Result<WatchStream, StoreError>;

    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// The compaction point: history at and below it is gone, so `watch` accepts
    /// `after >= compacted_revision()`. 0 when nothing was compacted.
    async fn compacted_revision(&self) -> Result<Revision, StoreError>;

    /// Forget history at and below `revision` (current values stay).
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
}
