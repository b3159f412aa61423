#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};

use flotilla_apimachinery::crd::validate_crd;
use flotilla_apimachinery::{ListType, MergeStrategy, NameFormat, ResourceDef, Schema};
use serde_json::{Value, json};

use super::*;

fn find<'a>(kinds: &'a [ResourceDef], group: &str, version: &str, plural: &str) -> &'a ResourceDef {
    kinds
        .iter()
        .find(|d| d.group == group && d.version == version && d.plural == plural)
        .unwrap_or_else(|| panic!("{group}/{version} {plural} is missing"))
}

fn gvp(kinds: &[ResourceDef]) -> Vec<String> {
    kinds.iter().map(|d| format!("{}/{}/{}", d.group, d.version, d.plural)).collect()
}

#[test]
fn hub_kinds_load() {
    let kinds = hub_kinds().unwrap();
    let expected = [
        ("", "v1", "namespaces", "Namespace", false),
        ("", "v1", "events", "Event", true),
        ("", "v1", "configmaps", "ConfigMap", true),
        ("", "v1", "secrets", "Secret", true),
        ("coordination.k8s.io", "v1", "leases", "Lease", true),
        ("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", false),
        ("apps", "v1", "controllerrevisions", "ControllerRevision", true),
        ("cluster.open-cluster-management.io", "v1", "managedclusters", "ManagedCluster", false),
        ("cluster.open-cluster-management.io", "v1beta2", "managedclustersets", "ManagedClusterSet", false),
        (
            "cluster.open-cluster-management.io",
            "v1beta2",
            "managedclustersetbindings",
            "ManagedClusterSetBinding",
            true,
        ),
        ("cluster.open-cluster-management.io", "v1beta1", "placements", "Placement", true),
        ("cluster.open-cluster-management.io", "v1beta1", "placementdecisions", "PlacementDecision", true),
        ("cluster.open-cluster-management.io", "v1alpha1", "addonplacementscores", "AddOnPlacementScore", true),
        ("work.open-cluster-management.io", "v1", "manifestworks", "ManifestWork", true),
        ("work.open-cluster-management.io", "v1alpha1", "manifestworkreplicasets", "ManifestWorkReplicaSet", true),
        ("policy.open-cluster-management.io", "v1", "policies", "Policy", true),
        ("policy.open-cluster-management.io", "v1", "placementbindings", "PlacementBinding", true),
        ("policy.open-cluster-management.io", "v1beta1", "policysets", "PolicySet", true),
        ("flotilla.dev", "v1alpha1", "wasmplugins", "WasmPlugin", false),
        ("flotilla.dev", "v1alpha1", "wasmpolicies", "WasmPolicy", true),
        ("flotilla.dev", "v1alpha1", "bootstraptokens", "BootstrapToken", false),
    ];
    assert_eq!(kinds.len(), expected.len(), "{:?}", gvp(&kinds));
    for (group, version, plural, kind, namespaced) in expected {
        let def = find(&kinds, group, version, plural);
        assert_eq!(def.kind, kind);
        assert_eq!(def.namespaced, namespaced, "{plural}");
        assert!(def.storage_version, "{plural}");
        assert!(def.schema.is_some(), "{plural}");
    }
    let wp = find(&kinds, "flotilla.dev", "v1alpha1", "wasmplugins");
    assert_eq!(wp.short_names, vec!["wp"]);
    assert!(wp.status_subresource);
    let columns: Vec<(&str, i32)> = wp.printer_columns.iter().map(|c| (c.name.as_str(), c.priority)).collect();
    assert_eq!(columns, vec![("World", 0), ("Version", 0), ("Digest", 1), ("Age", 0)]);
    let bt = find(&kinds, "flotilla.dev", "v1alpha1", "bootstraptokens");
    assert!(!bt.status_subresource);
    let columns: Vec<(&str, i32)> = bt.printer_columns.iter().map(|c| (c.name.as_str(), c.priority)).collect();
    assert_eq!(columns, vec![("Expires", 0), ("Usages", 1), ("Description", 0), ("Age", 0)]);
    let token = json!({"apiVersion": "flotilla.dev/v1alpha1", "kind": "BootstrapToken", "metadata": {"name": "abc123"},
        "spec": {"secretHash": format!("sha256:{}", "0".repeat(64))}});
    let admitted = admit(bt, &token, None).unwrap();
    assert_eq!(admitted["spec"]["usages"], json!(["registration"]));
    let mut bad = token.clone();
    bad["metadata"]["name"] = json!("not-a-token-id");
    bad["spec"]["secretHash"] = json!("abc");
    let err = admit(bt, &bad, None).unwrap_err();
    assert!(err.contains("metadata.name") && err.contains("spec.secretHash"), "{err}");
}

