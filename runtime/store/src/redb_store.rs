//! Embedded store backend on [redb](https://docs.rs/redb).
//!
//! # Layout
//! One redb file with three tables:
//! - `kv`: key bytes -> record `[format u8][create i64][mod i64][version i64][value..]`;
//! - `log`: revision -> every event of that revision, in op order (see the `codec` module). A Put
//!   carries the previous record when the key existed, a Delete carries the deleted record,
//!   so watch events have `prev` and deletions carry their last value;
//! - `meta`: `format`, `current_revision`, `compacted_revision`.
//!
//! Keys are stored as raw bytes (not redb's `&str`, whose decoder panics on invalid UTF-8)
//! so that a damaged file yields [`StoreError::Corrupt`] instead of a panic.
//!
//! # Writes: group commit
//! A dedicated writer thread owns every write transaction. It drains whatever is queued
//! (bounded by [`RedbStoreOptions::max_batch_txns`] / [`RedbStoreOptions::max_batch_bytes`]),
//! evaluates each txn's compares against the state left by the previous txns of the batch,
//! gives the successful ones consecutive revisions, commits one fsynced redb transaction and
//! only then answers the callers and publishes the events. Many concurrent writers thus
//! share one fsync while each acknowledged write is durable. It is an OS thread, not a
//! tokio task, because a commit blocks on fsync.
//!
//! # Reads
//! `get`/`range`/`count` open a redb read transaction on the blocking pool; redb's MVCC lets
//! them run concurrently with the writer.
//!
//! # Watch
//! Every committed batch is broadcast once (one `tokio::sync::broadcast` per store). A
//! watcher subscribes first, then replays the log in chunks from its start revision, then
//! consumes live batches, skipping revisions it already has. A lagging watcher goes back
//! to the log from the last revision it processed, so nothing is lost silently.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::{
    Compare, EventKind, KeyValue, Op, RangeResult, Revision, Store, StoreError, Txn, TxnResult, WatchEvent, WatchItem,
    WatchStream,
};

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");

const META_FORMAT: &[u8] = b"format";
const META_CURRENT: &[u8] = b"current_revision";
const META_COMPACTED: &[u8] = b"compacted_revision";
/// On-disk format version; bump on incompatible changes to the record or log encoding.
const FORMAT_VERSION: i64 = 1;

/// File name used when [`RedbStore::open`] is given a directory.
pub const DEFAULT_FILE_NAME: &str = "flotilla.redb";

/// Tuning knobs of [`RedbStore`]. `Default` gives values suited to a hub.
#[derive(Debug, Clone)]
pub struct RedbStoreOptions {
    /// Most transactions committed together by one fsync. Default 512.
    pub max_batch_txns: usize,
    /// Stop adding transactions to a batch once their keys and values exceed this many
    /// bytes. Default 4 MiB.
    pub max_batch_bytes: usize,
    /// Transactions waiting for the writer before `txn` callers wait for room
    /// (backpressure). Default 4096.
    pub queue_depth: usize,
    /// Committed batches the live-event broadcast keeps for slow watchers; a watcher that
    /// falls further behind catches up from the log. Default 1024.
    pub watch_buffer: usize,
    /// Most revisions a watcher reads from the log per read transaction while replaying.
    /// Default 1024.
    pub watch_replay_chunk: usize,
    /// redb page cache in bytes. Default 256 MiB.
    pub cache_size: usize,
    /// redb "quick repair": commits also save the allocator state, so reopening after a
    /// crash does not walk the whole file. Costs some time per commit. Default false.
    pub quick_repair: bool,
}

impl Default for RedbStoreOptions {
    fn default() -> Self {
        Self {
            max_batch_txns: 512,
            max_batch_bytes: 4 << 20,
            queue_depth: 4096,
            watch_buffer: 1024,
            watch_replay_chunk: 1024,
            cache_size: 256 << 20,
            quick_repair: false,
        }
    }
}

/// The embedded, durable [`Store`] on redb. Open with [`RedbStore::open`]; use as
/// `Arc<dyn Store>`. Dropping the last handle stops the writer thread (after it finished
/// the requests already queued) and closes the file, so the same path can be reopened;
/// live watch streams then yield [`StoreError::Closed`] and end.
///
/// Backend specifics, within the trait's contract:
/// - events carry `prev`: for a Put of an existing key the previous record, for a Delete
///   the deleted record (its original `mod_revision`); a Delete event's `kv` keeps the
///   deleted key's `create_revision` and last `version`;
/// - a `progress_interval` of zero disables progress items;
/// - a `txn` future dropped after its request was queued may still be applied (as with
///   etcd, the outcome of a cancelled request is unknown);
/// - history grows until [`Store::compact`] is called; nothing compacts automatically.
pub struct RedbStore {
    shared: Arc<Shared>,
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    options: RedbStoreOptions,
}

/// State shared by the store handle, the writer thread, readers and watchers.
struct Shared {
    db: Database,
    path: PathBuf,
    /// Last committed revision; updated by the writer after the commit, before any reply
    /// or broadcast, so a caller never sees a revision newer than this.
    current: AtomicI64,
    compacted: AtomicI64,
    events: broadcast::Sender<Arc<Vec<Committed>>>,
}

/// The events of one committed revision, as broadcast to watchers.
#[derive(Debug)]
struct Committed {
    revision: Revision,
    events: Vec<WatchEvent>,
}

