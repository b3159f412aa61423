//! The names registration shares with OCM and with the agent: groups, labels, taints,
//! condition types and reasons (docs/registration.md, reference ocm.md §1).

/// Prefix of every OCM agent identity: CN `system:open-cluster-management:C:AGENT`,
/// O `system:open-cluster-management:C`.
pub const SUBJECT_PREFIX: &str = "system:open-cluster-management:";
/// The group every agent certificate carries besides its per-cluster group.
pub const MANAGED_CLUSTERS_GROUP: &str = "system:open-cluster-management:managed-clusters";

/// The user-name prefix of a bootstrap token (`system:bootstrap:<ID>`).
pub const BOOTSTRAP_USER_PREFIX: &str = "system:bootstrap:";
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";
/// The group that may register clusters (OCM's `--use-bootstrap-token` group).
pub const BOOTSTRAPPERS_MANAGED_CLUSTER_GROUP: &str = "system:bootstrappers:managedcluster";
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// The label that names a CSR's (and a cluster namespace's) managed cluster.
pub const CLUSTER_NAME_LABEL: &str = "open-cluster-management.io/cluster-name";
/// Membership of an `ExclusiveClusterSetLabel` set.
pub const CLUSTER_SET_LABEL: &str = "cluster.open-cluster-management.io/clusterset";

/// The signer agents' CSRs name.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";

/// The agent's Lease in its cluster namespace.
pub const LEASE_NAME: &str = "managed-cluster-lease";
/// `spec.leaseDurationSeconds` when the cluster does not say (OCM's default).
pub const DEFAULT_LEASE_DURATION_SECONDS: u64 = 60;

pub const TAINT_UNREACHABLE: &str = "cluster.open-cluster-management.io/unreachable";
pub const TAINT_UNAVAILABLE: &str = "cluster.open-cluster-management.io/unavailable";
pub const TAINT_EFFECT_NO_SELECT: &str = "NoSelect";

/// ManagedCluster condition types (OCM `api:cluster/v1/types.go`).
pub const CONDITION_HUB_ACCEPTED: &str = "HubAcceptedManagedCluster";
pub const CONDITION_HUB_DENIED: &str = "HubDeniedManagedCluster";
pub const CONDITION_JOINED: &str = "ManagedClusterJoined";
pub const CONDITION_AVAILABLE: &str = "ManagedClusterConditionAvailable";
pub const CONDITION_CLOCK_SYNCED: &str = "ManagedClusterConditionClockSynced";

pub const REASON_HUB_ACCEPTED: &str = "HubClusterAdminAccepted";
pub const REASON_HUB_DENIED: &str = "HubClusterAdminDenied";
pub const REASON_LEASE_UPDATE_STOPPED: &str = "ManagedClusterLeaseUpdateStopped";
pub const REASON_CLOCK_SYNCED: &str = "ManagedClusterClockSynced";
pub const REASON_CLOCK_OUT_OF_SYNC: &str = "ManagedClusterClockOutOfSync";

/// ManagedClusterSet and ManagedClusterSetBinding conditions (OCM `api:cluster/v1beta2`).
pub const CONDITION_CLUSTER_SET_EMPTY: &str = "ClusterSetEmpty";
pub const REASON_NO_CLUSTER_MATCHED: &str = "NoClusterMatched";
pub const REASON_CLUSTERS_SELECTED: &str = "ClustersSelected";
pub const CONDITION_BOUND: &str = "Bound";
pub const REASON_CLUSTER_SET_BOUND: &str = "ClusterSetBound";
pub const REASON_CLUSTER_SET_NOT_FOUND: &str = "ClusterSetNotFound";

/// The sets every hub has.
pub const DEFAULT_CLUSTER_SET: &str = "default";
pub const GLOBAL_CLUSTER_SET: &str = "global";
/// `"false"` on the default or global set stops the hub from restoring its selector.
pub const AUTO_UPDATE_ANNOTATION: &str = "cluster.open-cluster-management.io/autoupdate";

/// CSR condition types and the reasons the hub and the CLI write.
pub const CSR_APPROVED: &str = "Approved";
pub const CSR_DENIED: &str = "Denied";
pub const CSR_FAILED: &str = "Failed";
/// `flotilla accept` / `flotilla deny`.
pub const REASON_FLOTILLA_ACCEPT: &str = "FlotillaAccept";
pub const REASON_FLOTILLA_DENY: &str = "FlotillaDeny";
/// Renewals and auto-accepted clusters (OCM's approver uses the same reason).
pub const REASON_AUTO_APPROVED: &str = "AutoApprovedByHubCSRApprovingController";
/// The signer refused an approved request (Kubernetes' reason).
pub const REASON_SIGNER_VALIDATION_FAILURE: &str = "SignerValidationFailure";

/// The field manager of every write the registration controllers make.
pub const FIELD_MANAGER: &str = "flotilla-registration";