#[test]
fn spoke_kinds_load() {
    let kinds = spoke_kinds().unwrap();
    let expected: &[(&str, &str, &str, &[&str], bool)] = &[
        ("", "v1", "namespaces", &["ns"], false),
        ("", "v1", "nodes", &["no"], false),
        ("", "v1", "pods", &["po"], true),
        ("", "v1", "services", &["svc"], true),
        ("", "v1", "configmaps", &["cm"], true),
        ("", "v1", "secrets", &[], true),
        ("", "v1", "serviceaccounts", &["sa"], true),
        ("", "v1", "events", &["ev"], true),
        ("", "v1", "endpoints", &["ep"], true),
        ("", "v1", "persistentvolumeclaims", &["pvc"], true),
        ("", "v1", "persistentvolumes", &["pv"], false),
        ("", "v1", "resourcequotas", &["quota"], true),
        ("", "v1", "limitranges", &["limits"], true),
        ("apps", "v1", "deployments", &["deploy"], true),
        ("apps", "v1", "statefulsets", &["sts"], true),
        ("apps", "v1", "daemonsets", &["ds"], true),
        ("apps", "v1", "replicasets", &["rs"], true),
        ("apps", "v1", "controllerrevisions", &[], true),
        ("batch", "v1", "jobs", &[], true),
        ("batch", "v1", "cronjobs", &["cj"], true),
        ("rbac.authorization.k8s.io", "v1", "roles", &[], true),
        ("rbac.authorization.k8s.io", "v1", "rolebindings", &[], true),
        ("rbac.authorization.k8s.io", "v1", "clusterroles", &[], false),
        ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", &[], false),
        ("networking.k8s.io", "v1", "networkpolicies", &["netpol"], true),
        ("networking.k8s.io", "v1", "ingresses", &["ing"], true),
        ("policy", "v1", "poddisruptionbudgets", &["pdb"], true),
        ("coordination.k8s.io", "v1", "leases", &[], true),
        ("storage.k8s.io", "v1", "storageclasses", &["sc"], false),
        ("scheduling.k8s.io", "v1", "priorityclasses", &["pc"], false),
        ("apiextensions.k8s.io", "v1", "customresourcedefinitions", &["crd", "crds"], false),
        ("cluster.open-cluster-management.io", "v1alpha1", "clusterclaims", &[], false),
        ("work.open-cluster-management.io", "v1", "appliedmanifestworks", &[], false),
        ("policy.open-cluster-management.io", "v1", "configurationpolicies", &[], true),
    ];
    assert_eq!(kinds.len(), expected.len(), "{:?}", gvp(&kinds));
    for (group, version, plural, short, namespaced) in expected {
        let def = find(&kinds, group, version, plural);
        assert_eq!(def.short_names, *short, "{plural}");
        assert_eq!(def.namespaced, *namespaced, "{plural}");
        assert!(def.schema.is_some(), "{plural}");
        // CRDs without additionalPrinterColumns get kubectl's NAME and AGE.
        if !group.ends_with("open-cluster-management.io") {
            assert!(!def.printer_columns.is_empty(), "{plural}");
        }
    }
    let in_all: Vec<&str> =
        kinds.iter().filter(|d| d.categories.iter().any(|c| c == "all")).map(|d| d.plural.as_str()).collect();
    assert_eq!(
        in_all,
        vec!["pods", "services", "deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs"]
    );
    assert_eq!(find(&kinds, "", "v1", "namespaces").name_format, NameFormat::Dns1123Label);
}

#[test]
fn names_are_unique_per_group_version() {
    for (side, kinds) in [("hub", hub_kinds().unwrap()), ("spoke", spoke_kinds().unwrap())] {
        let mut plurals = HashSet::new();
        let mut singulars = HashSet::new();
        let mut kind_names = HashSet::new();
        let mut short_names: HashMap<&str, &str> = HashMap::new();
        for def in &kinds {
            let gv = def.api_version();
            assert!(plurals.insert((gv.clone(), def.plural.clone())), "{side}: duplicate plural {gv} {}", def.plural);
            assert!(
                singulars.insert((gv.clone(), def.singular.clone())),
                "{side}: duplicate singular {gv} {}",
                def.singular
            );
            assert!(kind_names.insert((gv.clone(), def.kind.clone())), "{side}: duplicate kind {gv} {}", def.kind);
            assert_eq!(def.list_kind, format!("{}List", def.kind));
            assert_eq!(def.singular, def.kind.to_lowercase());
            assert_eq!(def.plural, def.plural.to_lowercase());
            for short in &def.short_names {
                // kubectl resolves short names across groups, so they must not clash.
                if let Some(other) = short_names.insert(short, &def.plural) {
                    panic!("{side}: short name {short} of {} is also {other}'s", def.plural);
                }
            }
        }
    }
}

/// The keywords a structural `openAPIV3Schema` node may use.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "description",
    "title",
    "nullable",
    "default",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "properties",
    "additionalProperties",
    "items",
    "required",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "example",
    "externalDocs",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// Checks one schema node and everything below it; returns the problems found.
