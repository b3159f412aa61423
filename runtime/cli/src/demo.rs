//! `flotilla demo`: an embedded hub and a simulated spoke on loopback, OCM objects
//! applied through the hub's Kubernetes API, and what the hub and the spoke then hold.
//! The story grows as registration, work, placement, policy and rollout land.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::args::DemoArgs;
use crate::kubectl;
use crate::kubectl::apply::ApplyArgs;
use crate::kubectl::get::GetArgs;
use crate::kubectl::session::Session;

const FLEET: &str = include_str!("../demo/fleet.yaml");

fn heading(text: &str) {
    println!("\n=== {text}");
}

fn get(kind: &str, namespace: Option<&str>) -> GetArgs {
    GetArgs {
        kind: kind.to_string(),
        names: Vec::new(),
        namespace: namespace.map(str::to_string),
        all_namespaces: namespace.is_none(),
        selector: None,
        field_selector: None,
        output: None,
        watch: false,
        show_managed_fields: false,
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // Without --data-dir the demo lives in a temporary directory removed at the end.
    let temp = tempfile::Builder::new().prefix("flotilla-demo-").tempdir().context("creating a temporary directory")?;
    let base: PathBuf = args.data_dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let hub_dir = base.join("hub");
    let loopback: SocketAddr = "127.0.0.1:0".parse().context("loopback address")?;

    heading("Starting an embedded hub and a simulated spoke on loopback");
    if !hub_dir.join("hub.json").exists() {
        let config = flotilla_hub::HubConfig::new(loopback);
        flotilla_hub::init(&hub_dir, &config)?;
    }
    let hub = flotilla_hub::start(&hub_dir, Some(loopback)).await?;
    let spoke_dir = base.join("spoke1");
    let spoke = flotilla_spoke::start(flotilla_spoke::SpokeOptions {
        data_dir: spoke_dir.clone(),
        listen: loopback,
        name: "spoke1".into(),
        nodes: 3,
    })
    .await?;
    let hub_kubeconfig = flotilla_hub::admin_kubeconfig_path(&hub_dir);
    let spoke_kubeconfig = flotilla_spoke::kubeconfig_path(&spoke_dir);
    println!("hub:   {}  (kubectl --kubeconfig {})", hub.url, hub_kubeconfig.display());
    println!("spoke: {}  (kubectl --kubeconfig {})", spoke.url, spoke_kubeconfig.display());

    let result = story(&base, &hub_kubeconfig, &spoke_kubeconfig, &spoke.url).await;
    spoke.shutdown().await;
    hub.shutdown().await;
    drop(temp);
    result
}

async fn story(base: &Path, hub_kubeconfig: &Path, spoke_kubeconfig: &Path, spoke_url: &str) -> anyhow::Result<()> {
    let hub = Session::connect(hub_kubeconfig, None).await?;
    let spoke = Session::connect(spoke_kubeconfig, None).await?;

    heading("The simulated spoke looks like a fresh cluster");
    kubectl::get::run(&spoke, get("nodes", Some("default"))).await?;
    kubectl::get::run(&spoke, get("namespaces", Some("default"))).await?;

    heading("Applying OCM objects to the hub (server-side apply)");
    let fleet = base.join("fleet.yaml");
    std::fs::write(&fleet, FLEET.replace("SPOKE_URL", spoke_url))
        .with_context(|| format!("cannot write {}", fleet.display()))?;
    let apply = ApplyArgs {
        files: vec![fleet],
        recursive: false,
        namespace: None,
        force_conflicts: false,
        field_manager: "flotilla-demo".into(),
        server_side: true,
        dry_run: "none".into(),
    };
    kubectl::apply::run(&hub, apply).await?;

    heading("What the hub holds");
    for (kind, ns) in [
        ("managedclusters", None),
        ("managedclustersets", None),
        ("managedclustersetbindings", Some("apps")),
        ("placements", Some("apps")),
        ("manifestworks", Some("spoke1")),
    ] {
        kubectl::get::run(&hub, get(kind, ns)).await?;
        println!();
    }
    heading("Try it yourself while a hub runs");
    println!("flotilla hub init --data-dir /tmp/hub && flotilla hub serve --data-dir /tmp/hub");
    println!("kubectl --kubeconfig /tmp/hub/admin.kubeconfig apply -f tests/fixtures/ocm/");
    Ok(())
}