enum Request {
    Txn { txn: Txn, reply: oneshot::Sender<Result<TxnResult, StoreError>> },
    Compact { revision: Revision, reply: oneshot::Sender<Result<(), StoreError>> },
}

impl Request {
    fn weight(&self) -> usize {
        match self {
            Request::Txn { txn, .. } => {
                let ops: usize = txn
                    .ops
                    .iter()
                    .map(|op| match op {
                        Op::Put { key, value } => key.len() + value.len(),
                        Op::Delete { key } => key.len(),
                    })
                    .sum();
                ops + 64
            }
            Request::Compact { .. } => 64,
        }
    }
}

/// Converts any redb error into [`StoreError::Backend`].
trait BackendExt<T> {
    fn be(self) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> BackendExt<T> for Result<T, E> {
    fn be(self) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Backend(e.into().to_string()))
    }
}

impl RedbStore {
    /// Opens (creating if needed) the store at `path`. If `path` is an existing directory
    /// the file is `path/flotilla.redb`; otherwise `path` is the file (parent directories
    /// are created). Starts the writer thread; does not need a tokio runtime, but the
    /// [`Store`] methods must be called from one.
    pub fn open(path: &Path, options: RedbStoreOptions) -> Result<Arc<RedbStore>, StoreError> {
        let file = if path.is_dir() { path.join(DEFAULT_FILE_NAME) } else { path.to_path_buf() };
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Backend(format!("creating {}: {e}", parent.display())))?;
        }
        let started = Instant::now();
        let mut builder = Database::builder();
        builder.set_cache_size(options.cache_size);
        let db = builder.create(&file).map_err(|e| StoreError::Backend(format!("opening {}: {e}", file.display())))?;
        let (current, compacted) = init_tables(&db)?;
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let shared = Arc::new(Shared {
            db,
            path: file,
            current: AtomicI64::new(current),
            compacted: AtomicI64::new(compacted),
            events,
        });
        let (tx, rx) = mpsc::channel(options.queue_depth.max(1));
        let writer = Writer {
            shared: shared.clone(),
            requests: rx,
            current,
            compacted,
            max_batch_txns: options.max_batch_txns.max(1),
            max_batch_bytes: options.max_batch_bytes.max(1),
            quick_repair: options.quick_repair,
            scratch: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("flotilla-store-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Backend(format!("spawning writer thread: {e}")))?;
        info!(
            path = %shared.path.display(),
            revision = current,
            compacted,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store opened"
        );
        Ok(Arc::new(RedbStore { shared, requests: Some(tx), writer: Some(handle), options }))
    }

    /// The database file in use.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Runs a read on the blocking pool so redb I/O never stalls the async runtime.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }

    async fn submit(&self, request: Request) -> Result<(), StoreError> {
        let sender = self.requests.as_ref().ok_or(StoreError::Closed)?;
        sender.send(request).await.map_err(|_| StoreError::Closed)
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.shared.path)
            .field("revision", &self.shared.current.load(Ordering::SeqCst))
            .field("compacted", &self.shared.compacted.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Closing the queue makes the writer exit after the batch in hand; joining it
        // releases the file lock before we return, so the path can be reopened at once.
        self.requests.take();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            warn!(path = %self.shared.path.display(), "store writer thread panicked");
        }
        debug!(path = %self.shared.path.display(), "store closed");
    }
}

/// Creates the tables if missing and returns (current, compacted) revisions.
fn init_tables(db: &Database) -> Result<(Revision, Revision), StoreError> {
    let wtx = db.begin_write().be()?;
    let (current, compacted) = {
        let _kv = wtx.open_table(KV).be()?;
        let log = wtx.open_table(LOG).be()?;
        let mut meta = wtx.open_table(META).be()?;
        match read_meta(&meta, META_FORMAT)? {
            None => {
                meta.insert(META_FORMAT, FORMAT_VERSION.to_le_bytes().as_slice()).be()?;
            }
            Some(FORMAT_VERSION) => {}
            Some(other) => {
                return Err(StoreError::Backend(format!(
                    "unsupported store format {other} (this build reads {FORMAT_VERSION})"
                )));
            }
        }
        let current = read_meta(&meta, META_CURRENT)?.unwrap_or(0);
        let compacted = read_meta(&meta, META_COMPACTED)?.unwrap_or(0);
        // The log may never be ahead of the recorded revision: that would mean a torn
        // update, which redb's atomic commits exclude unless the file is damaged.
        if let Some((last, _)) = log.last().be()? {
            let last = last.value();
            if i64::try_from(last).map_or(true, |l| l > current) {
                return Err(StoreError::Corrupt {
                    key: META_KEY_DISPLAY_CURRENT.into(),
                    detail: format!("log holds revision {last} beyond current revision {current}"),
                });
            }
        }
        if compacted > current || current < 0 || compacted < 0 {
            return Err(StoreError::Corrupt {
                key: META_KEY_DISPLAY_CURRENT.into(),
                detail: format!("compacted revision {compacted} vs current {current}"),
            });
        }
        (current, compacted)
    };
    wtx.commit().be()?;
    Ok((current, compacted))
}

const META_KEY_DISPLAY_CURRENT: &str = "<meta current_revision>";

