//! Built-in policy check: every object of the configured kinds carries the required labels.
//!
//! ```json
//! {"kinds": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
//!  "namespace": "shop",
//!  "labels": {"team": null, "cost-center": "unassigned"}}
//! ```
//! A label with a value is the remediation: when the Policy is enforced the agent applies a
//! merge patch that sets it; a label without one (`null`) can only be reported.

wit_bindgen::generate!({
    path: "../../../wit/policy-check",
    world: "policy-check",
    generate_all,
});

use std::collections::BTreeMap;

use exports::flotilla::policy_check::check::{CheckResult, Compliance, Guest, ObjectRef, Violation};
use flotilla::policy_check::spoke;
use flotilla::types::types::{Cluster, Description, KindRef, OwnerRef, Reads};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    kinds: Vec<Kind>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default, rename = "labelSelector")]
    label_selector: Option<String>,
    labels: BTreeMap<String, Option<String>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Kind {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
}

impl Kind {
    fn kind_ref(&self) -> KindRef {
        KindRef { api_version: self.api_version.clone(), kind: self.kind.clone() }
    }
}

fn parse(config: &str) -> Result<Config, String> {
    let config: Config = serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    if config.kinds.is_empty() {
        return Err("kinds must name at least one kind".into());
    }
    if config.labels.is_empty() {
        return Err("labels must name at least one label".into());
    }
    Ok(config)
}

fn check_object(config: &Config, kind: &Kind, object: &Value) -> Option<Violation> {
    let meta = object.get("metadata")?;
    let name = meta.get("name").and_then(Value::as_str)?.to_string();
    let namespace = meta.get("namespace").and_then(Value::as_str).map(str::to_string);
    let labels = meta.get("labels").and_then(Value::as_object);
    let missing: Vec<(&String, &Option<String>)> =
        config.labels.iter().filter(|(k, _)| labels.is_none_or(|l| !l.contains_key(k.as_str()))).collect();
    if missing.is_empty() {
        return None;
    }
    let names: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
    // Only labels with a configured value can be set by the agent; the patch sets those.
    let fixes: serde_json::Map<String, Value> =
        missing.iter().filter_map(|(k, v)| v.as_ref().map(|v| ((*k).clone(), json!(v)))).collect();
    let remediation = (!fixes.is_empty()).then(|| json!({"metadata": {"labels": fixes}}).to_string());
    let at = match &namespace {
        Some(ns) => format!("{} {ns}/{name}", kind.kind),
        None => format!("{} {name}", kind.kind),
    };
    Some(Violation {
        object: Some(ObjectRef { kind: kind.kind_ref(), namespace, name }),
        message: format!("{at} lacks label(s) {}", names.join(", ")),
        remediation,
    })
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "required-labels".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Objects of the configured kinds carry the required labels; labels with a value are set when \
                      the policy is enforced."
                .into(),
            reads: Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![] },
            config_schema: Some(include_str!("../config.schema.json").into()),
        }
    }

    fn validate_config(config: String) -> Result<Reads, String> {
        let config = parse(&config)?;
        Ok(Reads {
            labels: vec![],
            claims: vec![],
            resources: vec![],
            fields: vec![],
            kinds: config.kinds.iter().map(Kind::kind_ref).collect(),
        })
    }

    fn check(config: String, _owner: OwnerRef, cluster: Cluster) -> Result<CheckResult, String> {
        let config = parse(&config)?;
        let mut violations = Vec::new();
        let mut checked = 0usize;
        for kind in &config.kinds {
            let objects =
                spoke::list_objects(&kind.kind_ref(), config.namespace.as_deref(), config.label_selector.as_deref())?;
            for raw in objects {
                let object: Value =
                    serde_json::from_str(&raw).map_err(|e| format!("the host sent an invalid object: {e}"))?;
                checked += 1;
                violations.extend(check_object(&config, kind, &object));
            }
        }
        let (compliance, message) = if violations.is_empty() {
            (Compliance::Compliant, format!("{checked} object(s) on {} carry the required labels", cluster.name))
        } else {
            (
                Compliance::NonCompliant,
                format!("{} of {checked} object(s) on {} lack required labels", violations.len(), cluster.name),
            )
        };
        Ok(CheckResult { compliance, message, violations })
    }
}

export!(Plugin);
