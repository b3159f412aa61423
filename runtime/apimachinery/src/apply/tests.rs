use serde_json::{Value, json};

use super::*;
use crate::merge_schema::{AtomicLists, ListType};

const T1: &str = "2026-01-01T00:00:01Z";
const T2: &str = "2026-01-01T00:00:02Z";
const T3: &str = "2026-01-01T00:00:03Z";
const T4: &str = "2026-01-01T00:00:04Z";

/// The list and map semantics of apps/v1 Deployments that the tests touch.
struct Apps;

impl MergeStrategy for Apps {
    fn list_type(&self, path: &[&str]) -> ListType {
        match path {
            [.., "containers" | "env" | "volumes"] => ListType::Map(vec!["name".to_string()]),
            [.., "ports"] => ListType::Map(vec!["containerPort".to_string(), "protocol".to_string()]),
            [.., "args2"] => ListType::Set,
            _ => ListType::Atomic,
        }
    }

    fn map_is_atomic(&self, path: &[&str]) -> bool {
        path == ["spec", "selector"]
    }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": image}]},
            },
        },
    })
}

/// The stored object after a create by `manager` (what the API server does).
fn created(obj: Value, manager: &str) -> Value {
    let mut obj = obj;
    obj["metadata"]["uid"] = json!("u-1");
    obj["metadata"]["resourceVersion"] = json!("1");
    record_update(None, &mut obj, manager, None, &Apps, "apps/v1", T1);
    obj
}

fn entries(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn fields_of(obj: &Value, manager: &str, operation: &str) -> FieldSet {
    entry(obj, manager, operation)
        .map(|e| FieldSet::from_fields_v1(&e["fieldsV1"]).expect("valid FieldsV1"))
        .unwrap_or_default()
}

fn owns(obj: &Value, manager: &str, operation: &str, path: &[&str]) -> bool {
    fields_of(obj, manager, operation).contains(&FieldPath::fields(path).0)
}

fn container_path(name: &str, field: &str) -> Vec<PathElement> {
    let mut path = FieldPath::fields(&["spec", "template", "spec", "containers"]).0;
    path.push(PathElement::key([("name", &json!(name))]));
    if !field.is_empty() {
        path.push(PathElement::Field(field.to_string()));
    }
    path
}

fn ssa(live: Option<&Value>, config: &Value, manager: &str, force: bool, now: &str) -> Result<Value, ApplyConflicts> {
    apply(live, config, manager, force, &Apps, "apps/v1", now)
}

#[test]
fn fields_v1_round_trip() {
    let fields = json!({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}},
    });
    let set = FieldSet::from_fields_v1(&fields).expect("valid");
    assert_eq!(set.to_fields_v1(), fields);
    let paths: Vec<String> = set.paths().iter().map(FieldPath::to_string).collect();
    assert_eq!(
        paths,
        [".metadata.labels.app", ".spec.containers[name=\"web\"]", ".spec.containers[name=\"web\"].image"]
    );
    assert!(set.contains(&container_path_at(&["spec", "containers"], "web", "image")));
    assert!(!set.contains(&FieldPath::fields(&["spec"]).0));
}

fn container_path_at(base: &[&str], name: &str, field: &str) -> Vec<PathElement> {
    let mut path = FieldPath::fields(base).0;
    path.push(PathElement::key([("name", &json!(name))]));
    path.push(PathElement::Field(field.to_string()));
    path
}

#[test]
fn fields_v1_serialization_order_and_markers() {
    let mut set = FieldSet::new();
    for path in [&["spec", "b"][..], &["spec", "a"], &["metadata", "labels"], &["metadata", "labels", "x"]] {
        set.insert(&FieldPath::fields(path).0);
    }
    let mut ports = FieldPath::fields(&["spec", "ports"]).0;
    ports.push(PathElement::key([("protocol", &json!("TCP")), ("containerPort", &json!(80))]));
    set.insert(&ports);
    let mut finalizer = FieldPath::fields(&["metadata", "finalizers"]).0;
    finalizer.push(PathElement::value(&json!("a")));
    set.insert(&finalizer);
    let text = set.to_fields_v1().to_string();
    assert_eq!(
        text,
        r#"{"f:metadata":{"f:finalizers":{"v:\"a\"":{}},"f:labels":{".":{},"f:x":{}}},"f:spec":{"f:a":{},"f:b":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{}}}}"#
    );
}

