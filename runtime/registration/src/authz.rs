//! Who may do what on the hub (docs/registration.md, "Authorization on the hub"):
//!
//! - `system:masters`: everything;
//! - bootstrap tokens: create/get/list/watch CSRs, get/create ManagedClusters;
//! - the agent of cluster C, while ManagedCluster C exists and `spec.hubAcceptsClient` is
//!   true (checked on every request, so revocation is immediate): its ManagedCluster and
//!   its status, the ManifestWorks, Policies, Lease and Events of namespace C, CSRs, and
//!   plugin binaries by digest (`GET /blobs/sha256:…`, to run the policy checks and
//!   transforms its works and policies name);
//! - everyone else: nothing.

use async_trait::async_trait;
use flotilla_apimachinery::ApiError;
use flotilla_apiserver::{Attributes, Authorizer, Decision, MASTERS_GROUP, UserInfo};
use serde_json::Value;

use crate::Hub;
use crate::identity::{AgentIdentity, agent_of};
use crate::names::BOOTSTRAPPERS_MANAGED_CLUSTER_GROUP;

const CLUSTER_GROUP: &str = "cluster.open-cluster-management.io";
const CERTIFICATES_GROUP: &str = "certificates.k8s.io";
const WORK_GROUP: &str = "work.open-cluster-management.io";
const POLICY_GROUP: &str = "policy.open-cluster-management.io";
const COORDINATION_GROUP: &str = "coordination.k8s.io";

/// Whether a managed cluster lets its agent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    Accepted,
    NotAccepted,
    Missing,
}

/// Reads a cluster's acceptance (from the storage on the hub; from a table in tests).
#[async_trait]
pub trait AcceptanceLookup: Send + Sync {
    async fn acceptance(&self, cluster: &str) -> Result<Acceptance, ApiError>;
}

/// The kinds of caller the rules tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Masters,
    Bootstrap,
    Agent(AgentIdentity),
    Other,
}

pub fn classify(user: &UserInfo) -> Caller {
    if user.in_group(MASTERS_GROUP) {
        Caller::Masters
    } else if let Some(agent) = agent_of(user) {
        Caller::Agent(agent)
    } else if user.in_group(BOOTSTRAPPERS_MANAGED_CLUSTER_GROUP) {
        Caller::Bootstrap
    } else {
        Caller::Other
    }
}

fn is(attrs: &Attributes, group: &str, resource: &str) -> bool {
    attrs.group == group && attrs.resource == resource
}

fn verb_in(attrs: &Attributes, verbs: &[&str]) -> bool {
    verbs.contains(&attrs.verb.as_str())
}

/// What a bootstrap token may do: register, nothing else.
pub fn bootstrap_rules(attrs: &Attributes) -> Decision {
    let allowed = attrs.subresource.is_empty()
        && ((is(attrs, CERTIFICATES_GROUP, "certificatesigningrequests")
            && verb_in(attrs, &["create", "get", "list", "watch"]))
            || (is(attrs, CLUSTER_GROUP, "managedclusters") && verb_in(attrs, &["get", "create"])));
    if allowed {
        Decision::Allow
    } else {
        Decision::Deny(
            "a bootstrap token may only create and read certificate signing requests and create and get managed clusters"
                .to_string(),
        )
    }
}

/// The hub's plugin blobs, as non-resource paths (`/blobs/sha256:<hex>`).
const BLOB_PATH_PREFIX: &str = "/blobs/sha256:";

