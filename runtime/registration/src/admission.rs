//! Admission for registration's kinds:
//!
//! - CertificateSigningRequest: on create, `spec.username` and `spec.groups` become the
//!   requester's, whatever the body says (Kubernetes does the same); renewal approval and
//!   identity-based auto-accept trust these fields. An agent may request only its own
//!   cluster's certificates (label and subject naming its cluster).
//! - ManagedCluster (OCM's webhooks): a cluster without a set label joins the `default`
//!   set; taints get `timeAdded`; and callers other than the admin (bootstrap tokens,
//!   agents) may not accept their own cluster, move it to another set, or add or remove
//!   the hub's unreachable/unavailable taints.

use flotilla_apimachinery::ApiError;
use flotilla_apiserver::auth::request_user;
use flotilla_apiserver::objects::{meta, now_rfc3339};
use flotilla_apiserver::{Admission, MASTERS_GROUP, Operation, Resource, UserInfo};
use serde_json::{Value, json};

use crate::identity::{agent_of, csr_cluster, csr_request_pem, validate_subject};
use crate::names::{CLUSTER_NAME_LABEL, CLUSTER_SET_LABEL, DEFAULT_CLUSTER_SET, TAINT_UNAVAILABLE, TAINT_UNREACHABLE};

pub struct RegistrationAdmission;

impl Admission for RegistrationAdmission {
    fn admit(&self, res: &Resource, op: Operation, obj: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
        match (res.def.group.as_str(), res.def.kind.as_str(), op) {
            ("certificates.k8s.io", "CertificateSigningRequest", Operation::Create) => {
                if let Some(user) = request_user() {
                    admit_agent_csr(obj, &user)?;
                    stamp_requester(obj, &user);
                }
                Ok(())
            }
            ("cluster.open-cluster-management.io", "ManagedCluster", Operation::Create | Operation::Update) => {
                admit_managed_cluster(obj, old, request_user().as_ref(), &now_rfc3339())
            }
            _ => Ok(()),
        }
    }
}

/// An agent may create certificate signing requests only for its own cluster: a renewal, or
/// a new agent ID of the same cluster. Its CSR must carry its cluster's label and an agent
/// subject of that cluster. Otherwise the agent of cluster A could ask for cluster B's
/// identity, and the administrator's routine `flotilla accept B` would approve it.
pub fn admit_agent_csr(csr: &Value, user: &UserInfo) -> Result<(), ApiError> {
    if user.in_group(MASTERS_GROUP) {
        return Ok(());
    }
    let Some(agent) = agent_of(user) else { return Ok(()) };
    let check = || -> Result<(), String> {
        let label = csr_cluster(csr).ok_or_else(|| format!("label {CLUSTER_NAME_LABEL} is missing"))?;
        if label != agent.cluster {
            return Err(format!("it is labelled {CLUSTER_NAME_LABEL}={label}"));
        }
        let pem = csr_request_pem(csr)?;
        let info = flotilla_pki::parse_csr(pem.as_bytes()).map_err(|e| format!("spec.request: {e}"))?;
        validate_subject(&info.common_name, &info.organizations, Some(label)).map(|_| ())
    };
    check().map_err(|reason| {
        ApiError::forbidden(format!(
            "certificatesigningrequests.certificates.k8s.io is forbidden: User {:?} cannot request this certificate: \
             the agent of managed cluster {:?} may only request certificates of its own cluster ({reason})",
            user.name, agent.cluster
        ))
        .about("certificates.k8s.io", "certificatesigningrequests", meta::name(csr))
    })
}

/// Records who asked for a certificate, replacing whatever the client claimed.
pub fn stamp_requester(csr: &mut Value, user: &UserInfo) {
    let Some(obj) = csr.as_object_mut() else { return };
    let spec = obj.entry("spec").or_insert_with(|| json!({}));
    if let Some(spec) = spec.as_object_mut() {
        spec.insert("username".into(), json!(user.name));
        spec.insert("groups".into(), json!(user.groups));
        spec.remove("uid");
        spec.remove("extra");
    }
}

fn set_label(obj: &Value) -> Option<&str> {
    meta::get(obj, "labels").and_then(|l| l.get(CLUSTER_SET_LABEL)).and_then(Value::as_str)
}