#[test]
fn path_elements_parse_and_print() {
    // (FieldsV1 key, canonical key, message form)
    let cases = [
        ("f:name", "f:name", ".name"),
        (
            "f:kubectl.kubernetes.io/last-applied-configuration",
            "f:kubectl.kubernetes.io/last-applied-configuration",
            ".kubectl.kubernetes.io/last-applied-configuration",
        ),
        (r#"k:{"name":"web"}"#, r#"k:{"name":"web"}"#, r#"[name="web"]"#),
        (
            r#"k:{"protocol":"TCP", "containerPort":80}"#,
            r#"k:{"containerPort":80,"protocol":"TCP"}"#,
            r#"[containerPort=80,protocol="TCP"]"#,
        ),
        (r#"v:"kubernetes""#, r#"v:"kubernetes""#, r#"[="kubernetes"]"#),
        ("v:3", "v:3", "[=3]"),
        ("i:2", "i:2", "[2]"),
    ];
    for (key, canonical, shown) in cases {
        let pe = PathElement::from_fields_v1_key(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(pe.to_fields_v1_key(), canonical, "{key}");
        assert_eq!(pe.to_string(), shown, "{key}");
    }
    for bad in ["name", "x:y", "k:[1]", "k:{", "i:-1", "v:"] {
        assert!(PathElement::from_fields_v1_key(bad).is_err(), "{bad} must not parse");
    }
    assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
    assert!(FieldSet::from_fields_v1(&json!([])).is_err());
}

fn set_of(fields: Value) -> FieldSet {
    FieldSet::from_fields_v1(&fields).expect("valid FieldsV1")
}

#[test]
fn field_set_operations() {
    let a = set_of(json!({"f:spec": {"f:a": {}, "f:b": {}, "f:m": {".": {}, "f:x": {}}}}));
    let b = set_of(json!({"f:spec": {"f:b": {}, "f:c": {}, "f:m": {"f:x": {}}}}));
    // (operation, expected)
    let cases = [
        (a.union(&b), json!({"f:spec": {"f:a": {}, "f:b": {}, "f:c": {}, "f:m": {".": {}, "f:x": {}}}})),
        (a.difference(&b), json!({"f:spec": {"f:a": {}, "f:m": {}}})),
        (b.difference(&a), json!({"f:spec": {"f:c": {}}})),
        (a.intersection(&b), json!({"f:spec": {"f:b": {}, "f:m": {"f:x": {}}}})),
        (a.difference(&a), json!({})),
        (a.intersection(&FieldSet::new()), json!({})),
        (FieldSet::new().union(&b), b.to_fields_v1()),
    ];
    for (i, (result, expected)) in cases.into_iter().enumerate() {
        assert_eq!(result.to_fields_v1(), expected, "case {i}");
    }
    assert!(a.difference(&a).is_empty());
    // Owning a parent does not remove owned children, nor the reverse.
    let parent = set_of(json!({"f:spec": {}}));
    let child = set_of(json!({"f:spec": {"f:x": {}}}));
    assert_eq!(child.difference(&parent), child);
    assert_eq!(parent.difference(&child), parent);
}

#[test]
fn applied_field_set_matches_kubernetes() {
    let config = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "labels": {"app": "nginx"}, "annotations": {}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.25",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "args": ["-g", "daemon off;"],
                        "env": [],
                    }],
                    "nodeSelector": null,
                },
            },
        },
    });
    let set = applied_fields(&config, &Apps);
    assert_eq!(
        set.to_fields_v1(),
        json!({
            "f:metadata": {"f:annotations": {}, "f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {
                        "f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {},
                            "f:args": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}, "f:protocol": {},
                            }},
                        }},
                        "f:nodeSelector": {},
                    },
                },
            },
        })
    );
}

