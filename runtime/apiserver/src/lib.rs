//! Kubernetes-compatible API server machinery shared by the hub and the simulated
//! spoke: REST storage with Kubernetes semantics over the store trait, discovery,
//! watch, server-side apply, garbage collection, and HTTPS with client certificates.

// `ApiError` carries a full Kubernetes Status (message, details, causes); it only
// travels on the error path, so its size is not worth boxing everywhere.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

pub mod admission;
pub mod auth;
pub mod builtin;
pub mod compactor;
pub mod controller;
pub mod crds;
pub mod endpoint;
pub mod gc;
pub mod host;
pub mod http;
pub mod metrics;
pub mod objects;
pub mod openapi;
pub mod registry;
pub mod route;
pub mod scale;
pub mod server;
pub mod storage;
pub mod watch;

pub use admission::{Admission, Operation, ValidatingAdmission};
pub use auth::{
    Attributes, Authorizer, ClientCert, Decision, MASTERS_GROUP, MastersOnly, TokenAuthenticator, UserInfo,
};
pub use endpoint::Endpoint;
pub use metrics::MetricsSource;
pub use registry::{NotServed, Registry, Resource};
pub use server::{TlsMaterial, serve_tls};
pub use storage::{
    DeleteOptions, FieldValidation, ListOptions, Patch, PatchType, Propagation, Storage, WriteOptions, Written,
};

/// Default cap on request bodies (Kubernetes' own default is 3 MiB; works carry more).
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// `host:port` advertised in `/api` discovery.
    pub server_address: String,
    /// The `/version` document.
    pub version: Value,
    /// How often an idle watch receives a BOOKMARK (when it asked for them).
    pub bookmark_interval: Duration,
}

impl ServerConfig {
    pub fn new(server_address: impl Into<String>) -> ServerConfig {
        ServerConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            server_address: server_address.into(),
            version: version_document(),
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

/// The Kubernetes version this server behaves like, with Flotilla's own version.
pub fn version_document() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "gitVersion": format!("v1.34.0+flotilla-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", other => other }),
    })
}

/// An API server: storage, who may do what, and how it talks HTTP.
pub struct ApiServer {
    pub storage: Storage,
    pub authorizer: Arc<dyn Authorizer>,
    pub tokens: auth::TokenAuthenticators,
    pub config: ServerConfig,
    pub metrics: metrics::Metrics,
    /// Extra endpoints beside the resource API ([`Endpoint`]).
    pub endpoints: Vec<Arc<dyn Endpoint>>,
}

impl ApiServer {
    pub fn new(storage: Storage, authorizer: Arc<dyn Authorizer>, config: ServerConfig) -> ApiServer {
        ApiServer {
            storage,
            authorizer,
            tokens: Vec::new(),
            config,
            metrics: metrics::Metrics::default(),
            endpoints: Vec::new(),
        }
    }

    /// Asks the authorizer; a denial is Kubernetes' 403 for `attrs`.
    pub async fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<(), flotilla_apimachinery::ApiError> {
        match self.authorizer.authorize(user, attrs).await {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => Err(attrs.forbidden(user, &reason)),
        }
    }
}
