//! Built-in manifest transform: per-cluster image registry and replica count from the
//! cluster's claims.
//!
//! ```json
//! {"registryClaim": "registry.flotilla.dev", "defaultRegistry": "registry.example.com",
//!  "replicasClaim": "replicas.flotilla.dev"}
//! ```
//! Every container image of a workload (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
//! Job, CronJob) moves to the registry the cluster claims (or the default; unchanged when
//! neither exists), and Deployments, StatefulSets and ReplicaSets get the replica count the
//! cluster claims. A replica claim that is not a number fails that cluster only.

wit_bindgen::generate!({
    path: "../../../wit/manifest-transform",
    world: "manifest-transform",
    generate_all,
});

use exports::flotilla::manifest_transform::transform::Guest;
use flotilla::types::types::{ClusterBatch, Description, OwnerRef, Reads, StringColumn};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    registry_claim: Option<String>,
    #[serde(default)]
    default_registry: Option<String>,
    #[serde(default)]
    replicas_claim: Option<String>,
}

fn parse(config: &str) -> Result<Config, String> {
    let config: Config = serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    if config.registry_claim.is_none() && config.default_registry.is_none() && config.replicas_claim.is_none() {
        return Err("set registryClaim, defaultRegistry or replicasClaim: this configuration changes nothing".into());
    }
    if let Some(r) = &config.default_registry
        && (r.is_empty() || r.contains('/'))
    {
        return Err(format!("defaultRegistry {r:?} must be a registry host, like registry.example.com:5000"));
    }
    Ok(config)
}

/// Cluster `i`'s value of a dictionary-encoded column.
fn value(column: Option<&StringColumn>, i: usize) -> Option<&str> {
    let col = column?;
    let v = *col.index.get(i)?;
    if v == 0 { None } else { col.values.get(v as usize - 1).map(String::as_str) }
}

/// The image without its registry host: the first path component is a registry when it has a
/// dot or a port, or is `localhost`, as Docker's reference grammar.
fn repository(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => rest,
        _ => image,
    }
}

fn pod_spec(manifest: &mut Value) -> Option<&mut Value> {
    let kind = manifest.get("kind")?.as_str()?.to_string();
    let spec = manifest.get_mut("spec")?;
    match kind.as_str() {
        "Pod" => Some(spec),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => spec.get_mut("template")?.get_mut("spec"),
        "CronJob" => spec.get_mut("jobTemplate")?.get_mut("spec")?.get_mut("template")?.get_mut("spec"),
        _ => None,
    }
}

fn transform_one(manifest: &mut Value, registry: Option<&str>, replicas: Option<u64>) {
    if let Some(registry) = registry
        && let Some(spec) = pod_spec(manifest)
    {
        for list in ["initContainers", "containers"] {
            for c in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(image) = c.get("image").and_then(Value::as_str) {
                    let moved = format!("{registry}/{}", repository(image));
                    c["image"] = Value::String(moved);
                }
            }
        }
    }
    let scalable =
        matches!(manifest.get("kind").and_then(Value::as_str), Some("Deployment" | "StatefulSet" | "ReplicaSet"));
    if let (Some(n), true) = (replicas, scalable)
        && let Some(spec) = manifest.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.insert("replicas".into(), Value::from(n));
    }
}

fn for_cluster(
    config: &Config,
    manifests: &[Value],
    registry: Option<&str>,
    replicas: Option<&str>,
) -> Result<Vec<String>, String> {
    let registry = registry.or(config.default_registry.as_deref());
    let replicas = match (config.replicas_claim.as_deref(), replicas) {
        (Some(c), Some(v)) => {
            Some(v.trim().parse::<u64>().map_err(|_| format!("claim {c} is {v:?}, not a replica count"))?)
        }
        _ => None,
    };
    manifests
        .iter()
        .map(|m| {
            let mut m = m.clone();
            transform_one(&mut m, registry, replicas);
            serde_json::to_string(&m).map_err(|e| e.to_string())
        })
        .collect()
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "image-transform".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Moves container images to the registry each cluster claims and sets the replica count it \
                      claims."
                .into(),
            reads: Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![] },
            config_schema: Some(include_str!("../config.schema.json").into()),
        }
    }

    fn validate_config(config: String) -> Result<Reads, String> {
        let config = parse(&config)?;
        Ok(Reads {
            labels: vec![],
            claims: config.registry_claim.iter().chain(&config.replicas_claim).cloned().collect(),
            resources: vec![],
            fields: vec![],
            kinds: vec![],
        })
    }

    fn transform(
        config: String,
        _owner: OwnerRef,
        manifests: Vec<String>,
        clusters: ClusterBatch,
    ) -> Result<Vec<Result<Vec<String>, String>>, String> {
        let config = parse(&config)?;
        let manifests: Vec<Value> = manifests
            .iter()
            .enumerate()
            .map(|(i, m)| serde_json::from_str(m).map_err(|e| format!("manifest {i} is not JSON: {e}")))
            .collect::<Result<_, _>>()?;
        let column = |name: &Option<String>| name.as_ref().and_then(|n| clusters.claims.iter().find(|c| &c.key == n));
        let (registries, replicas) = (column(&config.registry_claim), column(&config.replicas_claim));
        Ok((0..clusters.count as usize)
            .map(|i| for_cluster(&config, &manifests, value(registries, i), value(replicas, i)))
            .collect())
    }
}

export!(Plugin);
