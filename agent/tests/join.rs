//! The agent's side of registration end to end, in one process over TLS on loopback: a real
//! hub (`flotilla_hub::start`), a simulated spoke, and the agent library. The test plays the
//! hub administrator and signer itself (it signs CSRs with the hub's CA and accepts the
//! cluster with the admin kubeconfig), so these tests do not depend on the hub's own
//! registration controllers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use flotilla_agent::AgentError;
use flotilla_agent::datadir::{AGENT_CRT, AGENT_JSON, AGENT_KEY, AgentRecord, HUB_CA, HUB_KUBECONFIG};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn claim<'a>(cluster: &'a Value, name: &str) -> Option<&'a str> {
    cluster.pointer("/status/clusterClaims")?.as_array()?.iter().find(|c| c["name"] == name)?["value"].as_str()
}

async fn create_cluster_claim(spoke: &kube::Client, name: &str, value: &str, spoke_only: bool) {
    let claims = resource("cluster.open-cluster-management.io", "v1alpha1", "ClusterClaim", "clusterclaims");
    let mut object = json!({
        "apiVersion": "cluster.open-cluster-management.io/v1alpha1",
        "kind": "ClusterClaim",
        "metadata": {"name": name},
        "spec": {"value": value},
    });
    if spoke_only {
        object["metadata"]["labels"] = json!({"open-cluster-management.io/spoke-only": ""});
    }
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    Api::<DynamicObject>::all_with(spoke.clone(), &claims).create(&PostParams::default(), &object).await.unwrap();
}

async fn lease_renew_time(admin: &kube::Client, cluster: &str) -> Option<(String, jiff::Timestamp)> {
    let lease = Api::<Lease>::namespaced(admin.clone(), cluster).get_opt("managed-cluster-lease").await.ok()??;
    let spec = lease.spec?;
    Some((spec.holder_identity?, spec.renew_time?.0))
}

