//! The agent's certificate signing requests (docs/registration.md, "Identities"): OCM's
//! subject, label and signer; creating them and waiting for the hub's answer.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestSpec};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt as _;
use tokio::sync::watch;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::AgentError;
use crate::error::{api_code, api_message};

pub const SUBJECT_PREFIX: &str = "system:open-cluster-management:";
pub const MANAGED_CLUSTERS_GROUP: &str = "system:open-cluster-management:managed-clusters";
pub const CLUSTER_NAME_LABEL: &str = "open-cluster-management.io/cluster-name";
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
pub const USAGES: [&str; 3] = ["digital signature", "key encipherment", "client auth"];

/// How often a long wait says it is still waiting.
const STILL_WAITING_EVERY: Duration = Duration::from_secs(300);

/// OCM's agent subject: CN `system:open-cluster-management:<cluster>:<agentID>`, O the
/// per-cluster group and the managed-clusters group.
pub fn agent_subject(cluster: &str, agent_id: &str) -> (String, Vec<String>) {
    (
        format!("{SUBJECT_PREFIX}{cluster}:{agent_id}"),
        vec![format!("{SUBJECT_PREFIX}{cluster}"), MANAGED_CLUSTERS_GROUP.to_string()],
    )
}

/// The CSR object for `csr_pem`, named `<cluster>-<random>` by the hub.
pub fn csr_object(cluster: &str, csr_pem: &str, expiration_seconds: Option<i32>) -> CertificateSigningRequest {
    CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some(format!("{cluster}-")),
            labels: Some(BTreeMap::from([(CLUSTER_NAME_LABEL.to_string(), cluster.to_string())])),
            ..ObjectMeta::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(csr_pem.as_bytes().to_vec()),
            signer_name: CLIENT_SIGNER.to_string(),
            usages: Some(USAGES.iter().map(|u| u.to_string()).collect()),
            expiration_seconds,
            ..CertificateSigningRequestSpec::default()
        },
        status: None,
    }
}

/// Creates the CSR and returns its name.
pub async fn create(
    api: &Api<CertificateSigningRequest>,
    cluster: &str,
    csr_pem: &str,
    expiration_seconds: Option<i32>,
) -> Result<String, AgentError> {
    let created = api
        .create(&PostParams::default(), &csr_object(cluster, csr_pem, expiration_seconds))
        .await
        .map_err(AgentError::kube("creating a certificate signing request"))?;
    created.metadata.name.ok_or_else(|| AgentError::SigningFailed {
        csr: "<unnamed>".to_string(),
        message: "the hub created the certificate signing request without a name".to_string(),
    })
}

/// How a CSR ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsrOutcome {
    /// `status.certificate` (PEM).
    Issued(String),
    Denied(String),
    Failed(String),
    /// The CSR was deleted before it was answered.
    Gone,
}

/// The answer in a CSR, if there is one yet. A denial wins over a certificate (Kubernetes
/// never issues for a denied request; if something did, it is not to be used).
pub fn outcome_of(csr: &CertificateSigningRequest) -> Option<CsrOutcome> {
    let status = csr.status.as_ref()?;
    for condition in status.conditions.iter().flatten() {
        if condition.status != "True" && !condition.status.is_empty() {
            continue;
        }
        let message = || {
            let reason = condition.reason.clone().unwrap_or_default();
            let message = condition.message.clone().unwrap_or_default();
            match (reason.is_empty(), message.is_empty()) {
                (false, false) => format!("{reason}: {message}"),
                (false, true) => reason,
                (true, false) => message,
                (true, true) => format!("condition {}", condition.type_),
            }
        };
        match condition.type_.as_str() {
            "Denied" => return Some(CsrOutcome::Denied(message())),
            "Failed" => return Some(CsrOutcome::Failed(message())),
            _ => {}
        }
    }
    let certificate = status.certificate.as_ref().filter(|c| !c.0.is_empty())?;
    Some(CsrOutcome::Issued(String::from_utf8_lossy(&certificate.0).into_owned()))
}

/// Watches the CSR until it is answered; `None` if `shutdown` fired first. A 401 or 403 ends
/// the wait with an error (the credentials will not get better by waiting); other errors
/// are logged and the watch resumes with backoff.
pub async fn wait(
    api: &Api<CertificateSigningRequest>,
    name: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<CsrOutcome>, AgentError> {
    let mut events = kube::runtime::watcher::watch_object(api.clone(), name).default_backoff().boxed();
    let mut still_waiting =
        tokio::time::interval_at(tokio::time::Instant::now() + STILL_WAITING_EVERY, STILL_WAITING_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return Ok(None),
            _ = still_waiting.tick() => tracing::info!(csr = name, "still waiting for the hub to answer the certificate signing request"),
            event = events.next() => match event {
                None => return Ok(Some(CsrOutcome::Gone)),
                Some(Ok(None)) => return Ok(Some(CsrOutcome::Gone)),
                Some(Ok(Some(csr))) => {
                    if let Some(outcome) = outcome_of(&csr) {
                        return Ok(Some(outcome));
                    }
                }
                Some(Err(e)) => {
                    let source = match e {
                        kube::runtime::watcher::Error::InitialListFailed(e)
                        | kube::runtime::watcher::Error::WatchStartFailed(e)
                        | kube::runtime::watcher::Error::WatchFailed(e) => e,
                        other => {
                            tracing::warn!(csr = name, error = %other, "watching the certificate signing request failed; retrying");
                            continue;
                        }
                    };
                    if matches!(api_code(&source), Some(401 | 403)) {
                        return Err(AgentError::BootstrapRefused {
                            code: api_code(&source).unwrap_or_default(),
                            message: api_message(&source),
                        });
                    }
                    tracing::warn!(csr = name, error = %source, "watching the certificate signing request failed; retrying");
                }
            }
        }
    }
}

