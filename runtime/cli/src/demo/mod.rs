//! `flotilla demo`: an embedded hub on loopback, three agents with simulated spokes joining
//! it with a bootstrap token, their acceptance, and OCM objects applied through the hub's
//! Kubernetes API. The story grows as work, placement, policy and rollout land.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use flotilla_agent::work::manifest_works;
use flotilla_agent::{AgentOptions, SpokeSource};
use flotilla_registration::conditions;
use flotilla_registration::names::{CLUSTER_NAME_LABEL, CONDITION_AVAILABLE, CONDITION_JOINED};
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::args::DemoArgs;
use crate::kubectl;
use crate::kubectl::apply::ApplyArgs;
use crate::kubectl::get::GetArgs;
use crate::kubectl::session::Session;
use crate::placement_cmds::{self, ExplainArgs, PlacementCommand};
use crate::plugin_cmds::push::{self, PushArgs};
use crate::registration_cmds::{self, ClusterNames, TokenCreateArgs};

mod policy;
mod rollout;

const FLEET: &str = include_str!("../../demo/fleet.yaml");
const APP: &str = include_str!("../../demo/app.yaml");
const PLACEMENT: &str = include_str!("../../demo/placement.yaml");
/// The cluster whose Deployment the simulated spoke never makes ready: its work is Degraded.
const UNHEALTHY: &str = "spoke3";
const SPOKES: [&str; 3] = ["spoke1", "spoke2", "spoke3"];
/// Short leases so that the demo shows health quickly; OCM's default is 60 s.
const LEASE: Duration = Duration::from_secs(10);
/// Works are reconciled (feedback refreshed) this often; OCM's default is 10 s.
const WORK_RESYNC: Duration = Duration::from_secs(2);
/// How long the demo waits for each step before it gives up and says which.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn heading(text: &str) {
    println!("\n=== {text}");
}

/// Prints `flotilla get KIND` (in NAMESPACE, else all namespaces).
/// Writes one of the demo's YAML files into `base` and applies it, as
/// `flotilla apply -f --server-side` would.
async fn apply_file(hub: &Session, base: &Path, name: &str, yaml: &str, force_conflicts: bool) -> anyhow::Result<()> {
    let file = base.join(name);
    std::fs::write(&file, yaml).with_context(|| format!("cannot write {}", file.display()))?;
    let apply = ApplyArgs {
        files: vec![file],
        recursive: false,
        namespace: None,
        force_conflicts,
        field_manager: "flotilla-demo".into(),
        server_side: true,
        dry_run: "none".into(),
    };
    if kubectl::apply::run(hub, apply).await? != ExitCode::SUCCESS {
        bail!("applying demo/{name} failed (see above)");
    }
    Ok(())
}

async fn show(session: &Session, kind: &str, namespace: Option<&str>) -> anyhow::Result<()> {
    let args = GetArgs {
        kind: kind.to_string(),
        names: Vec::new(),
        namespace: namespace.map(str::to_string),
        all_namespaces: namespace.is_none(),
        selector: None,
        field_selector: None,
        output: None,
        watch: false,
        show_managed_fields: false,
    };
    if kubectl::get::run(session, args).await? != ExitCode::SUCCESS {
        bail!("flotilla get {kind} failed (see above)");
    }
    Ok(())
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // Without --data-dir the demo lives in a temporary directory removed at the end.
    let temp = tempfile::Builder::new().prefix("flotilla-demo-").tempdir().context("creating a temporary directory")?;
    let base: PathBuf = args.data_dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let hub_dir = base.join("hub");
    let loopback: SocketAddr = "127.0.0.1:0".parse().context("loopback address")?;

    heading("Starting an embedded hub on loopback");
    if !hub_dir.join("hub.json").exists() {
        let config = flotilla_hub::HubConfig::new(loopback);
        flotilla_hub::init(&hub_dir, &config)?;
    }
    let hub = flotilla_hub::start(&hub_dir, Some(loopback)).await?;
    let hub_kubeconfig = flotilla_hub::admin_kubeconfig_path(&hub_dir);
    println!("hub: {}  (kubectl --kubeconfig {})", hub.url, hub_kubeconfig.display());

    let (stop_agents, agents_stopped) = watch::channel(false);
    let mut agents = JoinSet::new();
    let result = story(&base, &hub_kubeconfig, &mut agents, &agents_stopped).await;
    let _ = stop_agents.send(true);
    while let Some(joined) = agents.join_next().await {
        if let Ok((cluster, Err(e))) = joined {
            eprintln!("agent {cluster}: {e}");
        }
    }
    hub.shutdown().await;
    drop(temp);
    result
}

