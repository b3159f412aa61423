//! What the agent's end-to-end tests share: a real hub (`flotilla_hub::start`) and a
//! simulated spoke on loopback TLS, a signer that plays `flotilla accept`, a running agent,
//! and polling with a deadline (tests never sleep a fixed time to wait for something).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use flotilla_agent::{AgentError, AgentOptions, SpokeSource};
use flotilla_apiserver::host::RunningServer;
use flotilla_pki::CertificateAuthority;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

pub const TOKEN_ID: &str = "abcdef";
pub const TOKEN_SECRET: &str = "0123456789abcdef";
pub const WAIT: Duration = Duration::from_secs(60);

pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await.unwrap();
    kube::Client::try_from(config).unwrap()
}

pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() { version.into() } else { format!("{group}/{version}") },
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub fn managed_clusters() -> ApiResource {
    resource("cluster.open-cluster-management.io", "v1", "ManagedCluster", "managedclusters")
}

pub fn manifest_works() -> ApiResource {
    resource("work.open-cluster-management.io", "v1", "ManifestWork", "manifestworks")
}

pub fn applied_manifest_works() -> ApiResource {
    resource("work.open-cluster-management.io", "v1", "AppliedManifestWork", "appliedmanifestworks")
}

pub fn config_maps() -> ApiResource {
    resource("", "v1", "ConfigMap", "configmaps")
}

pub fn namespaces() -> ApiResource {
    resource("", "v1", "Namespace", "namespaces")
}

pub fn deployments() -> ApiResource {
    resource("apps", "v1", "Deployment", "deployments")
}

pub fn jobs() -> ApiResource {
    resource("batch", "v1", "Job", "jobs")
}

/// Initialises a hub in `hub_dir` and starts it on a free loopback port.
pub async fn start_hub(hub_dir: &Path) -> RunningServer {
    flotilla_hub::init(hub_dir, &flotilla_hub::HubConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
    flotilla_hub::start(hub_dir, None).await.unwrap()
}

/// A hub and a simulated spoke, both on loopback TLS.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub hub: Option<RunningServer>,
    pub hub_addr: SocketAddr,
    pub spoke: Option<RunningServer>,
    pub hub_url: String,
    pub admin: kube::Client,
    pub ca: Arc<CertificateAuthority>,
    pub spoke_kubeconfig: PathBuf,
    pub spoke_admin: kube::Client,
}

