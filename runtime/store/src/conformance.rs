//! Backend-independent conformance suite for [`Store`].
//!
//! Every check uses only the trait, so each backend (redb today, etcd later) runs the same
//! suite: `conformance::run_all(store).await` from a `#[tokio::test(flavor = "multi_thread")]`.
//! Checks panic with a message on failure, like `assert!`.
//!
//! The store may hold other data: every check works under a fresh prefix and reasons about
//! revisions relative to the ones it observes. [`compaction`] compacts the whole store, so
//! `run_all` runs it last.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;

use crate::{
    Compare, EventKind, KeyValue, Op, Revision, Store, StoreError, Txn, TxnResult, WatchEvent, WatchItem, WatchStream,
};

/// How long a check waits for an expected watch item.
const WAIT: Duration = Duration::from_secs(20);
/// A progress interval long enough never to fire during a check.
const NO_PROGRESS: Duration = Duration::from_secs(3600);

/// Runs every check under a fresh prefix. Compacts the store at the end.
pub async fn run_all(store: Arc<dyn Store>) {
    let base = unique_prefix();
    let s = &store;
    tracing::info!(%base, "store conformance suite starting");
    get_and_put_basics(s, &format!("{base}basics/")).await;
    create_if_absent(s, &format!("{base}create/")).await;
    compare_failure_returns_current(s, &format!("{base}cmpfail/")).await;
    compare_and_swap_update(s, &format!("{base}cas/")).await;
    multi_op_txn_shares_revision(s, &format!("{base}multi/")).await;
    delete_records_prior_value(s, &format!("{base}delete/")).await;
    noop_txn_keeps_revision(s, &format!("{base}noop/")).await;
    range_paging(s, &format!("{base}range/")).await;
    count_prefix(s, &format!("{base}count/")).await;
    concurrent_cas_counter(s, &format!("{base}counter/")).await;
    watch_from_start(s, &format!("{base}wstart/")).await;
    watch_from_middle(s, &format!("{base}wmid/")).await;
    watch_live(s, &format!("{base}wlive/")).await;
    watch_ordering_and_prefix_isolation(s, &format!("{base}word/")).await;
    watch_replay_to_live_no_gaps(s, &format!("{base}wgaps/")).await;
    watch_progress(s, &format!("{base}wprog/")).await;
    future_revision(s, &format!("{base}future/")).await;
    compaction(s, &format!("{base}compact/")).await;
    tracing::info!(%base, "store conformance suite passed");
}

fn unique_prefix() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("/conformance/{nanos}/")
}

// ----- helpers -------------------------------------------------------------------------

fn put_op(key: &str, value: &str) -> Op {
    Op::Put { key: key.to_owned(), value: Bytes::copy_from_slice(value.as_bytes()) }
}

fn delete_op(key: &str) -> Op {
    Op::Delete { key: key.to_owned() }
}

/// Unconditional put; returns its revision.
pub async fn put(store: &Arc<dyn Store>, key: &str, value: &str) -> Revision {
    let result = store.txn(Txn { compares: vec![], ops: vec![put_op(key, value)] }).await.expect("put txn");
    match result {
        TxnResult::Succeeded { revision } => revision,
        other => panic!("unconditional put of {key} failed: {other:?}"),
    }
}

async fn succeed(store: &Arc<dyn Store>, txn: Txn) -> Revision {
    match store.txn(txn.clone()).await.expect("txn") {
        TxnResult::Succeeded { revision } => revision,
        other => panic!("txn {txn:?} expected to succeed, got {other:?}"),
    }
}

async fn get(store: &Arc<dyn Store>, key: &str) -> Option<KeyValue> {
    store.get(key).await.expect("get")
}

async fn watch(store: &Arc<dyn Store>, prefix: &str, after: Revision) -> WatchStream {
    store.watch(prefix, after, NO_PROGRESS).await.unwrap_or_else(|e| panic!("watch {prefix:?} after {after}: {e}"))
}

/// The next item, failing on timeout, end of stream or error.
async fn next_item(stream: &mut WatchStream) -> WatchItem {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Err(_) => panic!("no watch item within {WAIT:?}"),
        Ok(None) => panic!("watch stream ended"),
        Ok(Some(Err(e))) => panic!("watch stream error: {e}"),
        Ok(Some(Ok(item))) => item,
    }
}