type Agents = JoinSet<(&'static str, Result<(), flotilla_agent::AgentError>)>;

async fn story(
    base: &Path,
    hub_kubeconfig: &Path,
    agents: &mut Agents,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let hub = Session::connect(hub_kubeconfig, None).await?;

    heading("flotilla token create --ttl 1h");
    let token_args = TokenCreateArgs { ttl: "1h".into(), description: "flotilla demo".into() };
    let created = registration_cmds::create_token(&hub, hub_kubeconfig, None, &token_args).await?;
    println!("token: {}\nJoin a cluster with:\n  {}", created.token.expose(), created.join_command());

    heading("Three agents join, each with a simulated spoke (flotilla agent join --simulated)");
    for cluster in SPOKES {
        let data_dir = base.join("agents").join(cluster);
        println!(
            "flotilla agent join --hub {} --token <token> --hub-ca-hash {} --cluster-name {cluster} --simulated --data-dir {}",
            created.hub_url,
            created.hub_ca_hash,
            data_dir.display()
        );
        let mut options = AgentOptions::new(&created.hub_url, cluster, data_dir, SpokeSource::Simulated);
        options.token = Some(created.token.expose().to_string());
        options.hub_ca_hash = Some(created.hub_ca_hash.clone());
        options.lease_duration = Some(LEASE);
        options.work_resync_period = WORK_RESYNC;
        let mut stop = stop.clone();
        agents.spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            (cluster, flotilla_agent::run(options, shutdown).await)
        });
    }
    wait_for_clusters(&hub, agents, "to ask to join", |_| true).await?;
    wait_for_csrs(&hub, agents).await?;
    println!("\nThe clusters asked to join; the hub has not accepted them yet:");
    show(&hub, "managedclusters", None).await?;

    heading("flotilla accept spoke1 spoke2 spoke3");
    let names = ClusterNames { names: SPOKES.iter().map(|s| s.to_string()).collect() };
    registration_cmds::accept(&hub, names).await?;
    wait_for_clusters(&hub, agents, "to be joined and available", |cluster| {
        conditions::is_true(cluster, CONDITION_JOINED) && conditions::is_true(cluster, CONDITION_AVAILABLE)
    })
    .await?;
    println!("\nEach agent now holds a client certificate for its own cluster only, and renews its lease:");
    show(&hub, "managedclusters", None).await?;
    println!();
    show(&hub, "leases", None).await?;
    let spoke1_kubeconfig = base.join("agents/spoke1/hub.kubeconfig");
    let as_spoke1 = Session::connect(&spoke1_kubeconfig, None).await?;
    println!("\nAs spoke1's agent (kubectl --kubeconfig {}):", spoke1_kubeconfig.display());
    let clusters: Api<DynamicObject> = Api::all_with(as_spoke1.client.clone(), &registration_cmds::managed_clusters());
    match clusters.get("spoke1").await {
        Ok(_) => println!("  get managedcluster spoke1: allowed"),
        Err(e) => bail!("spoke1's agent cannot read its own cluster: {e}"),
    }
    match clusters.get("spoke2").await {
        Ok(_) => bail!("spoke1's agent could read spoke2's cluster: per-cluster authorization is broken"),
        Err(e) => println!("  get managedcluster spoke2: {}", kubectl::errors::kube_message(&e)),
    }

    heading("Applying the fleet to the hub (server-side apply): labels, a cluster set, a placement");
    // The hub put the clusters in the `default` set when they joined; moving them to `demo`
    // takes that label over.
    apply_file(&hub, base, "fleet.yaml", FLEET, true).await?;

    heading("What the hub holds");
    for (kind, ns) in [
        ("managedclusters", None),
        ("managedclustersets", None),
        ("managedclustersetbindings", Some("apps")),
        ("placements", Some("apps")),
    ] {
        show(&hub, kind, ns).await?;
        println!();
    }

    heading("Distributing an application: a ManifestWork in each cluster's namespace");
    println!("(demo/app.yaml: a namespace, a ConfigMap and a Deployment, with statusFeedback and a CEL");
    println!(
        " condition rule; {UNHEALTHY}'s Deployment is annotated so that its simulated spoke never makes it ready)"
    );
    distribute_app(&hub).await?;
    wait_for_works(&hub, agents).await?;
    show(&hub, "works", None).await?;
    println!("\nWhat the agents report back (status.resourceStatus: feedback and condition rules):");
    for cluster in SPOKES {
        let work = Api::<DynamicObject>::namespaced_with(hub.client.clone(), cluster, &manifest_works())
            .get(APP_WORK)
            .await
            .with_context(|| format!("reading work {cluster}/{APP_WORK}"))?;
        let value = serde_json::to_value(&work)?;
        println!("  {cluster}: {}", describe_work_status(&value));
    }
    let spoke1 = Session::connect(&flotilla_spoke::kubeconfig_path(&base.join("agents/spoke1/spoke")), None).await?;
    println!("\nOn spoke1 itself (its simulated spoke's API), what the agent applied:");
    show(&spoke1, "deployments", Some("web")).await?;
    println!();
    show(&spoke1, "appliedmanifestworks", None).await?;
    place_with_plugins(base, &hub, agents).await?;
    policy::govern(base, &hub, agents).await?;
    rollout::roll_out(base, &hub, agents).await?;

    heading("Try it yourself while a hub runs");
    println!("flotilla hub init --data-dir /tmp/hub && flotilla hub serve --data-dir /tmp/hub");
    println!("export FLOTILLA_KUBECONFIG=/tmp/hub/admin.kubeconfig");
    println!("flotilla token create --ttl 1h     # prints the join command");
    println!("flotilla agent join ... --cluster-name edge1 --simulated --data-dir /tmp/edge1");
    println!("flotilla accept edge1 && flotilla get managedclusters");
    println!("kubectl --kubeconfig /tmp/hub/admin.kubeconfig apply -f work.yaml   # a ManifestWork in namespace edge1");
    println!("flotilla get works -n edge1");
    Ok(())
}

