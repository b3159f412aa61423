//! Joining the hub (docs/registration.md): pin the hub CA, create the ManagedCluster and a
//! CSR as the bootstrap identity, wait for acceptance, store the identity. A data directory
//! that already holds a valid identity skips all of it (the restart case).

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::json;
use tokio::sync::watch;

use crate::csr::{self, CsrOutcome};
use crate::datadir::{AgentRecord, DataDir, HUB_CA, Identity};
use crate::error::{api_code, api_message};
use crate::pinning::{self, parse_ca_hash};
use crate::spoke::Spoke;
use crate::status::{client_configs, managed_clusters};
use crate::util::{Backoff, random_id, sleep_or_shutdown};
use crate::{AgentError, AgentOptions, client};

pub const AGENT_ID_LEN: usize = 10;

/// Checks a cluster name the way the hub will (a namespace is made from it): a DNS-1123
/// label.
pub fn validate_cluster_name(name: &str) -> Result<(), AgentError> {
    let invalid = |reason| AgentError::InvalidClusterName { name: name.to_string(), reason };
    if name.is_empty() || name.len() > 63 {
        return Err(invalid("must be 1 to 63 characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(invalid("only lowercase letters, digits and '-' are allowed"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(invalid("must start and end with a letter or digit"));
    }
    Ok(())
}

/// The agent's record and identity, joining first if needed; `None` on shutdown.
pub(crate) async fn ensure_identity(
    opts: &AgentOptions,
    data: &DataDir,
    spoke: &Spoke,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<(AgentRecord, Identity)>, AgentError> {
    validate_cluster_name(&opts.cluster_name)?;
    let hub_urls = opts.hub_urls();
    for url in &hub_urls {
        pinning::hub_endpoint(url)?;
    }
    let hub_url = match hub_urls.first() {
        Some(url) => url.clone(),
        None => return Err(AgentError::InvalidUrl { url: String::new(), reason: "no hub URL given".into() }),
    };
    let expected_hash = opts.hub_ca_hash.as_deref().map(parse_ca_hash).transpose()?;
    data.ensure()?;
    let record = data.load_record()?;
    if let Some(record) = &record
        && record.cluster_name != opts.cluster_name
    {
        return Err(AgentError::ClusterMismatch {
            dir: data.dir().to_path_buf(),
            found: record.cluster_name.clone(),
            expected: opts.cluster_name.clone(),
        });
    }

    if let Some(mut identity) = data.load_identity()? {
        if let Some(expected) = &expected_hash {
            let saved = flotilla_pki::ca_hash_of_pem(&identity.ca_pem)?;
            if &saved != expected {
                return Err(AgentError::SavedCaMismatch { path: data.path(HUB_CA), saved, expected: expected.clone() });
            }
        }
        if identity.info.not_after > Timestamp::now() {
            let agent_id = agent_id_of(&identity, &opts.cluster_name)?;
            if identity.hub_url != hub_url {
                tracing::info!(old = %identity.hub_url, new = %hub_url, "the hub URL changed; updating hub.kubeconfig");
                identity.hub_url = hub_url.clone();
                data.save_identity(&identity, &opts.cluster_name)?;
            }
            data.sync_files(&identity)?;
            let record = AgentRecord {
                cluster_name: opts.cluster_name.clone(),
                agent_id,
                hub_urls: hub_urls.clone(),
                pending_csr: None,
            };
            data.save_record(&record)?;
            tracing::info!(cluster = %opts.cluster_name, agent_id = %record.agent_id, not_after = %identity.info.not_after,
                "using the identity in the data directory");
            return Ok(Some((record, identity)));
        }
        tracing::warn!(cluster = %opts.cluster_name, expired_at = %identity.info.not_after,
            "the agent's certificate has expired; joining again with the bootstrap token");
    }

    bootstrap(opts, data, spoke, record, &hub_urls, expected_hash.as_deref(), shutdown).await
}

/// The agent ID in a certificate's CN (`system:open-cluster-management:<cluster>:<id>`).
fn agent_id_of(identity: &Identity, cluster: &str) -> Result<String, AgentError> {
    identity
        .info
        .common_name
        .strip_prefix(&format!("{}{cluster}:", csr::SUBJECT_PREFIX))
        .filter(|id| !id.is_empty() && !id.contains(':'))
        .map(str::to_string)
        .ok_or_else(|| AgentError::ClusterMismatch {
            dir: Default::default(),
            found: identity.info.common_name.clone(),
            expected: format!("an identity of cluster {cluster}"),
        })
}

async fn bootstrap(
    opts: &AgentOptions,
    data: &DataDir,
    spoke: &Spoke,
    record: Option<AgentRecord>,
    hub_urls: &[String],
    expected_hash: Option<&str>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<(AgentRecord, Identity)>, AgentError> {
    let cluster = opts.cluster_name.as_str();
    // The identity names the first URL; bootstrapping goes through whichever replica
    // answers (they share the CA and the store).
    let Some(primary) = hub_urls.first().map(String::as_str) else {
        return Err(AgentError::Internal("no hub URL".into()));
    };
    let mut hub_url = primary;
    let saved_ca = data.load_hub_ca()?;
    let ca_pem = match (expected_hash, saved_ca) {
        (Some(expected), Some(saved)) if flotilla_pki::ca_hash_of_pem(&saved).ok().as_deref() == Some(expected) => {
            saved
        }
        (Some(expected), _) => {
            let mut attempt = 0usize;
            let Some((pem, answered)) = retry("contacting the hub", shutdown, || {
                let url = hub_urls[attempt % hub_urls.len()].as_str();
                attempt += 1;
                async move { pinning::fetch_pinned_ca(url, expected).await.map(|pem| (pem, url)) }
            })
            .await?
            else {
                return Ok(None);
            };
            hub_url = answered;
            data.save_hub_ca(&pem)?;
            tracing::info!(hub = %hub_url, ca_hash = %expected, "pinned the hub CA");
            pem
        }
        (None, Some(saved)) => saved,
        (None, None) => return Err(AgentError::NoCaPin(data.path(HUB_CA))),
    };
    let token = opts
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AgentError::MissingToken { dir: data.dir().to_path_buf() })?;
    if flotilla_pki::split_bootstrap_token(token).is_none() {
        return Err(AgentError::MalformedToken);
    }

    let mut record = match record {
        Some(record) => record,
        None => AgentRecord {
            cluster_name: cluster.to_string(),
            agent_id: random_id(AGENT_ID_LEN)?,
            hub_urls: Vec::new(),
            pending_csr: None,
        },
    };
    record.hub_urls = hub_urls.to_vec();
    data.save_record(&record)?;

    let bootstrap = client::bootstrap_client(hub_url, &ca_pem, token).await?;
    let created =
        retry("creating the ManagedCluster", shutdown, || ensure_managed_cluster(&bootstrap, opts, spoke)).await?;
    if created.is_none() {
        return Ok(None);
    }

    let api: Api<CertificateSigningRequest> = Api::all(bootstrap);
    let (common_name, organizations) = csr::agent_subject(cluster, &record.agent_id);
    // A CSR from a run that stopped while waiting is waited on again, not asked anew, so an
    // operator's `flotilla accept` meanwhile still counts.
    let mut resume = match (data.load_pending_key()?, record.pending_csr.clone()) {
        (Some(key), Some(name)) => Some((key, name)),
        _ => None,
    };
    loop {
        let (key_pem, name) = match resume.take() {
            Some(pending) => pending,
            None => {
                let (key_pem, csr_pem) = flotilla_pki::generate_key_and_csr(&common_name, &organizations)?;
                data.save_pending_key(&key_pem)?;
                let Some(name) = retry("creating the certificate signing request", shutdown, || {
                    bootstrap_call(csr::create(&api, cluster, &csr_pem, opts.cert_expiration_seconds))
                })
                .await?
                else {
                    return Ok(None);
                };
                record.pending_csr = Some(name.clone());
                data.save_record(&record)?;
                (key_pem, name)
            }
        };
        tracing::info!(cluster, csr = %name, agent_id = %record.agent_id,
            "waiting for the hub to accept cluster {cluster} (flotilla accept {cluster})");
        let Some(outcome) = csr::wait(&api, &name, shutdown).await? else { return Ok(None) };
        match outcome {
            CsrOutcome::Issued(pem) => {
                let cert_pem = csr::check_issued(&name, &pem, &key_pem, &common_name)?;
                let identity = Identity::new(primary, &ca_pem, &cert_pem, &key_pem)?;
                data.save_identity(&identity, cluster)?;
                record.pending_csr = None;
                data.save_record(&record)?;
                tracing::info!(cluster, csr = %name, not_after = %identity.info.not_after,
                    hub_kubeconfig = %data.path(crate::datadir::HUB_KUBECONFIG).display(), "the hub accepted the cluster");
                return Ok(Some((record, identity)));
            }
            CsrOutcome::Denied(message) => {
                record.pending_csr = None;
                data.save_record(&record)?;
                return Err(AgentError::Denied { cluster: cluster.to_string(), csr: name, message });
            }
            CsrOutcome::Failed(message) => {
                record.pending_csr = None;
                data.save_record(&record)?;
                return Err(AgentError::SigningFailed { csr: name, message });
            }
            CsrOutcome::Gone => {
                tracing::warn!(cluster, csr = %name, "the certificate signing request was deleted before it was answered; asking again");
            }
        }
    }
}

/// Creates the ManagedCluster unless it exists: `hubAcceptsClient: false` (acceptance is the
/// hub administrator's), the spoke's URL and CA, and the lease duration when one was given.
async fn ensure_managed_cluster(client: &kube::Client, opts: &AgentOptions, spoke: &Spoke) -> Result<(), AgentError> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &managed_clusters());
    let cluster = opts.cluster_name.as_str();
    let existing =
        bootstrap_call(async { api.get_opt(cluster).await.map_err(AgentError::kube("reading the ManagedCluster")) })
            .await?;
    if existing.is_some() {
        tracing::info!(cluster, "the ManagedCluster exists already");
        return Ok(());
    }
    let mut spec = json!({
        "hubAcceptsClient": false,
        "managedClusterClientConfigs": client_configs(&spoke.url, spoke.ca_pem.as_deref()),
    });
    if let Some(duration) = opts.lease_duration {
        spec["leaseDurationSeconds"] = json!(duration.as_secs().max(1));
    }
    let object = json!({
        "apiVersion": "cluster.open-cluster-management.io/v1",
        "kind": "ManagedCluster",
        "metadata": {"name": cluster},
        "spec": spec,
    });
    let object: DynamicObject = serde_json::from_value(object)
        .map_err(|e| AgentError::Internal(format!("cannot build ManagedCluster {cluster}: {e}")))?;
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => {
            tracing::info!(cluster, "created the ManagedCluster");
            Ok(())
        }
        Err(e) if api_code(&e) == Some(409) => Ok(()),
        Err(e) => bootstrap_call(async { Err(AgentError::kube("creating the ManagedCluster")(e)) }).await,
    }
}

