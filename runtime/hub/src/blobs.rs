//! Plugin binaries: blobs addressed by sha256, outside the store's key space, in
//! `DATA_DIR/blobs/sha256/<hex>`, served at `/blobs/sha256:<hex>` on the hub's HTTPS listener.
//!
//! - `PUT` (admins): the body is streamed to a temporary file while it is hashed, synced, checked
//!   against the digest in the path, then renamed into place, so no partial or mismatched blob
//!   is ever visible, even after a crash; uploads of the same digest may race (the content is
//!   the same). 201 when stored, 200 when it was already there, 400 when the body's digest
//!   differs, 413 over the size limit.
//! - `GET` and `HEAD` (admins and accepted agents): the bytes, or 404.
//!
//! Authorization goes through the hub's authorizer as the non-resource path
//! (`get` or `put` on `/blobs/sha256:<hex>`); errors are `Status` objects.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use flotilla_apimachinery::ApiError;
use flotilla_apiserver::http::{Body, error_response, full};
use flotilla_apiserver::{ApiServer, Attributes, Endpoint, UserInfo};
use flotilla_store::{Compare, EventKind, Op, Store, Txn, WatchItem};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Default cap on one blob (plugin components are a few hundred KiB to a few tens of MiB;
/// interpreters such as componentize-py's bundle CPython).
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 64 << 20;

/// Where blobs are served.
pub const BLOB_PREFIX: &str = "/blobs/";

/// A blob's address: `sha256:` and 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobDigest {
    hex: String,
}

impl BlobDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobDigest {
        BlobDigest { hex: hex::encode(Sha256::digest(bytes)) }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The path it is served at, `/blobs/sha256:<hex>`.
    pub fn path(&self) -> String {
        format!("{BLOB_PREFIX}{self}")
    }
}

impl fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for BlobDigest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("sha256:").unwrap_or("");
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(BlobDigest { hex: hex.to_string() })
        } else {
            Err(format!("{s:?} is not a blob digest: expected \"sha256:\" followed by 64 lowercase hex digits"))
        }
    }
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    Created { size: u64 },
    AlreadyPresent { size: u64 },
}

/// Where blobs are shared between hub replicas in the store (outside `/registry/`).
pub const SHARED_BLOB_PREFIX: &str = "/flotilla/hub/blobs/sha256/";