/// Waits until every demo cluster's agent has asked for its certificate.
async fn wait_for_csrs(hub: &Session, agents: &mut Agents) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::all_with(hub.client.clone(), &registration_cmds::csrs());
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        let list = api.list(&ListParams::default()).await.context("listing certificate signing requests")?;
        let waiting: Vec<&str> = SPOKES
            .into_iter()
            .filter(|cluster| {
                !list.items.iter().any(|csr| {
                    csr.metadata.labels.as_ref().and_then(|l| l.get(CLUSTER_NAME_LABEL)).map(String::as_str)
                        == Some(*cluster)
                })
            })
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        pause(agents, deadline, &format!("the certificate requests of {}", waiting.join(", "))).await?;
    }
}

const APP_WORK: &str = "web";

fn placements() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "cluster.open-cluster-management.io".into(),
        version: "v1beta1".into(),
        api_version: "cluster.open-cluster-management.io/v1beta1".into(),
        kind: "Placement".into(),
        plural: "placements".into(),
    }
}

/// Pushes a Wasm filter and a Wasm scorer and places with them (demo/placement.yaml).
async fn place_with_plugins(base: &Path, hub: &Session, agents: &mut Agents) -> anyhow::Result<()> {
    heading("Placement with Wasm plugins: a label filter and a capacity scorer");
    println!("building the built-in plugins (bash plugins/build.sh; incremental)");
    let artifacts = match tokio::task::spawn_blocking(flotilla_plugin_host::source_tree_plugins).await? {
        Ok(dir) => dir,
        Err(e) => {
            println!("skipped: {e:#}");
            return Ok(());
        }
    };
    for (file, name) in [("label_filter.wasm", "eu-only"), ("capacity_scorer.wasm", "most-cpu")] {
        println!("flotilla plugin push {file} --name {name}");
        let args = PushArgs {
            file: artifacts.join(file),
            name: name.to_string(),
            world: None,
            description: None,
            failure_policy: None,
            timeout_ms: None,
            memory_bytes: None,
            max_output_bytes: None,
        };
        if push::run(hub, args).await? != ExitCode::SUCCESS {
            bail!("pushing {file} failed (see above)");
        }
    }
    println!("\nflotilla apply -f placement.yaml   (demo/placement.yaml: predicate plugin eu-only, scorer most-cpu)");
    apply_file(hub, base, "placement.yaml", PLACEMENT, false).await?;
    let placements: Api<DynamicObject> = Api::namespaced_with(hub.client.clone(), "apps", &placements());
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        let placement = placements.get_opt("web-eu").await.context("reading placement apps/web-eu")?;
        let scheduled = placement
            .map(|p| serde_json::to_value(&p))
            .transpose()?
            .is_some_and(|p| p.pointer("/status/numberOfSelectedClusters").and_then(Value::as_i64) == Some(1));
        if scheduled {
            break;
        }
        pause(agents, deadline, "placement apps/web-eu to be scheduled").await?;
    }
    show(hub, "placements", Some("apps")).await?;
    println!();
    show(hub, "placementdecisions", Some("apps")).await?;
    println!("\nflotilla placement explain web-eu -n apps");
    let explain =
        PlacementCommand::Explain(ExplainArgs { name: "web-eu".into(), namespace: Some("apps".into()), output: None });
    if placement_cmds::run(hub, explain).await? != ExitCode::SUCCESS {
        bail!("flotilla placement explain failed (see above)");
    }
    Ok(())
}