/// The next event, skipping progress items.
async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    loop {
        if let WatchItem::Event(e) = next_item(stream).await {
            return e;
        }
    }
}

/// Asserts no event arrives for `quiet`.
async fn expect_no_event(stream: &mut WatchStream, quiet: Duration) {
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return,
            Ok(Some(Ok(WatchItem::Progress(_)))) => continue,
            Ok(other) => panic!("expected no watch event, got {other:?}"),
        }
    }
}

/// A watch that must be refused with a given error, either by `watch` itself or as the
/// first item of the stream (backends may check lazily).
async fn watch_error(store: &Arc<dyn Store>, prefix: &str, after: Revision) -> StoreError {
    match store.watch(prefix, after, NO_PROGRESS).await {
        Err(e) => e,
        Ok(mut stream) => match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(Err(e))) => e,
            other => panic!("watch after {after} should fail, got {other:?}"),
        },
    }
}

fn assert_put(e: &WatchEvent, key: &str, value: &str, revision: Revision) {
    assert_eq!(e.kind, EventKind::Put, "event {e:?}");
    assert_eq!(e.kv.key, key, "event {e:?}");
    assert_eq!(e.kv.value, value.as_bytes(), "event {e:?}");
    assert_eq!(e.kv.mod_revision, revision, "event {e:?}");
}

// ----- key/value and transactions ----------------------------------------------------

/// `get` of a missing key, a put creating a key, a put updating it.
pub async fn get_and_put_basics(store: &Arc<dyn Store>, p: &str) {
    let k = format!("{p}k");
    assert_eq!(get(store, &k).await, None, "missing key");
    let r1 = put(store, &k, "v1").await;
    assert!(r1 > 0, "revisions start at 1");
    let kv = get(store, &k).await.expect("created key");
    assert_eq!(
        kv,
        KeyValue {
            key: k.clone(),
            value: Bytes::from_static(b"v1"),
            create_revision: r1,
            mod_revision: r1,
            version: 1
        }
    );
    let r2 = put(store, &k, "v2").await;
    assert!(r2 > r1, "each write gets a new revision");
    let kv = get(store, &k).await.expect("updated key");
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (r1, r2, 2));
    assert_eq!(kv.value, "v2".as_bytes());
    assert!(store.current_revision().await.expect("current") >= r2);
}

/// `ModRevision(key, 0)` creates only if absent.
pub async fn create_if_absent(store: &Arc<dyn Store>, p: &str) {
    let k = format!("{p}k");
    let create = |v: &str| Txn { compares: vec![Compare::ModRevision(k.clone(), 0)], ops: vec![put_op(&k, v)] };
    let r = succeed(store, create("first")).await;
    match store.txn(create("second")).await.expect("txn") {
        TxnResult::Failed { revision, current } => {
            assert!(revision >= r);
            assert_eq!(current.len(), 1);
            assert_eq!(current[0].0, k);
            let kv = current[0].1.as_ref().expect("existing key reported");
            assert_eq!(kv.value, "first".as_bytes());
            assert_eq!(kv.mod_revision, r);
        }
        other => panic!("second create must fail: {other:?}"),
    }
    assert_eq!(get(store, &k).await.expect("key").value, "first".as_bytes());
}

/// A failed compare applies nothing, does not bump the revision and reports the current
/// state of every compared key (None where absent).
pub async fn compare_failure_returns_current(store: &Arc<dyn Store>, p: &str) {
    let k = format!("{p}k");
    let missing = format!("{p}missing");
    let r = put(store, &k, "v").await;
    let before = store.current_revision().await.expect("current");
    let result = store
        .txn(Txn {
            compares: vec![Compare::ModRevision(k.clone(), r + 1000), Compare::Exists(missing.clone())],
            ops: vec![put_op(&k, "clobbered"), put_op(&missing, "x")],
        })
        .await
        .expect("txn");
    match result {
        TxnResult::Failed { revision, current } => {
            assert!(revision >= before, "failed txn reports the current revision");
            let found: Vec<_> = current.iter().map(|(key, _)| key.as_str()).collect();
            assert_eq!(found, vec![k.as_str(), missing.as_str()]);
            assert_eq!(
                current[0].1.as_ref().map(|kv| (kv.mod_revision, kv.value.clone())),
                Some((r, Bytes::from_static(b"v")))
            );
            assert_eq!(current[1].1, None, "absent key reported as None");
        }
        other => panic!("compare must fail: {other:?}"),
    }
    assert_eq!(get(store, &k).await.expect("key").value, "v".as_bytes());
    assert_eq!(get(store, &missing).await, None);

    // Exists on a missing key alone fails; on an existing key succeeds.
    match store
        .txn(Txn { compares: vec![Compare::Exists(missing.clone())], ops: vec![put_op(&missing, "x")] })
        .await
        .expect("txn")
    {
        TxnResult::Failed { current, .. } => assert_eq!(current, vec![(missing.clone(), None)]),
        other => panic!("Exists(missing) must fail: {other:?}"),
    }
    let r2 = succeed(store, Txn { compares: vec![Compare::Exists(k.clone())], ops: vec![put_op(&k, "v2")] }).await;
    assert!(r2 > r);
}

