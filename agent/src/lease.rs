//! The agent's heartbeat (docs/registration.md, "Health"; OCM `lease_controller.go`): Lease
//! `managed-cluster-lease` in the cluster namespace, holder the agent ID, renewed every
//! `leaseDurationSeconds` with jitter 0.25. The hub marks the cluster unreachable when the
//! lease grows older than its grace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::AgentError;
use crate::client::SharedClient;
use crate::error::api_code;
use crate::util::{Backoff, jittered, sleep_or_shutdown};

pub const LEASE_NAME: &str = "managed-cluster-lease";
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(60);
/// OCM's jitter factor for lease renewal.
pub const LEASE_JITTER: f64 = 0.25;
/// The least time one renewal may take before it is abandoned.
const MIN_RENEW_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct LeaseLoop {
    pub cluster: String,
    pub agent_id: String,
    pub hub: SharedClient,
    pub duration: watch::Receiver<Duration>,
    /// Woken when a renewal comes late (after failures, or after the process was paused):
    /// the hub may have marked the cluster unreachable meanwhile, and only the status loop
    /// sets Available back to True.
    pub renewed_late: Arc<Notify>,
    pub shutdown: watch::Receiver<bool>,
}

/// A renewal this long after the previous one came later than any jittered period: the
/// hub may have taken the agent for dead.
pub fn late_after(duration: Duration) -> Duration {
    duration.mul_f64(1.0 + LEASE_JITTER) + Duration::from_secs(1)
}

impl LeaseLoop {
    pub async fn run(mut self) {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut failing = false;
        let mut last_renewed: Option<Instant> = None;
        loop {
            let duration = *self.duration.borrow_and_update();
            // Bounded: a hub replica that hangs (rather than refusing connections) must not
            // hold the heartbeat for the client's read timeout; failover publishes another
            // client and the next attempt uses it.
            let client = self.hub.get();
            let attempt = renew(&client, &self.cluster, &self.agent_id, duration);
            let result = match tokio::time::timeout(duration.max(MIN_RENEW_TIMEOUT), attempt).await {
                Ok(result) => result,
                Err(_) => Err(AgentError::HubUnreachable {
                    url: "the hub".into(),
                    reason: format!("no answer to the lease renewal within {:?}", duration.max(MIN_RENEW_TIMEOUT)),
                }),
            };
            let delay = match result {
                Ok(()) => {
                    let now = Instant::now();
                    let gap = last_renewed.map(|t| now.saturating_duration_since(t));
                    if failing {
                        tracing::info!(cluster = %self.cluster, "lease renewed again");
                    } else {
                        tracing::debug!(cluster = %self.cluster, "lease renewed");
                    }
                    if failing || gap.is_some_and(|gap| gap > late_after(duration)) {
                        tracing::info!(cluster = %self.cluster, since_last_renewal = ?gap,
                            "the lease was renewed late; re-reporting the cluster's status");
                        self.renewed_late.notify_one();
                    }
                    last_renewed = Some(now);
                    failing = false;
                    backoff.reset();
                    jittered(duration, LEASE_JITTER)
                }
                Err(e) => {
                    // Retry sooner than the period, so a short outage does not cost a whole
                    // lease duration, but never later than it.
                    self.hub.suspect();
                    let delay = backoff.next_delay().min(duration);
                    tracing::warn!(cluster = %self.cluster, error = %e, retry_in = ?delay, "cannot renew the lease on the hub");
                    failing = true;
                    delay
                }
            };
            tokio::select! {
                stop = sleep_or_shutdown(delay, &mut self.shutdown) => if stop { return },
                // A new duration (read from the ManagedCluster) takes effect at once.
                changed = self.duration.changed() => if changed.is_err() { return },
            }
        }
    }
}

/// Renews (or creates) the lease.
pub async fn renew(client: &kube::Client, cluster: &str, agent_id: &str, duration: Duration) -> Result<(), AgentError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), cluster);
    let now = MicroTime(Timestamp::now());
    let seconds = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX);
    let patch = json!({"spec": {"holderIdentity": agent_id, "leaseDurationSeconds": seconds, "renewTime": now}});
    match api.patch(LEASE_NAME, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(e) if api_code(&e) == Some(404) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE_NAME.to_string()),
                    namespace: Some(cluster.to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(agent_id.to_string()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    ..LeaseSpec::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                // Someone (the hub creates missing leases) was faster: renew next time.
                Err(e) if api_code(&e) == Some(409) => Ok(()),
                Err(e) if api_code(&e) == Some(404) => Err(AgentError::kube(format!(
                    "creating lease {cluster}/{LEASE_NAME} (the cluster namespace does not exist yet: has the hub accepted the cluster?)"
                ))(e)),
                Err(e) => Err(AgentError::kube(format!("creating lease {cluster}/{LEASE_NAME}"))(e)),
            }
        }
        Err(e) => Err(AgentError::kube(format!("renewing lease {cluster}/{LEASE_NAME}"))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewal_is_late_only_past_the_longest_jittered_period() {
        let period = Duration::from_secs(2);
        assert_eq!(late_after(period), Duration::from_millis(3500));
        assert!(period.mul_f64(1.0 + LEASE_JITTER) < late_after(period));
        assert_eq!(late_after(DEFAULT_LEASE_DURATION), Duration::from_secs(76));
    }
}
