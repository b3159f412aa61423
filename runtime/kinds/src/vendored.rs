//! CustomResourceDefinition manifests compiled into the binary: OCM's own CRDs,
//! vendored unmodified under `crds/` (see `crds/README.md` for where each came from),
//! and Flotilla's own CRDs (WasmPlugin, BootstrapToken). Two documented changes are made
//! when they are loaded, both additive: [`MAX_FEEDBACK_JSON_RAW_BYTES`], and the Placement's
//! Wasm plugin references ([`extend_placement`]).

use serde_json::{Value, json};

use crate::KindsError;

/// Where a CRD is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// On the hub (registration, placement, work distribution, governance, plugins).
    Hub,
    /// On a managed cluster, for the agent (claims, applied work, policy evaluation).
    Spoke,
}

/// One embedded CRD manifest.
#[derive(Debug, Clone, Copy)]
pub struct CrdFile {
    /// The file name under `runtime/kinds/crds/`.
    pub file: &'static str,
    pub yaml: &'static str,
    pub side: Side,
}

macro_rules! crd {
    ($file:literal, $side:expr) => {
        CrdFile { file: $file, yaml: include_str!(concat!("../crds/", $file)), side: $side }
    };
}

/// Every embedded CRD, hub ones first, in a stable order.
pub const CRD_FILES: &[CrdFile] = &[
    crd!("0000_00_clusters.open-cluster-management.io_managedclusters.crd.yaml", Side::Hub),
    crd!("0000_00_clusters.open-cluster-management.io_managedclustersets.crd.yaml", Side::Hub),
    crd!("0000_01_clusters.open-cluster-management.io_managedclustersetbindings.crd.yaml", Side::Hub),
    crd!("0000_02_clusters.open-cluster-management.io_placements.crd.yaml", Side::Hub),
    crd!("0000_03_clusters.open-cluster-management.io_placementdecisions.crd.yaml", Side::Hub),
    crd!("0000_05_clusters.open-cluster-management.io_addonplacementscores.crd.yaml", Side::Hub),
    crd!("0000_00_work.open-cluster-management.io_manifestworks.crd.yaml", Side::Hub),
    crd!("0000_00_work.open-cluster-management.io_manifestworkreplicasets.crd.yaml", Side::Hub),
    crd!("policy.open-cluster-management.io_policies.yaml", Side::Hub),
    crd!("policy.open-cluster-management.io_placementbindings.yaml", Side::Hub),
    crd!("policy.open-cluster-management.io_policysets.yaml", Side::Hub),
    crd!("flotilla.dev_wasmplugins.yaml", Side::Hub),
    crd!("flotilla.dev_bootstraptokens.yaml", Side::Hub),
    crd!("0000_02_clusters.open-cluster-management.io_clusterclaims.crd.yaml", Side::Spoke),
    crd!("0000_01_work.open-cluster-management.io_appliedmanifestworks.crd.yaml", Side::Spoke),
    crd!("policy.open-cluster-management.io_configurationpolicies.yaml", Side::Spoke),
];

/// The largest `statusFeedback` `jsonRaw` value a ManifestWork's status may hold. OCM's CRD
/// caps it at 1 KiB (and its agent at `--max-json-raw-length`, 1024); Flotilla's agent takes
/// `--max-feedback-json-bytes` up to this, so the hub's schema allows it.
pub const MAX_FEEDBACK_JSON_RAW_BYTES: u64 = 64 * 1024;

/// Raises every `jsonRaw` `maxLength` in a CRD's schemas to [`MAX_FEEDBACK_JSON_RAW_BYTES`].
fn raise_json_raw_limit(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(raw) = map.get_mut("jsonRaw").and_then(Value::as_object_mut)
                && raw.contains_key("maxLength")
            {
                raw.insert("maxLength".into(), Value::from(MAX_FEEDBACK_JSON_RAW_BYTES));
            }
            map.values_mut().for_each(raise_json_raw_limit);
        }
        Value::Array(items) => items.iter_mut().for_each(raise_json_raw_limit),
        _ => {}
    }
}

