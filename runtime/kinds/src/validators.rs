//! Kind validators: rules beyond the structural schema that Kubernetes enforces in its
//! registry strategies and OCM enforces with admission webhooks. Each has the
//! [`KindValidator`](flotilla_apimachinery::resource::KindValidator) shape: the new object
//! and, on update, the stored one; every problem is returned with its field path.
//! Size limits are the server's job, not these.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use flotilla_apimachinery::{CauseType, FieldError};
use serde_json::{Value, json};

const IMMUTABLE: &str = "field is immutable";

/// Go's `base64.StdEncoding`: padded, and lenient about unused trailing bits.
const STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

fn is_base64(text: &str) -> bool {
    STD_BASE64.decode(text).is_ok()
}

fn duplicate(field: impl Into<String>, value: &Value) -> FieldError {
    FieldError::new(CauseType::FieldValueDuplicate, field, format!("Duplicate value: {value}"))
}

fn get_str<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut node = obj;
    for key in path {
        node = node.get(key)?;
    }
    node.as_str()
}

// ---------------------------------------------------------------- OCM (webhooks)

/// ManagedClusterSetBinding: `spec.clusterSet` must equal `metadata.name` and cannot
/// change (OCM's registration webhook).
pub fn managed_cluster_set_binding(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let name = get_str(obj, &["metadata", "name"]).unwrap_or_default();
    let cluster_set = obj.get("spec").and_then(|s| s.get("clusterSet")).unwrap_or(&Value::Null);
    if let Some(old) = old {
        let old_set = old.get("spec").and_then(|s| s.get("clusterSet")).unwrap_or(&Value::Null);
        if old_set != cluster_set {
            return vec![FieldError::invalid("spec.clusterSet", cluster_set, IMMUTABLE)];
        }
    }
    match cluster_set.as_str() {
        None | Some("") => vec![FieldError::required("spec.clusterSet")],
        Some(set) if set != name => vec![FieldError::invalid(
            "spec.clusterSet",
            cluster_set,
            format!(
                "must match metadata.name {}: the ManagedClusterSetBinding must have the same name as the target ManagedClusterSet",
                json!(name)
            ),
        )],
        Some(_) => Vec::new(),
    }
}

/// BootstrapToken: the name is the token ID, six lowercase letters or digits (kubeadm's
/// bootstrap token format `[a-z0-9]{6}.[a-z0-9]{16}`), so that a presented token maps to
/// exactly one object.
pub fn bootstrap_token(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let name = get_str(obj, &["metadata", "name"]).unwrap_or_default();
    let valid = name.len() == 6 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if valid || name.is_empty() {
        // An empty name is reported by the generic metadata checks.
        return Vec::new();
    }
    vec![FieldError::invalid(
        "metadata.name",
        &json!(name),
        "must be the token ID: exactly 6 lowercase letters or digits ([a-z0-9]{6})",
    )]
}

/// ManifestWork: every manifest has `apiVersion`, `kind` and `metadata.name` (no
/// `generateName`), and no two manifests name the same object (OCM's work webhook).
pub fn manifest_work(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let manifests = obj.get("spec").and_then(|s| s.get("workload")).and_then(|w| w.get("manifests"));
    validate_manifests(manifests, "spec.workload.manifests")
}

/// ManifestWorkReplicaSet: its `manifestWorkTemplate` follows the ManifestWork rules.
pub fn manifest_work_replica_set(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let manifests = obj
        .get("spec")
        .and_then(|s| s.get("manifestWorkTemplate"))
        .and_then(|t| t.get("workload"))
        .and_then(|w| w.get("manifests"));
    validate_manifests(manifests, "spec.manifestWorkTemplate.workload.manifests")
}

