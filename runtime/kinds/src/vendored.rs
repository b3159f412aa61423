//! CustomResourceDefinition manifests compiled into the binary: OCM's own CRDs,
//! vendored unmodified under `crds/` (see `crds/README.md` for where each came from),
//! and Flotilla's own CRDs (WasmPlugin, BootstrapToken). Three documented changes are made
//! when they are loaded, all additive: [`MAX_FEEDBACK_JSON_RAW_BYTES`], the Placement's
//! Wasm plugin references ([`extend_placement`]), the Policy's compliance summary and
//! conditions ([`extend_policy`]), and the ManifestWorkReplicaSet's rollout extensions
//! ([`extend_manifest_work_replica_set`]).

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
    crd!("flotilla.dev_wasmpolicies.yaml", Side::Hub),
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

/// Adds Flotilla's additive status fields and printer columns to the Policy CRD (every served
/// version), so that `flotilla get policies` and kubectl show per-cluster counts:
///
/// - `status.summary {clusters, compliant, nonCompliant, pending}`: how many clusters the root
///   policy is replicated to, and how many of them report each compliance state;
/// - `status.conditions[]`: the propagator's `Propagated` and `PolicyMisconfigured`
///   conditions (OCM reports these only as events);
/// - printer columns `Compliant` and `NonCompliant` (before `Age`), and `Pending` and
///   `Clusters` (wide).
///
/// A Policy written for OCM is accepted and read exactly as before.
pub fn extend_policy(crd: &mut Value) -> Result<(), String> {
    let count = |what: &str| json!({"description": what, "format": "int32", "minimum": 0, "type": "integer"});
    let summary = json!({
        "description": "Summary counts the clusters the root policy is replicated to by the compliance \
            their replicas report. Flotilla's extension; OCM does not have this field.",
        "properties": {
            "clusters": count("clusters is how many clusters the policy is replicated to."),
            "compliant": count("compliant is how many of them report Compliant."),
            "nonCompliant": count("nonCompliant is how many of them report NonCompliant."),
            "pending": count("pending is how many of them report Pending.")
        },
        "type": "object"
    });
    let mut conditions = crate::schema::conditions();
    if let Some(map) = conditions.as_object_mut() {
        map.insert(
            "description".into(),
            json!(
                "Conditions report the propagation of a root policy (Propagated) and what keeps it from \
                propagating as written (PolicyMisconfigured). Flotilla's extension."
            ),
        );
    }
    let columns = [
        json!({"jsonPath": ".status.summary.compliant", "name": "Compliant", "type": "integer"}),
        json!({"jsonPath": ".status.summary.nonCompliant", "name": "NonCompliant", "type": "integer"}),
        json!({"jsonPath": ".status.summary.pending", "name": "Pending", "priority": 1, "type": "integer"}),
        json!({"jsonPath": ".status.summary.clusters", "name": "Clusters", "priority": 1, "type": "integer"}),
    ];
    let versions =
        crd.pointer_mut("/spec/versions").and_then(Value::as_array_mut).ok_or("the Policy CRD has no spec.versions")?;
    for version in versions {
        let name = version.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let status = version
            .pointer_mut("/schema/openAPIV3Schema/properties/status/properties")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("{name}: no status schema"))?;
        status.insert("summary".into(), summary.clone());
        status.insert("conditions".into(), conditions.clone());
        let printed = version
            .as_object_mut()
            .ok_or_else(|| format!("{name}: not an object"))?
            .entry("additionalPrinterColumns")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .ok_or_else(|| format!("{name}: additionalPrinterColumns is not a list"))?;
        let age = printed.iter().position(|c| c.get("name") == Some(&json!("Age"))).unwrap_or(printed.len());
        for (offset, column) in columns.iter().enumerate() {
            if !printed.iter().any(|c| c.get("name") == column.get("name")) {
                printed.insert(age + offset, column.clone());
            }
        }
    }
    Ok(())
}

/// The schema of a reference from a ManifestWorkReplicaSet to a `WasmPlugin` by name.
fn rollout_plugin_reference_schema(what: &str, on_failure: &str) -> Value {
    json!({
        "description": format!(
            "names the WasmPlugin (flotilla.dev/v1alpha1) that {what}, with its configuration. \
             Flotilla's extension; OCM does not have this field."
        ),
        "properties": {
            "configuration": {
                "description": "configuration is passed to the plugin as JSON; the plugin validates it, and an \
                    invalid one is reported in the ManifestWorkReplicaSet's status with the plugin's message.",
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true
            },
            "failurePolicy": {
                "description": format!("failurePolicy overrides the WasmPlugin's. {on_failure}"),
                "enum": ["Fail", "Ignore"],
                "type": "string"
            },
            "name": {"description": "name is the name of the WasmPlugin.", "minLength": 1, "type": "string"}
        },
        "required": ["name"],
        "type": "object"
    })
}

