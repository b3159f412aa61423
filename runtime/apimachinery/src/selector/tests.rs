use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()
}

#[test]
fn label_parse_canonical_forms() {
    // (input, canonical string as Kubernetes prints it)
    let cases = [
        ("", ""),
        ("   ", ""),
        ("x=a", "x=a"),
        ("x==a", "x==a"),
        ("x!=a", "x!=a"),
        ("x", "x"),
        ("!x", "!x"),
        ("x>1", "x>1"),
        ("x<10", "x<10"),
        ("x in (b,a)", "x in (a,b)"),
        ("x in ( a , b )", "x in (a,b)"),
        ("x notin (a)", "x notin (a)"),
        ("x in ()", "x in ()"),
        ("x in (,a)", "x in (,a)"),
        ("x in (a,,b)", "x in (,a,b)"),
        ("x in (a,)", "x in (,a)"),
        ("x=", "x="),
        ("x=,y", "x=,y"),
        ("z=c,y,!x,a in (b)", "a in (b),!x,y,z=c"),
        ("x=a,x!=b", "x=a,x!=b"),
        ("  x = a , y != b ", "x=a,y!=b"),
        ("example.com/app=web", "example.com/app=web"),
        ("app.kubernetes.io/name in (in,notin)", "app.kubernetes.io/name in (in,notin)"),
        ("in=notin", "in=notin"),
        ("x\t=\na", "x=a"),
    ];
    for (input, expected) in cases {
        let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.to_string(), expected, "input {input:?}");
    }
}

#[test]
fn label_parse_operators() {
    let sel = LabelSelector::parse("a=1,b==2,c!=3,d in (4),e notin (5),f,!g,h>6,i<7").expect("parses");
    let ops: Vec<(String, Operator)> = sel.requirements().iter().map(|r| (r.key.clone(), r.operator)).collect();
    let expected = [
        ("a", Operator::Equals),
        ("b", Operator::DoubleEquals),
        ("c", Operator::NotEquals),
        ("d", Operator::In),
        ("e", Operator::NotIn),
        ("f", Operator::Exists),
        ("g", Operator::DoesNotExist),
        ("h", Operator::GreaterThan),
        ("i", Operator::LessThan),
    ];
    let expected: Vec<(String, Operator)> = expected.iter().map(|(k, o)| (k.to_string(), *o)).collect();
    assert_eq!(ops, expected);
}