/// Optimistic concurrency on `mod_revision`: a stale update fails, a fresh one succeeds
/// and keeps `create_revision`.
pub async fn compare_and_swap_update(store: &Arc<dyn Store>, p: &str) {
    let k = format!("{p}k");
    let r1 = put(store, &k, "1").await;
    let cas = |expect: Revision, v: &str| Txn {
        compares: vec![Compare::ModRevision(k.clone(), expect)],
        ops: vec![put_op(&k, v)],
    };
    let r2 = succeed(store, cas(r1, "2")).await;
    assert!(r2 > r1);
    match store.txn(cas(r1, "stale")).await.expect("txn") {
        TxnResult::Failed { current, .. } => {
            assert_eq!(current[0].1.as_ref().map(|kv| kv.mod_revision), Some(r2));
        }
        other => panic!("stale CAS must fail: {other:?}"),
    }
    let kv = get(store, &k).await.expect("key");
    assert_eq!((kv.value.as_ref(), kv.create_revision, kv.mod_revision, kv.version), (&b"2"[..], r1, r2, 2));
}

/// All ops of a txn share one revision, and their events carry it, in op order.
pub async fn multi_op_txn_shares_revision(store: &Arc<dyn Store>, p: &str) {
    let (a, b, c, d) = (format!("{p}a"), format!("{p}b"), format!("{p}c"), format!("{p}d"));
    let r0 = put(store, &d, "doomed").await;
    let r = succeed(
        store,
        Txn {
            compares: vec![Compare::Exists(d.clone())],
            ops: vec![put_op(&c, "C"), put_op(&a, "A"), delete_op(&d), put_op(&b, "B")],
        },
    )
    .await;
    assert!(r > r0);
    for key in [&a, &b, &c] {
        let kv = get(store, key).await.expect("written key");
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (r, r, 1), "{key}");
    }
    assert_eq!(get(store, &d).await, None);
    assert!(store.current_revision().await.expect("current") >= r);
    let mut w = watch(store, p, r0).await;
    let got: Vec<_> =
        [next_event(&mut w).await, next_event(&mut w).await, next_event(&mut w).await, next_event(&mut w).await]
            .into_iter()
            .map(|e| (e.kind, e.kv.key, e.kv.mod_revision))
            .collect();
    assert_eq!(
        got,
        vec![
            (EventKind::Put, c.clone(), r),
            (EventKind::Put, a.clone(), r),
            (EventKind::Delete, d.clone(), r),
            (EventKind::Put, b.clone(), r),
        ]
    );
}

/// A delete's event carries the deleted value; deleting a missing key changes nothing;
/// a re-created key starts over at version 1.
pub async fn delete_records_prior_value(store: &Arc<dyn Store>, p: &str) {
    let k = format!("{p}k");
    let r1 = put(store, &k, "v1").await;
    let r2 = put(store, &k, "v2").await;
    let r3 = succeed(store, Txn { compares: vec![], ops: vec![delete_op(&k)] }).await;
    assert!(r3 > r2);
    assert_eq!(get(store, &k).await, None);

    let mut w = watch(store, p, r1).await;
    let update = next_event(&mut w).await;
    assert_put(&update, &k, "v2", r2);
    if let Some(prev) = &update.prev {
        assert_eq!((prev.value.as_ref(), prev.mod_revision), (&b"v1"[..], r1));
    }
    let del = next_event(&mut w).await;
    assert_eq!(del.kind, EventKind::Delete);
    assert_eq!(del.kv.key, k);
    assert_eq!(del.kv.value, "v2".as_bytes(), "delete event carries the deleted value");
    assert_eq!(del.kv.mod_revision, r3, "delete event has the deletion revision");
    assert_eq!(del.kv.create_revision, r1);

    // Deleting a missing key records nothing.
    let current = store.current_revision().await.expect("current");
    let r = succeed(store, Txn { compares: vec![], ops: vec![delete_op(&k)] }).await;
    assert!(r <= store.current_revision().await.expect("current"));
    assert!(r >= current);
    expect_no_event(&mut w, Duration::from_millis(200)).await;

    let r4 = put(store, &k, "again").await;
    let kv = get(store, &k).await.expect("recreated");
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (r4, r4, 1));
    assert_put(&next_event(&mut w).await, &k, "again", r4);
}

