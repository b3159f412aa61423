//! kube clients for the hub (bootstrap token, then the agent's certificate) and the spoke,
//! and the shared hub client that certificate rotation swaps under running loops.

use std::time::Duration;

use flotilla_pki::Kubeconfig;
use tokio::sync::watch;

use crate::AgentError;

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

/// The current hub client. Rotation publishes a new one; every loop takes the latest for
/// each request, so none of them restarts.
#[derive(Clone)]
pub struct SharedClient {
    rx: watch::Receiver<kube::Client>,
}

/// The writing half of [`SharedClient`].
pub struct ClientSwap {
    tx: watch::Sender<kube::Client>,
}

impl SharedClient {
    pub fn new(client: kube::Client) -> (SharedClient, ClientSwap) {
        let (tx, rx) = watch::channel(client);
        (SharedClient { rx }, ClientSwap { tx })
    }

    /// The client to use now.
    pub fn get(&self) -> kube::Client {
        self.rx.borrow().clone()
    }

    /// Resolves when a new client has been published (for watches that want to reconnect
    /// with the new identity).
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The swapper is gone (shutdown): never resolve, the caller's shutdown wins.
            std::future::pending::<()>().await;
        }
    }
}

impl ClientSwap {
    pub fn publish(&self, client: kube::Client) {
        self.tx.send_replace(client);
    }
}
