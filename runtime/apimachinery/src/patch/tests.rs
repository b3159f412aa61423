use serde_json::{Value, json};

use super::*;
use crate::merge_schema::AtomicLists;

/// The list semantics of strategicpatch's test type `MergeItem` (by field name,
/// at any depth), plus a few Kubernetes pod fields.
struct TestSchema;

impl MergeStrategy for TestSchema {
    fn list_type(&self, path: &[&str]) -> ListType {
        match path.last().copied() {
            Some("mergingList" | "retainKeysMergingList" | "containers" | "env" | "volumes") => {
                ListType::Map(vec!["name".to_string()])
            }
            Some("ports") => ListType::Map(vec!["containerPort".to_string(), "protocol".to_string()]),
            Some("mergingIntList" | "args2") => ListType::Set,
            _ => ListType::Atomic,
        }
    }
}

fn smp(original: &Value, patch: &Value) -> Result<Value, String> {
    let mut target = original.clone();
    strategic_merge_patch(&mut target, patch, &TestSchema)?;
    Ok(target)
}

/// Fails if any key of the result looks like a patch directive.
fn assert_no_directives(value: &Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                assert!(!k.starts_with('$'), "directive {k} leaked into {value}");
                assert_no_directives(v);
            }
        }
        Value::Array(items) => items.iter().for_each(assert_no_directives),
        _ => {}
    }
}

