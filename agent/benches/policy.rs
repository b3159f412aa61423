//! One policy check, side by side in one run: no privileged containers
//! (`securityContext.privileged: true` in any container of a Pod) and the required labels
//! (`team`, `cost-center`), over the same 1,000 Pods (a fixed share violating), as
//!
//! (a) the Rust Wasm policy `plugins/builtin/pod-security` through the real `PluginHost`,
//!     reading the Pods from an in-memory `SpokeReader` (every call instantiates the plugin,
//!     hands it the Pods as JSON and reads its verdict back);
//! (b) the built-in ConfigurationPolicy evaluator (three `mustnothave` object templates:
//!     privileged Pods, Pods without `team`, Pods without `cost-center`, the last two with an
//!     `objectSelector` `DoesNotExist`) through its pure API over the same JSON values;
//! (c) the same rules in Rego through the regorus crate, the Pods set as its input.
//!
//! Before timing, all three must find the same violating Pods. Reports evaluations of the
//! whole 1,000-Pod check per second and the ratios against Wasm. Asserts nothing about time.
//!
//! `cargo bench -p flotilla-agent --bench policy` (builds the plugins with `plugins/build.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_agent::policy::config::{self, ConfigurationPolicy};
use flotilla_plugin_host::{ClusterInfo, FixtureSpoke, HostConfig, Limits, OwnerRef, PluginHost, SpokeReader, World};
use serde_json::{Value, json};

const PODS: usize = 1_000;
/// How long each formulation is timed.
const MEASURE: Duration = Duration::from_secs(3);

const REGO: &str = r#"
package pods

import rego.v1

violations contains name if {
    some pod in input.pods
    some container in pod.spec.containers
    container.securityContext.privileged == true
    name := pod.metadata.name
}

violations contains name if {
    some pod in input.pods
    some label in ["team", "cost-center"]
    not pod.metadata.labels[label]
    name := pod.metadata.name
}
"#;

/// 1,000 Pods in 10 namespaces: every 7th runs a privileged container, every 11th lacks
/// `team`, every 13th lacks `cost-center`.
fn pods() -> Vec<Value> {
    (0..PODS)
        .map(|i| {
            let mut labels = json!({"app": format!("app-{}", i % 37)});
            if i % 11 != 0 {
                labels["team"] = json!(format!("team-{}", i % 5));
            }
            if i % 13 != 0 {
                labels["cost-center"] = json!(format!("cc-{}", i % 3));
            }
            let mut sidecar =
                json!({"name": "proxy", "image": "envoy:1.30", "securityContext": {"runAsNonRoot": true}});
            if i % 7 == 0 {
                sidecar["securityContext"]["privileged"] = json!(true);
            }
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": format!("pod-{i}"), "namespace": format!("ns-{}", i % 10), "labels": labels,
                    "uid": format!("00000000-0000-0000-0000-{i:012}")},
                "spec": {"containers": [
                    {"name": "app", "image": format!("registry.example/app:{}", i % 17),
                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                    sidecar,
                ]},
                "status": {"phase": "Running"},
            })
        })
        .collect()
}

fn expected(pods: &[Value]) -> BTreeSet<String> {
    (0..pods.len()).filter(|i| i % 7 == 0 || i % 11 == 0 || i % 13 == 0).map(|i| format!("pod-{i}")).collect()
}

/// Runs `check` for about [`MEASURE`]; checks per second.
fn rate(mut check: impl FnMut() -> usize, expected: usize) -> (f64, u64) {
    // Warm up (compilation caches, allocator).
    for _ in 0..3 {
        assert_eq!(check(), expected);
    }
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < MEASURE {
        assert_eq!(check(), expected);
        runs += 1;
    }
    (runs as f64 / started.elapsed().as_secs_f64(), runs)
}