impl Env {
    pub async fn start() -> Env {
        init_logging();
        let dir = tempfile::tempdir().unwrap();
        let hub_dir = dir.path().join("hub");
        let hub = start_hub(&hub_dir).await;
        let hub_url = hub.url.clone();
        let hub_addr = hub.addr;
        let admin = client_for(&flotilla_hub::admin_kubeconfig_path(&hub_dir)).await;
        let ca = CertificateAuthority::from_pem(
            &std::fs::read_to_string(hub_dir.join("pki/ca.crt")).unwrap(),
            &std::fs::read_to_string(hub_dir.join("pki/ca.key")).unwrap(),
        )
        .unwrap();

        let spoke_dir = dir.path().join("spoke");
        let spoke = flotilla_spoke::start(flotilla_spoke::SpokeOptions {
            data_dir: spoke_dir.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            name: "spoke1".into(),
            nodes: 3,
            ready_delay: Duration::from_millis(200),
        })
        .await
        .unwrap();
        let spoke_kubeconfig = flotilla_spoke::kubeconfig_path(&spoke_dir);
        let spoke_admin = client_for(&spoke_kubeconfig).await;

        let tokens = resource("flotilla.dev", "v1alpha1", "BootstrapToken", "bootstraptokens");
        let token: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "flotilla.dev/v1alpha1",
            "kind": "BootstrapToken",
            "metadata": {"name": TOKEN_ID},
            "spec": {
                "secretHash": format!("sha256:{}", hex::encode(Sha256::digest(TOKEN_SECRET.as_bytes()))),
                "usages": ["registration"],
                "description": "agent tests",
            },
        }))
        .unwrap();
        Api::<DynamicObject>::all_with(admin.clone(), &tokens).create(&PostParams::default(), &token).await.unwrap();

        Env {
            dir,
            hub: Some(hub),
            hub_addr,
            spoke: Some(spoke),
            hub_url,
            admin,
            ca: Arc::new(ca),
            spoke_kubeconfig,
            spoke_admin,
        }
    }

    pub async fn stop(mut self) {
        for server in [self.hub.take(), self.spoke.take()].into_iter().flatten() {
            server.shutdown().await;
        }
    }

    /// Stops the hub (its data stays): the agent is cut off.
    pub async fn stop_hub(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.shutdown().await;
        }
    }

    /// Starts the hub again on the same address.
    pub async fn restart_hub(&mut self) {
        let hub = flotilla_hub::start(&self.dir.path().join("hub"), Some(self.hub_addr)).await.unwrap();
        self.hub = Some(hub);
    }

    pub fn agent_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("agent-{name}"))
    }

    /// Options for a fast agent: 1 s leases and status, a short work resync.
    pub fn options(&self, cluster: &str) -> AgentOptions {
        let mut opts = AgentOptions::new(
            &self.hub_url,
            cluster,
            self.agent_dir(cluster),
            SpokeSource::Kubeconfig { path: self.spoke_kubeconfig.clone(), context: None },
        );
        opts.token = Some(format!("{TOKEN_ID}.{TOKEN_SECRET}"));
        opts.hub_ca_hash = Some(self.ca.ca_hash());
        opts.lease_duration = Some(Duration::from_secs(1));
        opts.status_period = Duration::from_secs(1);
        opts.health_retry = Duration::from_millis(200);
        opts.work_resync_period = Duration::from_millis(300);
        opts
    }

    pub fn clusters(&self) -> Api<DynamicObject> {
        Api::all_with(self.admin.clone(), &managed_clusters())
    }

    /// The ManagedCluster `name`, `None` when absent.
    pub async fn cluster(&self, name: &str) -> Option<Value> {
        self.clusters().get_opt(name).await.unwrap().map(|o| serde_json::to_value(o).unwrap())
    }

    pub fn works(&self, cluster: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.admin.clone(), cluster, &manifest_works())
    }

    pub async fn work(&self, cluster: &str, name: &str) -> Option<Value> {
        self.works(cluster).get_opt(name).await.unwrap().map(|o| serde_json::to_value(o).unwrap())
    }

    /// A spoke object, `None` when absent.
    pub async fn spoke_get(&self, ar: &ApiResource, namespace: Option<&str>, name: &str) -> Option<Value> {
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.spoke_admin.clone(), ns, ar),
            None => Api::all_with(self.spoke_admin.clone(), ar),
        };
        api.get_opt(name).await.unwrap().map(|o| serde_json::to_value(o).unwrap())
    }

    pub fn spoke_api(&self, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.spoke_admin.clone(), ns, ar),
            None => Api::all_with(self.spoke_admin.clone(), ar),
        }
    }

    /// The AppliedManifestWork of `work`: `<sha256(hub URL)>-<work>`.
    pub fn applied_name(&self, work: &str) -> String {
        format!("{}-{work}", hex::encode(Sha256::digest(self.hub_url.as_bytes())))
    }
}

/// A running agent: `stop` ends it and returns what `run` returned.
pub struct RunningAgent {
    stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), AgentError>>,
}

impl RunningAgent {
    pub fn start(opts: AgentOptions) -> RunningAgent {
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(flotilla_agent::run(opts, async move {
            let _ = rx.await;
        }));
        RunningAgent { stop: Some(tx), task }
    }

    pub async fn stop(mut self) -> Result<(), AgentError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(WAIT, self.task).await.expect("the agent stops").expect("the agent task does not panic")
    }

    /// Waits for `run` to end by itself (a refused join).
    pub async fn finished(self) -> Result<(), AgentError> {
        tokio::time::timeout(WAIT, self.task).await.expect("the agent gives up").expect("no panic")
    }
}