fn check_schema(node: &Value, path: &str, in_combinator: bool, problems: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        problems.push(format!("{path}: not an object"));
        return;
    };
    for key in obj.keys() {
        if !SCHEMA_KEYS.contains(&key.as_str()) {
            problems.push(format!("{path}: unknown keyword {key}"));
        }
    }
    let type_ = obj.get("type").and_then(Value::as_str);
    if let Some(t) = obj.get("type")
        && !matches!(t.as_str(), Some("object" | "array" | "string" | "integer" | "number" | "boolean"))
    {
        problems.push(format!("{path}: bad type {t}"));
    }
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&json!(true));
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if type_.is_none() && !int_or_string && !preserve && !in_combinator {
        problems.push(format!("{path}: no type (not structural)"));
    }
    if let Some(props) = obj.get("properties") {
        if type_ != Some("object") {
            problems.push(format!("{path}: properties on a non-object"));
        }
        match props.as_object() {
            Some(props) => {
                for (name, child) in props {
                    check_schema(child, &format!("{path}.{name}"), false, problems);
                }
            }
            None => problems.push(format!("{path}: properties is not a map")),
        }
    }
    if let Some(required) = obj.get("required") {
        let declared = obj.get("properties").and_then(Value::as_object);
        match required.as_array() {
            Some(list) => {
                for name in list {
                    match (name.as_str(), declared) {
                        (Some(n), Some(props)) if !props.contains_key(n) && !preserve => {
                            problems.push(format!("{path}: required {n} is not a property"));
                        }
                        (None, _) => problems.push(format!("{path}: required entry {name} is not a string")),
                        _ => {}
                    }
                }
            }
            None => problems.push(format!("{path}: required is not a list")),
        }
    }
    if let Some(items) = obj.get("items") {
        if type_ != Some("array") {
            problems.push(format!("{path}: items on a non-array"));
        }
        check_schema(items, &format!("{path}[]"), false, problems);
    } else if type_ == Some("array") {
        problems.push(format!("{path}: array without items"));
    }
    match obj.get("additionalProperties") {
        None | Some(Value::Bool(_)) => {}
        Some(schema) => check_schema(schema, &format!("{path}{{}}"), false, problems),
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(branches) = obj.get(combinator) {
            for (i, branch) in branches.as_array().into_iter().flatten().enumerate() {
                check_schema(branch, &format!("{path}.{combinator}[{i}]"), true, problems);
            }
        }
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        for value in values {
            let ok = match type_ {
                Some("string") => value.is_string(),
                Some("integer") => value.is_i64() || value.is_u64(),
                Some("boolean") => value.is_boolean(),
                _ => true,
            };
            if !ok {
                problems.push(format!("{path}: enum value {value} is not a {type_:?}"));
            }
        }
    }
    if let Some(list_type) = obj.get("x-kubernetes-list-type") {
        if type_ != Some("array") {
            problems.push(format!("{path}: x-kubernetes-list-type on a non-array"));
        }
        match list_type.as_str() {
            Some("atomic" | "set") => {}
            Some("map") => check_map_list(obj, path, problems),
            _ => problems.push(format!("{path}: bad x-kubernetes-list-type {list_type}")),
        }
    } else if obj.contains_key("x-kubernetes-list-map-keys") {
        problems.push(format!("{path}: list-map-keys without list-type map"));
    }
    if let Some(map_type) = obj.get("x-kubernetes-map-type")
        && !matches!(map_type.as_str(), Some("atomic" | "granular"))
    {
        problems.push(format!("{path}: bad x-kubernetes-map-type {map_type}"));
    }
}