#[test]
fn create_records_every_field_for_the_creator() {
    let obj = created(deployment(2, "nginx:1.25"), "kubectl-create");
    let all = entries(&obj);
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0],
        json!({
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    ".": {},
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        ".": {},
                        "f:metadata": {".": {}, "f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {
                            ".": {},
                            "f:containers": {".": {}, "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}},
                        },
                    },
                },
            },
        })
    );
    // Server-owned metadata is never owned.
    assert!(!owns(&obj, "kubectl-create", "Update", &["metadata", "uid"]));
    assert!(!owns(&obj, "kubectl-create", "Update", &["metadata", "name"]));
    assert!(!owns(&obj, "kubectl-create", "Update", &["apiVersion"]));
}

#[test]
fn server_side_apply_after_create_conflicts_then_force_moves_ownership() {
    let live = created(deployment(2, "nginx:1.25"), "kubectl-client-side-apply");

    // Same values: no conflict, the fields are shared.
    let shared = ssa(Some(&live), &deployment(2, "nginx:1.25"), "kubectl", false, T2).expect("no conflict");
    assert!(owns(&shared, "kubectl", "Apply", &["spec", "replicas"]));
    assert!(owns(&shared, "kubectl-client-side-apply", "Update", &["spec", "replicas"]));

    // A changed field owned by the other manager: conflict.
    let err = ssa(Some(&shared), &deployment(3, "nginx:1.25"), "kubectl", false, T3).expect_err("conflict");
    assert_eq!(
        err.conflicts,
        vec![ApplyConflict {
            manager: "kubectl-client-side-apply".into(),
            operation: Operation::Update,
            subresource: None,
            api_version: "apps/v1".into(),
            field: ".spec.replicas".into(),
        }]
    );
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );

    // --force-conflicts: the value changes and ownership moves.
    let forced = ssa(Some(&shared), &deployment(3, "nginx:1.25"), "kubectl", true, T3).expect("forced");
    assert_eq!(forced["spec"]["replicas"], 3);
    assert!(owns(&forced, "kubectl", "Apply", &["spec", "replicas"]));
    assert!(!owns(&forced, "kubectl-client-side-apply", "Update", &["spec", "replicas"]));
    // Fields with unchanged values stay shared.
    assert!(fields_of(&forced, "kubectl-client-side-apply", "Update").contains(&container_path("nginx", "image")));
    // Server-owned metadata survives.
    assert_eq!(forced["metadata"]["uid"], "u-1");
    assert_eq!(forced["metadata"]["resourceVersion"], "1");
}

#[test]
fn conflict_error_renders_as_kubernetes_status() {
    let live = created(deployment(2, "nginx:1.25"), "kubectl-client-side-apply");
    let err = ssa(Some(&live), &deployment(3, "nginx:1.25"), "kubectl", false, T2).expect_err("conflict");
    let status = err.to_api_error("deployments.apps", "nginx").to_status();
    assert_eq!(status["code"], 409);
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    assert_eq!(
        status["details"]["causes"],
        json!([{
            "reason": "FieldManagerConflict",
            "message": "conflict with \"kubectl-client-side-apply\" using apps/v1",
            "field": ".spec.replicas",
        }])
    );
    assert_eq!(status["details"]["name"], "nginx");
    assert_eq!(status["details"]["group"], "apps");
}

#[test]
fn several_conflicts_are_grouped_by_manager() {
    let conflicts = ApplyConflicts {
        conflicts: vec![
            ApplyConflict {
                manager: "a".into(),
                operation: Operation::Apply,
                subresource: None,
                api_version: "v1".into(),
                field: ".spec.x".into(),
            },
            ApplyConflict {
                manager: "a".into(),
                operation: Operation::Apply,
                subresource: None,
                api_version: "v1".into(),
                field: ".spec.y".into(),
            },
            ApplyConflict {
                manager: "b".into(),
                operation: Operation::Update,
                subresource: Some("status".into()),
                api_version: "v1".into(),
                field: ".status.z".into(),
            },
        ],
    };
    assert_eq!(
        conflicts.message(),
        "Apply failed with 3 conflicts: conflicts with \"a\":\n- .spec.x\n- .spec.y\nconflicts with \"b\" with subresource \"status\" using v1:\n- .status.z"
    );
    assert_eq!(conflicts.to_api_error("configmaps", "x").causes.len(), 3);
    assert_eq!(conflicts.to_api_error("configmaps", "x").group, "");
}

