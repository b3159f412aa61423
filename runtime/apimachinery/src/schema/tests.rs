use serde_json::{Value, json};

use super::*;
use crate::status::CauseType;

fn compile(raw: Value) -> Schema {
    match Schema::compile(&raw) {
        Ok(schema) => schema,
        Err(e) => panic!("schema did not compile: {e}"),
    }
}

fn compile_err(raw: Value) -> String {
    match Schema::compile(&raw) {
        Ok(_) => panic!("schema compiled but should not: {raw}"),
        Err(e) => e,
    }
}

/// A resource schema whose `spec` is `spec_schema`.
fn with_spec(spec_schema: Value) -> Schema {
    compile(json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
        }
    }))
}

fn obj(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec})
}

fn messages(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(FieldError::to_message).collect()
}

fn assert_one(errors: &[FieldError], cause: CauseType, message: &str) {
    assert_eq!(messages(errors), vec![message.to_string()], "{errors:?}");
    assert_eq!(errors[0].cause, cause);
}

// ---------------------------------------------------------------- compile

#[test]
fn schema_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Schema>();
}

#[test]
fn compile_errors_name_the_malformed_path() {
    let err =
        compile_err(json!({"type": "object", "properties": {"spec": {"properties": {"replicas": {"type": "int"}}}}}));
    assert!(
        err.starts_with("openAPIV3Schema.properties[spec].properties[replicas].type: Unsupported value: \"int\""),
        "{err}"
    );
    let err = compile_err(json!({"properties": {"name": {"type": "string", "pattern": "(["}}}));
    assert!(err.starts_with("openAPIV3Schema.properties[name].pattern: Invalid value: \"([\""), "{err}");
    let err = compile_err(json!({"properties": {"n": {"type": "integer", "minimum": "1"}}}));
    assert!(err.starts_with("openAPIV3Schema.properties[n].minimum: must be a number"), "{err}");
    let err = compile_err(json!({"properties": {"s": {"type": "string", "maxLength": -1}}}));
    assert!(err.starts_with("openAPIV3Schema.properties[s].maxLength: must be a non-negative integer"), "{err}");
    let err = compile_err(json!({"type": "array", "items": [{"type": "string"}]}));
    assert!(err.starts_with("openAPIV3Schema.items: Forbidden"), "{err}");
    let err = compile_err(json!({"properties": {"m": {"type": "object", "additionalProperties": false}}}));
    assert!(err.contains("additionalProperties cannot be set to false"), "{err}");
    let err = compile_err(json!({"properties": {"a": {}}, "additionalProperties": {"type": "string"}}));
    assert!(err.contains("mutual exclusive"), "{err}");
    let err = compile_err(json!({"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "map"}));
    assert!(err.starts_with("openAPIV3Schema.x-kubernetes-list-map-keys: Required value"), "{err}");
    let err = compile_err(json!({"type": "array", "x-kubernetes-list-type": "bag"}));
    assert!(err.contains("x-kubernetes-list-type: Unsupported value: \"bag\""), "{err}");
    let err = compile_err(json!({"properties": {"x": {"$ref": "#/definitions/x"}}}));
    assert!(err.starts_with("openAPIV3Schema.properties[x].$ref: Forbidden"), "{err}");
    let err = compile_err(json!({"properties": {"x": "string"}}));
    assert!(err.starts_with("openAPIV3Schema.properties[x]: must be a schema object"), "{err}");
    let err = compile_err(json!({"required": "x"}));
    assert!(err.starts_with("openAPIV3Schema.required: must be an array"), "{err}");
}

#[test]
fn compile_errors_for_rules() {
    let err = compile_err(json!({"properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{"rule": "self.a >"}]}}}));
    assert!(
        err.starts_with("openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: \"self.a >\": compilation failed"),
        "{err}"
    );
    let err = compile_err(json!({"x-kubernetes-validations": [{"message": "no rule"}]}));
    assert_eq!(err, "openAPIV3Schema.x-kubernetes-validations[0].rule: Required value");
    let err = compile_err(json!({"x-kubernetes-validations": [{"rule": "true", "reason": "Nope"}]}));
    assert!(
        err.starts_with("openAPIV3Schema.x-kubernetes-validations[0].reason: Unsupported value: \"Nope\""),
        "{err}"
    );
    let err = compile_err(json!({"type": "object", "properties": {"a": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "true", "fieldPath": ".b"}]}));
    assert!(err.contains("fieldPath: Invalid value: \".b\": fieldPath must be a valid path"), "{err}");
    let err = compile_err(json!({"x-kubernetes-validations": [{"rule": "true", "messageExpression": "'a' +"}]}));
    assert!(err.starts_with("openAPIV3Schema.x-kubernetes-validations[0].messageExpression"), "{err}");
}

// ---------------------------------------------------------------- defaults

#[test]
fn defaults_fill_absent_fields_recursively() {
    let schema = with_spec(json!({
        "type": "object",
        "default": {},
        "properties": {
            "replicas": {"type": "integer", "default": 1},
            "strategy": {
                "type": "object",
                "default": {"type": "All"},
                "properties": {
                    "type": {"type": "string"},
                    "maxSurge": {"type": "string", "default": "25%"}
                }
            },
            "set": {"type": "string", "default": "x"}
        }
    }));
    let mut o = json!({"apiVersion": "v1", "kind": "T", "metadata": {}});
    schema.apply_defaults(&mut o);
    assert_eq!(o["spec"], json!({"replicas": 1, "strategy": {"type": "All", "maxSurge": "25%"}, "set": "x"}));
    let mut given = obj(json!({"replicas": 3, "set": "y"}));
    schema.apply_defaults(&mut given);
    assert_eq!(given["spec"]["replicas"], 3);
    assert_eq!(given["spec"]["set"], "y");
}

#[test]
fn defaults_in_items_and_additional_properties() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "containers": {"type": "array", "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "pull": {"type": "string", "default": "IfNotPresent"}}
            }},
            "tags": {"type": "array", "items": {"type": "string", "default": "none"}},
            "ports": {"type": "object", "additionalProperties": {
                "type": "object",
                "default": {"protocol": "TCP"},
                "properties": {"protocol": {"type": "string", "default": "TCP"}, "port": {"type": "integer"}}
            }}
        }
    }));
    let mut o = obj(json!({
        "containers": [{"name": "a"}, {"name": "b", "pull": "Always"}],
        "tags": ["x", null],
        "ports": {"http": {"port": 80}, "dns": null}
    }));
    schema.apply_defaults(&mut o);
    assert_eq!(o["spec"]["containers"][0]["pull"], "IfNotPresent");
    assert_eq!(o["spec"]["containers"][1]["pull"], "Always");
    assert_eq!(o["spec"]["tags"], json!(["x", "none"]));
    assert_eq!(o["spec"]["ports"]["http"], json!({"port": 80, "protocol": "TCP"}));
    assert_eq!(o["spec"]["ports"]["dns"], json!({"protocol": "TCP"}));
}