/// A map list's keys exist in its items and are required or defaulted.
fn check_map_list(obj: &serde_json::Map<String, Value>, path: &str, problems: &mut Vec<String>) {
    let keys: Vec<&str> = obj
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if keys.is_empty() {
        problems.push(format!("{path}: list-type map without keys"));
    }
    let items = obj.get("items");
    let props = items.and_then(|i| i.get("properties")).and_then(Value::as_object);
    let required: Vec<&str> = items
        .and_then(|i| i.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for key in keys {
        match props.and_then(|p| p.get(key)) {
            None => problems.push(format!("{path}: map key {key} is not an item property")),
            Some(prop) if !required.contains(&key) && prop.get("default").is_none() => {
                problems.push(format!("{path}: map key {key} is neither required nor defaulted"));
            }
            Some(_) => {}
        }
    }
}

#[test]
fn every_schema_is_sane_and_compiles() {
    let mut kinds = hub_kinds().unwrap();
    kinds.extend(spoke_kinds().unwrap());
    let mut problems = Vec::new();
    for def in &kinds {
        let name = format!("{}/{}", def.api_version(), def.plural);
        let Some(schema) = &def.schema else {
            problems.push(format!("{name}: no schema"));
            continue;
        };
        check_schema(schema, &name, false, &mut problems);
        if schema.get("type") != Some(&json!("object")) {
            problems.push(format!("{name}: root is not an object"));
        }
        if let Err(e) = Schema::compile(schema) {
            problems.push(format!("{name}: does not compile: {e}"));
        }
        for column in &def.printer_columns {
            if !column.json_path.starts_with('.') {
                problems.push(format!("{name}: column {} path {}", column.name, column.json_path));
            }
            if !["integer", "number", "string", "boolean", "date"].contains(&column.type_.as_str()) {
                problems.push(format!("{name}: column {} type {}", column.name, column.type_));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn embedded_crds_are_valid() {
    let manifests = crd_manifests().unwrap();
    assert_eq!(manifests.len(), CRD_FILES.len());
    for crd in &manifests {
        assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
        let errs = validate_crd(crd);
        assert!(errs.is_empty(), "{}: {errs:?}", crd["metadata"]["name"]);
    }
    let hub = crd_manifests_for(Side::Hub).unwrap();
    let spoke = crd_manifests_for(Side::Spoke).unwrap();
    assert_eq!(hub.len() + spoke.len(), manifests.len());
    let names: Vec<&str> = spoke.iter().filter_map(|c| c["metadata"]["name"].as_str()).collect();
    assert_eq!(
        names,
        vec![
            "clusterclaims.cluster.open-cluster-management.io",
            "appliedmanifestworks.work.open-cluster-management.io",
            "configurationpolicies.policy.open-cluster-management.io",
        ]
    );
}

#[test]
fn yaml_scalars_keep_their_types() {
    let kinds = hub_kinds().unwrap();
    let placement = find(&kinds, "cluster.open-cluster-management.io", "v1beta1", "placements");
    let spec = &placement.schema.as_ref().unwrap()["properties"]["spec"]["properties"];
    let group_strategy = &spec["decisionStrategy"]["properties"]["groupStrategy"]["properties"];
    assert_eq!(group_strategy["clustersPerDecisionGroup"]["default"], json!("100%"));
    let weight = &spec["prioritizerPolicy"]["properties"]["configurations"]["items"]["properties"]["weight"];
    assert_eq!(
        (weight["minimum"].as_i64(), weight["maximum"].as_i64(), weight["default"].as_i64()),
        (Some(-10), Some(10), Some(1))
    );
    assert_eq!(spec["scoreRateLimit"]["pattern"], json!("^[0-9]+[hms]$"));
    let mc = find(&kinds, "cluster.open-cluster-management.io", "v1", "managedclusters");
    let status_enum = &mc.schema.as_ref().unwrap()["properties"]["status"]["properties"]["conditions"]["items"]["properties"]
        ["status"]["enum"];
    assert_eq!(status_enum, &json!(["True", "False", "Unknown"]));
    let mwrs = find(&kinds, "work.open-cluster-management.io", "v1alpha1", "manifestworkreplicasets");
    let all = &mwrs.schema.as_ref().unwrap()["properties"]["spec"]["properties"]["placementRefs"]["items"]["properties"]
        ["rolloutStrategy"]["properties"]["all"]["properties"];
    assert_eq!(all["minSuccessTime"]["default"], json!("0"));
    assert_eq!(all["progressDeadline"]["default"], json!("None"));
}

#[test]
fn ocm_printer_columns() {
    let kinds = hub_kinds().unwrap();
    let mc = find(&kinds, "cluster.open-cluster-management.io", "v1", "managedclusters");
    let columns: Vec<(&str, &str, &str)> =
        mc.printer_columns.iter().map(|c| (c.name.as_str(), c.type_.as_str(), c.json_path.as_str())).collect();
    assert_eq!(
        columns,
        vec![
            ("Hub Accepted", "boolean", ".spec.hubAcceptsClient"),
            ("Managed Cluster URLs", "string", ".spec.managedClusterClientConfigs[*].url"),
            ("Joined", "string", ".status.conditions[?(@.type==\"ManagedClusterJoined\")].status"),
            ("Available", "string", ".status.conditions[?(@.type==\"ManagedClusterConditionAvailable\")].status"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ]
    );
    assert_eq!(mc.short_names, vec!["mcl", "mcls"]);
    assert!(mc.status_subresource);
    assert_eq!(mc.name_format, NameFormat::Dns1123Label);
    let placement = find(&kinds, "cluster.open-cluster-management.io", "v1beta1", "placements");
    let names: Vec<&str> = placement.printer_columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["Succeeded", "Reason", "SelectedClusters"]);
}

#[test]
fn webhook_rules_are_attached() {
    let kinds = hub_kinds().unwrap();
    let with_validator: Vec<&str> = kinds.iter().filter(|d| d.validator.is_some()).map(|d| d.plural.as_str()).collect();
    assert_eq!(
        with_validator,
        vec![
            "configmaps",
            "secrets",
            "certificatesigningrequests",
            "managedclustersetbindings",
            "placements",
            "manifestworks",
            "manifestworkreplicasets",
            "bootstraptokens"
        ]
    );
    let spoke = spoke_kinds().unwrap();
    let with_validator: Vec<&str> = spoke.iter().filter(|d| d.validator.is_some()).map(|d| d.plural.as_str()).collect();
    assert_eq!(
        with_validator,
        vec!["configmaps", "secrets", "rolebindings", "clusterrolebindings", "customresourcedefinitions"]
    );
}

fn map(keys: &[&str]) -> ListType {
    ListType::Map(keys.iter().map(|k| k.to_string()).collect())
}

/// Checks the list semantics of a pod spec at `prefix` in a compiled schema.
fn assert_pod_spec_lists(schema: &Schema, prefix: &[&str], what: &str) {
    let at = |rest: &[&str]| -> ListType {
        let path: Vec<&str> = prefix.iter().chain(rest).copied().collect();
        schema.list_type(&path)
    };
    for containers in ["containers", "initContainers", "ephemeralContainers"] {
        assert_eq!(at(&[containers]), map(&["name"]), "{what} {containers}");
        assert_eq!(at(&[containers, "env"]), map(&["name"]), "{what} {containers}.env");
        assert_eq!(at(&[containers, "ports"]), map(&["containerPort", "protocol"]), "{what} {containers}.ports");
        assert_eq!(at(&[containers, "volumeMounts"]), map(&["mountPath"]), "{what} {containers}.volumeMounts");
        assert_eq!(at(&[containers, "args"]), ListType::Atomic, "{what} {containers}.args");
    }
    assert_eq!(at(&["volumes"]), map(&["name"]), "{what} volumes");
    assert_eq!(at(&["imagePullSecrets"]), map(&["name"]), "{what} imagePullSecrets");
    assert_eq!(at(&["tolerations"]), ListType::Atomic, "{what} tolerations");
}

#[test]
fn pod_specs_declare_merge_keys_everywhere() {
    let kinds = spoke_kinds().unwrap();
    let compiled = |plural: &str, group: &str| {
        let def = find(&kinds, group, "v1", plural);
        Schema::compile(def.schema.as_ref().unwrap()).unwrap()
    };
    assert_pod_spec_lists(&compiled("pods", ""), &["spec"], "pods");
    for (group, plural) in [
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("apps", "replicasets"),
        ("batch", "jobs"),
    ] {
        assert_pod_spec_lists(&compiled(plural, group), &["spec", "template", "spec"], plural);
    }
    assert_pod_spec_lists(
        &compiled("cronjobs", "batch"),
        &["spec", "jobTemplate", "spec", "template", "spec"],
        "cronjobs",
    );

    let service = compiled("services", "");
    assert_eq!(service.list_type(&["spec", "ports"]), map(&["port", "protocol"]));
    assert!(service.map_is_atomic(&["spec", "selector"]));
    for (group, plural) in [("", "pods"), ("", "nodes"), ("apps", "deployments"), ("batch", "jobs"), ("", "services")] {
        assert_eq!(compiled(plural, group).list_type(&["status", "conditions"]), map(&["type"]), "{plural}");
    }
    assert_eq!(compiled("namespaces", "").list_type(&["spec", "finalizers"]), ListType::Atomic);
}

/// Runs an object through what the API server does with a schema and validator:
/// prune (nothing may be unknown), default, validate.
fn admit(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Result<Value, String> {
    let schema = Schema::compile(def.schema.as_ref().ok_or("no schema")?)?;
    let mut obj = obj.clone();
    let pruned = schema.prune(&mut obj);
    if !pruned.is_empty() {
        return Err(format!("unknown fields: {pruned:?}"));
    }
    schema.apply_defaults(&mut obj);
    let mut errs = schema.validate(&obj, old);
    if let Some(validator) = def.validator {
        errs.extend(validator(&obj, old));
    }
    if errs.is_empty() { Ok(obj) } else { Err(errs.iter().map(|e| e.to_message()).collect::<Vec<_>>().join("; ")) }
}

fn kind_for<'a>(kinds: &'a [ResourceDef], obj: &Value) -> &'a ResourceDef {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    kinds
        .iter()
        .find(|d| d.api_version() == api_version && d.kind == kind)
        .unwrap_or_else(|| panic!("no kind {api_version} {kind}"))
}

#[test]
fn realistic_spoke_objects_are_accepted() {
    let kinds = spoke_kinds().unwrap();
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}],
                        "env": [{"name": "A", "value": "1"}],
                        "resources": {"requests": {"cpu": "100m", "memory": 64}},
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                    }],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }
            }
        },
        "status": {}
    });
    let admitted = admit(kind_for(&kinds, &deployment), &deployment, None).unwrap();
    assert_eq!(admitted["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");

    let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{"image": "x"}]}}}});
    let err = admit(kind_for(&kinds, &bad), &bad, None).unwrap_err();
    assert!(err.contains("spec.template.spec.containers[0].name: Required value"), "{err}");

    let node = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "spec": {"providerID": "flotilla://c/n1"},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "3800m", "memory": "15Gi"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok"}],
            "nodeInfo": {"kubeletVersion": "v1.34.0", "operatingSystem": "linux"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]
        }
    });
    admit(kind_for(&kinds, &node), &node, None).unwrap();

    let secret =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "!!"}});
    let err = admit(kind_for(&kinds, &secret), &secret, None).unwrap_err();
    assert!(err.contains("data[k]: Invalid value"), "{err}");

    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
        "spec": {"holderIdentity": "agent", "leaseDurationSeconds": 60, "renewTime": "2026-01-02T03:04:05.123456Z"}});
    admit(kind_for(&kinds, &lease), &lease, None).unwrap();

    let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox", "args": ["date"]}]}}}}}});
    admit(kind_for(&kinds, &cronjob), &cronjob, None).unwrap();
}

