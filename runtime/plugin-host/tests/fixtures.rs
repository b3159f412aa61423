//! Fixtures through the real host, one per world with a built-in plugin: the input decodes
//! into the host's types, is projected to what the plugin reads, and the result renders as
//! the JSON that fixtures expect and `flotilla plugin run` prints.

mod common;

use common::*;
use flotilla_plugin_host::*;
use serde_json::{Value, json};

fn run(name: &str, world: World, fixture: Value) -> Result<Value, PluginError> {
    let host = host();
    let plugin = load(&host, name, world);
    let fixture = Fixture::from_value(fixture).expect("fixture");
    let outcome = run_fixture(&host, &plugin, &fixture, &Limits::DEFAULT).expect("the input decodes");
    assert_eq!(fixture.check(&outcome), Ok(()), "{outcome:?}");
    outcome
}

#[test]
fn a_filter_fixture_keeps_and_removes_by_name() {
    let result = run(
        "label-filter",
        World::PlacementFilter,
        json!({
            "config": {"claims": [{"key": "platform", "operator": "In", "values": ["AWS"]}]},
            "input": {"clusters": [
                {"name": "a", "claims": {"platform": "AWS"}},
                {"managedCluster": {"metadata": {"name": "b"}, "status": {"clusterClaims": [{"name": "platform", "value": "GCP"}]}}}
            ]},
            "expect": {"kept": ["a"], "removed": {"b": "claim platform not in [AWS]"}}
        }),
    );
    assert!(result.is_ok());
}

#[test]
fn a_scorer_fixture_reads_quantities() {
    run(
        "capacity-scorer",
        World::PlacementScorer,
        json!({
            "config": {"resources": [{"name": "cpu"}]},
            "input": {"clusters": [
                {"name": "small", "resources": {"cpu": {"allocatable": "2"}}},
                {"name": "big", "resources": {"cpu": {"capacity": 8, "allocatable": "6000m"}}}
            ]},
            "expect": {"scores": {"small": -100, "big": 100}}
        }),
    )
    .expect("scores");
}

#[test]
fn a_policy_fixture_lists_the_spoke_objects_it_was_given() {
    run(
        "required-labels",
        World::PolicyCheck,
        json!({
            "config": {"kinds": [{"apiVersion": "apps/v1", "kind": "Deployment"}], "namespace": "shop",
                       "labels": {"team": "unassigned"}},
            "input": {
                "owner": {"kind": "Policy", "namespace": "policies", "name": "team-label"},
                "cluster": {"name": "spoke-1"},
                "objects": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": "shop", "name": "web", "labels": {"team": "a"}}},
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": "shop", "name": "cart"}},
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": "other", "name": "x"}}
                ]
            },
            "expect": {
                "compliance": "NonCompliant",
                "message": "1 of 2 object(s) on spoke-1 lack required labels",
                "violations": [{
                    "object": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "cart"},
                    "message": "Deployment shop/cart lacks label(s) team",
                    "remediation": {"metadata": {"labels": {"team": "unassigned"}}}
                }]
            }
        }),
    )
    .expect("check");
}

#[test]
fn a_rollout_fixture_passes_statuses_and_times() {
    run(
        "canary-waves",
        World::RolloutStrategy,
        json!({
            "config": {"canary": 1, "waves": ["100%"], "minSuccessTime": "1m"},
            "input": {"now": 30000, "clusters": [
                {"name": "a", "status": "Succeeded", "lastTransitionTime": 0},
                {"name": "b", "status": "ToApply"}
            ]},
            "expect": {"proceed": ["a"], "timedOut": [], "failed": [], "stop": false, "recheckAfterMs": 30000,
                       "message": "canary of 2: waiting for 1 of 1 cluster(s)"}
        }),
    )
    .expect("decide");
}

#[test]
fn a_transform_fixture_gives_each_cluster_its_manifests_or_its_reason() {
    run(
        "image-transform",
        World::ManifestTransform,
        json!({
            "config": {"defaultRegistry": "mirror.example.com", "replicasClaim": "replicas"},
            "input": {
                "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}],
                "clusters": [{"name": "ok"}, {"name": "bad", "claims": {"replicas": "many"}}]
            },
            "expect": {"clusters": {
                "ok": {"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}]},
                "bad": {"error": "claim replicas is \"many\", not a replica count"}
            }}
        }),
    )
    .expect("transform");
}

#[test]
fn errors_and_limits_are_outcomes_to_expect() {
    let e = run(
        "hostile-endless-loop",
        World::PlacementFilter,
        json!({
            "limits": {"timeoutMillis": 100},
            "input": {"clusters": [{"name": "a"}]},
            "expect": {"error": "did not finish within its deadline of 100 ms"}
        }),
    )
    .expect_err("a timeout");
    assert_eq!(e.reason(), "PluginTimeout");
    run(
        "label-filter",
        World::PlacementFilter,
        json!({"config": {"selector": {}}, "input": {"clusters": []}, "expect": {"error": "unknown field `selector`"}}),
    )
    .expect_err("rejected");
}

#[test]
fn a_fixture_for_another_world_is_refused_before_the_call() {
    let host = host();
    let plugin = load(&host, "label-filter", World::PlacementFilter);
    let fixture = Fixture::from_value(json!({"input": {"now": 1, "clusters": []}})).expect("fixture");
    let err = run_fixture(&host, &plugin, &fixture, &Limits::DEFAULT).expect_err("not a filter input");
    assert_eq!(err, "input of a placement-filter has no \"now\" (it takes owner, clusters)");
    let prepared = host.prepare(&plugin, "{}").expect("config");
    let rollout = FixtureInput::decode(World::RolloutStrategy, &json!({"now": 1, "clusters": []})).expect("input");
    let Err(err) = rollout.bind(&prepared) else { panic!("a filter cannot take a rollout") };
    assert_eq!(err.to_string(), "plugin label-filter implements placement-filter, not rollout-strategy");
}