fn read_meta(meta: &impl ReadableTable<&'static [u8], &'static [u8]>, key: &[u8]) -> Result<Option<i64>, StoreError> {
    let Some(guard) = meta.get(key).be()? else {
        return Ok(None);
    };
    let bytes: [u8; 8] = guard.value().try_into().map_err(|_| StoreError::Corrupt {
        key: format!("<meta {}>", String::from_utf8_lossy(key)),
        detail: format!("expected 8 bytes, found {}", guard.value().len()),
    })?;
    Ok(Some(i64::from_le_bytes(bytes)))
}

#[async_trait]
impl Store for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_owned();
        self.read(move |shared| {
            let rtx = shared.db.begin_read().be()?;
            let kv = rtx.open_table(KV).be()?;
            let Some(guard) = kv.get(key.as_bytes()).be()? else {
                return Ok(None);
            };
            let record = codec::decode_record(key.as_bytes(), guard.value())?;
            Ok(Some(record.into_kv(key)))
        })
        .await
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<RangeResult, StoreError> {
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        self.read(move |shared| range_blocking(shared, &prefix, start_after.as_deref(), limit)).await
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        let prefix = prefix.to_owned();
        self.read(move |shared| {
            let rtx = shared.db.begin_read().be()?;
            let kv = rtx.open_table(KV).be()?;
            if prefix.is_empty() {
                return kv.len().be();
            }
            let mut n = 0u64;
            for entry in kv.range::<&[u8]>(prefix.as_bytes()..).be()? {
                let (k, _) = entry.be()?;
                if !k.value().starts_with(prefix.as_bytes()) {
                    break;
                }
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Request::Txn { txn, reply }).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn watch(
        &self,
        prefix: &str,
        after: Revision,
        progress_interval: Duration,
    ) -> Result<WatchStream, StoreError> {
        // Subscribe before looking at the revisions: every batch committed after this
        // point reaches the receiver, every earlier one is in the log.
        let live = self.shared.events.subscribe();
        let compacted = self.shared.compacted.load(Ordering::SeqCst);
        let current = self.shared.current.load(Ordering::SeqCst);
        if after < compacted {
            return Err(StoreError::Compacted { requested: after, compacted });
        }
        if after > current {
            return Err(StoreError::FutureRevision { requested: after, current });
        }
        debug!(prefix, after, current, "watch started");
        let watcher = Watcher {
            shared: Arc::downgrade(&self.shared),
            prefix: prefix.to_owned(),
            live,
            pending: VecDeque::new(),
            start: after,
            processed: after,
            // Nothing committed after `current` can be missing from the receiver (the
            // atomic is stored before the broadcast), so a watch from the present skips
            // the log read entirely.
            replaying: after < current,
            reported: after,
            progress_interval,
            last_activity: Instant::now(),
            chunk_revisions: self.options.watch_replay_chunk.max(1),
            finished: false,
        };
        let stream = futures::stream::unfold(watcher, |mut w| async move {
            let item = w.next_item().await?;
            Some((item, w))
        });
        Ok(Box::pin(stream))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.current.load(Ordering::SeqCst))
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.compacted.load(Ordering::SeqCst))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Request::Compact { revision, reply }).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn range_blocking(
    shared: &Shared,
    prefix: &str,
    start_after: Option<&str>,
    limit: Option<usize>,
) -> Result<RangeResult, StoreError> {
    let rtx = shared.db.begin_read().be()?;
    let kv = rtx.open_table(KV).be()?;
    let meta = rtx.open_table(META).be()?;
    let revision = read_meta(&meta, META_CURRENT)?.unwrap_or(0);
    let prefix_b = prefix.as_bytes();
    let iter = match start_after {
        Some(s) if s >= prefix => {
            kv.range::<&[u8]>((std::ops::Bound::Excluded(s.as_bytes()), std::ops::Bound::Unbounded))
        }
        _ => kv.range::<&[u8]>(prefix_b..),
    }
    .be()?;
    let limit = limit.unwrap_or(usize::MAX);
    let mut kvs = Vec::with_capacity(limit.min(1024));
    let mut more = false;
    for entry in iter {
        let (k, v) = entry.be()?;
        let key = k.value();
        if !key.starts_with(prefix_b) {
            break;
        }
        if kvs.len() >= limit {
            more = true;
            break;
        }
        let record = codec::decode_record(key, v.value())?;
        let key = codec::key_string(key)?;
        kvs.push(record.into_kv(key));
    }
    Ok(RangeResult { kvs, more, revision })
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

struct Writer {
    shared: Arc<Shared>,
    requests: mpsc::Receiver<Request>,
    /// Revisions as of the last successful commit (the writer is their only mutator).
    current: Revision,
    compacted: Revision,
    max_batch_txns: usize,
    max_batch_bytes: usize,
    quick_repair: bool,
    scratch: Vec<u8>,
}

/// What a request resolved to inside a (not yet committed) batch.
enum Outcome {
    Txn(TxnResult),
    Compact(Result<(), StoreError>),
}

/// A batch applied to an uncommitted redb transaction.
struct Applied {
    outcomes: Vec<Outcome>,
    committed: Vec<Committed>,
    current: Revision,
    compacted: Revision,
}

impl Writer {
    fn run(mut self) {
        debug!("store writer started");
        let mut batch = Vec::new();
        while let Some(first) = self.requests.blocking_recv() {
            let mut bytes = first.weight();
            batch.push(first);
            while batch.len() < self.max_batch_txns && bytes < self.max_batch_bytes {
                match self.requests.try_recv() {
                    Ok(next) => {
                        bytes += next.weight();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            self.handle(std::mem::take(&mut batch));
        }
        debug!("store writer stopped");
    }

    fn handle(&mut self, batch: Vec<Request>) {
        let started = Instant::now();
        match self.apply(&batch) {
            Ok(applied) => {
                debug!(
                    requests = batch.len(),
                    revisions = applied.committed.len(),
                    revision = applied.current,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "batch committed"
                );
                self.finish(batch, applied);
            }
            Err(error) if batch.len() > 1 => {
                // Retry one by one so a single bad request (e.g. one touching a corrupt
                // record) does not fail the others queued with it.
                warn!(%error, requests = batch.len(), "batch failed; retrying requests one by one");
                for request in batch {
                    let single = vec![request];
                    match self.apply(&single) {
                        Ok(applied) => self.finish(single, applied),
                        Err(error) => fail(single, &error),
                    }
                }
            }
            Err(error) => {
                warn!(%error, "write failed");
                fail(batch, &error);
            }
        }
    }

    /// Applies the batch in one redb write transaction and commits it (fsync). Nothing is
    /// visible to anyone before this returns `Ok`.
    fn apply(&mut self, batch: &[Request]) -> Result<Applied, StoreError> {
        let mut wtx = self.shared.db.begin_write().be()?;
        wtx.set_durability(Durability::Immediate).be()?;
        wtx.set_quick_repair(self.quick_repair);
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut committed = Vec::new();
        let mut current = self.current;
        let mut compacted = self.compacted;
        {
            let mut kv = wtx.open_table(KV).be()?;
            let mut log = wtx.open_table(LOG).be()?;
            let mut meta = wtx.open_table(META).be()?;
            for request in batch {
                match request {
                    Request::Txn { txn, .. } => {
                        let (result, events) = apply_txn(&mut kv, &mut log, current, txn, &mut self.scratch)?;
                        if let Some(c) = events {
                            current = c.revision;
                            committed.push(c);
                        }
                        outcomes.push(Outcome::Txn(result));
                    }
                    Request::Compact { revision, .. } => {
                        let revision = *revision;
                        let outcome = if revision > current {
                            Err(StoreError::FutureRevision { requested: revision, current })
                        } else if revision <= compacted {
                            Ok(())
                        } else {
                            let upto = u64::try_from(revision).unwrap_or(0);
                            log.retain_in(..=upto, |_, _| false).be()?;
                            compacted = revision;
                            Ok(())
                        };
                        outcomes.push(Outcome::Compact(outcome));
                    }
                }
            }
            if current != self.current {
                meta.insert(META_CURRENT, current.to_le_bytes().as_slice()).be()?;
            }
            if compacted != self.compacted {
                meta.insert(META_COMPACTED, compacted.to_le_bytes().as_slice()).be()?;
            }
        }
        if current == self.current && compacted == self.compacted {
            // Only failed compares and no-ops: nothing to make durable, skip the fsync.
            wtx.abort().be()?;
        } else {
            wtx.commit().be()?;
        }
        Ok(Applied { outcomes, committed, current, compacted })
    }

    fn finish(&mut self, batch: Vec<Request>, applied: Applied) {
        if applied.compacted != self.compacted {
            info!(compacted = applied.compacted, previous = self.compacted, "store history compacted");
        }
        self.current = applied.current;
        self.compacted = applied.compacted;
        // Publish the revisions before answering: a caller that sees revision N in a reply
        // must find current_revision() >= N.
        self.shared.current.store(applied.current, Ordering::SeqCst);
        self.shared.compacted.store(applied.compacted, Ordering::SeqCst);
        for (request, outcome) in batch.into_iter().zip(applied.outcomes) {
            match (request, outcome) {
                (Request::Txn { reply, .. }, Outcome::Txn(result)) => {
                    let _ = reply.send(Ok(result));
                }
                (Request::Compact { reply, .. }, Outcome::Compact(result)) => {
                    let _ = reply.send(result);
                }
                // `apply` pushes exactly one outcome of the request's kind per request.
                (Request::Txn { reply, .. }, Outcome::Compact(_)) => {
                    let _ = reply.send(Err(StoreError::Backend("internal: outcome mismatch".into())));
                }
                (Request::Compact { reply, .. }, Outcome::Txn(_)) => {
                    let _ = reply.send(Err(StoreError::Backend("internal: outcome mismatch".into())));
                }
            }
        }
        if !applied.committed.is_empty() {
            // No receivers is fine: nobody is watching.
            let _ = self.shared.events.send(Arc::new(applied.committed));
        }
    }
}

fn fail(batch: Vec<Request>, error: &StoreError) {
    for request in batch {
        match request {
            Request::Txn { reply, .. } => {
                let _ = reply.send(Err(clone_error(error)));
            }
            Request::Compact { reply, .. } => {
                let _ = reply.send(Err(clone_error(error)));
            }
        }
    }
}

/// `StoreError` is not `Clone` (it is shared API); one failure is reported to many callers.
fn clone_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Compacted { requested, compacted } => {
            StoreError::Compacted { requested: *requested, compacted: *compacted }
        }
        StoreError::FutureRevision { requested, current } => {
            StoreError::FutureRevision { requested: *requested, current: *current }
        }
        StoreError::WatchLagged(m) => StoreError::WatchLagged(m.clone()),
        StoreError::Closed => StoreError::Closed,
        StoreError::Backend(m) => StoreError::Backend(m.clone()),
        StoreError::Corrupt { key, detail } => StoreError::Corrupt { key: key.clone(), detail: detail.clone() },
    }
}

/// Evaluates and applies one txn inside the batch's write transaction. Returns the
/// result and, when it changed something, the events of its new revision.
fn apply_txn(
    kv: &mut redb::Table<&'static [u8], &'static [u8]>,
    log: &mut redb::Table<u64, &'static [u8]>,
    current: Revision,
    txn: &Txn,
    scratch: &mut Vec<u8>,
) -> Result<(TxnResult, Option<Committed>), StoreError> {
    for compare in &txn.compares {
        let holds = match compare {
            Compare::ModRevision(key, want) => {
                let have = match kv.get(key.as_bytes()).be()? {
                    Some(guard) => codec::decode_record(key.as_bytes(), guard.value())?.mod_revision,
                    None => 0,
                };
                have == *want
            }
            Compare::Exists(key) => kv.get(key.as_bytes()).be()?.is_some(),
        };
        if !holds {
            let mut state: Vec<(String, Option<KeyValue>)> = Vec::new();
            for compare in &txn.compares {
                let key = match compare {
                    Compare::ModRevision(key, _) | Compare::Exists(key) => key,
                };
                if state.iter().any(|(k, _)| k == key) {
                    continue;
                }
                let value = match kv.get(key.as_bytes()).be()? {
                    Some(guard) => Some(codec::decode_record(key.as_bytes(), guard.value())?.into_kv(key.clone())),
                    None => None,
                };
                state.push((key.clone(), value));
            }
            return Ok((TxnResult::Failed { revision: current, current: state }, None));
        }
    }

    let revision = current + 1;
    let mut events = Vec::with_capacity(txn.ops.len());
    for op in &txn.ops {
        match op {
            Op::Put { key, value } => {
                let prev = match kv.get(key.as_bytes()).be()? {
                    Some(guard) => Some(codec::decode_record(key.as_bytes(), guard.value())?.into_kv(key.clone())),
                    None => None,
                };
                let (create_revision, version) = match &prev {
                    Some(p) => (p.create_revision, p.version + 1),
                    None => (revision, 1),
                };
                scratch.clear();
                codec::encode_record(scratch, create_revision, revision, version, value);
                kv.insert(key.as_bytes(), scratch.as_slice()).be()?;
                events.push(WatchEvent {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision,
                        mod_revision: revision,
                        version,
                    },
                    prev,
                });
            }
            Op::Delete { key } => {
                let Some(guard) = kv.remove(key.as_bytes()).be()? else {
                    continue;
                };
                let old = codec::decode_record(key.as_bytes(), guard.value())?.into_kv(key.clone());
                drop(guard);
                events.push(WatchEvent {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: key.clone(),
                        value: old.value.clone(),
                        create_revision: old.create_revision,
                        mod_revision: revision,
                        version: old.version,
                    },
                    prev: Some(old),
                });
            }
        }
    }
    if events.is_empty() {
        return Ok((TxnResult::Succeeded { revision: current }, None));
    }
    scratch.clear();
    codec::encode_events(scratch, &events);
    let log_key =
        u64::try_from(revision).map_err(|_| StoreError::Backend(format!("revision {revision} out of range")))?;
    log.insert(log_key, scratch.as_slice()).be()?;
    Ok((TxnResult::Succeeded { revision }, Some(Committed { revision, events })))
}

// ---------------------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------------------

struct Watcher {
    /// Weak so a forgotten watch stream does not keep the database file open.
    shared: Weak<Shared>,
    prefix: String,
    live: broadcast::Receiver<Arc<Vec<Committed>>>,
    /// Events of revisions <= `processed` not yet handed to the consumer.
    pending: VecDeque<WatchEvent>,
    /// The `after` the watch was opened with.
    start: Revision,
    /// Every revision <= this has been examined (its matching events are in `pending` or
    /// were delivered).
    processed: Revision,
    /// Reading history from the log rather than from the live broadcast.
    replaying: bool,
    /// The highest revision the consumer knows it is up to date with (last event or
    /// progress delivered).
    reported: Revision,
    progress_interval: Duration,
    /// Last time an event or progress was delivered; progress waits for a quiet interval.
    last_activity: Instant,
    chunk_revisions: usize,
    finished: bool,
}

/// A chunk of history read from the log.
struct LogChunk {
    compacted: Revision,
    events: Vec<WatchEvent>,
    /// Highest revision examined; None when there was nothing after the start.
    last: Option<Revision>,
}

impl Watcher {
    fn progress_enabled(&self) -> bool {
        !self.progress_interval.is_zero()
    }

    async fn next_item(&mut self) -> Option<Result<WatchItem, StoreError>> {
        if self.finished {
            return None;
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.reported = event.kv.mod_revision;
                self.last_activity = Instant::now();
                return Some(Ok(WatchItem::Event(event)));
            }
            if self.replaying {
                match self.replay_chunk().await {
                    Ok(true) => continue,
                    Ok(false) => {
                        self.replaying = false;
                        continue;
                    }
                    Err(e) => {
                        self.finished = true;
                        return Some(Err(e));
                    }
                }
            }
            // Checked here, not only on a timer, so progress flows even when other
            // prefixes keep the broadcast busy.
            let deadline = (self.progress_enabled() && self.processed > self.reported)
                .then(|| self.last_activity + self.progress_interval);
            if let Some(deadline) = deadline
                && Instant::now() >= deadline
            {
                return Some(Ok(self.progress()));
            }
            let sleep = tokio::time::sleep_until(
                deadline.map_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600), Into::into),
            );
            tokio::select! {
                biased;
                message = self.live.recv() => match message {
                    Ok(batch) => self.absorb(&batch),
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        debug!(
                            prefix = %self.prefix,
                            processed = self.processed,
                            skipped_batches = skipped,
                            "watcher lagged; catching up from the log"
                        );
                        self.replaying = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        self.finished = true;
                        return Some(Err(StoreError::Closed));
                    }
                },
                () = sleep, if deadline.is_some() => {
                    return Some(Ok(self.progress()));
                }
            }
        }
    }

    fn progress(&mut self) -> WatchItem {
        self.reported = self.processed;
        self.last_activity = Instant::now();
        WatchItem::Progress(self.processed)
    }

    fn absorb(&mut self, batch: &[Committed]) {
        for committed in batch {
            if committed.revision <= self.processed {
                continue; // already replayed from the log
            }
            if committed.revision != self.processed + 1 {
                // A hole between what we have and the live stream: fetch it from the log;
                // later live batches are deduplicated by revision.
                self.replaying = true;
                return;
            }
            for event in &committed.events {
                if event.kv.key.starts_with(&self.prefix) {
                    self.pending.push_back(event.clone());
                }
            }
            self.processed = committed.revision;
        }
    }

    /// Reads the next chunk of history after `processed`. `Ok(false)` once caught up.
    async fn replay_chunk(&mut self) -> Result<bool, StoreError> {
        let shared = self.shared.upgrade().ok_or(StoreError::Closed)?;
        let prefix = self.prefix.clone();
        let after = self.processed;
        let max_revisions = self.chunk_revisions;
        let chunk = tokio::task::spawn_blocking(move || read_log(&shared, &prefix, after, max_revisions))
            .await
            .map_err(|e| StoreError::Backend(format!("watch read task failed: {e}")))??;
        if chunk.compacted > after {
            return Err(if after == self.start && self.reported == self.start {
                StoreError::Compacted { requested: after, compacted: chunk.compacted }
            } else {
                warn!(
                    prefix = %self.prefix,
                    processed = after,
                    compacted = chunk.compacted,
                    "lagging watcher lost history to compaction"
                );
                StoreError::WatchLagged(format!(
                    "watch on {:?} needs history after revision {after}, compacted up to {}",
                    self.prefix, chunk.compacted
                ))
            });
        }
        self.pending.extend(chunk.events);
        match chunk.last {
            Some(last) => {
                self.processed = last;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Reads up to `max_revisions` log entries after `after`, keeping events under `prefix`.
fn read_log(shared: &Shared, prefix: &str, after: Revision, max_revisions: usize) -> Result<LogChunk, StoreError> {
    /// Bounds the memory of one replay step when values are large.
    const MAX_CHUNK_BYTES: usize = 8 << 20;
    let rtx = shared.db.begin_read().be()?;
    let meta = rtx.open_table(META).be()?;
    let compacted = read_meta(&meta, META_COMPACTED)?.unwrap_or(0);
    if compacted > after {
        return Ok(LogChunk { compacted, events: Vec::new(), last: None });
    }
    let log = rtx.open_table(LOG).be()?;
    let from = u64::try_from(after).unwrap_or(0).saturating_add(1);
    let mut events = Vec::new();
    let mut last = None;
    let mut bytes = 0usize;
    for (n, entry) in log.range::<u64>(from..).be()?.enumerate() {
        if n >= max_revisions || bytes >= MAX_CHUNK_BYTES {
            break;
        }
        let (k, v) = entry.be()?;
        let revision = i64::try_from(k.value()).map_err(|_| StoreError::Corrupt {
            key: format!("<log {}>", k.value()),
            detail: "revision out of range".into(),
        })?;
        let expected = last.map_or(after + 1, |l: Revision| l + 1);
        if revision != expected {
            return Err(StoreError::Corrupt {
                key: format!("<log {revision}>"),
                detail: format!("expected revision {expected}: the log has a hole"),
            });
        }
        bytes += v.value().len();
        codec::decode_events(revision, v.value(), prefix.as_bytes(), &mut events)?;
        last = Some(revision);
    }
    Ok(LogChunk { compacted, events, last })
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/// Byte formats of records and log entries. Integers are little-endian; lengths are u32.
mod codec {
    use bytes::Bytes;

    use crate::{EventKind, KeyValue, Revision, StoreError, WatchEvent};

    const RECORD_FORMAT: u8 = 1;
    const RECORD_HEADER: usize = 1 + 8 * 3;
    const LOG_FORMAT: u8 = 1;
    const TAG_PUT: u8 = 0;
    const TAG_PUT_WITH_PREV: u8 = 1;
    const TAG_DELETE: u8 = 2;

    /// A decoded `kv` record borrowing its value from the page.
    pub(super) struct Record<'a> {
        pub create_revision: Revision,
        pub mod_revision: Revision,
        pub version: i64,
        pub value: &'a [u8],
    }

    impl Record<'_> {
        pub fn into_kv(self, key: String) -> KeyValue {
            KeyValue {
                key,
                value: Bytes::copy_from_slice(self.value),
                create_revision: self.create_revision,
                mod_revision: self.mod_revision,
                version: self.version,
            }
        }
    }

    pub(super) fn encode_record(
        out: &mut Vec<u8>,
        create_revision: Revision,
        mod_revision: Revision,
        version: i64,
        value: &[u8],
    ) {
        out.reserve(RECORD_HEADER + value.len());
        out.push(RECORD_FORMAT);
        out.extend_from_slice(&create_revision.to_le_bytes());
        out.extend_from_slice(&mod_revision.to_le_bytes());
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(value);
    }

    pub(super) fn decode_record<'a>(key: &[u8], data: &'a [u8]) -> Result<Record<'a>, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), detail };
        if data.len() < RECORD_HEADER {
            return Err(corrupt(format!("record of {} bytes is too short", data.len())));
        }
        let mut r = Reader::new(data);
        let format = r.u8().map_err(|_| corrupt("truncated".into()))?;
        if format != RECORD_FORMAT {
            return Err(corrupt(format!("unknown record format {format}")));
        }
        let (Ok(create_revision), Ok(mod_revision), Ok(version)) = (r.i64(), r.i64(), r.i64()) else {
            return Err(corrupt("truncated header".into()));
        };
        if create_revision <= 0 || mod_revision < create_revision || version <= 0 {
            return Err(corrupt(format!(
                "impossible header create={create_revision} mod={mod_revision} version={version}"
            )));
        }
        Ok(Record { create_revision, mod_revision, version, value: r.rest() })
    }

    pub(super) fn key_string(key: &[u8]) -> Result<String, StoreError> {
        std::str::from_utf8(key).map(str::to_owned).map_err(|e| StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            detail: format!("key is not UTF-8: {e}"),
        })
    }

    /// Log entry: `[format u8][count u32]` then per event
    /// `[tag u8][key][create i64][version i64][value]` followed, for a Put of an existing
    /// key, by the previous `[create i64][mod i64][version i64][value]`, and for a Delete by
    /// the deleted record's `[mod i64]`. Keys and values are `[len u32][bytes]`.
    pub(super) fn encode_events(out: &mut Vec<u8>, events: &[WatchEvent]) {
        out.push(LOG_FORMAT);
        put_u32(out, events.len());
        for e in events {
            let tag = match (e.kind, &e.prev) {
                (EventKind::Put, None) => TAG_PUT,
                (EventKind::Put, Some(_)) => TAG_PUT_WITH_PREV,
                (EventKind::Delete, _) => TAG_DELETE,
            };
            out.push(tag);
            put_bytes(out, e.kv.key.as_bytes());
            out.extend_from_slice(&e.kv.create_revision.to_le_bytes());
            out.extend_from_slice(&e.kv.version.to_le_bytes());
            put_bytes(out, &e.kv.value);
            match (tag, &e.prev) {
                (TAG_PUT_WITH_PREV, Some(p)) => {
                    out.extend_from_slice(&p.create_revision.to_le_bytes());
                    out.extend_from_slice(&p.mod_revision.to_le_bytes());
                    out.extend_from_slice(&p.version.to_le_bytes());
                    put_bytes(out, &p.value);
                }
                (TAG_DELETE, prev) => {
                    let prev_mod = prev.as_ref().map_or(e.kv.create_revision, |p| p.mod_revision);
                    out.extend_from_slice(&prev_mod.to_le_bytes());
                }
                _ => {}
            }
        }
    }

    /// Decodes the events of `revision` whose key starts with `prefix` into `out`.
    pub(super) fn decode_events(
        revision: Revision,
        data: &[u8],
        prefix: &[u8],
        out: &mut Vec<WatchEvent>,
    ) -> Result<(), StoreError> {
        let corrupt =
            |detail: &str| StoreError::Corrupt { key: format!("<log {revision}>"), detail: detail.to_owned() };
        let mut r = Reader::new(data);
        let format = r.u8().map_err(|_| corrupt("empty entry"))?;
        if format != LOG_FORMAT {
            return Err(corrupt(&format!("unknown log format {format}")));
        }
        let count = r.u32().map_err(|_| corrupt("truncated count"))?;
        for _ in 0..count {
            let tag = r.u8().map_err(|_| corrupt("truncated event"))?;
            let key = r.bytes().map_err(|_| corrupt("truncated key"))?;
            let (Ok(create_revision), Ok(version), Ok(value)) = (r.i64(), r.i64(), r.bytes()) else {
                return Err(corrupt("truncated event"));
            };
            let wanted = key.starts_with(prefix);
            let key_string =
                || std::str::from_utf8(key).map(str::to_owned).map_err(|_| corrupt("event key is not UTF-8"));
            match tag {
                TAG_PUT => {
                    if wanted {
                        out.push(WatchEvent {
                            kind: EventKind::Put,
                            kv: kv(key_string()?, value, create_revision, revision, version),
                            prev: None,
                        });
                    }
                }
                TAG_PUT_WITH_PREV => {
                    let (Ok(p_create), Ok(p_mod), Ok(p_version), Ok(p_value)) = (r.i64(), r.i64(), r.i64(), r.bytes())
                    else {
                        return Err(corrupt("truncated previous value"));
                    };
                    if wanted {
                        let key = key_string()?;
                        out.push(WatchEvent {
                            kind: EventKind::Put,
                            prev: Some(kv(key.clone(), p_value, p_create, p_mod, p_version)),
                            kv: kv(key, value, create_revision, revision, version),
                        });
                    }
                }
                TAG_DELETE => {
                    let p_mod = r.i64().map_err(|_| corrupt("truncated delete"))?;
                    if wanted {
                        let key = key_string()?;
                        out.push(WatchEvent {
                            kind: EventKind::Delete,
                            prev: Some(kv(key.clone(), value, create_revision, p_mod, version)),
                            kv: kv(key, value, create_revision, revision, version),
                        });
                    }
                }
                other => return Err(corrupt(&format!("unknown event tag {other}"))),
            }
        }
        if !r.rest().is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(())
    }

    fn kv(key: String, value: &[u8], create: Revision, modr: Revision, version: i64) -> KeyValue {
        KeyValue { key, value: Bytes::copy_from_slice(value), create_revision: create, mod_revision: modr, version }
    }

    fn put_u32(out: &mut Vec<u8>, n: usize) {
        // Keys and values are far below 4 GiB (redb caps values at 3 GiB).
        out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    }

    fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
        put_u32(out, b.len());
        out.extend_from_slice(b);
    }

    /// Bounds-checked cursor; every read fails instead of panicking on short input.
    struct Reader<'a> {
        data: &'a [u8],
    }

    struct Short;

    impl<'a> Reader<'a> {
        fn new(data: &'a [u8]) -> Self {
            Self { data }
        }

        fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
            if self.data.len() < n {
                return Err(Short);
            }
            let (head, tail) = self.data.split_at(n);
            self.data = tail;
            Ok(head)
        }

        fn u8(&mut self) -> Result<u8, Short> {
            Ok(self.take(1)?[0])
        }

        fn u32(&mut self) -> Result<u32, Short> {
            let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| Short)?;
            Ok(u32::from_le_bytes(b))
        }

        fn i64(&mut self) -> Result<i64, Short> {
            let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| Short)?;
            Ok(i64::from_le_bytes(b))
        }

        fn bytes(&mut self) -> Result<&'a [u8], Short> {
            let n = self.u32()? as usize;
            self.take(n)
        }

        fn rest(&mut self) -> &'a [u8] {
            std::mem::take(&mut self.data)
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::codec;
    use crate::{EventKind, KeyValue, StoreError, WatchEvent};

    fn kv(key: &str, value: &str, create: i64, modr: i64, version: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Bytes::copy_from_slice(value.as_bytes()),
            create_revision: create,
            mod_revision: modr,
            version,
        }
    }

    fn sample() -> Vec<WatchEvent> {
        vec![
            WatchEvent { kind: EventKind::Put, kv: kv("a/new", "v", 7, 7, 1), prev: None },
            WatchEvent { kind: EventKind::Put, kv: kv("a/upd", "v2", 3, 7, 2), prev: Some(kv("a/upd", "v1", 3, 3, 1)) },
            WatchEvent {
                kind: EventKind::Delete,
                kv: kv("b/gone", "last", 2, 7, 4),
                prev: Some(kv("b/gone", "last", 2, 5, 4)),
            },
        ]
    }

    #[test]
    fn events_round_trip_and_filter_by_prefix() {
        let events = sample();
        let mut buf = Vec::new();
        codec::encode_events(&mut buf, &events);
        let mut all = Vec::new();
        codec::decode_events(7, &buf, b"", &mut all).expect("decode");
        assert_eq!(all, events);
        let mut only_a = Vec::new();
        codec::decode_events(7, &buf, b"a/", &mut only_a).expect("decode");
        assert_eq!(only_a, events[..2].to_vec());
    }

    #[test]
    fn truncated_or_damaged_entries_are_corrupt_not_panics() {
        let mut buf = Vec::new();
        codec::encode_events(&mut buf, &sample());
        for len in 0..buf.len() {
            let mut out = Vec::new();
            let result = codec::decode_events(7, &buf[..len], b"", &mut out);
            assert!(matches!(result, Err(StoreError::Corrupt { .. })), "prefix of {len} bytes");
        }
        for i in 0..buf.len() {
            let mut damaged = buf.clone();
            damaged[i] ^= 0xff;
            let mut out = Vec::new();
            // Either still decodable (a flipped value byte) or Corrupt; never a panic.
            let _ = codec::decode_events(7, &damaged, b"", &mut out);
        }
    }

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let mut buf = Vec::new();
        codec::encode_record(&mut buf, 3, 9, 4, b"value");
        let r = codec::decode_record(b"k", &buf).expect("decode");
        assert_eq!((r.create_revision, r.mod_revision, r.version, r.value), (3, 9, 4, &b"value"[..]));
        for len in 0..25 {
            assert!(matches!(
                codec::decode_record(b"k", &buf[..len]),
                Err(StoreError::Corrupt { key, .. }) if key == "k"
            ));
        }
        let mut bad = buf.clone();
        bad[0] = 9;
        assert!(codec::decode_record(b"k", &bad).is_err());
    }
}
