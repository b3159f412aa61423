//! RedbStore-specific tests: persistence, crash durability, lagging watchers, fan-out,
//! corruption handling, and a few throughput measurements (printed, not asserted).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flotilla_store::{
    EventKind, Op, RedbStore, RedbStoreOptions, Revision, Store, StoreError, Txn, TxnResult, WatchItem, WatchStream,
};
use futures::StreamExt;

const NO_PROGRESS: Duration = Duration::from_secs(3600);
const WAIT: Duration = Duration::from_secs(30);

fn open(dir: &Path, options: RedbStoreOptions) -> Arc<dyn Store> {
    RedbStore::open(dir, options).expect("open store")
}

async fn put(store: &Arc<dyn Store>, key: &str, value: &str) -> Revision {
    match store
        .txn(Txn {
            compares: vec![],
            ops: vec![Op::Put { key: key.into(), value: Bytes::copy_from_slice(value.as_bytes()) }],
        })
        .await
        .expect("txn")
    {
        TxnResult::Succeeded { revision } => revision,
        other => panic!("put failed: {other:?}"),
    }
}

async fn next(stream: &mut WatchStream) -> Option<Result<WatchItem, StoreError>> {
    tokio::time::timeout(WAIT, stream.next()).await.expect("watch item in time")
}

async fn next_event_rev(stream: &mut WatchStream) -> Revision {
    loop {
        match next(stream).await {
            Some(Ok(WatchItem::Event(e))) => return e.kv.mod_revision,
            Some(Ok(WatchItem::Progress(_))) => continue,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_data_and_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (r_last, compacted) = {
        let store = open(dir.path(), RedbStoreOptions::default());
        for i in 0..10 {
            put(&store, &format!("k/{i}"), &format!("v{i}")).await;
        }
        put(&store, "k/3", "updated").await;
        let r = put(&store, "k/4", "updated").await;
        store.compact(r - 3).await.expect("compact");
        (r, r - 3)
    };
    // Dropping the store closed the file: reopening the same path works at once.
    let store = open(dir.path(), RedbStoreOptions::default());
    assert_eq!(store.current_revision().await.expect("current"), r_last);
    assert_eq!(store.compacted_revision().await.expect("compacted"), compacted);
    let kv = store.get("k/3").await.expect("get").expect("k/3");
    assert_eq!((kv.value.as_ref(), kv.version), (&b"updated"[..], 2));
    assert_eq!(store.count("k/").await.expect("count"), 10);
    // History after the compaction point is still there, and revisions continue.
    let mut w = store.watch("k/", compacted, NO_PROGRESS).await.expect("watch");
    for rev in compacted + 1..=r_last {
        assert_eq!(next_event_rev(&mut w).await, rev);
    }
    assert_eq!(put(&store, "k/new", "x").await, r_last + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_closes_watchers_and_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), RedbStoreOptions::default());
    let r = put(&store, "a", "1").await;
    let mut w = store.watch("", r, NO_PROGRESS).await.expect("watch");
    drop(store);
    // The live watch does not keep the database open.
    let reopened = open(dir.path(), RedbStoreOptions::default());
    assert!(matches!(next(&mut w).await, Some(Err(StoreError::Closed))));
    assert!(next(&mut w).await.is_none());
    assert_eq!(reopened.current_revision().await.expect("current"), r);
}

// ----- kill -9 -------------------------------------------------------------------------

const CHILD_DB_ENV: &str = "FLOTILLA_STORE_KILL9_DB";
const CHILD_ROUND_ENV: &str = "FLOTILLA_STORE_KILL9_ROUND";

/// Not a test on its own: when re-executed by `acknowledged_writes_survive_kill9` with
/// the env var set, writes forever from 16 tasks and prints every acknowledged write.
#[test]
fn kill9_child_writer() {
    let Ok(db) = std::env::var(CHILD_DB_ENV) else {
        return;
    };
    let round = std::env::var(CHILD_ROUND_ENV).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let store = open(Path::new(&db), RedbStoreOptions::default());
        let mut tasks = Vec::new();
        for t in 0..16 {
            let store = store.clone();
            let round = round.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("r{round}/w{t}/{i}");
                    let rev = put(&store, &key, &format!("value-{i}")).await;
                    // Written straight to stdout (not captured by the harness), one line
                    // per acknowledged write.
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key} {rev}").expect("stdout");
                    out.flush().expect("flush");
                }
            }));
        }
        // Safety net should the parent never kill us.
        let _ = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(tasks)).await;
    });
}

