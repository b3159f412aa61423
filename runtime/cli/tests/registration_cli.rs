//! `flotilla token create|list|revoke`, `flotilla accept` and `flotilla deny` as a process
//! against a hub running in this test, over TLS on loopback.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestSpec};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, ObjectMeta, PostParams};
use serde_json::{Value, json};

fn flotilla(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("run flotilla")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn clusters() -> ApiResource {
    ApiResource {
        group: "cluster.open-cluster-management.io".into(),
        version: "v1".into(),
        api_version: "cluster.open-cluster-management.io/v1".into(),
        kind: "ManagedCluster".into(),
        plural: "managedclusters".into(),
    }
}

async fn client(kubeconfig: &flotilla_pki::Kubeconfig) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig.to_yaml().expect("yaml")).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
    kube::Client::try_from(config).expect("client")
}

/// Registers `cluster` with the token as an agent would; returns the CSR's name.
async fn register(boot: &kube::Client, cluster: &str) -> String {
    let mut mc = DynamicObject::new(cluster, &clusters());
    mc.data = json!({"spec": {"hubAcceptsClient": false}});
    Api::<DynamicObject>::all_with(boot.clone(), &clusters())
        .create(&PostParams::default(), &mc)
        .await
        .expect("cluster");
    let orgs = vec![format!("system:open-cluster-management:{cluster}")];
    let (_key, pem) =
        flotilla_pki::generate_key_and_csr(&format!("system:open-cluster-management:{cluster}:agent00001"), &orgs)
            .expect("csr");
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some(format!("{cluster}-")),
            labels: Some([("open-cluster-management.io/cluster-name".to_string(), cluster.to_string())].into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(pem.into_bytes()),
            signer_name: "kubernetes.io/kube-apiserver-client".into(),
            usages: Some(vec!["digital signature".into(), "key encipherment".into(), "client auth".into()]),
            ..Default::default()
        },
        status: None,
    };
    let created = Api::<CertificateSigningRequest>::all(boot.clone())
        .create(&PostParams::default(), &csr)
        .await
        .expect("create csr");
    created.metadata.name.expect("name")
}

async fn eventually<T, Fut: std::future::Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> Fut) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition(obj: &Value, type_: &str) -> Option<Value> {
    obj.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == type_).cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_accept_and_deny_from_the_cli() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let data: PathBuf = dir.path().join("hub");
    let loopback = "127.0.0.1:0".parse().expect("addr");
    flotilla_hub::init(&data, &flotilla_hub::HubConfig::new(loopback)).expect("init");
    let hub = flotilla_hub::start(&data, Some(loopback)).await.expect("start");
    let admin_path = flotilla_hub::admin_kubeconfig_path(&data);
    let admin = flotilla_pki::Kubeconfig::load(&admin_path).expect("admin kubeconfig");
    let ca_pem = admin.ca_pem().expect("CA");
    let admin_client = client(&admin).await;

    // token create prints the token and the whole join command.
    let out = flotilla(&admin_path, &["token", "create", "--ttl", "1h", "--description", "for c1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let token = printed
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no token in {printed}"));
    let hash = flotilla_pki::ca_hash_of_pem(&ca_pem).expect("hash");
    let join =
        format!("flotilla agent join --hub {} --token {token} --hub-ca-hash {hash} --cluster-name <name>", hub.url);
    assert!(printed.contains(&join), "{printed}\nexpected: {join}");
    let id = token.split('.').next().expect("id").to_string();

    let out = flotilla(&admin_path, &["token", "list"]);
    let listed = text(&out.stdout);
    assert!(listed.starts_with("ID") && listed.contains(&id) && listed.contains("for c1"), "{listed}");
    assert!(listed.contains("registration"), "{listed}");
    assert!(!listed.contains(&token), "secrets are never listed");
    let out = flotilla(&admin_path, &["token", "create", "--ttl", "soon"]);
    assert!(!out.status.success() && text(&out.stderr).contains("--ttl"), "{}", text(&out.stderr));

    let boot = client(&flotilla_pki::Kubeconfig::for_token("hub", &hub.url, &ca_pem, &token, "boot")).await;
    let c1_csr = register(&boot, "c1").await;
    let c2_csr = register(&boot, "c2").await;

    // accept: the CSR is approved and signed, the cluster accepted, its namespace created.
    let out = flotilla(&admin_path, &["accept", "c1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("managed cluster \"c1\" accepted, approved 1 certificate request"),
        "{}",
        text(&out.stdout)
    );
    let csrs: Api<CertificateSigningRequest> = Api::all(admin_client.clone());
    eventually("c1's certificate", || async { csrs.get(&c1_csr).await.ok()?.status?.certificate.map(|_| ()) }).await;
    let approved = serde_json::to_value(csrs.get(&c1_csr).await.expect("csr")).expect("json");
    assert_eq!(condition(&approved, "Approved").expect("approved")["reason"], "FlotillaAccept");
    eventually("namespace c1", || async {
        Api::<Namespace>::all(admin_client.clone()).get_opt("c1").await.ok().flatten()
    })
    .await;

    // deny: the CSR is denied and the cluster reported denied.
    let out = flotilla(&admin_path, &["deny", "c2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("managed cluster \"c2\" denied, denied 1 certificate request"),
        "{}",
        text(&out.stdout)
    );
    let denied = serde_json::to_value(csrs.get(&c2_csr).await.expect("csr")).expect("json");
    assert_eq!(condition(&denied, "Denied").expect("denied")["reason"], "FlotillaDeny");
    let mcs: Api<DynamicObject> = Api::all_with(admin_client.clone(), &clusters());
    eventually("c2 denied", || async {
        let mc = serde_json::to_value(mcs.get("c2").await.ok()?).ok()?;
        condition(&mc, "HubDeniedManagedCluster").filter(|c| c["status"] == "True")
    })
    .await;

    let out = flotilla(&admin_path, &["accept", "nosuchcluster"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not found"), "{}", text(&out.stderr));

    // revoke: the token stops working at once.
    let out = flotilla(&admin_path, &["token", "revoke", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer = Api::<CertificateSigningRequest>::all(boot.clone()).list(&ListParams::default()).await;
    assert!(matches!(answer, Err(kube::Error::Api(ref s)) if s.code == 401), "{answer:?}");
    let out = flotilla(&admin_path, &["token", "revoke", &id]);
    assert!(!out.status.success() && text(&out.stderr).contains("not found"));
    hub.shutdown().await;
}
