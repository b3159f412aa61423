//! `spec.deleteOption.ttlSecondsAfterFinished`: the hub deletes a ManifestWork once its
//! work-level `Complete` condition has been True for that many seconds (OCM's
//! `CleanUpCompletedManifestWork` gate, `ocm:pkg/work/hub/controllers/manifestworkgarbagecollection`).
//!
//! Semantics kept from OCM:
//! - Only `Complete` with status True counts, whatever its reason (the agent's is
//!   `ConditionRulesAggregated`); the clock starts at its `lastTransitionTime`, which the agent
//!   writes and moves only when the status changes.
//! - `0` (or less) deletes at once, without reading the time.
//! - A work already being deleted, or without the field, is left alone.
//! - The deletion is an ordinary one: the agent's `manifest-work-cleanup` finalizer still runs
//!   the Foreground, Orphan or SelectivelyOrphan cleanup on the spoke before the work goes.
//!
//! Added over OCM: the delete carries the UID and resourceVersion that were read as
//! preconditions, so a work recreated under the same name, or one whose TTL or condition
//! changed in between, is not deleted on stale grounds (the conflict is retried, and the retry
//! reads the work again). A `lastTransitionTime` that does not parse is logged and the work
//! kept: deleting a user's workloads on a time nobody can read is the worse mistake.

use std::sync::Arc;
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_apiserver::controller::Reconciler;
use flotilla_apiserver::objects::meta;
use flotilla_apiserver::{DeleteOptions, Resource, Storage};
use flotilla_registration::conditions;
use serde_json::Value;

use crate::works::GROUP;

const KIND: &str = "ManifestWork";
const CONDITION_COMPLETE: &str = "Complete";

/// The longest wait asked of the controller runtime. A far-off expiry is found again by the
/// runtime's periodic resync anyway, and capping keeps `now + wait` from overflowing `Instant`
/// for an absurd TTL.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Deletes completed ManifestWorks whose `ttlSecondsAfterFinished` has passed.
pub struct CompletedWorkCleanup {
    storage: Storage,
    resource: Arc<Resource>,
}

impl CompletedWorkCleanup {
    pub fn new(storage: Storage) -> Result<CompletedWorkCleanup, String> {
        let resource = storage
            .registry
            .by_kind(&format!("{GROUP}/v1"), KIND)
            .ok_or_else(|| format!("the hub does not serve {GROUP}/v1 {KIND}"))?;
        Ok(CompletedWorkCleanup { storage, resource })
    }
}

/// `spec.deleteOption.ttlSecondsAfterFinished`, if set.
fn ttl_seconds(work: &Value) -> Option<i64> {
    work.pointer("/spec/deleteOption/ttlSecondsAfterFinished").and_then(Value::as_i64)
}

/// Whether the work is one this controller must look at: it has a TTL, is Complete and is not
/// already being deleted. Cheap, so that the many works without a TTL cost no reconcile.
fn eligible(work: &Value) -> bool {
    meta::deletion_timestamp(work).is_none()
        && ttl_seconds(work).is_some()
        && conditions::status_of(work, CONDITION_COMPLETE) == Some(conditions::TRUE)
}

/// When the work may be deleted, in Unix milliseconds: `None` if it is not eligible,
/// `i64::MIN` for "now" (a TTL of 0 or less), an error if the completion time is unreadable.
fn deadline(work: &Value) -> Result<Option<i64>, String> {
    if !eligible(work) {
        return Ok(None);
    }
    let ttl = ttl_seconds(work).unwrap_or_default();
    if ttl <= 0 {
        return Ok(Some(i64::MIN));
    }
    let since = completed_at(work);
    let completed = parse_rfc3339_millis(&since)
        .ok_or_else(|| format!("the Complete condition's lastTransitionTime {since:?} is not an RFC 3339 time"))?;
    Ok(Some(completed.saturating_add(ttl.saturating_mul(1000))))
}

/// The Complete condition's `lastTransitionTime`, empty when missing.
fn completed_at(work: &Value) -> String {
    conditions::find(&conditions::of(work), CONDITION_COMPLETE)
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn now_millis() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// An RFC 3339 time (as `metav1.Time` is written) in Unix milliseconds.
fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond())
}