fn validate_manifests(manifests: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let manifests = match manifests {
        Some(Value::Array(items)) if !items.is_empty() => items,
        // A non-list is the schema's to report.
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            errs.push(FieldError::new(
                CauseType::FieldValueRequired,
                path,
                "Required value: manifests should not be empty",
            ));
            return errs;
        }
        Some(_) => return errs,
    };
    let mut seen = HashSet::new();
    for (i, manifest) in manifests.iter().enumerate() {
        let item = format!("{path}[{i}]");
        if !manifest.is_object() {
            continue;
        }
        let api_version = get_str(manifest, &["apiVersion"]).unwrap_or_default();
        let kind = get_str(manifest, &["kind"]).unwrap_or_default();
        let name = get_str(manifest, &["metadata", "name"]).unwrap_or_default();
        let namespace = get_str(manifest, &["metadata", "namespace"]).unwrap_or_default();
        if api_version.is_empty() {
            errs.push(FieldError::required(format!("{item}.apiVersion")));
        }
        if kind.is_empty() {
            errs.push(FieldError::required(format!("{item}.kind")));
        }
        if name.is_empty() {
            errs.push(FieldError::required(format!("{item}.metadata.name")));
        }
        if get_str(manifest, &["metadata", "generateName"]).is_some_and(|g| !g.is_empty()) {
            errs.push(FieldError::forbidden(
                format!("{item}.metadata.generateName"),
                "generateName must not be set in a manifest; set metadata.name",
            ));
        }
        if !api_version.is_empty()
            && !kind.is_empty()
            && !name.is_empty()
            && !seen.insert((api_version, kind, namespace, name))
        {
            let id = json!({"apiVersion": api_version, "kind": kind, "namespace": namespace, "name": name});
            errs.push(duplicate(item, &id));
        }
    }
    errs
}

/// Placement: `numberOfClusters` cannot be negative; a score coordinate's type is one the
/// scheduler knows (`Plugin`, Flotilla's, names its WasmPlugin). (Prioritizer weights in
/// [-10, 10] and at most 8 spread constraints are in OCM's CRD schema already.)
pub fn placement(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(n) = obj.get("spec").and_then(|s| s.get("numberOfClusters"))
        && n.as_i64().is_some_and(|n| n < 0)
    {
        errs.push(FieldError::invalid("spec.numberOfClusters", n, "must be greater than or equal to 0"));
    }
    // OCM's CRD leaves these open strings, so a typo silently means "Additive" or
    // "BuiltIn"; reject anything but the values OCM's scheduler understands.
    if let Some(mode) = obj.pointer("/spec/prioritizerPolicy/mode")
        && !matches!(mode.as_str(), Some("Exact" | "Additive" | ""))
    {
        errs.push(FieldError::not_supported("spec.prioritizerPolicy.mode", mode, &[json!("Additive"), json!("Exact")]));
    }
    let configurations = obj.pointer("/spec/prioritizerPolicy/configurations").and_then(Value::as_array);
    for (i, config) in configurations.into_iter().flatten().enumerate() {
        // `Plugin` is Flotilla's addition (a Wasm scorer, see `vendored::extend_placement`).
        if let Some(kind) = config.pointer("/scoreCoordinate/type")
            && !matches!(kind.as_str(), Some("BuiltIn" | "AddOn" | "Plugin"))
        {
            errs.push(FieldError::not_supported(
                format!("spec.prioritizerPolicy.configurations[{i}].scoreCoordinate.type"),
                kind,
                &[json!("BuiltIn"), json!("AddOn"), json!("Plugin")],
            ));
        }
        if config.pointer("/scoreCoordinate/type").and_then(Value::as_str) == Some("Plugin")
            && config.pointer("/scoreCoordinate/plugin/name").and_then(Value::as_str).is_none_or(str::is_empty)
        {
            errs.push(FieldError::required(format!(
                "spec.prioritizerPolicy.configurations[{i}].scoreCoordinate.plugin.name"
            )));
        }
    }
    errs
}

// ------------------------------------------------------------- Kubernetes (strategies)