/// The schema of a reference from a Placement to a `WasmPlugin` (`flotilla.dev`) by name.
fn plugin_reference_schema(what: &str) -> Value {
    json!({
        "description": format!(
            "plugin names the WasmPlugin (flotilla.dev/v1alpha1) that {what}, with its configuration. \
             Flotilla's extension; OCM does not have this field."
        ),
        "properties": {
            "configuration": {
                "description": "configuration is passed to the plugin as JSON; the plugin validates it, and an \
                    invalid one makes the Placement Misconfigured with the plugin's message.",
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true
            },
            "failurePolicy": {
                "description": "failurePolicy overrides the WasmPlugin's: Fail keeps the previous decisions and \
                    reports the reason in the Placement's status when the plugin traps, times out or misbehaves; \
                    Ignore skips the plugin and records the reason.",
                "enum": ["Fail", "Ignore"],
                "type": "string"
            },
            "limits": {
                "description": "limits lowers (or raises, within the hub's maxima) the WasmPlugin's limits for \
                    the calls this reference makes.",
                "properties": {
                    "maxOutputBytes": {"format": "int64", "minimum": 1, "type": "integer"},
                    "memoryBytes": {"format": "int64", "minimum": 1, "type": "integer"},
                    "tableElements": {"format": "int64", "minimum": 1, "type": "integer"},
                    "timeoutMillis": {"format": "int32", "maximum": 60000, "minimum": 1, "type": "integer"}
                },
                "type": "object"
            },
            "name": {
                "description": "name is the name of the WasmPlugin.",
                "minLength": 1,
                "type": "string"
            }
        },
        "required": ["name"],
        "type": "object"
    })
}

/// Adds Flotilla's Wasm plugin references to the Placement CRD (every served version), so that
/// the schema keeps them instead of pruning them:
///
/// - `spec.predicates[].requiredClusterSelector.plugin {name, configuration, failurePolicy,
///   limits}`: a placement filter, ANDed with the predicate's label, claim and CEL selectors;
/// - `spec.prioritizerPolicy.configurations[].scoreCoordinate.plugin` (same shape) with the
///   `type` enum gaining `Plugin`: a placement scorer, weighted like any prioritizer.
///
/// Nothing else changes; a Placement written for OCM is accepted and read exactly as before.
pub fn extend_placement(crd: &mut Value) -> Result<(), String> {
    let versions = crd
        .pointer_mut("/spec/versions")
        .and_then(Value::as_array_mut)
        .ok_or("the Placement CRD has no spec.versions")?;
    for version in versions {
        let name = version.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let spec = version
            .pointer_mut("/schema/openAPIV3Schema/properties/spec/properties")
            .ok_or_else(|| format!("{name}: no spec schema"))?;
        let selector = spec
            .pointer_mut("/predicates/items/properties/requiredClusterSelector/properties")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("{name}: no predicates[].requiredClusterSelector schema"))?;
        selector.insert("plugin".into(), plugin_reference_schema("filters the clusters (world placement-filter)"));
        let coordinate = spec
            .pointer_mut("/prioritizerPolicy/properties/configurations/items/properties/scoreCoordinate/properties")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("{name}: no prioritizerPolicy.configurations[].scoreCoordinate schema"))?;
        coordinate.insert("plugin".into(), plugin_reference_schema("scores the clusters (world placement-scorer)"));
        let kind = coordinate
            .get_mut("type")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("{name}: no scoreCoordinate.type schema"))?;
        let types = kind
            .get_mut("enum")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| format!("{name}: no scoreCoordinate.type enum"))?;
        if !types.iter().any(|t| t == "Plugin") {
            types.push(json!("Plugin"));
        }
        if let Some(Value::String(description)) = kind.get_mut("description") {
            description
                .push_str("\nWhen the type is \"Plugin\" (Flotilla's extension), name the WasmPlugin in Plugin.");
        }
    }
    Ok(())
}

/// Parses one embedded file into its single CRD object.
pub fn parse(file: &CrdFile) -> Result<Value, KindsError> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(file.yaml)
        .map_err(|e| KindsError::Yaml { file: file.file, message: e.to_string() })?;
    let mut documents: Vec<Value> = documents.into_iter().filter(|d| !d.is_null()).collect();
    match (documents.pop(), documents.is_empty()) {
        (Some(mut crd), true) if crd.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") => {
            if file.file.contains("_manifestworks.") {
                raise_json_raw_limit(&mut crd);
            }
            if file.file.contains("_placements.") {
                extend_placement(&mut crd).map_err(|message| KindsError::Crd { file: file.file, message })?;
            }
            Ok(crd)
        }
        (Some(_), true) => Err(KindsError::Crd { file: file.file, message: "not a CustomResourceDefinition".into() }),
        (last, _) => {
            Err(KindsError::Documents { file: file.file, found: documents.len() + usize::from(last.is_some()) })
        }
    }
}