#[test]
fn defaults_and_nulls() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "withDefault": {"type": "string", "default": "d"},
            "nullableWithDefault": {"type": "string", "nullable": true, "default": "d"},
            "plain": {"type": "string"},
            "nullable": {"type": "string", "nullable": true}
        }
    }));
    let mut o = obj(json!({"withDefault": null, "nullableWithDefault": null, "plain": null, "nullable": null}));
    schema.apply_defaults(&mut o);
    assert_eq!(o["spec"], json!({"withDefault": "d", "nullableWithDefault": null, "nullable": null}));
}

// ---------------------------------------------------------------- prune

#[test]
fn prune_reports_paths_and_keeps_resource_meta() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}}},
            "empty": {"type": "object"}
        }
    }));
    let mut o = json!({
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t", "labels": {"a": "b"}},
        "status": {"x": 1},
        "spec": {
            "foo": 1,
            "items": [{"name": "a"}, {"name": "b"}, {"name": "c", "bar": true}],
            "labels": {"k": {"v": "x", "w": "y"}},
            "empty": {"anything": 1}
        }
    });
    let pruned = schema.prune(&mut o);
    assert_eq!(pruned, vec!["status", "spec.foo", "spec.items[2].bar", "spec.labels.k.w", "spec.empty.anything"]);
    assert_eq!(o["metadata"], json!({"name": "t", "labels": {"a": "b"}}));
    assert_eq!(o["apiVersion"], "example.com/v1");
    assert_eq!(o["spec"]["items"][2], json!({"name": "c"}));
    assert_eq!(o["spec"]["empty"], json!({}));
    assert!(o.get("status").is_none());
    // Pruning is idempotent.
    assert!(schema.prune(&mut o).is_empty());
}

#[test]
fn prune_preserves_unknown_fields_where_asked() {
    let schema = with_spec(json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "known": {"type": "object", "properties": {"a": {"type": "string"}}}
        }
    }));
    let mut o = obj(json!({"anything": {"deep": 1}, "known": {"a": "x", "b": "dropped"}}));
    assert_eq!(schema.prune(&mut o), vec!["spec.known.b"]);
    assert_eq!(o["spec"]["anything"], json!({"deep": 1}));
}

#[test]
fn prune_keeps_fields_allowed_by_additional_properties_true() {
    let schema = with_spec(json!({
        "type": "object",
        "additionalProperties": true,
        "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}
    }));
    let mut o = obj(json!({"extra": {"deep": [1]}, "known": {"a": "x", "b": 1}}));
    assert_eq!(schema.prune(&mut o), vec!["spec.known.b"]);
    assert_eq!(o["spec"]["extra"], json!({"deep": [1]}));
    assert!(schema.validate(&o, None).is_empty());
}

