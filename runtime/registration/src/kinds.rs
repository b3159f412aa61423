//! The served resources registration reads and writes, looked up once.

use std::sync::Arc;

use flotilla_apiserver::{Registry, Resource};

use crate::RegistrationError;

pub(crate) struct Kinds {
    pub managed_clusters: Arc<Resource>,
    pub csrs: Arc<Resource>,
    pub namespaces: Arc<Resource>,
    pub leases: Arc<Resource>,
    pub cluster_sets: Arc<Resource>,
    pub bindings: Arc<Resource>,
    pub bootstrap_tokens: Arc<Resource>,
}

impl Kinds {
    pub fn resolve(registry: &Registry) -> Result<Kinds, RegistrationError> {
        let get = |api_version: &str, kind: &str| registry.served(api_version, kind);
        Ok(Kinds {
            managed_clusters: get("cluster.open-cluster-management.io/v1", "ManagedCluster")?,
            csrs: get("certificates.k8s.io/v1", "CertificateSigningRequest")?,
            namespaces: get("v1", "Namespace")?,
            leases: get("coordination.k8s.io/v1", "Lease")?,
            cluster_sets: get("cluster.open-cluster-management.io/v1beta2", "ManagedClusterSet")?,
            bindings: get("cluster.open-cluster-management.io/v1beta2", "ManagedClusterSetBinding")?,
            bootstrap_tokens: get("flotilla.dev/v1alpha1", "BootstrapToken")?,
        })
    }
}
