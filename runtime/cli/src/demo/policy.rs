//! The demo's governance story (demo/policy.yaml): a Policy whose ConfigurationPolicy
//! template requires a Namespace `prod` owned by `platform` goes to every demo spoke; one
//! spoke's namespace lacks the owner label, so it reports NonCompliant while the policy
//! informs; the policy is switched to enforce, the agent fixes the spoke, and every cluster
//! reports Compliant. Declared inside `demo` (it uses the story's helpers).

use std::path::Path;

use anyhow::Context;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{Agents, SPOKES, STEP_TIMEOUT, apply_file, heading, pause, show};
use crate::kubectl::session::Session;

const POLICY_YAML: &str = include_str!("../../demo/policy.yaml");
const NAMESPACE: &str = "policies";
const POLICY: &str = "prod-namespace-owner";
/// The spoke whose `prod` namespace has no owner: it violates the policy until it is enforced.
const VIOLATOR: &str = "spoke3";

fn policies() -> ApiResource {
    ApiResource {
        group: "policy.open-cluster-management.io".into(),
        version: "v1".into(),
        api_version: "policy.open-cluster-management.io/v1".into(),
        kind: "Policy".into(),
        plural: "policies".into(),
    }
}

/// A spoke's own API (its simulated spoke), as the admin of that spoke.
async fn spoke_session(base: &Path, cluster: &str) -> anyhow::Result<Session> {
    let kubeconfig = flotilla_spoke::kubeconfig_path(&base.join("agents").join(cluster).join("spoke"));
    Session::connect(&kubeconfig, None).await
}

/// Creates Namespace `prod` on every spoke: owned by `platform`, except on the violator.
async fn prepare_spokes(base: &Path) -> anyhow::Result<()> {
    for cluster in SPOKES {
        let spoke = spoke_session(base, cluster).await?;
        let labels = if cluster == VIOLATOR { json!({}) } else { json!({"owner": "platform"}) };
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": "prod", "labels": labels}}))?;
        let api: Api<Namespace> = Api::all(spoke.client.clone());
        match api.create(&PostParams::default(), &namespace).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e).with_context(|| format!("creating namespace prod on {cluster}")),
        }
        let owner = if cluster == VIOLATOR { "no owner label".to_string() } else { "owner=platform".to_string() };
        println!("  {cluster}: namespace prod ({owner})");
    }
    Ok(())
}

/// The root policy's `status.summary` counts: (clusters, compliant, nonCompliant).
async fn summary(hub: &Session) -> anyhow::Result<(i64, i64, i64)> {
    let api: Api<DynamicObject> = Api::namespaced_with(hub.client.clone(), NAMESPACE, &policies());
    let policy = match api.get_opt(POLICY).await.with_context(|| format!("reading policy {NAMESPACE}/{POLICY}"))? {
        Some(p) => serde_json::to_value(&p)?,
        None => Value::Null,
    };
    let count = |field: &str| policy.pointer(&format!("/status/summary/{field}")).and_then(Value::as_i64).unwrap_or(0);
    Ok((count("clusters"), count("compliant"), count("nonCompliant")))
}

/// Waits until the root policy counts `compliant` and `non_compliant` clusters out of all spokes.
async fn wait_for_counts(hub: &Session, agents: &mut Agents, compliant: i64, non_compliant: i64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    let clusters = SPOKES.len() as i64;
    loop {
        if summary(hub).await? == (clusters, compliant, non_compliant) {
            return Ok(());
        }
        let what = format!(
            "policy {NAMESPACE}/{POLICY} to count {compliant} compliant and {non_compliant} non-compliant of {clusters} clusters \
             (the agents evaluate its replicas)"
        );
        pause(agents, deadline, &what).await?;
    }
}

/// The newest compliance message the violator's agent reported for the policy.
async fn violator_message(hub: &Session) -> anyhow::Result<String> {
    let api: Api<DynamicObject> = Api::namespaced_with(hub.client.clone(), VIOLATOR, &policies());
    let replica =
        serde_json::to_value(api.get(&format!("{NAMESPACE}.{POLICY}")).await.context("reading the replica")?)?;
    Ok(replica
        .pointer("/status/details/0/history/0/message")
        .and_then(Value::as_str)
        .unwrap_or("(no message yet)")
        .to_string())
}

/// The governance story.
pub(super) async fn govern(base: &Path, hub: &Session, agents: &mut Agents) -> anyhow::Result<()> {
    heading("Governance: a Policy that one spoke violates");
    println!("On each spoke's own API, a namespace prod:");
    prepare_spokes(base).await?;
    println!(
        "\nflotilla apply -f policy.yaml   (demo/policy.yaml: Policy {POLICY}, musthave Namespace prod with owner=platform, inform)"
    );
    apply_file(hub, base, "policy.yaml", POLICY_YAML, false).await?;
    wait_for_counts(hub, agents, 2, 1).await?;
    println!("\nThe hub replicated the policy into each cluster's namespace; the agents report back:");
    show(hub, "policies", None).await?;
    println!("\n{VIOLATOR} says: {}", violator_message(hub).await?);

    heading("Enforcing it: the agents remediate");
    println!(
        "kubectl patch policy {POLICY} -n {NAMESPACE} --type merge -p '{{\"spec\":{{\"remediationAction\":\"enforce\"}}}}'"
    );
    let api: Api<DynamicObject> = Api::namespaced_with(hub.client.clone(), NAMESPACE, &policies());
    let patch = json!({"spec": {"remediationAction": "enforce"}});
    api.patch(POLICY, &PatchParams::default(), &Patch::Merge(&patch)).await.context("enforcing the demo policy")?;
    wait_for_counts(hub, agents, 3, 0).await?;
    show(hub, "policies", Some(NAMESPACE)).await?;
    let spoke = spoke_session(base, VIOLATOR).await?;
    let prod = Api::<Namespace>::all(spoke.client.clone()).get("prod").await.context("reading namespace prod")?;
    let owner = prod.metadata.labels.as_ref().and_then(|l| l.get("owner")).cloned().unwrap_or_default();
    println!("\nOn {VIOLATOR} itself: namespace prod now has owner={owner}");
    println!("{VIOLATOR} says: {}", violator_message(hub).await?);
    Ok(())
}