#[test]
fn prune_embedded_resources() {
    // ManifestWork's shape: manifests are embedded resources preserving unknown fields.
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "workload": {"type": "object", "properties": {
                "manifests": {"type": "array", "items": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": true,
                    "x-kubernetes-preserve-unknown-fields": true
                }}
            }},
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}}
            }
        }
    }));
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}});
    let mut o = obj(json!({
        "workload": {"manifests": [manifest.clone()]},
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": "1", "y": 2}, "extra": 1}
    }));
    assert_eq!(schema.prune(&mut o), vec!["spec.template.spec.y", "spec.template.extra"]);
    assert_eq!(o["spec"]["workload"]["manifests"][0], manifest);
    assert_eq!(o["spec"]["template"]["metadata"], json!({"name": "p"}));
}

// ---------------------------------------------------------------- validate: shapes

#[test]
fn required_and_type_errors_use_kubernetes_wording() {
    let schema = with_spec(json!({
        "type": "object",
        "required": ["x", "name"],
        "properties": {"x": {"type": "integer"}, "name": {"type": "string"}}
    }));
    let errors = schema.validate(&obj(json!({"x": "string"})), None);
    assert_eq!(
        messages(&errors),
        vec![
            "spec.name: Required value",
            "spec.x: Invalid value: \"string\": spec.x in body must be of type integer: \"string\""
        ]
    );
    assert_eq!(errors[0].cause, CauseType::FieldValueRequired);
    assert_eq!(errors[1].cause, CauseType::FieldValueTypeInvalid);
    let missing_spec =
        compile(json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}}));
    assert_one(
        &missing_spec.validate(&json!({"metadata": {"name": "a"}}), None),
        CauseType::FieldValueRequired,
        "spec: Required value",
    );
}

#[test]
fn numbers_integers_and_nulls() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "i": {"type": "integer"},
            "n": {"type": "number"},
            "s": {"type": "string"},
            "ns": {"type": "string", "nullable": true},
            "b": {"type": "boolean"},
            "o": {"type": "object"},
            "a": {"type": "array"}
        }
    }));
    assert!(
        schema.validate(&obj(json!({"i": 1.0, "n": 1, "ns": null, "b": false, "o": {}, "a": []})), None).is_empty()
    );
    assert_one(
        &schema.validate(&obj(json!({"i": 1.5})), None),
        CauseType::FieldValueTypeInvalid,
        "spec.i: Invalid value: \"number\": spec.i in body must be of type integer: \"number\"",
    );
    assert_one(
        &schema.validate(&obj(json!({"s": null})), None),
        CauseType::FieldValueTypeInvalid,
        "spec.s: Invalid value: \"null\": spec.s in body must be of type string: \"null\"",
    );
    assert_one(
        &schema.validate(&obj(json!({"o": []})), None),
        CauseType::FieldValueTypeInvalid,
        "spec.o: Invalid value: \"array\": spec.o in body must be of type object: \"array\"",
    );
    assert_eq!(schema.validate(&obj(json!({"b": "true", "a": {}})), None).len(), 2);
}

#[test]
fn int_or_string() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {"port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}}
    }));
    assert!(schema.validate(&obj(json!({"port": 80})), None).is_empty());
    assert!(schema.validate(&obj(json!({"port": "http"})), None).is_empty());
    assert_eq!(
        messages(&schema.validate(&obj(json!({"port": true})), None))[0],
        "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""
    );
}

#[test]
fn enum_pattern_lengths_and_formats() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["A", "B"]},
            "level": {"type": "integer", "enum": [1, 2]},
            "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 3},
            "when": {"type": "string", "format": "date-time"},
            "data": {"type": "string", "format": "byte"},
            "size": {"type": "string", "format": "int-or-whatever"}
        }
    }));
    assert!(schema
        .validate(&obj(json!({"mode": "A", "level": 2.0, "name": "abc", "when": "2024-01-01T00:00:00Z", "data": "aGk=", "size": "?"})), None)
        .is_empty());
    assert_one(
        &schema.validate(&obj(json!({"mode": "Foo"})), None),
        CauseType::FieldValueNotSupported,
        "spec.mode: Unsupported value: \"Foo\": supported values: \"A\", \"B\"",
    );
    assert_one(
        &schema.validate(&obj(json!({"level": 3})), None),
        CauseType::FieldValueNotSupported,
        "spec.level: Unsupported value: 3: supported values: \"1\", \"2\"",
    );
    assert_eq!(
        messages(&schema.validate(&obj(json!({"name": "A"})), None)),
        vec![
            "spec.name: Invalid value: \"A\": spec.name in body should be at least 2 chars long",
            "spec.name: Invalid value: \"A\": spec.name in body should match '^[a-z]+$'"
        ]
    );
    let too_long = schema.validate(&obj(json!({"name": "abcd"})), None);
    assert_one(&too_long, CauseType::FieldValueTooLong, "spec.name: Too long: may not be more than 3 bytes");
    assert_one(
        &schema.validate(&obj(json!({"when": "yesterday"})), None),
        CauseType::FieldValueTypeInvalid,
        "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"",
    );
    assert_one(
        &schema.validate(&obj(json!({"data": "not base64"})), None),
        CauseType::FieldValueTypeInvalid,
        "spec.data: Invalid value: \"not base64\": spec.data in body must be of type byte: \"not base64\"",
    );
}

