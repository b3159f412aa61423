//! Governance on the spoke end to end, in one process over TLS on loopback: a real hub, a
//! simulated spoke and the agent library. The tests write root policies bound to a Placement
//! that selects the agent's cluster; the hub's propagator replicates them into the cluster
//! namespace (`gov.<name>`) — it deletes replicas that have no root, so the tests cannot write
//! replicas directly. They change the spoke by hand and check what the agent reports in the
//! replica's status and what it does to the spoke when enforcing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use flotilla_plugin_host::digest_of;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const CLUSTER: &str = "c1";

fn policies() -> kube::api::ApiResource {
    resource("policy.open-cluster-management.io", "v1", "Policy", "policies")
}

fn pods() -> kube::api::ApiResource {
    resource("", "v1", "Pod", "pods")
}

/// Options for a fast agent: policies re-evaluated every 300 ms.
fn options(env: &Env) -> flotilla_agent::AgentOptions {
    let mut opts = env.options(CLUSTER);
    opts.policy_watch_period = Duration::from_millis(300);
    opts
}

fn policy_api(env: &Env) -> Api<DynamicObject> {
    Api::namespaced_with(env.admin.clone(), CLUSTER, &policies())
}

/// Where the root policies live; replicas are `gov.<name>` in the cluster namespace.
const ROOT_NS: &str = "gov";

fn replica_name(name: &str) -> String {
    format!("{ROOT_NS}.{name}")
}

/// The hub side every test shares: namespace `gov`, bound to the `default` cluster set, and a
/// Placement `all` there that selects every cluster (the agent's).
async fn hub_setup(env: &Env) {
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": ROOT_NS}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(env.admin.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let set_bindings = resource(
        "cluster.open-cluster-management.io",
        "v1beta2",
        "ManagedClusterSetBinding",
        "managedclustersetbindings",
    );
    let binding: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.open-cluster-management.io/v1beta2", "kind": "ManagedClusterSetBinding",
        "metadata": {"name": "default", "namespace": ROOT_NS}, "spec": {"clusterSet": "default"},
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(env.admin.clone(), ROOT_NS, &set_bindings)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let placements = resource("cluster.open-cluster-management.io", "v1beta1", "Placement", "placements");
    let placement: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.open-cluster-management.io/v1beta1", "kind": "Placement",
        "metadata": {"name": "all", "namespace": ROOT_NS}, "spec": {},
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(env.admin.clone(), ROOT_NS, &placements)
        .create(&PostParams::default(), &placement)
        .await
        .unwrap();
}

fn root_api(env: &Env) -> Api<DynamicObject> {
    Api::namespaced_with(env.admin.clone(), ROOT_NS, &policies())
}

/// Creates root policy `gov/<name>` bound to Placement `all`, and waits for the hub to
/// replicate it into the cluster namespace (the tests then watch the replica).
async fn put_policy(env: &Env, name: &str, spec: Value) {
    let mut spec = spec;
    if spec.get("disabled").is_none() {
        spec["disabled"] = json!(false);
    }
    let root: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "policy.open-cluster-management.io/v1", "kind": "Policy",
        "metadata": {"name": name, "namespace": ROOT_NS}, "spec": spec,
    }))
    .unwrap();
    root_api(env).create(&PostParams::default(), &root).await.unwrap();
    let bindings = resource("policy.open-cluster-management.io", "v1", "PlacementBinding", "placementbindings");
    let binding: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "policy.open-cluster-management.io/v1", "kind": "PlacementBinding",
        "metadata": {"name": name, "namespace": ROOT_NS},
        "placementRef": {"apiGroup": "cluster.open-cluster-management.io", "kind": "Placement", "name": "all"},
        "subjects": [{"apiGroup": "policy.open-cluster-management.io", "kind": "Policy", "name": name}],
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(env.admin.clone(), ROOT_NS, &bindings)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    eventually(&format!("the hub replicates {name} into {CLUSTER}"), || async {
        policy_api(env).get_opt(&replica_name(name)).await.unwrap()
    })
    .await;
}