/// Creates (server-side applies) demo/app.yaml's work in every demo cluster's namespace.
async fn distribute_app(hub: &Session) -> anyhow::Result<()> {
    let template: Value = serde_saphyr::from_str(APP).context("demo/app.yaml")?;
    for cluster in SPOKES {
        let mut work = template.clone();
        work["metadata"]["namespace"] = Value::from(cluster);
        if cluster == UNHEALTHY
            && let Some(deployment) = work.pointer_mut("/spec/workload/manifests/2/metadata/annotations")
        {
            deployment["sim.flotilla.dev/never-ready"] = Value::from("true");
        }
        let api: Api<DynamicObject> = Api::namespaced_with(hub.client.clone(), cluster, &manifest_works());
        let params = kube::api::PatchParams::apply("flotilla-demo").force();
        api.patch(APP_WORK, &params, &kube::api::Patch::Apply(&work))
            .await
            .with_context(|| format!("creating work {cluster}/{APP_WORK}"))?;
        println!("manifestwork.work.open-cluster-management.io/{APP_WORK} serverside-applied in {cluster}");
    }
    Ok(())
}

/// Whether a condition of a work is True at the work's generation.
fn work_condition_true(work: &Value, type_: &str) -> bool {
    let generation = work.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    work.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten().any(|c| {
        c.get("type").and_then(Value::as_str) == Some(type_)
            && c.get("status").and_then(Value::as_str) == Some("True")
            && c.get("observedGeneration").and_then(Value::as_i64).is_none_or(|g| g == generation)
    })
}

