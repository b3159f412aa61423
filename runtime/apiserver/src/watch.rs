//! Watch: store events turned into Kubernetes watch events (ADDED, MODIFIED, DELETED,
//! BOOKMARK, ERROR), filtered by namespace prefix and selectors.

use std::sync::Arc;
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_store::{EventKind, StoreError, WatchItem};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::objects;
use crate::registry::Resource;
use crate::storage::{KeyFilter, ListOptions, Storage};

#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    pub list: ListOptions,
    pub allow_bookmarks: bool,
    /// `sendInitialEvents=true`: replay current objects, then a bookmark marking the end.
    pub send_initial_events: bool,
    pub progress_interval: Duration,
}

/// One watch event as sent on the wire.
pub type WatchEventJson = Value;

fn event(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}

fn bookmark(res: &Resource, revision: i64, initial_events_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event("BOOKMARK", json!({"kind": res.def.kind, "apiVersion": res.api_version(), "metadata": metadata}))
}

fn error_event(err: &ApiError) -> Value {
    event("ERROR", err.to_status())
}

impl Storage {
    /// Starts a watch. Errors that Kubernetes reports before the stream starts
    /// (bad resourceVersion) come back as `Err`; an expired resourceVersion becomes
    /// an in-stream ERROR event with code 410, as kube-apiserver sends it.
    pub async fn watch(
        &self,
        res: Arc<Resource>,
        ns: Option<String>,
        opts: WatchOptions,
    ) -> Result<impl Stream<Item = WatchEventJson> + Send + 'static, ApiError> {
        let key_filter = KeyFilter::new(&res, opts.list.field_selector.as_ref());
        let mut prefix = objects::list_prefix(&res, ns.as_deref());
        if let Some(filter) = &key_filter {
            prefix = filter.narrow(&res, ns.as_deref(), prefix);
        }
        let requested = match opts.list.resource_version.as_deref() {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(rv.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("resourceVersion: Invalid value: \"{rv}\": must be a number"))
            })?),
        };
        let mut initial = Vec::new();
        let start = match requested {
            Some(rv) if !opts.send_initial_events => rv,
            _ => {
                // Start from the current state: every matching object as ADDED.
                let mut list_opts = opts.list.clone();
                list_opts.limit = None;
                list_opts.continue_token = None;
                let listed = self.list(&res, ns.as_deref(), &list_opts).await?;
                initial.extend(listed.items.into_iter().map(|o| event("ADDED", o)));
                if opts.send_initial_events {
                    initial.push(bookmark(&res, listed.resource_version, true));
                }
                listed.resource_version
            }
        };
        let progress = if opts.progress_interval.is_zero() { Duration::from_secs(1) } else { opts.progress_interval };
        let upstream = match self.store.watch(&prefix, start, progress).await {
            Ok(stream) => stream,
            Err(StoreError::Compacted { requested, compacted }) => {
                let err = ApiError::gone(format!("too old resource version: {requested} ({compacted})"));
                return Ok(futures::stream::iter(vec![error_event(&err)]).boxed());
            }
            Err(StoreError::FutureRevision { requested, .. }) => {
                wait_for_revision(self, requested).await?;
                self.store.watch(&prefix, start, progress).await.map_err(objects::store_error)?
            }
            Err(e) => return Err(objects::store_error(e)),
        };
        let filter = opts.list.clone();
        let allow_bookmarks = opts.allow_bookmarks;
        let res_for_events = res.clone();
        let live = upstream.filter_map(move |item| {
            let out = translate(&res_for_events, &filter, key_filter.as_ref(), allow_bookmarks, item);
            futures::future::ready(out)
        });
        // An ERROR event ends the stream, as in Kubernetes.
        let live = live.scan(false, |ended, ev| {
            if *ended {
                return futures::future::ready(None);
            }
            *ended = ev.get("type").and_then(Value::as_str) == Some("ERROR");
            futures::future::ready(Some(ev))
        });
        Ok(futures::stream::iter(initial).chain(live).boxed())
    }
}

async fn wait_for_revision(storage: &Storage, wanted: i64) -> Result<(), ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let current = storage.store.current_revision().await.map_err(objects::store_error)?;
        if current >= wanted {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(objects::store_error(StoreError::FutureRevision { requested: wanted, current }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn translate(
    res: &Resource,
    filter: &ListOptions,
    key_filter: Option<&KeyFilter>,
    allow_bookmarks: bool,
    item: Result<WatchItem, StoreError>,
) -> Option<Value> {
    let ev = match item {
        Ok(WatchItem::Progress(revision)) => return allow_bookmarks.then(|| bookmark(res, revision, false)),
        Ok(WatchItem::Event(ev)) => ev,
        Err(StoreError::WatchLagged(detail)) => {
            return Some(error_event(&ApiError::gone(format!("watch expired: {detail}"))));
        }
        Err(e) => return Some(error_event(&objects::store_error(e))),
    };
    // The previous value has the same key: if the key cannot match, neither version did.
    if key_filter.is_some_and(|f| !f.admits(&ev.kv.key)) {
        return None;
    }
    let object = match objects::decode(res, &ev.kv) {
        Ok(o) => o,
        Err(e) => return Some(error_event(&e)),
    };
    let now_matches = filter.matches(&object);
    match ev.kind {
        EventKind::Delete => now_matches.then(|| event("DELETED", object)),
        EventKind::Put => {
            let created = ev.kv.create_revision == ev.kv.mod_revision;
            let before_matched = match &ev.prev {
                Some(prev) => objects::decode(res, prev).map(|p| filter.matches(&p)).unwrap_or(false),
                // Without the previous value assume it matched iff it matches now.
                None => !created && now_matches,
            };
            match (created, before_matched, now_matches) {
                (true, _, true) => Some(event("ADDED", object)),
                (true, _, false) => None,
                (false, true, true) => Some(event("MODIFIED", object)),
                (false, false, true) => Some(event("ADDED", object)),
                (false, true, false) => Some(event("DELETED", object)),
                (false, false, false) => None,
            }
        }
    }
}