#[test]
fn string_lengths_count_characters() {
    let schema =
        with_spec(json!({"type": "object", "properties": {"s": {"type": "string", "maxLength": 3, "minLength": 3}}}));
    assert!(schema.validate(&obj(json!({"s": "ééé"})), None).is_empty());
}

#[test]
fn numeric_bounds() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
            "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1.5, "exclusiveMaximum": true},
            "step": {"type": "integer", "multipleOf": 5}
        }
    }));
    assert!(schema.validate(&obj(json!({"replicas": 10, "ratio": 1.2, "step": 15})), None).is_empty());
    assert_one(
        &schema.validate(&obj(json!({"replicas": 0})), None),
        CauseType::FieldValueInvalid,
        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
    );
    assert_one(
        &schema.validate(&obj(json!({"replicas": 11})), None),
        CauseType::FieldValueInvalid,
        "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
    );
    assert_eq!(
        messages(&schema.validate(&obj(json!({"ratio": 0})), None)),
        vec!["spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"]
    );
    assert_eq!(
        messages(&schema.validate(&obj(json!({"ratio": 1.5})), None)),
        vec!["spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than 1.5"]
    );
    assert_eq!(
        messages(&schema.validate(&obj(json!({"step": 7})), None)),
        vec!["spec.step: Invalid value: 7: spec.step in body should be a multiple of 5"]
    );
}

#[test]
fn item_and_property_counts() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "list": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
            "map": {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": {"type": "string"}}
        }
    }));
    assert_one(
        &schema.validate(&obj(json!({"list": ["a", "b", "c"]})), None),
        CauseType::FieldValueTooMany,
        "spec.list: Too many: 3: must have at most 2 items",
    );
    assert_one(
        &schema.validate(&obj(json!({"list": []})), None),
        CauseType::FieldValueInvalid,
        "spec.list: Invalid value: 0: spec.list in body should have at least 1 items",
    );
    assert_one(
        &schema.validate(&obj(json!({"map": {"a": "1", "b": "2"}})), None),
        CauseType::FieldValueTooMany,
        "spec.map: Too many: 2: must have at most 1 item",
    );
    assert_one(
        &schema.validate(&obj(json!({"map": {}})), None),
        CauseType::FieldValueInvalid,
        "spec.map: Invalid value: 0: spec.map in body should have at least 1 properties",
    );
    assert_one(
        &schema.validate(&obj(json!({"map": {"a": 1}})), None),
        CauseType::FieldValueTypeInvalid,
        "spec.map.a: Invalid value: \"integer\": spec.map.a in body must be of type string: \"integer\"",
    );
}