#[test]
fn appliers_share_equal_values_and_removal_respects_co_owners() {
    let base = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let with = |data: Value| {
        let mut c = base.clone();
        c["data"] = data;
        c
    };
    let apply_cm = |live: Option<&Value>, config: &Value, manager: &str, force: bool, now: &str| {
        apply(live, config, manager, force, &AtomicLists, "v1", now)
    };
    let a1 = apply_cm(None, &with(json!({"x": "1", "y": "1"})), "a", false, T1).expect("create");
    let b1 = apply_cm(Some(&a1), &with(json!({"x": "1"})), "b", false, T2).expect("same value: shared");
    assert!(owns(&b1, "a", "Apply", &["data", "x"]) && owns(&b1, "b", "Apply", &["data", "x"]));

    // Different value: conflict with the other applier (no "using" for appliers).
    let err = apply_cm(Some(&b1), &with(json!({"x": "2"})), "b", false, T3).expect_err("conflict");
    assert_eq!(err.message(), "Apply failed with 1 conflict: conflict with \"a\": .data.x");

    // a stops applying x and y: y goes, x stays because b owns it too.
    let a2 = apply_cm(Some(&b1), &base, "a", false, T3).expect("no conflict");
    assert_eq!(a2["data"], json!({"x": "1"}));
    assert!(entry(&a2, "a", "Apply").is_none(), "an entry with nothing left is dropped");
    assert!(owns(&a2, "b", "Apply", &["data", "x"]));

    // b stops applying x: nobody owns it, so it goes, and the emptied map with it.
    let b2 = apply_cm(Some(&a2), &base, "b", false, T4).expect("no conflict");
    assert_eq!(b2.get("data"), None, "{b2}");
    assert!(entries(&b2).is_empty());
    assert_eq!(b2.pointer("/metadata/managedFields"), None);
    assert_eq!(b2["metadata"]["name"], "c");
}

#[test]
fn dropping_a_field_from_the_config_removes_it_unless_an_updater_owns_it() {
    let config = |labels: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": labels}, "data": {"k": "v"}});
    let live = apply(None, &config(json!({"a": "1", "b": "1", "c": "1"})), "mgr", false, &AtomicLists, "v1", T1)
        .expect("create");
    // A controller (Update) changes label c: it takes ownership from the applier.
    let mut updated = live.clone();
    updated["metadata"]["labels"]["c"] = json!("2");
    record_update(Some(&live), &mut updated, "controller", None, &AtomicLists, "v1", T2);
    assert!(!owns(&updated, "mgr", "Apply", &["metadata", "labels", "c"]));
    assert!(owns(&updated, "controller", "Update", &["metadata", "labels", "c"]));

    // The applier drops b and c from its config: b is removed, c stays (not the applier's any more).
    let result =
        apply(Some(&updated), &config(json!({"a": "1"})), "mgr", false, &AtomicLists, "v1", T3).expect("applies");
    assert_eq!(result["metadata"]["labels"], json!({"a": "1", "c": "2"}));
    assert_eq!(result["data"], json!({"k": "v"}));
}