#[test]
fn strategic_merge_patch_kubernetes_cases() {
    // (description, original, patch, expected) — from strategicpatch's patch_test.go.
    let cases = [
        (
            "unique scalars when merging lists",
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2, 3]}),
            json!({"mergingIntList": [1, 2, 3]}),
        ),
        (
            "delete map from nested map",
            json!({"simpleMap": {"key1": 1, "key2": 1}}),
            json!({"simpleMap": {"$patch": "delete"}}),
            json!({"simpleMap": {}}),
        ),
        (
            "delete all items from merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2}]}),
            json!({"mergingList": [{"$patch": "replace"}]}),
            json!({"mergingList": []}),
        ),
        (
            "merge empty merging lists",
            json!({"mergingList": []}),
            json!({"mergingList": []}),
            json!({"mergingList": []}),
        ),
        ("delete all keys from map", json!({"name": 1, "value": 1}), json!({"$patch": "replace"}), json!({})),
        (
            "add key and delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"other": "a", "$patch": "replace"}),
            json!({"other": "a"}),
        ),
        (
            "delete all duplicate entries in a merging list",
            json!({"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "value": "a"}]}),
        ),
        (
            "retainKeys map can change a field when no retainKeys directive present",
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {"value": "b"}}),
            json!({"retainKeysMap": {"name": "foo", "value": "b"}}),
        ),
        (
            "retainKeys map merge an empty map",
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {}}),
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
        ),
        (
            "retainKeys list can delete a field when no retainKeys directive present",
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
            json!({"retainKeysMergingList": [{"name": "foo", "value": null}]}),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]}),
        ),
        (
            "preserve the order from the patch in a merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]}),
            json!({"mergingList": [
                {"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "value": "b", "other": "x"}
            ]}),
        ),
        (
            "preserve the order from the patch in a merging list 2",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
        ),
        (
            "preserve the order from the patch in a merging int list",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1, 2]}),
            json!({"mergingIntList": [3, 1, 2]}),
        ),
        (
            "preserve the order from the patch in a merging int list 2",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1]}),
            json!({"mergingIntList": [2, 3, 1]}),
        ),
        (
            "$setElementOrder contains item that is not present in the list to be merged",
            json!({"mergingList": [{"name": 1}, {"name": 3}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
            }),
            json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
        ),
        (
            "$setElementOrder contains item that is not present in the int list to be merged",
            json!({"mergingIntList": [1, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
            json!({"mergingIntList": [3, 1]}),
        ),
        (
            "$deleteFromPrimitiveList of nonexistent item in primitive list should not add the item to the list",
            json!({"mergingIntList": [1, 2]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2]}),
        ),
        (
            "$deleteFromPrimitiveList on empty primitive list should not add the item to the list",
            json!({"mergingIntList": null}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": null}),
        ),
        (
            "$deleteFromPrimitiveList on nonexistent primitive list should not add the primitive list",
            json!({"foo": ["bar"]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"foo": ["bar"]}),
        ),
        (
            "$deleteFromPrimitiveList should delete item from a list with merge patch strategy",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [2]}),
            json!({"mergingIntList": [1, 3]}),
        ),
        (
            "$deleteFromPrimitiveList should delete item from a list without merge patch strategy",
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
            json!({"nonMergingIntList": [1, 3]}),
        ),
        ("nil original", json!({}), json!({"name": 1, "value": 1}), json!({"name": 1, "value": 1})),
        (
            "add field and delete field from map",
            json!({"name": 1, "other": "a"}),
            json!({"name": null, "value": 1}),
            json!({"other": "a", "value": 1}),
        ),
        (
            "delete field from nested map",
            json!({"simpleMap": {"key1": 1, "key2": 1, "other": "a"}}),
            json!({"simpleMap": {"key2": null}}),
            json!({"simpleMap": {"key1": 1, "other": "a"}}),
        ),
        (
            "replace list of scalars",
            json!({"nonMergingIntList": [1, 2]}),
            json!({"nonMergingIntList": [2, 3]}),
            json!({"nonMergingIntList": [2, 3]}),
        ),
        (
            "delete all maps from merging list with conflict",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "other": "b"}]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 2, "$patch": "delete"}]}),
            json!({"mergingList": []}),
        ),
        (
            "defined null values should propagate overwrite current fields",
            json!({"name": "a", "other": "a"}),
            json!({"name": 1, "value": 1, "other": null}),
            json!({"name": 1, "value": 1}),
        ),
        (
            "nested patch merge with empty list (two-way)",
            json!({"name": "hi"}),
            json!({"mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]}),
            json!({"name": "hi", "mergingList": [{"name": "hello"}]}),
        ),
        (
            "nested patch merge with empty list (three-way)",
            json!({"name": "hi", "mergingList": [{"name": "hello2"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": "hello"}, {"name": "doesntexist"}],
                "mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}],
            }),
            json!({"name": "hi", "mergingList": [{"name": "hello"}, {"name": "hello2"}]}),
        ),
        (
            "delete items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "delete all duplicate items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "add and delete items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({
                "$setElementOrder/mergingIntList": [1, 2, 4],
                "$deleteFromPrimitiveList/mergingIntList": [3],
                "mergingIntList": [4],
            }),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "merge lists of maps (two-way)",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": 2}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}],
            }),
            json!({"mergingList": [{"name": 4, "value": 4}, {"name": 1}, {"name": 2, "value": 2}, {"name": 3, "value": 3}]}),
        ),
        (
            "merge lists of maps (three-way)",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}],
            }),
            json!({"mergingList": [
                {"name": 4, "value": 4},
                {"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"},
                {"name": 3, "value": 3},
            ]}),
        ),
        (
            "merge lists of maps with conflict",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 3, "other": "b"}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 2, "value": 2}, {"name": 3, "value": 3}],
            }),
            json!({"mergingList": [
                {"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"},
                {"name": 3, "value": 3},
            ]}),
        ),
    ];
    for (description, original, patch, expected) in cases {
        let result = smp(&original, &patch).unwrap_or_else(|e| panic!("{description}: {e}"));
        assert_eq!(result, expected, "{description}");
        assert_no_directives(&result);
    }
}