#[test]
fn hub_objects_are_checked() {
    let kinds = hub_kinds().unwrap();
    let csr = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "c"},
        "spec": {"request": "bm90IGEgY3Ny", "signerName": "kubernetes.io/kube-apiserver-client",
                 "usages": ["client auth", "sign"], "expirationSeconds": 60}});
    let err = admit(kind_for(&kinds, &csr), &csr, None).unwrap_err();
    assert!(err.contains("spec.usages[1]: Unsupported value"), "{err}");
    assert!(err.contains("spec.expirationSeconds"), "{err}");
    assert!(err.contains("spec.request: Invalid value"), "{err}");

    let wp = json!({"apiVersion": "flotilla.dev/v1alpha1", "kind": "WasmPlugin", "metadata": {"name": "p"},
        "spec": {"world": "placement-scorer", "version": "1.2.3", "digest": format!("sha256:{}", "a".repeat(64)),
                 "limits": {"timeoutMillis": 100}}});
    let admitted = admit(kind_for(&kinds, &wp), &wp, None).unwrap();
    assert_eq!(admitted["spec"]["failurePolicy"], "Fail");
    let mut bad = wp.clone();
    bad["spec"]["world"] = json!("scheduler");
    bad["spec"]["digest"] = json!("sha256:XYZ");
    bad["spec"]["limits"]["timeoutMillis"] = json!(0);
    let err = admit(kind_for(&kinds, &bad), &bad, None).unwrap_err();
    for field in ["spec.world", "spec.digest", "spec.limits.timeoutMillis"] {
        assert!(err.contains(field), "{field}: {err}");
    }
}