fn is_reserved_taint(taint: &Value) -> bool {
    matches!(taint.get("key").and_then(Value::as_str), Some(TAINT_UNREACHABLE | TAINT_UNAVAILABLE))
}

/// The hub-owned taints of a cluster, in a stable order, for comparison.
fn reserved_taints(obj: &Value) -> Vec<Value> {
    let mut taints: Vec<Value> = obj
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| is_reserved_taint(t))
        .cloned()
        .collect();
    taints.sort_by_key(|t| t.to_string());
    taints
}

fn same_taint(a: &Value, b: &Value) -> bool {
    ["key", "value", "effect"].iter().all(|f| a.get(*f).unwrap_or(&Value::Null) == b.get(*f).unwrap_or(&Value::Null))
}

/// Mutation and guard of one ManagedCluster write. `user` is `None` for the hub's own
/// controllers, which are trusted.
pub fn admit_managed_cluster(
    obj: &mut Value,
    old: Option<&Value>,
    user: Option<&UserInfo>,
    now: &str,
) -> Result<(), ApiError> {
    // OCM's DefaultClusterSet: a cluster without a set (or with an empty one) is in `default`.
    if set_label(obj).is_none_or(str::is_empty)
        && let Some(metadata) = meta::map_mut(obj)
    {
        let labels = metadata.entry("labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(CLUSTER_SET_LABEL.into(), json!(DEFAULT_CLUSTER_SET));
        }
    }
    // OCM's taint webhook: a new or changed taint is stamped now; an unchanged one keeps
    // its time (clients that omit it do not reset it). Given times are kept.
    let old_taints: Vec<Value> =
        old.and_then(|o| o.pointer("/spec/taints")).and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(taints) = obj.pointer_mut("/spec/taints").and_then(Value::as_array_mut) {
        for taint in taints.iter_mut() {
            let missing = taint.get("timeAdded").is_none_or(|t| t.is_null() || t.as_str() == Some(""));
            if !missing || !taint.is_object() {
                continue;
            }
            let time = old_taints
                .iter()
                .find(|o| same_taint(o, taint))
                .and_then(|o| o.get("timeAdded"))
                .filter(|t| t.is_string())
                .cloned()
                .unwrap_or_else(|| json!(now));
            taint["timeAdded"] = time;
        }
    }
    let Some(user) = user.filter(|u| !u.in_group(MASTERS_GROUP)) else {
        return Ok(());
    };
    let name = meta::name(obj).to_string();
    let forbidden = |what: &str| {
        ApiError::forbidden(format!(
            "managedclusters.cluster.open-cluster-management.io {name:?} is forbidden: User {:?} cannot {what}; only the hub administrator can",
            user.name
        ))
        .about("cluster.open-cluster-management.io", "managedclusters", &name)
    };
    let accepts = |o: &Value| o.pointer("/spec/hubAcceptsClient").and_then(Value::as_bool).unwrap_or(false);
    match old {
        None => {
            if accepts(obj) {
                return Err(forbidden("set spec.hubAcceptsClient to true (accept a cluster)"));
            }
            if set_label(obj) != Some(DEFAULT_CLUSTER_SET) {
                return Err(forbidden(&format!("put a cluster in a cluster set (label {CLUSTER_SET_LABEL})")));
            }
            if !reserved_taints(obj).is_empty() {
                return Err(forbidden("set the hub's unreachable or unavailable taints"));
            }
        }
        Some(old) => {
            if accepts(obj) != accepts(old) {
                return Err(forbidden("change spec.hubAcceptsClient (accept or deny a cluster)"));
            }
            if set_label(obj) != set_label(old) {
                return Err(forbidden(&format!("move a cluster to another cluster set (label {CLUSTER_SET_LABEL})")));
            }
            if reserved_taints(obj) != reserved_taints(old) {
                return Err(forbidden("add or remove the hub's unreachable or unavailable taints"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2030-01-01T00:00:00Z";

    fn agent() -> UserInfo {
        UserInfo {
            name: "system:open-cluster-management:c1:agent".into(),
            groups: vec!["system:open-cluster-management:c1".into()],
        }
    }

    fn admin() -> UserInfo {
        UserInfo { name: "flotilla-admin".into(), groups: vec![MASTERS_GROUP.into()] }
    }

    fn cluster(accept: bool) -> Value {
        json!({"metadata": {"name": "c1"}, "spec": {"hubAcceptsClient": accept}})
    }

    #[test]
    fn csr_requester_is_stamped() {
        let mut csr = json!({"spec": {"username": "system:open-cluster-management:c1:victim", "uid": "x",
            "groups": ["system:masters"], "extra": {"a": ["b"]}, "request": "..."}});
        stamp_requester(&mut csr, &crate::token::user_for("abcdef"));
        assert_eq!(csr["spec"]["username"], "system:bootstrap:abcdef");
        assert_eq!(csr["spec"]["groups"][0], "system:bootstrappers");
        assert!(csr["spec"].get("uid").is_none() && csr["spec"].get("extra").is_none());
        assert_eq!(csr["spec"]["request"], "...");
    }

    fn agent_csr(cn: &str, organization: &str, label: Option<&str>) -> Value {
        use base64::Engine as _;
        let (_key, pem) = flotilla_pki::generate_key_and_csr(cn, &[organization.to_string()]).expect("csr");
        let labels = label.map_or_else(|| json!({}), |l| json!({CLUSTER_NAME_LABEL: l}));
        json!({"metadata": {"generateName": "c-", "labels": labels},
            "spec": {"request": base64::engine::general_purpose::STANDARD.encode(pem)}})
    }

    #[test]
    fn agents_request_only_their_own_clusters_certificates() {
        let own = "system:open-cluster-management:c1";
        admit_agent_csr(&agent_csr(&format!("{own}:agent"), own, Some("c1")), &agent()).expect("a renewal");
        admit_agent_csr(&agent_csr(&format!("{own}:newagent"), own, Some("c1")), &agent()).expect("a new agent ID");
        let other = "system:open-cluster-management:c2";
        for (csr, expected) in [
            (
                agent_csr(&format!("{other}:agent"), other, Some("c2")),
                "labelled open-cluster-management.io/cluster-name=c2",
            ),
            (agent_csr(&format!("{other}:agent"), other, Some("c1")), "another cluster"),
            (agent_csr(&format!("{own}:agent"), other, Some("c1")), "organizations"),
            (agent_csr(&format!("{own}:agent"), own, None), "missing"),
            (agent_csr("admin", MASTERS_GROUP, Some("c1")), "common name"),
        ] {
            let err = admit_agent_csr(&csr, &agent()).expect_err("refused");
            assert_eq!(err.code, 403);
            assert!(err.message.contains("may only request certificates of its own cluster"), "{}", err.message);
            assert!(err.message.contains(expected), "{expected}: {}", err.message);
        }
        // Bootstrap tokens and the administrator are not agents.
        let foreign = agent_csr(&format!("{other}:agent"), other, Some("c2"));
        admit_agent_csr(&foreign, &crate::token::user_for("abcdef")).expect("bootstrap");
        admit_agent_csr(&foreign, &admin()).expect("admin");
    }

    #[test]
    fn clusters_join_the_default_set() {
        let mut obj = cluster(false);
        admit_managed_cluster(&mut obj, None, None, NOW).expect("admitted");
        assert_eq!(obj["metadata"]["labels"][CLUSTER_SET_LABEL], "default");
        let mut obj = json!({"metadata": {"name": "c1", "labels": {CLUSTER_SET_LABEL: "", "env": "prod"}}});
        admit_managed_cluster(&mut obj, None, None, NOW).expect("admitted");
        assert_eq!(obj["metadata"]["labels"][CLUSTER_SET_LABEL], "default");
        assert_eq!(obj["metadata"]["labels"]["env"], "prod");
        let mut obj = json!({"metadata": {"name": "c1", "labels": {CLUSTER_SET_LABEL: "prod"}}});
        admit_managed_cluster(&mut obj, None, Some(&admin()), NOW).expect("admitted");
        assert_eq!(obj["metadata"]["labels"][CLUSTER_SET_LABEL], "prod");
    }

    #[test]
    fn taints_get_their_time() {
        let mut old = cluster(true);
        old["spec"]["taints"] = json!([{"key": "gpu", "effect": "NoSelect", "timeAdded": "2020-01-01T00:00:00Z"}]);
        let mut new = cluster(true);
        new["spec"]["taints"] = json!([
            {"key": "gpu", "effect": "NoSelect"},
            {"key": "new", "effect": "NoSelect"},
            {"key": "given", "effect": "NoSelect", "timeAdded": "2021-01-01T00:00:00Z"},
        ]);
        admit_managed_cluster(&mut new, Some(&old), None, NOW).expect("admitted");
        assert_eq!(new["spec"]["taints"][0]["timeAdded"], "2020-01-01T00:00:00Z");
        assert_eq!(new["spec"]["taints"][1]["timeAdded"], NOW);
        assert_eq!(new["spec"]["taints"][2]["timeAdded"], "2021-01-01T00:00:00Z");
    }

    #[test]
    fn only_the_admin_accepts_and_moves_clusters() {
        let err = admit_managed_cluster(&mut cluster(true), None, Some(&agent()), NOW).expect_err("self-accept");
        assert_eq!(err.code, 403);
        assert!(err.message.contains("hubAcceptsClient"), "{}", err.message);
        admit_managed_cluster(&mut cluster(true), None, Some(&admin()), NOW).expect("admin accepts");
        admit_managed_cluster(&mut cluster(true), None, None, NOW).expect("controllers are trusted");
        admit_managed_cluster(&mut cluster(false), None, Some(&agent()), NOW).expect("registering is fine");

        let mut in_set = cluster(false);
        in_set["metadata"]["labels"] = json!({CLUSTER_SET_LABEL: "prod"});
        assert!(admit_managed_cluster(&mut in_set, None, Some(&agent()), NOW).is_err());

        let mut stored = cluster(true);
        admit_managed_cluster(&mut stored, None, None, NOW).expect("stored");
        let mut revoke = stored.clone();
        revoke["spec"]["hubAcceptsClient"] = json!(false);
        assert!(admit_managed_cluster(&mut revoke, Some(&stored), Some(&agent()), NOW).is_err());
        let mut moved = stored.clone();
        moved["metadata"]["labels"][CLUSTER_SET_LABEL] = json!("prod");
        assert!(admit_managed_cluster(&mut moved, Some(&stored), Some(&agent()), NOW).is_err());
        let mut relabel = stored.clone();
        relabel["metadata"]["labels"]["team"] = json!("a");
        relabel["spec"]["leaseDurationSeconds"] = json!(30);
        admit_managed_cluster(&mut relabel, Some(&stored), Some(&agent()), NOW).expect("other fields are the agent's");
    }

    #[test]
    fn agents_cannot_touch_the_hub_taints() {
        let mut stored = cluster(true);
        stored["spec"]["taints"] =
            json!([{"key": TAINT_UNREACHABLE, "effect": "NoSelect", "timeAdded": "2030-01-01T00:00:00Z"}]);
        admit_managed_cluster(&mut stored, None, None, NOW).expect("stored");
        let mut removed = stored.clone();
        removed["spec"]["taints"] = json!([]);
        let err = admit_managed_cluster(&mut removed, Some(&stored), Some(&agent()), NOW).expect_err("removal");
        assert!(err.message.contains("taints"), "{}", err.message);
        admit_managed_cluster(&mut removed.clone(), Some(&stored), None, NOW).expect("the hub removes it");
        let mut added = stored.clone();
        added["spec"]["taints"] = json!([
            {"key": TAINT_UNREACHABLE, "effect": "NoSelect", "timeAdded": "2030-01-01T00:00:00Z"},
            {"key": TAINT_UNAVAILABLE, "effect": "NoSelect"},
        ]);
        assert!(admit_managed_cluster(&mut added, Some(&stored), Some(&agent()), NOW).is_err());
        let mut own = stored.clone();
        own["spec"]["taints"] = json!([
            {"key": TAINT_UNREACHABLE, "effect": "NoSelect", "timeAdded": "2030-01-01T00:00:00Z"},
            {"key": "example.com/maintenance", "effect": "NoSelect"},
        ]);
        admit_managed_cluster(&mut own, Some(&stored), Some(&agent()), NOW).expect("other taints are allowed");
    }
}
