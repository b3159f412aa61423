use std::path::PathBuf;

/// Everything that ends the agent (join refused, bad input, unusable data directory) or that
/// a loop reports before retrying. Messages stand on their own at the CLI's edge.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid --hub-ca-hash {0:?}: expected sha256:<64 hex digits> (printed by `flotilla token create`)")]
    InvalidCaHash(String),
    #[error("hub CA hash mismatch: expected {expected}, the hub presented {presented}")]
    CaHashMismatch { expected: String, presented: String },
    #[error("the hub's serving certificate does not verify against the pinned CA: {0}")]
    HubCertificateInvalid(String),
    #[error(
        "no hub CA to trust: pass --hub-ca-hash sha256:<hex> (printed by `flotilla token create`), or put the hub CA \
         certificate in {0}"
    )]
    NoCaPin(PathBuf),
    #[error(
        "the hub CA in {path} is {saved}, not the --hub-ca-hash {expected}; remove the data directory to join another hub"
    )]
    SavedCaMismatch { path: PathBuf, saved: String, expected: String },
    #[error("data directory {dir} holds no agent identity yet, so a bootstrap token is needed (--token)")]
    MissingToken { dir: PathBuf },
    #[error(
        "--token is not a bootstrap token: expected ID.SECRET, 6 and 16 lowercase letters or digits (printed by `flotilla token create`)"
    )]
    MalformedToken,
    #[error("invalid hub URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid cluster name {name:?}: {reason}")]
    InvalidClusterName { name: String, reason: &'static str },
    #[error("data directory {dir} belongs to cluster {found:?}, not {expected:?}")]
    ClusterMismatch { dir: PathBuf, found: String, expected: String },
    /// Transient: the loops retry it with backoff.
    #[error("cannot reach the hub at {url}: {reason}")]
    HubUnreachable { url: String, reason: String },
    #[error("the hub refused the bootstrap credentials ({code}): {message}")]
    BootstrapRefused { code: u16, message: String },
    #[error("the hub denied certificate signing request {csr} of cluster {cluster}: {message}")]
    Denied { cluster: String, csr: String, message: String },
    #[error("the hub could not sign certificate signing request {csr}: {message}")]
    SigningFailed { csr: String, message: String },
    #[error("the certificate the hub issued for {csr} is unusable: {reason}")]
    BadCertificate { csr: String, reason: String },
    /// A kube-rs call failed. `message` is the server's own message for API errors (kube's
    /// Display repeats the whole Status), the error otherwise.
    #[error("{what}: {message}")]
    Kube {
        what: String,
        message: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error(transparent)]
    Pki(#[from] flotilla_pki::PkiError),
    #[error("{action} {path}: {source}", path = path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}", path = path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("plugin blob {digest}: {reason}")]
    PluginBlob { digest: String, reason: String },
    #[error("cannot serve metrics on {addr}: {source}")]
    MetricsListen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("simulated spoke: {0}")]
    Spoke(String),
    #[error("no randomness available: {0}")]
    Random(String),
    #[error("{0}")]
    Internal(String),
}

impl AgentError {
    pub(crate) fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> AgentError {
        let what = what.into();
        move |source| {
            let message = match api_code(&source) {
                Some(code) => format!("{} ({code})", api_message(&source)),
                None => api_message(&source),
            };
            AgentError::Kube { what, message, source: Box::new(source) }
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AgentError {
        let path = path.into();
        move |source| AgentError::Io { action, path, source }
    }

    /// The HTTP status of an API error, if this is one.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            AgentError::Kube { source, .. } => api_code(source),
            AgentError::BootstrapRefused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The HTTP status of a kube API error (`None` for transport errors).
pub(crate) fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The server's message for an API error, else the error itself.
pub(crate) fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// Why one manifest of a ManifestWork was not applied. It is reported in that manifest's
/// `Applied` condition (never fatal to the work: the other manifests are still applied),
/// and [`ManifestError::is_transient`] keeps garbage collection from acting on a round in
/// which the spoke could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The manifest itself is unusable (no apiVersion, kind or name, a bad strategy).
    #[error("invalid manifest: {0}")]
    Invalid(String),
    /// Discovery on the spoke does not know the kind (OCM's message).
    #[error("the server doesn't have a resource type {kind:?} in {api_version}")]
    UnknownKind { api_version: String, kind: String },
    /// Server-side apply met fields owned by another field manager (reason `ApplyConflict`).
    #[error("{0}")]
    ApplyConflict(String),
    /// An `ignoreFields` path could not be used (reason `AppliedManifestSSAIgnoreFieldError`).
    #[error("{0}")]
    IgnoreField(String),
    /// The spoke refused or failed a request. `code` is the HTTP status, `None` when the
    /// spoke could not be reached at all.
    #[error("{action} {what}: {message}")]
    Spoke { action: &'static str, what: String, code: Option<u16>, message: String },
}

impl ManifestError {
    /// From a failed spoke request.
    pub(crate) fn spoke(action: &'static str, what: impl Into<String>) -> impl FnOnce(kube::Error) -> ManifestError {
        let what = what.into();
        move |e| ManifestError::Spoke { action, what, code: api_code(&e), message: api_message(&e) }
    }

    /// A failure that says nothing about the spoke's contents: unreachable, overloaded, or a
    /// server error. Acting on such a round (deleting what looks untracked) is unsafe.
    pub fn is_transient(&self) -> bool {
        matches!(self, ManifestError::Spoke { code: None | Some(429 | 500..), .. })
    }
}