#[test]
fn deep_paths_through_lists() {
    let expression = json!({
        "type": "object",
        "required": ["key", "operator"],
        "properties": {
            "key": {"type": "string"},
            "operator": {"type": "string", "enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
            "values": {"type": "array", "items": {"type": "string"}}
        }
    });
    let schema = with_spec(json!({
        "type": "object",
        "properties": {"predicates": {"type": "array", "items": {"type": "object", "properties": {
            "requiredClusterSelector": {"type": "object", "properties": {
                "labelSelector": {"type": "object", "properties": {
                    "matchExpressions": {"type": "array", "items": expression}
                }}
            }}
        }}}}
    }));
    let placement = obj(json!({"predicates": [{"requiredClusterSelector": {"labelSelector": {"matchExpressions": [
        {"key": "env", "operator": "In", "values": ["prod"]},
        {"key": "tier", "operator": "Equals"},
        {"operator": "Exists"}
    ]}}}]}));
    assert_eq!(
        messages(&schema.validate(&placement, None)),
        vec![
            "spec.predicates[0].requiredClusterSelector.labelSelector.matchExpressions[1].operator: Unsupported value: \"Equals\": supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\"",
            "spec.predicates[0].requiredClusterSelector.labelSelector.matchExpressions[2].key: Required value"
        ]
    );
}

#[test]
fn list_sets_and_maps_reject_duplicates() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "objects": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "byName": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}},
            "byPair": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["group", "resource"],
                "items": {"type": "object", "properties": {"group": {"type": "string"}, "resource": {"type": "string"}}}},
            "atomic": {"type": "array", "x-kubernetes-list-type": "atomic", "items": {"type": "string"}}
        }
    }));
    let errors = schema.validate(
        &obj(json!({
            "set": ["a", "b", "a", "a", "b"],
            "objects": [{"x": 1, "y": 2}, {"y": 2, "x": 1}],
            "byName": [{"name": "a", "v": 1}, {"name": "a", "v": 2}, {"v": 3}, {"v": 4}],
            "byPair": [{"group": "", "resource": "pods"}, {"group": "apps", "resource": "pods"}, {"resource": "pods", "group": ""}],
            "atomic": ["a", "a"]
        })),
        None,
    );
    assert_eq!(
        messages(&errors),
        vec![
            "spec.set[2]: Duplicate value: \"a\"",
            "spec.set[4]: Duplicate value: \"b\"",
            "spec.objects[1]: Duplicate value: {\"y\":2,\"x\":1}",
            "spec.byName[1]: Duplicate value: {\"name\":\"a\"}",
            "spec.byName[3]: Duplicate value: {}",
            "spec.byPair[2]: Duplicate value: {\"group\":\"\",\"resource\":\"pods\"}"
        ]
    );
    assert!(errors.iter().all(|e| e.cause == CauseType::FieldValueDuplicate));
    let bad_element = with_spec(json!({"type": "object", "properties": {"m": {"type": "array",
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}}}));
    assert_one(
        &bad_element.validate(&obj(json!({"m": [{"name": "a"}, "b"]})), None),
        CauseType::FieldValueInvalid,
        "spec.m[1]: Invalid value: \"b\": must be an object for an array of list-type map",
    );
}

#[test]
fn root_metadata_only_name_constraints() {
    let schema = compile(json!({
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {
                "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"}
            }},
            "spec": {"type": "object"}
        }
    }));
    let ok = json!({"metadata": {"name": "abc", "labels": {"x": "y"}, "uid": 5}, "spec": {}});
    assert!(schema.validate(&ok, None).is_empty());
    let bad = json!({"metadata": {"name": "Abcdef"}});
    assert_eq!(
        messages(&schema.validate(&bad, None)),
        vec![
            "metadata.name: Too long: may not be more than 5 bytes",
            "metadata.name: Invalid value: \"Abcdef\": metadata.name in body should match '^[a-z]+$'"
        ]
    );
}

#[test]
fn embedded_resources_need_api_version_kind_and_valid_metadata() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {"manifests": {"type": "array", "items": {
            "type": "object",
            "x-kubernetes-embedded-resource": true,
            "x-kubernetes-preserve-unknown-fields": true
        }}}
    }));
    let good =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}}});
    assert!(schema.validate(&obj(json!({"manifests": [good]})), None).is_empty());
    let errors = schema.validate(
        &obj(json!({"manifests": [
            {"metadata": {}},
            {"apiVersion": "a/b/c", "kind": "Bad_Kind", "metadata": {"name": "a/b", "labels": {"bad key": "v"}}},
            {"apiVersion": 1, "kind": "", "metadata": "x"}
        ]})),
        None,
    );
    let msgs = messages(&errors);
    assert_eq!(msgs[0], "spec.manifests[0].apiVersion: Required value: must not be empty");
    assert_eq!(msgs[1], "spec.manifests[0].kind: Required value: must not be empty");
    assert_eq!(
        msgs[2],
        "spec.manifests[1].apiVersion: Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c"
    );
    assert!(msgs[3].starts_with("spec.manifests[1].kind: Invalid value: \"Bad_Kind\": may have mixed case, but should otherwise match: a DNS-1035 label"), "{}", msgs[3]);
    assert_eq!(msgs[4], "spec.manifests[1].metadata.name: Invalid value: \"a/b\": may not contain '/'");
    assert!(
        msgs[5].starts_with("spec.manifests[1].metadata.labels: Invalid value: \"bad key\": name part must consist"),
        "{}",
        msgs[5]
    );
    assert_eq!(msgs[6], "spec.manifests[2].apiVersion: Invalid value: 1: must be a string");
    assert_eq!(msgs[7], "spec.manifests[2].kind: Invalid value: \"\": must not be empty");
    assert_eq!(msgs[8], "spec.manifests[2].metadata: Invalid value: \"x\": must be an object");
    assert_eq!(msgs.len(), 9);
}