#[test]
fn label_parse_errors() {
    // (input, expected error text, as kube-apiserver words it)
    let cases = [
        (",x", "found ',', expected: !, identifier, or 'end of string'"),
        ("x,", "found '', expected: identifier after ','"),
        ("x,,y", "found ',', expected: identifier after ','"),
        ("x=a=b", "found '=', expected: ',' or 'end of string'"),
        ("x=a b", "found 'b', expected: ',' or 'end of string'"),
        ("x y", "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"),
        ("x in a", "unable to parse requirement: found 'a' expected: '('"),
        ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
        ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("x=!a", "unable to parse requirement: found '!', expected: identifier"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("x!a", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"),
        (
            "x>a",
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "x=a/b",
            "unable to parse requirement: values[0][x]: Invalid value: \"a/b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        (
            "-x=a",
            "unable to parse requirement: key: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (
            "Example.com/x",
            "unable to parse requirement: key: Invalid value: \"Example.com/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        (
            "example.com/",
            "unable to parse requirement: key: Invalid value: \"example.com/\": name part must be non-empty; name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
    ];
    for (input, expected) in cases {
        let err = LabelSelector::parse(input).expect_err(input);
        assert_eq!(err, expected, "input {input:?}");
    }
}

#[test]
fn label_parse_rejects_long_keys_and_values() {
    let long = "a".repeat(64);
    let err = LabelSelector::parse(&format!("{long}=x")).expect_err("long key");
    assert!(err.contains("name part must be no more than 63 characters"), "{err}");
    let err = LabelSelector::parse(&format!("x={long}")).expect_err("long value");
    assert!(err.contains("must be no more than 63 characters"), "{err}");
    let err = LabelSelector::parse("a/b/c").expect_err("two slashes");
    assert!(err.contains("with an optional DNS subdomain prefix and '/'"), "{err}");
    assert!(LabelSelector::parse(&format!("{}=x", "a".repeat(63))).is_ok());
}

#[test]
fn label_matching_table() {
    let set = labels(&[("env", "prod"), ("tier", "web"), ("replicas", "3"), ("empty", "")]);
    // (selector, matches `set`)
    let cases = [
        ("", true),
        ("env=prod", true),
        ("env==prod", true),
        ("env=dev", false),
        ("env!=dev", true),
        ("env!=prod", false),
        ("missing!=x", true),
        ("missing=x", false),
        ("env in (dev,prod)", true),
        ("env in (dev)", false),
        ("missing in (x)", false),
        ("env notin (dev)", true),
        ("env notin (prod)", false),
        ("missing notin (x)", true),
        ("env", true),
        ("missing", false),
        ("!missing", true),
        ("!env", false),
        ("replicas>2", true),
        ("replicas>3", false),
        ("replicas<4", true),
        ("replicas<3", false),
        ("env>1", false),
        ("missing>1", false),
        ("missing<1", false),
        ("empty=", true),
        ("empty in ()", true),
        ("missing=", false),
        ("env=prod,tier=web", true),
        ("env=prod,tier=db", false),
        ("env=prod,!missing,tier in (web,db),replicas>0", true),
    ];
    for (input, expected) in cases {
        let sel = LabelSelector::parse(input).expect(input);
        assert_eq!(sel.matches(&set), expected, "selector {input:?}");
        let as_map: BTreeMap<String, String> =
            set.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect();
        assert_eq!(sel.matches_map(&as_map), expected, "selector {input:?} on a BTreeMap");
    }
}

#[test]
fn label_matching_absent_labels() {
    let sel = LabelSelector::parse("!a,b notin (x)").expect("parses");
    assert!(sel.matches(&Map::new()));
    assert!(sel.matches_object(&json!({"metadata": {"name": "x"}})));
    assert!(sel.matches_object(&json!({})));
    let sel = LabelSelector::parse("a").expect("parses");
    assert!(!sel.matches_object(&json!({"metadata": {}})));
    assert!(sel.matches_object(&json!({"metadata": {"labels": {"a": ""}}})));
    // Non-string label values are not labels.
    assert!(!sel.matches_object(&json!({"metadata": {"labels": {"a": 1}}})));
}

#[test]
fn label_requires_exact_match() {
    let sel = LabelSelector::parse("a=1,b in (2),c in (3,4),d!=5").expect("parses");
    assert_eq!(sel.requires_exact_match("a"), Some("1"));
    assert_eq!(sel.requires_exact_match("b"), Some("2"));
    assert_eq!(sel.requires_exact_match("c"), None);
    assert_eq!(sel.requires_exact_match("d"), None);
    assert_eq!(sel.requires_exact_match("e"), None);
}

#[test]
fn label_selector_object_table() {
    // (metav1.LabelSelector, canonical selector string)
    let cases = [
        (json!(null), ""),
        (json!({}), ""),
        (json!({"matchLabels": {}, "matchExpressions": []}), ""),
        (json!({"matchLabels": {"b": "2", "a": "1"}}), "a=1,b=2"),
        (
            json!({"matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "gpu", "operator": "Exists"},
                {"key": "spot", "operator": "DoesNotExist", "values": []},
            ]}),
            "env in (dev,prod),gpu,!spot,tier notin (db)",
        ),
        (json!({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "a", "operator": "Exists"}]}), "a=1,a"),
    ];
    for (object, expected) in cases {
        let sel = LabelSelector::from_object(&object).unwrap_or_else(|e| panic!("{object}: {e}"));
        assert_eq!(sel.to_string(), expected, "object {object}");
    }
}

#[test]
fn label_selector_object_matching() {
    let sel = LabelSelector::from_object(&json!({
        "matchLabels": {"vendor": "OpenShift"},
        "matchExpressions": [{"key": "region", "operator": "In", "values": ["us-east-1", "us-west-2"]}],
    }))
    .expect("valid");
    assert!(sel.matches(&labels(&[("vendor", "OpenShift"), ("region", "us-east-1")])));
    assert!(!sel.matches(&labels(&[("vendor", "OpenShift"), ("region", "eu-west-1")])));
    assert!(!sel.matches(&labels(&[("region", "us-east-1")])));
    assert!(LabelSelector::from_object(&json!({})).expect("valid").matches(&Map::new()));
}