/// Adds Flotilla's rollout extensions to the ManifestWorkReplicaSet CRD (every served
/// version), all additive, so that an OCM ManifestWorkReplicaSet is read exactly as before:
///
/// - `spec.placementRefs[].rolloutStrategy.type: Plugin` with `rolloutStrategy.plugin
///   {name, configuration, failurePolicy}`: a Wasm rollout strategy (world rollout-strategy);
/// - `spec.manifestTransform {name, configuration, failurePolicy}`: a Wasm manifest transform
///   (world manifest-transform) that changes the manifests per cluster;
/// - `spec.rollback {automatic}` and `spec.revisionHistoryLimit`: template revisions and
///   automatic rollback of the clusters where a rollout failed;
/// - `status.rollout`: the per-cluster rollout state the controller resumes from.
pub fn extend_manifest_work_replica_set(crd: &mut Value) -> Result<(), String> {
    let versions = crd
        .pointer_mut("/spec/versions")
        .and_then(Value::as_array_mut)
        .ok_or("the ManifestWorkReplicaSet CRD has no spec.versions")?;
    for version in versions {
        let name = version.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let root = version
            .pointer_mut("/schema/openAPIV3Schema/properties")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("version {name}: no openAPIV3Schema properties"))?;
        let spec = root
            .get_mut("spec")
            .and_then(|s| s.get_mut("properties"))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("version {name}: no spec properties"))?;
        let strategy = spec
            .get_mut("placementRefs")
            .and_then(|p| p.pointer_mut("/items/properties/rolloutStrategy"))
            .ok_or_else(|| format!("version {name}: no spec.placementRefs[].rolloutStrategy"))?;
        if let Some(props) = strategy.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert(
                "plugin".into(),
                rollout_plugin_reference_schema(
                    "decides which clusters proceed (world rollout-strategy), when type is Plugin",
                    "Fail stops the rollout where it is and reports the plugin's reason in the status; Ignore \
                     rolls out as type All would and records the reason.",
                ),
            );
            if let Some(types) = props.get_mut("type").and_then(|t| t.get_mut("enum")).and_then(Value::as_array_mut)
                && !types.iter().any(|t| t == "Plugin")
            {
                types.push(json!("Plugin"));
            }
        }
        spec.insert(
            "manifestTransform".into(),
            rollout_plugin_reference_schema(
                "changes the template's manifests for each cluster before its ManifestWork is created (world \
                 manifest-transform)",
                "Fail creates no work where the transform failed and says why in the status; Ignore creates the \
                 untransformed work. A cluster the plugin refuses never gets a work.",
            ),
        );
        spec.insert(
            "rollback".into(),
            json!({
                "description": "rollback: what happens to the clusters where a rollout failed. Flotilla's extension.",
                "properties": {
                    "automatic": {
                        "description": "automatic: when the rollout breaches maxFailures (or a strategy plugin \
                            declares clusters failed), the failed and timed-out clusters get back the last \
                            revision that succeeded on each of them, and the rollout stops until the template \
                            changes again.",
                        "type": "boolean"
                    }
                },
                "type": "object"
            }),
        );
        spec.insert(
            "revisionHistoryLimit".into(),
            json!({
                "description": "revisionHistoryLimit: how many revisions of manifestWorkTemplate are kept as \
                    ControllerRevisions (default 10); revisions that a cluster holds or can roll back to are \
                    always kept. Flotilla's extension.",
                "format": "int32",
                "minimum": 1,
                "type": "integer"
            }),
        );
        let status = root
            .get_mut("status")
            .and_then(|s| s.get_mut("properties"))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("version {name}: no status properties"))?;
        status.insert(
            "rollout".into(),
            json!({
                "description": "rollout: the state of the rollout of the current revision, per cluster; the \
                    controller resumes from it after a restart. Flotilla's extension.",
                "properties": {
                    "revision": {"type": "integer", "format": "int64"},
                    "observedGeneration": {"type": "integer", "format": "int64"},
                    "phase": {"type": "string", "enum": ["Progressing", "Complete", "Stopped", "Failed"]},
                    "message": {"type": "string"},
                    "recheckAt": {"type": "string", "format": "date-time"},
                    "stoppedRevision": {"type": "integer", "format": "int64"},
                    "clusters": {
                        "items": {
                            "properties": {
                                "name": {"type": "string"},
                                "placement": {"type": "string"},
                                "groupIndex": {"type": "integer", "format": "int32"},
                                "groupName": {"type": "string"},
                                "status": {"type": "string",
                                    "enum": ["ToApply", "Progressing", "Succeeded", "Failed", "TimeOut", "Skip"]},
                                "lastTransitionTime": {"type": "string", "format": "date-time"},
                                "revision": {"type": "integer", "format": "int64"},
                                "succeededRevision": {"type": "integer", "format": "int64"},
                                "timedOut": {"type": "boolean"},
                                "rolledBackTo": {"type": "integer", "format": "int64"},
                                "message": {"type": "string"}
                            },
                            "required": ["name"],
                            "type": "object"
                        },
                        "type": "array"
                    }
                },
                "type": "object"
            }),
        );
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
            if file.file.contains("_manifestworkreplicasets.") {
                extend_manifest_work_replica_set(&mut crd)
                    .map_err(|message| KindsError::Crd { file: file.file, message })?;
            }
            if file.file.contains("_policies.") {
                extend_policy(&mut crd).map_err(|message| KindsError::Crd { file: file.file, message })?;
            }
            Ok(crd)
        }
        (Some(_), true) => Err(KindsError::Crd { file: file.file, message: "not a CustomResourceDefinition".into() }),
        (last, _) => {
            Err(KindsError::Documents { file: file.file, found: documents.len() + usize::from(last.is_some()) })
        }
    }
}
