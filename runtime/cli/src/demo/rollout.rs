//! The demo's rollout story (demo/rollout.yaml): a ManifestWorkReplicaSet rolls the `shop`
//! application out to the three demo clusters, one decision group after the other. Version
//! 2.0 follows; spoke3's simulated spoke is told never to make it ready, so spoke3 times out,
//! the strategy stops the rollout (maxFailures 0) and the automatic rollback puts spoke3 back
//! on version 1.0 while spoke1 and spoke2 keep 2.0. Declared inside `demo` (it uses the
//! story's helpers).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{Agents, SPOKES, STEP_TIMEOUT, apply_file, heading, pause};
use crate::kubectl::session::Session;
use crate::rollout_cmds::{self, RolloutCommand, TargetArgs};

const ROLLOUT_YAML: &str = include_str!("../../demo/rollout.yaml");
const NAMESPACE: &str = "apps";
const NAME: &str = "shop";
/// The cluster whose next version never gets ready.
const NEVER_READY: &str = "spoke3";
const NEXT_IMAGE: &str = "registry.example.com/shop:2.0";

fn replica_sets(hub: &Session) -> Api<DynamicObject> {
    Api::namespaced_with(hub.client.clone(), NAMESPACE, &rollout_cmds::replica_sets())
}

/// A spoke's own API (its simulated spoke), as the admin of that spoke.
async fn spoke_session(base: &Path, cluster: &str) -> anyhow::Result<Session> {
    let kubeconfig = flotilla_spoke::kubeconfig_path(&base.join("agents").join(cluster).join("spoke"));
    Session::connect(&kubeconfig, None).await
}

/// Prints `flotilla rollout status` each time it changes, until revision `revision` is
/// complete, stopped or failed; returns its phase.
async fn follow(hub: &Session, agents: &mut Agents, revision: i64) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    let mut last = String::new();
    loop {
        let obj = serde_json::to_value(replica_sets(hub).get(NAME).await.context("reading apps/shop")?)?;
        let frame = rollout_cmds::render(&obj, jiff::Timestamp::now());
        // Times in the frame tick every second; print when the rollout itself moved.
        let moved = |frame: &str| {
            let lines = frame.lines().filter(|l| !l.starts_with("next check"));
            lines.map(|l| strip_times(l).split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>()
        };
        let rollout = &obj["status"]["rollout"];
        let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
        let observed = rollout["observedGeneration"].as_i64() == generation;
        // Frames of an earlier spec (before the controller saw the change) say nothing new.
        if observed && moved(&frame) != moved(&last) {
            println!("\n$ flotilla rollout status shop -n apps\n{frame}");
            last = frame;
        }
        let phase = rollout["phase"].as_str().unwrap_or_default().to_string();
        let current = rollout["revision"].as_i64() == Some(revision) && observed;
        if current && matches!(phase.as_str(), "Complete" | "Stopped" | "Failed") {
            return Ok(phase);
        }
        pause(agents, deadline, &format!("the rollout of revision {revision} of apps/shop")).await?;
    }
}

