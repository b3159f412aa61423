//! claims-transform: per-cluster image registry and replica count from cluster claims (see
//! plugins/examples/README.md).

use flotilla_plugin_sdk::{
    ClusterManifests, Clusters, Context, Description, ManifestTransform, Plugin, Reads, Result, bail,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    registry_claim: Option<String>,
    #[serde(default)]
    replicas_claim: Option<String>,
}

/// The image without its registry host (Docker's rule: the first part is a host when it has
/// a dot or a port, or is localhost).
fn repository(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => rest,
        _ => image,
    }
}

fn pod_spec(manifest: &mut Value) -> Option<&mut Value> {
    match manifest.get("kind")?.as_str()? {
        "Pod" => manifest.get_mut("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" => manifest.get_mut("spec")?.get_mut("template")?.get_mut("spec"),
        _ => None,
    }
}

fn apply(mut manifest: Value, registry: Option<&str>, replicas: Option<u64>) -> Value {
    if let (Some(registry), Some(spec)) = (registry, pod_spec(&mut manifest)) {
        for list in ["initContainers", "containers"] {
            for c in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(image) = c.get("image").and_then(Value::as_str) {
                    c["image"] = Value::String(format!("{registry}/{}", repository(image)));
                }
            }
        }
    }
    let scalable = matches!(manifest.get("kind").and_then(Value::as_str), Some("Deployment" | "StatefulSet"));
    if let (Some(n), true) = (replicas, scalable)
        && let Some(spec) = manifest.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.insert("replicas".into(), Value::from(n));
    }
    manifest
}

struct ClaimsTransform;

impl Plugin for ClaimsTransform {
    type Config = Config;

    fn describe() -> Description {
        flotilla_plugin_sdk::package_description!()
    }

    fn reads(config: &Config) -> Result<Reads> {
        if config.registry_claim.is_none() && config.replicas_claim.is_none() {
            bail!("set registryClaim or replicasClaim");
        }
        Ok(Reads::new().claims(config.registry_claim.iter().chain(&config.replicas_claim)))
    }
}

impl ManifestTransform for ClaimsTransform {
    fn transform(
        config: &Config,
        _ctx: &Context,
        manifests: &[Value],
        clusters: &Clusters,
    ) -> Result<Vec<ClusterManifests>> {
        Ok(clusters
            .iter()
            .map(|c| {
                let registry = config.registry_claim.as_deref().and_then(|k| c.claim(k));
                let replicas = match config.replicas_claim.as_deref().map(|k| (k, c.claim(k))) {
                    Some((key, Some(v))) => {
                        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(format!("claim {key} value {v} is not a replica count"));
                        }
                        Some(v.parse::<u64>().map_err(|_| format!("claim {key} value {v} is not a replica count"))?)
                    }
                    _ => None,
                };
                Ok(manifests.iter().map(|m| apply(m.clone(), registry, replicas)).collect())
            })
            .collect())
    }
}

flotilla_plugin_sdk::manifest_transform!(ClaimsTransform);
