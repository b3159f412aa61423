//! CustomResourceDefinition manifests compiled into the binary: OCM's own CRDs,
//! vendored unmodified under `crds/` (see `crds/README.md` for where each came from),
//! and Flotilla's own CRDs (WasmPlugin, BootstrapToken). One documented change is made
//! when they are loaded: [`MAX_FEEDBACK_JSON_RAW_BYTES`].

use serde_json::Value;

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
            Ok(crd)
        }
        (Some(_), true) => Err(KindsError::Crd { file: file.file, message: "not a CustomResourceDefinition".into() }),
        (last, _) => {
            Err(KindsError::Documents { file: file.file, found: documents.len() + usize::from(last.is_some()) })
        }
    }
}
