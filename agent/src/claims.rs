//! ClusterClaims (OCM `claim_reconcile.go`, reference ocm.md §1.4): the reserved claims the
//! agent can tell from its spoke, plus the spoke's ClusterClaim objects.
//!
//! - Reserved names are always reported and do not count against the limit. A ClusterClaim
//!   object with a reserved name (set by a vendor or an add-on) wins over what the agent
//!   derives, because whoever created it knows better than a heuristic.
//! - Custom claims are sorted by name and truncated to `max_custom` (OCM's
//!   `--max-custom-cluster-claims`, default 20).
//! - Claims labelled `open-cluster-management.io/spoke-only` stay on the spoke (the label, as
//!   in OCM's code; its docs show an annotation).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use serde::Serialize;

pub const CLAIM_ID: &str = "id.k8s.io";
pub const CLAIM_KUBEVERSION: &str = "kubeversion.open-cluster-management.io";
pub const CLAIM_PLATFORM: &str = "platform.open-cluster-management.io";
pub const CLAIM_PRODUCT: &str = "product.open-cluster-management.io";
/// OCM's `ReservedClusterClaimNames`.
pub const RESERVED_CLAIMS: [&str; 4] = [CLAIM_ID, CLAIM_KUBEVERSION, CLAIM_PLATFORM, CLAIM_PRODUCT];
pub const SPOKE_ONLY_LABEL: &str = "open-cluster-management.io/spoke-only";
pub const DEFAULT_MAX_CUSTOM_CLAIMS: usize = 20;

/// ManagedCluster `status.clusterClaims` limits (OCM API validation).
const MAX_NAME_LEN: usize = 253;
const MAX_VALUE_LEN: usize = 1024;

/// One entry of `status.clusterClaims`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Claim {
    pub name: String,
    pub value: String,
}

/// A ClusterClaim object found on the spoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpokeClaim {
    pub name: String,
    pub value: String,
    pub spoke_only: bool,
}

impl SpokeClaim {
    /// From a ClusterClaim object (`cluster.open-cluster-management.io/v1alpha1`); `None` when
    /// it has no name.
    pub fn from_object(obj: &serde_json::Value) -> Option<SpokeClaim> {
        let name = obj.pointer("/metadata/name")?.as_str()?.to_string();
        let value = obj.pointer("/spec/value").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let spoke_only = obj.pointer("/metadata/labels").and_then(|l| l.get(SPOKE_ONLY_LABEL)).is_some();
        Some(SpokeClaim { name, value, spoke_only })
    }
}

/// The claims to report, and how many custom claims the limit left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimSet {
    /// Reserved claims first (sorted), then custom ones (sorted), as OCM lists them.
    pub claims: Vec<Claim>,
    pub truncated: usize,
}

fn valid(name: &str, value: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && !value.is_empty() && value.len() <= MAX_VALUE_LEN
}

/// Combines the reserved claims derived from the spoke with its ClusterClaim objects.
pub fn collect(derived: &BTreeMap<String, String>, objects: &[SpokeClaim], max_custom: usize) -> ClaimSet {
    let mut reserved: BTreeMap<&str, &str> = derived
        .iter()
        .filter(|(name, value)| RESERVED_CLAIMS.contains(&name.as_str()) && valid(name, value))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut custom: BTreeMap<&str, &str> = BTreeMap::new();
    for claim in objects.iter().filter(|c| !c.spoke_only && valid(&c.name, &c.value)) {
        if RESERVED_CLAIMS.contains(&claim.name.as_str()) {
            reserved.insert(&claim.name, &claim.value);
        } else {
            custom.insert(&claim.name, &claim.value);
        }
    }
    let truncated = custom.len().saturating_sub(max_custom);
    let to_claim = |(name, value): (&str, &str)| Claim { name: name.to_string(), value: value.to_string() };
    let claims = reserved.into_iter().map(to_claim).chain(custom.into_iter().take(max_custom).map(to_claim)).collect();
    ClaimSet { claims, truncated }
}