#[test]
fn map_list_items_merge_and_are_owned_per_item() {
    let with_containers = |containers: Value| {
        let mut d = deployment(1, "unused");
        d["spec"]["template"]["spec"]["containers"] = containers;
        d
    };
    let web =
        ssa(None, &with_containers(json!([{"name": "web", "image": "web:1"}])), "team-web", false, T1).expect("create");
    let both =
        ssa(Some(&web), &with_containers(json!([{"name": "sidecar", "image": "envoy:1"}])), "team-mesh", false, T2)
            .expect("no conflict on another item");
    assert_eq!(
        both["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "web:1"}, {"name": "sidecar", "image": "envoy:1"}])
    );
    assert!(fields_of(&both, "team-web", "Apply").contains(&container_path("web", "")));
    assert!(fields_of(&both, "team-web", "Apply").contains(&container_path("web", "image")));
    assert!(fields_of(&both, "team-mesh", "Apply").contains(&container_path("sidecar", "image")));
    assert!(!fields_of(&both, "team-mesh", "Apply").contains(&container_path("web", "image")));

    // Changing another team's container image is a conflict on that item's field.
    let err = ssa(Some(&both), &with_containers(json!([{"name": "web", "image": "web:2"}])), "team-mesh", false, T3)
        .expect_err("conflict");
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"team-web\": .spec.template.spec.containers[name=\"web\"].image"
    );

    // Updating its own item leaves the other alone; dropping its item removes it.
    let updated = ssa(Some(&both), &with_containers(json!([{"name": "web", "image": "web:2"}])), "team-web", false, T3)
        .expect("own item");
    assert_eq!(updated["spec"]["template"]["spec"]["containers"][0]["image"], "web:2");
    assert_eq!(updated["spec"]["template"]["spec"]["containers"][1]["name"], "sidecar");
    let dropped = ssa(Some(&updated), &with_containers(json!([])), "team-web", false, T4).expect("drop item");
    assert_eq!(dropped["spec"]["template"]["spec"]["containers"], json!([{"name": "sidecar", "image": "envoy:1"}]));
}