/// Turns 401 and 403 from the hub into [`AgentError::BootstrapRefused`]: waiting does not
/// make a wrong, expired or revoked token good.
async fn bootstrap_call<T>(call: impl Future<Output = Result<T, AgentError>>) -> Result<T, AgentError> {
    match call.await {
        Err(AgentError::Kube { source, .. }) if matches!(api_code(&source), Some(401 | 403)) => {
            Err(AgentError::BootstrapRefused {
                code: api_code(&source).unwrap_or_default(),
                message: api_message(&source),
            })
        }
        other => other,
    }
}

/// Whether an error may go away by itself (the hub is down, restarting or overloaded).
pub(crate) fn is_transient(e: &AgentError) -> bool {
    match e {
        AgentError::HubUnreachable { .. } => true,
        AgentError::Kube { source, .. } => match api_code(source) {
            None => true,
            Some(code) => code == 429 || code >= 500,
        },
        _ => false,
    }
}

/// Runs `call` until it succeeds or fails for good, backing off on transient errors; `None`
/// on shutdown.
async fn retry<T, F, Fut>(
    what: &str,
    shutdown: &mut watch::Receiver<bool>,
    mut call: F,
) -> Result<Option<T>, AgentError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AgentError>>,
{
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let result = tokio::select! {
            r = call() => r,
            _ = shutdown.changed() => return Ok(None),
        };
        match result {
            Ok(value) => return Ok(Some(value)),
            Err(e) if is_transient(&e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "{what} failed; retrying");
                if sleep_or_shutdown(delay, shutdown).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        for good in ["c1", "spoke-1", "a", &"a".repeat(63)] {
            assert!(validate_cluster_name(good).is_ok(), "{good}");
        }
        for bad in ["", "C1", "-a", "a-", "a.b", "a_b", &"a".repeat(64)] {
            assert!(validate_cluster_name(bad).is_err(), "{bad}");
        }
    }
}