#[test]
fn combinators() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "any": {"type": "object", "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}}},
            "one": {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}}},
            "all": {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]},
            "not": {"type": "string", "not": {"enum": ["forbidden"]}}
        }
    }));
    assert!(
        schema.validate(&obj(json!({"any": {"b": "x"}, "one": {"a": "x"}, "all": 3, "not": "ok"})), None).is_empty()
    );
    assert_eq!(
        messages(&schema.validate(&obj(json!({"any": {}})), None)),
        vec![
            "spec.any: Invalid value: \"\": spec.any must validate at least one schema (anyOf)",
            "spec.any.a: Required value"
        ]
    );
    assert_eq!(
        messages(&schema.validate(&obj(json!({"one": {"a": "1", "b": "2"}})), None)),
        vec![
            "spec.one: Invalid value: \"\": spec.one must validate one and only one schema (oneOf). Found 2 valid alternatives"
        ]
    );
    assert_eq!(
        messages(&schema.validate(&obj(json!({"all": 7})), None)),
        vec![
            "spec.all: Invalid value: 7: spec.all in body should be less than or equal to 5",
            "spec.all: Invalid value: \"\": spec.all must validate all the schemas (allOf)"
        ]
    );
    assert_eq!(
        messages(&schema.validate(&obj(json!({"not": "forbidden"})), None)),
        vec!["spec.not: Invalid value: \"\": spec.not must not validate the schema (not)"]
    );
}

// ---------------------------------------------------------------- validate: CEL

fn rules_schema(rules: Value, properties: Value) -> Schema {
    with_spec(json!({"type": "object", "properties": properties, "x-kubernetes-validations": rules}))
}

#[test]
fn cel_rules_pass_and_fail_with_messages() {
    let schema = rules_schema(
        json!([
            {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
            {"rule": "self.minReplicas >= 0"}
        ]),
        json!({"minReplicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}}),
    );
    assert!(schema.validate(&obj(json!({"minReplicas": 1, "maxReplicas": 2})), None).is_empty());
    let errors = schema.validate(&obj(json!({"minReplicas": -3, "maxReplicas": -5})), None);
    assert_eq!(
        messages(&errors),
        vec![
            "spec: Invalid value: minReplicas must not exceed maxReplicas",
            "spec: Invalid value: failed rule: self.minReplicas >= 0"
        ]
    );
    assert!(errors.iter().all(|e| e.cause == CauseType::FieldValueInvalid));
}

#[test]
fn cel_scalar_rules_show_the_value() {
    let schema = with_spec(json!({"type": "object", "properties": {
        "replicas": {"type": "integer", "x-kubernetes-validations": [{"rule": "self < 3", "message": "must be below 3"}]},
        "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('x-')"}]}
    }}));
    assert_eq!(
        messages(&schema.validate(&obj(json!({"replicas": 5, "name": "y"})), None)),
        vec![
            "spec.replicas: Invalid value: 5: must be below 3",
            "spec.name: Invalid value: \"y\": failed rule: self.startsWith('x-')"
        ]
    );
}

#[test]
fn cel_message_expression_field_path_and_reason() {
    let schema = rules_schema(
        json!([
            {"rule": "self.a != 'bad'", "messageExpression": "'a may not be ' + self.a", "fieldPath": ".a"},
            {"rule": "self.b != 'bad'", "message": "fallback", "messageExpression": "self.missing", "fieldPath": ".m['k.x']"},
            {"rule": "has(self.c)", "reason": "FieldValueRequired", "message": "c is needed", "fieldPath": ".c"},
            {"rule": "self.a != 'forbidden'", "reason": "FieldValueForbidden", "message": "not allowed"},
            {"rule": "self.a != 'dup'", "reason": "FieldValueDuplicate"}
        ]),
        json!({"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"},
               "m": {"type": "object", "additionalProperties": {"type": "string"}}}),
    );
    let errors = schema.validate(&obj(json!({"a": "bad", "b": "bad"})), None);
    assert_eq!(
        messages(&errors),
        vec![
            "spec.a: Invalid value: a may not be bad",
            "spec.m[k.x]: Invalid value: fallback",
            "spec.c: Required value: c is needed"
        ]
    );
    let forbidden = schema.validate(&obj(json!({"a": "forbidden", "b": "ok", "c": "x"})), None);
    assert_one(&forbidden, CauseType::FieldValueForbidden, "spec: Forbidden: not allowed");
    let dup = schema.validate(&obj(json!({"a": "dup", "b": "ok", "c": "x"})), None);
    assert_one(&dup, CauseType::FieldValueDuplicate, "spec: Duplicate value");
}