#[test]
fn strategic_merge_patch_errors() {
    // (description, original, patch, error fragment)
    let cases = [
        (
            "should check if order in $setElementOrder and patch list match",
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
            }),
            "doesn't match",
        ),
        (
            "should check if order in $setElementOrder and patch int list match",
            json!({"mergingIntList": [1, 3, 2]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
            "doesn't match",
        ),
        (
            "missing merge key should error out",
            json!({"mergingList": [{"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"value": "b"}]}),
            "mergingList: map: {\"value\":\"b\"} does not contain declared merge key: name",
        ),
        (
            "delete directive without merge key",
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"$patch": "delete"}]}),
            "does not contain declared merge key: name",
        ),
        (
            "unknown directive in a map",
            json!({"simpleMap": {"a": 1}}),
            json!({"simpleMap": {"$patch": "explode"}}),
            "simpleMap: unknown patch type: \"explode\" in map",
        ),
        (
            "unknown directive in a list",
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"name": 1, "$patch": "explode"}]}),
            "unknown patch type",
        ),
        (
            "retainKeys must list every key the patch sets",
            json!({"retainKeysMap": {"name": "foo"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "name": "foo", "value": "bar"}}),
            "retainKeysMap: invalid patch format of retainKeys",
        ),
        ("retainKeys must be a list", json!({}), json!({"$retainKeys": "name"}), "invalid patch format of retainKeys"),
        (
            "setElementOrder must be a list",
            json!({}),
            json!({"$setElementOrder/mergingList": {}}),
            "invalid patch format of setElementOrder list",
        ),
        (
            "deleteFromPrimitiveList must be a list",
            json!({"mergingIntList": [1]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": 1}),
            "invalid patch format of primitive list",
        ),
        (
            "merging list items must be maps",
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [1]}),
            "mergingList: expected a map, but received a number",
        ),
        ("a patch must be an object", json!({}), json!([1]), "must be a JSON object"),
    ];
    for (description, original, patch, fragment) in cases {
        let mut target = original.clone();
        let err = strategic_merge_patch(&mut target, &patch, &TestSchema).expect_err(description);
        assert!(err.contains(fragment), "{description}: {err}");
        assert_eq!(target, original, "{description}: the target must be left as it was");
    }
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}, "finalizers": ["a"]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "args": ["--a", "--b"]},
                {"name": "sidecar", "image": "envoy:1"},
            ]}},
        },
    })
}

/// A description, a patch, and the values expected at JSON pointers afterwards.
type PayloadCase = (&'static str, Value, Vec<(&'static str, Value)>);

#[test]
fn strategic_merge_patch_kubectl_payloads() {
    let cases: Vec<PayloadCase> = vec![
        (
            "kubectl set image: merge a container by name",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}),
            vec![
                ("/spec/template/spec/containers/0/image", json!("nginx:1.27")),
                ("/spec/template/spec/containers/0/env/1/value", json!("2")),
                ("/spec/template/spec/containers/1/name", json!("sidecar")),
            ],
        ),
        (
            "kubectl apply: add a container and reorder with $setElementOrder",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}, {"name": "cache"}],
                "containers": [{"name": "cache", "image": "redis:7"}],
            }}}}),
            vec![(
                "/spec/template/spec/containers",
                json!([
                    deployment()["spec"]["template"]["spec"]["containers"][0].clone(),
                    {"name": "sidecar", "image": "envoy:1"},
                    {"name": "cache", "image": "redis:7"},
                ]),
            )],
        ),
        (
            "kubectl edit: remove a container and an env var",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [
                    {"name": "web", "$setElementOrder/env": [{"name": "A"}], "env": [{"name": "B", "$patch": "delete"}]},
                    {"name": "sidecar", "$patch": "delete"},
                ],
            }}}}),
            vec![(
                "/spec/template/spec/containers",
                json!([{"name": "web", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}], "args": ["--a", "--b"]}]),
            )],
        ),
        (
            "a patch item without setElementOrder goes first, as in Kubernetes",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "cache", "image": "redis:7"}]}}}}),
            vec![
                ("/spec/template/spec/containers/0/name", json!("cache")),
                ("/spec/template/spec/containers/1/name", json!("web")),
                ("/spec/template/spec/containers/2/name", json!("sidecar")),
            ],
        ),
        (
            "atomic lists are replaced",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "args": ["--c"]}]}}}}),
            vec![("/spec/template/spec/containers/0/args", json!(["--c"]))],
        ),
        (
            "$retainKeys clears the other members of a union (kubectl apply of strategy: Recreate)",
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
            vec![("/spec/strategy", json!({"type": "Recreate"}))],
        ),
        (
            "null deletes a label, other labels stay",
            json!({"metadata": {"labels": {"tier": null, "env": "prod"}}}),
            vec![("/metadata/labels", json!({"app": "web", "env": "prod"}))],
        ),
        (
            "metadata.finalizers merge as a set even without a schema entry",
            json!({"metadata": {"finalizers": ["b", "a"]}}),
            vec![("/metadata/finalizers", json!(["b", "a"]))],
        ),
        (
            "a finalizer is removed with $deleteFromPrimitiveList",
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            vec![("/metadata/finalizers", json!([]))],
        ),
        (
            "$patch: replace on a nested map",
            json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}}),
            vec![("/spec/strategy", json!({"type": "Recreate"}))],
        ),
        (
            "$patch: merge is the default merge",
            json!({"spec": {"strategy": {"$patch": "merge", "type": "Recreate"}}}),
            vec![("/spec/strategy/rollingUpdate/maxSurge", json!(1)), ("/spec/strategy/type", json!("Recreate"))],
        ),
        (
            "directives inside new values are interpreted, not stored",
            json!({"spec": {"extra": {"$patch": "replace", "x": 1, "nested": {"$retainKeys": ["y"], "y": 2, "z": null}}}}),
            vec![("/spec/extra", json!({"x": 1, "nested": {"y": 2}}))],
        ),
        (
            "a map may replace a scalar",
            json!({"spec": {"replicas": {"min": 1}}}),
            vec![("/spec/replicas", json!({"min": 1}))],
        ),
    ];
    for (description, patch, expectations) in cases {
        let result = smp(&deployment(), &patch).unwrap_or_else(|e| panic!("{description}: {e}"));
        for (pointer, expected) in expectations {
            assert_eq!(result.pointer(pointer), Some(&expected), "{description}: {pointer} in {result}");
        }
        assert_no_directives(&result);
    }
}

