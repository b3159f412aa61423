//! The simulated spoke: the same API machinery serving Kubernetes' built-in kinds
//! (and any CRD installed into it) with no kubelet, like KWOK. It starts like a fresh
//! cluster: system namespaces, a few Nodes with capacity, a server version. Workloads get the
//! status a real cluster's controllers and kubelet would write ([`workloads`]), so what the
//! agent applies becomes ready, or not, as the test at hand needs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use flotilla_apiserver::host::{self, HostOptions, RunningServer};
use flotilla_apiserver::{DEFAULT_MAX_BODY_BYTES, MastersOnly};
use serde_json::{Value, json};

pub mod workloads;

pub use workloads::DEFAULT_READY_DELAY;

/// The kubeconfig a spoke writes into its data directory.
pub fn kubeconfig_path(data_dir: &Path) -> PathBuf {
    data_dir.join("kubeconfig")
}

#[derive(Debug, Clone)]
pub struct SpokeOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Cluster name inside the kubeconfig (also the Nodes' name prefix).
    pub name: String,
    pub nodes: usize,
    /// How long workloads take to become ready ([`workloads`]; objects may override it with
    /// the `sim.flotilla.dev/ready-after-seconds` annotation). [`DEFAULT_READY_DELAY`] unless
    /// a test wants it immediate (zero) or slow.
    pub ready_delay: Duration,
}

fn node(cluster: &str, index: usize) -> Value {
    let name = format!("{cluster}-node-{index}");
    let resources = json!({"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    let allocatable = json!({"cpu": "3800m", "memory": "15Gi", "pods": "110", "ephemeral-storage": "95Gi"});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/worker": "",
                "type": "kwok",
            },
        },
        "spec": {"providerID": format!("flotilla://{cluster}/{name}")},
        "status": {
            "capacity": resources,
            "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated node is ready"}],
            "nodeInfo": {"kubeletVersion": "v1.34.0", "operatingSystem": "linux", "architecture": "amd64", "containerRuntimeVersion": "simulated://1.0"},
            "addresses": [{"type": "InternalIP", "address": format!("10.0.0.{}", index + 1)}, {"type": "Hostname", "address": name}],
        },
    })
}

fn seed_objects(opts: &SpokeOptions) -> Vec<Value> {
    let mut seed: Vec<Value> = ["default", "kube-system", "kube-public", "kube-node-lease"]
        .iter()
        .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .collect();
    seed.extend((0..opts.nodes).map(|i| node(&opts.name, i)));
    seed
}

/// Starts a simulated spoke; its admin kubeconfig is `DATA_DIR/kubeconfig`.
pub async fn start(opts: SpokeOptions) -> anyhow::Result<RunningServer> {
    let kinds = flotilla_kinds::spoke_kinds().context("loading the spoke's kinds")?;
    let options = HostOptions {
        data_dir: opts.data_dir.clone(),
        listen: opts.listen,
        extra_sans: Vec::new(),
        kinds,
        admission: Vec::new(),
        authorizer: Arc::new(MastersOnly),
        tokens: Vec::new(),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        kubeconfig_path: kubeconfig_path(&opts.data_dir),
        cluster_name: opts.name.clone(),
        seed: seed_objects(&opts),
        store_options: Default::default(),
        version: None,
        extensions: Default::default(),
    };
    let mut server = host::start(options).await?;
    if let Err(e) = workloads::start(&mut server, opts.ready_delay) {
        server.shutdown().await;
        return Err(e.into());
    }
    Ok(server)
}
