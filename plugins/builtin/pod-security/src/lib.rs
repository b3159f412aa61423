//! Built-in policy check: no Pod runs a privileged container
//! (`securityContext.privileged: true` in any of its containers or init containers), and
//! every Pod carries the required labels.
//!
//! ```json
//! {"namespace": "shop", "requiredLabels": ["team", "cost-center"]}
//! ```
//! `requiredLabels` defaults to `["team", "cost-center"]`; without `namespace` every
//! namespace is checked. The remediation of a privileged container is a merge patch that is
//! only a proposal (containers are a list, which a merge patch replaces whole), so none is
//! offered; missing labels cannot be invented either. The check only reports.

wit_bindgen::generate!({
    path: "../../../wit/policy-check",
    world: "policy-check",
    generate_all,
});

use exports::flotilla::policy_check::check::{CheckResult, Compliance, Guest, ObjectRef, Violation};
use flotilla::policy_check::spoke;
use flotilla::types::types::{Cluster, Description, KindRef, OwnerRef, Reads};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default = "default_labels")]
    required_labels: Vec<String>,
    #[serde(default)]
    allow_privileged: bool,
}

fn default_labels() -> Vec<String> {
    vec!["team".into(), "cost-center".into()]
}

fn parse(config: &str) -> Result<Config, String> {
    let text = if config.trim().is_empty() { "{}" } else { config };
    serde_json::from_str(text).map_err(|e| format!("invalid configuration: {e}"))
}

fn pods() -> KindRef {
    KindRef { api_version: "v1".into(), kind: "Pod".into() }
}

fn reads() -> Reads {
    Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![pods()] }
}

/// The names of the privileged containers of a Pod.
fn privileged(pod: &Value) -> Vec<String> {
    let spec = pod.get("spec");
    ["containers", "initContainers"]
        .iter()
        .filter_map(|field| spec.and_then(|s| s.get(field)).and_then(Value::as_array))
        .flatten()
        .filter(|c| c.pointer("/securityContext/privileged").and_then(Value::as_bool) == Some(true))
        .map(|c| c.get("name").and_then(Value::as_str).unwrap_or("?").to_string())
        .collect()
}

fn check_pod(config: &Config, pod: &Value) -> Option<Violation> {
    let meta = pod.get("metadata")?;
    let name = meta.get("name").and_then(Value::as_str)?.to_string();
    let namespace = meta.get("namespace").and_then(Value::as_str).map(str::to_string);
    let labels = meta.get("labels").and_then(Value::as_object);
    let missing: Vec<&str> = config
        .required_labels
        .iter()
        .filter(|l| labels.is_none_or(|m| !m.contains_key(l.as_str())))
        .map(String::as_str)
        .collect();
    let privileged = if config.allow_privileged { Vec::new() } else { privileged(pod) };
    if missing.is_empty() && privileged.is_empty() {
        return None;
    }
    let mut faults = Vec::new();
    if !privileged.is_empty() {
        faults.push(format!("privileged container(s) {}", privileged.join(", ")));
    }
    if !missing.is_empty() {
        faults.push(format!("lacks label(s) {}", missing.join(", ")));
    }
    let at = namespace.as_deref().map_or(name.clone(), |ns| format!("{ns}/{name}"));
    Some(Violation {
        object: Some(ObjectRef { kind: pods(), namespace, name }),
        message: format!("Pod {at}: {}", faults.join("; ")),
        remediation: None,
    })
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "pod-security".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "No privileged containers, and the required labels on every Pod.".into(),
            reads: reads(),
            config_schema: Some(include_str!("../config.schema.json").into()),
        }
    }

    fn validate_config(config: String) -> Result<Reads, String> {
        parse(&config)?;
        Ok(reads())
    }

    fn check(config: String, _owner: OwnerRef, cluster: Cluster) -> Result<CheckResult, String> {
        let config = parse(&config)?;
        let mut violations = Vec::new();
        let objects = spoke::list_objects(&pods(), config.namespace.as_deref(), None)?;
        let checked = objects.len();
        for raw in objects {
            let pod: Value = serde_json::from_str(&raw).map_err(|e| format!("the host sent an invalid object: {e}"))?;
            violations.extend(check_pod(&config, &pod));
        }
        let (compliance, message) = if violations.is_empty() {
            (Compliance::Compliant, format!("{checked} Pod(s) on {} comply", cluster.name))
        } else {
            (
                Compliance::NonCompliant,
                format!("{} of {checked} Pod(s) on {} do not comply", violations.len(), cluster.name),
            )
        };
        Ok(CheckResult { compliance, message, violations })
    }
}

export!(Plugin);