/// Plays `flotilla accept` and the hub's signer for `cluster`: signs every pending CSR for an
/// hour, accepts the cluster and creates its namespace.
pub fn sign_and_accept(env: &Env, cluster: &str) {
    answer_csrs(env, cluster, |_| Answer::Sign(Duration::from_secs(3600)));
}

/// What the test's signer does with the n-th CSR of a cluster (0-based).
#[derive(Clone, Copy)]
pub enum Answer {
    Sign(Duration),
    Deny,
}

/// Plays `flotilla accept` and the hub's signer: answers every pending CSR of `cluster`
/// with `answer(n)`, and on the first certificate accepts the cluster and creates its
/// namespace. Returns how many CSRs it has answered.
pub fn answer_csrs(env: &Env, cluster: &str, answer: fn(usize) -> Answer) -> Arc<AtomicUsize> {
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    let admin = env.admin.clone();
    let ca = env.ca.clone();
    let cluster = cluster.to_string();
    tokio::spawn(async move {
        let csrs: Api<CertificateSigningRequest> = Api::all(admin.clone());
        let selector = format!("open-cluster-management.io/cluster-name={cluster}");
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Ok(list) = csrs.list(&ListParams::default().labels(&selector)).await else { continue };
            for csr in list.items {
                let status = csr.status.clone().unwrap_or_default();
                let answered_already = status.certificate.is_some()
                    || status.conditions.iter().flatten().any(|c| c.type_ == "Denied" || c.type_ == "Failed");
                if answered_already {
                    continue;
                }
                let name = csr.metadata.name.clone().unwrap();
                let n = count.fetch_add(1, Ordering::SeqCst);
                match answer(n) {
                    Answer::Sign(validity) => {
                        let request = String::from_utf8(csr.spec.request.0.clone()).unwrap();
                        let cert = ca.sign_csr(&request, validity).unwrap();
                        accept(&admin, &cluster).await;
                        let patch =
                            json!({"status": {"certificate": base64::engine::general_purpose::STANDARD.encode(cert)}});
                        csrs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
                    }
                    Answer::Deny => {
                        let patch = json!({"status": {"conditions": [{
                            "type": "Denied", "status": "True", "reason": "FlotillaDeny",
                            "message": "denied by the test", "lastUpdateTime": "2030-01-01T00:00:00Z",
                        }]}});
                        csrs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
                    }
                }
            }
        }
    });
    answered
}

/// Accepts `cluster` on the hub (`hubAcceptsClient`) and creates its namespace there.
pub async fn accept(admin: &kube::Client, cluster: &str) {
    let clusters: Api<DynamicObject> = Api::all_with(admin.clone(), &managed_clusters());
    let patch = json!({"spec": {"hubAcceptsClient": true}});
    clusters.patch(cluster, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": cluster}})).unwrap();
    match Api::<Namespace>::all(admin.clone()).create(&PostParams::default(), &namespace).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating namespace {cluster}: {e}"),
    }
}

/// Starts an agent for `cluster` and waits until it has joined (its identity is on disk and
/// its cluster namespace exists on the hub).
pub async fn joined_agent(env: &Env, opts: AgentOptions) -> RunningAgent {
    let cluster = opts.cluster_name.clone();
    let dir = opts.data_dir.clone();
    sign_and_accept(env, &cluster);
    let agent = RunningAgent::start(opts);
    eventually("the agent joins", || async {
        let joined = dir.join(flotilla_agent::datadir::HUB_KUBECONFIG).exists();
        let namespace = Api::<Namespace>::all(env.admin.clone()).get_opt(&cluster).await.ok().flatten();
        (joined && namespace.is_some()).then_some(())
    })
    .await;
    agent
}

/// Polls `check` until it returns `Some`, or fails with `what` after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A condition of a list (`status.conditions` or a manifest's `conditions`).
pub fn condition<'a>(conditions: &'a Value, type_: &str) -> Option<&'a Value> {
    conditions.as_array()?.iter().find(|c| c["type"] == type_)
}

/// Whether a condition has `status`.
pub fn has(conditions: &Value, type_: &str, status: &str) -> bool {
    condition(conditions, type_).is_some_and(|c| c["status"] == status)
}
