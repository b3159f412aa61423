//! A connection to the hub (or any Kubernetes-compatible API) from a kubeconfig file.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use serde_json::Value;

use super::errors::kube_message;
use super::resolve::Catalog;

pub struct Session {
    pub client: kube::Client,
    /// The context's namespace, else `default`.
    pub default_namespace: String,
    pub server: String,
    pub kubeconfig: std::path::PathBuf,
    io: Io,
}

/// Where command output goes: the process's stdout/stderr, or buffers (tests).
#[derive(Clone, Default)]
pub enum Io {
    #[default]
    Stdio,
    #[cfg_attr(not(test), allow(dead_code))]
    Capture(Arc<Mutex<Captured>>),
}

/// Output captured by [`Io::Capture`].
#[derive(Debug, Default, Clone)]
pub struct Captured {
    pub out: String,
    pub err: String,
}

impl Session {
    /// Connects with the given kubeconfig file (and context, else the current one).
    pub async fn connect(kubeconfig: &Path, context: Option<&str>) -> anyhow::Result<Session> {
        if !kubeconfig.exists() {
            anyhow::bail!(
                "kubeconfig {} does not exist (run `flotilla hub init`, or pass --kubeconfig / set FLOTILLA_KUBECONFIG)",
                kubeconfig.display()
            );
        }
        let kc = kube::config::Kubeconfig::read_from(kubeconfig)
            .map_err(|e| anyhow::anyhow!(super::errors::chain(&e)))
            .with_context(|| format!("kubeconfig {}", kubeconfig.display()))?;
        let options = kube::config::KubeConfigOptions { context: context.map(str::to_string), ..Default::default() };
        let config = kube::Config::from_custom_kubeconfig(kc, &options)
            .await
            .map_err(|e| anyhow::anyhow!(super::errors::chain(&e)))
            .with_context(|| format!("kubeconfig {}", kubeconfig.display()))?;
        let server = config.cluster_url.to_string();
        let default_namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config)
            .map_err(|e| anyhow::anyhow!(super::errors::chain(&e)))
            .with_context(|| format!("creating a client for {server}"))?;
        Ok(Session { client, default_namespace, server, kubeconfig: kubeconfig.to_path_buf(), io: Io::Stdio })
    }

    /// A session over an existing client, writing to `io`.
    #[cfg(test)]
    pub fn with_client(client: kube::Client, default_namespace: &str, io: Io) -> Session {
        Session {
            client,
            default_namespace: default_namespace.to_string(),
            server: "https://test".to_string(),
            kubeconfig: "test.kubeconfig".into(),
            io,
        }
    }

    /// Writes command output (stdout).
    pub fn out(&self, text: &str) -> anyhow::Result<()> {
        match &self.io {
            Io::Stdio => super::emit(text),
            Io::Capture(c) => {
                lock(c).out.push_str(text);
                Ok(())
            }
        }
    }

    /// Writes diagnostics (stderr).
    pub fn err(&self, text: &str) {
        match &self.io {
            Io::Stdio => super::emit_err(text),
            Io::Capture(c) => lock(c).err.push_str(text),
        }
    }

    /// The `-n` namespace or the default one.
    pub fn namespace(&self, flag: Option<&str>) -> String {
        flag.filter(|n| !n.is_empty()).map(str::to_string).unwrap_or_else(|| self.default_namespace.clone())
    }

    /// Runs discovery.
    pub async fn catalog(&self) -> anyhow::Result<Catalog> {
        Catalog::discover(&self.client).await.map_err(|e| {
            let detail = format!("{e:#}");
            if detail.contains("Connection refused") {
                anyhow::anyhow!(
                    "the connection to the server {} was refused - is the hub running (`flotilla hub serve`) and is the kubeconfig {} right? ({detail})",
                    self.server.trim_end_matches('/'),
                    self.kubeconfig.display()
                )
            } else {
                e.context(format!("talking to {}", self.server.trim_end_matches('/')))
            }
        })
    }

    /// GET `path?query` with an optional Accept header, as JSON.
    pub async fn get_json(
        &self,
        path: &str,
        query: &[(&str, String)],
        accept: Option<&str>,
    ) -> Result<Value, kube::Error> {
        let request = build_get(path, query, accept)?;
        let text = self.client.request_text(request).await?;
        serde_json::from_str(&text).map_err(kube::Error::SerdeError)
    }

    /// Like [`Session::get_json`] with errors as kubectl-style messages.
    pub async fn get(&self, path: &str, query: &[(&str, String)], accept: Option<&str>) -> anyhow::Result<Value> {
        self.get_json(path, query, accept).await.map_err(|e| anyhow::anyhow!(kube_message(&e)))
    }
}

fn lock(c: &Mutex<Captured>) -> MutexGuard<'_, Captured> {
    c.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Builds `GET path?query` with an optional Accept header.
pub fn build_get(
    path: &str,
    query: &[(&str, String)],
    accept: Option<&str>,
) -> Result<http::Request<Vec<u8>>, kube::Error> {
    let uri = with_query(path, query);
    let mut builder = http::Request::get(uri);
    if let Some(accept) = accept {
        builder = builder.header(http::header::ACCEPT, accept);
    }
    builder.body(Vec::new()).map_err(kube::Error::HttpError)
}

/// `path?k=v&...` with proper escaping; empty values are left out.
pub fn with_query(path: &str, query: &[(&str, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in query {
        if !v.is_empty() {
            ser.append_pair(k, v);
            any = true;
        }
    }
    if any { format!("{path}?{}", ser.finish()) } else { path.to_string() }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn query_strings_are_escaped() {
        assert_eq!(with_query("/api/v1/pods", &[]), "/api/v1/pods");
        assert_eq!(
            with_query(
                "/api/v1/events",
                &[
                    ("fieldSelector", "involvedObject.name=a,involvedObject.namespace=".into()),
                    ("labelSelector", String::new()),
                    ("limit", "500".into()),
                ]
            ),
            "/api/v1/events?fieldSelector=involvedObject.name%3Da%2CinvolvedObject.namespace%3D&limit=500"
        );
        let req = build_get("/x", &[], Some("application/json")).expect("request");
        assert_eq!(req.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok()), Some("application/json"));
    }
}