#[test]
fn cel_transition_rules_only_on_update() {
    let schema = with_spec(json!({"type": "object", "properties": {
        "clusterName": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "Value is immutable"}]},
        "count": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "may not decrease"}]}
    }}));
    let created = obj(json!({"clusterName": "a", "count": 2}));
    assert!(schema.validate(&created, None).is_empty());
    assert!(schema.validate(&created, Some(&created)).is_empty());
    let changed = obj(json!({"clusterName": "b", "count": 1}));
    assert_eq!(
        messages(&schema.validate(&changed, Some(&created))),
        vec![
            "spec.clusterName: Invalid value: \"b\": Value is immutable",
            "spec.count: Invalid value: 1: may not decrease"
        ]
    );
    // A field that did not exist before has no oldSelf: the rule is skipped.
    let old_without = obj(json!({}));
    assert!(schema.validate(&changed, Some(&old_without)).is_empty());
}

#[test]
fn cel_old_self_correlates_through_map_lists_only() {
    let item = json!({"type": "object", "properties": {
        "name": {"type": "string"},
        "size": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "may not shrink"}]}
    }});
    let schema = with_spec(json!({"type": "object", "properties": {
        "byName": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"], "items": item.clone()},
        "atomic": {"type": "array", "items": item}
    }}));
    let old = obj(
        json!({"byName": [{"name": "a", "size": 5}, {"name": "b", "size": 5}], "atomic": [{"name": "a", "size": 5}]}),
    );
    let new = obj(
        json!({"byName": [{"name": "b", "size": 4}, {"name": "a", "size": 6}, {"name": "c", "size": 1}], "atomic": [{"name": "a", "size": 1}]}),
    );
    assert_eq!(
        messages(&schema.validate(&new, Some(&old))),
        vec!["spec.byName[0].size: Invalid value: 4: may not shrink"]
    );
}

#[test]
fn cel_optional_old_self() {
    let schema = with_spec(json!({"type": "object", "properties": {
        "n": {"type": "integer", "x-kubernetes-validations": [
            {"rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "optionalOldSelf": true, "message": "may not decrease"},
            {"rule": "self <= oldSelf.orValue(100)", "optionalOldSelf": true, "message": "too big"}
        ]}
    }}));
    assert!(schema.validate(&obj(json!({"n": 7})), None).is_empty());
    assert_eq!(messages(&schema.validate(&obj(json!({"n": 101})), None)), vec!["spec.n: Invalid value: 101: too big"]);
    assert_eq!(
        messages(&schema.validate(&obj(json!({"n": 3})), Some(&obj(json!({"n": 5}))))),
        vec!["spec.n: Invalid value: 3: may not decrease"]
    );
}

#[test]
fn cel_evaluation_errors_are_field_errors() {
    let schema = rules_schema(json!([{"rule": "self.missing > 1"}]), json!({"a": {"type": "string"}}));
    let errors = schema.validate(&obj(json!({"a": "x"})), None);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].cause, CauseType::FieldValueInvalid);
    assert_eq!(errors[0].field, "spec");
    assert!(errors[0].message.starts_with("Invalid value: \"object\": "), "{}", errors[0].message);
    assert!(errors[0].message.ends_with("evaluating rule: self.missing > 1"), "{}", errors[0].message);
    // A rule the interpreter cannot run (message-struct construction) is an error, not a panic.
    let odd = rules_schema(json!([{"rule": "Foo{a: 1} == 1"}]), json!({}));
    let errors = odd.validate(&obj(json!({})), None);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let non_bool = rules_schema(json!([{"rule": "1 + 1"}]), json!({}));
    assert!(messages(&non_bool.validate(&obj(json!({})), None))[0].contains("expected a boolean result"));
}

#[test]
fn cel_skipped_after_type_errors() {
    let schema = rules_schema(json!([{"rule": "self.n > 0"}]), json!({"n": {"type": "integer"}}));
    let errors = schema.validate(&obj(json!({"n": "x"})), None);
    assert_eq!(
        messages(&errors),
        vec![
            "spec.n: Invalid value: \"string\": spec.n in body must be of type integer: \"string\"",
            "Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
        ]
    );
    // Non-blocking errors (a pattern) still let rules run.
    let schema = rules_schema(
        json!([{"rule": "self.n > 0", "message": "n must be positive"}]),
        json!({"n": {"type": "integer"}, "s": {"type": "string", "pattern": "^a$"}}),
    );
    assert_eq!(schema.validate(&obj(json!({"n": 0, "s": "b"})), None).len(), 2);
}

#[test]
fn cel_root_sees_api_version_kind_and_name() {
    let schema = compile(json!({
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.kind == 'Thing' && self.apiVersion.startsWith('example.com/')"},
            {"rule": "self.metadata.name.size() <= 5", "message": "name too long"},
            {"rule": "!has(self.metadata.labels)"},
            {"rule": "self.spec.x == 1"}
        ],
        "properties": {"metadata": {"type": "object"}, "spec": {"type": "object", "properties": {"x": {"type": "integer"}}}}
    }));
    let o = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "abc", "labels": {"a": "b"}}, "spec": {"x": 1}});
    assert!(schema.validate(&o, None).is_empty(), "{:?}", schema.validate(&o, None));
    let long =
        json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "abcdef"}, "spec": {"x": 1}});
    assert_eq!(messages(&schema.validate(&long, None)), vec!["Invalid value: name too long"]);
}