#[test]
fn acknowledged_writes_survive_kill9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("store.redb");
    let exe = std::env::current_exe().expect("current exe");
    let mut acked: Vec<(String, Revision)> = Vec::new();
    for (round, kill_after) in [(0, 200usize), (1, 1000), (2, 50)] {
        let mut child = Command::new(&exe)
            .args(["--exact", "kill9_child_writer", "--nocapture", "--test-threads", "1"])
            .env(CHILD_DB_ENV, &db)
            .env(CHILD_ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let lines = BufReader::new(stdout).lines();
        let mut this_round = 0;
        let mut killed = false;
        // Everything printed was acknowledged, including lines still in the pipe when
        // the child dies: read to EOF.
        for line in lines {
            let line = line.expect("read child output");
            let Some(rest) = line.strip_prefix("ACK ") else {
                continue;
            };
            let (key, rev) = rest.split_once(' ').expect("ack line");
            acked.push((key.to_owned(), rev.parse().expect("revision")));
            this_round += 1;
            if this_round >= kill_after && !killed {
                child.kill().expect("SIGKILL child"); // std sends SIGKILL on Unix
                killed = true;
            }
        }
        let status = child.wait().expect("wait child");
        assert!(killed, "child exited before being killed: {status:?}");
        assert!(!status.success(), "child must die from SIGKILL");
        eprintln!("round {round}: {this_round} writes acknowledged before SIGKILL");
    }

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = open(&db, RedbStoreOptions::default());
        let max = acked.iter().map(|(_, r)| *r).max().expect("some acks");
        assert!(store.current_revision().await.expect("current") >= max);
        let mut revisions = HashMap::new();
        for (key, rev) in &acked {
            let kv =
                store.get(key).await.expect("get").unwrap_or_else(|| panic!("acknowledged write {key}@{rev} lost"));
            assert_eq!(kv.mod_revision, *rev, "{key}");
            let i = key.rsplit('/').next().expect("index");
            assert_eq!(kv.value, format!("value-{i}").as_bytes());
            assert!(revisions.insert(*rev, key).is_none(), "revision {rev} reused");
        }
        // The recovered store keeps working and its history is intact from revision 0.
        let mut w = store.watch("", 0, NO_PROGRESS).await.expect("watch");
        let current = store.current_revision().await.expect("current");
        for rev in 1..=current {
            assert_eq!(next_event_rev(&mut w).await, rev);
        }
        assert_eq!(put(&store, "after-crash", "ok").await, current + 1);
        eprintln!("{} acknowledged writes verified after 3 kills", acked.len());
    });
}

// ----- lagging watchers --------------------------------------------------------------

fn lag_options() -> RedbStoreOptions {
    RedbStoreOptions { watch_buffer: 4, watch_replay_chunk: 16, ..RedbStoreOptions::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_catches_up_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), lag_options());
    let r0 = put(&store, "lag/first", "x").await;
    let mut w = store.watch("lag/", r0 - 1, NO_PROGRESS).await.expect("watch");
    assert_eq!(next_event_rev(&mut w).await, r0); // now live
    // 300 single-txn batches without polling: far beyond the 4-batch broadcast buffer.
    let mut expected = Vec::new();
    for i in 0..300 {
        expected.push(put(&store, &format!("lag/{i}"), "v").await);
        put(&store, &format!("other/{i}"), "v").await;
    }
    for rev in expected {
        assert_eq!(next_event_rev(&mut w).await, rev);
    }
    // And it is live again afterwards.
    let r = put(&store, "lag/last", "x").await;
    assert_eq!(next_event_rev(&mut w).await, r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_whose_history_was_compacted_gets_watch_lagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), lag_options());
    let r0 = put(&store, "lag/first", "x").await;
    let mut w = store.watch("lag/", r0 - 1, NO_PROGRESS).await.expect("watch");
    assert_eq!(next_event_rev(&mut w).await, r0);
    let mut last = r0;
    for i in 0..50 {
        last = put(&store, &format!("lag/{i}"), "v").await;
    }
    store.compact(last).await.expect("compact");
    match next(&mut w).await {
        Some(Err(StoreError::WatchLagged(msg))) => eprintln!("lagged as expected: {msg}"),
        other => panic!("expected WatchLagged, got {other:?}"),
    }
    assert!(next(&mut w).await.is_none(), "stream ends after WatchLagged");
}

// ----- fan-out -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_change_fans_out_to_1000_watchers() {
    const WATCHERS: usize = 1000;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), RedbStoreOptions::default());
    let start = put(&store, "fan/init", "x").await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Revision, Instant)>();
    for _ in 0..WATCHERS {
        let mut w = store.watch("fan/", start, NO_PROGRESS).await.expect("watch");
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(item)) = w.next().await {
                if let WatchItem::Event(e) = item {
                    assert_eq!(e.kind, EventKind::Put);
                    if tx.send((e.kv.mod_revision, Instant::now())).is_err() {
                        return;
                    }
                }
            }
        });
    }
    // Warm up (first polls), then measure one change.
    let r1 = put(&store, "fan/warmup", "x").await;
    collect(&mut rx, r1, WATCHERS).await;
    let before = Instant::now();
    let r2 = put(&store, "fan/measured", "x").await;
    let acked = Instant::now();
    let last = collect(&mut rx, r2, WATCHERS).await;
    let fanout = last.saturating_duration_since(acked);
    eprintln!(
        "1000-watcher fan-out: put acked in {:?}, last watcher got it {:?} after the ack ({:?} after the put started)",
        acked - before,
        fanout,
        last - before
    );
    assert!(fanout < Duration::from_secs(2), "fan-out took {fanout:?}");
}

