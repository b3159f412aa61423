//! A policy check: a cluster complies when one object exists on it.
//!
//! ```json
//! {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "kube-public", "name": "cluster-info"}
//! ```
//!
//! The agent calls `check` once per evaluation on its own cluster. The plugin reads spoke
//! objects through `spoke`, only of the kinds `reads` declares.

use flotilla_plugin_sdk::{
    CheckResult, Cluster, Context, Description, Kind, ObjectRef, Plugin, PolicyCheck, Reads,
    Result, Violation, bail, spoke,
};
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
    fn kind(&self) -> Kind {
        Kind::new(&self.api_version, &self.kind)
    }

    /// `ConfigMap kube-public/cluster-info`, for messages.
    fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

struct Check;

impl Plugin for Check {
    type Config = Config;

    fn describe() -> Description {
        flotilla_plugin_sdk::package_description!()
    }

    fn reads(config: &Config) -> Result<Reads> {
        if config.api_version.is_empty() || config.kind.is_empty() || config.name.is_empty() {
            bail!("apiVersion, kind and name must not be empty");
        }
        Ok(Reads::new().kinds([config.kind()]))
    }
}

impl PolicyCheck for Check {
    fn check(config: &Config, _ctx: &Context, cluster: &Cluster) -> Result<CheckResult> {
        let found = spoke::get(&config.kind(), config.namespace.as_deref(), &config.name)?;
        Ok(match found {
            Some(_) => {
                CheckResult::compliant(format!("{} exists on {}", config.display(), cluster.name()))
            }
            None => {
                let object = ObjectRef {
                    kind: config.kind(),
                    namespace: config.namespace.clone(),
                    name: config.name.clone(),
                };
                // A violation may carry a JSON merge patch that fixes its object, applied only
                // when the Policy is enforced (`.remediation(json!({...}))`); a missing object
                // cannot be patched into existence.
                let violation =
                    Violation::new(Some(object), format!("{} does not exist", config.display()));
                CheckResult::non_compliant(
                    format!("{} is missing on {}", config.display(), cluster.name()),
                    vec![violation],
                )
            }
        })
    }
}

flotilla_plugin_sdk::policy_check!(Check);
