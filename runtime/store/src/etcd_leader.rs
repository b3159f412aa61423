//! Leader election among hub replicas on etcd: a lease and a create-if-absent transaction on
//! one key.
//!
//! A candidate grants itself a lease of [`ElectionOptions::lease_ttl`] and tries to create
//! the election key bound to that lease. Whoever creates it leads until the key goes away:
//! the leader's lease expires (it died or lost etcd) or it resigns. The others watch the key
//! and try again when it is deleted, so a dead leader is replaced within about one TTL.
//!
//! A leader keeps its lease alive every third of the TTL and steps down on its own when no
//! keep-alive succeeded for two thirds of the TTL, i.e. before etcd can expire the lease and
//! let another replica lead: two replicas never both believe they lead for longer than the
//! clock drift between them.

use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, EventType, PutOptions, Txn, TxnOp, WatchOptions};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

#[derive(Debug, Clone)]
pub struct ElectionOptions {
    /// The election key, e.g. `/flotilla/leader/controllers`.
    pub key: String,
    /// This candidate's identity, stored as the key's value (for operators and logs).
    pub identity: String,
    /// Lease TTL: a dead leader is replaced about this long after its last keep-alive.
    /// etcd's minimum is a few seconds. Default 5 s.
    pub lease_ttl: Duration,
}

impl ElectionOptions {
    pub fn new(key: impl Into<String>, identity: impl Into<String>) -> ElectionOptions {
        ElectionOptions { key: key.into(), identity: identity.into(), lease_ttl: Duration::from_secs(5) }
    }
}

/// A running candidate. `leader()` says whether this candidate leads now; dropping the
/// handle stops campaigning and resigns (revokes the lease) if it led.
pub struct Election {
    leader: watch::Receiver<bool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Election {
    /// Starts campaigning in the background.
    pub fn start(client: Client, options: ElectionOptions) -> Election {
        let (tx, rx) = watch::channel(false);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(campaign_forever(client, options, tx, stop_rx));
        Election { leader: rx, stop: Some(stop_tx), task: Some(task) }
    }

    /// True while this candidate leads; changes are observable with `changed()`.
    pub fn leader(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// Stops campaigning and resigns, waiting for the lease to be revoked so that another
    /// replica can take over at once.
    pub async fn resign(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Election {
    /// Stops campaigning without resigning, as a crashed process would: if this candidate
    /// led, the others take over only when its lease expires.
    pub fn abandon(mut self) {
        // Abort first: dropping the sender alone would read as "stop", which resigns.
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.stop.take();
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        // Without an explicit resign the task still revokes the lease when it sees the stop.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// How a term ended.
enum Outcome {
    /// The handle asked to stop: do not campaign again.
    Stopped,
    /// Leadership, or the lease, was lost: campaign again.
    Lost,
}

type Stop = tokio::sync::oneshot::Receiver<()>;

async fn campaign_forever(client: Client, options: ElectionOptions, leader: watch::Sender<bool>, mut stop: Stop) {
    loop {
        let outcome = campaign_once(client.clone(), &options, &leader, &mut stop).await;
        leader.send_replace(false);
        match outcome {
            Ok(Outcome::Stopped) => return,
            Ok(Outcome::Lost) => {}
            Err(e) => warn!(key = %options.key, error = %e, "leader election interrupted; campaigning again"),
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// One lease: campaign with it, lead while it lives. Returns when leadership (or the
/// chance of it) is lost or the handle stops; the lease is revoked on the way out.
async fn campaign_once(
    mut client: Client,
    options: &ElectionOptions,
    leader: &watch::Sender<bool>,
    stop: &mut Stop,
) -> Result<Outcome, etcd_client::Error> {
    let ttl = i64::try_from(options.lease_ttl.as_secs()).unwrap_or(5).max(2);
    let lease = client.lease_grant(ttl, None).await?.id();
    let result = lead_with_lease(&mut client, options, leader, lease, ttl, stop).await;
    leader.send_replace(false);
    // Resigning: revoking deletes the key at once, so a successor need not wait for the TTL.
    if let Err(e) = client.lease_revoke(lease).await {
        debug!(error = %e, "revoking the election lease (it expires anyway)");
    }
    result
}

async fn lead_with_lease(
    client: &mut Client,
    options: &ElectionOptions,
    leader: &watch::Sender<bool>,
    lease: i64,
    ttl: i64,
    stop: &mut Stop,
) -> Result<Outcome, etcd_client::Error> {
    let ttl = Duration::from_secs(ttl as u64);
    let (mut keeper, mut keep_alive) = client.lease_keep_alive(lease).await?;
    let mut last_renewed = Instant::now();
    let mut tick = tokio::time::interval(ttl / 3);
    loop {
        // Try to become leader: create the key if absent, bound to our lease.
        let txn = Txn::new()
            .when([Compare::create_revision(options.key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                options.key.clone(),
                options.identity.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(options.key.clone(), None)]);
        let response = client.txn(txn).await?;
        let revision = response.header().map(|h| h.revision()).unwrap_or(0);
        let won = response.succeeded();
        if won {
            info!(key = %options.key, identity = %options.identity, "elected leader");
            leader.send_replace(true);
        } else {
            debug!(key = %options.key, "another replica leads; waiting for its key to go");
        }
        // Watch the key from just after our read: a deletion (expiry, resignation) means
        // a new election; while leading it also tells us if the key was taken from us.
        let (_watcher, mut events) = client
            .watch(options.key.clone(), Some(WatchOptions::new().with_start_revision(revision + 1)))
            .await?
            .split();
        loop {
            tokio::select! {
                // A closed channel (the handle dropped) stops too.
                _ = &mut *stop => return Ok(Outcome::Stopped),
                _ = tick.tick() => {
                    if won && last_renewed.elapsed() >= ttl * 2 / 3 {
                        warn!(key = %options.key, "could not renew the election lease in time; stepping down");
                        return Ok(Outcome::Lost);
                    }
                    if let Err(e) = keeper.keep_alive().await {
                        warn!(error = %e, "election lease keep-alive failed");
                    }
                }
                renewed = keep_alive.message() => match renewed {
                    Ok(Some(r)) if r.ttl() > 0 => last_renewed = Instant::now(),
                    Ok(Some(_)) => {
                        warn!(key = %options.key, "election lease expired");
                        return Ok(Outcome::Lost);
                    }
                    Ok(None) => return Err(etcd_client::Error::LeaseKeepAliveError("keep-alive stream ended".into())),
                    Err(e) => return Err(e),
                },
                message = events.message() => {
                    let Some(response) = message? else {
                        return Err(etcd_client::Error::WatchError("election watch ended".into()));
                    };
                    if response.canceled() {
                        return Err(etcd_client::Error::WatchError(format!(
                            "election watch cancelled: {}", response.cancel_reason()
                        )));
                    }
                    if response.events().iter().any(|e| e.event_type() == EventType::Delete) {
                        if won {
                            warn!(key = %options.key, "election key deleted under the leader; stepping down");
                            return Ok(Outcome::Lost);
                        }
                        // The leader went away: campaign again with the same lease.
                        break;
                    }
                }
            }
        }
    }
}
