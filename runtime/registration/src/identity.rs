//! OCM's agent identities: CN `system:open-cluster-management:<cluster>:<agentID>`, O
//! `system:open-cluster-management:<cluster>` (and optionally
//! `system:open-cluster-management:managed-clusters`), and the checks the hub makes on
//! an agent's CSR before approving or signing it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flotilla_apimachinery::NameFormat;
use flotilla_apimachinery::names::validate_name;
use flotilla_apiserver::UserInfo;
use flotilla_apiserver::objects::meta;
use serde_json::Value;

use crate::names::{CLIENT_SIGNER, CLUSTER_NAME_LABEL, MANAGED_CLUSTERS_GROUP, SUBJECT_PREFIX};

/// Who an agent is: its cluster and its agent ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub cluster: String,
    pub agent_id: String,
}

impl AgentIdentity {
    /// `system:open-cluster-management:<cluster>:<agentID>`.
    pub fn user_name(&self) -> String {
        format!("{SUBJECT_PREFIX}{}:{}", self.cluster, self.agent_id)
    }
    /// The organizations of the agent's certificate.
    pub fn groups(&self) -> Vec<String> {
        vec![cluster_group(&self.cluster), MANAGED_CLUSTERS_GROUP.to_string()]
    }
}

/// `system:open-cluster-management:<cluster>`: the per-cluster group.
pub fn cluster_group(cluster: &str) -> String {
    format!("{SUBJECT_PREFIX}{cluster}")
}

/// Parses an agent common name: exactly `<cluster>:<agentID>` after the prefix, the cluster
/// a valid ManagedCluster name and the agent ID non-empty.
pub fn parse_common_name(common_name: &str) -> Option<AgentIdentity> {
    let rest = common_name.strip_prefix(SUBJECT_PREFIX)?;
    let (cluster, agent_id) = rest.split_once(':')?;
    if agent_id.is_empty() || agent_id.contains(':') || agent_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    validate_name(NameFormat::Dns1123Label, cluster).ok()?;
    Some(AgentIdentity { cluster: cluster.to_string(), agent_id: agent_id.to_string() })
}

/// The agent an authenticated user is, if it is one: its name parses as an agent CN and
/// it carries its cluster's group. Only the hub CA issues such certificates (after the
/// checks in [`validate_subject`]), so the pair can be trusted.
pub fn agent_of(user: &UserInfo) -> Option<AgentIdentity> {
    let id = parse_common_name(&user.name)?;
    user.in_group(&cluster_group(&id.cluster)).then_some(id)
}

/// Checks a CSR subject as OCM's approver does: a two-part agent CN, and exactly one
/// per-cluster organization, that of the CN's cluster (the managed-clusters group may be
/// there too). `label` is the CSR's cluster-name label, which must name the same cluster.
pub fn validate_subject(
    common_name: &str,
    organizations: &[String],
    label: Option<&str>,
) -> Result<AgentIdentity, String> {
    let id = parse_common_name(common_name).ok_or_else(|| {
        format!("common name {common_name:?} is not of the form \"{SUBJECT_PREFIX}<cluster>:<agent ID>\"")
    })?;
    let expected = cluster_group(&id.cluster);
    let mut per_cluster: Vec<&String> = organizations.iter().filter(|o| o.as_str() != MANAGED_CLUSTERS_GROUP).collect();
    per_cluster.dedup();
    if per_cluster.len() != 1 || per_cluster[0] != &expected {
        return Err(format!(
            "organizations {organizations:?} must be exactly {expected:?} (and optionally {MANAGED_CLUSTERS_GROUP:?})"
        ));
    }
    match label {
        Some(cluster) if cluster == id.cluster => Ok(id),
        Some(other) => {
            Err(format!("label {CLUSTER_NAME_LABEL}={other} names another cluster than the subject ({})", id.cluster))
        }
        None => Err(format!("label {CLUSTER_NAME_LABEL} is missing")),
    }
}

/// An agent's CSR, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCsr {
    pub identity: AgentIdentity,
    /// Who created the CSR (`spec.username`, stamped by the hub on create).
    pub requester: String,
    /// The request, PEM.
    pub request_pem: String,
}

