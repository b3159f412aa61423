//! kube clients for the hub (bootstrap token, then the agent's certificate) and the spoke,
//! and the shared hub client that certificate rotation and failover between hub replicas
//! swap under running loops.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_pki::Kubeconfig;
use tokio::sync::{Notify, watch};

use crate::AgentError;
use crate::datadir::Identity;

/// Request timeouts towards the hub: a dead hub must not hang a loop for kube's default
/// five minutes. Watches set their own server-side timeout below this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(330);
const USER_AGENT: &str = concat!("flotilla-agent/", env!("CARGO_PKG_VERSION"));

/// A kube client from an in-memory kubeconfig (the same path a file on disk takes).
pub async fn from_kubeconfig(config: &Kubeconfig, what: &str) -> Result<kube::Client, AgentError> {
    let yaml = config.to_yaml()?;
    let parsed = kube::config::Kubeconfig::from_yaml(&yaml)?;
    let mut cfg = kube::Config::from_custom_kubeconfig(parsed, &kube::config::KubeConfigOptions::default()).await?;
    cfg.connect_timeout = Some(CONNECT_TIMEOUT);
    cfg.read_timeout = Some(READ_TIMEOUT);
    // The hub names field managers after the User-Agent (as kube-apiserver does), so what
    // the agent writes is owned by "flotilla-agent", not "unknown".
    cfg.headers.push((http::header::USER_AGENT, http::HeaderValue::from_static(USER_AGENT)));
    kube::Client::try_from(cfg).map_err(AgentError::kube(format!("creating the {what} client")))
}

/// A client that authenticates with a bootstrap token and trusts only the pinned CA.
pub async fn bootstrap_client(hub_url: &str, ca_pem: &str, token: &str) -> Result<kube::Client, AgentError> {
    from_kubeconfig(&Kubeconfig::for_token("hub", hub_url, ca_pem, token, "bootstrap"), "bootstrap hub").await
}

/// How often the failover loop checks that the hub replica in use still answers.
pub const PROBE_PERIOD: Duration = Duration::from_secs(1);
/// A replica that does not answer `/readyz` within this is taken for dead (a hung process,
/// a network path that drops packets).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The current hub client. Rotation and failover publish a new one; every loop takes the
/// latest for each request, so none of them restarts.
#[derive(Clone)]
pub struct SharedClient {
    rx: watch::Receiver<kube::Client>,
    suspect: Arc<Notify>,
}

/// The writing half of [`SharedClient`]: one client per hub URL (replicas of one hub: same
/// CA, same store, so one identity is valid on all of them), of which one is in use.
#[derive(Clone)]
pub struct ClientSwap {
    tx: Arc<watch::Sender<kube::Client>>,
    endpoints: Arc<Mutex<Endpoints>>,
}

struct Endpoints {
    urls: Vec<String>,
    clients: Vec<kube::Client>,
    current: usize,
}

impl SharedClient {
    /// A client for one hub URL and nothing to fail over to (tests, benchmarks).
    pub fn new(client: kube::Client) -> (SharedClient, ClientSwap) {
        Self::with_endpoints(Vec::new(), client.clone(), vec![client])
    }

    fn with_endpoints(
        urls: Vec<String>,
        first: kube::Client,
        clients: Vec<kube::Client>,
    ) -> (SharedClient, ClientSwap) {
        let (tx, rx) = watch::channel(first);
        let shared = SharedClient { rx, suspect: Arc::new(Notify::new()) };
        let swap =
            ClientSwap { tx: Arc::new(tx), endpoints: Arc::new(Mutex::new(Endpoints { urls, clients, current: 0 })) };
        (shared, swap)
    }

    /// Clients for `identity` on every URL of `urls` (in order; the first is used first).
    pub async fn connect(
        identity: &Identity,
        cluster: &str,
        urls: &[String],
    ) -> Result<(SharedClient, ClientSwap), AgentError> {
        let urls = if urls.is_empty() { vec![identity.hub_url.clone()] } else { urls.to_vec() };
        let clients = clients_for(identity, cluster, &urls).await?;
        let first = clients.first().cloned().ok_or_else(|| AgentError::Internal("no hub URL".into()))?;
        Ok(Self::with_endpoints(urls, first, clients))
    }

