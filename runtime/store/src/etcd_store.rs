//! Store backend on an etcd v3 cluster, for running several hub replicas.
//!
//! # Layout
//! Every key lives under a configurable prefix `P`, so several stores (tests, or hubs of
//! different fleets) can share one etcd:
//! - `P d<key>`: a store key. The value starts with a tag byte: [`TAG_INLINE`] followed by the
//!   value itself, or [`TAG_CHUNKED`] followed by a [`ChunkedHeader`];
//! - `P c<key>\0<write id>/<index>`: the chunks of a chunked value, written before the
//!   transaction that publishes the header. Store keys never contain NUL (it is refused), so
//!   the chunks of one key never fall inside the chunk range of another;
//! - `P m/rev`: never written; reading it cheaply returns the cluster's current revision.
//!
//! Revisions are etcd's own, so they are shared by every replica and by every prefix.
//!
//! # Large values
//! etcd refuses requests larger than `--max-request-bytes` (1.5 MiB by default) while
//! Flotilla allows objects of several MiB. When the puts of a transaction exceed
//! [`EtcdStoreOptions::inline_txn_bytes`], the largest values are split: their chunks are
//! staged first (one request each, under a fresh write id that no other writer touches), then
//! the user's transaction publishes a small header naming them. That one etcd transaction is
//! the commit point, so readers and watchers see the whole new value or the whole old one.
//! Chunks of a replaced or deleted value are removed after the commit; chunks of a failed or
//! abandoned transaction are removed best-effort. Leftovers (a crash between the two steps)
//! are never referenced, so they cost space but never correctness.
//!
//! Readers fetch chunks at the revision they read the header at: MVCC keeps them there even
//! if a later write already removed them, until compaction passes that revision (then the
//! read is retried at a newer revision, or a watcher gets [`StoreError::Compacted`]).
//!
//! # Watch progress
//! Progress items come from etcd's own periodic progress notifications
//! (`--experimental-watch-progress-notify-interval`, 10 min by default), which etcd only
//! sends to watchers that are fully caught up, so a progress item never hides an event.
//! On-demand progress requests are not used: before etcd 3.4.25/3.5.8 they could overtake
//! pending events (etcd issue 15220). Run etcd with a notify interval at most the bookmark
//! interval you want (the test harness uses 100 ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use etcd_client::{
    Client, Compare as EtcdCompare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, KvClient,
    PutOptions, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::{
    Compare, EventKind, KeyValue, Op, RangeResult, Revision, Store, StoreError, Txn, TxnResult, WatchEvent, WatchItem,
    WatchStream,
};

/// Tag byte of a value stored whole in its key.
const TAG_INLINE: u8 = 0;
/// Tag byte of a value stored in chunks; a [`ChunkedHeader`] follows.
const TAG_CHUNKED: u8 = 1;
/// Write ids are uuids in simple form: 32 hex digits.
const WRITE_ID_LEN: usize = 32;
/// Tag, write id, chunk count (u32) and total length (u64).
const CHUNKED_HEADER_LEN: usize = 1 + WRITE_ID_LEN + 4 + 8;
/// How often a read whose chunks were compacted away under it is retried at a newer revision.
const READ_ATTEMPTS: usize = 3;
/// Reads retried after a transport error (an etcd member went away) before giving up.
const UNAVAILABLE_RETRIES: usize = 5;

/// Settings of [`EtcdStore`].
#[derive(Debug, Clone)]
pub struct EtcdStoreOptions {
    /// Client URLs of the etcd members, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// Prefix of every etcd key this store uses. Default `/flotilla/`.
    pub prefix: String,
    /// Time allowed to connect to a member. Default 5 s.
    pub connect_timeout: Duration,
    /// Above this many bytes of keys and values in one transaction, the largest values are
    /// chunked. Must stay below etcd's `--max-request-bytes` (1.5 MiB by default) with room
    /// for the request's framing. Default 1 MiB.
    pub inline_txn_bytes: usize,
    /// Size of one chunk, each written in its own request. Default 1 MiB.
    pub chunk_bytes: usize,
    /// Largest response accepted from etcd (a range of many large values). Default 256 MiB.
    pub max_response_bytes: usize,
    /// How long a watch keeps re-establishing itself (from the last revision it delivered,
    /// so nothing is lost or repeated) after losing its etcd stream. Default 30 s.
    pub watch_reconnect_for: Duration,
}

impl Default for EtcdStoreOptions {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            prefix: "/flotilla/".to_owned(),
            connect_timeout: Duration::from_secs(5),
            inline_txn_bytes: 1 << 20,
            chunk_bytes: 1 << 20,
            max_response_bytes: 256 << 20,
            watch_reconnect_for: Duration::from_secs(30),
        }
    }
}

