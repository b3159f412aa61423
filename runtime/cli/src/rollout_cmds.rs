//! `flotilla rollout status|history|undo NAME [-n NS]`: ManifestWorkReplicaSet rollouts.
//!
//! - `status [--watch]` shows the rollout of the current revision from the object's
//!   `status.rollout`: per placement and decision group a progress bar, per cluster its
//!   status, revision and why, what the rollout waits for and when it looks again. `--watch`
//!   redraws on every change until the rollout is complete, stopped or failed (or Ctrl-C).
//! - `history` lists the revisions (ControllerRevisions) with the one each cluster holds.
//! - `undo [--to-revision N]` sets the template back to revision N (default: the one before
//!   the current), which then becomes a new revision, as `kubectl rollout undo` does.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use serde_json::Value;

use crate::kubectl::session::Session;

#[derive(Subcommand, Debug)]
pub enum RolloutCommand {
    /// Show the rollout of a ManifestWorkReplicaSet: groups, clusters, progress, what it waits for.
    Status(StatusArgs),
    /// List the revisions of a ManifestWorkReplicaSet's template.
    History(TargetArgs),
    /// Roll a ManifestWorkReplicaSet back to an earlier revision of its template.
    Undo(UndoArgs),
}

#[derive(clap::Args, Debug)]
pub struct TargetArgs {
    /// The ManifestWorkReplicaSet's name.
    pub name: String,
    /// Its namespace [default: the kubeconfig context's, else `default`].
    #[arg(short, long)]
    pub namespace: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Redraw on every change until the rollout completes, stops or fails.
    #[arg(short, long)]
    pub watch: bool,
}

#[derive(clap::Args, Debug)]
pub struct UndoArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The revision to go back to [default: the one before the current].
    #[arg(long)]
    pub to_revision: Option<i64>,
}

pub fn replica_sets() -> ApiResource {
    ApiResource {
        group: "work.open-cluster-management.io".into(),
        version: "v1alpha1".into(),
        api_version: "work.open-cluster-management.io/v1alpha1".into(),
        kind: "ManifestWorkReplicaSet".into(),
        plural: "manifestworkreplicasets".into(),
    }
}

fn controller_revisions() -> ApiResource {
    ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: "ControllerRevision".into(),
        plural: "controllerrevisions".into(),
    }
}

pub async fn run(session: &Session, command: RolloutCommand) -> anyhow::Result<ExitCode> {
    match command {
        RolloutCommand::Status(args) => status(session, args).await,
        RolloutCommand::History(args) => history(session, args).await,
        RolloutCommand::Undo(args) => undo(session, args).await,
    }
}

async fn get(session: &Session, namespace: &str, name: &str) -> anyhow::Result<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(session.client.clone(), namespace, &replica_sets());
    let obj = api
        .get_opt(name)
        .await
        .with_context(|| format!("reading manifestworkreplicaset {namespace}/{name}"))?
        .with_context(|| format!("manifestworkreplicaset {namespace}/{name} not found"))?;
    Ok(serde_json::to_value(&obj)?)
}

/// Whether the rollout has nothing more to do by itself.
fn settled(obj: &Value) -> bool {
    let phase = obj.pointer("/status/rollout/phase").and_then(Value::as_str).unwrap_or_default();
    // The state must be about the object's current spec (a template just changed is not settled).
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = obj.pointer("/status/rollout/observedGeneration").and_then(Value::as_i64) == generation;
    observed && matches!(phase, "Complete" | "Stopped" | "Failed")
}