/// A txn whose ops change nothing succeeds at the current revision without creating one.
pub async fn noop_txn_keeps_revision(store: &Arc<dyn Store>, p: &str) {
    let k = format!("{p}k");
    let r = put(store, &k, "v").await;
    let mut w = watch(store, p, r).await;
    let result = succeed(store, Txn { compares: vec![Compare::ModRevision(k.clone(), r)], ops: vec![] }).await;
    assert!(result >= r);
    assert!(result <= store.current_revision().await.expect("current"));
    assert_eq!(get(store, &k).await.expect("key").mod_revision, r);
    expect_no_event(&mut w, Duration::from_millis(200)).await;
}

/// Prefix ranges are ascending, page with `start_after`/`limit`, flag `more`, and exclude
/// neighbouring keys.
pub async fn range_paging(store: &Arc<dyn Store>, p: &str) {
    let prefix = format!("{p}items/");
    let keys: Vec<String> = (0..25).map(|i| format!("{prefix}k{i:02}")).collect();
    // Neighbours sorting right before/after the prefix must never appear.
    let mut ops: Vec<Op> = keys.iter().rev().map(|k| put_op(k, k)).collect();
    ops.push(put_op(&format!("{p}items"), "before"));
    ops.push(put_op(&format!("{p}items0"), "after"));
    ops.push(put_op(&format!("{p}items.x"), "after"));
    let r = succeed(store, Txn { compares: vec![], ops }).await;

    let all = store.range(&prefix, None, None).await.expect("range");
    assert!(!all.more);
    assert!(all.revision >= r, "range revision {} < write {r}", all.revision);
    let got: Vec<&str> = all.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(got, keys.iter().map(String::as_str).collect::<Vec<_>>());
    for kv in &all.kvs {
        assert_eq!(kv.value, kv.key.as_bytes());
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (r, r, 1));
    }

    let page = |after: Option<usize>, limit: usize| {
        let start = after.map(|i| keys[i].clone());
        let prefix = prefix.clone();
        async move { store.range(&prefix, start.as_deref(), Some(limit)).await.expect("range page") }
    };
    let p1 = page(None, 10).await;
    assert_eq!(p1.kvs.len(), 10);
    assert!(p1.more);
    assert_eq!(p1.kvs[0].key, keys[0]);
    let p2 = page(Some(9), 10).await;
    assert_eq!(p2.kvs.first().map(|kv| &kv.key), Some(&keys[10]));
    assert_eq!(p2.kvs.len(), 10);
    assert!(p2.more);
    let p3 = page(Some(19), 10).await;
    assert_eq!(p3.kvs.iter().map(|kv| &kv.key).collect::<Vec<_>>(), keys[20..].iter().collect::<Vec<_>>());
    assert!(!p3.more);
    let exact = page(Some(19), 5).await;
    assert_eq!(exact.kvs.len(), 5);
    assert!(!exact.more, "limit equal to the remainder leaves nothing more");
    let last = page(Some(24), 10).await;
    assert!(last.kvs.is_empty() && !last.more);

    // start_after before the prefix starts at the prefix; after all keys yields nothing.
    let before = store.range(&prefix, Some(p), Some(3)).await.expect("range");
    assert_eq!(before.kvs.first().map(|kv| &kv.key), Some(&keys[0]));
    assert!(before.more);
    let beyond = store.range(&prefix, Some(&format!("{prefix}zzz")), None).await.expect("range");
    assert!(beyond.kvs.is_empty() && !beyond.more);
    // A key between two stored keys works as a cursor too.
    let between = store.range(&prefix, Some(&format!("{}~", keys[3])), Some(1)).await.expect("range");
    assert_eq!(between.kvs[0].key, keys[4]);

    let empty = store.range(&format!("{p}nothing/"), None, None).await.expect("range");
    assert!(empty.kvs.is_empty() && !empty.more);
}