#[test]
fn status_subresource_updates_do_not_touch_spec_ownership() {
    let live = ssa(None, &deployment(2, "nginx:1.25"), "kubectl", false, T1).expect("create");
    let mut with_status = live.clone();
    with_status["status"] = json!({"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]});
    record_update(Some(&live), &mut with_status, "kube-controller-manager", Some("status"), &Apps, "apps/v1", T2);
    let status_entry = entry(&with_status, "kube-controller-manager", "Update").expect("status entry");
    assert_eq!(status_entry["subresource"], "status");
    assert_eq!(status_entry["fieldsV1"], json!({"f:status": {".": {}, "f:conditions": {}, "f:replicas": {}}}));
    assert_eq!(entry(&with_status, "kubectl", "Apply"), entry(&live, "kubectl", "Apply"));

    // A second status write by the same controller extends the same entry.
    let mut later = with_status.clone();
    later["status"]["readyReplicas"] = json!(2);
    record_update(Some(&with_status), &mut later, "kube-controller-manager", Some("status"), &Apps, "apps/v1", T3);
    assert_eq!(entries(&later).len(), 2);
    assert!(owns(&later, "kube-controller-manager", "Update", &["status", "readyReplicas"]));
    assert!(owns(&later, "kube-controller-manager", "Update", &["status", "replicas"]));
    assert_eq!(entry(&later, "kube-controller-manager", "Update").map(|e| &e["time"]), Some(&json!(T3)));

    // The same manager writing the main resource gets a separate entry.
    let mut main = later.clone();
    main["metadata"]["labels"]["extra"] = json!("1");
    record_update(Some(&later), &mut main, "kube-controller-manager", None, &Apps, "apps/v1", T4);
    let controller_entries: Vec<Value> =
        entries(&main).into_iter().filter(|e| e["manager"] == "kube-controller-manager").collect();
    assert_eq!(controller_entries.len(), 2);
}

#[test]
fn status_apply_records_the_subresource() {
    let live = ssa(None, &deployment(2, "nginx:1.25"), "kubectl", false, T1).expect("create");
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"}, "status": {"replicas": 2}});
    let result =
        apply_to_subresource(Some(&live), &config, "agent", Some("status"), false, &Apps, "apps/v1", T2).expect("ok");
    let status_entry = entry(&result, "agent", "Apply").expect("entry");
    assert_eq!(status_entry["subresource"], "status");
    assert_eq!(status_entry["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
    assert_eq!(result["spec"]["replicas"], 2);
}

#[test]
fn updates_take_ownership_and_removed_fields_leave_every_entry() {
    let live = ssa(None, &deployment(2, "nginx:1.25"), "kubectl", false, T1).expect("create");
    // kubectl edit: change replicas, remove the template labels.
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(5);
    if let Some(meta) = edited["spec"]["template"]["metadata"].as_object_mut() {
        meta.clear();
    }
    record_update(Some(&live), &mut edited, "kubectl-edit", None, &Apps, "apps/v1", T2);
    assert!(owns(&edited, "kubectl-edit", "Update", &["spec", "replicas"]));
    assert!(!owns(&edited, "kubectl", "Apply", &["spec", "replicas"]));
    assert!(!owns(&edited, "kubectl", "Apply", &["spec", "template", "metadata", "labels", "app"]));
    assert!(!owns(&edited, "kubectl-edit", "Update", &["spec", "template", "metadata", "labels", "app"]));
    assert_eq!(entry(&edited, "kubectl-edit", "Update").map(|e| &e["apiVersion"]), Some(&json!("apps/v1")));

    // A write that changes nothing records nothing.
    let mut same = edited.clone();
    record_update(Some(&edited), &mut same, "someone-else", None, &Apps, "apps/v1", T3);
    assert_eq!(same, edited);

    // A manager whose every field is taken loses its entry.
    let mut taken = edited.clone();
    taken["spec"]["replicas"] = json!(6);
    record_update(Some(&edited), &mut taken, "hpa", None, &Apps, "apps/v1", T3);
    assert!(entry(&taken, "kubectl-edit", "Update").is_none());
    assert!(owns(&taken, "hpa", "Update", &["spec", "replicas"]));
}

#[test]
fn client_written_managed_fields_are_honoured() {
    let live = created(deployment(2, "nginx:1.25"), "creator");
    // `[{}]` resets: afterwards only what this request changed is owned.
    let mut reset = live.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    record_update(Some(&live), &mut reset, "resetter", None, &Apps, "apps/v1", T2);
    assert_eq!(reset.pointer("/metadata/managedFields"), None);
    let mut reset_and_change = live.clone();
    reset_and_change["metadata"]["managedFields"] = json!([{}]);
    reset_and_change["spec"]["replicas"] = json!(9);
    record_update(Some(&live), &mut reset_and_change, "resetter", None, &Apps, "apps/v1", T2);
    assert_eq!(entries(&reset_and_change).len(), 1);
    assert_eq!(entries(&reset_and_change)[0]["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));

    // `[]` and a copy of the stored entries keep the stored entries.
    for written in [json!([]), live["metadata"]["managedFields"].clone()] {
        let mut kept = live.clone();
        kept["metadata"]["managedFields"] = written;
        record_update(Some(&live), &mut kept, "x", None, &Apps, "apps/v1", T2);
        assert_eq!(kept["metadata"]["managedFields"], live["metadata"]["managedFields"]);
    }

    // Anything else replaces them.
    let mut replaced = live.clone();
    replaced["metadata"]["managedFields"] = json!([{
        "manager": "restored", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}},
    }]);
    record_update(Some(&live), &mut replaced, "x", None, &Apps, "apps/v1", T2);
    assert_eq!(entries(&replaced).len(), 1);
    assert_eq!(entries(&replaced)[0]["manager"], "restored");
}

#[test]
fn first_apply_to_an_untracked_object_conflicts_with_its_existing_fields() {
    let mut live = deployment(2, "nginx:1.25");
    live["metadata"]["uid"] = json!("u-1");
    let err = ssa(Some(&live), &deployment(3, "nginx:1.25"), "kubectl", false, T2).expect_err("conflict");
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: .spec.replicas"
    );
    let ok = ssa(Some(&live), &deployment(2, "nginx:1.26"), "kubectl", true, T2).expect("forced");
    assert!(owns(&ok, "before-first-apply", "Update", &["spec", "replicas"]));
    assert!(!fields_of(&ok, "before-first-apply", "Update").contains(&container_path("nginx", "image")));
    assert!(fields_of(&ok, "kubectl", "Apply").contains(&container_path("nginx", "image")));
}

#[test]
fn apply_creates_a_missing_object() {
    let mut config = deployment(2, "nginx:1.25");
    config["metadata"]["uid"] = json!("client-made-up");
    config["metadata"]["resourceVersion"] = json!("42");
    config["metadata"]["managedFields"] = json!([{"manager": "forged"}]);
    let obj = ssa(None, &config, "kubectl", false, T1).expect("create");
    assert_eq!(obj["apiVersion"], "apps/v1");
    assert_eq!(obj["kind"], "Deployment");
    assert_eq!(obj["metadata"]["name"], "nginx");
    assert_eq!(obj["metadata"].get("uid"), None);
    assert_eq!(obj["metadata"].get("resourceVersion"), None);
    assert_eq!(obj["spec"], deployment(2, "nginx:1.25")["spec"]);
    let all = entries(&obj);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["manager"], "kubectl");
    assert_eq!(all[0]["operation"], "Apply");
    assert_eq!(all[0]["time"], T1);
    assert_eq!(all[0].get("subresource"), None);
    let keys: Vec<&String> = all[0].as_object().map(|m| m.keys().collect()).unwrap_or_default();
    assert_eq!(keys, ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]);
}

#[test]
fn set_lists_union_between_appliers() {
    let cm = |finalizers: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": finalizers}});
    let run = |live: Option<&Value>, config: &Value, manager: &str| {
        apply(live, config, manager, false, &AtomicLists, "v1", T1).expect("no conflict")
    };
    let a = run(None, &cm(json!(["a.io/x"])), "a");
    let b = run(Some(&a), &cm(json!(["b.io/y"])), "b");
    assert_eq!(b["metadata"]["finalizers"], json!(["a.io/x", "b.io/y"]));
    let a_fields = fields_of(&b, "a", "Apply").to_fields_v1();
    assert_eq!(a_fields, json!({"f:metadata": {"f:finalizers": {"v:\"a.io/x\"": {}}}}));
    // a removes its finalizer; b's stays.
    let a2 = run(Some(&b), &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}), "a");
    assert_eq!(a2["metadata"]["finalizers"], json!(["b.io/y"]));
}