/// The example YAMLs of `tests/fixtures/<subdir>`, one document or more per file.
fn fixtures_in(subdir: &str) -> BTreeMap<String, Vec<Value>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(subdir);
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        out.insert(name, docs.into_iter().filter(|d| !d.is_null()).collect());
    }
    out
}

/// The OCM example YAMLs the end-to-end tests apply.
fn fixtures() -> BTreeMap<String, Vec<Value>> {
    fixtures_in("ocm")
}

#[test]
fn flotilla_fixtures_are_accepted_by_the_hub_kinds() {
    // The hub also checks a WasmPlugin against its component (admission in the hub crate).
    let kinds = hub_kinds().unwrap();
    let fixtures = fixtures_in("flotilla");
    let names: Vec<&str> = fixtures.keys().map(String::as_str).collect();
    assert_eq!(names, ["wasmplugin.yaml"]);
    for (file, docs) in &fixtures {
        for doc in docs {
            if let Err(e) = admit(kind_for(&kinds, doc), doc, None) {
                panic!("{file}: {} {}: {e}", doc["kind"], doc["metadata"]["name"]);
            }
        }
    }
}

#[test]
fn ocm_fixtures_are_accepted_by_the_hub_kinds() {
    let kinds = hub_kinds().unwrap();
    let fixtures = fixtures();
    let expected = [
        "addonplacementscore.yaml",
        "managedcluster.yaml",
        "managedclusterset.yaml",
        "managedclustersetbinding.yaml",
        "manifestwork.yaml",
        "manifestworkreplicaset.yaml",
        "placement.yaml",
        "placementbinding.yaml",
        "policy.yaml",
        "policyset.yaml",
    ];
    let names: Vec<&str> = fixtures.keys().map(String::as_str).collect();
    assert_eq!(names, expected);
    for (file, docs) in &fixtures {
        assert!(!docs.is_empty(), "{file}");
        for doc in docs {
            let def = kind_for(&kinds, doc);
            if let Err(e) = admit(def, doc, None) {
                panic!("{file}: {} {}: {e}", doc["kind"], doc["metadata"]["name"]);
            }
        }
    }
}

