//! One pass over one work name, run by a worker (never two at once for a name):
//!
//! - a work the hub has: add the agent's finalizer, keep its AppliedManifestWork, apply the
//!   manifests in OCM's order, record what was applied, delete what the work dropped, and
//!   report the status;
//! - a work being deleted: delete its AppliedManifestWork and the objects it owns, then
//!   release the work's finalizer once they are gone (Foreground);
//! - a work the hub no longer has: evict its AppliedManifestWork after the grace period.
//!
//! Each pass returns when to look again (`None`: at the next resync). Failures towards the
//! hub are logged and retried; none of them leads to a deletion on the spoke.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::Engine;
use super::applied::{self, AppliedResource, AppliedWork};
use super::apply::{self, Target};
use super::hubwatch::manifest_works;
use super::manifest::{ManifestRef, ResourceIdentifier, WorkSpec, apply_order, parse_manifest};
use super::report::{self, AppliedState, LiveState, ManifestResult, resource_meta};
use super::rules;
use crate::error::{ManifestError, api_code, api_message};

pub const WORK_FINALIZER: &str = "cluster.open-cluster-management.io/manifest-work-cleanup";

fn now_rfc3339() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn deleting(object: &Value) -> bool {
    object.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null())
}

/// Queue keys for AppliedManifestWorks of another hub hash (the hub's URL changed): `:` never
/// occurs in a work's name.
pub const FOREIGN_KEY_PREFIX: &str = "applied:";

/// Processes a queue key; when to process it again (`None`: the next resync).
pub async fn process(engine: &Engine, key: &str) -> Option<Duration> {
    if let Some(applied_name) = key.strip_prefix(FOREIGN_KEY_PREFIX) {
        return evict(engine, applied_name, key).await;
    }
    match engine.store.get(key) {
        Some(work) => reconcile_work(engine, key, &work).await,
        None => evict(engine, &applied::applied_name(&engine.hub_hash, key), key).await,
    }
}

async fn reconcile_work(engine: &Engine, name: &str, work: &Value) -> Option<Duration> {
    let spec = match WorkSpec::of(work) {
        Ok(spec) => spec,
        Err(e) => {
            tracing::warn!(work = %name, error = %e, "cannot read the work; it is not applied");
            return None;
        }
    };
    let mut wanted = finalizers(work);
    let has_finalizer = wanted.iter().any(|f| f == WORK_FINALIZER);
    if deleting(work) {
        if !has_finalizer {
            return None;
        }
        return finalize_work(engine, name, work, &spec).await;
    }
    // Like OCM, nothing is applied before the finalizer is there: it is what guarantees the
    // agent a say when the work is deleted.
    if !has_finalizer {
        wanted.push(WORK_FINALIZER.to_string());
        return match engine.patch_finalizers(work, wanted).await {
            // The new version comes back through the store and is processed again.
            Ok(()) => None,
            Err(e) if !engine.store.connected() => {
                tracing::debug!(work = %name, error = %e, "cannot add the agent's finalizer while the hub is unreachable");
                Some(engine.options.resync)
            }
            Err(e) => {
                tracing::warn!(work = %name, error = %e, "cannot add the agent's finalizer to the work; retrying");
                Some(engine.options.retry)
            }
        };
    }
    let applied = match applied::ensure(&engine.spoke, &engine.hub_hash, &engine.agent_id, name).await {
        Ok(applied) => applied,
        Err(e) => {
            tracing::warn!(work = %name, error = %e, "cannot record the work on the spoke; retrying");
            return Some(engine.options.retry);
        }
    };
    if applied.deleting() {
        // Someone deleted the AppliedManifestWork on the spoke: let it go with what it owns,
        // then the next pass applies the work afresh (as OCM does).
        return match applied::finalize(&engine.spoke, &applied, Some(&spec)).await {
            Ok(_) => Some(engine.options.retry),
            Err(e) => {
                tracing::warn!(work = %name, error = %e, "cannot clean up a deleted AppliedManifestWork; retrying");
                Some(engine.options.retry)
            }
        };
    }
    if applied.eviction_start().is_some() {
        tracing::info!(work = %name, "the work is back on the hub; its AppliedManifestWork is no longer evicted");
        if let Err(e) = applied::set_eviction_start(&engine.spoke, &applied, None).await {
            tracing::warn!(work = %name, error = %e, "cannot cancel the eviction");
        }
    }

    let results = apply_all(engine, work, &spec, &applied).await;
    let pending = record_applied(engine, name, work, &applied, &results).await;
    let results: Vec<ManifestResult> = results.into_iter().map(|r| r.result).collect();
    report_status(engine, name, work, &results).await;
    pending.then_some(engine.options.retry)
}