/// The [`Store`] on etcd. Open with [`EtcdStore::connect`]; use as `Arc<dyn Store>`.
///
/// Backend specifics, within the trait's contract:
/// - revisions are etcd's: staging chunks of large values and cleaning them up also use
///   revisions, so revisions seen by one prefix have gaps;
/// - events carry `prev` (etcd's `prev_kv`);
/// - a `progress_interval` of zero disables progress items; otherwise items follow etcd's
///   notification interval (see the module documentation), at most one per interval;
/// - a transaction may not name the same key twice (etcd refuses it);
/// - compaction is global to the etcd cluster, not to the prefix.
pub struct EtcdStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    kv: KvClient,
    prefix: Vec<u8>,
    /// Highest compaction point this store knows of (compacted itself or learned from
    /// etcd); a lower bound of etcd's real one.
    compacted: AtomicI64,
    options: EtcdStoreOptions,
}

impl EtcdStore {
    /// Connects to the etcd cluster and checks that it answers.
    pub async fn connect(options: EtcdStoreOptions) -> Result<Arc<EtcdStore>, StoreError> {
        if options.endpoints.is_empty() {
            return Err(StoreError::Backend("no etcd endpoints given".to_owned()));
        }
        if options.chunk_bytes == 0 || options.inline_txn_bytes == 0 {
            return Err(StoreError::Backend("etcd chunk and inline sizes must be positive".to_owned()));
        }
        let connect = ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        let client = Client::connect(&options.endpoints, Some(connect))
            .await
            .map_err(|e| StoreError::Backend(format!("connecting to etcd at {}: {e}", options.endpoints.join(","))))?;
        let kv = client.kv_client().max_decoding_message_size(options.max_response_bytes);
        let inner = Arc::new(Inner {
            client,
            kv,
            prefix: options.prefix.clone().into_bytes(),
            compacted: AtomicI64::new(0),
            options,
        });
        // One round trip now, so a wrong address fails here and not at the first request.
        let revision = inner.current_revision().await.map_err(|e| match e {
            StoreError::Backend(detail) => {
                StoreError::Backend(format!("etcd at {} does not answer: {detail}", inner.options.endpoints.join(",")))
            }
            other => other,
        })?;
        info!(endpoints = %inner.options.endpoints.join(","), prefix = %inner.options.prefix, revision, "connected to etcd");
        Ok(Arc::new(EtcdStore { inner }))
    }

    /// The etcd client, for callers that need etcd features beyond the store (leader
    /// election, leases).
    pub fn client(&self) -> Client {
        self.inner.client.clone()
    }

    /// The prefix under which this store keeps its keys.
    pub fn prefix(&self) -> &str {
        &self.inner.options.prefix
    }
}

// ----- key and value encoding ------------------------------------------------------------

/// The smallest key greater than every key starting with `prefix` (etcd's `range_end`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): to the end of the key space.
    vec![0]
}

impl Inner {
    fn data_key(&self, key: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 1 + key.len());
        k.extend_from_slice(&self.prefix);
        k.push(b'd');
        k.extend_from_slice(key.as_bytes());
        k
    }

    fn meta_key(&self) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(b"m/rev");
        k
    }

    /// Prefix of the chunks of one write of `key`.
    fn chunk_prefix(&self, key: &str, write_id: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + key.len() + WRITE_ID_LEN + 3);
        k.extend_from_slice(&self.prefix);
        k.push(b'c');
        k.extend_from_slice(key.as_bytes());
        k.push(0);
        k.extend_from_slice(write_id.as_bytes());
        k.push(b'/');
        k
    }

    fn chunk_key(&self, key: &str, write_id: &str, index: u32) -> Vec<u8> {
        let mut k = self.chunk_prefix(key, write_id);
        // Fixed width, so chunks sort in order.
        k.extend_from_slice(format!("{index:08x}").as_bytes());
        k
    }

    /// The store key of an etcd data key.
    fn store_key(&self, etcd_key: &[u8]) -> Result<String, StoreError> {
        let rest =
            etcd_key.strip_prefix(self.prefix.as_slice()).and_then(|k| k.strip_prefix(b"d")).ok_or_else(|| {
                StoreError::Corrupt {
                    key: String::from_utf8_lossy(etcd_key).into_owned(),
                    detail: "etcd key outside the store's data prefix".to_owned(),
                }
            })?;
        String::from_utf8(rest.to_vec()).map_err(|_| StoreError::Corrupt {
            key: String::from_utf8_lossy(etcd_key).into_owned(),
            detail: "key is not UTF-8".to_owned(),
        })
    }
}

/// Where a chunked value's chunks are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChunkedHeader {
    write_id: String,
    chunks: u32,
    len: u64,
}

impl ChunkedHeader {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(CHUNKED_HEADER_LEN);
        v.push(TAG_CHUNKED);
        v.extend_from_slice(self.write_id.as_bytes());
        v.extend_from_slice(&self.chunks.to_be_bytes());
        v.extend_from_slice(&self.len.to_be_bytes());
        v
    }
}

/// A stored value: inline bytes, or where to find the chunks.
enum Stored {
    Inline(Bytes),
    Chunked(ChunkedHeader),
}