fn record(dir: &Path) -> AgentRecord {
    serde_json::from_str(&std::fs::read_to_string(dir.join(AGENT_JSON)).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_reports_status_and_restarts_without_bootstrapping() {
    let env = Env::start().await;
    create_cluster_claim(&env.spoke_admin, "region.example.com", "eu-west-1", false).await;
    create_cluster_claim(&env.spoke_admin, "secret.example.com", "hidden", true).await;
    let answered = answer_csrs(&env, "c1", |_| Answer::Sign(Duration::from_secs(3600)));
    let agent = RunningAgent::start(env.options("c1"));

    // Joined: the identity is on disk, private where it must be.
    let dir = env.agent_dir("c1");
    eventually("hub.kubeconfig", || async { dir.join(HUB_KUBECONFIG).exists().then_some(()) }).await;
    for file in [AGENT_JSON, AGENT_KEY, AGENT_CRT, HUB_CA] {
        assert!(dir.join(file).exists(), "{file}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(dir.join(AGENT_KEY)).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let agent_id = record(&dir).agent_id;
    assert_eq!(agent_id.len(), 10);
    assert!(record(&dir).pending_csr.is_none());
    let cert = flotilla_pki::cert_info(&std::fs::read_to_string(dir.join(AGENT_CRT)).unwrap()).unwrap();
    assert_eq!(cert.common_name, format!("system:open-cluster-management:c1:{agent_id}"));
    assert_eq!(
        cert.organizations,
        ["system:open-cluster-management:c1", "system:open-cluster-management:managed-clusters"]
    );
    assert_eq!(std::fs::read_to_string(dir.join(HUB_CA)).unwrap().trim(), env.ca.cert_pem().trim());

    // The ManagedCluster the agent created points at its spoke.
    let created = env.cluster("c1").await.expect("the agent created ManagedCluster c1");
    let spoke_url = flotilla_pki::Kubeconfig::load(&env.spoke_kubeconfig).unwrap().server().unwrap();
    assert_eq!(created["spec"]["managedClusterClientConfigs"][0]["url"], spoke_url.trim_end_matches('/'));
    assert!(created["spec"]["managedClusterClientConfigs"][0]["caBundle"].is_string());
    assert_eq!(created["spec"]["leaseDurationSeconds"], 1);

    // Status: conditions, version, capacity summed over the three simulated nodes, claims.
    let kube_system_uid =
        Api::<Namespace>::all(env.spoke_admin.clone()).get("kube-system").await.unwrap().metadata.uid.unwrap();
    let status = eventually("the agent's status report", || async {
        let c = env.cluster("c1").await?;
        let ready = has(&c["status"]["conditions"], "ManagedClusterJoined", "True")
            && has(&c["status"]["conditions"], "ManagedClusterConditionAvailable", "True")
            && claim(&c, "id.k8s.io").is_some();
        ready.then_some(c)
    })
    .await;
    assert_eq!(
        condition(&status["status"]["conditions"], "ManagedClusterJoined").unwrap()["reason"],
        "ManagedClusterJoined"
    );
    assert_eq!(
        condition(&status["status"]["conditions"], "ManagedClusterConditionAvailable").unwrap()["reason"],
        "ManagedClusterAvailable"
    );
    let version = env.spoke_admin.apiserver_version().await.unwrap().git_version;
    assert_eq!(status["status"]["version"]["kubernetes"], version.as_str());
    assert_eq!(status["status"]["capacity"]["cpu"], "12");
    assert_eq!(status["status"]["capacity"]["memory"], "48Gi");
    assert_eq!(status["status"]["capacity"]["pods"], "330");
    assert_eq!(status["status"]["allocatable"]["cpu"], "11400m");
    assert_eq!(status["status"]["allocatable"]["memory"], "45Gi");
    assert_eq!(status["status"]["allocatable"]["ephemeral-storage"], "285Gi");
    assert_eq!(claim(&status, "id.k8s.io"), Some(kube_system_uid.as_str()));
    assert_eq!(claim(&status, "kubeversion.open-cluster-management.io"), Some(version.as_str()));
    assert_eq!(claim(&status, "platform.open-cluster-management.io"), Some("Simulated"));
    assert_eq!(claim(&status, "product.open-cluster-management.io"), Some("Flotilla"));
    assert_eq!(claim(&status, "region.example.com"), Some("eu-west-1"));
    assert_eq!(claim(&status, "secret.example.com"), None, "spoke-only claims stay on the spoke");

    // The lease is held and renewed by this agent.
    let (holder, first) = eventually("the lease", || lease_renew_time(&env.admin, "c1")).await;
    assert_eq!(holder, agent_id);
    eventually("a lease renewal", || async {
        let (_, t) = lease_renew_time(&env.admin, "c1").await?;
        (t > first).then_some(())
    })
    .await;

    // hub.kubeconfig works as the agent: its own cluster yes, other objects no.
    let as_agent = client_for(&dir.join(HUB_KUBECONFIG)).await;
    let own = Api::<DynamicObject>::all_with(as_agent.clone(), &managed_clusters()).get("c1").await;
    assert!(own.is_ok(), "{own:?}");

    // Someone else's condition survives the agent's later writes.
    let foreign = json!({"status": {"conditions": status["status"]["conditions"].as_array().unwrap().iter().cloned()
        .chain([json!({"type": "ExampleCondition", "status": "True", "reason": "Test", "message": "kept",
            "lastTransitionTime": "2030-01-01T00:00:00Z"})]).collect::<Vec<_>>()}});
    env.clusters().patch_status("c1", &PatchParams::default(), &Patch::Merge(&foreign)).await.unwrap();
    create_cluster_claim(&env.spoke_admin, "zone.example.com", "b", false).await;
    let later = eventually("the new claim", || async {
        let c = env.cluster("c1").await?;
        claim(&c, "zone.example.com").is_some().then_some(c)
    })
    .await;
    assert_eq!(condition(&later["status"]["conditions"], "ExampleCondition").unwrap()["message"], "kept");
    assert_eq!(condition(&later["status"]["conditions"], "ManagedClusterJoined").unwrap()["status"], "True");

    agent.stop().await.expect("a clean stop");
    assert_eq!(answered.load(Ordering::SeqCst), 1);

    // Restart: no token and no hash needed, no new CSR, same agent, lease renewed again.
    let mut opts = env.options("c1");
    opts.token = None;
    opts.hub_ca_hash = None;
    let (_, before) = lease_renew_time(&env.admin, "c1").await.unwrap();
    let agent = RunningAgent::start(opts);
    eventually("a lease renewal after the restart", || async {
        let (holder, t) = lease_renew_time(&env.admin, "c1").await?;
        (t > before && holder == agent_id).then_some(())
    })
    .await;
    agent.stop().await.expect("a clean stop");
    let csrs: Api<CertificateSigningRequest> = Api::all(env.admin.clone());
    let all = csrs.list(&ListParams::default().labels("open-cluster-management.io/cluster-name=c1")).await.unwrap();
    assert_eq!(all.items.len(), 1, "a restart does not bootstrap again");
    assert_eq!(record(&dir).agent_id, agent_id);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_a_short_lived_certificate_without_stopping() {
    let env = Env::start().await;
    // The first certificate has so little life left (the CA backdates by 5 minutes) that
    // renewal is due at once; renewals are long-lived.
    let answered = answer_csrs(&env, "c2", |n| {
        Answer::Sign(if n == 0 { Duration::from_secs(5) } else { Duration::from_secs(3600) })
    });
    let agent = RunningAgent::start(env.options("c2"));
    let dir = env.agent_dir("c2");
    let csrs: Api<CertificateSigningRequest> = Api::all(env.admin.clone());
    let selector = ListParams::default().labels("open-cluster-management.io/cluster-name=c2");

    // Renewal may be over before the first certificate is even seen on disk, so the test
    // waits for its outcome: a long-lived certificate for the same identity, requested by
    // the agent itself (the hub stamps the requester) in a second CSR.
    let renewed = eventually("a renewed certificate", || async {
        let pem = std::fs::read_to_string(dir.join(AGENT_CRT)).ok()?;
        let info = flotilla_pki::cert_info(&pem).ok()?;
        (info.not_after > jiff::Timestamp::now() + jiff::SignedDuration::from_secs(600)).then_some(info)
    })
    .await;
    let agent_id = record(&dir).agent_id;
    assert_eq!(renewed.common_name, format!("system:open-cluster-management:c2:{agent_id}"));
    let all = csrs.list(&selector).await.unwrap().items;
    assert!(all.len() >= 2, "a bootstrap CSR and at least one renewal: {}", all.len());
    let renewal_requesters: Vec<String> = all.iter().filter_map(|c| c.spec.username.clone()).collect();
    assert!(renewal_requesters.contains(&renewed.common_name), "the agent renews as itself: {renewal_requesters:?}");
    assert!(answered.load(Ordering::SeqCst) >= 1);
    // hub.kubeconfig, the source of truth, carries the new certificate.
    let kubeconfig = flotilla_pki::Kubeconfig::load(dir.join(HUB_KUBECONFIG)).unwrap();
    assert_eq!(flotilla_pki::cert_info(&kubeconfig.client_cert_pem().unwrap()).unwrap().serial_hex, renewed.serial_hex);

    // The running loops use the new client: once the first certificate has expired (5 s
    // after it was signed), the hub refuses it, yet the lease keeps being renewed.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (_, after_expiry) = eventually("the lease", || lease_renew_time(&env.admin, "c2")).await;
    eventually("a lease renewal after the first certificate expired", || async {
        let (_, t) = lease_renew_time(&env.admin, "c2").await?;
        (t > after_expiry).then_some(())
    })
    .await;
    assert!(!agent.task.is_finished(), "the agent kept running through the rotation");
    // And it stays on the renewed certificate (no rotation storm).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pem = std::fs::read_to_string(dir.join(AGENT_CRT)).unwrap();
    assert_eq!(flotilla_pki::cert_info(&pem).unwrap().serial_hex, renewed.serial_hex);
    assert_eq!(csrs.list(&selector).await.unwrap().items.len(), all.len(), "no renewal storm");
    agent.stop().await.expect("a clean stop");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_join_ends_with_an_error() {
    let env = Env::start().await;
    answer_csrs(&env, "c3", |_| Answer::Deny);
    let err = RunningAgent::start(env.options("c3")).finished().await.expect_err("a denied cluster cannot join");
    assert!(matches!(err, AgentError::Denied { .. }), "{err:?}");
    assert!(err.to_string().contains("denied"), "{err}");
    assert!(!env.agent_dir("c3").join(HUB_KUBECONFIG).exists());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_and_hashes_are_refused() {
    let env = Env::start().await;

    let mut opts = env.options("c4");
    opts.token = Some(format!("{TOKEN_ID}.ffffffffffffffff"));
    let err = RunningAgent::start(opts).finished().await.expect_err("a wrong token is refused");
    assert!(matches!(err, AgentError::BootstrapRefused { code: 401, .. }), "{err:?}");
    assert!(env.cluster("c4").await.is_none(), "a refused token creates nothing");

    let mut opts = env.options("c5");
    opts.hub_ca_hash = Some(format!("sha256:{}", "00".repeat(32)));
    let err = RunningAgent::start(opts).finished().await.expect_err("a wrong CA hash is refused");
    assert!(matches!(err, AgentError::CaHashMismatch { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("hub CA hash mismatch: expected sha256:{}", "00".repeat(32))));
    assert!(err.to_string().contains(&env.ca.ca_hash()), "the hub presents its CA: {err}");
    assert!(!env.agent_dir("c5").join(HUB_CA).exists());

    let mut opts = env.options("c6");
    opts.hub_ca_hash = None;
    let err = RunningAgent::start(opts).finished().await.expect_err("no pin, no trust");
    assert!(matches!(err, AgentError::NoCaPin(_)), "{err:?}");
    env.stop().await;
}
