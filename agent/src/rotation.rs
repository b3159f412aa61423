//! Certificate rotation (docs/registration.md, "Rotation"; OCM `csr.go` `jitter(0.2, 0.25)`):
//! once less than a random 20–25 % of the certificate's life remains, the agent creates a
//! new key and a CSR under its current identity (the hub approves renewals from the same
//! agent automatically), waits for the certificate, replaces `hub.kubeconfig`, `agent.key`
//! and `agent.crt`, and publishes a new client to the running loops.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::Api;
use tokio::sync::watch;

use crate::AgentError;
use crate::client::{ClientSwap, SharedClient};
use crate::csr::{self, CsrOutcome};
use crate::datadir::{DataDir, Identity};
use crate::util::{Backoff, random_unit, sleep_or_shutdown};

/// Renew once less than this fraction of the life remains, drawn per certificate from
/// `[MIN_REMAINING, MAX_REMAINING)`.
pub const MIN_REMAINING: f64 = 0.20;
pub const MAX_REMAINING: f64 = 0.25;
/// The longest single sleep: a suspended machine or a clock step is noticed within this.
const MAX_SLEEP: Duration = Duration::from_secs(600);

/// A random fraction in the 20–25 % window.
pub fn random_remaining_fraction() -> f64 {
    MIN_REMAINING + (MAX_REMAINING - MIN_REMAINING) * random_unit()
}

/// When a certificate valid from `not_before` to `not_after` is to be renewed: when only
/// `remaining` (a fraction of its life) is left.
pub fn renewal_time(not_before: Timestamp, not_after: Timestamp, remaining: f64) -> Timestamp {
    let life = not_after.duration_since(not_before);
    let keep = SignedDuration::from_secs_f64(life.as_secs_f64().max(0.0) * remaining.clamp(0.0, 1.0));
    not_after.checked_sub(keep).unwrap_or(not_before)
}

/// Whether it is time to renew at `now`.
pub fn renewal_due(now: Timestamp, not_before: Timestamp, not_after: Timestamp, remaining: f64) -> bool {
    now >= renewal_time(not_before, not_after, remaining)
}

pub(crate) struct Rotator {
    pub cluster: String,
    pub agent_id: String,
    pub data: DataDir,
    pub identity: Identity,
    pub hub: SharedClient,
    pub swap: ClientSwap,
    pub expiration_seconds: Option<i32>,
    pub shutdown: watch::Receiver<bool>,
}

