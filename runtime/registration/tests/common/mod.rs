//! A real hub in-process (flotilla_hub::start on 127.0.0.1:0 in a temporary directory) and
//! kube-rs clients for its admin, bootstrap tokens and agent certificates, over TLS.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flotilla_apiserver::host::RunningServer;
use flotilla_pki::{CertificateAuthority, Kubeconfig};
use flotilla_registration::identity::AgentIdentity;
use flotilla_registration::token::{self, Token};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestSpec};
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

pub const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Hub {
    pub dir: tempfile::TempDir,
    pub server: Option<RunningServer>,
    pub url: String,
    pub ca_pem: String,
    pub admin: kube::Client,
}

impl Hub {
    pub async fn start() -> Hub {
        Hub::start_with(|_| {}).await
    }

    /// A hub whose hub.json is changed by `configure` before it starts.
    pub async fn start_with(configure: impl FnOnce(&mut flotilla_hub::HubConfig)) -> Hub {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("hub");
        let loopback = "127.0.0.1:0".parse().expect("addr");
        let mut config = flotilla_hub::HubConfig::new(loopback);
        configure(&mut config);
        flotilla_hub::init(&data, &config).expect("hub init");
        let server = flotilla_hub::start(&data, Some(loopback)).await.expect("hub start");
        let url = server.url.clone();
        let ca_pem = std::fs::read_to_string(data.join("pki/ca.crt")).expect("CA");
        let admin = client_for_file(&flotilla_hub::admin_kubeconfig_path(&data)).await;
        Hub { dir, server: Some(server), url, ca_pem, admin }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("hub")
    }

    /// The hub CA with its key, as the hub loads it.
    pub fn ca(&self) -> CertificateAuthority {
        flotilla_apiserver::host::Layout::new(self.data_dir()).load_ca().expect("CA")
    }

    /// Stops the hub and starts it again on the same data directory (on a new port: the
    /// URL and the admin client change; clients made before must be made again).
    pub async fn restart_after(&mut self, downtime: Duration) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        tokio::time::sleep(downtime).await;
        let loopback = "127.0.0.1:0".parse().expect("addr");
        let server = flotilla_hub::start(&self.data_dir(), Some(loopback)).await.expect("hub restart");
        self.url = server.url.clone();
        self.admin = client_for_file(&flotilla_hub::admin_kubeconfig_path(&self.data_dir())).await;
        self.server = Some(server);
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Creates a BootstrapToken as the admin and returns the token.
    pub async fn create_token(&self, token: &Token, expiration: Option<jiff::Timestamp>) {
        let obj: DynamicObject =
            serde_json::from_value(token::object(token, expiration, "test")).expect("token object");
        Api::<DynamicObject>::all_with(self.admin.clone(), &bootstrap_tokens())
            .create(&PostParams::default(), &obj)
            .await
            .expect("create token");
    }

    pub async fn token_client(&self, token: &str) -> kube::Client {
        let kc = Kubeconfig::for_token("hub", &self.url, &self.ca_pem, token, "bootstrap");
        client_for(&kc).await
    }

    /// A client with a certificate the hub CA issues directly for `identity`.
    pub async fn agent_client(&self, identity: &AgentIdentity) -> kube::Client {
        let issued = self
            .ca()
            .issue_client_cert(&identity.user_name(), &identity.groups(), Duration::from_secs(3600))
            .expect("cert");
        self.cert_client(&issued.cert_pem, &issued.key_pem).await
    }

    pub async fn cert_client(&self, cert_pem: &str, key_pem: &str) -> kube::Client {
        let kc = Kubeconfig::for_client_cert("hub", &self.url, &self.ca_pem, cert_pem, key_pem, "agent");
        client_for(&kc).await
    }

    pub fn clusters(&self) -> Api<DynamicObject> {
        Api::all_with(self.admin.clone(), &managed_clusters())
    }

    pub fn csrs(&self) -> Api<CertificateSigningRequest> {
        Api::all(self.admin.clone())
    }

    /// Creates a ManagedCluster as the admin.
    pub async fn create_cluster(&self, name: &str, accept: bool, lease_seconds: Option<u32>) {
        let mut spec = json!({"hubAcceptsClient": accept});
        if let Some(s) = lease_seconds {
            spec["leaseDurationSeconds"] = json!(s);
        }
        let obj = cluster_object(name, spec);
        self.clusters().create(&PostParams::default(), &obj).await.expect("create cluster");
    }