/// A manifest's outcome plus what garbage collection needs to know.
struct Outcome {
    result: ManifestResult,
    identifier: Option<ResourceIdentifier>,
    /// For `status.appliedResources` (the object exists now).
    applied: Option<AppliedResource>,
    /// The spoke could not be asked: this pass says nothing about what exists.
    transient: bool,
}

async fn apply_all(engine: &Engine, work: &Value, spec: &WorkSpec, applied: &AppliedWork) -> Vec<Outcome> {
    let manifests = &spec.workload.manifests;
    let work_complete = report::is_true(work.pointer("/status/conditions"), rules::CONDITION_COMPLETE);
    let owner = applied.owner_reference();
    let mut outcomes: Vec<Option<Outcome>> = (0..manifests.len()).map(|_| None).collect();
    for index in apply_order(manifests) {
        let outcome = apply_one(engine, work, spec, &owner, index, &manifests[index], work_complete).await;
        outcomes[index] = Some(outcome);
    }
    outcomes.into_iter().flatten().collect()
}

async fn apply_one(
    engine: &Engine,
    work: &Value,
    spec: &WorkSpec,
    owner: &Value,
    index: usize,
    manifest: &Value,
    work_complete: bool,
) -> Outcome {
    let unresolved = |meta: Value, error: ManifestError| Outcome {
        transient: error.is_transient(),
        result: ManifestResult {
            meta,
            applied: AppliedState::Failed(error),
            live: LiveState::Unresolved,
            feedback_rules: None,
            condition_rules: None,
        },
        identifier: None,
        applied: None,
    };
    let reference: ManifestRef = match parse_manifest(index, manifest) {
        Ok(r) => r,
        Err(e) => {
            let text = |p: &str| manifest.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
            let meta =
                resource_meta(index, "", "", &text("/kind"), "", &text("/metadata/name"), &text("/metadata/namespace"));
            return unresolved(meta, e);
        }
    };
    let resolved = match engine.discovery.resolve(&reference.group, &reference.version, &reference.kind).await {
        Ok(resolved) => resolved,
        Err(e) => {
            let meta = resource_meta(
                index,
                &reference.group,
                &reference.version,
                &reference.kind,
                "",
                &reference.name,
                &reference.namespace,
            );
            return unresolved(meta, e);
        }
    };
    let namespace = if resolved.namespaced { reference.namespace.clone() } else { String::new() };
    let meta = resource_meta(
        index,
        &reference.group,
        &reference.version,
        &reference.kind,
        &resolved.resource.plural,
        &reference.name,
        &namespace,
    );
    let identifier = ResourceIdentifier {
        group: reference.group.clone(),
        resource: resolved.resource.plural.clone(),
        name: reference.name.clone(),
        namespace: namespace.clone(),
    };
    let config = spec.config_for(&identifier);
    let mut result = ManifestResult {
        meta,
        applied: AppliedState::Applied,
        live: LiveState::Missing,
        feedback_rules: config.and_then(|c| c.feedback_rules.clone()),
        condition_rules: config.and_then(|c| c.condition_rules.clone()),
    };
    // A Complete manifest (or work) is left as it is: read, never written again.
    let complete = work_complete || rules::is_complete(&report::existing_conditions(work, &result.meta));
    let target = Target {
        client: &engine.spoke,
        manifest,
        reference: &reference,
        resolved: &resolved,
        strategy: config.and_then(|c| c.update_strategy.as_ref()),
        owner,
        owned: spec.owns(&identifier),
    };
    let mut transient = false;
    let outcome = if complete {
        result.applied = AppliedState::Skipped;
        target.read().await.map(|live| apply::Applied { live, wrote: false })
    } else {
        apply::apply(&target).await
    };
    match outcome {
        Ok(done) => {
            if done.wrote {
                tracing::debug!(work = %work_name(work), manifest = index, kind = %reference.kind, name = %reference.name,
                    "wrote to the spoke");
            }
            result.live = match done.live {
                Some(live) => LiveState::Found(live),
                None => LiveState::Missing,
            };
        }
        Err(error) => {
            transient = error.is_transient();
            tracing::warn!(work = %work_name(work), manifest = index, kind = %reference.kind, name = %reference.name,
                error = %error, "cannot apply a manifest");
            // What is there now, for Available and feedback (an apply conflict leaves the
            // object in place).
            result.live = match target.read().await {
                Ok(Some(live)) => LiveState::Found(live),
                Ok(None) => LiveState::Missing,
                Err(e) => {
                    transient |= e.is_transient();
                    LiveState::Failed(e.to_string())
                }
            };
            if !matches!(result.applied, AppliedState::Skipped) {
                result.applied = AppliedState::Failed(error);
            }
        }
    }
    let applied = match &result.live {
        LiveState::Found(live) => Some(AppliedResource {
            group: reference.group.clone(),
            version: reference.version.clone(),
            resource: resolved.resource.plural.clone(),
            namespace,
            name: reference.name.clone(),
            uid: live.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string(),
        }),
        _ => None,
    };
    Outcome { result, identifier: Some(identifier), applied, transient }
}

