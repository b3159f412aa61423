//! The policy propagator against a real hub over TLS on loopback, with the real placement
//! controller scheduling labelled ManagedClusters: root policies are replicated into the
//! namespaces of the clusters their Placements decide (OCM's names and labels), follow the
//! decisions, bindings, PolicySets (with exclusions), `disabled` and binding overrides, get
//! their WasmPolicy plugins' digests, keep the status the agent writes, and aggregate it.

mod common;

use common::*;
use serde_json::{Value, json};

fn remediation(replica: &Value) -> &str {
    replica["spec"]["remediationAction"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_follow_decisions_bindings_disabled_and_deletion() {
    let hub = hub_with_clusters(&[
        ("c1", json!({"env": "prod"})),
        ("c2", json!({"env": "dev"})),
        ("c3", json!({"env": "prod"})),
    ])
    .await;
    label_placement(&hub, "prod", "env", "prod").await;
    create_simple_policy(&hub, "prod-ns").await;
    create_binding(&hub, "prod-ns", "prod", &[("Policy", "prod-ns")], json!({})).await;

    let first = wait_replicas(&hub, "prod-ns", &["c1", "c3"]).await;
    let root = get_policy(&hub, NS, "prod-ns").await;
    let c1 = &first["c1"];
    assert_eq!(c1["metadata"]["name"], "policies.prod-ns");
    assert_eq!(
        c1["metadata"]["labels"],
        json!({ROOT_LABEL: "policies.prod-ns", "policy.open-cluster-management.io/cluster-name": "c1",
            "policy.open-cluster-management.io/cluster-namespace": "c1"})
    );
    assert_eq!(c1["spec"], root["spec"], "the spec is the root's");
    let root = wait_policy(&hub, "prod-ns", "status lists c1 and c3", |p| {
        p.pointer("/status/status").and_then(Value::as_array).map(Vec::len) == Some(2)
    })
    .await;
    assert_eq!(root["status"]["placement"], json!([{"placementBinding": "prod-ns", "placement": "prod"}]));
    assert_eq!(
        root["status"]["status"],
        json!([{"clustername": "c1", "clusternamespace": "c1"}, {"clustername": "c3", "clusternamespace": "c3"}])
    );
    assert_eq!(root["status"]["summary"], json!({"clusters": 2, "compliant": 0, "nonCompliant": 0, "pending": 0}));
    assert!(root["status"].get("compliant").is_none(), "nothing reported yet");
    let propagated = status_condition(&root, "Propagated").cloned().unwrap_or_default();
    assert_eq!((propagated["status"].as_str(), propagated["reason"].as_str()), (Some("True"), Some("Propagated")));

    // The decisions change with the clusters' labels and with the Placement's predicates.
    label_cluster(&hub, "c2", json!({"env": "prod"})).await;
    wait_replicas(&hub, "prod-ns", &["c1", "c2", "c3"]).await;
    label_cluster(&hub, "c1", json!({"env": "dev"})).await;
    wait_replicas(&hub, "prod-ns", &["c2", "c3"]).await;
    let dev = json!({"spec": {"predicates": [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"env": "dev"}}}}]}});
    patch_placement(&hub, NS, "prod", dev).await;
    wait_replicas(&hub, "prod-ns", &["c1"]).await;

    // A binding in another namespace does not count (as OCM): once a reconcile that read it
    // has run (the spec change below bumps the generation the conditions observe), nothing moved.
    namespace(&hub, "elsewhere").await;
    bind(&hub, "elsewhere", "default").await;
    create_placement(&hub, "elsewhere", "everything", json!({})).await;
    wait_selected(&hub, "elsewhere", "everything", &["c1", "c2", "c3"]).await;
    let foreign = kube::api::DynamicObject::new("foreign", &placement_bindings()).within("elsewhere");
    let mut foreign = serde_json::to_value(foreign).expect("json");
    foreign["placementRef"] =
        json!({"apiGroup": "cluster.open-cluster-management.io", "kind": "Placement", "name": "everything"});
    foreign["subjects"] = json!([{"apiGroup": GROUP, "kind": "Policy", "name": "prod-ns"}]);
    api(&hub, &placement_bindings(), "elsewhere")
        .create(&Default::default(), &serde_json::from_value(foreign).expect("binding"))
        .await
        .expect("create foreign binding");
    patch_policy(&hub, NS, "prod-ns", json!({"spec": {"remediationAction": "Inform"}})).await;
    let generation = get_policy(&hub, NS, "prod-ns").await["metadata"]["generation"].clone();
    let root = wait_policy(&hub, "prod-ns", "the new generation observed", |p| {
        status_condition(p, "Propagated").is_some_and(|c| c["observedGeneration"] == generation)
    })
    .await;
    assert_eq!(root["status"]["placement"], json!([{"placementBinding": "prod-ns", "placement": "prod"}]));
    let now = replicas(&hub, "prod-ns").await;
    assert_eq!(now.keys().collect::<Vec<_>>(), ["c1"]);
    assert_eq!(now["c1"]["spec"]["remediationAction"], "Inform");

    // The binding goes: every replica goes, and the root says why.
    delete(&hub, &placement_bindings(), NS, "prod-ns").await;
    wait_replicas(&hub, "prod-ns", &[]).await;
    let root = wait_policy(&hub, "prod-ns", "NotBound", |p| {
        status_condition(p, "Propagated").is_some_and(|c| c["reason"] == "NotBound")
    })
    .await;
    assert!(root["status"].get("status").is_none() && root["status"].get("placement").is_none(), "{}", root["status"]);

    // Bound again, then disabled and enabled.
    create_binding(&hub, "again", "prod", &[("Policy", "prod-ns")], json!({})).await;
    wait_replicas(&hub, "prod-ns", &["c1"]).await;
    patch_policy(&hub, NS, "prod-ns", json!({"spec": {"disabled": true}})).await;
    wait_replicas(&hub, "prod-ns", &[]).await;
    wait_policy(&hub, "prod-ns", "Disabled", |p| {
        status_condition(p, "Propagated").is_some_and(|c| c["reason"] == "Disabled" && c["status"] == "False")
    })
    .await;
    patch_policy(&hub, NS, "prod-ns", json!({"spec": {"disabled": false}})).await;
    wait_replicas(&hub, "prod-ns", &["c1"]).await;

    // Deleting the root deletes its replicas.
    delete(&hub, &policies(), NS, "prod-ns").await;
    wait_replicas(&hub, "prod-ns", &[]).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn binding_overrides_enforce_and_the_agent_status_is_kept() {
    let hub = hub_with_clusters(&[
        ("a", json!({"tier": "prod"})),
        ("b", json!({"tier": "dev"})),
        ("z", json!({"tier": "prod"})),
    ])
    .await;
    create_placement(&hub, NS, "everywhere", json!({})).await;
    label_placement(&hub, "prod", "tier", "prod").await;
    label_placement(&hub, "dev", "tier", "dev").await;
    create_simple_policy(&hub, "pol").await;
    // `everywhere` places the policy; `prod` only enforces it where it is placed.
    create_binding(&hub, "all", "everywhere", &[("Policy", "pol")], json!({})).await;
    create_binding(
        &hub,
        "enforce-prod",
        "prod",
        &[("Policy", "pol")],
        json!({"bindingOverrides": {"remediationAction": "Enforce"}, "subFilter": "restricted"}),
    )
    .await;
    let placed = eventually("a and z enforced, b informed", || async {
        let r = wait_replicas(&hub, "pol", &["a", "b", "z"]).await;
        let modes: Vec<&str> = ["a", "b", "z"].iter().map(|c| remediation(&r[*c])).collect();
        (modes == ["enforce", "inform", "enforce"]).then_some(r)
    })
    .await;
    assert_eq!(
        placed["a"]["spec"]["policy-templates"][0]["objectDefinition"]["spec"]["remediationAction"], "inform",
        "templates are left as written"
    );
    let root = wait_policy(&hub, "pol", "both bindings listed", |p| {
        p.pointer("/status/placement").and_then(Value::as_array).map(Vec::len) == Some(2)
    })
    .await;
    assert_eq!(
        root["status"]["placement"],
        json!([{"placementBinding": "all", "placement": "everywhere"}, {"placementBinding": "enforce-prod", "placement": "prod"}])
    );

    // A restricted binding places nothing by itself.
    create_simple_policy(&hub, "restricted-only").await;
    create_binding(
        &hub,
        "dev-only",
        "dev",
        &[("Policy", "restricted-only")],
        json!({"bindingOverrides": {"remediationAction": "Enforce"}, "subFilter": "restricted"}),
    )
    .await;
    wait_policy(&hub, "restricted-only", "propagated to no cluster", |p| {
        status_condition(p, "Propagated").is_some_and(|c| c["message"] == "replicated to 0 clusters")
    })
    .await;
    assert!(replicas(&hub, "restricted-only").await.is_empty());

    // The agent's status survives a change of the root, and a replica edited on the hub is put back.
    report(&hub, "b", "pol", "NonCompliant").await;
    patch_policy(
        &hub,
        NS,
        "pol",
        json!({"metadata": {"annotations": {"policy.open-cluster-management.io/standards": "NIST SP 800-53"}}}),
    )
    .await;
    let b = eventually("the annotation copied to b", || async {
        let r = replicas(&hub, "pol").await;
        let b = r.get("b").cloned()?;
        (b["metadata"]["annotations"]["policy.open-cluster-management.io/standards"] == "NIST SP 800-53").then_some(b)
    })
    .await;
    assert_eq!(b["status"]["compliant"], "NonCompliant", "the agent's status is kept");
    api(&hub, &policies(), "b")
        .patch(
            "policies.pol",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&json!({"spec": {"remediationAction": "enforce", "disabled": true}})),
        )
        .await
        .expect("edit the replica");
    eventually("b's replica put back", || async {
        let r = replicas(&hub, "pol").await;
        let b = r.get("b")?;
        (remediation(b) == "inform" && b["spec"]["disabled"] == false && b["status"]["compliant"] == "NonCompliant")
            .then_some(())
    })
    .await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_sets_propagate_their_policies_minus_exclusions() {
    let hub = hub_with_clusters(&[("c1", json!({})), ("c2", json!({}))]).await;
    create_placement(&hub, NS, "all", json!({})).await;
    wait_selected(&hub, NS, "all", &["c1", "c2"]).await;
    create_simple_policy(&hub, "p1").await;
    create_simple_policy(&hub, "p2").await;
    create_policy_set(
        &hub,
        "baseline",
        json!({"description": "the baseline", "policies": ["p1", "p2", "p-missing"],
            "exclusions": [{"policyName": "p1", "clusterNames": ["c2"], "reason": "c2 is a lab"}]}),
    )
    .await;
    create_binding(&hub, "baseline", "all", &[("PolicySet", "baseline")], json!({})).await;
    wait_replicas(&hub, "p1", &["c1"]).await;
    wait_replicas(&hub, "p2", &["c1", "c2"]).await;
    let root = wait_policy(&hub, "p1", "placed through the set", |p| p.pointer("/status/placement").is_some()).await;
    assert_eq!(
        root["status"]["placement"],
        json!([{"placementBinding": "baseline", "placement": "all", "policySet": "baseline"}])
    );

    // The set reports its placement, its active exclusions and its policies' compliance.
    for (cluster, policy) in [("c1", "p1"), ("c1", "p2"), ("c2", "p2")] {
        report(&hub, cluster, policy, "Compliant").await;
    }
    let set = eventually("the set's status", || async {
        let set = to_value(&api(&hub, &policy_sets(), NS).get("baseline").await.expect("get set"));
        (set["status"]["compliant"] == "Compliant").then_some(set)
    })
    .await;
    assert_eq!(set["status"]["placement"], json!([{"placementBinding": "baseline", "placement": "all"}]));
    assert_eq!(set["status"]["exclusions"], json!([{"policyName": "p1", "clusters": ["c2"]}]));
    assert_eq!(set["status"]["statusMessage"], "Deleted policies: p-missing");
    report(&hub, "c2", "p2", "NonCompliant").await;
    eventually("the set turns NonCompliant", || async {
        let set = to_value(&api(&hub, &policy_sets(), NS).get("baseline").await.expect("get set"));
        (set["status"]["compliant"] == "NonCompliant").then_some(())
    })
    .await;

    // Lifting the exclusion brings p1 to c2; removing p2 from the set removes its replicas.
    let patch = json!({"spec": {"policies": ["p1"], "exclusions": null}});
    api(&hub, &policy_sets(), NS)
        .patch("baseline", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
        .await
        .expect("patch set");
    wait_replicas(&hub, "p1", &["c1", "c2"]).await;
    wait_replicas(&hub, "p2", &[]).await;
    // Deleting the set removes what it placed.
    delete(&hub, &policy_sets(), NS, "baseline").await;
    wait_replicas(&hub, "p1", &[]).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compliance_flows_back_and_get_policies_shows_counts() {
    let hub = hub_with_clusters(&[("c1", json!({})), ("c2", json!({})), ("c3", json!({}))]).await;
    create_placement(&hub, NS, "all", json!({})).await;
    create_simple_policy(&hub, "pol").await;
    create_binding(&hub, "pol", "all", &[("Policy", "pol")], json!({})).await;
    wait_replicas(&hub, "pol", &["c1", "c2", "c3"]).await;

    report(&hub, "c1", "pol", "Compliant").await;
    report(&hub, "c2", "pol", "Compliant").await;
    report(&hub, "c3", "pol", "Pending").await;
    let root = wait_policy(&hub, "pol", "Pending overall", |p| p["status"]["compliant"] == "Pending").await;
    assert_eq!(root["status"]["summary"], json!({"clusters": 3, "compliant": 2, "nonCompliant": 0, "pending": 1}));
    report(&hub, "c3", "pol", "Compliant").await;
    wait_policy(&hub, "pol", "Compliant overall", |p| p["status"]["compliant"] == "Compliant").await;
    report(&hub, "c2", "pol", "NonCompliant").await;
    let root = wait_policy(&hub, "pol", "NonCompliant overall", |p| p["status"]["compliant"] == "NonCompliant").await;
    assert_eq!(
        root["status"]["status"],
        json!([{"clustername": "c1", "clusternamespace": "c1", "compliant": "Compliant"},
            {"clustername": "c2", "clusternamespace": "c2", "compliant": "NonCompliant"},
            {"clustername": "c3", "clusternamespace": "c3", "compliant": "Compliant"}])
    );

    // What `flotilla get policies` and kubectl print: the server's Table.
    let (status, body) = table(&hub, &format!("/apis/{GROUP}/v1/namespaces/{NS}/policies")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let table: Value = serde_json::from_slice(&body).expect("table");
    let columns: Vec<&str> =
        table["columnDefinitions"].as_array().expect("columns").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        columns,
        ["Name", "Remediation action", "Compliance state", "Compliant", "NonCompliant", "Pending", "Clusters", "Age"]
    );
    let row = &table["rows"][0]["cells"];
    assert_eq!(
        (row[0].clone(), row[1].clone(), row[2].clone(), row[3].clone(), row[4].clone()),
        (json!("pol"), json!("inform"), json!("NonCompliant"), json!(2), json!(1))
    );

    // A cluster leaving the decisions leaves the status.
    label_cluster(&hub, "c2", json!({"cluster.open-cluster-management.io/clusterset": "elsewhere"})).await;
    wait_replicas(&hub, "pol", &["c1", "c3"]).await;
    let root = wait_policy(&hub, "pol", "Compliant again", |p| p["status"]["compliant"] == "Compliant").await;
    assert_eq!(root["status"]["summary"], json!({"clusters": 2, "compliant": 2, "nonCompliant": 0, "pending": 0}));
    hub.stop().await;
}

async fn table(hub: &Hub, path: &str) -> (u16, Vec<u8>) {
    let request = http::Request::builder()
        .method("GET")
        .uri(path)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(kube::client::Body::empty())
        .expect("request");
    let response = hub.admin.send(request).await.expect("send");
    let status = response.status().as_u16();
    (status, response.into_body().collect_bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn misconfigurations_are_reported_and_nothing_partial_is_replicated() {
    let hub = hub_with_clusters(&[("c1", json!({}))]).await;
    create_placement(&hub, NS, "all", json!({})).await;

    // A name too long for a replica: nothing is replicated, the root says why.
    let long = "a-policy-whose-name-is-so-long-that-the-replica-name-exceeds";
    create_simple_policy(&hub, long).await;
    create_binding(&hub, "long", "all", &[("Policy", long)], json!({})).await;
    let root = wait_policy(&hub, long, "ReplicaNameTooLong", |p| {
        status_condition(p, "Propagated").is_some_and(|c| c["reason"] == "ReplicaNameTooLong")
    })
    .await;
    let misconfigured = status_condition(&root, "PolicyMisconfigured").cloned().unwrap_or_default();
    assert_eq!(misconfigured["status"], "True");
    assert!(misconfigured["message"].as_str().unwrap_or_default().contains("is 69 characters"), "{misconfigured}");
    let in_c1 = api(&hub, &policies(), "c1").list(&Default::default()).await.expect("list c1's policies");
    assert!(in_c1.items.is_empty(), "nothing replicated: {:?}", in_c1.items);

    // A binding to a PlacementRule binds nothing, and says so on the policy it names.
    create_simple_policy(&hub, "ruled").await;
    let rule = json!({"placementRef": {"apiGroup": "apps.open-cluster-management.io", "kind": "PlacementRule", "name": "old"}});
    let obj: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1"), "kind": "PlacementBinding",
        "metadata": {"name": "ruled", "namespace": NS}, "placementRef": rule["placementRef"],
        "subjects": [{"apiGroup": GROUP, "kind": "Policy", "name": "ruled"}]}))
    .expect("binding");
    api(&hub, &placement_bindings(), NS).create(&Default::default(), &obj).await.expect("create binding");
    let root = wait_policy(&hub, "ruled", "misconfigured", |p| {
        status_condition(p, "PolicyMisconfigured").is_some_and(|c| c["status"] == "True")
    })
    .await;
    let message = status_condition(&root, "PolicyMisconfigured")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("PlacementBinding ruled: placementRef.kind is \"PlacementRule\""), "{message}");
    assert_eq!(status_condition(&root, "Propagated").map(|c| c["reason"].clone()), Some(json!("NotBound")));

    // A Policy of the replica's name that is someone else's is left alone and reported.
    create_policy(&hub, "c1", "policies.taken", json!({"disabled": false, "policy-templates": []})).await;
    create_simple_policy(&hub, "taken").await;
    create_binding(&hub, "taken", "all", &[("Policy", "taken")], json!({})).await;
    let root = wait_policy(&hub, "taken", "the name reported taken", |p| {
        status_condition(p, "PolicyMisconfigured").is_some_and(|c| c["status"] == "True")
    })
    .await;
    let message = status_condition(&root, "PolicyMisconfigured")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("Policy c1/policies.taken exists and is not a replica of this policy"), "{message}");
    let theirs = get_policy(&hub, "c1", "policies.taken").await;
    assert_eq!(theirs["spec"]["policy-templates"], json!([]), "left alone");
    assert!(theirs["metadata"]["labels"].get(ROOT_LABEL).is_none());

    // A subject of another kind is refused by the API, naming the field.
    let bad: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1"), "kind": "PlacementBinding",
        "metadata": {"name": "bad-kind", "namespace": NS},
        "placementRef": {"apiGroup": "cluster.open-cluster-management.io", "kind": "Placement", "name": "all"},
        "subjects": [{"apiGroup": GROUP, "kind": "ConfigurationPolicy", "name": "ruled"}]}))
    .expect("binding");
    let err = api(&hub, &placement_bindings(), NS).create(&Default::default(), &bad).await.expect_err("refused");
    assert!(err.to_string().contains("subjects[0].kind"), "{err}");
    hub.stop().await;
}