pub async fn status(session: &Session, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let namespace = session.namespace(args.target.namespace.as_deref());
    let name = &args.target.name;
    if !args.watch {
        let obj = get(session, &namespace, name).await?;
        session.out(&render(&obj, jiff::Timestamp::now()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut last = String::new();
    loop {
        let obj = get(session, &namespace, name).await?;
        let frame = render(&obj, jiff::Timestamp::now());
        if frame != last {
            // A terminal is redrawn in place; a pipe gets each new frame after a blank line.
            let text = if terminal { format!("\x1b[2J\x1b[H{frame}") } else { format!("{frame}\n") };
            session.out(&text)?;
            last = frame;
        }
        if settled(&obj) {
            let phase = obj.pointer("/status/rollout/phase").and_then(Value::as_str).unwrap_or_default();
            return Ok(if phase == "Complete" { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// `[#####.....]` for `done` of `total`.
fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = if total == 0 { 0 } else { (done * width).div_ceil(total).min(width) };
    let filled = if done < total { filled.min(width.saturating_sub(1)) } else { filled };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// `HH:MM:SS` of an RFC 3339 time, and how far it is from `now` (`in 12s`, `3s ago`).
fn when(time: &str, now: jiff::Timestamp) -> String {
    let Ok(at) = time.parse::<jiff::Timestamp>() else { return String::new() };
    let clock = at.strftime("%H:%M:%S").to_string();
    let seconds = at.as_second() - now.as_second();
    match seconds {
        0 => format!("{clock} (now)"),
        s if s > 0 => format!("{clock} (in {s}s)"),
        s => format!("{clock} ({}s ago)", -s),
    }
}

/// The strategy of each placement, as one line.
fn strategy_line(reference: &Value) -> String {
    let strategy = &reference["rolloutStrategy"];
    let ty = strategy.get("type").and_then(Value::as_str).unwrap_or("All");
    let section = match ty {
        "Progressive" => "progressive",
        "ProgressivePerGroup" => "progressivePerGroup",
        "Plugin" => "plugin",
        _ => "all",
    };
    let mut parts = Vec::new();
    if let Some(obj) = strategy.get(section).and_then(Value::as_object) {
        for (k, v) in obj {
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parts.push(format!("{k} {value}"));
        }
    }
    if parts.is_empty() { ty.to_string() } else { format!("{ty} ({})", parts.join(", ")) }
}

/// The status screen.
pub fn render(obj: &Value, now: jiff::Timestamp) -> String {
    let mut out = String::new();
    let namespace = text(obj, "/metadata/namespace");
    let name = text(obj, "/metadata/name");
    let rollout = &obj["status"]["rollout"];
    let revision = rollout.get("revision").and_then(Value::as_i64).unwrap_or(0);
    let phase = rollout.get("phase").and_then(Value::as_str).unwrap_or("Pending");
    out.push_str(&format!("ManifestWorkReplicaSet {namespace}/{name}: revision {revision}, {phase}\n"));
    let automatic = obj.pointer("/spec/rollback/automatic").and_then(Value::as_bool) == Some(true);
    out.push_str(&format!("automatic rollback: {}\n", if automatic { "on" } else { "off" }));
    if let Some(t) = obj.pointer("/spec/manifestTransform/name").and_then(Value::as_str) {
        out.push_str(&format!("manifest transform: {t}\n"));
    }
    let refs = obj.pointer("/spec/placementRefs").and_then(Value::as_array).cloned().unwrap_or_default();
    let message = rollout.get("message").and_then(Value::as_str).unwrap_or_default();
    if !message.is_empty() {
        out.push_str(&format!("{}: {message}\n", if phase == "Progressing" { "waiting" } else { "message" }));
    }
    if let Some(at) = rollout.get("recheckAt").and_then(Value::as_str)
        && phase == "Progressing"
    {
        out.push_str(&format!("next check: {}\n", when(at, now)));
    }
    let clusters = rollout.get("clusters").and_then(Value::as_array).cloned().unwrap_or_default();
    if refs.is_empty() && clusters.is_empty() {
        out.push_str("no placement\n");
        return out;
    }
    let shown = |c: &Value| -> String {
        let status = c.get("status").and_then(Value::as_str).unwrap_or_default();
        let timed_out = c.get("timedOut").and_then(Value::as_bool) == Some(true);
        match c.get("rolledBackTo").and_then(Value::as_i64) {
            Some(to) => format!("RolledBack->{to}"),
            None if timed_out && matches!(status, "Progressing" | "Failed") => "TimeOut".to_string(),
            None => status.to_string(),
        }
    };
    for reference in &refs {
        let placement = reference.get("name").and_then(Value::as_str).unwrap_or_default();
        let mine: Vec<&Value> = clusters.iter().filter(|c| text(c, "/placement") == placement).collect();
        let succeeded = mine.iter().filter(|c| text(c, "/status") == "Succeeded").count();
        out.push_str(&format!(
            "\nplacement {placement}: {}  {} {succeeded}/{} succeeded\n",
            strategy_line(reference),
            bar(succeeded, mine.len(), 20),
            mine.len()
        ));
        let mut groups: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
        for c in &mine {
            groups.entry(c.get("groupIndex").and_then(Value::as_i64).unwrap_or(0)).or_default().push(c);
        }
        for (index, members) in groups {
            let group_name = members.first().map(|c| text(c, "/groupName")).unwrap_or_default();
            let done = members.iter().filter(|c| text(c, "/status") == "Succeeded").count();
            let label =
                if group_name.is_empty() { format!("group {index}") } else { format!("group {index} ({group_name})") };
            out.push_str(&format!("  {label:<24} {} {done}/{}\n", bar(done, members.len(), 10), members.len()));
            for c in members {
                let revision = c.get("revision").and_then(Value::as_i64).map(|r| r.to_string()).unwrap_or("-".into());
                let since =
                    c.get("lastTransitionTime").and_then(Value::as_str).map(|t| when(t, now)).unwrap_or_default();
                out.push_str(&format!(
                    "    {:<16} {:<15} rev {:<4} since {:<22} {}\n",
                    text(c, "/name"),
                    shown(c),
                    revision,
                    since,
                    text(c, "/message")
                ));
            }
        }
    }
    out
}

async fn revisions(session: &Session, namespace: &str, name: &str) -> anyhow::Result<Vec<(i64, String, Value)>> {
    let api: Api<DynamicObject> = Api::namespaced_with(session.client.clone(), namespace, &controller_revisions());
    let selector = format!("work.open-cluster-management.io/manifestworkreplicaset={namespace}.{name}");
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .with_context(|| format!("listing the revisions of {namespace}/{name}"))?;
    let mut out: Vec<(i64, String, Value)> = list
        .items
        .into_iter()
        .filter_map(|r| {
            let v = serde_json::to_value(&r).ok()?;
            let number = v.get("revision").and_then(Value::as_i64)?;
            let template = v.pointer("/data/template").cloned()?;
            Some((number, r.metadata.name.unwrap_or_default(), template))
        })
        .collect();
    out.sort_by_key(|(n, _, _)| *n);
    Ok(out)
}

async fn history(session: &Session, args: TargetArgs) -> anyhow::Result<ExitCode> {
    let namespace = session.namespace(args.namespace.as_deref());
    let obj = get(session, &namespace, &args.name).await?;
    let revisions = revisions(session, &namespace, &args.name).await?;
    let clusters = obj.pointer("/status/rollout/clusters").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = String::from("REVISION  NAME                          CLUSTERS\n");
    for (number, rev_name, _) in &revisions {
        let on: Vec<&str> = clusters
            .iter()
            .filter(|c| c.get("revision").and_then(Value::as_i64) == Some(*number))
            .map(|c| text(c, "/name"))
            .collect();
        out.push_str(&format!("{number:<9} {rev_name:<29} {}\n", on.join(",")));
    }
    session.out(&out)?;
    Ok(ExitCode::SUCCESS)
}

async fn undo(session: &Session, args: UndoArgs) -> anyhow::Result<ExitCode> {
    let namespace = session.namespace(args.target.namespace.as_deref());
    let name = &args.target.name;
    let revisions = revisions(session, &namespace, name).await?;
    let Some((current, _, _)) = revisions.last() else {
        bail!(
            "manifestworkreplicaset {namespace}/{name} has no revisions yet (is the hub's rollout controller running?)"
        )
    };
    let target = match args.to_revision {
        Some(n) => revisions.iter().find(|(number, _, _)| *number == n).with_context(|| {
            let known: Vec<String> = revisions.iter().map(|(n, _, _)| n.to_string()).collect();
            format!("--to-revision {n}: no such revision of {namespace}/{name} (known: {})", known.join(", "))
        })?,
        None => match revisions.iter().rev().nth(1) {
            Some(previous) => previous,
            None => bail!("manifestworkreplicaset {namespace}/{name} has no previous revision to roll back to"),
        },
    };
    if target.0 == *current {
        session.out(&format!(
            "manifestworkreplicaset.work.open-cluster-management.io/{name} skipped rollback (current template already matches revision {current})\n"
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let api: Api<DynamicObject> = Api::namespaced_with(session.client.clone(), &namespace, &replica_sets());
    // Read, change, replace: a concurrent edit makes the replace fail with a conflict.
    let obj = get(session, &namespace, name).await?;
    let mut updated = obj.clone();
    updated["spec"]["manifestWorkTemplate"] = target.2.clone();
    let updated: DynamicObject = serde_json::from_value(updated)?;
    api.replace(name, &PostParams::default(), &updated)
        .await
        .with_context(|| format!("rolling {namespace}/{name} back to revision {}", target.0))?;
    session.out(&format!(
        "manifestworkreplicaset.work.open-cluster-management.io/{name} rolled back to revision {}\n",
        target.0
    ))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bars_fill_in_proportion_and_only_when_done() {
        assert_eq!(bar(0, 4, 8), "[........]");
        assert_eq!(bar(2, 4, 8), "[####....]");
        assert_eq!(bar(3, 4, 4), "[###.]");
        assert_eq!(bar(4, 4, 4), "[####]");
        assert_eq!(bar(0, 0, 4), "[....]");
    }

    #[test]
    fn status_shows_groups_clusters_and_what_it_waits_for() {
        let now: jiff::Timestamp = "2026-01-01T12:00:10Z".parse().expect("time");
        let obj = json!({
            "metadata": {"namespace": "apps", "name": "web"},
            "spec": {"placementRefs": [{"name": "all", "rolloutStrategy": {"type": "ProgressivePerGroup",
                "progressivePerGroup": {"progressDeadline": "30s"}}}], "rollback": {"automatic": true}},
            "status": {"rollout": {"revision": 2, "phase": "Progressing", "message": "waiting for edge2",
                "recheckAt": "2026-01-01T12:00:30Z", "clusters": [
                {"name": "edge1", "placement": "all", "groupIndex": 0, "groupName": "canary", "status": "Succeeded",
                 "revision": 2, "lastTransitionTime": "2026-01-01T12:00:05Z"},
                {"name": "edge2", "placement": "all", "groupIndex": 1, "status": "Progressing", "revision": 2,
                 "message": "web: Deployment 0/2 ready"},
                {"name": "edge3", "placement": "all", "groupIndex": 1, "status": "ToApply", "revision": 1,
                 "rolledBackTo": 1}]}}
        });
        let screen = render(&obj, now);
        assert!(screen.contains("revision 2, Progressing"), "{screen}");
        assert!(screen.contains("automatic rollback: on"), "{screen}");
        assert!(screen.contains("waiting: waiting for edge2"), "{screen}");
        assert!(screen.contains("next check: 12:00:30 (in 20s)"), "{screen}");
        assert!(screen.contains("ProgressivePerGroup (progressDeadline 30s)"), "{screen}");
        assert!(screen.contains("1/3 succeeded"), "{screen}");
        assert!(screen.contains("group 0 (canary)"), "{screen}");
        assert!(screen.contains("RolledBack->1"), "{screen}");
        assert!(screen.contains("web: Deployment 0/2 ready"), "{screen}");
        assert!(!settled(&obj));
    }
}