fn work_name(work: &Value) -> &str {
    work.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
}

/// Records the applied resources on the AppliedManifestWork and deletes those the work no
/// longer has (OCM's `appliedManifestWorkReconciler`). `true` while deletions are pending.
async fn record_applied(
    engine: &Engine,
    name: &str,
    work: &Value,
    applied: &AppliedWork,
    outcomes: &[Outcome],
) -> bool {
    let previous = applied.resources();
    let mut resources: Vec<AppliedResource> = outcomes.iter().filter_map(|o| o.applied.clone()).collect();
    let current: BTreeSet<ResourceIdentifier> = outcomes.iter().filter_map(|o| o.identifier.clone()).collect();
    let untracked = applied::untracked(&previous, &current);
    // Deleting is safe only when this pass saw the spoke, and (as OCM) only once the work
    // has been applied before: a work recreated on a new hub does not wipe its objects.
    let safe = !outcomes.iter().any(|o| o.transient)
        && work.pointer("/status/conditions").is_some_and(|c| {
            c.as_array()
                .is_some_and(|list| list.iter().any(|c| c.get("type").and_then(Value::as_str) == Some("Applied")))
        });
    let mut pending = false;
    if !untracked.is_empty() {
        if safe {
            let reason = format!("it is no longer maintained by manifestwork {name}");
            let deletion = applied::delete_resources(&engine.spoke, applied, &untracked, None, &reason).await;
            for error in &deletion.errors {
                tracing::warn!(work = %name, error = %error, "cannot delete a resource the work no longer has");
            }
            pending = !deletion.pending.is_empty() || !deletion.errors.is_empty();
            resources.extend(deletion.pending);
            // Failed deletions stay recorded, to be tried again.
            if !deletion.errors.is_empty() {
                let kept: Vec<AppliedResource> = untracked
                    .iter()
                    .filter(|u| !resources.iter().any(|r| r.identifier() == u.identifier()))
                    .cloned()
                    .collect();
                resources.extend(kept);
            }
        } else {
            resources.extend(untracked);
        }
    }
    applied::sort_resources(&mut resources);
    resources.dedup_by(|a, b| a.identifier() == b.identifier());
    if let Err(e) = applied::set_resources(&engine.spoke, applied, &resources).await {
        tracing::warn!(work = %name, error = %e, "cannot record the applied resources");
    }
    pending
}

async fn report_status(engine: &Engine, name: &str, work: &Value, results: &[ManifestResult]) {
    let status = report::build(work, results, &engine.options.feedback_limits, &now_rfc3339());
    if report::unchanged(work, &status) {
        return;
    }
    let patch = json!({
        "metadata": {"resourceVersion": work.pointer("/metadata/resourceVersion")},
        "status": status,
    });
    let api: Api<DynamicObject> = Api::namespaced_with(engine.hub.get(), &engine.cluster, &manifest_works());
    match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(updated) => {
            tracing::debug!(work = %name, "reported the work's status");
            if let Ok(updated) = serde_json::to_value(&updated) {
                engine.store.upsert(updated);
            }
        }
        Err(e) if api_code(&e) == Some(409) => {
            // The work changed meanwhile: its new version is on the way and will be
            // processed (and reported) again.
            tracing::debug!(work = %name, "the work changed while its status was computed");
            engine.queue.add_after(name, engine.options.retry);
        }
        // While the hub is known to be away, one warning from the watch is enough.
        Err(e) if !engine.store.connected() => {
            tracing::debug!(work = %name, error = %api_message(&e), "cannot report the work's status; the hub is unreachable");
        }
        Err(e) => {
            tracing::warn!(work = %name, error = %api_message(&e), "cannot report the work's status to the hub; retrying at the next resync");
        }
    }
}

