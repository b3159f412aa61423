//! The kinds Flotilla serves.
//!
//! - The hub: OCM's CustomResourceDefinitions (vendored unmodified from OCM's
//!   repositories, see `crds/README.md`), Flotilla's `WasmPlugin` (`flotilla.dev`), and
//!   the Kubernetes kinds the flows need (Namespace, Event, Lease,
//!   CertificateSigningRequest).
//! - The simulated spoke: the kinds of a fresh Kubernetes cluster, defined in Rust with
//!   compact structural schemas that declare the list merge semantics strategic merge
//!   patch and server-side apply need, plus the spoke-side OCM CRDs.
//!
//! Kind validators carry the rules OCM enforces with admission webhooks and Kubernetes
//! with its registry strategies (see [`validators`]).

pub mod builtin;
pub mod podspec;
pub mod schema;
pub mod validators;
pub mod vendored;

use flotilla_apimachinery::crd::resource_defs_from_crd;
use flotilla_apimachinery::{NameFormat, ResourceDef};
use serde_json::Value;

pub use vendored::{CRD_FILES, CrdFile, Side};

/// A problem with the kinds compiled into the binary (a build defect, not user input).
#[derive(Debug, thiserror::Error)]
pub enum KindsError {
    #[error("{file}: invalid YAML: {message}")]
    Yaml { file: &'static str, message: String },
    #[error("{file}: expected exactly one CustomResourceDefinition document, found {found}")]
    Documents { file: &'static str, found: usize },
    #[error("{file}: {message}")]
    Crd { file: &'static str, message: String },
}

/// The hub's kinds: OCM's hub CRDs, `WasmPlugin`, and core/v1 Namespace, Event, ConfigMap
/// and Secret (policy hub templates and add-on configuration read them), coordination.k8s.io/v1
/// Lease, certificates.k8s.io/v1 CertificateSigningRequest and apps/v1 ControllerRevision (the
/// revisions of ManifestWorkReplicaSet templates).
pub fn hub_kinds() -> Result<Vec<ResourceDef>, KindsError> {
    let mut kinds = vec![
        builtin::core::namespace(),
        builtin::core::event(),
        builtin::core::config_map(),
        builtin::core::secret(),
        builtin::cluster::lease(),
        builtin::cluster::certificate_signing_request(),
        builtin::workloads::controller_revision(),
    ];
    kinds.extend(crd_kinds(Side::Hub)?);
    Ok(kinds)
}

/// The simulated spoke's kinds: a realistic fresh cluster plus the spoke-side OCM CRDs
/// (ClusterClaim, AppliedManifestWork, ConfigurationPolicy).
pub fn spoke_kinds() -> Result<Vec<ResourceDef>, KindsError> {
    use builtin::{cluster, core, workloads};
    let mut kinds = vec![
        core::namespace(),
        core::node(),
        core::pod(),
        core::service(),
        core::config_map(),
        core::secret(),
        core::service_account(),
        core::event(),
        core::endpoints(),
        core::persistent_volume_claim(),
        core::persistent_volume(),
        core::resource_quota(),
        core::limit_range(),
        workloads::deployment(),
        workloads::stateful_set(),
        workloads::daemon_set(),
        workloads::replica_set(),
        workloads::controller_revision(),
        workloads::job(),
        workloads::cron_job(),
        cluster::role(),
        cluster::role_binding(),
        cluster::cluster_role(),
        cluster::cluster_role_binding(),
        cluster::network_policy(),
        cluster::ingress(),
        cluster::pod_disruption_budget(),
        cluster::lease(),
        cluster::storage_class(),
        cluster::priority_class(),
        cluster::custom_resource_definition(),
    ];
    kinds.extend(crd_kinds(Side::Spoke)?);
    Ok(kinds)
}

/// Every embedded CRD object (OCM's and `WasmPlugin`) as JSON, hub ones first, so a
/// server can also list them under `apiextensions.k8s.io`.
pub fn crd_manifests() -> Result<Vec<Value>, KindsError> {
    CRD_FILES.iter().map(vendored::parse).collect()
}

/// The embedded CRD objects served on one side.
pub fn crd_manifests_for(side: Side) -> Result<Vec<Value>, KindsError> {
    CRD_FILES.iter().filter(|f| f.side == side).map(vendored::parse).collect()
}

/// The served versions of the embedded CRDs of one side, with OCM's webhook rules
/// attached as validators.
fn crd_kinds(side: Side) -> Result<Vec<ResourceDef>, KindsError> {
    let mut kinds = Vec::new();
    for file in CRD_FILES.iter().filter(|f| f.side == side) {
        let crd = vendored::parse(file)?;
        let defs = resource_defs_from_crd(&crd).map_err(|message| KindsError::Crd { file: file.file, message })?;
        kinds.extend(defs.into_iter().map(with_webhook_rules));
    }
    Ok(kinds)
}

/// Attaches the rules OCM's admission webhooks enforce beyond the CRD schemas.
fn with_webhook_rules(mut def: ResourceDef) -> ResourceDef {
    match (def.group.as_str(), def.kind.as_str()) {
        ("cluster.open-cluster-management.io", "ManagedCluster") => {
            // A cluster's name is also its namespace on the hub.
            def.name_format = NameFormat::Dns1123Label;
        }
        ("cluster.open-cluster-management.io", "ManagedClusterSetBinding") => {
            def.validator = Some(validators::managed_cluster_set_binding);
        }
        ("cluster.open-cluster-management.io", "Placement") => {
            def.validator = Some(validators::placement);
        }
        ("work.open-cluster-management.io", "ManifestWork") => {
            def.validator = Some(validators::manifest_work);
        }
        ("work.open-cluster-management.io", "ManifestWorkReplicaSet") => {
            def.validator = Some(validators::manifest_work_replica_set);
        }
        ("flotilla.dev", "BootstrapToken") => {
            def.validator = Some(validators::bootstrap_token);
        }
        _ => {}
    }
    def
}

#[cfg(test)]
mod tests;