fn decode_stored(key: &str, raw: &[u8]) -> Result<Stored, StoreError> {
    let corrupt = |detail: &str| StoreError::Corrupt { key: key.to_owned(), detail: detail.to_owned() };
    match raw.split_first() {
        Some((&TAG_INLINE, value)) => Ok(Stored::Inline(Bytes::copy_from_slice(value))),
        Some((&TAG_CHUNKED, rest)) if raw.len() == CHUNKED_HEADER_LEN => {
            let (write_id, rest) = rest.split_at(WRITE_ID_LEN);
            let (chunks, len) = rest.split_at(4);
            let write_id = std::str::from_utf8(write_id)
                .ok()
                .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| corrupt("chunk write id is not hexadecimal"))?;
            let chunks = u32::from_be_bytes(chunks.try_into().map_err(|_| corrupt("short chunk header"))?);
            let len = u64::from_be_bytes(len.try_into().map_err(|_| corrupt("short chunk header"))?);
            Ok(Stored::Chunked(ChunkedHeader { write_id: write_id.to_owned(), chunks, len }))
        }
        Some((&TAG_CHUNKED, _)) => Err(corrupt("chunk header of the wrong length")),
        Some((tag, _)) => Err(corrupt(&format!("unknown value tag {tag}"))),
        None => Err(corrupt("empty value (not written by Flotilla)")),
    }
}

fn encode_inline(value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + value.len());
    v.push(TAG_INLINE);
    v.extend_from_slice(value);
    v
}

// ----- errors -------------------------------------------------------------------------------

/// What went wrong in an etcd request, before it becomes a [`StoreError`].
enum EtcdFailure {
    Compacted,
    Future,
    Unavailable(String),
    Other(String),
}

fn classify(e: &etcd_client::Error) -> EtcdFailure {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let message = status.message();
            if message.contains("required revision has been compacted") {
                EtcdFailure::Compacted
            } else if message.contains("required revision is a future revision") {
                EtcdFailure::Future
            } else if message.contains("request is too large") {
                EtcdFailure::Other(format!(
                    "etcd refused a request as too large ({message}); lower inline_txn_bytes/chunk_bytes or raise \
                     etcd's --max-request-bytes"
                ))
            } else if message.contains("too many operations in txn request") {
                EtcdFailure::Other(format!(
                    "etcd refused a transaction with too many operations ({message}); raise etcd's --max-txn-ops"
                ))
            } else if message.contains("duplicate key given in txn request") {
                EtcdFailure::Other(format!("a transaction names the same key twice, which etcd refuses ({message})"))
            } else if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ) || message.contains("leader changed")
                || message.contains("no leader")
            {
                EtcdFailure::Unavailable(format!("etcd unavailable: {message}"))
            } else {
                EtcdFailure::Other(format!("etcd error ({:?}): {message}", status.code()))
            }
        }
        etcd_client::Error::TransportError(e) => EtcdFailure::Unavailable(format!("etcd transport error: {e}")),
        etcd_client::Error::IoError(e) => EtcdFailure::Unavailable(format!("etcd I/O error: {e}")),
        other => EtcdFailure::Other(format!("etcd client error: {other}")),
    }
}

// ----- reads ----------------------------------------------------------------------------------

impl Inner {
    fn kv(&self) -> KvClient {
        self.kv.clone()
    }

    /// Converts an etcd error; `requested` is the revision the request was about (for
    /// Compacted/FutureRevision).
    async fn store_error(&self, e: etcd_client::Error, requested: Revision, what: &str) -> StoreError {
        match classify(&e) {
            EtcdFailure::Compacted => {
                let compacted =
                    self.compacted_revision().await.unwrap_or_else(|_| self.compacted.load(Ordering::SeqCst));
                StoreError::Compacted { requested, compacted }
            }
            EtcdFailure::Future => {
                let current = self.current_revision().await.unwrap_or(0);
                StoreError::FutureRevision { requested, current }
            }
            EtcdFailure::Unavailable(detail) | EtcdFailure::Other(detail) => {
                StoreError::Backend(format!("{what}: {detail}"))
            }
        }
    }