/// Checks that an issued certificate is for the key we hold and the subject we asked for,
/// and returns its first PEM block (the hub may append its CA).
pub fn check_issued(csr_name: &str, cert_pem: &str, key_pem: &str, common_name: &str) -> Result<String, AgentError> {
    use rcgen::PublicKeyData as _;
    let bad = |reason: String| AgentError::BadCertificate { csr: csr_name.to_string(), reason };
    let ders = flotilla_pki::certs_from_pem(cert_pem).map_err(|e| bad(e.to_string()))?;
    let der = ders.first().ok_or_else(|| bad("no certificate".to_string()))?;
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| bad(format!("our own key does not parse: {e}")))?;
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(bad("it is for another public key than the agent's".to_string()));
    }
    let info = flotilla_pki::cert_info_der(der)?;
    if info.common_name != common_name {
        return Err(bad(format!("its common name is {:?}, not {common_name:?}", info.common_name)));
    }
    Ok(crate::pinning::pem_encode("CERTIFICATE", der))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::api::certificates::v1::{CertificateSigningRequestCondition, CertificateSigningRequestStatus};

    use super::*;

    fn with_status(conditions: &[(&str, &str)], cert: Option<&str>) -> CertificateSigningRequest {
        let mut csr = csr_object("c1", "pem", None);
        csr.status = Some(CertificateSigningRequestStatus {
            certificate: cert.map(|c| ByteString(c.as_bytes().to_vec())),
            conditions: Some(
                conditions
                    .iter()
                    .map(|(t, r)| CertificateSigningRequestCondition {
                        type_: t.to_string(),
                        status: "True".into(),
                        reason: Some(r.to_string()),
                        ..Default::default()
                    })
                    .collect(),
            ),
        });
        csr
    }

    #[test]
    fn csr_object_has_ocm_shape() {
        let csr = csr_object("c1", "PEM", Some(3600));
        assert_eq!(csr.metadata.generate_name.as_deref(), Some("c1-"));
        assert_eq!(csr.metadata.labels.unwrap()[CLUSTER_NAME_LABEL], "c1");
        assert_eq!(csr.spec.signer_name, CLIENT_SIGNER);
        assert_eq!(csr.spec.usages.unwrap(), USAGES);
        assert_eq!(csr.spec.expiration_seconds, Some(3600));
        let (cn, orgs) = agent_subject("c1", "abc");
        assert_eq!(cn, "system:open-cluster-management:c1:abc");
        assert_eq!(orgs, ["system:open-cluster-management:c1", MANAGED_CLUSTERS_GROUP]);
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome_of(&csr_object("c1", "pem", None)), None);
        assert_eq!(outcome_of(&with_status(&[("Approved", "FlotillaAccept")], None)), None);
        assert_eq!(
            outcome_of(&with_status(&[("Approved", "FlotillaAccept")], Some("CERT"))),
            Some(CsrOutcome::Issued("CERT".into()))
        );
        assert_eq!(
            outcome_of(&with_status(&[("Denied", "FlotillaDeny")], Some("CERT"))),
            Some(CsrOutcome::Denied("FlotillaDeny".into()))
        );
        assert_eq!(
            outcome_of(&with_status(&[("Approved", "x"), ("Failed", "SignerValidationFailure")], None)),
            Some(CsrOutcome::Failed("SignerValidationFailure".into()))
        );
    }

    #[test]
    fn issued_certificates_must_match_the_request() {
        let ca = flotilla_pki::CertificateAuthority::generate("hub", Duration::from_secs(3600)).unwrap();
        let (cn, orgs) = agent_subject("c1", "abc");
        let (key, csr) = flotilla_pki::generate_key_and_csr(&cn, &orgs).unwrap();
        let cert = ca.sign_csr(&csr, Duration::from_secs(600)).unwrap();
        let chain = format!("{cert}{}", ca.cert_pem());
        assert_eq!(check_issued("c1-x", &chain, &key, &cn).unwrap(), cert);
        assert!(matches!(check_issued("c1-x", &cert, &key, "someone else"), Err(AgentError::BadCertificate { .. })));
        let (_other_key, other_csr) = flotilla_pki::generate_key_and_csr(&cn, &orgs).unwrap();
        let other = ca.sign_csr(&other_csr, Duration::from_secs(600)).unwrap();
        assert!(matches!(check_issued("c1-x", &other, &key, &cn), Err(AgentError::BadCertificate { .. })));
    }
}
