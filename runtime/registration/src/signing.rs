//! CSR signing: approved requests for `kubernetes.io/kube-apiserver-client` are signed
//! with the hub CA into `status.certificate`, as kube-controller-manager's signer does.
//! Agent CSRs (labelled with a cluster, or with an agent CN) must pass the subject checks
//! again, and nothing is signed into `system:masters`; a refused request gets the `Failed`
//! condition with the reason.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flotilla_apimachinery::ApiError;
use flotilla_apiserver::objects::meta;
use flotilla_apiserver::{MASTERS_GROUP, Resource, Storage};
use flotilla_pki::CertificateAuthority;
use serde_json::{Value, json};

use crate::Kinds;
use crate::MIN_CERT_VALIDITY;
use crate::approval::set_csr_condition;
use crate::controller::Reconciler;
use crate::identity::{csr_cluster, csr_request_pem, validate_agent_csr};
use crate::names::{CLIENT_SIGNER, CSR_FAILED, REASON_SIGNER_VALIDATION_FAILURE, SUBJECT_PREFIX};
use crate::util::{self, CsrState, csr_state, get_optional};

pub struct Signing {
    storage: Storage,
    kinds: Arc<Kinds>,
    ca: Arc<CertificateAuthority>,
    default_validity: Duration,
}

impl Signing {
    pub(crate) fn new(
        storage: Storage,
        kinds: Arc<Kinds>,
        ca: Arc<CertificateAuthority>,
        default_validity: Duration,
    ) -> Self {
        Signing { storage, kinds, ca, default_validity }
    }
}

/// How long a certificate for `csr` is valid: its `spec.expirationSeconds` if set (never
/// below Kubernetes' 600 s minimum), capped at the hub's default, as Kubernetes caps it
/// at the signer's maximum duration.
pub fn validity(csr: &Value, default: Duration) -> Duration {
    match csr.pointer("/spec/expirationSeconds").and_then(Value::as_u64) {
        Some(seconds) => Duration::from_secs(seconds).max(MIN_CERT_VALIDITY).min(default),
        None => default,
    }
}

/// What must hold before a request is signed, beyond approval.
pub fn check_signable(csr: &Value) -> Result<String, String> {
    let request_pem = csr_request_pem(csr)?;
    let info = flotilla_pki::parse_csr(request_pem.as_bytes()).map_err(|e| e.to_string())?;
    if info.organizations.iter().any(|o| o == MASTERS_GROUP) {
        return Err(format!("the hub does not sign certificates in the {MASTERS_GROUP:?} group"));
    }
    // An agent identity is signed only as an agent CSR: right label, subject, usages.
    if csr_cluster(csr).is_some() || info.common_name.starts_with(SUBJECT_PREFIX) {
        validate_agent_csr(csr)?;
    }
    Ok(request_pem)
}

impl Reconciler for Signing {
    fn name(&self) -> &'static str {
        "csr-signing"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        vec![self.kinds.csrs.clone()]
    }

    fn keys_for(&self, _index: usize, obj: &Value, deleted: bool) -> Vec<String> {
        let wanted = !deleted
            && csr_state(obj) == CsrState::Approved
            && obj.pointer("/spec/signerName").and_then(Value::as_str) == Some(CLIENT_SIGNER);
        if wanted { vec![meta::name(obj).to_string()] } else { Vec::new() }
    }

    async fn reconcile(&self, name: &str) -> Result<Option<Duration>, ApiError> {
        let Some(csr) = get_optional(&self.storage, &self.kinds.csrs, None, name).await? else {
            return Ok(None);
        };
        if csr_state(&csr) != CsrState::Approved
            || csr.pointer("/spec/signerName").and_then(Value::as_str) != Some(CLIENT_SIGNER)
        {
            return Ok(None);
        }
        let request_pem = match check_signable(&csr) {
            Ok(pem) => pem,
            Err(reason) => {
                tracing::warn!(csr = %name, %reason, "refusing to sign an approved certificate signing request");
                set_csr_condition(
                    &self.storage,
                    &self.kinds.csrs,
                    &csr,
                    CSR_FAILED,
                    REASON_SIGNER_VALIDATION_FAILURE,
                    &reason,
                )
                .await?;
                return Ok(None);
            }
        };
        let valid_for = validity(&csr, self.default_validity);
        let certificate = match self.ca.sign_csr(&request_pem, valid_for) {
            Ok(cert) => cert,
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(csr = %name, %reason, "signing failed");
                set_csr_condition(&self.storage, &self.kinds.csrs, &csr, CSR_FAILED, "SigningError", &reason).await?;
                return Ok(None);
            }
        };
        let mut signed = csr.clone();
        if !signed.get("status").is_some_and(Value::is_object) {
            signed["status"] = json!({});
        }
        signed["status"]["certificate"] = json!(STANDARD.encode(certificate.as_bytes()));
        util::update_status(&self.storage, &self.kinds.csrs, signed).await?;
        tracing::info!(csr = %name, cluster = ?csr_cluster(&csr), valid_for_seconds = valid_for.as_secs(), "signed certificate");
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    #[test]
    fn validity_follows_the_request_within_bounds() {
        assert_eq!(validity(&json!({"spec": {}}), YEAR), YEAR);
        assert_eq!(validity(&json!({"spec": {"expirationSeconds": 3600}}), YEAR), Duration::from_secs(3600));
        assert_eq!(validity(&json!({"spec": {"expirationSeconds": 10}}), YEAR), MIN_CERT_VALIDITY);
        assert_eq!(validity(&json!({"spec": {"expirationSeconds": 10 * 365 * 24 * 3600}}), YEAR), YEAR);
    }

    fn csr(cn: &str, orgs: &[&str], label: Option<&str>) -> Value {
        let orgs: Vec<String> = orgs.iter().map(|s| s.to_string()).collect();
        let (_key, pem) = flotilla_pki::generate_key_and_csr(cn, &orgs).expect("csr");
        let mut obj = json!({"metadata": {"name": "x"}, "spec": {"request": STANDARD.encode(pem),
            "signerName": CLIENT_SIGNER, "usages": ["client auth"]}});
        if let Some(label) = label {
            obj["metadata"]["labels"] = json!({crate::names::CLUSTER_NAME_LABEL: label});
        }
        obj
    }

    #[test]
    fn refuses_masters_and_bad_agent_subjects() {
        assert!(check_signable(&csr("alice", &["developers"], None)).is_ok());
        assert!(
            check_signable(&csr("root", &["system:masters"], None)).expect_err("masters").contains("system:masters")
        );
        let agent = "system:open-cluster-management:c1:agent";
        assert!(check_signable(&csr(agent, &["system:open-cluster-management:c1"], Some("c1"))).is_ok());
        assert!(check_signable(&csr(agent, &["system:open-cluster-management:c1"], None)).is_err(), "no label");
        assert!(check_signable(&csr(agent, &["system:open-cluster-management:c2"], Some("c1"))).is_err());
        assert!(check_signable(&csr("alice", &[], Some("c1"))).is_err(), "labelled means agent");
    }
}