/// The blob directory of a hub. With several replicas on one store, every blob is also
/// in the store ([`BlobStore::with_shared_store`]): an upload to any replica is copied there
/// before it is acknowledged, and every replica copies blobs it lacks into its directory
/// ([`BlobStore::mirror`], and on a read that misses), so any replica serves any agent.
pub struct BlobStore {
    root: PathBuf,
    max_bytes: u64,
    shared: Option<std::sync::Arc<dyn Store>>,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore")
            .field("root", &self.root)
            .field("max_bytes", &self.max_bytes)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl BlobStore {
    /// Opens (creating) `DATA_DIR/blobs`, and removes temporary files a crash left behind.
    pub fn open(data_dir: &Path, max_bytes: u64) -> std::io::Result<BlobStore> {
        let root = data_dir.join("blobs");
        std::fs::create_dir_all(root.join("sha256"))?;
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        for entry in std::fs::read_dir(&tmp)? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(BlobStore { root, max_bytes, shared: None })
    }

    /// Shares blobs with the other replicas on `store`.
    pub fn with_shared_store(mut self, store: std::sync::Arc<dyn Store>) -> BlobStore {
        self.shared = Some(store);
        self
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The file of a blob (which may not exist).
    pub fn path(&self, digest: &BlobDigest) -> PathBuf {
        self.root.join("sha256").join(&digest.hex)
    }

    /// The size of a stored blob, or `None`.
    pub async fn size(&self, digest: &BlobDigest) -> std::io::Result<Option<u64>> {
        match tokio::fs::metadata(self.path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(self.fetch_shared(digest).await?.map(|bytes| bytes.len() as u64))
            }
            Err(e) => Err(e),
        }
    }

    /// The bytes of a stored blob, or `None`.
    pub async fn read(&self, digest: &BlobDigest) -> std::io::Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(digest)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.fetch_shared(digest).await,
            Err(e) => Err(e),
        }
    }

    /// A blob missing here but uploaded to another replica: copied from the store.
    async fn fetch_shared(&self, digest: &BlobDigest) -> std::io::Result<Option<Vec<u8>>> {
        let Some(store) = &self.shared else { return Ok(None) };
        let key = format!("{SHARED_BLOB_PREFIX}{}", digest.hex);
        let found = store.get(&key).await.map_err(std::io::Error::other)?;
        let Some(kv) = found else { return Ok(None) };
        self.install(digest, &kv.value).await?;
        Ok(Some(kv.value.to_vec()))
    }

    /// Writes a blob received from the store into the directory, after checking its digest.
    async fn install(&self, digest: &BlobDigest, bytes: &[u8]) -> std::io::Result<()> {
        if BlobDigest::of(bytes) != *digest {
            return Err(std::io::Error::other(format!("the shared copy of blob {digest} does not match its digest")));
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let tmp = self.root.join("tmp").join(format!(
            "{}.shared.{}.{}",
            digest.hex,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let guard = RemoveOnDrop(Some(tmp.clone()));
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&tmp, self.path(digest)).await?;
        guard.disarm();
        tracing::info!(%digest, size = bytes.len(), "copied plugin blob from the shared store");
        Ok(())
    }

    /// Copies a stored blob to the shared store (if it is not there yet).
    async fn share(&self, digest: &BlobDigest) -> Result<(), ApiError> {
        let Some(store) = &self.shared else { return Ok(()) };
        let key = format!("{SHARED_BLOB_PREFIX}{}", digest.hex);
        let bytes = tokio::fs::read(self.path(digest))
            .await
            .map_err(|e| ApiError::internal(format!("cannot read blob {digest} to share it: {e}")))?;
        let txn = Txn {
            compares: vec![Compare::ModRevision(key.clone(), 0)],
            ops: vec![Op::Put { key, value: Bytes::from(bytes) }],
        };
        // Failed means another replica shared the same content first: nothing to do.
        store
            .txn(txn)
            .await
            .map_err(|e| ApiError::internal(format!("cannot share blob {digest} with the other replicas: {e}")))?;
        Ok(())
    }

    /// Keeps this directory holding every blob of the shared store: copies those missing,
    /// then those uploaded later to other replicas, until `shutdown` fires.
    pub async fn mirror(self: std::sync::Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(store) = self.shared.clone() else { return };
        loop {
            let result = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                result = self.mirror_once(&store) => result,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "mirroring shared plugin blobs; retrying");
            }
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }

    async fn mirror_once(&self, store: &std::sync::Arc<dyn Store>) -> Result<(), String> {
        use futures::StreamExt;
        // One blob per page: blobs are large.
        let mut after: Option<String> = None;
        let mut revision = None;
        loop {
            let page = store.range(SHARED_BLOB_PREFIX, after.as_deref(), Some(1)).await.map_err(|e| e.to_string())?;
            revision.get_or_insert(page.revision);
            for kv in &page.kvs {
                self.mirror_one(&kv.key, &kv.value).await;
            }
            after = page.kvs.last().map(|kv| kv.key.clone());
            if !page.more || after.is_none() {
                break;
            }
        }
        let from = revision.unwrap_or(0);
        let mut events =
            store.watch(SHARED_BLOB_PREFIX, from, std::time::Duration::ZERO).await.map_err(|e| e.to_string())?;
        while let Some(item) = events.next().await {
            match item.map_err(|e| e.to_string())? {
                WatchItem::Event(e) if e.kind == EventKind::Put => self.mirror_one(&e.kv.key, &e.kv.value).await,
                _ => {}
            }
        }
        Err("the shared blob watch ended".to_string())
    }

    async fn mirror_one(&self, key: &str, bytes: &[u8]) {
        let Some(Ok(digest)) =
            key.strip_prefix(SHARED_BLOB_PREFIX).map(|hex| format!("sha256:{hex}").parse::<BlobDigest>())
        else {
            tracing::warn!(key, "ignoring a shared blob with an invalid name");
            return;
        };
        if tokio::fs::try_exists(self.path(&digest)).await.unwrap_or(false) {
            return;
        }
        if let Err(e) = self.install(&digest, bytes).await {
            tracing::warn!(%digest, error = %e, "could not copy a shared plugin blob");
        }
    }

    /// Streams `body` into the store under `digest`: hashed as it arrives, at most
    /// `max_bytes`, synced, verified, then renamed into place.
    pub async fn write<B>(&self, digest: &BlobDigest, body: B) -> Result<Stored, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: fmt::Display,
    {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let tmp = self.root.join("tmp").join(format!(
            "{}.{}.{}",
            digest.hex,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let guard = RemoveOnDrop(Some(tmp.clone()));
        let io = |what: &str, e: std::io::Error| ApiError::internal(format!("cannot store blob {digest}: {what}: {e}"));
        let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| io("create", e))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ApiError::bad_request(format!("could not read the body of blob {digest}: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            size += data.len() as u64;
            if size > self.max_bytes {
                return Err(too_large(self.max_bytes));
            }
            hasher.update(&data);
            file.write_all(&data).await.map_err(|e| io("write", e))?;
        }
        file.sync_all().await.map_err(|e| io("sync", e))?;
        drop(file);
        let actual = BlobDigest { hex: hex::encode(hasher.finalize()) };
        if actual != *digest {
            return Err(ApiError::bad_request(format!(
                "the uploaded content's digest is {actual}, not {digest} as named in the path ({size} bytes received)"
            )));
        }
        let path = self.path(digest);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            // Shared again in case an earlier upload stored it here but failed to share it.
            self.share(digest).await?;
            return Ok(Stored::AlreadyPresent { size });
        }
        tokio::fs::rename(&tmp, &path).await.map_err(|e| io("rename", e))?;
        guard.disarm();
        // The rename itself must survive a crash too.
        if let Ok(dir) = tokio::fs::File::open(self.root.join("sha256")).await {
            let _ = dir.sync_all().await;
        }
        // Acknowledged only once every replica can serve it.
        self.share(digest).await?;
        tracing::info!(%digest, size, "stored plugin blob");
        Ok(Stored::Created { size })
    }
}

/// Removes a temporary file unless disarmed (errors, early returns, dropped requests).
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::too_large(format!("Request entity too large: a plugin blob may be at most {limit} bytes"))
}