#[test]
fn null_atomic_and_scalar_values() {
    let live = ssa(None, &deployment(2, "nginx:1.25"), "kubectl", false, T1).expect("create");
    // The selector is an atomic map: replaced whole, owned as one field.
    let mut config = deployment(2, "nginx:1.25");
    config["spec"]["selector"] = json!({"matchLabels": {"tier": "web"}});
    config["spec"]["paused"] = Value::Null;
    let result = ssa(Some(&live), &config, "kubectl", false, T2).expect("own fields");
    assert_eq!(result["spec"]["selector"], json!({"matchLabels": {"tier": "web"}}));
    assert!(owns(&result, "kubectl", "Apply", &["spec", "selector"]));
    assert!(!owns(&result, "kubectl", "Apply", &["spec", "selector", "matchLabels"]));
    // null removes the field but the applier owns it.
    assert_eq!(result["spec"].get("paused"), None);
    assert!(owns(&result, "kubectl", "Apply", &["spec", "paused"]));
}

#[test]
fn ssa_list_merge_order() {
    struct Sets;
    impl MergeStrategy for Sets {
        fn list_type(&self, _path: &[&str]) -> ListType {
            ListType::Set
        }
    }
    // (live list, applied list, merged list)
    let cases = [
        (json!(["a", "b", "c"]), json!(["d"]), json!(["a", "b", "c", "d"])),
        (json!(["a", "b"]), json!(["b", "a"]), json!(["b", "a"])),
        (json!(["a", "b", "c"]), json!(["c", "a"]), json!(["b", "c", "a"])),
        (json!(["a", "x", "b"]), json!(["b", "y", "a"]), json!(["x", "b", "y", "a"])),
        (json!([]), json!(["a", "a"]), json!(["a"])),
        (json!(["a", "a", "b"]), json!(["c"]), json!(["a", "a", "b", "c"])),
        (json!(["a", "a", "b"]), json!(["a"]), json!(["a", "b"])),
    ];
    let walker = walk::Walker::new(&Sets);
    for (live, config, expected) in cases {
        let merged = walker.merge(&json!({"l": live}), &json!({"l": config}));
        assert_eq!(merged["l"], expected, "{live} + {config}");
    }
}

#[test]
fn reapplying_the_same_config_keeps_the_entry_time() {
    let live = ssa(None, &deployment(2, "nginx:1.25"), "kubectl", false, T1).expect("create");
    let again = ssa(Some(&live), &deployment(2, "nginx:1.25"), "kubectl", false, T2).expect("no-op");
    assert_eq!(again, live);
    let changed = ssa(Some(&live), &deployment(3, "nginx:1.25"), "kubectl", false, T2).expect("own field");
    assert_eq!(entry(&changed, "kubectl", "Apply").map(|e| &e["time"]), Some(&json!(T2)));
}