    pub async fn set_accepts(&self, name: &str, accept: bool) {
        let patch = json!({"spec": {"hubAcceptsClient": accept}});
        self.clusters().patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch cluster");
    }

    /// Approves or denies a CSR as the admin, as `flotilla accept|deny` does.
    pub async fn decide_csr(&self, name: &str, type_: &str) {
        let api = self.csrs();
        let mut csr = api.get(name).await.expect("get csr");
        let status = csr.status.get_or_insert_with(Default::default);
        status.conditions.get_or_insert_with(Vec::new).push(
            serde_json::from_value(
                json!({"type": type_, "status": "True", "reason": "Test", "message": "by the test"}),
            )
            .expect("condition"),
        );
        api.replace_status(name, &PostParams::default(), &csr).await.expect("approve");
    }
}

pub fn managed_clusters() -> ApiResource {
    api_resource("cluster.open-cluster-management.io", "v1", "ManagedCluster", "managedclusters")
}

pub fn cluster_sets() -> ApiResource {
    api_resource("cluster.open-cluster-management.io", "v1beta2", "ManagedClusterSet", "managedclustersets")
}

pub fn bindings() -> ApiResource {
    api_resource(
        "cluster.open-cluster-management.io",
        "v1beta2",
        "ManagedClusterSetBinding",
        "managedclustersetbindings",
    )
}

pub fn bootstrap_tokens() -> ApiResource {
    api_resource("flotilla.dev", "v1alpha1", "BootstrapToken", "bootstraptokens")
}

pub fn manifest_works() -> ApiResource {
    api_resource("work.open-cluster-management.io", "v1", "ManifestWork", "manifestworks")
}

fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub fn cluster_object(name: &str, spec: Value) -> DynamicObject {
    let mut obj = DynamicObject::new(name, &managed_clusters());
    obj.data = json!({"spec": spec});
    obj
}

pub async fn client_for(kc: &Kubeconfig) -> kube::Client {
    let yaml = kc.to_yaml().expect("kubeconfig yaml");
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kube config");
    kube::Client::try_from(config).expect("kube client")
}

pub async fn client_for_file(path: &std::path::Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(path).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kube config");
    kube::Client::try_from(config).expect("kube client")
}

/// An agent's CSR object for `identity` (key generated here, as the agent would), sent as
/// `requester_claim` in spec.username (which the hub must overwrite).
pub fn agent_csr(identity: &AgentIdentity, label_cluster: &str) -> (String, CertificateSigningRequest) {
    csr_with_subject(&identity.user_name(), &identity.groups(), label_cluster)
}

pub fn csr_with_subject(cn: &str, orgs: &[String], label_cluster: &str) -> (String, CertificateSigningRequest) {
    let (key_pem, csr_pem) = flotilla_pki::generate_key_and_csr(cn, orgs).expect("csr");
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some(format!("{label_cluster}-")),
            labels: Some([("open-cluster-management.io/cluster-name".to_string(), label_cluster.to_string())].into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(csr_pem.into_bytes()),
            signer_name: "kubernetes.io/kube-apiserver-client".into(),
            usages: Some(vec!["digital signature".into(), "key encipherment".into(), "client auth".into()]),
            username: Some("system:open-cluster-management:victim:forged".into()),
            ..Default::default()
        },
        status: None,
    };
    (key_pem, csr)
}

pub fn identity(cluster: &str, agent_id: &str) -> AgentIdentity {
    AgentIdentity { cluster: cluster.into(), agent_id: agent_id.into() }
}

/// Polls `check` until it returns Some, for at most [`TIMEOUT`]; panics with `what` after.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The HTTP status of a failed call (`None` if it succeeded or failed without one).
pub fn status_code<T>(result: &Result<T, kube::Error>) -> Option<u16> {
    match result {
        Err(kube::Error::Api(status)) => Some(status.code),
        _ => None,
    }
}

pub fn message<T>(result: &Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => status.message.clone(),
        Err(other) => other.to_string(),
        Ok(_) => "<succeeded>".to_string(),
    }
}

/// The status of a condition type in an object's status.conditions.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == type_)
}

pub fn to_value<T: serde::Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).expect("serialize")
}