/// The Deployment's feedback value `name` in a work's status.
fn feedback_integer(work: &Value, name: &str) -> Option<i64> {
    work.pointer("/status/resourceStatus/manifests")?
        .as_array()?
        .iter()
        .filter_map(|m| m.pointer("/statusFeedback/values")?.as_array())
        .flatten()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(name))?
        .pointer("/fieldValue/integer")?
        .as_i64()
}

/// One line on a work's status: its Deployment's feedback and its Degraded condition.
fn describe_work_status(work: &Value) -> String {
    let values = ["Replicas", "ReadyReplicas", "AvailableReplicas"]
        .iter()
        .map(|n| format!("{n}={}", feedback_integer(work, n).map_or("-".to_string(), |v| v.to_string())))
        .collect::<Vec<_>>()
        .join(" ");
    let degraded = work
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c.get("type").and_then(Value::as_str) == Some("Degraded")))
        .map(|c| {
            format!(
                "Degraded={} ({})",
                c.get("status").and_then(Value::as_str).unwrap_or("?"),
                c.get("message").and_then(Value::as_str).unwrap_or("")
            )
        })
        .unwrap_or_else(|| "Degraded not reported".to_string());
    format!("feedback {values}; {degraded}")
}

/// Waits until every demo work is Applied and Available, the healthy clusters report their
/// replicas ready, and the unhealthy one reports Degraded.
async fn wait_for_works(hub: &Session, agents: &mut Agents) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        let mut waiting = Vec::new();
        for cluster in SPOKES {
            let api: Api<DynamicObject> = Api::namespaced_with(hub.client.clone(), cluster, &manifest_works());
            let work = match api.get_opt(APP_WORK).await.context("reading a work")? {
                Some(work) => serde_json::to_value(&work)?,
                None => Value::Null,
            };
            let settled = if cluster == UNHEALTHY {
                work_condition_true(&work, "Degraded")
            } else {
                feedback_integer(&work, "ReadyReplicas") == Some(2)
            };
            if !(work_condition_true(&work, "Applied") && work_condition_true(&work, "Available") && settled) {
                waiting.push(cluster);
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        pause(agents, deadline, &format!("the works of {} to be applied and report status", waiting.join(", ")))
            .await?;
    }
}

/// Sleeps a little before the next poll; fails when `deadline` passed or an agent stopped.
async fn pause(agents: &mut Agents, deadline: tokio::time::Instant, waiting_for: &str) -> anyhow::Result<()> {
    if tokio::time::Instant::now() >= deadline {
        bail!("gave up after {STEP_TIMEOUT:?} waiting for {waiting_for}");
    }
    tokio::select! {
        Some(Ok((cluster, result))) = agents.join_next() => match result {
            Err(e) => bail!("the agent of {cluster} stopped: {e}"),
            Ok(()) => bail!("the agent of {cluster} stopped"),
        },
        _ = tokio::time::sleep(Duration::from_millis(250)) => Ok(()),
    }
}

/// Waits until every demo cluster exists and satisfies `ready`; fails early, with the
/// agent's error, if an agent stops.
async fn wait_for_clusters(
    hub: &Session,
    agents: &mut Agents,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::all_with(hub.client.clone(), &registration_cmds::managed_clusters());
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        let list = api.list(&ListParams::default()).await.context("listing managed clusters")?;
        let mut waiting: Vec<&str> = Vec::new();
        for cluster in SPOKES {
            let found = list.items.iter().find(|item| item.metadata.name.as_deref() == Some(cluster));
            let ok = match found {
                Some(item) => ready(&serde_json::to_value(item)?),
                None => false,
            };
            if !ok {
                waiting.push(cluster);
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        pause(agents, deadline, &format!("{} {what}", waiting.join(", "))).await?;
    }
}
