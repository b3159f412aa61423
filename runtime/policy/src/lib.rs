//! The policy framework on the hub (OCM's governance-policy-propagator).
//!
//! A root `Policy` (`policy.open-cluster-management.io/v1`) is bound to Placements by
//! `PlacementBinding`s in its own namespace, directly or through a `PolicySet` (v1beta1). The
//! controller ([`controller::PolicyController`]) replicates each bound, enabled root policy
//! into the namespace of every cluster its Placements' PlacementDecisions select, as
//! `<rootNamespace>.<rootName>` with OCM's labels ([`ROOT_POLICY_LABEL`],
//! [`CLUSTER_NAME_LABEL`], [`CLUSTER_NAMESPACE_LABEL`]); removes a replica when its cluster
//! leaves the decisions, the binding or set goes, the policy is disabled or deleted; and
//! aggregates the compliance the agents write into the replicas' status back into the root's
//! status (and each PolicySet's).
//!
//! What is decided is a pure function of the objects read ([`propagation`], [`compliance`]),
//! so it is tested without a hub; the controller reads, calls it and writes the difference.
//!
//! Flotilla's additions, all additive: a `WasmPolicy` template (`flotilla.dev/v1alpha1`) names
//! a `WasmPlugin`, whose digest the hub resolves into the replica (agents fetch the blob by
//! digest and cannot read WasmPlugins); the root's `status.summary` counts clusters per
//! compliance state (for `flotilla get policies`); and `status.conditions` say why a policy
//! does not propagate as written (OCM only emits events).

pub mod compliance;
pub mod controller;
pub mod propagation;

/// The API group of the policy kinds.
pub const GROUP: &str = "policy.open-cluster-management.io";
/// `apiVersion` of Policy and PlacementBinding.
pub const API_VERSION: &str = "policy.open-cluster-management.io/v1";
/// `apiVersion` of PolicySet.
pub const POLICY_SET_API_VERSION: &str = "policy.open-cluster-management.io/v1beta1";

/// Label of a replica: `<rootNamespace>.<rootName>` of its root policy.
pub const ROOT_POLICY_LABEL: &str = "policy.open-cluster-management.io/root-policy";
/// Label of a replica: the cluster it is replicated to.
pub const CLUSTER_NAME_LABEL: &str = "policy.open-cluster-management.io/cluster-name";
/// Label of a replica: the cluster namespace it is in.
pub const CLUSTER_NAMESPACE_LABEL: &str = "policy.open-cluster-management.io/cluster-namespace";

/// The label a PlacementDecision carries naming its Placement.
pub use flotilla_placement::decisions::PLACEMENT_LABEL;

/// The longest replica name: it is also a label value.
pub const MAX_REPLICA_NAME_LENGTH: usize = 63;

/// Flotilla's policy-check template kind, and the WasmPlugin kind it names.
pub const WASM_POLICY_API_VERSION: &str = "flotilla.dev/v1alpha1";
pub const WASM_POLICY_KIND: &str = "WasmPolicy";
/// The WasmPlugin world a WasmPolicy's plugin must implement.
pub const POLICY_CHECK_WORLD: &str = "policy-check";

/// The name of a root policy's replicas, `<namespace>.<name>`, also the value of their
/// [`ROOT_POLICY_LABEL`].
pub use flotilla_apimachinery::names::dotted_key as replica_name;
/// The root policy (namespace, name) a replica's [`ROOT_POLICY_LABEL`] names.
pub use flotilla_apimachinery::names::split_dotted_key as parse_root_label;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_labels_split_at_the_first_dot() {
        assert_eq!(parse_root_label("policies.no-privileged"), Some(("policies", "no-privileged")));
        assert_eq!(parse_root_label("ns.a.b"), Some(("ns", "a.b")), "policy names may hold dots");
        assert_eq!(parse_root_label("nodot"), None);
        assert_eq!(parse_root_label(".x"), None);
        assert_eq!(replica_name("ns", "a.b"), "ns.a.b");
    }
}