/// Changes the root's remediationAction; the hub carries it to the replica.
async fn set_remediation(env: &Env, name: &str, action: &str) {
    let patch = json!({"spec": {"remediationAction": action}});
    root_api(env).patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

fn configuration_policy(name: &str, object_templates: Value, extra: Value) -> Value {
    let mut spec = json!({"remediationAction": "inform", "severity": "medium", "object-templates": object_templates});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    json!({"objectDefinition": {
        "apiVersion": "policy.open-cluster-management.io/v1",
        "kind": "ConfigurationPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }})
}

fn config_map(ns: Option<&str>, name: &str, data: Value) -> Value {
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data});
    if let Some(ns) = ns {
        cm["metadata"]["namespace"] = json!(ns);
    }
    cm
}

async fn spoke_create(env: &Env, ar: &kube::api::ApiResource, object: Value) {
    let ns = object.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string);
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    env.spoke_api(ar, ns.as_deref()).create(&PostParams::default(), &object).await.unwrap();
}

async fn spoke_delete(env: &Env, ar: &kube::api::ApiResource, ns: &str, name: &str) {
    env.spoke_api(ar, Some(ns)).delete(name, &DeleteParams::default()).await.unwrap();
}

async fn spoke_replace_data(env: &Env, ns: &str, name: &str, data: Value) {
    let mut cm = env.spoke_get(&config_maps(), Some(ns), name).await.unwrap();
    cm["data"] = data;
    let object: DynamicObject = serde_json::from_value(cm).unwrap();
    env.spoke_api(&config_maps(), Some(ns)).replace(name, &PostParams::default(), &object).await.unwrap();
}

async fn namespace(env: &Env, name: &str, labels: Value) {
    spoke_create(
        env,
        &namespaces(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}),
    )
    .await;
}

/// The replica's status detail of `template`.
fn detail<'a>(policy: &'a Value, template: &str) -> Option<&'a Value> {
    policy.pointer("/status/details")?.as_array()?.iter().find(|d| d["templateMeta"]["name"] == template)
}

