//! The etcd backend against a real etcd (Debian `etcd-server`, started by the harness on
//! loopback ports). These tests fail, not skip, when etcd is missing.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flotilla_store::etcd_testing::EtcdCluster;
use flotilla_store::{
    Election, ElectionOptions, EtcdStore, EtcdStoreOptions, EventKind, Op, Store, Txn, TxnResult, WatchItem,
    conformance,
};
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(20);

async fn cluster(size: usize) -> EtcdCluster {
    EtcdCluster::start(size).await.unwrap_or_else(|e| panic!("starting etcd for the test: {e}"))
}

async fn store_on(cluster: &EtcdCluster, prefix: &str, tune: impl FnOnce(&mut EtcdStoreOptions)) -> Arc<EtcdStore> {
    let mut options =
        EtcdStoreOptions { endpoints: cluster.endpoints(), prefix: prefix.to_owned(), ..EtcdStoreOptions::default() };
    tune(&mut options);
    EtcdStore::connect(options).await.unwrap_or_else(|e| panic!("connecting the store: {e}"))
}

async fn put(store: &Arc<dyn Store>, key: &str, value: Bytes) -> i64 {
    match store.txn(Txn { compares: vec![], ops: vec![Op::Put { key: key.to_owned(), value }] }).await {
        Ok(TxnResult::Succeeded { revision }) => revision,
        other => panic!("put {key}: {other:?}"),
    }
}

/// Keys of chunks still stored under the store's prefix (read with a raw etcd client).
async fn chunk_keys(cluster: &EtcdCluster, prefix: &str) -> usize {
    let mut client = etcd_client::Client::connect(cluster.endpoints(), None).await.expect("raw etcd client");
    let response = client
        .get(format!("{prefix}c"), Some(etcd_client::GetOptions::new().with_prefix().with_count_only()))
        .await
        .expect("count chunks");
    response.count() as usize
}

/// A value of `len` bytes that is not one repeated byte, so misordered chunks show.
fn big_value(len: usize, seed: u8) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 251) as u8 ^ seed).collect::<Vec<u8>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_store_conforms() {
    let etcd = cluster(1).await;
    let store: Arc<dyn Store> = store_on(&etcd, "/conformance-a/", |_| {}).await;
    conformance::run_all(store).await;
}

/// The same suite with every value chunked (a one-byte inline budget and tiny chunks): the
/// staging, commit, reassembly on get/range/watch/failed compares and the cleanup paths
/// must keep every guarantee.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_store_conforms_with_every_value_chunked() {
    let etcd = cluster(1).await;
    let prefix = "/conformance-chunked/";
    let store: Arc<dyn Store> = store_on(&etcd, prefix, |o| {
        o.inline_txn_bytes = 1;
        o.chunk_bytes = 2;
    })
    .await;
    conformance::run_all(store.clone()).await;
    // Every replaced or deleted value's chunks were removed: what remains belongs to live keys.
    let live = store.range("", None, None).await.expect("range").kvs;
    let expected: usize = live.iter().map(|kv| kv.value.len().div_ceil(2)).sum();
    assert_eq!(chunk_keys(&etcd, prefix).await, expected, "chunks of replaced/deleted values must be removed");
}