/// What the agent of an accepted `cluster` may do.
pub fn agent_rules(cluster: &str, attrs: &Attributes) -> Decision {
    if attrs.is_non_resource() {
        // Plugin binaries are content-addressed and hold no cluster's data: read only.
        return if attrs.resource.starts_with(BLOB_PATH_PREFIX) && attrs.verb == "get" {
            Decision::Allow
        } else {
            Decision::Deny(format!(
                "the agent of managed cluster {cluster:?} may only read plugin blobs and its own cluster's objects"
            ))
        };
    }
    let main = attrs.subresource.is_empty();
    let status = attrs.subresource == "status";
    let in_namespace = attrs.namespace == cluster;
    let allowed = if is(attrs, CLUSTER_GROUP, "managedclusters") {
        attrs.name == cluster && (main || status) && verb_in(attrs, &["get", "update", "patch"])
    } else if is(attrs, WORK_GROUP, "manifestworks") || is(attrs, POLICY_GROUP, "policies") {
        in_namespace
            && ((main && verb_in(attrs, &["get", "list", "watch", "update", "patch"]))
                || (status && verb_in(attrs, &["get", "update", "patch"])))
    } else if is(attrs, COORDINATION_GROUP, "leases") {
        in_namespace && main && verb_in(attrs, &["get", "create", "update", "patch"])
    } else if is(attrs, "", "events") {
        in_namespace && main && verb_in(attrs, &["create", "update", "patch", "get", "list"])
    } else if is(attrs, CERTIFICATES_GROUP, "certificatesigningrequests") {
        main && verb_in(attrs, &["create", "get", "list", "watch"])
    } else {
        false
    };
    if allowed {
        Decision::Allow
    } else {
        Decision::Deny(format!("the agent of managed cluster {cluster:?} may only reach its own cluster's objects"))
    }
}

/// The revocation message (docs/registration.md).
pub fn not_accepted(cluster: &str, acceptance: Acceptance) -> String {
    match acceptance {
        Acceptance::Missing => format!("managed cluster {cluster:?} is not accepted by the hub (it does not exist)"),
        _ => format!("managed cluster {cluster:?} is not accepted by the hub"),
    }
}

/// The whole decision, given a way to look clusters up.
pub async fn decide(lookup: &dyn AcceptanceLookup, user: &UserInfo, attrs: &Attributes) -> Decision {
    match classify(user) {
        Caller::Masters => Decision::Allow,
        Caller::Bootstrap => bootstrap_rules(attrs),
        Caller::Agent(agent) => match lookup.acceptance(&agent.cluster).await {
            Ok(Acceptance::Accepted) => agent_rules(&agent.cluster, attrs),
            Ok(other) => {
                tracing::info!(cluster = %agent.cluster, agent_id = %agent.agent_id, ?other, verb = %attrs.verb,
                    resource = %attrs.resource, "refused a request from the agent of a cluster that is not accepted");
                Decision::Deny(not_accepted(&agent.cluster, other))
            }
            Err(e) => {
                tracing::warn!(cluster = %agent.cluster, error = %e, "cannot check whether a cluster is accepted");
                Decision::Deny(format!("cannot check whether managed cluster {:?} is accepted: {e}", agent.cluster))
            }
        },
        Caller::Other => Decision::Deny(String::new()),
    }
}

/// The hub's authorizer: [`decide`] over the hub's storage.
pub struct RegistrationAuthorizer {
    hub: Hub,
}

impl RegistrationAuthorizer {
    pub(crate) fn new(hub: Hub) -> Self {
        RegistrationAuthorizer { hub }
    }
}

#[async_trait]
impl AcceptanceLookup for Hub {
    async fn acceptance(&self, cluster: &str) -> Result<Acceptance, ApiError> {
        let Some(bound) = self.get() else {
            return Err(ApiError::service_unavailable("the hub is starting"));
        };
        // Read on every request rather than cached: revocation must hold from the next request.
        match bound.storage.get(&bound.kinds.managed_clusters, None, cluster).await {
            Ok(mc) => Ok(accepted(&mc)),
            Err(e) if e.code == 404 => Ok(Acceptance::Missing),
            Err(e) => Err(e),
        }
    }
}

/// A ManagedCluster's acceptance: it must not be deleting and must accept its client.
pub fn accepted(mc: &Value) -> Acceptance {
    let deleting = mc.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null());
    let accepts = mc.pointer("/spec/hubAcceptsClient").and_then(Value::as_bool) == Some(true);
    if accepts && !deleting { Acceptance::Accepted } else { Acceptance::NotAccepted }
}

