//! The agent's own cluster: reached through kube-rs whatever it is (a real cluster through
//! a kubeconfig or in-cluster configuration, or a simulated spoke started in-process), so
//! that one code path serves all of them.

use std::path::{Path, PathBuf};

use crate::AgentError;
use crate::pinning::pem_encode;

/// Where the spoke is.
#[derive(Clone)]
pub enum SpokeSource {
    /// A kubeconfig file (`--kubeconfig`), optionally a context in it.
    Kubeconfig { path: PathBuf, context: Option<String> },
    /// In-cluster configuration, else `$KUBECONFIG`, else `~/.kube/config` (kube-rs' inference).
    Infer,
    /// A simulated spoke started in-process under `DATA_DIR/spoke` (needs the `simulated`
    /// feature).
    Simulated,
    /// A client the caller already has (many agents in one process sharing one spoke).
    Client { client: kube::Client, url: String, ca_pem: Option<String> },
}

impl std::fmt::Debug for SpokeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpokeSource::Kubeconfig { path, context } => {
                f.debug_struct("Kubeconfig").field("path", path).field("context", context).finish()
            }
            SpokeSource::Infer => f.write_str("Infer"),
            SpokeSource::Simulated => f.write_str("Simulated"),
            SpokeSource::Client { url, .. } => f.debug_struct("Client").field("url", url).finish_non_exhaustive(),
        }
    }
}

/// A connected spoke.
pub struct Spoke {
    pub client: kube::Client,
    /// The API server URL, reported in `managedClusterClientConfigs`.
    pub url: String,
    /// Its CA bundle, if the configuration names one.
    pub ca_pem: Option<String>,
    /// Stops a simulated spoke this agent started (in a mutex only to make `Spoke` `Sync`).
    stop: Option<std::sync::Mutex<Stopper>>,
}

type Stopper = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

impl Clone for Spoke {
    /// A clone shares the client; only the original owns (and stops) a simulated server.
    fn clone(&self) -> Spoke {
        Spoke { client: self.client.clone(), url: self.url.clone(), ca_pem: self.ca_pem.clone(), stop: None }
    }
}

impl Spoke {
    pub async fn connect(source: &SpokeSource, data_dir: &Path, cluster: &str) -> Result<Spoke, AgentError> {
        match source {
            SpokeSource::Kubeconfig { path, context } => from_kubeconfig_file(path, context.clone()).await,
            SpokeSource::Infer => {
                let config = kube::Config::infer().await.map_err(|e| {
                    AgentError::Spoke(format!(
                        "no spoke cluster configuration ({e}); pass --kubeconfig SPOKE, or --simulated for a simulated spoke"
                    ))
                })?;
                from_config(config)
            }
            SpokeSource::Client { client, url, ca_pem } => {
                Ok(Spoke { client: client.clone(), url: url.clone(), ca_pem: ca_pem.clone(), stop: None })
            }
            SpokeSource::Simulated => start_simulated(data_dir, cluster).await,
        }
    }

    /// Stops a simulated spoke this agent started; nothing for real clusters.
    pub async fn shutdown(self) {
        if let Some(stop) = self.stop.and_then(|s| s.into_inner().ok()) {
            stop().await;
        }
    }
}

async fn from_kubeconfig_file(path: &Path, context: Option<String>) -> Result<Spoke, AgentError> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let options = kube::config::KubeConfigOptions { context, ..Default::default() };
    from_config(kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?)
}

fn from_config(config: kube::Config) -> Result<Spoke, AgentError> {
    let url = config.cluster_url.to_string().trim_end_matches('/').to_string();
    let ca_pem = config
        .root_cert
        .as_ref()
        .filter(|certs| !certs.is_empty())
        .map(|certs| certs.iter().map(|der| pem_encode("CERTIFICATE", der)).collect::<String>());
    let client = kube::Client::try_from(config).map_err(AgentError::kube("creating the spoke client"))?;
    Ok(Spoke { client, url, ca_pem, stop: None })
}

#[cfg(feature = "simulated")]
async fn start_simulated(data_dir: &Path, cluster: &str) -> Result<Spoke, AgentError> {
    let dir = data_dir.join("spoke");
    let kubeconfig = flotilla_spoke::kubeconfig_path(&dir);
    // Reuse the previous port so the URL in managedClusterClientConfigs stays put.
    let previous = flotilla_pki::Kubeconfig::load(&kubeconfig)
        .ok()
        .and_then(|k| k.server().ok())
        .and_then(|url| url.parse::<http::Uri>().ok())
        .and_then(|uri| uri.port_u16());
    let mut ports = previous.into_iter().chain(std::iter::once(0));
    let server = loop {
        let Some(port) = ports.next() else {
            return Err(AgentError::Spoke("no port to listen on".to_string()));
        };
        let options = flotilla_spoke::SpokeOptions {
            data_dir: dir.clone(),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            name: cluster.to_string(),
            nodes: 3,
            ready_delay: flotilla_spoke::DEFAULT_READY_DELAY,
        };
        match flotilla_spoke::start(options).await {
            Ok(server) => break server,
            Err(e) if port != 0 => {
                tracing::info!(port, error = %e, "the simulated spoke's previous port is taken; using a new one");
            }
            Err(e) => return Err(AgentError::Spoke(format!("{e:#}"))),
        }
    };
    tracing::info!(url = %server.url, kubeconfig = %kubeconfig.display(), "simulated spoke started");
    let mut spoke = match from_kubeconfig_file(&kubeconfig, None).await {
        Ok(spoke) => spoke,
        Err(e) => {
            server.shutdown().await;
            return Err(e);
        }
    };
    spoke.stop = Some(std::sync::Mutex::new(Box::new(move || Box::pin(server.shutdown()))));
    Ok(spoke)
}

#[cfg(not(feature = "simulated"))]
async fn start_simulated(_data_dir: &Path, _cluster: &str) -> Result<Spoke, AgentError> {
    Err(AgentError::Spoke(
        "this build has no simulated spoke (flotilla-agent's `simulated` feature); use --kubeconfig".to_string(),
    ))
}