#[test]
fn claim_selector_matches_claims() {
    // OCM claim selectors have the same shape, over claim name -> value.
    let sel = LabelSelector::from_object(&json!({"matchExpressions": [
        {"key": "platform.open-cluster-management.io", "operator": "In", "values": ["AWS"]},
        {"key": "region.open-cluster-management.io", "operator": "NotIn", "values": ["eu-west-1"]},
    ]}))
    .expect("valid");
    let mut claims = BTreeMap::new();
    claims.insert("platform.open-cluster-management.io".to_string(), "AWS".to_string());
    claims.insert("region.open-cluster-management.io".to_string(), "us-east-1".to_string());
    assert!(sel.matches_map(&claims));
    claims.insert("region.open-cluster-management.io".to_string(), "eu-west-1".to_string());
    assert!(!sel.matches_map(&claims));
    let lookup = |k: &str| (k == "platform.open-cluster-management.io").then_some("AWS");
    assert!(sel.matches_with(lookup));
}

#[test]
fn label_selector_object_errors() {
    // (object, error text)
    let cases = [
        (
            json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            "matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]}),
            "matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            "matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]}),
            "matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
            "matchExpressions[0].operator: Invalid value: \"Gt\": not a valid selector operator",
        ),
        (json!({"matchLabels": {"a": 1}}), "matchLabels.a: Invalid value: 1: must be of type string"),
        (json!({"matchExpressions": {}}), "matchExpressions: Invalid value: {}: must be of type array"),
        (json!("a=b"), "Invalid value: \"a=b\": must be of type object"),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}),
            "matchExpressions[0].values[0]: Invalid value: 1: must be of type string",
        ),
        (
            json!({"matchExpressions": [{"operator": "Exists"}]}),
            "matchExpressions[0].key: Invalid value: null: must be of type string",
        ),
    ];
    for (object, expected) in cases {
        let err = LabelSelector::from_object(&object).expect_err(&object.to_string());
        assert_eq!(err, expected, "object {object}");
    }
}

#[test]
fn label_selector_validation_reports_field_paths() {
    let errors = LabelSelector::validate_object(
        &json!({
            "matchLabels": {"bad key": "ok", "k": "bad value"},
            "matchExpressions": [
                {"key": "a", "operator": "In", "values": ["ok", "not ok"]},
                {"key": "b", "operator": "Foo"},
            ],
        }),
        "spec.predicates[0].requiredClusterSelector.labelSelector",
    );
    let base = "spec.predicates[0].requiredClusterSelector.labelSelector";
    assert!(errors.iter().all(|e| e.cause == CauseType::FieldValueInvalid), "{errors:?}");
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert_eq!(errors[0].field, format!("{base}.matchLabels"));
    assert!(errors[0].message.starts_with("Invalid value: \"bad key\": name part must consist"));
    assert!(errors[1].message.starts_with("Invalid value: \"bad value\": a valid label must be"));
    assert_eq!(errors[2].field, format!("{base}.matchExpressions[0].values[1]"));
    assert_eq!(errors[3].field, format!("{base}.matchExpressions[1].operator"));
    assert!(LabelSelector::validate_object(&json!(null), "x").is_empty());
}

#[test]
fn requirement_new_checks_value_counts() {
    let cases: [(Operator, Vec<&str>, Option<&str>); 9] = [
        (
            Operator::In,
            vec![],
            Some("values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"),
        ),
        (Operator::Equals, vec!["a", "b"], Some("exact-match compatibility requires one single value")),
        (Operator::Exists, vec!["a"], Some("values set must be empty for exists and does not exist")),
        (Operator::GreaterThan, vec!["1", "2"], Some("for 'Gt', 'Lt' operators, exactly one value is required")),
        (Operator::LessThan, vec!["x"], Some("the value must be an integer")),
        // Negative bounds are integers but not valid label values, so Kubernetes rejects them too.
        (Operator::LessThan, vec!["-5"], Some("a valid label must be an empty string")),
        (Operator::In, vec!["a", ""], None),
        (Operator::DoesNotExist, vec![], None),
        (Operator::GreaterThan, vec!["5"], None),
    ];
    for (op, values, expected) in cases {
        let values: Vec<String> = values.into_iter().map(str::to_string).collect();
        let result = Requirement::new("k", op, values.clone());
        match expected {
            None => assert!(result.is_ok(), "{op:?} {values:?}: {result:?}"),
            Some(text) => {
                let err = result.expect_err("invalid requirement");
                assert!(err.contains(text), "{op:?} {values:?}: {err}");
            }
        }
    }
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "default", "generation": 2},
        "spec": {"nodeName": "node-a", "hostNetwork": false, "priority": 10, "containers": []},
        "status": {"phase": "Running"},
        "involvedObject": {"name": "web", "kind": "Deployment"},
    })
}