/// CertificateSigningRequest: the request is a PEM `CERTIFICATE REQUEST`, the signer
/// name is `domain/path`, usages are unique, and the spec never changes after creation.
pub fn certificate_signing_request(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if let Some(old) = old {
        if old.get("spec").unwrap_or(&Value::Null) != spec {
            return vec![FieldError::invalid("spec", spec, IMMUTABLE)];
        }
        return Vec::new();
    }
    let mut errs = Vec::new();
    if let Some(request) = spec.get("request").and_then(Value::as_str)
        && let Ok(bytes) = STD_BASE64.decode(request)
    {
        let text = String::from_utf8_lossy(&bytes);
        if !text.contains("-----BEGIN CERTIFICATE REQUEST-----") {
            errs.push(FieldError::invalid(
                "spec.request",
                &json!(request),
                "PEM block type must be CERTIFICATE REQUEST",
            ));
        }
    }
    if let Some(signer) = spec.get("signerName").and_then(Value::as_str)
        && !signer.is_empty()
        && !is_signer_name(signer)
    {
        errs.push(FieldError::invalid(
            "spec.signerName",
            &json!(signer),
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
    }
    if let Some(usages) = spec.get("usages").and_then(Value::as_array) {
        let mut seen = HashSet::new();
        for (i, usage) in usages.iter().enumerate() {
            if let Some(u) = usage.as_str()
                && !seen.insert(u)
            {
                errs.push(duplicate(format!("spec.usages[{i}]"), usage));
            }
        }
    }
    errs
}

/// `example.com/signer-name`: a DNS subdomain with a dot, a slash, then a non-empty path.
fn is_signer_name(name: &str) -> bool {
    let Some((domain, path)) = name.split_once('/') else {
        return false;
    };
    let label_ok = |label: &str| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
    };
    domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(label_ok)
        && !path.is_empty()
        && !path.contains('/')
        && name.len() <= 571
}

/// Secret: `data` keys are valid config keys and values are base64; `type` cannot
/// change; an immutable Secret keeps its data. (`stringData` is folded into `data` by
/// the server before this runs.)
pub fn secret(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for (key, value) in data {
            check_config_key(&format!("data[{key}]"), key, &mut errs);
            if let Some(text) = value.as_str()
                && !is_base64(text)
            {
                errs.push(FieldError::invalid(format!("data[{key}]"), value, "illegal base64 data"));
            }
        }
    }
    if let Some(string_data) = obj.get("stringData").and_then(Value::as_object) {
        for key in string_data.keys() {
            check_config_key(&format!("stringData[{key}]"), key, &mut errs);
        }
    }
    if let Some(old) = old {
        let type_of = |o: &Value| o.get("type").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
        let (new_type, old_type) = (type_of(obj), type_of(old));
        if new_type.is_some() && old_type.is_some() && new_type != old_type {
            errs.push(FieldError::invalid("type", obj.get("type").unwrap_or(&Value::Null), IMMUTABLE));
        }
        check_immutable_data(obj, old, &["data"], &mut errs);
    }
    errs
}

/// ConfigMap: keys are valid config keys, unique across `data` and `binaryData`,
/// `binaryData` is base64, and an immutable ConfigMap keeps its data.
pub fn config_map(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let data = obj.get("data").and_then(Value::as_object);
    if let Some(data) = data {
        for key in data.keys() {
            check_config_key(&format!("data[{key}]"), key, &mut errs);
        }
    }
    if let Some(binary) = obj.get("binaryData").and_then(Value::as_object) {
        for (key, value) in binary {
            check_config_key(&format!("binaryData[{key}]"), key, &mut errs);
            if data.is_some_and(|d| d.contains_key(key)) {
                errs.push(duplicate(format!("data[{key}]"), &json!(key)));
            }
            if let Some(text) = value.as_str()
                && !is_base64(text)
            {
                errs.push(FieldError::invalid(format!("binaryData[{key}]"), value, "illegal base64 data"));
            }
        }
    }
    if let Some(old) = old {
        check_immutable_data(obj, old, &["data", "binaryData"], &mut errs);
    }
    errs
}

/// Once `immutable: true` is set, the data fields and the flag itself are frozen.
fn check_immutable_data(obj: &Value, old: &Value, fields: &[&str], errs: &mut Vec<FieldError>) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden("immutable", "field is immutable when `immutable` is set"));
    }
    for field in fields {
        let empty = json!({});
        let now = obj.get(*field).filter(|v| !v.is_null()).unwrap_or(&empty);
        let before = old.get(*field).filter(|v| !v.is_null()).unwrap_or(&empty);
        if now != before {
            errs.push(FieldError::forbidden(*field, "field is immutable when `immutable` is set"));
        }
    }
}

/// Kubernetes' `IsConfigMapKey`.
fn check_config_key(field: &str, key: &str, errs: &mut Vec<FieldError>) {
    let detail = if key.is_empty() || key.len() > 253 {
        Some("a valid config key must be between 1 and 253 characters")
    } else if !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        Some(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (regex used for validation is '[-._a-zA-Z0-9]+')",
        )
    } else if key == "." {
        Some("must not be '.'")
    } else if key == ".." {
        Some("must not be '..'")
    } else if key.starts_with("..") {
        Some("must not start with '..'")
    } else {
        None
    };
    if let Some(detail) = detail {
        errs.push(FieldError::invalid(field, &json!(key), detail));
    }
}