impl Reconciler for CompletedWorkCleanup {
    fn name(&self) -> &'static str {
        "manifestwork-ttl"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        vec![self.resource.clone()]
    }

    fn keys_for(&self, _index: usize, obj: &Value, deleted: bool) -> Vec<String> {
        match meta::namespace(obj) {
            Some(ns) if !deleted && eligible(obj) => vec![format!("{ns}/{}", meta::name(obj))],
            _ => Vec::new(),
        }
    }

    async fn reconcile(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        let Some((namespace, name)) = key.split_once('/') else {
            return Ok(None);
        };
        let work = match self.storage.get(&self.resource, Some(namespace), name).await {
            Ok(work) => work,
            Err(e) if e.code == 404 => return Ok(None),
            Err(e) => return Err(e),
        };
        let due = match deadline(&work) {
            Ok(Some(due)) => due,
            Ok(None) => return Ok(None),
            Err(reason) => {
                tracing::warn!(%namespace, %name, %reason, "not deleting a completed ManifestWork: its completion time is unreadable");
                return Ok(None);
            }
        };
        let now = now_millis();
        if now < due {
            let wait = Duration::from_millis(u64::try_from(due.saturating_sub(now)).unwrap_or(u64::MAX));
            return Ok(Some(wait.min(MAX_WAIT)));
        }
        let opts = DeleteOptions {
            precondition_uid: Some(meta::uid(&work).to_string()),
            precondition_resource_version: Some(meta::resource_version(&work).to_string()),
            ..Default::default()
        };
        match self.storage.delete(&self.resource, Some(namespace), name, &opts).await {
            Ok(_) => {
                let completed = completed_at(&work);
                tracing::info!(
                    %namespace,
                    %name,
                    uid = meta::uid(&work),
                    ttl_seconds_after_finished = ttl_seconds(&work).unwrap_or_default(),
                    %completed,
                    "deleting a completed ManifestWork: its ttlSecondsAfterFinished has passed"
                );
                Ok(None)
            }
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn work(ttl: Option<i64>, complete: Option<(&str, &str)>) -> Value {
        let mut work = json!({"metadata": {"name": "w", "namespace": "c1", "uid": "u1"}, "spec": {}});
        if let Some(ttl) = ttl {
            work["spec"]["deleteOption"] = json!({"ttlSecondsAfterFinished": ttl});
        }
        if let Some((status, since)) = complete {
            work["status"] = json!({"conditions": [{"type": "Complete", "status": status,
                "reason": "ConditionRulesAggregated", "message": "done", "lastTransitionTime": since}]});
        }
        work
    }

    #[test]
    fn deadline_is_completion_plus_ttl_and_only_for_complete_works() {
        let at = parse_rfc3339_millis("2025-01-02T03:04:05Z").expect("time");
        assert_eq!(deadline(&work(Some(30), Some(("True", "2025-01-02T03:04:05Z")))), Ok(Some(at + 30_000)));
        assert_eq!(deadline(&work(Some(0), Some(("True", "not a time")))), Ok(Some(i64::MIN)), "0: at once");
        assert_eq!(deadline(&work(Some(-5), Some(("True", "")))), Ok(Some(i64::MIN)));
        assert_eq!(deadline(&work(Some(i64::MAX), Some(("True", "2025-01-02T03:04:05Z")))), Ok(Some(i64::MAX)));
        assert_eq!(deadline(&work(Some(30), Some(("False", "2025-01-02T03:04:05Z")))), Ok(None));
        assert_eq!(deadline(&work(Some(30), Some(("Unknown", "2025-01-02T03:04:05Z")))), Ok(None));
        assert_eq!(deadline(&work(Some(30), None)), Ok(None));
        assert_eq!(deadline(&work(None, Some(("True", "2025-01-02T03:04:05Z")))), Ok(None));
        let mut deleting = work(Some(0), Some(("True", "2025-01-02T03:04:05Z")));
        deleting["metadata"]["deletionTimestamp"] = json!("2025-01-02T03:04:06Z");
        assert_eq!(deadline(&deleting), Ok(None));
        let unreadable = deadline(&work(Some(30), Some(("True", "yesterday"))));
        assert!(unreadable.as_ref().is_err_and(|e| e.contains("\"yesterday\"")), "{unreadable:?}");
    }
}