impl AgentCsr {
    /// A renewal: the agent itself asked, with the identity it already has.
    pub fn is_renewal(&self) -> bool {
        self.requester == self.identity.user_name()
    }
}

/// The cluster a CSR claims to be for (its cluster-name label).
pub fn csr_cluster(csr: &Value) -> Option<&str> {
    meta::get(csr, "labels").and_then(|l| l.get(CLUSTER_NAME_LABEL)).and_then(Value::as_str)
}

/// Decodes `spec.request` (base64 of a PEM CSR).
pub fn csr_request_pem(csr: &Value) -> Result<String, String> {
    let request = csr.pointer("/spec/request").and_then(Value::as_str).ok_or("spec.request is missing")?;
    let bytes = STANDARD.decode(request).map_err(|e| format!("spec.request is not base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "spec.request is not a PEM certificate request".to_string())
}

/// Everything the hub checks on an agent's CSR: signer, usages, the request's signature
/// and subject, and the cluster-name label.
pub fn validate_agent_csr(csr: &Value) -> Result<AgentCsr, String> {
    let signer = csr.pointer("/spec/signerName").and_then(Value::as_str).unwrap_or_default();
    if signer != CLIENT_SIGNER {
        return Err(format!("signer {signer:?} is not {CLIENT_SIGNER:?}"));
    }
    let usages: Vec<&str> =
        csr.pointer("/spec/usages").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if !usages.contains(&"client auth") {
        return Err("usages must include \"client auth\"".to_string());
    }
    if let Some(extra) =
        usages.iter().find(|u| !matches!(**u, "client auth" | "digital signature" | "key encipherment"))
    {
        return Err(format!("usage {extra:?} is not allowed for an agent certificate"));
    }
    let request_pem = csr_request_pem(csr)?;
    let info = flotilla_pki::parse_csr(request_pem.as_bytes()).map_err(|e| e.to_string())?;
    let identity = validate_subject(&info.common_name, &info.organizations, csr_cluster(csr))?;
    let requester = csr.pointer("/spec/username").and_then(Value::as_str).unwrap_or_default().to_string();
    // Admission refuses these at creation; a request stored before that rule (or written
    // around it) is still never approved or signed.
    if let Some(agent) = parse_common_name(&requester)
        && agent.cluster != identity.cluster
    {
        return Err(format!(
            "requested by {requester:?}, the agent of another cluster ({}) than the subject ({})",
            agent.cluster, identity.cluster
        ));
    }
    Ok(AgentCsr { identity, requester, request_pem })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn orgs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_agent_common_names_strictly() {
        let id = parse_common_name("system:open-cluster-management:cluster1:abcde12345").expect("valid");
        assert_eq!(id, AgentIdentity { cluster: "cluster1".into(), agent_id: "abcde12345".into() });
        assert_eq!(id.user_name(), "system:open-cluster-management:cluster1:abcde12345");
        for bad in [
            "system:open-cluster-management:cluster1",
            "system:open-cluster-management:cluster1:",
            "system:open-cluster-management:cluster1:a:b",
            "system:open-cluster-management::agent",
            "system:open-cluster-management:Cluster1:agent",
            "system:open-cluster-management:cluster_1:agent",
            "system:bootstrap:abcdef",
            "cluster1:agent",
        ] {
            assert!(parse_common_name(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn users_are_agents_only_with_their_cluster_group() {
        let user = |name: &str, groups: &[&str]| UserInfo { name: name.into(), groups: orgs(groups) };
        let cn = "system:open-cluster-management:c1:agent";
        assert!(agent_of(&user(cn, &["system:open-cluster-management:c1"])).is_some());
        assert!(agent_of(&user(cn, &["system:open-cluster-management:c2"])).is_none());
        assert!(agent_of(&user(cn, &[])).is_none());
        assert!(agent_of(&user("admin", &["system:masters"])).is_none());
    }

    #[test]
    fn validates_csr_subjects_like_ocm() {
        let cn = "system:open-cluster-management:c1:agent1";
        let ok = validate_subject(cn, &orgs(&["system:open-cluster-management:c1"]), Some("c1")).expect("valid");
        assert_eq!(ok.cluster, "c1");
        assert!(
            validate_subject(
                cn,
                &orgs(&["system:open-cluster-management:c1", "system:open-cluster-management:managed-clusters"]),
                Some("c1")
            )
            .is_ok()
        );
        let cases: &[(&str, &[&str], Option<&str>, &str)] = &[
            (cn, &["system:open-cluster-management:c2"], Some("c1"), "organizations"),
            (cn, &["system:open-cluster-management:c1", "system:open-cluster-management:c2"], Some("c1"), "exactly"),
            (cn, &["system:open-cluster-management:c1", "system:masters"], Some("c1"), "exactly"),
            (cn, &[], Some("c1"), "organizations"),
            (cn, &["system:open-cluster-management:managed-clusters"], Some("c1"), "organizations"),
            (cn, &["system:open-cluster-management:c1"], Some("c2"), "another cluster"),
            (cn, &["system:open-cluster-management:c1"], None, "missing"),
            ("system:open-cluster-management:c1", &["system:open-cluster-management:c1"], Some("c1"), "common name"),
            ("admin", &["system:masters"], Some("c1"), "common name"),
        ];
        for (cn, o, label, expected) in cases {
            let err = validate_subject(cn, &orgs(o), *label).expect_err("invalid");
            assert!(err.contains(expected), "{cn} {o:?} {label:?}: {err}");
        }
    }

    fn csr_object(cn: &str, organizations: &[&str], label: &str, usages: &[&str]) -> Value {
        let (_key, pem) = flotilla_pki::generate_key_and_csr(cn, &orgs(organizations)).expect("csr");
        json!({
            "metadata": {"name": "x", "labels": {CLUSTER_NAME_LABEL: label}},
            "spec": {
                "request": STANDARD.encode(pem),
                "signerName": CLIENT_SIGNER,
                "usages": usages,
                "username": "system:bootstrap:abcdef",
            }
        })
    }

    #[test]
    fn validates_whole_agent_csrs() {
        let cn = "system:open-cluster-management:c1:agent1";
        let usages = ["digital signature", "key encipherment", "client auth"];
        let csr = csr_object(cn, &["system:open-cluster-management:c1"], "c1", &usages);
        let checked = validate_agent_csr(&csr).expect("valid");
        assert_eq!(checked.identity.agent_id, "agent1");
        assert!(!checked.is_renewal());
        let mut renewal = csr.clone();
        renewal["spec"]["username"] = json!(cn);
        assert!(validate_agent_csr(&renewal).expect("valid").is_renewal());

        let mut other_signer = csr.clone();
        other_signer["spec"]["signerName"] = json!("example.com/other");
        assert!(validate_agent_csr(&other_signer).expect_err("signer").contains("signer"));
        let server = csr_object(cn, &["system:open-cluster-management:c1"], "c1", &["client auth", "server auth"]);
        assert!(validate_agent_csr(&server).expect_err("usage").contains("server auth"));
        let no_client = csr_object(cn, &["system:open-cluster-management:c1"], "c1", &["digital signature"]);
        assert!(validate_agent_csr(&no_client).expect_err("usage").contains("client auth"));
        let mut garbage = csr.clone();
        garbage["spec"]["request"] = json!(STANDARD.encode("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"));
        assert!(validate_agent_csr(&garbage).is_err());
        let other_cluster = csr_object(cn, &["system:open-cluster-management:c1"], "c2", &usages);
        assert!(validate_agent_csr(&other_cluster).expect_err("label").contains("another cluster"));
        let mut from_another_agent = csr.clone();
        from_another_agent["spec"]["username"] = json!("system:open-cluster-management:c2:agent9");
        let err = validate_agent_csr(&from_another_agent).expect_err("another cluster's agent");
        assert!(err.contains("the agent of another cluster (c2)"), "{err}");
        let mut new_agent_id = csr.clone();
        new_agent_id["spec"]["username"] = json!("system:open-cluster-management:c1:agent9");
        assert!(!validate_agent_csr(&new_agent_id).expect("same cluster").is_renewal());
    }
}