    /// The client to use now.
    pub fn get(&self) -> kube::Client {
        self.rx.borrow().clone()
    }

    /// Resolves when a new client has been published (for watches that want to reconnect
    /// with the new identity or to another replica).
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The swapper is gone (shutdown): never resolve, the caller's shutdown wins.
            std::future::pending::<()>().await;
        }
    }

    /// Tells the failover loop that a request to the hub failed for want of an answer, so it
    /// checks the replica in use now rather than at its next period.
    pub fn suspect(&self) {
        self.suspect.notify_one();
    }
}

async fn clients_for(identity: &Identity, cluster: &str, urls: &[String]) -> Result<Vec<kube::Client>, AgentError> {
    let mut clients = Vec::with_capacity(urls.len());
    for url in urls {
        let mut on_url = identity.clone();
        on_url.hub_url = url.clone();
        clients.push(from_kubeconfig(&on_url.kubeconfig(cluster), "hub").await?);
    }
    Ok(clients)
}

impl ClientSwap {
    /// Publishes a client for the URL in use (one hub URL only; see [`Self::publish_identity`]).
    pub fn publish(&self, client: kube::Client) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = endpoints.current;
        if let Some(slot) = endpoints.clients.get_mut(current) {
            *slot = client.clone();
        }
        self.tx.send_replace(client);
    }

    /// A new identity (rotation): new clients on every URL, the one in use published.
    pub async fn publish_identity(&self, identity: &Identity, cluster: &str) -> Result<(), AgentError> {
        let urls = self.endpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner).urls.clone();
        if urls.is_empty() {
            self.publish(from_kubeconfig(&identity.kubeconfig(cluster), "hub").await?);
            return Ok(());
        }
        let clients = clients_for(identity, cluster, &urls).await?;
        let mut endpoints = self.endpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = endpoints.current.min(clients.len().saturating_sub(1));
        if let Some(client) = clients.get(current) {
            self.tx.send_replace(client.clone());
        }
        endpoints.clients = clients;
        endpoints.current = current;
        Ok(())
    }

    /// The URL in use and how many there are.
    pub fn current(&self) -> (Option<String>, usize) {
        let endpoints = self.endpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (endpoints.urls.get(endpoints.current).cloned(), endpoints.urls.len())
    }

    fn snapshot(&self) -> (Vec<String>, Vec<kube::Client>, usize) {
        let endpoints = self.endpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (endpoints.urls.clone(), endpoints.clients.clone(), endpoints.current)
    }

    /// Makes URL number `index` the one in use and publishes its client.
    fn switch_to(&self, index: usize) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = endpoints.clients.get(index).cloned() {
            endpoints.current = index;
            self.tx.send_replace(client);
        }
    }
}

/// Whether a hub replica answers: `/readyz` within [`PROBE_TIMEOUT`]. Only the absence of
/// an answer (connection refused or reset, TLS failure, timeout) or a 5xx counts as down;
/// a 401 or 403 is an answer (and would be the same on every replica).
pub async fn probe(client: &kube::Client) -> Result<(), String> {
    let request = http::Request::get("/readyz").body(Vec::new()).map_err(|e| e.to_string())?;
    match tokio::time::timeout(PROBE_TIMEOUT, client.request_text(request)).await {
        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => match crate::error::api_code(&e) {
            Some(code) if code < 500 => Ok(()),
            _ => Err(crate::error::api_message(&e)),
        },
    }
}

/// Keeps the agent on a hub replica that answers: checks the one in use every
/// [`PROBE_PERIOD`] (and at once when a loop reports a failure), and when it does not answer,
/// tries the other URLs in order from the next one, and publishes the client of the first
/// that answers. Identity and resourceVersions are kept: the watches resume from where they
/// were on the new replica, which serves the same store.
pub(crate) struct Failover {
    pub cluster: String,
    pub hub: SharedClient,
    pub swap: ClientSwap,
    pub shutdown: watch::Receiver<bool>,
}