    /// A read, retried while the cluster is briefly unavailable (a member died and the
    /// client moves to another). Only for requests that change nothing.
    async fn get_retrying(
        &self,
        key: Vec<u8>,
        options: GetOptions,
    ) -> Result<etcd_client::GetResponse, etcd_client::Error> {
        let mut attempt = 0;
        loop {
            match self.kv().get(key.clone(), Some(options.clone())).await {
                Ok(response) => return Ok(response),
                Err(e) if attempt < UNAVAILABLE_RETRIES && matches!(classify(&e), EtcdFailure::Unavailable(_)) => {
                    attempt += 1;
                    debug!(error = %e, attempt, "etcd read failed, retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt as u64)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let response = self
            .get_retrying(self.meta_key(), GetOptions::new().with_count_only())
            .await
            .map_err(|e| StoreError::Backend(format!("reading etcd's revision: {}", describe(&e))))?;
        header_revision(response.header())
    }

    /// etcd does not report its compaction point, so find it: a read at revision `r` fails
    /// exactly when `r` is below it. Starts from the known lower bound, so it usually costs
    /// one request.
    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        let known = self.compacted.load(Ordering::SeqCst);
        let readable = |revision: Revision| async move {
            match self.get_retrying(self.meta_key(), GetOptions::new().with_count_only().with_revision(revision)).await
            {
                Ok(_) => Ok(true),
                Err(e) => match classify(&e) {
                    EtcdFailure::Compacted => Ok(false),
                    EtcdFailure::Future => Ok(true),
                    _ => Err(StoreError::Backend(format!("probing etcd's compaction point: {}", describe(&e)))),
                },
            }
        };
        let low = known.max(1);
        if readable(low).await? {
            return Ok(known);
        }
        // Invariant: `low` is unreadable, `high` is readable (the current revision always is).
        let mut low = low;
        let mut high = self.current_revision().await?;
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if readable(mid).await? {
                high = mid;
            } else {
                low = mid;
            }
        }
        self.compacted.fetch_max(high, Ordering::SeqCst);
        Ok(high)
    }

    /// The value of `key` as stored in `raw`, reading its chunks at `revision`.
    async fn load_value(&self, key: &str, raw: &[u8], revision: Revision) -> Result<Bytes, LoadError> {
        let header = match decode_stored(key, raw).map_err(LoadError::Store)? {
            Stored::Inline(value) => return Ok(value),
            Stored::Chunked(header) => header,
        };
        let prefix = self.chunk_prefix(key, &header.write_id);
        let response = self
            .get_retrying(prefix.clone(), GetOptions::new().with_range(prefix_end(&prefix)).with_revision(revision))
            .await
            .map_err(|e| match classify(&e) {
                EtcdFailure::Compacted => LoadError::Compacted,
                _ => LoadError::Store(StoreError::Backend(format!("reading the chunks of {key:?}: {}", describe(&e)))),
            })?;
        let chunks = response.kvs();
        if chunks.len() != header.chunks as usize {
            return Err(LoadError::Store(StoreError::Corrupt {
                key: key.to_owned(),
                detail: format!(
                    "value has {} of its {} chunks at revision {revision} (write {})",
                    chunks.len(),
                    header.chunks,
                    header.write_id
                ),
            }));
        }
        let mut value = BytesMut::with_capacity(usize::try_from(header.len).unwrap_or(0));
        for chunk in chunks {
            value.extend_from_slice(chunk.value());
        }
        if value.len() as u64 != header.len {
            return Err(LoadError::Store(StoreError::Corrupt {
                key: key.to_owned(),
                detail: format!("chunks hold {} bytes, header says {}", value.len(), header.len),
            }));
        }
        Ok(value.freeze())
    }

    /// A stored key/value, reading chunks at `revision`.
    async fn decode_kv(&self, kv: &etcd_client::KeyValue, revision: Revision) -> Result<KeyValue, LoadError> {
        let key = self.store_key(kv.key()).map_err(LoadError::Store)?;
        let value = self.load_value(&key, kv.value(), revision).await?;
        Ok(KeyValue {
            key,
            value,
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        })
    }

    /// Reads a range and decodes it, retrying at a newer revision if chunks are compacted
    /// between reading the headers and reading the chunks.
    async fn read_decoded(
        &self,
        key: Vec<u8>,
        options: GetOptions,
        what: &str,
    ) -> Result<(Vec<KeyValue>, bool, Revision), StoreError> {
        for _ in 0..READ_ATTEMPTS {
            let response = match self.get_retrying(key.clone(), options.clone()).await {
                Ok(response) => response,
                Err(e) => return Err(self.store_error(e, 0, what).await),
            };
            let revision = header_revision(response.header())?;
            let mut kvs = Vec::with_capacity(response.kvs().len());
            let mut compacted = false;
            for kv in response.kvs() {
                match self.decode_kv(kv, revision).await {
                    Ok(kv) => kvs.push(kv),
                    Err(LoadError::Compacted) => {
                        compacted = true;
                        break;
                    }
                    Err(LoadError::Store(e)) => return Err(e),
                }
            }
            if !compacted {
                return Ok((kvs, response.more(), revision));
            }
            debug!(what, revision, "chunks compacted while reading; reading again");
        }
        Err(StoreError::Backend(format!("{what}: chunks kept being compacted while reading")))
    }

    async fn delete_chunks(&self, key: &str, write_id: &str) {
        let prefix = self.chunk_prefix(key, write_id);
        let end = prefix_end(&prefix);
        if let Err(e) = self.kv().delete(prefix, Some(DeleteOptions::new().with_range(end))).await {
            // Unreferenced chunks only cost space.
            warn!(key, write_id, error = %describe(&e), "could not remove unreferenced chunks");
        }
    }
}

enum LoadError {
    /// The revision the chunks were read at is compacted.
    Compacted,
    Store(StoreError),
}

/// The request never left the client: the connection to the chosen member failed.
fn not_sent(e: &etcd_client::Error) -> bool {
    let text = match e {
        etcd_client::Error::GRpcStatus(status) if status.code() == tonic::Code::Unavailable => {
            status.message().to_owned()
        }
        etcd_client::Error::TransportError(e) => e.to_string(),
        _ => return false,
    };
    ["tcp connect error", "error trying to connect", "Connection refused"].iter().any(|m| text.contains(m))
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    header.map(|h| h.revision()).ok_or_else(|| StoreError::Backend("etcd response without a header".to_owned()))
}

fn describe(e: &etcd_client::Error) -> String {
    match classify(e) {
        EtcdFailure::Compacted => "revision compacted".to_owned(),
        EtcdFailure::Future => "revision in the future".to_owned(),
        EtcdFailure::Unavailable(d) | EtcdFailure::Other(d) => d,
    }
}

// ----- writes ---------------------------------------------------------------------------------

/// One put whose value goes to chunks, staged before the commit.
struct Staged {
    key: String,
    header: ChunkedHeader,
}

impl Inner {
    /// Which puts (by op index) must be chunked so the transaction fits in one request.
    fn plan_chunking(&self, txn: &Txn) -> Vec<usize> {
        let size = |op: &Op| match op {
            Op::Put { key, value } => key.len() + value.len() + 16,
            Op::Delete { key } => key.len() + 16,
        };
        let mut total: usize = txn.ops.iter().map(size).sum::<usize>()
            + txn
                .compares
                .iter()
                .map(|c| match c {
                    Compare::ModRevision(k, _) | Compare::Exists(k) => 2 * k.len() + 32,
                })
                .sum::<usize>();
        let mut puts: Vec<(usize, usize)> = txn
            .ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                Op::Put { value, .. } => Some((i, value.len())),
                Op::Delete { .. } => None,
            })
            .collect();
        puts.sort_by_key(|p| std::cmp::Reverse(p.1));
        let mut chunked = Vec::new();
        for (index, len) in puts {
            if total <= self.options.inline_txn_bytes {
                break;
            }
            total = total - len + CHUNKED_HEADER_LEN;
            chunked.push(index);
        }
        chunked
    }

