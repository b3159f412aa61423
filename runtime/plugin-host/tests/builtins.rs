//! The built-in plugins give the right results on fixtures, through the real host.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use flotilla_plugin_host::*;
use serde_json::{Value, json};

#[test]
fn label_filter_applies_every_requirement() {
    let host = host();
    let config = r#"{
        "labels": [{"key": "region", "operator": "In", "values": ["eu", "us"]},
                   {"key": "decommissioned", "operator": "DoesNotExist"}],
        "claims": [{"key": "platform", "operator": "NotIn", "values": ["Other"]},
                   {"key": "gpu", "operator": "Exists"}]
    }"#;
    let p = prepared(&host, "label-filter", World::PlacementFilter, config);
    assert_eq!(p.reads.labels, ["region", "decommissioned"]);
    assert_eq!(p.reads.claims, ["platform", "gpu"]);
    let fleet = [
        cluster("ok", &[("region", "eu"), ("team", "x")], &[("platform", "AWS"), ("gpu", "a100")]),
        cluster("wrong-region", &[("region", "ap")], &[("gpu", "a100")]),
        cluster("no-region", &[], &[("gpu", "a100")]),
        cluster("retired", &[("region", "us"), ("decommissioned", "true")], &[("gpu", "a100")]),
        cluster("other", &[("region", "us")], &[("platform", "Other"), ("gpu", "a100")]),
        cluster("no-gpu", &[("region", "us")], &[]),
    ];
    let clusters = p.batch(&fleet);
    let keys: Vec<&str> = clusters.labels.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["decommissioned", "region"], "undeclared labels are not passed");
    let r = host.placement_filter(&p, &owner(), &clusters, &Limits::DEFAULT).expect("filter");
    let got: Vec<(bool, Option<&str>)> = (0..fleet.len()).map(|i| (r.keeps(i), r.reason(i))).collect();
    assert_eq!(
        got,
        [
            (true, None),
            (false, Some("label region not in [eu, us]")),
            (false, Some("label region not in [eu, us]")),
            (false, Some("label decommissioned present")),
            (false, Some("claim platform in [Other]")),
            (false, Some("claim gpu missing")),
        ]
    );
    assert_eq!(r.reasons.len(), 4, "each reason once: {:?}", r.reasons);
    assert_eq!(r.requeue_after_ms, None);
}

#[test]
fn capacity_scorer_scores_as_ocm_allocatable_prioritizers() {
    let host = host();
    let p = prepared(
        &host,
        "capacity-scorer",
        World::PlacementScorer,
        r#"{"resources": [{"name": "cpu"}, {"name": "memory"}]}"#,
    );
    assert_eq!(p.reads.resources, ["cpu", "memory"]);
    let with = |name: &str, cpu: Option<i64>, mem: i64| {
        let mut c = cluster(name, &[], &[]);
        if let Some(cpu) = cpu {
            c.resources.insert("cpu".into(), Quantity { capacity_milli: None, allocatable_milli: Some(cpu) });
        }
        c.resources.insert("memory".into(), Quantity { capacity_milli: None, allocatable_milli: Some(mem) });
        c
    };
    let fleet =
        [with("small", Some(2000), 8), with("mid", Some(4000), 8), with("big", Some(6000), 8), with("none", None, 8)];
    let r = host.placement_scorer(&p, &owner(), &p.batch(&fleet), &Limits::DEFAULT).expect("score");
    // cpu: -100, 0, 100 and -100 for a cluster without it; memory: all equal, 100 each.
    assert_eq!(r.scores, [0, 50, 100, 0]);
    let err = host.prepare(&p.plugin, r#"{"resources": []}"#).expect_err("rejected");
    assert_eq!(err, PluginError::ConfigRejected("resources must name at least one resource".into()));
}

/// A spoke with a few Deployments and ConfigMaps, recording what was read.
struct FakeSpoke {
    objects: Vec<(KindRef, Value)>,
    reads: Mutex<Vec<String>>,
}

impl SpokeReader for FakeSpoke {
    fn list(&self, kind: &KindRef, namespace: Option<&str>, _selector: Option<&str>) -> Result<Vec<String>, String> {
        self.reads.lock().expect("lock").push(format!("list {} {:?}", kind.kind, namespace));
        Ok(self
            .objects
            .iter()
            .filter(|(k, o)| k == kind && namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns))
            .map(|(_, o)| o.to_string())
            .collect())
    }

    fn get(&self, kind: &KindRef, _namespace: Option<&str>, name: &str) -> Result<Option<String>, String> {
        Ok(self.objects.iter().find(|(k, o)| k == kind && o["metadata"]["name"] == name).map(|(_, o)| o.to_string()))
    }
}