#[test]
fn entries_are_sorted_like_kubernetes() {
    let live = ssa(None, &deployment(2, "nginx:1.25"), "z-applier", false, T3).expect("create");
    let mut updated = live.clone();
    updated["metadata"]["labels"]["b"] = json!("1");
    record_update(Some(&live), &mut updated, "late", None, &Apps, "apps/v1", T4);
    let mut older = updated.clone();
    older["metadata"]["labels"]["a"] = json!("1");
    record_update(Some(&updated), &mut older, "early", None, &Apps, "apps/v1", T1);
    let order: Vec<(String, String)> = entries(&older)
        .iter()
        .map(|e| (e["operation"].as_str().unwrap_or("").to_string(), e["manager"].as_str().unwrap_or("").to_string()))
        .collect();
    let expected = [("Apply", "z-applier"), ("Update", "early"), ("Update", "late")];
    assert_eq!(order, expected.map(|(o, m)| (o.to_string(), m.to_string())));
}

#[test]
fn update_entries_are_capped() {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
    for i in 0..13 {
        let before = obj.clone();
        obj["data"][format!("k{i}")] = json!("v");
        let now = format!("2026-01-01T00:00:{i:02}Z");
        record_update(Some(&before), &mut obj, &format!("m{i:02}"), None, &AtomicLists, "v1", &now);
    }
    let all = entries(&obj);
    assert_eq!(all.len(), 10, "{all:#?}");
    let ancient = entry(&obj, "ancient-changes", "Update").expect("bucket");
    let owned = FieldSet::from_fields_v1(&ancient["fieldsV1"]).expect("valid");
    for i in 0..4 {
        assert!(owned.contains(&FieldPath::fields(&["data", &format!("k{i}")]).0), "k{i} in {owned:?}");
    }
    assert!(entry(&obj, "m12", "Update").is_some());
    assert!(entry(&obj, "m00", "Update").is_none());
}

#[test]
fn check_apply_config_table() {
    let ok = deployment(1, "x");
    assert_eq!(check_apply_config(&ok, &Apps), Ok(()));
    let mut no_kind = ok.clone();
    no_kind["kind"] = json!("");
    let mut no_name = ok.clone();
    no_name["metadata"] = json!({});
    let mut managed = ok.clone();
    managed["metadata"]["managedFields"] = json!([]);
    let mut missing_key = ok.clone();
    missing_key["spec"]["template"]["spec"]["containers"] = json!([{"image": "x"}]);
    let mut duplicate = ok.clone();
    duplicate["spec"]["template"]["spec"]["containers"] = json!([{"name": "a"}, {"name": "a"}]);
    let cases = [
        (json!([]), "an applied configuration must be a JSON object"),
        (no_kind, "kind must be set"),
        (no_name, "metadata.name must be set"),
        (managed, "metadata.managedFields must be nil"),
        (
            missing_key,
            ".spec.template.spec.containers: element 0: associative list with keys has an element that omits key field \"name\"",
        ),
        (duplicate, ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"),
    ];
    for (config, expected) in cases {
        assert_eq!(check_apply_config(&config, &Apps), Err(expected.to_string()), "{config}");
    }
}

#[test]
fn decode_drops_unreadable_entries_and_merges_duplicates() {
    let obj = json!({"metadata": {"managedFields": [
        {"manager": "a", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:x": {}}},
        {"manager": "a", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:y": {}}},
        {"manager": "b", "operation": "Delete", "fieldsV1": {}},
        {"manager": "c", "operation": "Update", "fieldsType": "FieldsV2", "fieldsV1": {}},
        {"manager": "d", "operation": "Update", "fieldsV1": {"bad": {}}},
        "junk",
    ]}});
    let decoded = decode_managed_fields(&obj);
    assert_eq!(decoded.len(), 1);
    assert_eq!(decoded[0].fields.to_fields_v1(), json!({"f:x": {}, "f:y": {}}));
}