#[test]
fn strategic_merge_patch_object_meta_lists_without_schema() {
    let original = json!({"metadata": {
        "ownerReferences": [{"uid": "1", "name": "a", "kind": "X"}, {"uid": "2", "name": "b", "kind": "X"}],
        "finalizers": ["x"],
    }});
    let patch = json!({"metadata": {
        "ownerReferences": [{"uid": "2", "controller": true}, {"uid": "1", "$patch": "delete"}],
        "finalizers": ["y"],
    }});
    let mut target = original;
    strategic_merge_patch(&mut target, &patch, &AtomicLists).expect("patch applies");
    assert_eq!(
        target,
        json!({"metadata": {
            "ownerReferences": [{"uid": "2", "name": "b", "kind": "X", "controller": true}],
            "finalizers": ["y", "x"],
        }})
    );
    // Other lists stay atomic without a schema.
    let mut target = json!({"spec": {"items": [{"name": "a"}]}});
    strategic_merge_patch(&mut target, &json!({"spec": {"items": [{"name": "b"}]}}), &AtomicLists).expect("applies");
    assert_eq!(target, json!({"spec": {"items": [{"name": "b"}]}}));
}

#[test]
fn strategic_merge_patch_matches_numbers_like_go() {
    // Go decodes every number as float64, so merge keys 1 and 1.0 are the same item.
    let result = smp(
        &json!({"mergingList": [{"name": 1, "value": "a"}]}),
        &json!({"mergingList": [{"name": 1.0, "other": "b"}]}),
    )
    .expect("applies");
    assert_eq!(result, json!({"mergingList": [{"name": 1.0, "value": "a", "other": "b"}]}));
}

#[test]
fn strategic_merge_patch_keeps_key_order() {
    let result = smp(&json!({"a": 1, "b": 2, "c": 3}), &json!({"a": null, "b": 5, "d": 4})).expect("applies");
    let keys: Vec<&String> = result.as_object().map(|m| m.keys().collect()).unwrap_or_default();
    assert_eq!(keys, ["b", "c", "d"]);
}