fn deployment(ns: &str, name: &str, labels: Value) -> (KindRef, Value) {
    (
        KindRef { api_version: "apps/v1".into(), kind: "Deployment".into() },
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": ns, "name": name, "labels": labels}}),
    )
}

#[test]
fn required_labels_reads_declared_kinds_and_proposes_remediation() {
    let host = host();
    let config = r#"{"kinds": [{"apiVersion": "apps/v1", "kind": "Deployment"}], "namespace": "shop",
                     "labels": {"team": null, "cost-center": "unassigned"}}"#;
    let p = prepared(&host, "required-labels", World::PolicyCheck, config);
    assert_eq!(p.reads.kinds, [KindRef { api_version: "apps/v1".into(), kind: "Deployment".into() }]);
    let spoke = Arc::new(FakeSpoke {
        objects: vec![
            deployment("shop", "web", json!({"team": "a", "cost-center": "42"})),
            deployment("shop", "cart", json!({"team": "b"})),
            deployment("other", "ignored", json!({})),
            (KindRef { api_version: "v1".into(), kind: "ConfigMap".into() }, json!({"metadata": {"name": "cm"}})),
        ],
        reads: Mutex::new(vec![]),
    });
    let c = p.project(&cluster("spoke-1", &[], &[]));
    let r = host.policy_check(&p, &owner(), &c, spoke.clone(), &Limits::DEFAULT).expect("check");
    assert_eq!(r.compliance, Compliance::NonCompliant);
    assert_eq!(r.message, "1 of 2 object(s) on spoke-1 lack required labels");
    assert_eq!(r.violations.len(), 1);
    let v = &r.violations[0];
    assert_eq!(v.message, "Deployment shop/cart lacks label(s) cost-center");
    assert_eq!(v.object.as_ref().map(|o| o.name.as_str()), Some("cart"));
    let patch: Value = serde_json::from_str(v.remediation.as_deref().expect("remediation")).expect("json");
    assert_eq!(patch, json!({"metadata": {"labels": {"cost-center": "unassigned"}}}));
    assert_eq!(*spoke.reads.lock().expect("lock"), ["list Deployment Some(\"shop\")"]);

    // A kind outside what may be read cannot be read: the plugin sees the error.
    let narrowed = p.clone().restrict_kinds(&[KindRef { api_version: "v1".into(), kind: "ConfigMap".into() }]);
    assert!(narrowed.reads.kinds.is_empty());
    let err = host.policy_check(&narrowed, &owner(), &c, spoke, &Limits::DEFAULT).expect_err("refused");
    assert_eq!(
        err,
        PluginError::Failed(
            "kind apps/v1 Deployment was not declared in the plugin's reads (validate-config's reads.kinds)".into()
        )
    );
}

fn rc(name: &str, group: u32, status: RolloutStatus, since: Option<i64>) -> RolloutCluster {
    RolloutCluster {
        cluster: Cluster { name: name.into(), labels: vec![], claims: vec![], resources: vec![], fields: None },
        group_index: group,
        group_name: String::new(),
        status,
        last_transition_time: since,
    }
}