impl Rotator {
    pub async fn run(mut self) {
        let mut backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(300));
        loop {
            let remaining = random_remaining_fraction();
            let (not_before, not_after) = (self.identity.info.not_before, self.identity.info.not_after);
            let at = renewal_time(not_before, not_after, remaining);
            tracing::info!(cluster = %self.cluster, renew_at = %at, not_after = %not_after, "certificate renewal scheduled");
            loop {
                let now = Timestamp::now();
                if now >= at {
                    break;
                }
                let wait = Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO).min(MAX_SLEEP);
                if sleep_or_shutdown(wait, &mut self.shutdown).await {
                    return;
                }
            }
            loop {
                match self.renew().await {
                    Ok(true) => break,
                    Ok(false) => return,
                    Err(e) => {
                        let delay = backoff.next_delay();
                        if Timestamp::now() >= self.identity.info.not_after {
                            tracing::error!(cluster = %self.cluster, error = %e, expired_at = %self.identity.info.not_after,
                                "the agent's certificate has expired and could not be renewed; the hub will refuse it. \
                                 Restart `flotilla agent join` with a new bootstrap token to join again");
                        } else {
                            tracing::warn!(cluster = %self.cluster, error = %e, retry_in = ?delay, not_after = %self.identity.info.not_after,
                                "certificate renewal failed; retrying");
                        }
                        if sleep_or_shutdown(delay, &mut self.shutdown).await {
                            return;
                        }
                    }
                }
            }
            backoff.reset();
        }
    }

    /// One renewal; `Ok(false)` on shutdown.
    async fn renew(&mut self) -> Result<bool, AgentError> {
        let (common_name, organizations) = csr::agent_subject(&self.cluster, &self.agent_id);
        let (key_pem, csr_pem) = flotilla_pki::generate_key_and_csr(&common_name, &organizations)?;
        let api: Api<CertificateSigningRequest> = Api::all(self.hub.get());
        let name = csr::create(&api, &self.cluster, &csr_pem, self.expiration_seconds).await?;
        tracing::info!(cluster = %self.cluster, csr = %name, "requested a renewed certificate");
        let Some(outcome) = csr::wait(&api, &name, &mut self.shutdown).await? else { return Ok(false) };
        let cert_pem = match outcome {
            CsrOutcome::Issued(pem) => csr::check_issued(&name, &pem, &key_pem, &common_name)?,
            CsrOutcome::Denied(message) => {
                return Err(AgentError::Denied { cluster: self.cluster.clone(), csr: name, message });
            }
            CsrOutcome::Failed(message) => return Err(AgentError::SigningFailed { csr: name, message }),
            CsrOutcome::Gone => {
                return Err(AgentError::SigningFailed { csr: name, message: "deleted before it was answered".into() });
            }
        };
        let identity = Identity::new(&self.identity.hub_url, &self.identity.ca_pem, &cert_pem, &key_pem)?;
        // Files first: if the process dies now, it restarts with the new identity.
        self.data.save_identity(&identity, &self.cluster)?;
        self.swap.publish_identity(&identity, &self.cluster).await?;
        tracing::info!(cluster = %self.cluster, csr = %name, serial = %identity.info.serial_hex,
            not_after = %identity.info.not_after, "certificate renewed; the agent now uses it");
        self.identity = identity;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ts(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn renewal_falls_in_the_20_to_25_percent_window() {
        // A 1000 s certificate: renew between 750 s and 800 s after notBefore.
        let (nb, na) = (ts(1_000_000), ts(1_001_000));
        assert_eq!(renewal_time(nb, na, 0.20), ts(1_000_800));
        assert_eq!(renewal_time(nb, na, 0.25), ts(1_000_750));
        for _ in 0..10_000 {
            let f = random_remaining_fraction();
            assert!((MIN_REMAINING..MAX_REMAINING).contains(&f), "{f}");
            let at = renewal_time(nb, na, f);
            assert!(at > ts(1_000_750) - SignedDuration::from_millis(1) && at <= ts(1_000_800), "{at}");
        }
    }

    #[test]
    fn renewal_is_due_only_inside_the_window_with_an_injected_clock() {
        let (nb, na) = (ts(0), ts(365 * 24 * 3600));
        let remaining = 0.22;
        let at = renewal_time(nb, na, remaining);
        assert!(!renewal_due(nb, nb, na, remaining));
        assert!(!renewal_due(at - SignedDuration::from_secs(1), nb, na, remaining));
        assert!(renewal_due(at, nb, na, remaining));
        assert!(renewal_due(na, nb, na, remaining));
        assert!(renewal_due(na + SignedDuration::from_secs(10), nb, na, remaining));
        // 78 % of a year has passed at the renewal time.
        let elapsed = at.duration_since(nb).as_secs_f64() / na.duration_since(nb).as_secs_f64();
        assert!((elapsed - 0.78).abs() < 1e-6, "{elapsed}");
    }

    #[test]
    fn real_certificates_schedule_inside_their_validity() {
        let ca = flotilla_pki::CertificateAuthority::generate("hub", Duration::from_secs(3600)).unwrap();
        let cert = ca.issue_client_cert("system:open-cluster-management:c1:a", &[], Duration::from_secs(3600)).unwrap();
        let info = flotilla_pki::cert_info(&cert.cert_pem).unwrap();
        let at = renewal_time(info.not_before, info.not_after, random_remaining_fraction());
        assert!(at > info.not_before && at < info.not_after);
        assert!(!renewal_due(Timestamp::now(), info.not_before, info.not_after, MIN_REMAINING));
        // Degenerate validity does not panic.
        assert_eq!(renewal_time(info.not_after, info.not_before, 0.2), info.not_before);
    }
}