/// A Policy with one WasmPolicy template naming `plugin`.
async fn create_wasm_policy(hub: &Hub, name: &str, plugin: &str) {
    let spec = json!({"disabled": false, "remediationAction": "inform", "policy-templates": [{"objectDefinition": {
        "apiVersion": "flotilla.dev/v1alpha1", "kind": "WasmPolicy", "metadata": {"name": "labels"},
        "spec": {"plugin": {"name": plugin}, "configuration": {"kinds": ["ConfigMap"], "labels": ["owner"]}}}}]});
    create_policy(hub, NS, name, spec).await;
}

fn plugin_of(replica: &Value) -> Value {
    replica["spec"]["policy-templates"][0]["objectDefinition"]["spec"]["plugin"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn wasm_policies_carry_their_plugins_digest() {
    let hub = hub_with_clusters(&[("c1", json!({}))]).await;
    create_placement(&hub, NS, "all", json!({})).await;
    push_plugin(&hub, "required-labels", "required-labels", "policy-check", json!({})).await;
    let digest = flotilla_plugin_host::digest_of(&wasm("required-labels"));
    create_wasm_policy(&hub, "labelled", "required-labels").await;
    create_wasm_policy(&hub, "later", "not-yet-pushed").await;
    create_binding(&hub, "wasm", "all", &[("Policy", "labelled"), ("Policy", "later")], json!({})).await;

    let replica = wait_replicas(&hub, "labelled", &["c1"]).await.remove("c1").expect("c1");
    assert_eq!(plugin_of(&replica), json!({"name": "required-labels", "digest": digest}));

    // A plugin not pushed yet: replicated without a digest, and the root says why.
    let replica = wait_replicas(&hub, "later", &["c1"]).await.remove("c1").expect("c1");
    assert_eq!(plugin_of(&replica), json!({"name": "not-yet-pushed"}));
    let root = wait_policy(&hub, "later", "misconfigured", |p| {
        status_condition(p, "PolicyMisconfigured").is_some_and(|c| c["status"] == "True")
    })
    .await;
    let message = status_condition(&root, "PolicyMisconfigured")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("WasmPlugin \"not-yet-pushed\" does not exist"), "{message}");
    // Pushed: the digest reaches the replica and the condition clears.
    push_plugin(&hub, "not-yet-pushed", "required-labels", "policy-check", json!({})).await;
    eventually("the digest resolved", || async {
        let r = replicas(&hub, "later").await;
        (plugin_of(r.get("c1")?) == json!({"name": "not-yet-pushed", "digest": digest})).then_some(())
    })
    .await;
    wait_policy(&hub, "later", "configured", |p| {
        status_condition(p, "PolicyMisconfigured").is_some_and(|c| c["status"] == "False")
    })
    .await;
    // The plugin goes: the digest goes with it.
    kube::api::Api::<kube::api::DynamicObject>::all_with(hub.admin.clone(), &wasm_plugins())
        .delete("not-yet-pushed", &Default::default())
        .await
        .expect("delete plugin");
    eventually("the digest removed", || async {
        let r = replicas(&hub, "later").await;
        (plugin_of(r.get("c1")?) == json!({"name": "not-yet-pushed"})).then_some(())
    })
    .await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_hub_keeps_replicas_and_their_status_and_goes_on() {
    let mut hub = hub_with_clusters(&[("c1", json!({}))]).await;
    create_placement(&hub, NS, "all", json!({})).await;
    create_simple_policy(&hub, "pol").await;
    create_binding(&hub, "pol", "all", &[("Policy", "pol")], json!({})).await;
    wait_replicas(&hub, "pol", &["c1"]).await;
    report(&hub, "c1", "pol", "Compliant").await;
    wait_policy(&hub, "pol", "Compliant", |p| p["status"]["compliant"] == "Compliant").await;

    hub.restart_after(std::time::Duration::from_millis(10)).await;
    // Unchanged by the restart: the replica keeps its status (and its resourceVersion: the
    // restarted controller rewrites nothing), and changes are followed again.
    let replica = wait_replicas(&hub, "pol", &["c1"]).await.remove("c1").expect("c1");
    assert_eq!(replica["status"]["compliant"], "Compliant");
    wait_policy(&hub, "pol", "Compliant after the restart", |p| p["status"]["compliant"] == "Compliant").await;
    let again = wait_replicas(&hub, "pol", &["c1"]).await.remove("c1").expect("c1");
    assert_eq!(again["metadata"]["resourceVersion"], replica["metadata"]["resourceVersion"]);
    delete(&hub, &policies(), NS, "pol").await;
    wait_replicas(&hub, "pol", &[]).await;
    hub.stop().await;
}