/// `/blobs/` on the hub's listener.
pub struct BlobEndpoint {
    store: std::sync::Arc<BlobStore>,
}

impl BlobEndpoint {
    pub fn new(store: std::sync::Arc<BlobStore>) -> BlobEndpoint {
        BlobEndpoint { store }
    }
}

fn not_found(digest: &BlobDigest) -> ApiError {
    ApiError::new(404, "NotFound", format!("blob {digest} not found"))
}

fn blob_response(status: StatusCode, size: u64, body: Body, digest: &BlobDigest) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/wasm"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{digest}\"")) {
        headers.insert(header::ETAG, etag);
    }
    response
}

#[async_trait]
impl Endpoint for BlobEndpoint {
    fn prefix(&self) -> &str {
        BLOB_PREFIX
    }

    async fn serve(
        &self,
        api: &ApiServer,
        user: &UserInfo,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, ApiError> {
        let put = req.method() == Method::PUT;
        match self.answer(api, user, req).await {
            // A refused upload's body may be unread: the client must not send its next
            // request on this HTTP/1.1 connection (HTTP/2 drops the header and resets the stream).
            Err(e) if put => {
                let mut response = error_response(&e);
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                Ok(response)
            }
            other => other,
        }
    }
}

impl BlobEndpoint {
    async fn answer(
        &self,
        api: &ApiServer,
        user: &UserInfo,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, ApiError> {
        let path = req.uri().path().to_string();
        let verb = match *req.method() {
            Method::GET | Method::HEAD => "get",
            Method::PUT => "put",
            ref other => {
                return Err(ApiError::method_not_allowed(format!(
                    "the server does not allow {other} on {path}: blobs are read with GET or HEAD and uploaded with PUT"
                )));
            }
        };
        let checked = async {
            api.authorize(user, &Attributes::non_resource(verb, &path)).await?;
            path.strip_prefix(BLOB_PREFIX)
                .unwrap_or_default()
                .parse::<BlobDigest>()
                .map_err(|e| ApiError::bad_request(format!("{e} (blobs are addressed as {BLOB_PREFIX}sha256:<hex>)")))
        }
        .await;
        let digest = match checked {
            Ok(digest) => digest,
            Err(e) => {
                // Read (and drop) what the client is still sending, up to the blob limit, so
                // that it receives the refusal instead of a broken pipe.
                if verb == "put" {
                    drain(req.into_body(), self.store.max_bytes()).await;
                }
                return Err(e);
            }
        };
        let io = |e: std::io::Error| ApiError::internal(format!("cannot read blob {digest}: {e}"));
        match *req.method() {
            Method::HEAD => match self.store.size(&digest).await.map_err(io)? {
                Some(size) => Ok(blob_response(StatusCode::OK, size, full(Bytes::new()), &digest)),
                None => Err(not_found(&digest)),
            },
            Method::GET => match self.store.read(&digest).await.map_err(io)? {
                Some(bytes) => Ok(blob_response(StatusCode::OK, bytes.len() as u64, full(bytes), &digest)),
                None => Err(not_found(&digest)),
            },
            _ => {
                let declared = req
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if declared.is_some_and(|n| n > self.store.max_bytes()) {
                    return Err(too_large(self.store.max_bytes()));
                }
                let (status, stored) = match self.store.write(&digest, req.into_body()).await? {
                    Stored::Created { size } => (StatusCode::CREATED, size),
                    Stored::AlreadyPresent { size } => (StatusCode::OK, size),
                };
                let body = json!({"digest": digest.to_string(), "size": stored});
                let mut response = Response::new(full(serde_json::to_vec(&body).unwrap_or_default()));
                *response.status_mut() = status;
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Ok(response)
            }
        }
    }
}

/// Reads and drops a request body, up to `limit` bytes.
async fn drain(mut body: Incoming, limit: u64) {
    let mut read: u64 = 0;
    while read <= limit {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;

    #[test]
    fn digests_parse_strictly() {
        let hex = "0123456789abcdef".repeat(4);
        let d: BlobDigest = format!("sha256:{hex}").parse().expect("digest");
        assert_eq!(d.to_string(), format!("sha256:{hex}"));
        assert_eq!(d.path(), format!("/blobs/sha256:{hex}"));
        for bad in [hex.clone(), format!("sha256:{}", hex.to_uppercase()), format!("sha512:{hex}"), "sha256:ab".into()]
        {
            assert!(bad.parse::<BlobDigest>().is_err(), "{bad}");
        }
        assert_eq!(BlobDigest::of(b"test").hex(), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    }

    #[tokio::test]
    async fn writes_are_verified_atomic_and_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path(), 16).expect("store");
        let digest = BlobDigest::of(b"component");
        let body = || Full::new(Bytes::from_static(b"component"));
        assert_eq!(store.write(&digest, body()).await, Ok(Stored::Created { size: 9 }));
        assert_eq!(store.write(&digest, body()).await, Ok(Stored::AlreadyPresent { size: 9 }));
        assert_eq!(store.read(&digest).await.expect("read").as_deref(), Some(&b"component"[..]));
        assert_eq!(store.size(&digest).await.expect("size"), Some(9));

        let other = BlobDigest::of(b"other");
        let err = store.write(&other, body()).await.expect_err("mismatch");
        assert_eq!(err.code, 400);
        assert!(err.message.contains(&digest.to_string()) && err.message.contains(&other.to_string()), "{err}");
        assert_eq!(store.read(&other).await.expect("read"), None, "nothing stored under the wrong digest");

        let big = vec![7u8; 17];
        let err = store.write(&BlobDigest::of(&big), Full::new(Bytes::from(big.clone()))).await.expect_err("big");
        assert_eq!(err.code, 413);
        assert_eq!(std::fs::read_dir(dir.path().join("blobs/tmp")).expect("tmp").count(), 0, "no leftovers");

        // A crash's leftovers are cleaned on open; stored blobs stay.
        std::fs::write(dir.path().join("blobs/tmp/partial"), b"half").expect("write");
        let store = BlobStore::open(dir.path(), 16).expect("reopen");
        assert_eq!(std::fs::read_dir(dir.path().join("blobs/tmp")).expect("tmp").count(), 0);
        assert!(store.size(&digest).await.expect("size").is_some());
    }

    /// Two replicas' blob directories over one store: an upload to one is served by the
    /// other, fetched on a read that misses or copied ahead by the mirror.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blobs_are_shared_between_replicas_through_the_store() {
        let shared_dir = tempfile::tempdir().expect("tempdir");
        let shared: std::sync::Arc<dyn Store> =
            flotilla_store::RedbStore::open(shared_dir.path(), Default::default()).expect("store");
        let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        let a = BlobStore::open(dir_a.path(), 1 << 20).expect("a").with_shared_store(shared.clone());
        let b =
            std::sync::Arc::new(BlobStore::open(dir_b.path(), 1 << 20).expect("b").with_shared_store(shared.clone()));

        let first = BlobDigest::of(b"first component");
        assert_eq!(
            a.write(&first, Full::new(Bytes::from_static(b"first component"))).await,
            Ok(Stored::Created { size: 15 })
        );
        assert!(!b.path(&first).exists(), "not copied yet");
        assert_eq!(b.size(&first).await.expect("size"), Some(15), "a miss is fetched from the store");
        assert_eq!(std::fs::read(b.path(&first)).expect("copied into b's directory"), b"first component");

        let (stop, signal) = tokio::sync::watch::channel(false);
        let mirror = tokio::spawn(b.clone().mirror(signal));
        let second = BlobDigest::of(b"second component");
        a.write(&second, Full::new(Bytes::from_static(b"second component"))).await.expect("write");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !b.path(&second).exists() {
            assert!(std::time::Instant::now() < deadline, "the mirror did not copy the new blob");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(std::fs::read(b.path(&second)).expect("mirrored"), b"second component");
        let _ = stop.send(true);
        mirror.await.expect("mirror stops on shutdown");

        // A tampered shared copy is refused, not served.
        let bogus = BlobDigest::of(b"expected");
        let key = format!("{SHARED_BLOB_PREFIX}{}", bogus.hex());
        shared
            .txn(Txn { compares: vec![], ops: vec![Op::Put { key, value: Bytes::from_static(b"tampered") }] })
            .await
            .expect("put");
        assert!(b.read(&bogus).await.is_err(), "digest mismatch detected");
        assert!(!b.path(&bogus).exists());
    }
}