#[test]
fn unknown_fields_are_caught() {
    // OCM's own documentation once wrote `rolloutType:`; the CRD calls it `type`.
    let kinds = hub_kinds().unwrap();
    let mwrs = json!({
        "apiVersion": "work.open-cluster-management.io/v1alpha1",
        "kind": "ManifestWorkReplicaSet",
        "metadata": {"name": "m", "namespace": "ocm-ns"},
        "spec": {
            "placementRefs": [{"name": "p", "rolloutStrategy": {"rolloutType": "All"}}],
            "manifestWorkTemplate": {"workload": {"manifests": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
            ]}}
        }
    });
    let err = admit(kind_for(&kinds, &mwrs), &mwrs, None).unwrap_err();
    assert!(err.contains("rolloutType"), "{err}");
}

#[test]
fn manifest_work_status_takes_raw_json_feedback_up_to_64_kib() {
    let crd = crd_manifests_for(Side::Hub)
        .expect("hub CRDs")
        .into_iter()
        .find(|c| c.pointer("/spec/names/kind").and_then(|k| k.as_str()) == Some("ManifestWork"))
        .expect("the ManifestWork CRD");
    let text = crd.to_string();
    let limits: Vec<&str> = text.match_indices("\"jsonRaw\":{").map(|(i, _)| &text[i..i + 200]).collect();
    assert!(!limits.is_empty(), "jsonRaw in the status schema");
    for raw in limits {
        assert!(raw.contains("\"maxLength\":65536"), "{raw}");
    }
    // Nothing else in the vendored file changed.
    let pristine: serde_json::Value =
        serde_saphyr::from_str(CRD_FILES.iter().find(|f| f.file.contains("_manifestworks.")).expect("the file").yaml)
            .expect("yaml");
    assert_eq!(
        pristine.to_string().replace("\"maxLength\":1024,\"type\":\"string\"", "X"),
        text.replace("\"maxLength\":65536,\"type\":\"string\"", "X")
    );
}

#[test]
fn placement_plugin_references_survive_admission() {
    let kinds = hub_kinds().unwrap();
    let placement = json!({
        "apiVersion": "cluster.open-cluster-management.io/v1beta1",
        "kind": "Placement",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "predicates": [{"requiredClusterSelector": {
                "labelSelector": {"matchLabels": {"env": "prod"}},
                "plugin": {"name": "region-filter", "failurePolicy": "Ignore",
                    "configuration": {"regions": ["eu", "us"], "nested": {"deep": [1, {"x": true}]}}}
            }}],
            "prioritizerPolicy": {"mode": "Exact", "configurations": [
                {"scoreCoordinate": {"type": "Plugin", "plugin": {"name": "cost", "configuration": {"weightCpu": 2}}},
                 "weight": 3},
                {"scoreCoordinate": {"type": "BuiltIn", "builtIn": "Steady"}}
            ]}
        }
    });
    let admitted = admit(kind_for(&kinds, &placement), &placement, None).unwrap();
    assert_eq!(
        admitted.pointer("/spec/predicates/0/requiredClusterSelector/plugin"),
        placement.pointer("/spec/predicates/0/requiredClusterSelector/plugin"),
        "the filter reference and its free-form configuration are kept"
    );
    assert_eq!(
        admitted.pointer("/spec/prioritizerPolicy/configurations/0/scoreCoordinate"),
        placement.pointer("/spec/prioritizerPolicy/configurations/0/scoreCoordinate")
    );
    assert_eq!(
        admitted.pointer("/spec/prioritizerPolicy/configurations/1/weight"),
        Some(&json!(1)),
        "defaults still apply"
    );

    let mut bad = placement.clone();
    bad["spec"]["predicates"][0]["requiredClusterSelector"]["plugin"] = json!({"failurePolicy": "Sometimes"});
    bad["spec"]["prioritizerPolicy"]["configurations"][0]["scoreCoordinate"] = json!({"type": "Plugin"});
    let err = admit(kind_for(&kinds, &bad), &bad, None).unwrap_err();
    for field in [
        "spec.predicates[0].requiredClusterSelector.plugin.name",
        "spec.predicates[0].requiredClusterSelector.plugin.failurePolicy",
        "spec.prioritizerPolicy.configurations[0].scoreCoordinate.plugin.name",
    ] {
        assert!(err.contains(field), "{field}: {err}");
    }
    let mut limited = placement.clone();
    limited["spec"]["predicates"][0]["requiredClusterSelector"]["plugin"]["limits"] = json!({"timeoutMillis": 5});
    let admitted = admit(kind_for(&kinds, &limited), &limited, None).unwrap();
    assert_eq!(
        admitted.pointer("/spec/predicates/0/requiredClusterSelector/plugin/limits/timeoutMillis"),
        Some(&json!(5))
    );
    let mut unknown = placement.clone();
    unknown["spec"]["predicates"][0]["requiredClusterSelector"]["plugin"]["digest"] = json!("sha256:0");
    let err = admit(kind_for(&kinds, &unknown), &unknown, None).unwrap_err();
    assert!(err.contains("digest"), "only name, configuration, failurePolicy and limits: {err}");
    limited["spec"]["predicates"][0]["requiredClusterSelector"]["plugin"]["limits"] = json!({"timeoutMillis": 0});
    let err = admit(kind_for(&kinds, &limited), &limited, None).unwrap_err();
    assert!(err.contains("timeoutMillis"), "{err}");
}