    /// Writes the chunks of `value` under a fresh write id.
    async fn stage(&self, key: &str, value: &Bytes) -> Result<Staged, StoreError> {
        let write_id = uuid::Uuid::new_v4().simple().to_string();
        let pieces: Vec<Bytes> = value.chunks(self.options.chunk_bytes).map(|c| value.slice_ref(c)).collect();
        let count = u32::try_from(pieces.len())
            .map_err(|_| StoreError::Backend(format!("value of {key:?} needs too many chunks")))?;
        let writes = pieces.into_iter().enumerate().map(|(i, piece)| {
            let chunk_key = self.chunk_key(key, &write_id, i as u32);
            async move {
                // Each chunk key belongs to this write only, so writing it twice is harmless.
                let mut attempt = 0;
                loop {
                    match self.kv().put(chunk_key.clone(), piece.to_vec(), None).await {
                        Err(e)
                            if attempt < UNAVAILABLE_RETRIES && matches!(classify(&e), EtcdFailure::Unavailable(_)) =>
                        {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
                        }
                        other => return other,
                    }
                }
            }
        });
        if let Err(e) = futures::future::try_join_all(writes).await {
            self.delete_chunks(key, &write_id).await;
            return Err(StoreError::Backend(format!("writing chunks of {key:?}: {}", describe(&e))));
        }
        debug!(key, write_id, chunks = count, bytes = value.len(), "staged a chunked value");
        Ok(Staged { key: key.to_owned(), header: ChunkedHeader { write_id, chunks: count, len: value.len() as u64 } })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError> {
        for op in &txn.ops {
            let key = match op {
                Op::Put { key, .. } | Op::Delete { key } => key,
            };
            if key.contains('\0') {
                return Err(StoreError::Backend(format!("key {key:?} contains NUL, which the etcd store reserves")));
            }
        }
        let chunked = self.plan_chunking(&txn);
        let mut staged: Vec<(usize, Staged)> = Vec::with_capacity(chunked.len());
        for index in chunked {
            if let Some(Op::Put { key, value }) = txn.ops.get(index) {
                match self.stage(key, value).await {
                    Ok(s) => staged.push((index, s)),
                    Err(e) => {
                        for (_, s) in &staged {
                            self.delete_chunks(&s.key, &s.header.write_id).await;
                        }
                        return Err(e);
                    }
                }
            }
        }

        let compares: Vec<EtcdCompare> = txn
            .compares
            .iter()
            .map(|c| match c {
                Compare::ModRevision(key, revision) => {
                    EtcdCompare::mod_revision(self.data_key(key), CompareOp::Equal, *revision)
                }
                Compare::Exists(key) => EtcdCompare::version(self.data_key(key), CompareOp::Greater, 0),
            })
            .collect();
        let ops: Vec<TxnOp> = txn
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| match op {
                Op::Put { key, value } => {
                    let stored = match staged.iter().find(|(index, _)| *index == i) {
                        Some((_, s)) => s.header.encode(),
                        None => encode_inline(value),
                    };
                    // prev_kv tells which chunks the new value replaces.
                    TxnOp::put(self.data_key(key), stored, Some(PutOptions::new().with_prev_key()))
                }
                Op::Delete { key } => TxnOp::delete(self.data_key(key), Some(DeleteOptions::new().with_prev_key())),
            })
            .collect();
        // On failure, read every compared key in the same transaction, so `current` is
        // consistent with the failed compare.
        let reads: Vec<TxnOp> = txn
            .compares
            .iter()
            .map(|c| match c {
                Compare::ModRevision(key, _) | Compare::Exists(key) => TxnOp::get(self.data_key(key), None),
            })
            .collect();
        let request = etcd_client::Txn::new().when(compares).and_then(ops).or_else(reads);
        let response = match self.txn_unsent_retrying(request).await {
            Ok(response) => response,
            Err(e) => {
                for (_, s) in &staged {
                    self.delete_chunks(&s.key, &s.header.write_id).await;
                }
                // The outcome of a transaction cut off by a transport error is unknown, as
                // with any etcd client: it is not retried.
                return Err(self.store_error(e, 0, "etcd transaction").await);
            }
        };
        let revision = header_revision(response.header())?;
        let responses = response.op_responses();
        if response.succeeded() {
            self.remove_replaced_chunks(&txn, &responses).await;
            return Ok(TxnResult::Succeeded { revision });
        }
        for (_, s) in &staged {
            self.delete_chunks(&s.key, &s.header.write_id).await;
        }
        let mut current = Vec::with_capacity(txn.compares.len());
        for (compare, op_response) in txn.compares.iter().zip(responses) {
            let key = match compare {
                Compare::ModRevision(key, _) | Compare::Exists(key) => key.clone(),
            };
            let found = match op_response {
                TxnOpResponse::Get(get) => match get.kvs().first() {
                    Some(kv) => Some(self.decode_current(kv, revision, &key).await?),
                    None => None,
                },
                other => {
                    return Err(StoreError::Backend(format!("unexpected etcd response to a read: {other:?}")));
                }
            };
            current.push((key, found));
        }
        Ok(TxnResult::Failed { revision, current })
    }