fn main() {
    let pods = pods();
    let want = expected(&pods);
    println!("policy check over {PODS} Pods, {} violating (privileged or missing team/cost-center)", want.len());

    // (a) Wasm through the plugin host.
    let dir = std::env::temp_dir().join("flotilla-agent-policy-bench");
    std::fs::create_dir_all(&dir).expect("cache dir");
    let host = PluginHost::new(HostConfig::new(&dir)).expect("host");
    let artifacts = flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(artifacts.join("pod_security.wasm")).expect("built pod-security");
    let plugin = host.load("pod-security", World::PolicyCheck, &bytes).expect("load");
    let prepared = host.prepare(&plugin, r#"{"requiredLabels": ["team", "cost-center"]}"#).expect("configuration");
    let cluster = prepared.project(&ClusterInfo { name: "bench".into(), ..Default::default() });
    let owner = OwnerRef { kind: "Policy".into(), namespace: "bench".into(), name: "default.pod-security".into() };
    let spoke: Arc<dyn SpokeReader> = Arc::new(FixtureSpoke::new(pods.clone()));
    let limits = Limits { host_calls: 10, ..Limits::DEFAULT };
    let wasm_check = || -> BTreeSet<String> {
        let r = host.policy_check(&prepared, &owner, &cluster, spoke.clone(), &limits).expect("check");
        r.violations.iter().filter_map(|v| v.object.as_ref()).map(|o| o.name.clone()).collect()
    };

    // (b) The built-in ConfigurationPolicy.
    let policy = ConfigurationPolicy::parse(
        &json!({
            "apiVersion": "policy.open-cluster-management.io/v1",
            "kind": "ConfigurationPolicy",
            "metadata": {"name": "pod-security"},
            "spec": {"remediationAction": "inform", "severity": "high", "object-templates": [
                {"complianceType": "mustnothave", "objectDefinition": {"apiVersion": "v1", "kind": "Pod",
                    "spec": {"containers": [{"securityContext": {"privileged": true}}]}}},
                {"complianceType": "mustnothave", "objectDefinition": {"apiVersion": "v1", "kind": "Pod"},
                    "objectSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}},
                {"complianceType": "mustnothave", "objectDefinition": {"apiVersion": "v1", "kind": "Pod"},
                    "objectSelector": {"matchExpressions": [{"key": "cost-center", "operator": "DoesNotExist"}]}},
            ]},
        }),
        "bench",
    )
    .expect("ConfigurationPolicy");
    let config_check = || -> BTreeSet<String> {
        policy
            .object_templates
            .iter()
            .flat_map(|t| {
                let outcome = config::evaluate(t, None, &pods);
                assert_eq!(outcome.compliant, outcome.names.is_empty());
                outcome.names
            })
            .collect()
    };

    // (c) Rego through regorus.
    let mut engine = regorus::Engine::new();
    engine.add_policy("pods.rego".into(), REGO.into()).expect("Rego policy");
    let input = regorus::Value::from_json_str(&json!({"pods": pods}).to_string()).expect("input");
    let mut rego_check = || -> BTreeSet<String> {
        engine.set_input(input.clone());
        let result = engine.eval_rule("data.pods.violations".into()).expect("evaluation");
        let json: Value = serde_json::from_str(&result.to_json_str().expect("result as JSON")).expect("JSON");
        json.as_array().expect("a set").iter().filter_map(Value::as_str).map(str::to_string).collect()
    };

    // The same answer from all three before any timing.
    let (a, b, c) = (wasm_check(), config_check(), rego_check());
    assert_eq!(a, want, "Wasm");
    assert_eq!(b, want, "ConfigurationPolicy");
    assert_eq!(c, want, "Rego");
    println!("all three find the same {} violating Pods\n", want.len());

    let n = want.len();
    let (wasm, wasm_runs) = rate(|| wasm_check().len(), n);
    let (builtin, builtin_runs) = rate(|| config_check().len(), n);
    let (rego, rego_runs) = rate(|| rego_check().len(), n);
    println!("{:<44} {:>12} {:>10} {:>12} {:>10}", "formulation", "checks/s", "ms/check", "vs Wasm", "runs");
    for (name, per_second, runs) in [
        ("(a) Wasm plugin (pod-security, PluginHost)", wasm, wasm_runs),
        ("(b) built-in ConfigurationPolicy", builtin, builtin_runs),
        ("(c) Rego (regorus)", rego, rego_runs),
    ] {
        println!("{name:<44} {per_second:>12.1} {:>10.3} {:>11.2}x {runs:>10}", 1000.0 / per_second, per_second / wasm);
    }
    println!("\n(one check = all {PODS} Pods; Pods/s = checks/s x {PODS})");
}
