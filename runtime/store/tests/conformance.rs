//! Runs the backend-independent conformance suite against the redb store.

use std::sync::Arc;

use flotilla_store::{RedbStore, RedbStoreOptions, Store, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_store_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = RedbStore::open(dir.path(), RedbStoreOptions::default()).expect("open store");
    conformance::run_all(store).await;
}

/// The same suite with a tiny broadcast buffer and replay chunk, so watchers constantly
/// lag and page through the log: the guarantees must hold on that path too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_store_conforms_with_tiny_buffers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options =
        RedbStoreOptions { watch_buffer: 2, watch_replay_chunk: 3, max_batch_txns: 4, ..RedbStoreOptions::default() };
    let store: Arc<dyn Store> = RedbStore::open(dir.path(), options).expect("open store");
    conformance::run_all(store).await;
}