/// Waits for `n` deliveries of `rev`; returns when the last one happened.
async fn collect(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(Revision, Instant)>,
    rev: Revision,
    n: usize,
) -> Instant {
    let mut last: Option<Instant> = None;
    for _ in 0..n {
        let (r, at) = tokio::time::timeout(WAIT, rx.recv()).await.expect("fan-out in time").expect("watchers alive");
        assert_eq!(r, rev);
        last = Some(last.map_or(at, |l| l.max(at)));
    }
    last.expect("deliveries")
}

// ----- corruption ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_records_are_reported_not_panicked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    let good_rev = {
        let store = open(&path, RedbStoreOptions::default());
        put(&store, "c/bad", "fine for now").await;
        put(&store, "c/good", "ok").await
    };
    {
        // Damage a record and a log entry behind the store's back.
        const KV: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("kv");
        const LOG: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("log");
        let db = redb::Database::create(&path).expect("raw open");
        let wtx = db.begin_write().expect("write");
        {
            let mut kv = wtx.open_table(KV).expect("kv");
            kv.insert(&b"c/bad"[..], &b"\x01garbage"[..]).expect("insert");
            kv.insert(&b"c/\xffnot-utf8"[..], &b""[..]).expect("insert");
            let mut log = wtx.open_table(LOG).expect("log");
            log.insert(1u64, &b"\x01\xff\xff\xff\xff"[..]).expect("insert");
        }
        wtx.commit().expect("commit");
    }
    let store = open(&path, RedbStoreOptions::default());
    assert!(matches!(
        store.get("c/bad").await,
        Err(StoreError::Corrupt { key, .. }) if key == "c/bad"
    ));
    assert!(matches!(store.range("c/", None, None).await, Err(StoreError::Corrupt { .. })));
    // Untouched keys still work, including with a limit that stops before the damage.
    assert_eq!(store.get("c/good").await.expect("get").expect("good").mod_revision, good_rev);
    // A write touching the corrupt record fails alone; concurrent writes go through.
    let bad_write = store
        .txn(Txn { compares: vec![], ops: vec![Op::Put { key: "c/bad".into(), value: Bytes::from_static(b"x") }] });
    let good_write = put(&store, "c/other", "fine");
    let (bad, good) = tokio::join!(bad_write, good_write);
    assert!(matches!(bad, Err(StoreError::Corrupt { key, .. }) if key == "c/bad"));
    assert!(good > good_rev);
    // A watch replaying the damaged log entry reports it.
    let mut w = store.watch("c/", 0, NO_PROGRESS).await.expect("watch");
    assert!(matches!(next(&mut w).await, Some(Err(StoreError::Corrupt { .. }))));
}

// ----- measurements --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), RedbStoreOptions::default());
    // Sequential baseline: one fsync per write.
    let t = Instant::now();
    for i in 0..50 {
        put(&store, &format!("seq/{i}"), "v").await;
    }
    let seq = 50.0 / t.elapsed().as_secs_f64();

    const WRITERS: usize = 64;
    const EACH: usize = 100;
    let value = "x".repeat(200);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                put(&store, &format!("par/{w}/{i}"), &value).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let elapsed = t.elapsed();
    let rate = (WRITERS * EACH) as f64 / elapsed.as_secs_f64();
    eprintln!(
        "sequential: {seq:.0} writes/s; {WRITERS} concurrent writers: {} writes in {elapsed:?} = {rate:.0} writes/s",
        WRITERS * EACH
    );
    assert_eq!(store.count("par/").await.expect("count"), (WRITERS * EACH) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_over_100k_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), RedbStoreOptions::default());
    let value = Bytes::from(vec![b'v'; 100]);
    let t = Instant::now();
    for chunk in 0..100 {
        let ops =
            (0..1000).map(|i| Op::Put { key: format!("big/{:06}", chunk * 1000 + i), value: value.clone() }).collect();
        store.txn(Txn { compares: vec![], ops }).await.expect("load");
    }
    let load = t.elapsed();
    put(&store, "big0", "outside").await;
    let t = Instant::now();
    let all = store.range("big/", None, None).await.expect("range");
    let full = t.elapsed();
    assert_eq!(all.kvs.len(), 100_000);
    assert!(!all.more);
    assert!(all.kvs.windows(2).all(|w| w[0].key < w[1].key));
    let t = Instant::now();
    let page = store.range("big/", Some("big/050000"), Some(500)).await.expect("page");
    let paged = t.elapsed();
    assert_eq!(page.kvs[0].key, "big/050001");
    assert!(page.more);
    let t = Instant::now();
    assert_eq!(store.count("big/").await.expect("count"), 100_000);
    let count = t.elapsed();
    eprintln!("100k keys: load {load:?}, full range {full:?}, 500-key page {paged:?}, count {count:?}");
}
