//! A policy check: a cluster complies when one object exists on it.
//!
//! ```json
//! {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "kube-public", "name": "cluster-info"}
//! ```
//!
//! The agent calls `check` once per evaluation on its own cluster. The plugin reads spoke
//! objects through `spoke`, only of the kinds `validate_config` declared in `reads.kinds`.

wit_bindgen::generate!({
    path: "wit",
    world: "policy-check",
    generate_all,
});

use exports::flotilla::policy_check::check::{
    CheckResult, Compliance, Guest, ObjectRef, Violation,
};
use flotilla::policy_check::spoke;
use flotilla::types::types::{Cluster, Description, KindRef, OwnerRef, Reads};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    api_version: String,
    kind: String,
    /// Absent for a cluster-scoped kind.
    #[serde(default)]
    namespace: Option<String>,
    name: String,
}

impl Config {
    fn kind_ref(&self) -> KindRef {
        KindRef {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
        }
    }

    fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind_ref(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// `ConfigMap kube-public/cluster-info`, for messages.
    fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

fn parse(config: &str) -> Result<Config, String> {
    let config: Config =
        serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    if config.api_version.is_empty() || config.kind.is_empty() || config.name.is_empty() {
        return Err("apiVersion, kind and name must not be empty".into());
    }
    Ok(config)
}

fn no_reads() -> Reads {
    Reads {
        labels: vec![],
        claims: vec![],
        resources: vec![],
        fields: vec![],
        kinds: vec![],
    }
}

fn check(config: &Config, cluster: &Cluster) -> Result<CheckResult, String> {
    let found = spoke::get_object(
        &config.kind_ref(),
        config.namespace.as_deref(),
        &config.name,
    )?;
    Ok(match found {
        Some(_) => CheckResult {
            compliance: Compliance::Compliant,
            message: format!("{} exists on {}", config.display(), cluster.name),
            violations: vec![],
        },
        None => CheckResult {
            compliance: Compliance::NonCompliant,
            message: format!("{} is missing on {}", config.display(), cluster.name),
            violations: vec![Violation {
                object: Some(config.object_ref()),
                message: format!("{} does not exist", config.display()),
                // A JSON merge patch that would fix the object, applied only when the Policy
                // is enforced; a missing object cannot be patched into existence.
                remediation: None,
            }],
        },
    })
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: env!("CARGO_PKG_DESCRIPTION").into(),
            reads: no_reads(),
            config_schema: Some(include_str!("../config.schema.json").into()),
        }
    }

    fn validate_config(config: String) -> Result<Reads, String> {
        let config = parse(&config)?;
        Ok(Reads {
            kinds: vec![config.kind_ref()],
            ..no_reads()
        })
    }

    fn check(config: String, _owner: OwnerRef, cluster: Cluster) -> Result<CheckResult, String> {
        check(&parse(&config)?, &cluster)
    }
}

export!(Plugin);