#[test]
fn canary_waves_gates_each_stage_on_the_ones_before() {
    use RolloutStatus::*;
    let host = host();
    let config = r#"{"canary": 1, "waves": ["50%", "100%"], "maxFailures": 1,
                     "progressDeadline": "10m", "minSuccessTime": "1m"}"#;
    let p = prepared(&host, "canary-waves", World::RolloutStrategy, config);
    let decide = |now: i64, clusters: &[RolloutCluster]| {
        host.rollout_strategy(&p, &owner(), now, clusters, &Limits::DEFAULT).expect("decide")
    };
    let names = ["a", "b", "c", "d"];
    let min = 60_000;

    // Nothing applied: only the canary goes.
    let all_new: Vec<_> = names.iter().map(|n| rc(n, 0, ToApply, None)).collect();
    let d = decide(0, &all_new);
    assert_eq!(d.proceed, ["a"]);
    assert!(!d.stop);
    assert_eq!(d.message.as_deref(), Some("canary of 3: waiting for 1 of 1 cluster(s)"));

    // The canary succeeded 30 s ago: it soaks until 1 min, the host is asked back then.
    let mut s = all_new.clone();
    s[0] = rc("a", 0, Succeeded, Some(0));
    let d = decide(30_000, &s);
    assert_eq!(d.proceed, ["a"]);
    assert_eq!(d.recheck_after_ms, Some(30_000));

    // Soaked: the first wave (50% = 2 clusters) starts.
    let d = decide(min, &s);
    assert_eq!(d.proceed, ["b"]);

    // b progressing past its 10 min deadline: timed out, one failure, tolerated.
    s[1] = rc("b", 0, Progressing, Some(min));
    let d = decide(min + 10 * min, &s);
    assert_eq!(d.timed_out, ["b"]);
    assert_eq!(d.failed, ["b"]);
    assert!(!d.stop);
    assert_eq!(d.proceed, ["c", "d"], "a timed-out cluster within maxFailures lets the next wave start");

    // A second failure breaches maxFailures 1: stop, only started clusters stay.
    s[2] = rc("c", 1, Failed, Some(12 * min));
    s[3] = rc("d", 1, Progressing, Some(12 * min));
    let d = decide(12 * min + 1, &s);
    assert!(d.stop);
    assert_eq!(d.failed, ["b", "c"]);
    assert_eq!(d.proceed, ["c", "d"]);
    assert_eq!(d.message.as_deref(), Some("stopped: 2 failure(s), more than maxFailures 1"));

    let err = host.prepare(&p.plugin, r#"{"progressDeadline": "soon"}"#).expect_err("rejected");
    assert!(err.to_string().contains("progressDeadline: invalid duration \"soon\""), "{err}");
}

#[test]
fn image_transform_rewrites_per_cluster() {
    let host = host();
    let config =
        r#"{"registryClaim": "registry", "defaultRegistry": "mirror.example.com", "replicasClaim": "replicas"}"#;
    let p = prepared(&host, "image-transform", World::ManifestTransform, config);
    assert_eq!(p.reads.claims, ["registry", "replicas"]);
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "quay.io/acme/web:1.2"}],
        "initContainers": [{"name": "init", "image": "busybox"}]}}}});
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}});
    let manifests = [deploy.to_string(), cm.to_string()];
    let fleet = [
        cluster("eu", &[], &[("registry", "eu.registry.io:5000"), ("replicas", "3")]),
        cluster("plain", &[], &[]),
        cluster("bad", &[], &[("replicas", "many")]),
    ];
    let out = host.manifest_transform(&p, &owner(), &manifests, &p.batch(&fleet), &Limits::DEFAULT).expect("transform");
    let eu = out[0].as_ref().expect("eu");
    assert_eq!(eu[0]["spec"]["template"]["spec"]["containers"][0]["image"], "eu.registry.io:5000/acme/web:1.2");
    assert_eq!(eu[0]["spec"]["template"]["spec"]["initContainers"][0]["image"], "eu.registry.io:5000/busybox");
    assert_eq!(eu[0]["spec"]["replicas"], 3);
    assert_eq!(eu[1], cm, "other kinds pass unchanged");
    let plain = out[1].as_ref().expect("plain");
    assert_eq!(plain[0]["spec"]["template"]["spec"]["containers"][0]["image"], "mirror.example.com/acme/web:1.2");
    assert_eq!(plain[0]["spec"]["replicas"], 1);
    assert_eq!(out[2], Err("claim replicas is \"many\", not a replica count".into()));
}

#[test]
fn metrics_render_in_the_prometheus_text_format() {
    let host = host();
    good_filter_works(&host);
    let text = host.render_prometheus();
    assert!(text.contains("# TYPE flotilla_plugin_calls_total counter"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("flotilla_plugin_calls_total{plugin=\"label-filter\",world=\"placement-filter\""))
        .expect("a line for the plugin");
    let calls: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("value");
    assert_eq!(calls, 3.0, "describe, validate-config and filter: {line}");
    assert!(text.contains("flotilla_plugin_compilations_total "), "{text}");
}
