//! A manifest transform: labels every manifest with the name of the cluster it goes to.
//!
//! ```json
//! {"labelKey": "example.com/cluster"}
//! ```
//!
//! The host calls `transform` once per rollout cycle with the work's manifests and every
//! cluster that gets a work in that cycle; the answer has one entry per cluster, in order:
//! that cluster's manifests, or why the cluster cannot have the work.

wit_bindgen::generate!({
    path: "wit",
    world: "manifest-transform",
    generate_all,
});

use exports::flotilla::manifest_transform::transform::Guest;
use flotilla::types::types::{ClusterBatch, Description, OwnerRef, Reads};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    /// The label to set.
    #[serde(default = "default_label_key")]
    label_key: String,
}

fn default_label_key() -> String {
    "flotilla.dev/cluster".into()
}

fn parse(config: &str) -> Result<Config, String> {
    let config: Config =
        serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    if config.label_key.is_empty() {
        return Err("labelKey must not be empty".into());
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

/// The manifests for one cluster, or why it cannot have them.
fn for_cluster(config: &Config, manifests: &[Value], cluster: &str) -> Result<Vec<String>, String> {
    // Kubernetes label values are at most 63 characters.
    if cluster.len() > 63 {
        return Err(format!(
            "cluster name {cluster} is longer than a label value may be (63)"
        ));
    }
    let mut out = Vec::with_capacity(manifests.len());
    for manifest in manifests {
        let mut manifest = manifest.clone();
        let Some(object) = manifest.as_object_mut() else {
            return Err("a manifest is not a JSON object".into());
        };
        let metadata = object
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let labels = metadata
            .as_object_mut()
            .ok_or("a manifest's metadata is not an object")?
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        labels
            .as_object_mut()
            .ok_or("a manifest's labels are not an object")?
            .insert(config.label_key.clone(), Value::String(cluster.into()));
        out.push(manifest.to_string());
    }
    Ok(out)
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
        parse(&config)?;
        Ok(no_reads())
    }

    fn transform(
        config: String,
        _owner: OwnerRef,
        manifests: Vec<String>,
        clusters: ClusterBatch,
    ) -> Result<Vec<Result<Vec<String>, String>>, String> {
        let config = parse(&config)?;
        let manifests = manifests
            .iter()
            .map(|m| serde_json::from_str(m).map_err(|e| format!("a manifest is not JSON: {e}")))
            .collect::<Result<Vec<Value>, String>>()?;
        // Names are separated by '\n'; an empty batch has none.
        let names = clusters.names.split('\n').take(clusters.count as usize);
        Ok(names
            .map(|name| for_cluster(&config, &manifests, name))
            .collect())
    }
}

export!(Plugin);