    /// Sends a transaction, retrying only when it certainly did not reach etcd: the client
    /// balances over every endpoint and keeps trying a dead member's address for a while,
    /// and a refused connection carries no request. Any other failure leaves the outcome
    /// unknown, so it is returned.
    async fn txn_unsent_retrying(
        &self,
        request: etcd_client::Txn,
    ) -> Result<etcd_client::TxnResponse, etcd_client::Error> {
        let mut attempt = 0;
        loop {
            match self.kv().txn(request.clone()).await {
                Err(e) if attempt < UNAVAILABLE_RETRIES && not_sent(&e) => {
                    attempt += 1;
                    debug!(error = %e, attempt, "etcd member unreachable, sending the transaction again");
                    tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
                }
                other => return other,
            }
        }
    }

    /// A key read in a failed transaction. If its chunks were compacted meanwhile (the
    /// revision is old), the key has changed since: read it afresh.
    async fn decode_current(
        &self,
        kv: &etcd_client::KeyValue,
        revision: Revision,
        key: &str,
    ) -> Result<KeyValue, StoreError> {
        match self.decode_kv(kv, revision).await {
            Ok(kv) => Ok(kv),
            Err(LoadError::Store(e)) => Err(e),
            Err(LoadError::Compacted) => {
                let (mut kvs, _, _) =
                    self.read_decoded(self.data_key(key), GetOptions::new(), "reading a compared key").await?;
                kvs.pop().ok_or_else(|| StoreError::Backend(format!("{key:?} vanished while reading it")))
            }
        }
    }

    /// After a commit, removes the chunks of the values it replaced or deleted.
    async fn remove_replaced_chunks(&self, txn: &Txn, responses: &[TxnOpResponse]) {
        for (op, response) in txn.ops.iter().zip(responses) {
            let key = match op {
                Op::Put { key, .. } | Op::Delete { key } => key,
            };
            let previous = match response {
                TxnOpResponse::Put(put) => put.prev_key().map(|kv| kv.value().to_vec()),
                TxnOpResponse::Delete(delete) => delete.prev_kvs().first().map(|kv| kv.value().to_vec()),
                _ => None,
            };
            if let Some(Ok(Stored::Chunked(old))) = previous.map(|raw| decode_stored(key, &raw)) {
                self.delete_chunks(key, &old.write_id).await;
            }
        }
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        if revision <= self.compacted.load(Ordering::SeqCst) {
            return Ok(());
        }
        let current = self.current_revision().await?;
        if revision > current {
            return Err(StoreError::FutureRevision { requested: revision, current });
        }
        let options = etcd_client::CompactionOptions::new().with_physical();
        match self.kv().compact(revision, Some(options)).await {
            Ok(_) => {}
            // Already compacted further (by another replica): nothing to do.
            Err(e) if matches!(classify(&e), EtcdFailure::Compacted) => {}
            Err(e) => return Err(self.store_error(e, revision, "etcd compaction").await),
        }
        self.compacted.fetch_max(revision, Ordering::SeqCst);
        info!(revision, "compacted etcd");
        Ok(())
    }
}