/// `count` counts exactly the keys under the prefix.
pub async fn count_prefix(store: &Arc<dyn Store>, p: &str) {
    let prefix = format!("{p}c/");
    assert_eq!(store.count(&prefix).await.expect("count"), 0);
    let mut ops: Vec<Op> = (0..17).map(|i| put_op(&format!("{prefix}{i}"), "x")).collect();
    ops.push(put_op(&format!("{p}c"), "outside"));
    ops.push(put_op(&format!("{p}c0"), "outside"));
    succeed(store, Txn { compares: vec![], ops }).await;
    assert_eq!(store.count(&prefix).await.expect("count"), 17);
    succeed(
        store,
        Txn { compares: vec![], ops: vec![delete_op(&format!("{prefix}3")), delete_op(&format!("{prefix}4"))] },
    )
    .await;
    assert_eq!(store.count(&prefix).await.expect("count"), 15);
    assert_eq!(store.count(p).await.expect("count"), 17);
}

/// Concurrent read-modify-write loops on one key lose no update.
pub async fn concurrent_cas_counter(store: &Arc<dyn Store>, p: &str) {
    const TASKS: usize = 8;
    const INCREMENTS: usize = 25;
    let k = format!("{p}counter");
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = store.clone();
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = get(&store, &k).await;
            for _ in 0..INCREMENTS {
                loop {
                    let (expect, next) = match &seen {
                        None => (0, 1u64),
                        Some(kv) => {
                            let n: u64 = std::str::from_utf8(&kv.value).expect("utf8").parse().expect("number");
                            (kv.mod_revision, n + 1)
                        }
                    };
                    let txn = Txn {
                        compares: vec![Compare::ModRevision(k.clone(), expect)],
                        ops: vec![put_op(&k, &next.to_string())],
                    };
                    match store.txn(txn).await.expect("txn") {
                        TxnResult::Succeeded { revision } => {
                            seen = Some(KeyValue {
                                key: k.clone(),
                                value: Bytes::from(next.to_string()),
                                create_revision: 0,
                                mod_revision: revision,
                                version: 0,
                            });
                            break;
                        }
                        // The failure tells us the current value: retry without a read.
                        TxnResult::Failed { current, .. } => {
                            seen = current.into_iter().next().and_then(|(_, kv)| kv);
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("counter task");
    }
    let kv = get(store, &k).await.expect("counter");
    let total = (TASKS * INCREMENTS) as u64;
    assert_eq!(kv.value, total.to_string().as_bytes());
    assert_eq!(kv.version, total as i64);
}

// ----- watch ----------------------------------------------------------------------------

/// Watching from revision 0 replays all history under the prefix (or reports that the
/// store has been compacted).
pub async fn watch_from_start(store: &Arc<dyn Store>, p: &str) {
    let revs = [
        put(store, &format!("{p}a"), "1").await,
        put(store, &format!("{p}b"), "2").await,
        put(store, &format!("{p}a"), "3").await,
    ];
    let compacted = store.compacted_revision().await.expect("compacted");
    if compacted > 0 {
        match watch_error(store, p, 0).await {
            StoreError::Compacted { requested: 0, .. } => {}
            other => panic!("watch from 0 on a compacted store: {other}"),
        }
        return;
    }
    let mut w = watch(store, p, 0).await;
    assert_put(&next_event(&mut w).await, &format!("{p}a"), "1", revs[0]);
    assert_put(&next_event(&mut w).await, &format!("{p}b"), "2", revs[1]);
    let e = next_event(&mut w).await;
    assert_put(&e, &format!("{p}a"), "3", revs[2]);
    assert_eq!((e.kv.create_revision, e.kv.version), (revs[0], 2));
    expect_no_event(&mut w, Duration::from_millis(100)).await;
}

/// Watching from a revision in the middle yields exactly the later events.
pub async fn watch_from_middle(store: &Arc<dyn Store>, p: &str) {
    let mut revs = Vec::new();
    for i in 0..6 {
        revs.push(put(store, &format!("{p}k{i}"), &i.to_string()).await);
    }
    let mut w = watch(store, p, revs[2]).await;
    for (i, rev) in revs.iter().enumerate().skip(3) {
        assert_put(&next_event(&mut w).await, &format!("{p}k{i}"), &i.to_string(), *rev);
    }
    expect_no_event(&mut w, Duration::from_millis(100)).await;
    // From the current revision: nothing until the next write.
    let mut now = watch(store, p, revs[5]).await;
    expect_no_event(&mut now, Duration::from_millis(100)).await;
}

/// A watch from the current revision receives later writes as they happen.
pub async fn watch_live(store: &Arc<dyn Store>, p: &str) {
    let k = format!("{p}k");
    let r0 = put(store, &k, "0").await;
    let current = store.current_revision().await.expect("current");
    let mut w = watch(store, p, current).await;
    for i in 1..=5 {
        let r = put(store, &k, &i.to_string()).await;
        let e = next_event(&mut w).await;
        assert_put(&e, &k, &i.to_string(), r);
        assert_eq!(e.kv.create_revision, r0);
        assert_eq!(e.kv.version, i + 1);
        if let Some(prev) = &e.prev {
            assert_eq!(prev.value, (i - 1).to_string().as_bytes());
        }
    }
}

/// Events arrive in revision order across keys, and only for the watched prefix.
pub async fn watch_ordering_and_prefix_isolation(store: &Arc<dyn Store>, p: &str) {
    let inside = format!("{p}in/");
    let start = store.current_revision().await.expect("current");
    let mut w = watch(store, &inside, start).await;
    let mut expected = Vec::new();
    for i in 0..20 {
        let key = format!("{inside}{}", 19 - i); // keys in descending order, revisions ascending
        expected.push((key.clone(), put(store, &key, "v").await));
        put(store, &format!("{p}out/{i}"), "v").await;
        put(store, &format!("{p}in"), "no trailing slash: outside").await;
    }
    for (key, rev) in expected {
        let e = next_event(&mut w).await;
        assert_eq!((e.kv.key, e.kv.mod_revision), (key, rev));
    }
    expect_no_event(&mut w, Duration::from_millis(100)).await;
}

/// Watchers opened from the past while writers are busy switch from replay to live
/// delivery without gaps or duplicates.
pub async fn watch_replay_to_live_no_gaps(store: &Arc<dyn Store>, p: &str) {
    const WRITERS: usize = 4;
    const WRITES: usize = 60;
    let done_key = format!("{p}~done");
    let start = store.current_revision().await.expect("current");

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let p = p.to_owned();
        writers.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..WRITES {
                revs.push(put(&store, &format!("{p}w{w}/{i}"), &i.to_string()).await);
                if i % 8 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            revs
        }));
    }
    // Watchers from before the writes (long replay racing the writers), and from points
    // in the middle of the write stream.
    let mut watchers = Vec::new();
    for n in 0..6u64 {
        let store = store.clone();
        let p = p.to_owned();
        let done_key = done_key.clone();
        watchers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(n * 7)).await;
            let after = if n % 2 == 0 { start } else { store.current_revision().await.expect("current") };
            let mut w = watch(&store, &p, after).await;
            let mut seen = Vec::new();
            loop {
                let e = next_event(&mut w).await;
                seen.push(e.kv.mod_revision);
                if e.kv.key == done_key {
                    return (after, seen);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for w in writers {
        all.extend(w.await.expect("writer"));
    }
    all.push(put(store, &done_key, "done").await);
    all.sort_unstable();
    for w in watchers {
        let (after, seen) = w.await.expect("watcher");
        let expected: Vec<Revision> = all.iter().copied().filter(|r| *r > after).collect();
        assert_eq!(seen, expected, "watcher after {after}: events must be exactly the later writes, in order");
    }
}

/// An idle watcher learns, via progress items, that the store moved on without changes
/// under its prefix; progress never goes backwards or hides an event.
pub async fn watch_progress(store: &Arc<dyn Store>, p: &str) {
    let interval = Duration::from_millis(200);
    let quiet = format!("{p}quiet/");
    let busy = format!("{p}busy/");
    let r0 = put(store, &format!("{quiet}k"), "0").await;
    let mut w = store.watch(&quiet, r0 - 1, interval).await.expect("watch with progress");
    match next_item(&mut w).await {
        WatchItem::Event(e) => assert_eq!(e.kv.mod_revision, r0),
        other => panic!("expected the event first, got {other:?}"),
    }
    let mut last_busy = 0;
    for i in 0..3 {
        last_busy = put(store, &format!("{busy}{i}"), "x").await;
    }
    let started = Instant::now();
    let mut previous: Option<(Instant, Revision)> = None;
    loop {
        match next_item(&mut w).await {
            WatchItem::Progress(rev) => {
                assert!(rev > r0, "progress {rev} must be beyond the delivered event {r0}");
                if let Some((at, prev_rev)) = previous {
                    assert!(rev >= prev_rev, "progress went backwards");
                    // "At most once per interval", with slack for timer granularity.
                    assert!(at.elapsed() >= interval / 2, "progress too frequent");
                }
                previous = Some((Instant::now(), rev));
                if rev >= last_busy {
                    break;
                }
            }
            WatchItem::Event(e) => panic!("unexpected event {e:?}"),
        }
        assert!(started.elapsed() < WAIT, "no progress reaching {last_busy}");
    }
    // An event after progress still arrives, at a later revision.
    let r1 = put(store, &format!("{quiet}k"), "1").await;
    let e = next_event(&mut w).await;
    assert_put(&e, &format!("{quiet}k"), "1", r1);
    assert!(r1 > last_busy);
}

/// Watching or compacting beyond the current revision is refused.
pub async fn future_revision(store: &Arc<dyn Store>, p: &str) {
    put(store, &format!("{p}k"), "v").await;
    let current = store.current_revision().await.expect("current");
    match watch_error(store, p, current + 1000).await {
        StoreError::FutureRevision { requested, .. } => assert_eq!(requested, current + 1000),
        other => panic!("expected FutureRevision, got {other}"),
    }
    match store.compact(current + 1000).await {
        Err(StoreError::FutureRevision { requested, .. }) => assert_eq!(requested, current + 1000),
        other => panic!("compact into the future: {other:?}"),
    }
    // The current revision itself is fine.
    let mut w = watch(store, p, current).await;
    expect_no_event(&mut w, Duration::from_millis(50)).await;
}

/// Compaction forgets history at and below the given revision, keeps current values,
/// and ignores requests to compact to an older point. Compacts the whole store.
pub async fn compaction(store: &Arc<dyn Store>, p: &str) {
    let (a, b, c) = (format!("{p}a"), format!("{p}b"), format!("{p}c"));
    let r1 = put(store, &a, "1").await;
    let r2 = put(store, &b, "2").await;
    let r3 = put(store, &c, "3").await;
    store.compact(r2).await.expect("compact");
    let compacted = store.compacted_revision().await.expect("compacted");
    assert!(compacted >= r2, "compacted revision {compacted} < {r2}");
    if compacted == r2 {
        match watch_error(store, p, r2 - 1).await {
            StoreError::Compacted { requested, compacted } => {
                assert_eq!(requested, r2 - 1);
                assert_eq!(compacted, r2);
            }
            other => panic!("expected Compacted, got {other}"),
        }
        // From the compaction point itself history is complete.
        let mut w = watch(store, p, r2).await;
        assert_put(&next_event(&mut w).await, &c, "3", r3);
    }
    match watch_error(store, p, 0).await {
        StoreError::Compacted { requested: 0, .. } => {}
        other => panic!("expected Compacted for revision 0, got {other}"),
    }
    // Values survive compaction.
    assert_eq!(get(store, &a).await.expect("a").mod_revision, r1);
    assert_eq!(get(store, &b).await.expect("b").mod_revision, r2);
    assert_eq!(store.range(p, None, None).await.expect("range").kvs.len(), 3);
    // Compacting to an older revision is a no-op.
    store.compact(r1).await.expect("compact older");
    assert!(store.compacted_revision().await.expect("compacted") >= compacted);
    // Writes and watches continue normally.
    let current = store.current_revision().await.expect("current");
    let mut w = watch(store, p, current).await;
    let r4 = put(store, &a, "4").await;
    let e = next_event(&mut w).await;
    assert_put(&e, &a, "4", r4);
    assert_eq!((e.kv.create_revision, e.kv.version), (r1, 2));
}