/// A status line without its `(now)`, `(in 5s)` and `(3s ago)` parts.
fn strip_times(line: &str) -> String {
    let relative =
        |text: &str| text == "now" || (text.starts_with("in ") && text.ends_with('s')) || text.ends_with("s ago");
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find(" (") {
        let Some(len) = rest[start..].find(')') else { break };
        out.push_str(&rest[..start]);
        if !relative(&rest[start + 2..start + len]) {
            out.push_str(&rest[start..=start + len]);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// The image of Deployment `shop` on each demo spoke.
async fn spoke_images(base: &Path) -> anyhow::Result<()> {
    for cluster in SPOKES {
        let spoke = spoke_session(base, cluster).await?;
        let deployments: Api<DynamicObject> = Api::namespaced_with(
            spoke.client.clone(),
            "shop",
            &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        );
        let image = match deployments.get_opt("shop").await? {
            Some(d) => serde_json::to_value(&d)?
                .pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            None => "(none)".to_string(),
        };
        println!("  {cluster}: deployment shop runs {image}");
    }
    Ok(())
}

pub(super) async fn roll_out(base: &Path, hub: &Session, agents: &mut Agents) -> anyhow::Result<()> {
    heading("A progressive rollout: a ManifestWorkReplicaSet, one decision group at a time");
    println!("(demo/rollout.yaml: placement `everywhere` with one cluster per decision group; shop 1.0 rolled");
    println!(" out ProgressivePerGroup, progressDeadline 10s, maxFailures 0, spec.rollback.automatic: true)");
    println!("flotilla apply -f rollout.yaml");
    apply_file(hub, base, "rollout.yaml", ROLLOUT_YAML, false).await?;
    let phase = follow(hub, agents, 1).await?;
    if phase != "Complete" {
        bail!("the first rollout of apps/shop ended {phase}, not Complete");
    }

    heading(&format!("Version 2.0, which {NEVER_READY} will never make healthy"));
    let spoke = spoke_session(base, NEVER_READY).await?;
    let deployments: Api<DynamicObject> = Api::namespaced_with(
        spoke.client.clone(),
        "shop",
        &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
    );
    let annotate = json!({"metadata": {"annotations": {"sim.flotilla.dev/never-ready": "true"}}});
    deployments
        .patch("shop", &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .with_context(|| format!("annotating deployment shop on {NEVER_READY}"))?;
    println!(
        "on {NEVER_READY}'s simulated spoke: kubectl annotate deployment shop -n shop sim.flotilla.dev/never-ready=true"
    );
    println!("(the agent keeps annotations added on the spoke, so every later rollout there never gets ready)");
    let mut obj = serde_json::to_value(replica_sets(hub).get(NAME).await.context("reading apps/shop")?)?;
    let image =
        obj.pointer_mut("/spec/manifestWorkTemplate/workload/manifests/1/spec/template/spec/containers/0/image");
    match image {
        Some(image) => *image = json!(NEXT_IMAGE),
        None => bail!("apps/shop's template has no Deployment image where demo/rollout.yaml puts it"),
    }
    let updated: DynamicObject = serde_json::from_value(obj)?;
    replica_sets(hub).replace(NAME, &PostParams::default(), &updated).await.context("updating apps/shop")?;
    println!("flotilla apply: apps/shop's Deployment image is now {NEXT_IMAGE} (revision 2)");
    let phase = follow(hub, agents, 2).await?;
    if phase != "Stopped" {
        bail!("the rollout of revision 2 ended {phase}; the demo expected the strategy to stop it");
    }
    println!(
        "\nThe strategy stopped at {NEVER_READY}: it timed out, maxFailures 0 was breached, and the automatic rollback"
    );
    println!("put {NEVER_READY} back on revision 1, the last that succeeded there. What each spoke runs now:");
    spoke_images(base).await?;
    println!("\n$ flotilla rollout history shop -n apps");
    let history = RolloutCommand::History(TargetArgs { name: NAME.into(), namespace: Some(NAMESPACE.into()) });
    if rollout_cmds::run(hub, history).await? != ExitCode::SUCCESS {
        bail!("flotilla rollout history failed (see above)");
    }
    println!("(`flotilla rollout undo shop -n apps` would take every cluster back to revision 1.)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::strip_times;

    #[test]
    fn relative_times_are_left_out_of_frame_comparisons() {
        assert_eq!(strip_times("spoke1 since 08:27:39 (now) shop"), "spoke1 since 08:27:39 shop");
        assert_eq!(strip_times("next 08:27:53 (in 10s)"), "next 08:27:53");
        assert_eq!(
            strip_times("since 08:27:39 (12s ago) x (ReplicaSetUpdated)"),
            "since 08:27:39 x (ReplicaSetUpdated)"
        );
        assert_eq!(strip_times("group 0 (canary)"), "group 0 (canary)");
    }
}
