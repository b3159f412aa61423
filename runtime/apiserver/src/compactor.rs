//! Periodic compaction: history older than one interval is dropped, as
//! kube-apiserver compacts etcd every five minutes. Watchers further behind than
//! that get 410 Gone and relist.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use flotilla_store::Store;

pub async fn run(store: Arc<dyn Store>, interval: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    // Revisions seen at each tick; compacting to the one from a full interval ago keeps
    // at least `interval` of history.
    let mut seen: VecDeque<i64> = VecDeque::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match store.current_revision().await {
            Ok(rev) => seen.push_back(rev),
            Err(e) => {
                tracing::warn!(error = %e, "compaction: cannot read the current revision");
                continue;
            }
        }
        if seen.len() > 1
            && let Some(target) = seen.pop_front()
            && let Err(e) = store.compact(target).await
        {
            tracing::warn!(error = %e, revision = target, "compaction failed");
        }
    }
}