// ----- watch ------------------------------------------------------------------------------------

/// One store watch: an etcd watch stream re-established from the last delivered revision
/// when it breaks.
struct Watch {
    inner: Arc<Inner>,
    key: Vec<u8>,
    end: Vec<u8>,
    /// Last revision delivered (event or progress); the etcd watch restarts after it.
    last: Revision,
    progress_interval: Duration,
    last_sent: Instant,
    tx: mpsc::Sender<Result<WatchItem, StoreError>>,
}

/// Why a watch stream ended.
enum Ended {
    /// The consumer dropped the stream, or a final error was delivered.
    Done,
    /// The etcd stream broke; worth re-establishing.
    Broken(String),
}

impl Watch {
    async fn run(mut self) {
        let mut broken_since: Option<Instant> = None;
        loop {
            let started = self.last;
            match self.stream_once().await {
                Ended::Done => return,
                Ended::Broken(reason) => {
                    if self.last > started {
                        broken_since = None;
                    }
                    let since = *broken_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.inner.options.watch_reconnect_for {
                        let _ = self
                            .tx
                            .send(Err(StoreError::Backend(format!("etcd watch lost and not re-established: {reason}"))))
                            .await;
                        return;
                    }
                    debug!(%reason, after = self.last, "etcd watch broke; re-establishing");
                    tokio::select! {
                        _ = self.tx.closed() => return,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }
    }

    async fn send(&mut self, item: Result<WatchItem, StoreError>) -> Result<(), Ended> {
        self.tx.send(item).await.map_err(|_| Ended::Done)
    }

    async fn stream_once(&mut self) -> Ended {
        let options = WatchOptions::new()
            .with_range(self.end.clone())
            .with_start_revision(self.last + 1)
            .with_prev_key()
            .with_progress_notify();
        // One response may carry many large events (a replayed batch of revisions).
        let mut client =
            self.inner.client.watch_client().max_decoding_message_size(self.inner.options.max_response_bytes);
        let stream = tokio::select! {
            _ = self.tx.closed() => return Ended::Done,
            stream = client.watch(self.key.clone(), Some(options)) => stream,
        };
        // The request half must stay open: closing it ends the etcd stream.
        let (_requests, mut responses) = match stream {
            Ok(stream) => stream.split(),
            Err(e) => return Ended::Broken(describe(&e)),
        };
        loop {
            let message = tokio::select! {
                _ = self.tx.closed() => return Ended::Done,
                message = responses.message() => message,
            };
            let response = match message {
                Ok(Some(response)) => response,
                Ok(None) => return Ended::Broken("etcd closed the watch stream".to_owned()),
                Err(e) => return Ended::Broken(describe(&e)),
            };
            if let Err(ended) = self.handle(response).await {
                return ended;
            }
        }
    }

    async fn handle(&mut self, response: etcd_client::WatchResponse) -> Result<(), Ended> {
        if response.canceled() || response.compact_revision() > 0 {
            let compacted = response.compact_revision();
            let error = if compacted > 0 {
                // etcd's compact revision is the store's compaction point: reads at it
                // still work, so watches after it are accepted.
                let previous = self.inner.compacted.fetch_max(compacted, Ordering::SeqCst);
                StoreError::Compacted { requested: self.last, compacted: previous.max(compacted) }
            } else {
                StoreError::Backend(format!("etcd cancelled the watch: {}", response.cancel_reason()))
            };
            let _ = self.send(Err(error)).await;
            return Err(Ended::Done);
        }
        if response.events().is_empty() {
            if response.created() {
                return Ok(());
            }
            // A progress notification: etcd sends them only to watchers that have every
            // event up to this revision.
            let revision = header_revision(response.header()).map_err(|e| Ended::Broken(e.to_string()))?;
            if !self.progress_interval.is_zero()
                && revision > self.last
                && self.last_sent.elapsed() >= self.progress_interval
            {
                self.last = revision;
                self.last_sent = Instant::now();
                self.send(Ok(WatchItem::Progress(revision))).await?;
            }
            return Ok(());
        }
        for event in response.events() {
            let item = self.decode_event(event).await;
            let failed = item.is_err();
            if let Ok(e) = &item {
                self.last = self.last.max(e.kv.mod_revision);
            }
            self.last_sent = Instant::now();
            self.send(item.map(WatchItem::Event)).await?;
            if failed {
                return Err(Ended::Done);
            }
        }
        Ok(())
    }

    async fn decode_event(&self, event: &etcd_client::Event) -> Result<WatchEvent, StoreError> {
        let inner = &self.inner;
        let kv = event.kv().ok_or_else(|| StoreError::Backend("etcd watch event without a key".to_owned()))?;
        let revision = kv.mod_revision();
        let compacted = |e: LoadError| match e {
            LoadError::Compacted => StoreError::Compacted {
                requested: revision,
                compacted: inner.compacted.load(Ordering::SeqCst).max(revision),
            },
            LoadError::Store(e) => e,
        };
        // The previous value was current just before this revision.
        let prev = match event.prev_kv() {
            Some(prev) => Some(inner.decode_kv(prev, revision - 1).await.map_err(compacted)?),
            None => None,
        };
        match event.event_type() {
            EventType::Put => {
                let kv = inner.decode_kv(kv, revision).await.map_err(compacted)?;
                Ok(WatchEvent { kind: EventKind::Put, kv, prev })
            }
            EventType::Delete => {
                let key = inner.store_key(kv.key())?;
                let Some(prev) = prev else {
                    return Err(StoreError::Backend(format!(
                        "etcd sent the deletion of {key:?} at revision {revision} without the deleted value"
                    )));
                };
                let deleted = KeyValue {
                    key,
                    value: prev.value.clone(),
                    create_revision: prev.create_revision,
                    mod_revision: revision,
                    version: prev.version,
                };
                Ok(WatchEvent { kind: EventKind::Delete, kv: deleted, prev: Some(prev) })
            }
        }
    }
}

// ----- the trait --------------------------------------------------------------------------------

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let (mut kvs, _, _) = self.inner.read_decoded(self.inner.data_key(key), GetOptions::new(), "etcd get").await?;
        Ok(kvs.pop())
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<RangeResult, StoreError> {
        let inner = &self.inner;
        let first = inner.data_key(prefix);
        let end = prefix_end(&first);
        let start = match start_after {
            // The smallest key after `after`.
            Some(after) if after >= prefix => {
                let mut k = inner.data_key(after);
                k.push(0);
                k
            }
            _ => first,
        };
        if start >= end {
            return Ok(RangeResult { kvs: Vec::new(), more: false, revision: inner.current_revision().await? });
        }
        let mut options = GetOptions::new().with_range(end);
        match limit {
            // etcd reads a limit of 0 as "no limit".
            Some(0) => {
                let response = inner
                    .get_retrying(start, options.with_count_only())
                    .await
                    .map_err(|e| StoreError::Backend(format!("etcd range: {}", describe(&e))))?;
                return Ok(RangeResult {
                    kvs: Vec::new(),
                    more: response.count() > 0,
                    revision: header_revision(response.header())?,
                });
            }
            Some(n) => options = options.with_limit(i64::try_from(n).unwrap_or(i64::MAX)),
            None => {}
        }
        let (kvs, more, revision) = inner.read_decoded(start, options, "etcd range").await?;
        Ok(RangeResult { kvs, more, revision })
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        let key = self.inner.data_key(prefix);
        let end = prefix_end(&key);
        let response = self
            .inner
            .get_retrying(key, GetOptions::new().with_range(end).with_count_only())
            .await
            .map_err(|e| StoreError::Backend(format!("etcd count: {}", describe(&e))))?;
        Ok(u64::try_from(response.count()).unwrap_or(0))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, StoreError> {
        self.inner.txn(txn).await
    }

    async fn watch(
        &self,
        prefix: &str,
        after: Revision,
        progress_interval: Duration,
    ) -> Result<WatchStream, StoreError> {
        let inner = &self.inner;
        let compacted = inner.compacted.load(Ordering::SeqCst);
        if after < compacted {
            return Err(StoreError::Compacted { requested: after, compacted });
        }
        // etcd would simply wait for a future start revision; the contract refuses it.
        let current = inner.current_revision().await?;
        if after > current {
            return Err(StoreError::FutureRevision { requested: after, current });
        }
        let key = inner.data_key(prefix);
        let end = prefix_end(&key);
        let (tx, rx) = mpsc::channel(256);
        let watch =
            Watch { inner: inner.clone(), key, end, last: after, progress_interval, last_sent: Instant::now(), tx };
        tokio::spawn(watch.run());
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.inner.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        self.inner.compacted_revision().await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.compact(revision).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn chunked_header_round_trips() {
        let header = ChunkedHeader { write_id: "0123456789abcdef0123456789abcdef".to_owned(), chunks: 9, len: 8 << 20 };
        match decode_stored("k", &header.encode()) {
            Ok(Stored::Chunked(decoded)) => assert_eq!(decoded, header),
            _ => panic!("header did not decode"),
        }
        match decode_stored("k", &encode_inline(b"v")) {
            Ok(Stored::Inline(v)) => assert_eq!(v, Bytes::from_static(b"v")),
            _ => panic!("inline value did not decode"),
        }
        assert!(matches!(decode_stored("k", b""), Err(StoreError::Corrupt { .. })));
        assert!(matches!(decode_stored("k", b"\x07x"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(decode_stored("k", b"\x01short"), Err(StoreError::Corrupt { .. })));
    }
}