#[async_trait]
impl Authorizer for RegistrationAuthorizer {
    async fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        decide(&self.hub, user, attrs).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Table(HashMap<&'static str, Acceptance>);

    #[async_trait]
    impl AcceptanceLookup for Table {
        async fn acceptance(&self, cluster: &str) -> Result<Acceptance, ApiError> {
            Ok(self.0.get(cluster).copied().unwrap_or(Acceptance::Missing))
        }
    }

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    fn agent(cluster: &str) -> UserInfo {
        AgentIdentity { cluster: cluster.into(), agent_id: "agentid123".into() }.into_user()
    }

    impl AgentIdentity {
        fn into_user(self) -> UserInfo {
            UserInfo { name: self.user_name(), groups: self.groups() }
        }
    }

    fn table() -> Table {
        Table(HashMap::from([
            ("c1", Acceptance::Accepted),
            ("c2", Acceptance::Accepted),
            ("denied", Acceptance::NotAccepted),
        ]))
    }

    async fn allowed(user: &UserInfo, a: &Attributes) -> bool {
        decide(&table(), user, a).await == Decision::Allow
    }

    #[tokio::test]
    async fn masters_may_do_anything() {
        let admin = UserInfo { name: "flotilla-admin".into(), groups: vec![MASTERS_GROUP.into()] };
        assert!(allowed(&admin, &attrs("delete", "", "namespaces", "", "", "default")).await);
        assert!(allowed(&admin, &attrs("create", "flotilla.dev", "bootstraptokens", "", "", "")).await);
    }

    #[tokio::test]
    async fn bootstrap_tokens_may_only_register() {
        let boot = crate::token::user_for("abcdef");
        let csr = "certificatesigningrequests";
        let mcl = "managedclusters";
        let cert = "certificates.k8s.io";
        let ocm = CLUSTER_GROUP;
        for (verb, group, resource, sub, name) in [
            ("create", cert, csr, "", ""),
            ("get", cert, csr, "", "c1-abcde"),
            ("list", cert, csr, "", ""),
            ("watch", cert, csr, "", ""),
            ("create", ocm, mcl, "", ""),
            ("get", ocm, mcl, "", "c1"),
        ] {
            assert!(allowed(&boot, &attrs(verb, group, resource, sub, "", name)).await, "{verb} {resource}");
        }
        for (verb, group, resource, sub, ns, name) in [
            ("update", cert, csr, "", "", "c1-abcde"),
            ("update", cert, csr, "status", "", "c1-abcde"),
            ("delete", cert, csr, "", "", "c1-abcde"),
            ("list", ocm, mcl, "", "", ""),
            ("watch", ocm, mcl, "", "", ""),
            ("update", ocm, mcl, "", "", "c1"),
            ("patch", ocm, mcl, "status", "", "c1"),
            ("delete", ocm, mcl, "", "", "c1"),
            ("get", "", "namespaces", "", "", "c1"),
            ("list", "flotilla.dev", "bootstraptokens", "", "", ""),
            ("get", "work.open-cluster-management.io", "manifestworks", "", "c1", "w"),
            ("create", "coordination.k8s.io", "leases", "", "c1", ""),
        ] {
            let a = attrs(verb, group, resource, sub, ns, name);
            let decision = decide(&table(), &boot, &a).await;
            assert!(matches!(decision, Decision::Deny(ref r) if r.contains("bootstrap token")), "{a:?}: {decision:?}");
        }
    }

    #[tokio::test]
    async fn agents_reach_only_their_own_cluster() {
        let a1 = agent("c1");
        let work = "work.open-cluster-management.io";
        let policy = "policy.open-cluster-management.io";
        let coord = "coordination.k8s.io";
        let cert = "certificates.k8s.io";
        let ocm = CLUSTER_GROUP;
        let allowed_cases = [
            ("get", ocm, "managedclusters", "", "", "c1"),
            ("update", ocm, "managedclusters", "", "", "c1"),
            ("patch", ocm, "managedclusters", "", "", "c1"),
            ("get", ocm, "managedclusters", "status", "", "c1"),
            ("update", ocm, "managedclusters", "status", "", "c1"),
            ("patch", ocm, "managedclusters", "status", "", "c1"),
            ("get", work, "manifestworks", "", "c1", "w"),
            ("list", work, "manifestworks", "", "c1", ""),
            ("watch", work, "manifestworks", "", "c1", ""),
            ("update", work, "manifestworks", "", "c1", "w"),
            ("patch", work, "manifestworks", "", "c1", "w"),
            ("get", work, "manifestworks", "status", "c1", "w"),
            ("update", work, "manifestworks", "status", "c1", "w"),
            ("patch", work, "manifestworks", "status", "c1", "w"),
            ("get", policy, "policies", "", "c1", "p"),
            ("list", policy, "policies", "", "c1", ""),
            ("watch", policy, "policies", "", "c1", ""),
            ("update", policy, "policies", "", "c1", "p"),
            ("patch", policy, "policies", "status", "c1", "p"),
            ("get", coord, "leases", "", "c1", "managed-cluster-lease"),
            ("create", coord, "leases", "", "c1", ""),
            ("update", coord, "leases", "", "c1", "managed-cluster-lease"),
            ("patch", coord, "leases", "", "c1", "managed-cluster-lease"),
            ("create", "", "events", "", "c1", ""),
            ("update", "", "events", "", "c1", "e"),
            ("patch", "", "events", "", "c1", "e"),
            ("get", "", "events", "", "c1", "e"),
            ("list", "", "events", "", "c1", ""),
            ("create", cert, "certificatesigningrequests", "", "", ""),
            ("get", cert, "certificatesigningrequests", "", "", "c1-x"),
            ("list", cert, "certificatesigningrequests", "", "", ""),
            ("watch", cert, "certificatesigningrequests", "", "", ""),
        ];
        for (verb, group, resource, sub, ns, name) in allowed_cases {
            let a = attrs(verb, group, resource, sub, ns, name);
            assert!(allowed(&a1, &a).await, "{a:?}");
        }
        let denied_cases = [
            // Another cluster's objects.
            ("get", ocm, "managedclusters", "", "", "c2"),
            ("patch", ocm, "managedclusters", "status", "", "c2"),
            ("get", work, "manifestworks", "", "c2", "w"),
            ("list", work, "manifestworks", "", "c2", ""),
            ("update", work, "manifestworks", "status", "c2", "w"),
            ("get", policy, "policies", "", "c2", "p"),
            ("update", coord, "leases", "", "c2", "managed-cluster-lease"),
            ("create", "", "events", "", "c2", ""),
            // Verbs outside the grant, in its own namespace.
            ("list", ocm, "managedclusters", "", "", ""),
            ("watch", ocm, "managedclusters", "", "", ""),
            ("delete", ocm, "managedclusters", "", "", "c1"),
            ("create", ocm, "managedclusters", "", "", ""),
            ("create", work, "manifestworks", "", "c1", ""),
            ("delete", work, "manifestworks", "", "c1", "w"),
            ("list", work, "manifestworks", "status", "c1", ""),
            ("delete", coord, "leases", "", "c1", "managed-cluster-lease"),
            ("list", coord, "leases", "", "c1", ""),
            ("watch", coord, "leases", "", "c1", ""),
            ("delete", "", "events", "", "c1", "e"),
            ("watch", "", "events", "", "c1", ""),
            ("update", cert, "certificatesigningrequests", "status", "", "c1-x"),
            ("update", cert, "certificatesigningrequests", "", "", "c1-x"),
            ("delete", cert, "certificatesigningrequests", "", "", "c1-x"),
            // Other kinds entirely.
            ("get", "", "namespaces", "", "", "c1"),
            ("list", "", "secrets", "", "c1", ""),
            ("list", "flotilla.dev", "bootstraptokens", "", "", ""),
            ("get", ocm, "managedclustersets", "", "", "default"),
            ("get", ocm, "placements", "", "c1", "p"),
            ("get", ocm, "placementdecisions", "", "c1", "p"),
            ("list", work, "manifestworks", "", "", ""),
        ];
        for (verb, group, resource, sub, ns, name) in denied_cases {
            let a = attrs(verb, group, resource, sub, ns, name);
            let decision = decide(&table(), &a1, &a).await;
            assert!(matches!(decision, Decision::Deny(ref r) if r.contains("own cluster")), "{a:?}: {decision:?}");
        }
    }

    #[tokio::test]
    async fn agents_read_plugin_blobs_and_nothing_else_outside_the_api() {
        let blob = format!("/blobs/sha256:{}", "a".repeat(64));
        assert!(allowed(&agent("c1"), &Attributes::non_resource("get", &blob)).await);
        for (verb, path) in [("put", blob.as_str()), ("get", "/metrics"), ("get", "/blobs/other")] {
            let decision = decide(&table(), &agent("c1"), &Attributes::non_resource(verb, path)).await;
            assert!(
                matches!(decision, Decision::Deny(ref r) if r.contains("plugin blobs")),
                "{verb} {path}: {decision:?}"
            );
        }
        let decision = decide(&table(), &agent("denied"), &Attributes::non_resource("get", &blob)).await;
        assert!(matches!(decision, Decision::Deny(ref r) if r.contains("not accepted")), "{decision:?}");
        let boot = crate::token::user_for("abcdef");
        for verb in ["get", "put"] {
            assert!(!allowed(&boot, &Attributes::non_resource(verb, &blob)).await, "bootstrap {verb}");
        }
        assert!(!allowed(&boot, &Attributes::non_resource("get", "/metrics")).await);
        let admin = UserInfo { name: "flotilla-admin".into(), groups: vec![MASTERS_GROUP.into()] };
        assert!(allowed(&admin, &Attributes::non_resource("put", &blob)).await);
        assert!(allowed(&admin, &Attributes::non_resource("get", "/metrics")).await);
    }

    #[tokio::test]
    async fn revoked_clusters_are_refused_everything() {
        let get_own = attrs("get", CLUSTER_GROUP, "managedclusters", "", "", "denied");
        let decision = decide(&table(), &agent("denied"), &get_own).await;
        assert_eq!(decision, Decision::Deny("managed cluster \"denied\" is not accepted by the hub".into()));
        let csr = attrs("create", "certificates.k8s.io", "certificatesigningrequests", "", "", "");
        assert!(!allowed(&agent("denied"), &csr).await, "not even a renewal");
        let decision =
            decide(&table(), &agent("gone"), &attrs("get", CLUSTER_GROUP, "managedclusters", "", "", "gone")).await;
        assert!(
            matches!(decision, Decision::Deny(ref r) if r.contains("not accepted") && r.contains("does not exist"))
        );
    }

    #[tokio::test]
    async fn agent_names_without_their_group_are_nobody() {
        let forged = UserInfo { name: "system:open-cluster-management:c1:x".into(), groups: vec![] };
        let a = attrs("get", CLUSTER_GROUP, "managedclusters", "", "", "c1");
        assert_eq!(decide(&table(), &forged, &a).await, Decision::Deny(String::new()));
        let stranger = UserInfo { name: "alice".into(), groups: vec!["developers".into()] };
        assert_eq!(decide(&table(), &stranger, &a).await, Decision::Deny(String::new()));
    }

    #[test]
    fn acceptance_needs_the_flag_and_no_deletion() {
        use serde_json::json;
        assert_eq!(accepted(&json!({"spec": {"hubAcceptsClient": true}})), Acceptance::Accepted);
        assert_eq!(accepted(&json!({"spec": {"hubAcceptsClient": false}})), Acceptance::NotAccepted);
        assert_eq!(accepted(&json!({"spec": {}})), Acceptance::NotAccepted);
        let deleting =
            json!({"metadata": {"deletionTimestamp": "2030-01-01T00:00:00Z"}, "spec": {"hubAcceptsClient": true}});
        assert_eq!(accepted(&deleting), Acceptance::NotAccepted);
    }
}