/// Values far above etcd's 1.5 MiB request limit (etcd runs with its defaults here) are
/// stored, read, listed and watched whole; replacing and deleting them removes their chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_values_are_chunked_transparently() {
    let etcd = cluster(1).await;
    let prefix = "/large/";
    let store: Arc<dyn Store> = store_on(&etcd, prefix, |_| {}).await;
    let key = "/works/ns/big";
    let start = store.current_revision().await.expect("current");
    let mut watch = store.watch("/works/", start, Duration::ZERO).await.expect("watch");

    let eight = big_value(8 << 20, 7);
    let started = std::time::Instant::now();
    let r1 = put(&store, key, eight.clone()).await;
    let put_took = started.elapsed();
    let got = store.get(key).await.expect("get").expect("present");
    assert_eq!((got.value.len(), got.mod_revision, got.version), (eight.len(), r1, 1));
    assert!(got.value == eight, "8 MiB value reassembled byte for byte");
    let listed = store.range("/works/", None, None).await.expect("range");
    assert_eq!(listed.kvs.len(), 1);
    assert!(listed.kvs[0].value == eight);
    assert_eq!(chunk_keys(&etcd, prefix).await, 8, "8 MiB in 1 MiB chunks");

    // Several large values in one transaction, next to a small one: one revision for all.
    let (a, b) = (big_value(3 << 20, 1), big_value(2 << 20, 2));
    let r2 = match store
        .txn(Txn {
            compares: vec![flotilla_store::Compare::ModRevision(key.to_owned(), r1)],
            ops: vec![
                Op::Put { key: "/works/ns/a".to_owned(), value: a.clone() },
                Op::Put { key: "/works/ns/b".to_owned(), value: b.clone() },
                Op::Put { key: key.to_owned(), value: Bytes::from_static(b"small now") },
            ],
        })
        .await
        .expect("txn")
    {
        TxnResult::Succeeded { revision } => revision,
        other => panic!("large txn: {other:?}"),
    };
    for (k, v) in [("/works/ns/a", &a), ("/works/ns/b", &b)] {
        let kv = store.get(k).await.expect("get").expect("present");
        assert!(kv.value == *v, "{k} reassembled");
        assert_eq!(kv.mod_revision, r2);
    }
    assert_eq!(chunk_keys(&etcd, prefix).await, 5, "the 8 MiB value's chunks are gone; a and b remain");

    // A failed compare reports the large current value whole.
    match store
        .txn(Txn {
            compares: vec![flotilla_store::Compare::ModRevision("/works/ns/a".to_owned(), r1)],
            ops: vec![Op::Put { key: "/works/ns/a".to_owned(), value: big_value(4 << 20, 9) }],
        })
        .await
        .expect("txn")
    {
        TxnResult::Failed { current, .. } => {
            assert!(current[0].1.as_ref().map(|kv| &kv.value) == Some(&a), "current value of a, whole");
        }
        other => panic!("stale compare must fail: {other:?}"),
    }
    assert_eq!(chunk_keys(&etcd, prefix).await, 5, "chunks staged by the failed txn are removed");

    let r3 = match store.txn(Txn { compares: vec![], ops: vec![Op::Delete { key: "/works/ns/a".to_owned() }] }).await {
        Ok(TxnResult::Succeeded { revision }) => revision,
        other => panic!("delete: {other:?}"),
    };
    assert_eq!(chunk_keys(&etcd, prefix).await, 2);

    // The watcher saw everything whole, in order.
    let mut next = async || loop {
        match tokio::time::timeout(WAIT, watch.next()).await.expect("watch item in time") {
            Some(Ok(WatchItem::Event(e))) => return e,
            Some(Ok(WatchItem::Progress(_))) => continue,
            other => panic!("watch: {other:?}"),
        }
    };
    let e = next().await;
    assert_eq!((e.kind, e.kv.mod_revision), (EventKind::Put, r1));
    assert!(e.kv.value == eight);
    let e = next().await;
    assert!(e.kv.key == "/works/ns/a" && e.kv.value == a);
    let e = next().await;
    assert!(e.kv.key == "/works/ns/b" && e.kv.value == b);
    let e = next().await;
    assert_eq!(e.kv.value, Bytes::from_static(b"small now"));
    assert!(e.prev.as_ref().map(|p| &p.value) == Some(&eight), "prev of the shrink is the 8 MiB value");
    let e = next().await;
    assert_eq!((e.kind, e.kv.mod_revision), (EventKind::Delete, r3));
    assert!(e.kv.value == a, "delete event carries the deleted large value");
    eprintln!("8 MiB put through etcd took {put_took:?}");
}

/// Stores under different prefixes share one etcd without seeing each other's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prefixes_isolate_stores_on_one_etcd() {
    let etcd = cluster(1).await;
    let one: Arc<dyn Store> = store_on(&etcd, "/tenant-one/", |_| {}).await;
    let two: Arc<dyn Store> = store_on(&etcd, "/tenant-two/", |_| {}).await;
    let start = two.current_revision().await.expect("current");
    let mut watch_two = two.watch("/", start, Duration::ZERO).await.expect("watch");
    put(&one, "/k", Bytes::from_static(b"one")).await;
    assert_eq!(two.get("/k").await.expect("get"), None);
    assert_eq!(two.count("/").await.expect("count"), 0);
    assert!(two.range("/", None, None).await.expect("range").kvs.is_empty());
    let r = put(&two, "/k", Bytes::from_static(b"two")).await;
    match tokio::time::timeout(WAIT, watch_two.next()).await {
        Ok(Some(Ok(WatchItem::Event(e)))) => assert_eq!((e.kv.value.as_ref(), e.kv.mod_revision), (&b"two"[..], r)),
        other => panic!("store two's watcher must see only its own write first: {other:?}"),
    }
    assert_eq!(one.get("/k").await.expect("get").map(|kv| kv.value), Some(Bytes::from_static(b"one")));
}

