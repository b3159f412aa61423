//! Registration against a real hub over TLS on loopback: bootstrap tokens, what each
//! identity may do, acceptance and signing, denial, auto-accept, revocation, lease health
//! and cluster sets.

mod common;

use std::time::Duration;

use common::*;
use flotilla_registration::token::Token;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const CLUSTER_SET_LABEL: &str = "cluster.open-cluster-management.io/clusterset";
const UNREACHABLE: &str = "cluster.open-cluster-management.io/unreachable";
const UNAVAILABLE: &str = "cluster.open-cluster-management.io/unavailable";

fn ts_in(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(seconds)).expect("timestamp")
}

/// Waits until the CSR has a certificate, and returns it (PEM).
async fn issued_certificate(hub: &Hub, name: &str) -> String {
    eventually(&format!("certificate of {name}"), || async {
        let csr = hub.csrs().get(name).await.ok()?;
        let cert = csr.status?.certificate?;
        String::from_utf8(cert.0).ok()
    })
    .await
}

async fn create_csr(
    client: &kube::Client,
    csr: &CertificateSigningRequest,
) -> Result<CertificateSigningRequest, kube::Error> {
    Api::<CertificateSigningRequest>::all(client.clone()).create(&PostParams::default(), csr).await
}

fn taint_keys(mc: &Value) -> Vec<String> {
    mc.pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t["key"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_tokens_authenticate_until_expired_revoked_or_wrong() {
    let hub = Hub::start().await;
    let valid = Token::generate().expect("token");
    hub.create_token(&valid, Some(ts_in(3600))).await;
    let expired = Token::generate().expect("token");
    hub.create_token(&expired, Some(ts_in(-60))).await;
    let revoked = Token::generate().expect("token");
    hub.create_token(&revoked, None).await;
    Api::<DynamicObject>::all_with(hub.admin.clone(), &bootstrap_tokens())
        .delete(&revoked.id, &DeleteParams::default())
        .await
        .expect("revoke");

    let list = |client: kube::Client| async move {
        Api::<CertificateSigningRequest>::all(client).list(&ListParams::default()).await
    };
    list(hub.token_client(&valid.expose()).await).await.expect("a valid token lists CSRs");

    let answer = list(hub.token_client(&expired.expose()).await).await;
    assert_eq!(status_code(&answer), Some(401), "{}", message(&answer));
    assert!(
        message(&answer).contains(&format!("bootstrap token \"{}\" has expired", expired.id)),
        "{}",
        message(&answer)
    );

    let answer = list(hub.token_client(&revoked.expose()).await).await;
    assert_eq!(status_code(&answer), Some(401));
    assert!(message(&answer).contains("has been revoked"), "{}", message(&answer));

    let wrong = format!("{}.{}", valid.id, "0000000000000000");
    let answer = list(hub.token_client(&wrong).await).await;
    assert_eq!(status_code(&answer), Some(401));
    assert!(message(&answer).contains("secret does not match"), "{}", message(&answer));

    let answer = list(hub.token_client("not-a-bootstrap-token").await).await;
    assert_eq!(status_code(&answer), Some(401));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bootstrap_token_registers_and_does_nothing_else() {
    let hub = Hub::start().await;
    let token = Token::generate().expect("token");
    hub.create_token(&token, Some(ts_in(3600))).await;
    let boot = hub.token_client(&token.expose()).await;
    let clusters: Api<DynamicObject> = Api::all_with(boot.clone(), &managed_clusters());

    let self_accepted =
        clusters.create(&PostParams::default(), &cluster_object("c1", json!({"hubAcceptsClient": true}))).await;
    assert_eq!(status_code(&self_accepted), Some(403), "{}", message(&self_accepted));
    clusters
        .create(&PostParams::default(), &cluster_object("c1", json!({"hubAcceptsClient": false})))
        .await
        .expect("a bootstrap token creates its ManagedCluster");
    let got = clusters.get("c1").await.expect("and gets it");
    assert_eq!(
        got.metadata.labels.as_ref().and_then(|l| l.get(CLUSTER_SET_LABEL)).map(String::as_str),
        Some("default")
    );

    let (_key, csr) = agent_csr(&identity("c1", "agent00001"), "c1");
    let created = create_csr(&boot, &csr).await.expect("a bootstrap token creates a CSR");
    assert_eq!(
        created.spec.username.as_deref(),
        Some(format!("system:bootstrap:{}", token.id).as_str()),
        "the hub records who asked, whatever the body claimed"
    );
    let name = created.metadata.name.clone().expect("name");

    // Everything else is refused.
    let patch = json!({"spec": {"hubAcceptsClient": true}});
    let answer = clusters.patch("c1", &PatchParams::default(), &Patch::Merge(&patch)).await;
    assert_eq!(status_code(&answer), Some(403), "{}", message(&answer));
    assert!(message(&answer).contains("bootstrap token may only"), "{}", message(&answer));
    let answer = clusters.list(&ListParams::default()).await;
    assert_eq!(status_code(&answer), Some(403));
    let answer = Api::<Namespace>::all(boot.clone()).list(&ListParams::default()).await;
    assert_eq!(status_code(&answer), Some(403));
    let answer = Api::<DynamicObject>::all_with(boot.clone(), &bootstrap_tokens()).list(&ListParams::default()).await;
    assert_eq!(status_code(&answer), Some(403));
    let csrs: Api<CertificateSigningRequest> = Api::all(boot.clone());
    let mut approve = created.clone();
    approve.status = Some(
        serde_json::from_value(
            json!({"conditions": [{"type": "Approved", "status": "True", "reason": "Self", "message": ""}]}),
        )
        .expect("status"),
    );
    let answer = csrs.replace_status(&name, &PostParams::default(), &approve).await;
    assert_eq!(status_code(&answer), Some(403), "a bootstrap token cannot approve its own CSR");
    let answer = csrs.delete(&name, &DeleteParams::default()).await;
    assert_eq!(status_code(&answer), Some(403));
    let answer = Api::<Lease>::namespaced(boot.clone(), "default").list(&ListParams::default()).await;
    assert_eq!(status_code(&answer), Some(403));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn accepting_approves_signs_and_creates_the_namespace() {
    let hub = Hub::start().await;
    let token = Token::generate().expect("token");
    hub.create_token(&token, Some(ts_in(3600))).await;
    let boot = hub.token_client(&token.expose()).await;
    Api::<DynamicObject>::all_with(boot.clone(), &managed_clusters())
        .create(&PostParams::default(), &cluster_object("c1", json!({})))
        .await
        .expect("register");
    let id = identity("c1", "agent00001");
    let (key_pem, csr) = agent_csr(&id, "c1");
    let name = create_csr(&boot, &csr).await.expect("csr").metadata.name.expect("name");

    // Pending until the admin accepts: no certificate, no namespace.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hub.csrs().get(&name).await.expect("csr").status.and_then(|s| s.certificate).is_none());
    assert!(Api::<Namespace>::all(hub.admin.clone()).get_opt("c1").await.expect("get ns").is_none());

    hub.decide_csr(&name, "Approved").await;
    hub.set_accepts("c1", true).await;
    let cert_pem = issued_certificate(&hub, &name).await;
    let info = flotilla_pki::cert_info(&cert_pem).expect("certificate");
    assert_eq!(info.common_name, id.user_name());
    assert_eq!(info.organizations, id.groups());
    assert_eq!(info.issuer_common_name, "flotilla-ca");
    eventually("namespace c1", || async {
        Api::<Namespace>::all(hub.admin.clone()).get_opt("c1").await.ok().flatten()
    })
    .await;
    let mc = eventually("HubAcceptedManagedCluster", || async {
        let mc = to_value(&hub.clusters().get("c1").await.ok()?);
        (condition(&mc, "HubAcceptedManagedCluster")?["status"] == "True").then_some(mc)
    })
    .await;
    assert_eq!(condition(&mc, "HubAcceptedManagedCluster").expect("accepted")["reason"], "HubClusterAdminAccepted");

    // The signed certificate chains to the hub CA: the hub's TLS verifier accepts it.
    let agent = hub.cert_client(&cert_pem, &key_pem).await;
    let own = Api::<DynamicObject>::all_with(agent.clone(), &managed_clusters()).get("c1").await;
    assert!(own.is_ok(), "{}", message(&own));
    Api::<DynamicObject>::namespaced_with(agent.clone(), "c1", &manifest_works())
        .list(&ListParams::default())
        .await
        .expect("the agent lists its works");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn denying_refuses_the_certificate_and_says_so() {
    let hub = Hub::start().await;
    let token = Token::generate().expect("token");
    hub.create_token(&token, None).await;
    let boot = hub.token_client(&token.expose()).await;
    Api::<DynamicObject>::all_with(boot.clone(), &managed_clusters())
        .create(&PostParams::default(), &cluster_object("c1", json!({})))
        .await
        .expect("register");
    let (_key, csr) = agent_csr(&identity("c1", "agent00001"), "c1");
    let name = create_csr(&boot, &csr).await.expect("csr").metadata.name.expect("name");
    hub.decide_csr(&name, "Denied").await;
    hub.set_accepts("c1", false).await;
    let mc = eventually("denied conditions", || async {
        let mc = to_value(&hub.clusters().get("c1").await.ok()?);
        (condition(&mc, "HubDeniedManagedCluster")?["status"] == "True").then_some(mc)
    })
    .await;
    let accepted = condition(&mc, "HubAcceptedManagedCluster").expect("accepted condition");
    assert_eq!(
        (accepted["status"].as_str(), accepted["reason"].as_str()),
        (Some("False"), Some("HubClusterAdminDenied"))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hub.csrs().get(&name).await.expect("csr").status.and_then(|s| s.certificate).is_none());
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_accept_by_cluster_pattern_and_by_token_identity() {
    let trusted = Token::parse("auto01.0123456789abcdef").expect("token");
    let hub =
        Hub::start_with(|c| c.auto_accept = vec!["edge-*".into(), format!("system:bootstrap:{}", trusted.id)]).await;
    hub.create_token(&trusted, None).await;
    let other = Token::generate().expect("token");
    hub.create_token(&other, None).await;
    let trusted_client = hub.token_client(&trusted.expose()).await;
    let other_client = hub.token_client(&other.expose()).await;

    let register = |client: kube::Client, cluster: &'static str| async move {
        Api::<DynamicObject>::all_with(client.clone(), &managed_clusters())
            .create(&PostParams::default(), &cluster_object(cluster, json!({})))
            .await
            .expect("register");
        let (_key, csr) = agent_csr(&identity(cluster, "agent00001"), cluster);
        create_csr(&client, &csr).await.expect("csr").metadata.name.expect("name")
    };
    let by_pattern = register(other_client.clone(), "edge-1").await;
    let by_identity = register(trusted_client.clone(), "core-1").await;
    let manual = register(other_client.clone(), "core-2").await;

    issued_certificate(&hub, &by_pattern).await;
    issued_certificate(&hub, &by_identity).await;
    for cluster in ["edge-1", "core-1"] {
        eventually(&format!("{cluster} accepted"), || async {
            let mc = to_value(&hub.clusters().get(cluster).await.ok()?);
            (mc["spec"]["hubAcceptsClient"] == true && condition(&mc, "HubAcceptedManagedCluster").is_some())
                .then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pending = hub.csrs().get(&manual).await.expect("csr");
    assert!(pending.status.and_then(|s| s.conditions).is_none_or(|c| c.is_empty()), "core-2 waits for the admin");
    let core2 = to_value(&hub.clusters().get("core-2").await.expect("core-2"));
    assert_ne!(core2["spec"]["hubAcceptsClient"], true);

    // Once a cluster joined, another bootstrap for it is not auto-approved: no takeover.
    let (_key, csr) = agent_csr(&identity("edge-1", "intruder01"), "edge-1");
    let second = create_csr(&other_client, &csr).await.expect("csr").metadata.name.expect("name");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let second = hub.csrs().get(&second).await.expect("csr");
    let conditions = second.status.and_then(|s| s.conditions);
    assert!(conditions.as_ref().is_none_or(|c| c.is_empty()), "needs flotilla accept: {conditions:?}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_reach_only_their_cluster_and_renew_their_own_certificate() {
    let hub = Hub::start().await;
    hub.create_cluster("c1", true, None).await;
    hub.create_cluster("c2", true, None).await;
    for ns in ["c1", "c2"] {
        eventually(&format!("namespace {ns}"), || async {
            Api::<Namespace>::all(hub.admin.clone()).get_opt(ns).await.ok().flatten()
        })
        .await;
    }
    let id = identity("c1", "agent00001");
    let agent = hub.agent_client(&id).await;
    let clusters: Api<DynamicObject> = Api::all_with(agent.clone(), &managed_clusters());
    clusters.get("c1").await.expect("own cluster");
    let status = json!({"status": {"version": {"kubernetes": "v1.34.0"}}});
    clusters.patch_status("c1", &PatchParams::default(), &Patch::Merge(&status)).await.expect("own status");

    let answer = clusters.get("c2").await;
    assert_eq!(status_code(&answer), Some(403), "{}", message(&answer));
    assert!(message(&answer).contains("may only reach its own cluster"), "{}", message(&answer));
    let answer = clusters.patch_status("c2", &PatchParams::default(), &Patch::Merge(&status)).await;
    assert_eq!(status_code(&answer), Some(403));
    let answer = Api::<DynamicObject>::namespaced_with(agent.clone(), "c2", &manifest_works())
        .list(&ListParams::default())
        .await;
    assert_eq!(status_code(&answer), Some(403));
    let answer = Api::<Lease>::namespaced(agent.clone(), "c2").get("managed-cluster-lease").await;
    assert_eq!(status_code(&answer), Some(403));
    let answer = Api::<Namespace>::all(agent.clone()).list(&ListParams::default()).await;
    assert_eq!(status_code(&answer), Some(403));
    // Agents cannot accept, move or untaint clusters, not even their own.
    let answer = clusters
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {CLUSTER_SET_LABEL: "prod"}}})),
        )
        .await;
    assert_eq!(status_code(&answer), Some(403), "{}", message(&answer));

    // A renewal under the same identity is approved and signed by itself.
    let (_key, csr) = agent_csr(&id, "c1");
    let renewal = create_csr(&agent, &csr).await.expect("renewal csr");
    assert_eq!(renewal.spec.username.as_deref(), Some(id.user_name().as_str()));
    let cert = issued_certificate(&hub, &renewal.metadata.name.expect("name")).await;
    assert_eq!(flotilla_pki::cert_info(&cert).expect("cert").common_name, id.user_name());
    // A CSR for another agent ID of its cluster is not (it waits for `flotilla accept`); one
    // for another cluster's identity is refused outright, so no accept can approve it.
    let (_key, csr) = agent_csr(&identity("c1", "otheragent"), "c1");
    let other_id = create_csr(&agent, &csr).await.expect("csr").metadata.name.expect("name");
    let (_key, csr) = agent_csr(&identity("c2", "agent00001"), "c2");
    let answer = create_csr(&agent, &csr).await;
    assert_eq!(status_code(&answer), Some(403), "{}", message(&answer));
    assert!(message(&answer).contains("may only request certificates of its own cluster"), "{}", message(&answer));
    let c2_csrs = hub.csrs().list(&ListParams::default().labels("open-cluster-management.io/cluster-name=c2")).await;
    assert!(c2_csrs.expect("list").items.is_empty(), "nothing was created for c2");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let csr = hub.csrs().get(&other_id).await.expect("csr");
    assert!(csr.status.and_then(|s| s.conditions).is_none_or(|c| c.is_empty()), "{other_id} stays pending");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_is_immediate_and_foreign_certificates_are_refused() {
    let hub = Hub::start().await;
    hub.create_cluster("c1", true, None).await;
    let agent = hub.agent_client(&identity("c1", "agent00001")).await;
    let clusters: Api<DynamicObject> = Api::all_with(agent.clone(), &managed_clusters());
    clusters.get("c1").await.expect("accepted");

    hub.set_accepts("c1", false).await;
    let answer = clusters.get("c1").await;
    assert_eq!(status_code(&answer), Some(403), "the very next request");
    assert!(message(&answer).contains("managed cluster \"c1\" is not accepted by the hub"), "{}", message(&answer));
    let (_key, csr) = agent_csr(&identity("c1", "agent00001"), "c1");
    assert_eq!(status_code(&create_csr(&agent, &csr).await), Some(403), "no renewal either");

    hub.set_accepts("c1", true).await;
    clusters.get("c1").await.expect("accepted again");

    hub.clusters().delete("c1", &DeleteParams::default()).await.expect("delete");
    let answer = clusters.get("c1").await;
    assert_eq!(status_code(&answer), Some(403));
    assert!(
        message(&answer).contains("not accepted") && message(&answer).contains("does not exist"),
        "{}",
        message(&answer)
    );

    // Same identity, certificate from another CA: 401, saying why.
    let rogue_ca = flotilla_pki::CertificateAuthority::generate("rogue-ca", Duration::from_secs(3600)).expect("CA");
    hub.create_cluster("c2", true, None).await;
    let id = identity("c2", "agent00001");
    let rogue = rogue_ca.issue_client_cert(&id.user_name(), &id.groups(), Duration::from_secs(3600)).expect("cert");
    let rogue_client = hub.cert_client(&rogue.cert_pem, &rogue.key_pem).await;
    let answer = Api::<DynamicObject>::all_with(rogue_client, &managed_clusters()).get("c2").await;
    assert!(answer.is_err(), "a foreign CA's certificate must not get in");
    assert_eq!(status_code(&answer), Some(401));
    assert!(message(&answer).contains("not signed by the hub's certificate authority"), "{}", message(&answer));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csr_naming_another_cluster_is_never_signed() {
    let hub = Hub::start().await;
    let token = Token::generate().expect("token");
    hub.create_token(&token, None).await;
    let boot = hub.token_client(&token.expose()).await;
    let (_key, csr) = agent_csr(&identity("c2", "agent00001"), "c1");
    let name = create_csr(&boot, &csr).await.expect("csr").metadata.name.expect("name");
    hub.decide_csr(&name, "Approved").await;
    let failed = eventually("Failed condition", || async {
        let csr = to_value(&hub.csrs().get(&name).await.ok()?);
        condition(&csr, "Failed").cloned()
    })
    .await;
    assert_eq!(failed["reason"], "SignerValidationFailure");
    assert!(failed["message"].as_str().is_some_and(|m| m.contains("another cluster")), "{failed}");
    let csr = hub.csrs().get(&name).await.expect("csr");
    assert!(csr.status.and_then(|s| s.certificate).is_none());
    hub.stop().await;
}

async fn set_agent_condition(clusters: &Api<DynamicObject>, cluster: &str, type_: &str, status: &str, reason: &str) {
    // Read-modify-write with the resourceVersion, as an agent must (the hub writes too).
    for _ in 0..20 {
        let mut mc = clusters.get(cluster).await.expect("get");
        let mut list: Vec<Value> =
            mc.data.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
        list.retain(|c| c["type"] != type_);
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        list.push(json!({"type": type_, "status": status, "reason": reason, "message": "from the test agent",
            "lastTransitionTime": now}));
        mc.data["status"]["conditions"] = json!(list);
        match clusters.replace_status(cluster, &PostParams::default(), &mc).await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("status update: {e}"),
        }
    }
    panic!("status update kept conflicting");
}

async fn renew(leases: &Api<Lease>, renew_time: jiff::Timestamp) {
    let micro = renew_time.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "managed-cluster-lease"},
        "spec": {"holderIdentity": "agent00001", "leaseDurationSeconds": 1, "renewTime": micro},
    }))
    .expect("lease");
    let params = PatchParams::apply("test-agent").force();
    leases.patch("managed-cluster-lease", &params, &Patch::Apply(&lease)).await.expect("renew lease");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_lease_makes_the_cluster_unknown_and_tainted_until_it_recovers() {
    let hub = Hub::start_with(|c| c.lease_grace_factor = 2).await;
    hub.create_cluster("c1", true, Some(1)).await;
    eventually("namespace c1", || async {
        Api::<Namespace>::all(hub.admin.clone()).get_opt("c1").await.ok().flatten()
    })
    .await;
    let agent = hub.agent_client(&identity("c1", "agent00001")).await;
    let clusters: Api<DynamicObject> = Api::all_with(agent.clone(), &managed_clusters());
    let leases: Api<Lease> = Api::namespaced(agent.clone(), "c1");
    let not_joined = to_value(&hub.clusters().get("c1").await.expect("c1"));
    assert!(taint_keys(&not_joined).is_empty(), "no health tracking before the agent shows up");

    renew(&leases, jiff::Timestamp::now()).await;
    set_agent_condition(&clusters, "c1", "ManagedClusterJoined", "True", "ManagedClusterJoined").await;
    set_agent_condition(&clusters, "c1", "ManagedClusterConditionAvailable", "True", "ManagedClusterAvailable").await;
    let synced = eventually("ClockSynced", || async {
        let mc = to_value(&hub.clusters().get("c1").await.ok()?);
        condition(&mc, "ManagedClusterConditionClockSynced").cloned()
    })
    .await;
    assert_eq!(synced["status"], "True");
    assert_eq!(synced["reason"], "ManagedClusterClockSynced");

    // The agent stops renewing: after the grace (2 × 1 s) the cluster is Unknown and unreachable.
    let unknown = eventually("Available Unknown with the unreachable taint", || async {
        let mc = to_value(&hub.clusters().get("c1").await.ok()?);
        let available = condition(&mc, "ManagedClusterConditionAvailable")?;
        (available["status"] == "Unknown" && taint_keys(&mc).contains(&UNREACHABLE.to_string())).then_some(mc)
    })
    .await;
    assert_eq!(
        condition(&unknown, "ManagedClusterConditionAvailable").expect("available")["reason"],
        "ManagedClusterLeaseUpdateStopped"
    );
    // The agent may not remove the hub's taint itself.
    let untaint = json!({"spec": {"taints": []}});
    let answer = clusters.patch("c1", &PatchParams::default(), &Patch::Merge(&untaint)).await;
    assert_eq!(status_code(&answer), Some(403), "{}", message(&answer));

    // Recovery: renewals resume and the agent reports Available again.
    renew(&leases, jiff::Timestamp::now()).await;
    set_agent_condition(&clusters, "c1", "ManagedClusterConditionAvailable", "True", "ManagedClusterAvailable").await;
    eventually("taints removed", || async {
        let mc = to_value(&hub.clusters().get("c1").await.ok()?);
        taint_keys(&mc).is_empty().then_some(())
    })
    .await;
    // An unhealthy spoke API: False and the unavailable taint instead.
    renew(&leases, jiff::Timestamp::now()).await;
    set_agent_condition(
        &clusters,
        "c1",
        "ManagedClusterConditionAvailable",
        "False",
        "ManagedClusterKubeAPIServerUnavailable",
    )
    .await;
    eventually("unavailable taint", || async {
        let mc = to_value(&hub.clusters().get("c1").await.ok()?);
        (taint_keys(&mc) == vec![UNAVAILABLE.to_string()]).then_some(())
    })
    .await;
    // A renewal stamped a minute off the hub's clock is out of sync.
    renew(&leases, ts_in(-60)).await;
    eventually("ClockOutOfSync", || async {
        let mc = to_value(&hub.clusters().get("c1").await.ok()?);
        let synced = condition(&mc, "ManagedClusterConditionClockSynced")?;
        (synced["status"] == "False" && synced["reason"] == "ManagedClusterClockOutOfSync").then_some(())
    })
    .await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_sets_and_bindings_report_like_ocm() {
    let hub = Hub::start().await;
    let sets: Api<DynamicObject> = Api::all_with(hub.admin.clone(), &cluster_sets());
    let set_condition = |name: &'static str| {
        let sets = sets.clone();
        async move {
            let set = to_value(&sets.get(name).await.ok()?);
            condition(&set, "ClusterSetEmpty").cloned()
        }
    };
    let empty = eventually("default set", || set_condition("default")).await;
    assert_eq!((empty["status"].as_str(), empty["reason"].as_str()), (Some("True"), Some("NoClusterMatched")));
    let global = to_value(&sets.get("global").await.expect("global set"));
    assert_eq!(global["spec"]["clusterSelector"], json!({"selectorType": "LabelSelector", "labelSelector": {}}));

    hub.create_cluster("c1", false, None).await;
    for set in ["default", "global"] {
        let c = eventually(&format!("{set} selects c1"), || async {
            set_condition(set).await.filter(|c| c["status"] == "False")
        })
        .await;
        assert_eq!(c["reason"], "ClustersSelected");
        assert_eq!(c["message"], "1 ManagedClusters selected");
    }
    let mut prod = DynamicObject::new("prod", &cluster_sets());
    prod.data = json!({"spec": {"clusterSelector": {"selectorType": "ExclusiveClusterSetLabel"}}});
    sets.create(&PostParams::default(), &prod).await.expect("prod set");
    eventually("prod empty", || async { set_condition("prod").await.filter(|c| c["status"] == "True") }).await;
    let relabel = json!({"metadata": {"labels": {CLUSTER_SET_LABEL: "prod"}}});
    hub.clusters().patch("c1", &PatchParams::default(), &Patch::Merge(&relabel)).await.expect("move c1");
    eventually("prod selects c1", || async { set_condition("prod").await.filter(|c| c["status"] == "False") }).await;
    eventually("default empty again", || async { set_condition("default").await.filter(|c| c["status"] == "True") })
        .await;

    // The default set's selector is restored if changed.
    let broken = json!({"spec": {"clusterSelector": {"selectorType": "LabelSelector", "labelSelector": {"matchLabels": {"a": "b"}}}}});
    sets.patch("default", &PatchParams::default(), &Patch::Merge(&broken)).await.expect("change default");
    eventually("default restored", || async {
        let set = to_value(&sets.get("default").await.ok()?);
        (set["spec"]["clusterSelector"] == json!({"selectorType": "ExclusiveClusterSetLabel"})).then_some(())
    })
    .await;

    let bindings: Api<DynamicObject> = Api::namespaced_with(hub.admin.clone(), "default", &bindings());
    for name in ["prod", "later"] {
        let mut binding = DynamicObject::new(name, &common::bindings());
        binding.data = json!({"spec": {"clusterSet": name}});
        bindings.create(&PostParams::default(), &binding).await.expect("binding");
    }
    let bound = |name: &'static str| {
        let bindings = bindings.clone();
        async move {
            let b = to_value(&bindings.get(name).await.ok()?);
            condition(&b, "Bound").cloned()
        }
    };
    let prod_bound = eventually("prod bound", || bound("prod")).await;
    assert_eq!((prod_bound["status"].as_str(), prod_bound["reason"].as_str()), (Some("True"), Some("ClusterSetBound")));
    let later = eventually("later not bound", || bound("later")).await;
    assert_eq!((later["status"].as_str(), later["reason"].as_str()), (Some("False"), Some("ClusterSetNotFound")));
    let mut later_set = DynamicObject::new("later", &cluster_sets());
    later_set.data = json!({"spec": {"clusterSelector": {"selectorType": "ExclusiveClusterSetLabel"}}});
    sets.create(&PostParams::default(), &later_set).await.expect("later set");
    eventually("later bound", || async { bound("later").await.filter(|c| c["status"] == "True") }).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn controllers_pick_up_where_they_were_after_a_restart() {
    let mut hub = Hub::start_with(|c| c.lease_grace_factor = 2).await;
    hub.create_cluster("c1", true, Some(1)).await;
    eventually("namespace c1", || async {
        Api::<Namespace>::all(hub.admin.clone()).get_opt("c1").await.ok().flatten()
    })
    .await;
    let id = identity("c1", "agent00001");
    let agent = hub.agent_client(&id).await;
    renew(&Api::namespaced(agent.clone(), "c1"), jiff::Timestamp::now()).await;
    let clusters: Api<DynamicObject> = Api::all_with(agent.clone(), &managed_clusters());
    set_agent_condition(&clusters, "c1", "ManagedClusterJoined", "True", "ManagedClusterJoined").await;
    set_agent_condition(&clusters, "c1", "ManagedClusterConditionAvailable", "True", "ManagedClusterAvailable").await;
    // A renewal CSR created, then the hub goes down before (or while) it is handled.
    let (_key, csr) = agent_csr(&id, "c1");
    let renewal = create_csr(&agent, &csr).await.expect("csr").metadata.name.expect("name");

    // The lease expires while the hub is down; nothing is lost by the restart.
    hub.restart_after(Duration::from_secs(3)).await;
    issued_certificate(&hub, &renewal).await;
    eventually("Unknown and unreachable after the restart", || async {
        let mc = to_value(&hub.clusters().get("c1").await.ok()?);
        let available = condition(&mc, "ManagedClusterConditionAvailable")?;
        (available["status"] == "Unknown" && taint_keys(&mc).contains(&UNREACHABLE.to_string())).then_some(())
    })
    .await;
    let sets: Api<DynamicObject> = Api::all_with(hub.admin.clone(), &cluster_sets());
    assert!(sets.get("default").await.is_ok() && sets.get("global").await.is_ok());
    hub.stop().await;
}