/// What the Nodes say about where the cluster runs: `(platform, product)`, each when
/// recognisable. Product names follow OCM/ACM's values (`OpenShift`, `EKS`, `GKE`, `AKS`,
/// ...), platforms its infrastructure names (`AWS`, `GCP`, `Azure`, ...). A Flotilla
/// simulated spoke reports platform `Simulated`, product `Flotilla`.
pub fn platform_and_product(nodes: &[Node]) -> (Option<String>, Option<String>) {
    let mut platform = None;
    let mut product = None;
    for node in nodes {
        let provider_id = node.spec.as_ref().and_then(|s| s.provider_id.as_deref()).unwrap_or_default();
        let labels = node.metadata.labels.as_ref();
        let has_label = |key: &str| labels.is_some_and(|l| l.contains_key(key));
        let kubelet = node
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.as_str())
            .unwrap_or_default();
        if platform.is_none() {
            platform = platform_of_provider(provider_id);
        }
        if product.is_none() {
            product = if has_label("node.openshift.io/os_id") {
                Some("OpenShift")
            } else if has_label("eks.amazonaws.com/nodegroup") || has_label("eks.amazonaws.com/compute-type") {
                Some("EKS")
            } else if has_label("cloud.google.com/gke-nodepool") {
                Some("GKE")
            } else if has_label("kubernetes.azure.com/cluster") {
                Some("AKS")
            } else if has_label("ibm-cloud.kubernetes.io/worker-id") {
                Some("IKS")
            } else if has_label("microk8s.io/cluster") {
                Some("MicroK8s")
            } else if kubelet.contains("+k3s") {
                Some("K3s")
            } else if kubelet.contains("+rke2") {
                Some("RKE2")
            } else if provider_id.starts_with("kind://") {
                Some("Kind")
            } else if provider_id.starts_with("flotilla://") {
                Some("Flotilla")
            } else {
                None
            };
        }
        if platform.is_some() && product.is_some() {
            break;
        }
    }
    (platform.map(str::to_string), product.map(str::to_string))
}