/// A deleted work: its AppliedManifestWork goes with what it owns, then the finalizer.
async fn finalize_work(engine: &Engine, name: &str, work: &Value, spec: &WorkSpec) -> Option<Duration> {
    let applied_name = applied::applied_name(&engine.hub_hash, name);
    let result: Result<bool, ManifestError> = async {
        let Some(mut current) = applied::get(&engine.spoke, &applied_name).await? else { return Ok(true) };
        if !current.deleting() {
            tracing::info!(work = %name, "the work is being deleted; deleting its resources");
            applied::delete(&engine.spoke, &current).await?;
            match applied::get(&engine.spoke, &applied_name).await? {
                Some(again) => current = again,
                None => return Ok(true),
            }
        }
        applied::finalize(&engine.spoke, &current, Some(spec)).await?;
        Ok(applied::get(&engine.spoke, &applied_name).await?.is_none())
    }
    .await;
    match result {
        Ok(true) => {}
        Ok(false) => return Some(engine.options.retry),
        Err(e) => {
            tracing::warn!(work = %name, error = %e, "cannot delete the work's resources yet; retrying");
            return Some(engine.options.retry);
        }
    }
    let kept: Vec<String> = finalizers(work).into_iter().filter(|f| f != WORK_FINALIZER).collect();
    match engine.patch_finalizers(work, kept).await {
        Ok(()) => {
            tracing::info!(work = %name, "the work's resources are gone; released the work");
            None
        }
        Err(e) => {
            tracing::warn!(work = %name, error = %e, "cannot release the work on the hub; retrying");
            Some(engine.options.retry)
        }
    }
}

/// An AppliedManifestWork without a work: the hub no longer has it, or it was recorded
/// under another hub URL (OCM's unmanaged AppliedManifestWorks). Evicted after the grace
/// period; `name` (the work or the queue key) is for logs.
async fn evict(engine: &Engine, applied_name: &str, name: &str) -> Option<Duration> {
    let applied = match applied::get(&engine.spoke, applied_name).await {
        Ok(Some(applied)) => applied,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(work = %name, error = %e, "cannot read an AppliedManifestWork; retrying");
            return Some(engine.options.resync);
        }
    };
    if applied.deleting() {
        return match applied::finalize(&engine.spoke, &applied, None).await {
            Ok(true) => None,
            Ok(false) => Some(engine.options.retry),
            Err(e) => {
                tracing::warn!(work = %name, error = %e, "cannot clean up an evicted AppliedManifestWork; retrying");
                Some(engine.options.retry)
            }
        };
    }
    if applied.spec_field("agentID") != engine.agent_id {
        return None;
    }
    // Only the hub can say a work is gone: until it has answered, wait.
    if !engine.store.synced() {
        return Some(engine.options.resync);
    }
    let now = Timestamp::now();
    let start = match applied.eviction_start() {
        Some(start) => start,
        None => {
            tracing::info!(work = %name, grace = ?engine.options.eviction_grace,
                "the work is gone from the hub; its AppliedManifestWork will be evicted after the grace period");
            if let Err(e) = applied::set_eviction_start(&engine.spoke, &applied, Some(now)).await {
                tracing::warn!(work = %name, error = %e, "cannot start the eviction; retrying");
                return Some(engine.options.resync);
            }
            now
        }
    };
    let grace = SignedDuration::try_from(engine.options.eviction_grace).unwrap_or(SignedDuration::MAX);
    let elapsed = now.duration_since(start);
    if elapsed < grace {
        let remaining = Duration::try_from(grace - elapsed).unwrap_or(engine.options.resync);
        return Some(remaining.max(Duration::from_millis(100)));
    }
    // The hub must be answering now, not just have answered once: never evict because the
    // hub went away.
    if !engine.store.connected() {
        return Some(engine.options.resync);
    }
    tracing::info!(work = %name, "evicting the AppliedManifestWork of a work gone from the hub");
    if let Err(e) = applied::delete(&engine.spoke, &applied).await {
        tracing::warn!(work = %name, error = %e, "cannot evict the AppliedManifestWork; retrying");
        return Some(engine.options.resync);
    }
    Some(Duration::ZERO)
}

impl Target<'_> {
    /// Reads the object regardless of strategy (after a failed apply).
    async fn read(&self) -> Result<Option<Value>, ManifestError> {
        let read_only =
            super::manifest::UpdateStrategy { type_: super::manifest::READ_ONLY.to_string(), ..Default::default() };
        apply::apply(&Target { strategy: Some(&read_only), ..*self }).await.map(|a| a.live)
    }
}