/// RoleBinding and ClusterRoleBinding: `roleRef` cannot change.
pub fn role_binding(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    match old {
        Some(old) if old.get("roleRef") != obj.get("roleRef") => {
            vec![FieldError::invalid("roleRef", obj.get("roleRef").unwrap_or(&Value::Null), "cannot change roleRef")]
        }
        _ => Vec::new(),
    }
}

/// CustomResourceDefinition: the rules apiextensions-apiserver applies to the CRD object.
pub fn custom_resource_definition(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = flotilla_apimachinery::crd::validate_crd(obj);
    if let Some(old) = old {
        let scope = |o: &Value| o.get("spec").and_then(|s| s.get("scope")).cloned();
        if scope(old) != scope(obj) {
            errs.push(FieldError::invalid("spec.scope", &scope(obj).unwrap_or(Value::Null), IMMUTABLE));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fields(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    fn binding(name: &str, set: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"clusterSet": set}})
    }

    #[test]
    fn cluster_set_binding_matches_its_name_and_is_immutable() {
        assert!(managed_cluster_set_binding(&binding("prod", "prod"), None).is_empty());
        let errs = managed_cluster_set_binding(&binding("prod", "dev"), None);
        assert_eq!(fields(&errs), vec!["spec.clusterSet"]);
        assert!(errs[0].message.contains("must match metadata.name"), "{}", errs[0].message);
        let errs = managed_cluster_set_binding(&json!({"metadata": {"name": "prod"}, "spec": {}}), None);
        assert_eq!(errs[0].message, "Required value");
        let old = binding("prod", "prod");
        let errs = managed_cluster_set_binding(&binding("prod", "other"), Some(&old));
        assert_eq!(fields(&errs), vec!["spec.clusterSet"]);
        assert!(errs[0].message.ends_with(IMMUTABLE));
    }

    #[test]
    fn bootstrap_token_names_are_token_ids() {
        let token = |name: &str| json!({"metadata": {"name": name}, "spec": {"secretHash": "sha256:00"}});
        assert!(bootstrap_token(&token("abc123"), None).is_empty());
        for bad in ["abc12", "abc1234", "ABC123", "abc-12"] {
            assert_eq!(fields(&bootstrap_token(&token(bad), None)), vec!["metadata.name"], "{bad}");
        }
    }

    fn work(manifests: Value) -> Value {
        json!({"metadata": {"name": "w", "namespace": "cluster1"}, "spec": {"workload": {"manifests": manifests}}})
    }

    #[test]
    fn manifest_work_manifests_are_named_and_unique() {
        let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}});
        assert!(manifest_work(&work(json!([cm("a"), cm("b")])), None).is_empty());

        let errs = manifest_work(
            &work(json!([
                cm("a"),
                {"kind": "ConfigMap", "metadata": {"name": "b"}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "x-"}},
                cm("a"),
            ])),
            None,
        );
        assert_eq!(
            fields(&errs),
            vec![
                "spec.workload.manifests[1].apiVersion",
                "spec.workload.manifests[2].metadata.name",
                "spec.workload.manifests[2].metadata.generateName",
                "spec.workload.manifests[3]",
            ]
        );
        assert_eq!(errs[3].cause, CauseType::FieldValueDuplicate);
        assert_eq!(errs[2].cause, CauseType::FieldValueForbidden);

        // Same name in another namespace is a different object.
        let other_ns =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "other"}});
        assert!(manifest_work(&work(json!([cm("a"), other_ns])), None).is_empty());

        let errs = manifest_work(&work(json!([])), None);
        assert_eq!(fields(&errs), vec!["spec.workload.manifests"]);
        assert_eq!(errs[0].cause, CauseType::FieldValueRequired);
    }

    #[test]
    fn replica_set_template_follows_manifest_rules() {
        let mwrs = json!({"spec": {"manifestWorkTemplate": {"workload": {"manifests": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {}}]}}}});
        assert_eq!(
            fields(&manifest_work_replica_set(&mwrs, None)),
            vec!["spec.manifestWorkTemplate.workload.manifests[0].metadata.name"]
        );
    }

    #[test]
    fn placement_number_of_clusters_is_not_negative() {
        assert!(placement(&json!({"spec": {"numberOfClusters": 0}}), None).is_empty());
        assert!(placement(&json!({"spec": {}}), None).is_empty());
        assert_eq!(fields(&placement(&json!({"spec": {"numberOfClusters": -1}}), None)), vec!["spec.numberOfClusters"]);
    }

    #[test]
    fn placement_prioritizer_mode_and_coordinate_types_are_closed() {
        assert!(placement(&json!({"spec": {"prioritizerPolicy": {"mode": "Exact"}}}), None).is_empty());
        assert_eq!(
            fields(&placement(&json!({"spec": {"prioritizerPolicy": {"mode": "Sometimes"}}}), None)),
            vec!["spec.prioritizerPolicy.mode"]
        );
        let bad = json!({"spec": {"prioritizerPolicy": {"configurations": [{"scoreCoordinate": {"type": "Magic"}}]}}});
        assert_eq!(
            fields(&placement(&bad, None)),
            vec!["spec.prioritizerPolicy.configurations[0].scoreCoordinate.type"]
        );
        let plugin = json!({"spec": {"prioritizerPolicy": {"configurations": [
            {"scoreCoordinate": {"type": "Plugin", "plugin": {"name": "cost"}}}]}}});
        assert!(placement(&plugin, None).is_empty());
        let unnamed =
            json!({"spec": {"prioritizerPolicy": {"configurations": [{"scoreCoordinate": {"type": "Plugin"}}]}}});
        assert_eq!(
            fields(&placement(&unnamed, None)),
            vec!["spec.prioritizerPolicy.configurations[0].scoreCoordinate.plugin.name"]
        );
    }

    fn csr(request: &str, signer: &str) -> Value {
        json!({"metadata": {"name": "c"}, "spec": {"request": request, "signerName": signer, "usages": ["client auth"]}})
    }

    #[test]
    fn csr_rules() {
        let pem = STD_BASE64.encode("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n");
        let good = csr(&pem, "kubernetes.io/kube-apiserver-client");
        assert!(certificate_signing_request(&good, None).is_empty());

        let not_csr = STD_BASE64.encode("-----BEGIN CERTIFICATE-----\n");
        let errs = certificate_signing_request(&csr(&not_csr, "example"), None);
        assert_eq!(fields(&errs), vec!["spec.request", "spec.signerName"]);

        let mut dup = good.clone();
        dup["spec"]["usages"] = json!(["client auth", "client auth"]);
        assert_eq!(fields(&certificate_signing_request(&dup, None)), vec!["spec.usages[1]"]);

        let mut changed = good.clone();
        changed["spec"]["signerName"] = json!("example.com/other");
        let errs = certificate_signing_request(&changed, Some(&good));
        assert_eq!(fields(&errs), vec!["spec"]);
        assert!(errs[0].message.ends_with(IMMUTABLE));

        let mut approved = good.clone();
        approved["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
        assert!(certificate_signing_request(&approved, Some(&good)).is_empty());
    }

    #[test]
    fn secret_data_is_base64() {
        let s = json!({"data": {"ok": "aGVsbG8=", "empty": "", "bad": "not base64!", "bad key": "aGk="}});
        let errs = secret(&s, None);
        assert_eq!(fields(&errs), vec!["data[bad]", "data[bad key]"]);
        assert!(errs[0].message.contains("illegal base64 data"));

        let old = json!({"type": "Opaque", "immutable": true, "data": {"a": "YQ=="}});
        let new = json!({"type": "kubernetes.io/tls", "immutable": true, "data": {"a": "Yg=="}});
        assert_eq!(fields(&secret(&new, Some(&old))), vec!["type", "data"]);
    }

    #[test]
    fn config_map_keys_and_binary_data() {
        let cm = json!({"data": {"a": "x", "..b": "y"}, "binaryData": {"a": "eA==", "c": "%%%"}});
        assert_eq!(fields(&config_map(&cm, None)), vec!["data[..b]", "data[a]", "binaryData[c]"]);
        let old = json!({"immutable": true, "data": {"a": "x"}});
        let new = json!({"data": {"a": "x"}});
        assert_eq!(fields(&config_map(&new, Some(&old))), vec!["immutable"]);
    }

    #[test]
    fn role_ref_is_immutable() {
        let old = json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "a"}});
        let new = json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "b"}});
        assert_eq!(fields(&role_binding(&new, Some(&old))), vec!["roleRef"]);
        assert!(role_binding(&old, Some(&old)).is_empty());
    }
}