fn platform_of_provider(provider_id: &str) -> Option<&'static str> {
    let scheme = provider_id.split_once("://")?.0;
    Some(match scheme {
        "aws" => "AWS",
        "gce" => "GCP",
        "azure" => "Azure",
        "ibm" | "ibmcloud" => "IBM",
        "openstack" => "OpenStack",
        "vsphere" => "VSphere",
        "ovirt" => "RHV",
        "alicloud" => "AlibabaCloud",
        "flotilla" | "kwok" => "Simulated",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn spoke(name: &str, value: &str) -> SpokeClaim {
        SpokeClaim { name: name.into(), value: value.into(), spoke_only: false }
    }

    fn names(set: &ClaimSet) -> Vec<&str> {
        set.claims.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn reserved_first_then_sorted_custom_claims() {
        let derived: BTreeMap<String, String> = [
            (CLAIM_KUBEVERSION.to_string(), "v1.34.0".to_string()),
            (CLAIM_ID.to_string(), "uid-1".to_string()),
            ("not-reserved.example.com".to_string(), "ignored".to_string()),
        ]
        .into();
        let objects = [spoke("zone.example.com", "z1"), spoke("region.example.com", "eu"), spoke("a.example.com", "a")];
        let set = collect(&derived, &objects, 20);
        assert_eq!(
            names(&set),
            [CLAIM_ID, CLAIM_KUBEVERSION, "a.example.com", "region.example.com", "zone.example.com"]
        );
        assert_eq!(set.truncated, 0);
    }

    #[test]
    fn custom_claims_are_truncated_but_reserved_ones_are_not() {
        let derived: BTreeMap<String, String> = [(CLAIM_ID.to_string(), "uid-1".to_string())].into();
        let mut objects: Vec<SpokeClaim> = (0..30).rev().map(|i| spoke(&format!("c{i:02}.example.com"), "v")).collect();
        objects.push(spoke(CLAIM_PLATFORM, "AWS"));
        let set = collect(&derived, &objects, 20);
        assert_eq!(set.claims.len(), 22);
        assert_eq!(set.truncated, 10);
        assert_eq!(names(&set)[..3], [CLAIM_ID, CLAIM_PLATFORM, "c00.example.com"]);
        assert_eq!(names(&set).last().copied(), Some("c19.example.com"));

        let none = collect(&derived, &objects, 0);
        assert_eq!(names(&none), [CLAIM_ID, CLAIM_PLATFORM]);
        assert_eq!(none.truncated, 30);
    }

    #[test]
    fn spoke_only_and_invalid_claims_are_skipped_and_objects_override_derived_values() {
        let derived: BTreeMap<String, String> = [(CLAIM_PRODUCT.to_string(), "Flotilla".to_string())].into();
        let objects = [
            SpokeClaim { name: "secret.example.com".into(), value: "x".into(), spoke_only: true },
            spoke("empty.example.com", ""),
            spoke("long.example.com", &"x".repeat(1025)),
            spoke(CLAIM_PRODUCT, "OpenShift"),
        ];
        let set = collect(&derived, &objects, 20);
        assert_eq!(set.claims, [Claim { name: CLAIM_PRODUCT.into(), value: "OpenShift".into() }]);
    }

    #[test]
    fn reads_cluster_claim_objects() {
        let obj = json!({
            "apiVersion": "cluster.open-cluster-management.io/v1alpha1",
            "kind": "ClusterClaim",
            "metadata": {"name": "region.example.com", "labels": {SPOKE_ONLY_LABEL: ""}},
            "spec": {"value": "eu-west-1"},
        });
        let claim = SpokeClaim::from_object(&obj).unwrap();
        assert_eq!(
            claim,
            SpokeClaim { name: "region.example.com".into(), value: "eu-west-1".into(), spoke_only: true }
        );
        assert!(SpokeClaim::from_object(&json!({"spec": {"value": "x"}})).is_none());
    }

    fn node(provider_id: &str, labels: &[(&str, &str)], kubelet: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n", "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()},
            "spec": {"providerID": provider_id},
            "status": {"nodeInfo": {
                "kubeletVersion": kubelet, "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "",
                "kernelVersion": "", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux",
                "osImage": "", "systemUUID": ""
            }},
        }))
        .unwrap()
    }

    #[test]
    fn recognises_platforms_and_products() {
        let cases: [(Node, Option<&str>, Option<&str>); 6] = [
            (
                node("aws:///eu-west-1a/i-0abc", &[("eks.amazonaws.com/nodegroup", "ng")], "v1.34.0-eks"),
                Some("AWS"),
                Some("EKS"),
            ),
            (
                node("gce://p/z/n", &[("cloud.google.com/gke-nodepool", "default")], "v1.34.0-gke.1"),
                Some("GCP"),
                Some("GKE"),
            ),
            (
                node("azure:///subscriptions/x", &[("kubernetes.azure.com/cluster", "mc")], "v1.34.0"),
                Some("Azure"),
                Some("AKS"),
            ),
            (node("", &[], "v1.34.0+k3s1"), None, Some("K3s")),
            (
                node("flotilla://spoke1/spoke1-node-0", &[("type", "kwok")], "v1.34.0"),
                Some("Simulated"),
                Some("Flotilla"),
            ),
            (node("", &[], "v1.34.0"), None, None),
        ];
        for (node, platform, product) in cases {
            let (p, q) = platform_and_product(std::slice::from_ref(&node));
            assert_eq!((p.as_deref(), q.as_deref()), (platform, product), "{:?}", node.spec);
        }
        let mixed = [node("", &[], "v1.34.0"), node("aws:///x", &[("node.openshift.io/os_id", "rhcos")], "v1.34.0")];
        let (p, q) = platform_and_product(&mixed);
        assert_eq!((p.as_deref(), q.as_deref()), (Some("AWS"), Some("OpenShift")));
    }
}