/// With a three-member cluster, killing a member loses no acknowledged write and a watch
/// carries on (re-established from its last revision) without gaps or duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn survives_losing_an_etcd_member() {
    let mut etcd = cluster(3).await;
    let store: Arc<dyn Store> = store_on(&etcd, "/ha/", |_| {}).await;
    let start = store.current_revision().await.expect("current");
    let mut watch = store.watch("/", start, Duration::ZERO).await.expect("watch");
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        acknowledged.push(put(&store, &format!("/k{i}"), Bytes::from(i.to_string())).await);
    }
    etcd.kill(0);
    let mut failures = 0;
    for i in 20..60 {
        // A write in flight when the member died may fail (its outcome unknown), never
        // silently vanish once acknowledged.
        match store
            .txn(Txn {
                compares: vec![],
                ops: vec![Op::Put { key: format!("/k{i}"), value: Bytes::from(i.to_string()) }],
            })
            .await
        {
            Ok(TxnResult::Succeeded { revision }) => acknowledged.push(revision),
            Ok(other) => panic!("unconditional put: {other:?}"),
            Err(e) => {
                failures += 1;
                assert!(failures < 10, "writes keep failing after losing one member of three: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(acknowledged.len() >= 50, "most writes succeed with two members of three");
    let last = acknowledged.iter().copied().max().unwrap_or(start);
    let mut seen: Vec<i64> = Vec::new();
    while seen.last().is_none_or(|r| *r < last) {
        match tokio::time::timeout(WAIT, watch.next()).await {
            Ok(Some(Ok(WatchItem::Event(e)))) => seen.push(e.kv.mod_revision),
            Ok(Some(Ok(WatchItem::Progress(_)))) => {}
            other => panic!("watch after losing a member ({} of {} events): {other:?}", seen.len(), acknowledged.len()),
        }
    }
    // Failed writes may still have been applied (unknown outcome): the watch may show them.
    for r in &acknowledged {
        assert!(seen.contains(r), "acknowledged write at {r} missing from the watch");
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, seen, "events in order, no duplicates");
    let count = store.count("/").await.expect("count") as usize;
    assert!(count >= acknowledged.len());
}

/// Exactly one candidate leads; when it dies (no resignation: its lease must expire) another
/// takes over within 15 s; a resigning leader hands over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_election_fails_over() {
    let etcd = cluster(1).await;
    let candidate = |name: &str| {
        let endpoints = etcd.endpoints();
        let name = name.to_owned();
        async move {
            // A client each, like separate replicas.
            let client = etcd_client::Client::connect(endpoints, None).await.expect("etcd client");
            Election::start(client, ElectionOptions::new("/election-test/leader", name))
        }
    };
    let leaders = |elections: &[&Election]| elections.iter().filter(|e| *e.leader().borrow()).count();
    let a = candidate("a").await;
    let b = candidate("b").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while leaders(&[&a, &b]) != 1 {
        assert!(tokio::time::Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Stays exactly one for a while (keep-alives keep the lease).
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(leaders(&[&a, &b]), 1, "exactly one leader");
    }
    let (dead, survivor) = if *a.leader().borrow() { (a, b) } else { (b, a) };
    dead.abandon();
    let died = std::time::Instant::now();
    let mut survivor_leads = survivor.leader();
    tokio::time::timeout(Duration::from_secs(15), survivor_leads.wait_for(|l| *l))
        .await
        .expect("the other replica leads within 15 s of the leader dying")
        .expect("election running");
    let failover = died.elapsed();

    let c = candidate("c").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!*c.leader().borrow(), "a new candidate does not displace the leader");
    let resigned = std::time::Instant::now();
    survivor.resign().await;
    let mut c_leads = c.leader();
    tokio::time::timeout(Duration::from_secs(2), c_leads.wait_for(|l| *l))
        .await
        .expect("a resignation hands over at once")
        .expect("election running");
    eprintln!("failover after the leader died: {failover:?}; after a resignation: {:?}", resigned.elapsed());
}

/// Not a check: prints unconditional puts per second, 8 concurrent writers, on etcd (one
/// member, this machine) and on redb. Run with `--ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "measurement, not a check"]
async fn measure_put_throughput() {
    async fn rate(store: Arc<dyn Store>) -> f64 {
        const WRITERS: usize = 8;
        const PUTS: usize = 250;
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..PUTS {
                        put(&store, &format!("/bench/{w}/{i}"), Bytes::from(vec![b'x'; 1024])).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("writer");
        }
        (WRITERS * PUTS) as f64 / started.elapsed().as_secs_f64()
    }
    let etcd = cluster(1).await;
    let on_etcd = rate(store_on(&etcd, "/bench/", |_| {}).await).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let redb: Arc<dyn Store> =
        flotilla_store::RedbStore::open(dir.path(), Default::default()).unwrap_or_else(|e| panic!("redb: {e}"));
    let on_redb = rate(redb).await;
    eprintln!("1 KiB puts/s with 8 writers: etcd {on_etcd:.0}, redb {on_redb:.0}");
}
