//! A manifest transform: labels every manifest with the name of the cluster it goes to.
//!
//! ```json
//! {"labelKey": "example.com/cluster"}
//! ```
//!
//! The host calls `transform` once per rollout cycle with the work's manifests and every
//! cluster that gets a work; the answer has one entry per cluster, in order: its manifests,
//! or why that cluster cannot have the work.

use flotilla_plugin_sdk::{
    ClusterManifests, Clusters, Context, Description, ManifestTransform, Plugin, Reads, Result,
    bail,
};
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

/// The manifests for one cluster, or why it cannot have them.
fn for_cluster(config: &Config, manifests: &[Value], cluster: &str) -> ClusterManifests {
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
        out.push(manifest);
    }
    Ok(out)
}

struct Transform;

impl Plugin for Transform {
    type Config = Config;

    fn describe() -> Description {
        flotilla_plugin_sdk::package_description!()
    }

    fn reads(config: &Config) -> Result<Reads> {
        if config.label_key.is_empty() {
            bail!("labelKey must not be empty");
        }
        Ok(Reads::new())
    }
}

impl ManifestTransform for Transform {
    fn transform(
        config: &Config,
        _ctx: &Context,
        manifests: &[Value],
        clusters: &Clusters,
    ) -> Result<Vec<ClusterManifests>> {
        Ok(clusters
            .iter()
            .map(|c| for_cluster(config, manifests, c.name()))
            .collect())
    }
}

flotilla_plugin_sdk::manifest_transform!(Transform);