#[test]
fn json_merge_patch_rfc7386_examples() {
    // RFC 7386 appendix A.
    let cases = [
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
        (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a": "b"}), json!(["c"]), json!(["c"])),
        (json!({"a": "foo"}), json!(null), json!(null)),
        (json!({"a": "foo"}), json!("bar"), json!("bar")),
        (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
        (json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
        (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
    ];
    for (target, patch, expected) in cases {
        let mut result = target.clone();
        json_merge_patch(&mut result, &patch);
        assert_eq!(result, expected, "{target} + {patch}");
    }
}

#[test]
fn json_patch_operations() {
    let doc = json!({"metadata": {"name": "x", "annotations": {"example.com/a": "1"}}, "spec": {"list": [1, 2]}});
    let cases = [
        (json!([{"op": "add", "path": "/spec/x", "value": 1}]), "/spec/x", json!(1)),
        (json!([{"op": "add", "path": "/spec/list/-", "value": 3}]), "/spec/list", json!([1, 2, 3])),
        (json!([{"op": "add", "path": "/spec/list/0", "value": 0}]), "/spec/list", json!([0, 1, 2])),
        (json!([{"op": "remove", "path": "/spec/list/0"}]), "/spec/list", json!([2])),
        (json!([{"op": "replace", "path": "/metadata/name", "value": "y"}]), "/metadata/name", json!("y")),
        (
            json!([{"op": "replace", "path": "/metadata/annotations/example.com~1a", "value": "2"}]),
            "/metadata/annotations",
            json!({"example.com/a": "2"}),
        ),
        (json!([{"op": "move", "from": "/metadata/name", "path": "/spec/name"}]), "/spec/name", json!("x")),
        (json!([{"op": "copy", "from": "/spec/list", "path": "/spec/copy"}]), "/spec/copy", json!([1, 2])),
        (
            json!([{"op": "test", "path": "/metadata/name", "value": "x"}, {"op": "remove", "path": "/metadata/name"}]),
            "/metadata",
            json!({"annotations": {"example.com/a": "1"}}),
        ),
    ];
    for (patch, pointer, expected) in cases {
        let mut target = doc.clone();
        json_patch(&mut target, &patch).unwrap_or_else(|e| panic!("{patch}: {e}"));
        assert_eq!(target.pointer(pointer), Some(&expected), "{patch}");
    }
}

#[test]
fn json_patch_errors_name_the_operation() {
    let doc = json!({"metadata": {"name": "x"}, "spec": {"list": [1, 2]}});
    let cases = [
        (json!([{"op": "replace", "path": "/spec/x", "value": 1}]), "operation 0 (replace /spec/x): path not found"),
        (
            json!([
                {"op": "add", "path": "/spec/a", "value": 1},
                {"op": "add", "path": "/spec/b", "value": 2},
                {"op": "replace", "path": "/spec/x", "value": 1},
            ]),
            "operation 2 (replace /spec/x): path not found",
        ),
        (json!([{"op": "remove", "path": "/spec/missing"}]), "operation 0 (remove /spec/missing): path not found"),
        (json!([{"op": "add", "path": "/a/b/c", "value": 1}]), "operation 0 (add /a/b/c): parent path /a/b not found"),
        (
            json!([{"op": "add", "path": "/spec/list/5", "value": 1}]),
            "operation 0 (add /spec/list/5): index 5 out of bounds (the array has 2 items)",
        ),
        (
            json!([{"op": "add", "path": "/metadata/name/x", "value": 1}]),
            "operation 0 (add /metadata/name/x): parent path /metadata/name is not an object or array",
        ),
        (
            json!([{"op": "test", "path": "/metadata/name", "value": "y"}]),
            "operation 0 (test /metadata/name): value did not match (found \"x\")",
        ),
        (
            json!([{"op": "move", "from": "/nope", "path": "/spec/y"}]),
            "operation 0 (move /spec/y): from path /nope not found",
        ),
        (
            json!([{"op": "move", "from": "/spec", "path": "/spec/inner"}]),
            "operation 0 (move /spec/inner): cannot move a value inside itself",
        ),
        (json!({"op": "add"}), "invalid JSON patch: expected a JSON array of operations"),
        (json!([{"op": "explode", "path": "/a"}]), "operation 0: unknown variant `explode`"),
        (json!([{"op": "add", "path": "/a"}]), "operation 0: missing field `value`"),
    ];
    for (patch, expected) in cases {
        let mut target = doc.clone();
        let err = json_patch(&mut target, &patch).expect_err(&patch.to_string());
        assert!(err.starts_with(expected), "{patch}: {err}");
        assert_eq!(target, doc, "{patch}: the target must be left as it was");
    }
}