fn newest_message(policy: &Value, template: &str) -> String {
    detail(policy, template)
        .and_then(|d| d.pointer("/history/0/message"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Waits until `template` of `gov.<name>` is `compliant` with a newest message
/// containing `part`; the replica.
async fn wait_template(env: &Env, name: &str, template: &str, compliant: &str, part: &str) -> Value {
    let replica = replica_name(name);
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(policy) = policy_api(env).get_opt(&replica).await.unwrap() {
            let policy = serde_json::to_value(policy).unwrap();
            let ok = detail(&policy, template)
                .is_some_and(|d| d["compliant"] == compliant && newest_message(&policy, template).contains(part));
            if ok {
                return policy;
            }
            last = policy;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {replica}/{template} to be {compliant} with {part:?}; last status: {}",
            last.get("status").unwrap_or(&Value::Null)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `template` of `gov.<name>` is Compliant and its history records an
/// enforcement whose message contains `part` (later passes add "found as specified" on top).
async fn wait_enforced(env: &Env, name: &str, template: &str, part: &str) -> Value {
    let replica = replica_name(name);
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(policy) = policy_api(env).get_opt(&replica).await.unwrap() {
            let policy = serde_json::to_value(policy).unwrap();
            let ok = detail(&policy, template).is_some_and(|d| {
                d["compliant"] == "Compliant"
                    && d["history"].as_array().is_some_and(|h| {
                        h.iter().any(|e| {
                            e["message"].as_str().is_some_and(|m| m.starts_with("Compliant") && m.contains(part))
                        })
                    })
            });
            if ok {
                return policy;
            }
            last = policy;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {replica}/{template} to be enforced with {part:?}; last status: {}",
            last.get("status").unwrap_or(&Value::Null)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start(env: &Env) -> RunningAgent {
    hub_setup(env).await;
    joined_agent(env, options(env)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn musthave_informs_then_enforces() {
    let env = Env::start().await;
    let agent = start(&env).await;
    namespace(&env, "prod", json!({})).await;
    let wanted = config_map(Some("prod"), "app-config", json!({"mode": "strict"}));
    put_policy(
        &env,
        "cm",
        json!({"policy-templates": [configuration_policy("cm-present", json!([{"complianceType": "musthave", "objectDefinition": wanted}]), json!({}))]}),
    )
    .await;
    let policy = wait_template(&env, "cm", "cm-present", "NonCompliant", "not found").await;
    assert_eq!(
        newest_message(&policy, "cm-present"),
        "NonCompliant; violation - configmaps [app-config] not found in namespace prod"
    );
    assert_eq!(policy["status"]["compliant"], "NonCompliant");
    assert_eq!(detail(&policy, "cm-present").unwrap()["templateMeta"]["kind"], "ConfigurationPolicy");
    let history = &detail(&policy, "cm-present").unwrap()["history"][0];
    assert!(history["eventName"].as_str().unwrap().starts_with("gov.cm."), "{history}");
    assert!(env.spoke_get(&config_maps(), Some("prod"), "app-config").await.is_none(), "inform never writes");

    // Fixed by hand: compliant. Extra keys do not matter to musthave.
    spoke_create(&env, &config_maps(), config_map(Some("prod"), "app-config", json!({"mode": "strict", "x": "y"})))
        .await;
    let policy = wait_template(&env, "cm", "cm-present", "Compliant", "found as specified").await;
    assert_eq!(
        newest_message(&policy, "cm-present"),
        "Compliant; notification - configmaps [app-config] found as specified in namespace prod"
    );
    assert_eq!(policy["status"]["compliant"], "Compliant");

    // Drift, reported, then enforced by the policy-level override.
    spoke_replace_data(&env, "prod", "app-config", json!({"mode": "lax", "x": "y"})).await;
    wait_template(&env, "cm", "cm-present", "NonCompliant", "found but not as specified in namespace prod").await;
    set_remediation(&env, "cm", "enforce").await;
    let policy =
        wait_enforced(&env, "cm", "cm-present", "configmaps [app-config] was updated successfully in namespace prod")
            .await;
    let cm = env.spoke_get(&config_maps(), Some("prod"), "app-config").await.unwrap();
    assert_eq!(cm["data"], json!({"mode": "strict", "x": "y"}), "musthave keeps what the template does not name");
    let history = detail(&policy, "cm-present").unwrap()["history"].as_array().unwrap().clone();
    assert!(history.len() >= 4 && history.len() <= flotilla_agent::policy::MAX_HISTORY, "{history:?}");
    let messages: Vec<&str> = history.iter().filter_map(|h| h["message"].as_str()).collect();
    let mut unique = messages.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), messages.len(), "deduplicated: {messages:?}");

    // Deleted by hand: the enforced policy creates it again.
    spoke_delete(&env, &config_maps(), "prod", "app-config").await;
    wait_enforced(&env, "cm", "cm-present", "configmaps [app-config] was created successfully in namespace prod").await;
    eventually("the agent recreates the object", || async {
        env.spoke_get(&config_maps(), Some("prod"), "app-config").await.filter(|cm| cm["data"]["mode"] == "strict")
    })
    .await;
    agent.stop().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mustonlyhave_informs_then_enforces() {
    let env = Env::start().await;
    let agent = start(&env).await;
    namespace(&env, "prod", json!({})).await;
    spoke_create(&env, &config_maps(), config_map(Some("prod"), "limits", json!({"cpu": "2", "extra": "1"}))).await;
    let wanted = config_map(Some("prod"), "limits", json!({"cpu": "2"}));
    put_policy(
        &env,
        "only",
        json!({"policy-templates": [configuration_policy("exact", json!([{"complianceType": "mustonlyhave", "objectDefinition": wanted}]), json!({}))]}),
    )
    .await;
    wait_template(
        &env,
        "only",
        "exact",
        "NonCompliant",
        "configmaps [limits] found but not as specified in namespace prod",
    )
    .await;
    spoke_replace_data(&env, "prod", "limits", json!({"cpu": "2"})).await;
    wait_template(&env, "only", "exact", "Compliant", "configmaps [limits] found as specified in namespace prod").await;

    spoke_replace_data(&env, "prod", "limits", json!({"cpu": "4", "more": "x"})).await;
    wait_template(&env, "only", "exact", "NonCompliant", "found but not as specified").await;
    set_remediation(&env, "only", "Enforce").await;
    wait_enforced(&env, "only", "exact", "configmaps [limits] was updated successfully in namespace prod").await;
    let cm = env.spoke_get(&config_maps(), Some("prod"), "limits").await.unwrap();
    assert_eq!(cm["data"], json!({"cpu": "2"}), "mustonlyhave removes what the template does not name");
    agent.stop().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mustnothave_informs_then_enforces() {
    let env = Env::start().await;
    let agent = start(&env).await;
    namespace(&env, "prod", json!({})).await;
    spoke_create(&env, &config_maps(), config_map(Some("prod"), "debug", json!({"on": "true"}))).await;
    let forbidden =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "debug", "namespace": "prod"}});
    put_policy(
        &env,
        "none",
        json!({"policy-templates": [configuration_policy("no-debug", json!([{"complianceType": "mustnothave", "objectDefinition": forbidden}]), json!({}))]}),
    )
    .await;
    let policy = wait_template(&env, "none", "no-debug", "NonCompliant", "found").await;
    assert_eq!(
        newest_message(&policy, "no-debug"),
        "NonCompliant; violation - configmaps [debug] found in namespace prod"
    );
    spoke_delete(&env, &config_maps(), "prod", "debug").await;
    wait_template(&env, "none", "no-debug", "Compliant", "configmaps [debug] missing as expected in namespace prod")
        .await;

    spoke_create(&env, &config_maps(), config_map(Some("prod"), "debug", json!({"on": "true"}))).await;
    wait_template(&env, "none", "no-debug", "NonCompliant", "configmaps [debug] found in namespace prod").await;
    set_remediation(&env, "none", "enforce").await;
    wait_enforced(&env, "none", "no-debug", "configmaps [debug] was deleted successfully in namespace prod").await;
    eventually("the agent deletes the object", || async {
        env.spoke_get(&config_maps(), Some("prod"), "debug").await.is_none().then_some(())
    })
    .await;
    agent.stop().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_selector_and_prune_if_created() {
    let env = Env::start().await;
    let agent = start(&env).await;
    for (ns, labels) in [
        ("team-a", json!({"env": "prod"})),
        ("team-b", json!({"env": "prod"})),
        ("team-c", json!({"env": "prod"})),
        ("team-d", json!({"env": "dev"})),
        ("other", json!({"env": "prod"})),
    ] {
        namespace(&env, ns, labels).await;
    }
    // Existed before the policy: managed, never pruned by DeleteIfCreated.
    spoke_create(&env, &config_maps(), config_map(Some("team-c"), "note", json!({"owner": "platform"}))).await;
    let note = config_map(None, "note", json!({"owner": "platform"}));
    let selector = json!({
        "remediationAction": "enforce",
        "pruneObjectBehavior": "DeleteIfCreated",
        "namespaceSelector": {"include": ["team-*"], "exclude": ["team-b"], "matchLabels": {"env": "prod"}},
    });
    put_policy(
        &env,
        "notes",
        json!({"policy-templates": [configuration_policy("notes", json!([{"complianceType": "musthave", "objectDefinition": note}]), selector)]}),
    )
    .await;
    wait_enforced(&env, "notes", "notes", "configmaps [note] was created successfully in namespace team-a").await;
    assert!(env.spoke_get(&config_maps(), Some("team-a"), "note").await.is_some());
    for ns in ["team-b", "team-d", "other"] {
        assert!(env.spoke_get(&config_maps(), Some(ns), "note").await.is_none(), "not selected: {ns}");
    }
    wait_template(&env, "notes", "notes", "Compliant", "configmaps [note] found as specified in namespace team-c")
        .await;

    // The policy goes: what it created goes with it, what it found stays.
    root_api(&env).delete("notes", &DeleteParams::default()).await.unwrap();
    eventually("the hub removes the replica", || async {
        policy_api(&env).get_opt(&replica_name("notes")).await.unwrap().is_none().then_some(())
    })
    .await;
    eventually("the created object is pruned", || async {
        env.spoke_get(&config_maps(), Some("team-a"), "note").await.is_none().then_some(())
    })
    .await;
    assert!(env.spoke_get(&config_maps(), Some("team-c"), "note").await.is_some(), "not created by the policy");
    agent.stop().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dependencies_keep_templates_pending_until_met() {
    let env = Env::start().await;
    let agent = start(&env).await;
    namespace(&env, "prod", json!({})).await;
    let base = config_map(Some("prod"), "base-ready", json!({}));
    put_policy(
        &env,
        "base",
        json!({"policy-templates": [configuration_policy("base", json!([{"complianceType": "musthave", "objectDefinition": base}]), json!({}))]}),
    )
    .await;
    let app = config_map(Some("prod"), "app", json!({"v": "1"}));
    put_policy(
        &env,
        "app",
        json!({
            "remediationAction": "enforce",
            "dependencies": [{"apiVersion": "policy.open-cluster-management.io/v1", "kind": "Policy",
                "name": "base", "namespace": ROOT_NS, "compliance": "Compliant"}],
            "policy-templates": [
                configuration_policy("app", json!([{"complianceType": "musthave", "objectDefinition": app}]), json!({})),
                {
                    "objectDefinition": configuration_policy("later", json!([{"complianceType": "musthave",
                        "objectDefinition": config_map(Some("prod"), "later", json!({}))}]), json!({}))["objectDefinition"],
                    "extraDependencies": [{"apiVersion": "policy.open-cluster-management.io/v1", "kind": "Policy",
                        "name": "missing", "compliance": "Compliant"}],
                    "ignorePending": true,
                },
            ],
        }),
    )
    .await;
    let policy = wait_template(&env, "app", "app", "Pending", "Dependencies were not satisfied").await;
    assert_eq!(
        newest_message(&policy, "app"),
        "Pending; Dependencies were not satisfied: Policy gov.base is NonCompliant (needs Compliant)"
    );
    assert_eq!(policy["status"]["compliant"], "Pending");
    assert!(env.spoke_get(&config_maps(), Some("prod"), "app").await.is_none(), "a pending template is not enforced");

    // The dependency becomes Compliant: the template is evaluated and enforced.
    spoke_create(&env, &config_maps(), base).await;
    wait_template(&env, "base", "base", "Compliant", "found as specified").await;
    let policy = wait_enforced(&env, "app", "app", "configmaps [app] was created successfully in namespace prod").await;
    assert!(env.spoke_get(&config_maps(), Some("prod"), "app").await.is_some());
    // `later` waits on a policy that does not exist, but ignorePending keeps it out of the aggregate.
    let later = detail(&policy, "later").unwrap();
    assert_eq!(later["compliant"], "Pending");
    assert!(newest_message(&policy, "later").contains("Policy gov.missing is not found"), "{later}");
    let policy = eventually("the aggregate ignores the pending template", || async {
        let p = serde_json::to_value(policy_api(&env).get(&replica_name("app")).await.unwrap()).unwrap();
        (p["status"]["compliant"] == "Compliant").then_some(p)
    })
    .await;
    assert!(env.spoke_get(&config_maps(), Some("prod"), "later").await.is_none());
    assert_eq!(policy["status"]["compliant"], "Compliant");
    agent.stop().await.unwrap();
    env.stop().await;
}

fn artifacts() -> &'static Path {
    flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}"))
}

/// Uploads a built plugin to the hub's blob store and names it with a WasmPlugin of world
/// policy-check (the hub writes its digest into the replicas); its digest.
async fn push_plugin(env: &Env, file: &str, name: &str) -> String {
    let component = std::fs::read(artifacts().join(format!("{}.wasm", file.replace('-', "_")))).expect("built plugin");
    let digest = digest_of(&component);
    let put = http::Request::put(format!("/blobs/{digest}")).body(component).unwrap();
    env.admin.request_text(put).await.expect("upload as the admin");
    let plugins = resource("flotilla.dev", "v1alpha1", "WasmPlugin", "wasmplugins");
    let plugin: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "flotilla.dev/v1alpha1", "kind": "WasmPlugin", "metadata": {"name": name},
        "spec": {"world": "policy-check", "version": "0.1.0", "digest": digest},
    }))
    .unwrap();
    Api::<DynamicObject>::all_with(env.admin.clone(), &plugins).create(&PostParams::default(), &plugin).await.unwrap();
    digest
}

/// A WasmPolicy template; the hub fills in the plugin's digest.
fn wasm_policy(name: &str, plugin: &str, configuration: Value, kinds: Value) -> Value {
    let plugin_ref = json!({"name": plugin, "configuration": configuration});
    json!({"objectDefinition": {
        "apiVersion": "flotilla.dev/v1alpha1",
        "kind": "WasmPolicy",
        "metadata": {"name": name},
        "spec": {"remediationAction": "inform", "severity": "low", "plugin": plugin_ref, "kinds": kinds},
    }})
}

#[tokio::test(flavor = "multi_thread")]
async fn wasm_policy_informs_then_enforces() {
    let env = Env::start().await;
    let agent = start(&env).await;
    namespace(&env, "shop", json!({})).await;
    spoke_create(&env, &config_maps(), config_map(Some("shop"), "a", json!({}))).await;
    push_plugin(&env, "required-labels", "required-labels").await;
    let kinds = json!([{"apiVersion": "v1", "kind": "ConfigMap"}]);
    let configuration = json!({"kinds": kinds, "namespace": "shop", "labels": {"team": "payments"}});
    put_policy(
        &env,
        "labels",
        json!({"policy-templates": [wasm_policy("labels", "required-labels", configuration, kinds.clone())]}),
    )
    .await;
    let policy = wait_template(&env, "labels", "labels", "NonCompliant", "ConfigMap shop/a lacks label(s) team").await;
    assert_eq!(detail(&policy, "labels").unwrap()["templateMeta"]["kind"], "WasmPolicy");

    // Fixed by hand.
    let patch = json!({"metadata": {"labels": {"team": "web"}}});
    env.spoke_api(&config_maps(), Some("shop"))
        .patch("a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_template(&env, "labels", "labels", "Compliant", "carry the required labels").await;

    // A new violation, enforced: the plugin's merge patch is applied.
    spoke_create(&env, &config_maps(), config_map(Some("shop"), "b", json!({"k": "v"}))).await;
    wait_template(&env, "labels", "labels", "NonCompliant", "ConfigMap shop/b lacks label(s) team").await;
    set_remediation(&env, "labels", "enforce").await;
    let policy = wait_enforced(&env, "labels", "labels", "enforced: ConfigMap shop/b patched").await;
    let b = env.spoke_get(&config_maps(), Some("shop"), "b").await.unwrap();
    assert_eq!(b["metadata"]["labels"]["team"], "payments", "{policy}");
    assert_eq!(b["data"], json!({"k": "v"}), "the merge patch leaves the rest");

    // A template whose plugin the hub does not have.
    put_policy(
        &env,
        "absent",
        json!({"policy-templates": [wasm_policy("absent", "no-such-plugin", json!({}), json!([]))]}),
    )
    .await;
    wait_template(&env, "absent", "absent", "NonCompliant", "plugin no-such-plugin is not available on the hub").await;
    agent.stop().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn misbehaving_plugins_are_non_compliant_with_the_reason_and_the_agent_goes_on() {
    let env = Env::start().await;
    let agent = start(&env).await;
    namespace(&env, "prod", json!({})).await;
    push_plugin(&env, "hostile-policy-misbehaviour", "policy-misbehaviour").await;
    let kinds = json!([{"apiVersion": "v1", "kind": "ConfigMap"}, {"apiVersion": "v1", "kind": "Secret"}]);
    for mode in ["trap", "loop", "undeclared-read"] {
        put_policy(
            &env,
            mode,
            json!({"policy-templates": [wasm_policy(mode, "policy-misbehaviour", json!(mode), kinds.clone())]}),
        )
        .await;
    }
    wait_template(&env, "trap", "trap", "NonCompliant", "plugin policy-misbehaviour failed (PluginTrapped)").await;
    let policy = wait_template(&env, "trap", "trap", "NonCompliant", "hostile policy check gives up on c1").await;
    assert_eq!(policy["status"]["compliant"], "NonCompliant");
    wait_template(&env, "loop", "loop", "NonCompliant", "plugin policy-misbehaviour failed (PluginTimeout)").await;
    // The plugin swallowed the refusal and said Compliant; the agent reports it anyway. The
    // policy allows Secrets, but the plugin did not declare them, so the host refuses.
    let policy =
        wait_template(&env, "undeclared-read", "undeclared-read", "NonCompliant", "refused by the host: v1 Secret")
            .await;
    assert!(newest_message(&policy, "undeclared-read").contains("the plugin said: nothing to see"), "{policy}");

    // The agent goes on with other policies while the hostile ones keep failing.
    put_policy(
        &env,
        "healthy",
        json!({"policy-templates": [configuration_policy("healthy", json!([{"complianceType": "mustnothave",
            "objectDefinition": config_map(Some("prod"), "nothing", json!({}))}]), json!({}))]}),
    )
    .await;
    wait_template(
        &env,
        "healthy",
        "healthy",
        "Compliant",
        "configmaps [nothing] missing as expected in namespace prod",
    )
    .await;
    let policy = wait_template(&env, "loop", "loop", "NonCompliant", "PluginTimeout").await;
    assert_eq!(policy["status"]["compliant"], "NonCompliant");
    agent.stop().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_are_read_through_the_policy_kinds_only() {
    // pod-security declares Pods; a policy that does not allow Pods narrows its reads to
    // nothing, and the plugin's own read is refused and reported.
    let env = Env::start().await;
    let agent = start(&env).await;
    namespace(&env, "apps", json!({})).await;
    spoke_create(
        &env,
        &pods(),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "apps", "labels": {"team": "a"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": true}}]}}),
    )
    .await;
    push_plugin(&env, "pod-security", "pod-security").await;
    put_policy(
        &env,
        "pods",
        json!({"policy-templates": [wasm_policy("pods", "pod-security", json!({"namespace": "apps"}),
            json!([{"apiVersion": "v1", "kind": "Pod"}]))]}),
    )
    .await;
    wait_template(
        &env,
        "pods",
        "pods",
        "NonCompliant",
        "Pod apps/web: privileged container(s) c; lacks label(s) cost-center",
    )
    .await;
    put_policy(
        &env,
        "narrowed",
        json!({"policy-templates": [wasm_policy("narrowed", "pod-security", json!({}),
            json!([{"apiVersion": "v1", "kind": "ConfigMap"}]))]}),
    )
    .await;
    wait_template(&env, "narrowed", "narrowed", "NonCompliant", "refused by the host: v1 Pod").await;
    agent.stop().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn enforcement_goes_on_from_the_local_copies_while_the_hub_is_down() {
    let mut env = Env::start().await;
    hub_setup(&env).await;
    let opts = options(&env);
    let agent = joined_agent(&env, opts.clone()).await;
    namespace(&env, "prod", json!({})).await;
    let wanted = config_map(Some("prod"), "steady", json!({"a": "1"}));
    put_policy(
        &env,
        "steady",
        json!({"remediationAction": "enforce", "policy-templates": [configuration_policy("steady",
            json!([{"complianceType": "musthave", "objectDefinition": wanted}]), json!({}))]}),
    )
    .await;
    wait_enforced(&env, "steady", "steady", "configmaps [steady] was created successfully in namespace prod").await;

    // The hub goes away, and then the agent restarts: it still enforces what it was told.
    env.stop_hub().await;
    agent.stop().await.expect("a clean stop");
    let mut opts = opts;
    opts.token = None;
    let agent = RunningAgent::start(opts);
    spoke_delete(&env, &config_maps(), "prod", "steady").await;
    eventually("recreation without the hub", || async {
        env.spoke_get(&config_maps(), Some("prod"), "steady").await.filter(|cm| cm["data"]["a"] == "1")
    })
    .await;

    // The hub comes back: what the agent does is reported again.
    env.restart_hub().await;
    spoke_replace_data(&env, "prod", "steady", json!({"a": "2"})).await;
    let policy =
        wait_enforced(&env, "steady", "steady", "configmaps [steady] was updated successfully in namespace prod").await;
    assert_eq!(policy["status"]["compliant"], "Compliant");
    agent.stop().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_template_prunes_what_it_managed_with_delete_all() {
    let env = Env::start().await;
    let agent = start(&env).await;
    namespace(&env, "prod", json!({})).await;
    // Found, not created: DeleteAll prunes it all the same; `keep` has no prune behaviour.
    spoke_create(&env, &config_maps(), config_map(Some("prod"), "drop", json!({"a": "1"}))).await;
    let keep = configuration_policy(
        "keep",
        json!([{"complianceType": "musthave", "objectDefinition": config_map(Some("prod"), "keep", json!({}))}]),
        json!({}),
    );
    let drop = configuration_policy(
        "drop",
        json!([{"complianceType": "musthave", "objectDefinition": config_map(Some("prod"), "drop", json!({"a": "1"}))}]),
        json!({"pruneObjectBehavior": "DeleteAll"}),
    );
    put_policy(&env, "two", json!({"remediationAction": "enforce", "policy-templates": [keep.clone(), drop]})).await;
    wait_template(&env, "two", "drop", "Compliant", "configmaps [drop] found as specified in namespace prod").await;
    wait_enforced(&env, "two", "keep", "configmaps [keep] was created successfully in namespace prod").await;

    let patch = json!({"spec": {"policy-templates": [keep]}});
    root_api(&env).patch("two", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    eventually("the removed template's object is pruned", || async {
        env.spoke_get(&config_maps(), Some("prod"), "drop").await.is_none().then_some(())
    })
    .await;
    let policy = eventually("the status forgets the removed template", || async {
        let p = serde_json::to_value(policy_api(&env).get(&replica_name("two")).await.unwrap()).unwrap();
        detail(&p, "drop").is_none().then_some(p)
    })
    .await;
    assert_eq!(policy["status"]["compliant"], "Compliant");
    assert!(env.spoke_get(&config_maps(), Some("prod"), "keep").await.is_some(), "no prune behaviour: kept");
    agent.stop().await.unwrap();
    env.stop().await;
}

/// A `watch` template is evaluated again on change of what it reads on the spoke, not only
/// on the watch period: with a 10-minute period, only the spoke watch can make the replica
/// Compliant within 20 s.
#[tokio::test(flavor = "multi_thread")]
async fn watch_templates_are_evaluated_again_on_spoke_changes() {
    let env = Env::start().await;
    hub_setup(&env).await;
    let mut opts = env.options(CLUSTER);
    opts.policy_watch_period = Duration::from_secs(600);
    let agent = joined_agent(&env, opts).await;
    namespace(&env, "prod", json!({})).await;
    let wanted = config_map(Some("prod"), "watched", json!({"mode": "strict"}));
    put_policy(
        &env,
        "watched",
        json!({"policy-templates": [configuration_policy("cm-watched", json!([{"complianceType": "musthave", "objectDefinition": wanted}]), json!({}))]}),
    )
    .await;
    wait_template(&env, "watched", "cm-watched", "NonCompliant", "not found").await;

    spoke_create(&env, &config_maps(), config_map(Some("prod"), "watched", json!({"mode": "strict"}))).await;
    let replica = replica_name("watched");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let policy = serde_json::to_value(policy_api(&env).get(&replica).await.unwrap()).unwrap();
        if detail(&policy, "cm-watched").is_some_and(|d| d["compliant"] == "Compliant") {
            assert!(newest_message(&policy, "cm-watched").contains("found as specified"), "{policy}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the spoke change was not seen within 20 s; last status: {}",
            policy.get("status").unwrap_or(&Value::Null)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent.stop().await.unwrap();
    env.stop().await;
}
