//! allowed-registries: a cluster complies when every Deployment's images come from allowed
//! registries; with `rewriteTo`, each violation carries a merge patch that moves the others
//! (see plugins/examples/README.md).

use flotilla_plugin_sdk::{
    CheckResult, Cluster, Context, Description, Kind, Object, Plugin, PolicyCheck, Reads, Result, Violation, bail,
    spoke,
};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    registries: Vec<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    rewrite_to: Option<String>,
}

impl Config {
    fn allowed(&self, image: &str) -> bool {
        self.registries.iter().any(|r| image.strip_prefix(r.as_str()).is_some_and(|rest| rest.starts_with('/')))
    }
}

fn deployments() -> Kind {
    Kind::new("apps/v1", "Deployment")
}

/// The image without its registry host (Docker's rule: the first part is a host when it has
/// a dot or a port, or is localhost).
fn repository(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => rest,
        _ => image,
    }
}

const LISTS: [&str; 2] = ["initContainers", "containers"];

fn containers<'a>(d: &'a Object, list: &str) -> &'a [Value] {
    d.pointer(&format!("/spec/template/spec/{list}")).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn image(container: &Value) -> Option<&str> {
    container.get("image").and_then(Value::as_str)
}

fn violation(config: &Config, d: &Object) -> Option<Violation> {
    let mut bad: Vec<&str> = Vec::new();
    for list in LISTS {
        for img in containers(d, list).iter().filter_map(image) {
            if !config.allowed(img) && !bad.contains(&img) {
                bad.push(img);
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let v = Violation::new(Some(d.object_ref()), format!("images not from an allowed registry: {}", bad.join(", ")));
    let Some(target) = &config.rewrite_to else { return Some(v) };
    // A merge patch replaces lists whole: each list with a bad image, every container kept.
    let mut spec = serde_json::Map::new();
    for list in LISTS {
        let items = containers(d, list);
        if !items.iter().filter_map(image).any(|i| !config.allowed(i)) {
            continue;
        }
        let moved: Vec<Value> = items
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if let Some(img) = image(&c).filter(|i| !config.allowed(i)) {
                    c["image"] = Value::String(format!("{target}/{}", repository(img)));
                }
                c
            })
            .collect();
        spec.insert(list.to_string(), Value::Array(moved));
    }
    Some(v.remediation(json!({"spec": {"template": {"spec": spec}}})))
}

struct AllowedRegistries;

impl Plugin for AllowedRegistries {
    type Config = Config;

    fn describe() -> Description {
        flotilla_plugin_sdk::package_description!()
    }

    fn reads(config: &Config) -> Result<Reads> {
        if config.registries.is_empty() {
            bail!("registries must name at least one registry");
        }
        Ok(Reads::new().kinds([deployments()]))
    }
}

impl PolicyCheck for AllowedRegistries {
    fn check(config: &Config, _ctx: &Context, _cluster: &Cluster) -> Result<CheckResult> {
        let mut found = spoke::list(&deployments(), config.namespace.as_deref(), None)?;
        found.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
        let violations: Vec<Violation> = found.iter().filter_map(|d| violation(config, d)).collect();
        let n = found.len();
        Ok(if violations.is_empty() {
            CheckResult::compliant(format!("all {n} deployment(s) use allowed registries"))
        } else {
            let message =
                format!("{} of {n} deployment(s) use images outside the allowed registries", violations.len());
            CheckResult::non_compliant(message, violations)
        })
    }
}

flotilla_plugin_sdk::policy_check!(AllowedRegistries);