#[test]
fn cel_types_follow_the_schema() {
    let schema = rules_schema(
        json!([
            {"rule": "self.ratio > 0.5 && self.ratio < 1.5", "message": "ratio"},
            {"rule": "self.count + 1 == 3", "message": "count"},
            {"rule": "self.expires > timestamp('2020-01-01T00:00:00Z')", "message": "expires"},
            {"rule": "self.timeout < duration('1h')", "message": "timeout"},
            {"rule": "self.my__dash__field == 'v' && self.a__dot__b == 'w'", "message": "escaping"},
            {"rule": "self.__namespace__ == 'ns'", "message": "reserved"},
            {"rule": "self.name.size() == 3", "message": "size counts characters"},
            {"rule": "self.tags.all(t, t.lowerAscii() == t) && self.tags.exists(t, t == 'b')", "message": "macros"},
            {"rule": "self.tags.join(',') == 'a,b' && 'x-y'.split('-').size() == 2", "message": "strings"},
            {"rule": "self.name.indexOf('é') == 1 && '  x '.trim() == 'x' && 'aXa'.replace('X', 'b') == 'aba'", "message": "more strings"},
            {"rule": "self.labels.k == 'v' && 'k' in self.labels", "message": "maps"}
        ]),
        json!({
            "ratio": {"type": "number"},
            "count": {"type": "integer"},
            "expires": {"type": "string", "format": "date-time"},
            "timeout": {"type": "string", "format": "duration"},
            "my-field": {"type": "string"},
            "a.b": {"type": "string"},
            "namespace": {"type": "string"},
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}
        }),
    );
    let good = obj(json!({
        "ratio": 1,
        "count": 2.0,
        "expires": "2030-01-01T00:00:00Z",
        "timeout": "30m",
        "my-field": "v",
        "a.b": "w",
        "namespace": "ns",
        "name": "aéb",
        "tags": ["a", "b"],
        "labels": {"k": "v"}
    }));
    let errors = schema.validate(&good, None);
    assert!(errors.is_empty(), "{:?}", messages(&errors));
}

#[test]
fn cel_rules_in_nested_places() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string",
                "x-kubernetes-validations": [{"rule": "self.size() < 4", "message": "short values only"}]}},
            "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.n > 0", "message": "positive"}]}},
            "both": {"type": "integer", "allOf": [{"x-kubernetes-validations": [{"rule": "self != 13", "message": "unlucky"}]}]},
            "maybe": {"type": "object", "nullable": true, "x-kubernetes-validations": [{"rule": "false"}]}
        }
    }));
    let o = obj(json!({
        "labels": {"a": "ok", "b": "too long"},
        "items": [{"n": 1}, {"n": 0}],
        "both": 13,
        "maybe": null
    }));
    assert_eq!(
        messages(&schema.validate(&o, None)),
        vec![
            "spec.labels[b]: Invalid value: \"too long\": short values only",
            "spec.items[1]: Invalid value: positive",
            "spec.both: Invalid value: 13: unlucky"
        ]
    );
}

// ---------------------------------------------------------------- merge strategy

#[test]
fn merge_strategy_reads_list_and_map_types() {
    let schema = with_spec(json!({
        "type": "object",
        "properties": {
            "template": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "containers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {
                        "name": {"type": "string"},
                        "args": {"type": "array", "items": {"type": "string"}},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["containerPort", "protocol"], "items": {"type": "object"}},
                        "env": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
                    }}}
            }}}},
            "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
            "labels": {"type": "object", "additionalProperties": {"type": "array", "x-kubernetes-list-type": "set"}},
            "granular": {"type": "object"}
        }
    }));
    let containers = ["spec", "template", "spec", "containers"];
    assert_eq!(schema.list_type(&containers), ListType::Map(vec!["name".into()]));
    assert_eq!(
        schema.list_type(&["spec", "template", "spec", "containers", "ports"]),
        ListType::Map(vec!["containerPort".into(), "protocol".into()])
    );
    assert_eq!(schema.list_type(&["spec", "template", "spec", "containers", "env"]), ListType::Set);
    assert_eq!(schema.list_type(&["spec", "template", "spec", "containers", "args"]), ListType::Atomic);
    assert_eq!(schema.list_type(&["spec", "labels", "anything"]), ListType::Set);
    assert_eq!(schema.list_type(&["spec", "unknown", "list"]), ListType::Atomic);
    assert!(schema.map_is_atomic(&["spec", "selector"]));
    assert!(!schema.map_is_atomic(&["spec", "granular"]));
    assert!(!schema.map_is_atomic(&["spec", "nope"]));
}