impl Failover {
    pub async fn run(mut self) {
        let mut all_down = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(PROBE_PERIOD) => {}
                () = self.hub.suspect.notified() => {}
                _ = self.shutdown.changed() => return,
            }
            if *self.shutdown.borrow() {
                return;
            }
            let (urls, clients, current) = self.swap.snapshot();
            let Some(client) = clients.get(current) else { continue };
            let Err(reason) = probe(client).await else {
                if std::mem::take(&mut all_down) {
                    tracing::info!(cluster = %self.cluster, hub = %urls[current], "the hub answers again");
                }
                continue;
            };
            let mut moved = false;
            for step in 1..clients.len() {
                let next = (current + step) % clients.len();
                match probe(&clients[next]).await {
                    Ok(()) => {
                        tracing::warn!(cluster = %self.cluster, from = %urls[current], to = %urls[next], reason = %reason,
                            "the hub replica in use does not answer; failing over");
                        self.swap.switch_to(next);
                        moved = true;
                        all_down = false;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(cluster = %self.cluster, hub = %urls[next], error = %e, "hub replica does not answer")
                    }
                }
            }
            if !moved && !std::mem::replace(&mut all_down, true) {
                tracing::warn!(cluster = %self.cluster, hub = %urls[current], replicas = urls.len(), reason = %reason,
                    "no hub replica answers; staying on the current one and checking again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A plain-HTTP server answering every request with `status`.
    async fn answering(status: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        let body = "{}";
                        let response = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        url
    }

    /// A URL nobody listens on (bound, then released).
    async fn refused() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    fn client(url: &str) -> kube::Client {
        let mut config = kube::Config::new(url.parse().unwrap());
        config.connect_timeout = Some(Duration::from_secs(1));
        kube::Client::try_from(config).unwrap()
    }

    fn endpoints(urls: &[String]) -> (SharedClient, ClientSwap) {
        let clients: Vec<kube::Client> = urls.iter().map(|u| client(u)).collect();
        SharedClient::with_endpoints(urls.to_vec(), clients[0].clone(), clients)
    }

    #[tokio::test]
    async fn probe_tells_an_answer_from_no_answer() {
        assert!(probe(&client(&answering("200 OK").await)).await.is_ok());
        assert!(probe(&client(&answering("403 Forbidden").await)).await.is_ok(), "a refusal is an answer");
        assert!(probe(&client(&answering("503 Service Unavailable").await)).await.is_err());
        assert!(probe(&client(&refused().await)).await.is_err(), "connection refused");
    }

    #[tokio::test]
    async fn fails_over_in_order_to_the_first_replica_that_answers_and_stays_there() {
        let urls = vec![refused().await, answering("503 Service Unavailable").await, answering("200 OK").await];
        let (hub, swap) = endpoints(&urls);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut watching = hub.clone();
        let task = tokio::spawn(
            Failover { cluster: "c1".into(), hub: hub.clone(), swap: swap.clone(), shutdown: stop_rx }.run(),
        );
        hub.suspect();
        tokio::time::timeout(Duration::from_secs(10), watching.changed()).await.expect("a new client is published");
        assert_eq!(swap.current(), (Some(urls[2].clone()), 3), "the unhealthy replica is skipped");
        // It stays on a replica that answers.
        tokio::time::sleep(PROBE_PERIOD * 2).await;
        assert_eq!(swap.current().0.as_deref(), Some(urls[2].as_str()));
        stop_tx.send_replace(true);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn stays_put_when_no_replica_answers() {
        let urls = vec![refused().await, refused().await];
        let (hub, swap) = endpoints(&urls);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(
            Failover { cluster: "c1".into(), hub: hub.clone(), swap: swap.clone(), shutdown: stop_rx }.run(),
        );
        hub.suspect();
        tokio::time::sleep(PROBE_PERIOD * 2).await;
        assert_eq!(swap.current().0.as_deref(), Some(urls[0].as_str()));
        stop_tx.send_replace(true);
        task.await.unwrap();
    }
}