#[test]
fn placement_crd_changes_only_by_the_plugin_references() {
    let file = CRD_FILES.iter().find(|f| f.file.contains("_placements.")).unwrap();
    let mut loaded = vendored::parse(file).unwrap();
    let pristine: Value = serde_saphyr::from_str(file.yaml).unwrap();
    assert_ne!(loaded, pristine);
    let versions = loaded["spec"]["versions"].as_array_mut().unwrap();
    assert!(!versions.is_empty());
    for version in versions {
        let spec = &mut version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        let selector =
            spec["predicates"]["items"]["properties"]["requiredClusterSelector"]["properties"].as_object_mut().unwrap();
        let plugin = selector.remove("plugin").unwrap();
        assert_eq!(plugin["required"], json!(["name"]));
        assert_eq!(plugin["properties"]["failurePolicy"]["enum"], json!(["Fail", "Ignore"]));
        assert_eq!(plugin["properties"]["configuration"]["x-kubernetes-preserve-unknown-fields"], json!(true));
        let coordinate = spec["prioritizerPolicy"]["properties"]["configurations"]["items"]["properties"]
            ["scoreCoordinate"]["properties"]
            .as_object_mut()
            .unwrap();
        assert!(coordinate.remove("plugin").is_some());
        let kind = coordinate["type"].as_object_mut().unwrap();
        assert_eq!(kind["enum"].as_array_mut().unwrap().pop(), Some(json!("Plugin")));
        let description = kind["description"].as_str().unwrap();
        let original = description.split("\nWhen the type is \"Plugin\"").next().unwrap().to_string();
        kind.insert("description".into(), json!(original));
    }
    assert_eq!(loaded, pristine, "nothing else in the vendored CRD changed");
}

#[test]
fn manifest_work_replica_set_crd_changes_only_by_the_rollout_extensions() {
    let file = CRD_FILES.iter().find(|f| f.file.contains("_manifestworkreplicasets.")).unwrap();
    let mut loaded = vendored::parse(file).unwrap();
    let pristine: Value = serde_saphyr::from_str(file.yaml).unwrap();
    assert_ne!(loaded, pristine);
    for version in loaded["spec"]["versions"].as_array_mut().unwrap() {
        let root = &mut version["schema"]["openAPIV3Schema"]["properties"];
        let spec = root["spec"]["properties"].as_object_mut().unwrap();
        for field in ["manifestTransform", "rollback", "revisionHistoryLimit"] {
            assert!(spec.remove(field).is_some(), "spec.{field}");
        }
        let strategy =
            spec["placementRefs"]["items"]["properties"]["rolloutStrategy"]["properties"].as_object_mut().unwrap();
        let plugin = strategy.remove("plugin").unwrap();
        assert_eq!(plugin["required"], json!(["name"]));
        assert_eq!(plugin["properties"]["failurePolicy"]["enum"], json!(["Fail", "Ignore"]));
        assert_eq!(strategy["type"]["enum"].as_array_mut().unwrap().pop(), Some(json!("Plugin")));
        let status = root["status"]["properties"].as_object_mut().unwrap();
        let rollout = status.remove("rollout").unwrap();
        assert!(rollout["properties"]["clusters"]["items"]["properties"]["lastTransitionTime"].is_object());
    }
    assert_eq!(loaded, pristine, "nothing else in the vendored CRD changed");
}

#[test]
fn policy_crd_changes_only_by_the_summary_conditions_and_columns() {
    let file = CRD_FILES.iter().find(|f| f.file.contains("_policies.")).unwrap();
    let mut loaded = vendored::parse(file).unwrap();
    let pristine: Value = serde_saphyr::from_str(file.yaml).unwrap();
    assert_ne!(loaded, pristine);
    for version in loaded["spec"]["versions"].as_array_mut().unwrap() {
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            columns,
            ["Remediation action", "Compliance state", "Compliant", "NonCompliant", "Pending", "Clusters", "Age"]
        );
        version["additionalPrinterColumns"]
            .as_array_mut()
            .unwrap()
            .retain(|c| !["Compliant", "NonCompliant", "Pending", "Clusters"].contains(&c["name"].as_str().unwrap()));
        let status =
            version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"].as_object_mut().unwrap();
        let summary = status.remove("summary").unwrap();
        assert_eq!(summary["properties"]["nonCompliant"]["type"], "integer");
        assert!(status.remove("conditions").is_some());
    }
    assert_eq!(loaded, pristine, "nothing else in the vendored CRD changed");
}