#[test]
fn field_selector_matching_table() {
    let obj = pod();
    // (selector, matches the pod)
    let cases = [
        ("", true),
        ("metadata.name=web-1", true),
        ("metadata.name==web-1", true),
        ("metadata.name!=web-1", false),
        ("metadata.name=web-2", false),
        ("metadata.namespace=default", true),
        ("metadata.namespace=default,metadata.name=web-1", true),
        ("metadata.namespace=default,metadata.name=web-2", false),
        ("spec.nodeName=node-a", true),
        ("spec.nodeName!=node-b", true),
        ("status.phase!=Running", false),
        ("involvedObject.name=web", true),
        ("involvedObject.kind=Deployment,involvedObject.name=web", true),
        // Missing fields read as "".
        ("spec.missing=", true),
        ("spec.missing!=", false),
        ("spec.missing=x", false),
        ("spec.missing!=x", true),
        ("metadata.nonexistent.deeper=", true),
        // Numbers and booleans compare by their string form.
        ("spec.hostNetwork=false", true),
        ("spec.priority=10", true),
        ("metadata.generation!=3", true),
        // Objects and lists have no string form.
        ("spec.containers=", false),
        ("spec.containers!=x", true),
        (" metadata.name =web-1", true),
    ];
    for (input, expected) in cases {
        let sel = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.matches(&obj), expected, "selector {input:?}");
    }
}

#[test]
fn field_selector_parse_table() {
    // (input, canonical form)
    let cases = [
        ("", ""),
        (",", ""),
        ("a=b", "a=b"),
        ("a==b", "a=b"),
        ("a!=b", "a!=b"),
        ("b=1,a=2", "a=2,b=1"),
        ("a=", "a="),
        ("a!=", "a!="),
        (r"a=x\,y", r"a=x\,y"),
        (r"a=x\=y", r"a=x\=y"),
        (r"a=x\\y", r"a=x\\y"),
        ("a=b,", "a=b"),
    ];
    for (input, expected) in cases {
        let sel = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.to_string(), expected, "input {input:?}");
    }
    let sel = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").expect("escapes");
    assert_eq!(sel.requirements()[0].value, r"a,b=c\d");
    assert_eq!(sel.requirements()[0].operator, FieldOperator::Equals);
    assert!(sel.matches(&json!({"metadata": {"name": r"a,b=c\d"}})));
}

#[test]
fn field_selector_parse_errors() {
    let cases = [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a<b", "invalid selector: 'a<b'; can't understand 'a<b'"),
        ("=b", "invalid selector: '=b'; can't understand '=b'"),
        ("a=b=c", "invalid field selector: unescaped character '='"),
        (r"a=b\x", r"invalid field selector: invalid escape sequence: \x"),
        (r"a=b\", r"invalid field selector: invalid escape sequence: \"),
    ];
    for (input, expected) in cases {
        let err = FieldSelector::parse(input).expect_err(input);
        assert_eq!(err, expected, "input {input:?}");
    }
}

#[test]
fn field_selector_exact_match() {
    let sel = FieldSelector::parse("metadata.name=x,metadata.namespace!=y").expect("parses");
    assert_eq!(sel.requires_exact_match("metadata.name"), Some("x"));
    assert_eq!(sel.requires_exact_match("metadata.namespace"), None);
    assert!(!sel.is_empty());
    assert!(FieldSelector::parse("").expect("empty").is_empty());
}

#[test]
fn field_value_forms() {
    let obj = json!({"a": {"s": "x", "n": 1.5, "i": -3, "b": true, "z": null, "o": {}, "l": [1]}});
    let cases = [
        ("a.s", Some("x")),
        ("a.n", Some("1.5")),
        ("a.i", Some("-3")),
        ("a.b", Some("true")),
        ("a.z", Some("")),
        ("a.missing", Some("")),
        ("a.o", None),
        ("a.l", None),
    ];
    for (path, expected) in cases {
        assert_eq!(FieldSelector::field_value(&obj, path).as_deref(), expected, "path {path}");
    }
}
