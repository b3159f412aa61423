//! Who is asking, and whether they may. Authentication comes from the TLS client
//! certificate (CN is the user, O the groups, as in Kubernetes) or from a bearer
//! token checked by a pluggable authenticator; authorization is a pluggable policy.

use std::sync::Arc;

use async_trait::async_trait;
use flotilla_apimachinery::ApiError;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Kubernetes' superuser group; the admin kubeconfig's certificate carries it.
pub const MASTERS_GROUP: &str = "system:masters";

/// What a request wants to do, in Kubernetes' authorization vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

impl Attributes {
    /// A request for a path outside the resource API (`/metrics`, `/blobs/sha256:…`), as
    /// Kubernetes' non-resource URLs: no group, no namespace, and `resource` holds the path
    /// (which starts with `/`, so it never names a real resource). Verbs are `get` for GET and
    /// HEAD, `put`, `post` and `delete`.
    pub fn non_resource(verb: &str, path: &str) -> Attributes {
        Attributes {
            verb: verb.to_string(),
            group: String::new(),
            resource: path.to_string(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
        }
    }

    /// Whether this is a [`non_resource`](Attributes::non_resource) request; `resource` is
    /// then its path.
    pub fn is_non_resource(&self) -> bool {
        self.resource.starts_with('/')
    }

    /// Kubernetes' RBAC denial wording.
    pub fn forbidden(&self, user: &UserInfo, reason: &str) -> ApiError {
        let suffix = if reason.is_empty() { String::new() } else { format!(": {reason}") };
        if self.is_non_resource() {
            return ApiError::forbidden(format!(
                "forbidden: User \"{}\" cannot {} path \"{}\"{suffix}",
                user.name, self.verb, self.resource
            ));
        }
        let what = if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", self.namespace)
        };
        let target = if self.name.is_empty() {
            if self.group.is_empty() { self.resource.clone() } else { format!("{}.{}", self.resource, self.group) }
        } else if self.group.is_empty() {
            format!("{} \"{}\"", self.resource, self.name)
        } else {
            format!("{}.{} \"{}\"", self.resource, self.group, self.name)
        };
        let mut err = ApiError::forbidden(format!(
            "{target} is forbidden: User \"{}\" cannot {} resource \"{what}\" in API group \"{}\" {scope}{suffix}",
            user.name, self.verb, self.group
        ));
        err.group = self.group.clone();
        err.kind = self.resource.clone();
        err.name = self.name.clone();
        err
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied, with a reason appended to the 403 message (may be empty).
    Deny(String),
}

#[async_trait]
pub trait Authorizer: Send + Sync + 'static {
    async fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision;
}

/// Members of `system:masters` may do anything; everyone else nothing.
pub struct MastersOnly;

#[async_trait]
impl Authorizer for MastersOnly {
    async fn authorize(&self, user: &UserInfo, _attrs: &Attributes) -> Decision {
        if user.in_group(MASTERS_GROUP) { Decision::Allow } else { Decision::Deny(String::new()) }
    }
}

/// Authenticates bearer tokens (client certificates are handled by TLS).
#[async_trait]
pub trait TokenAuthenticator: Send + Sync + 'static {
    /// Ok(None) when the token is not one this authenticator knows.
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, ApiError>;
}

/// Authenticators tried in order for `Authorization: Bearer` tokens.
pub type TokenAuthenticators = Vec<Arc<dyn TokenAuthenticator>>;

tokio::task_local! {
    /// The authenticated caller of the HTTP request being served.
    static REQUEST_USER: UserInfo;
}

/// Runs `fut` (the handling of one HTTP request) with `user` as its [`request_user`].
pub async fn with_request_user<F: std::future::Future>(user: UserInfo, fut: F) -> F::Output {
    REQUEST_USER.scope(user, fut).await
}

/// Who made the HTTP request being served, for admission hooks that depend on the
/// requester (Kubernetes stamps it into CertificateSigningRequests, OCM's webhooks check
/// it). `None` means an in-process caller such as a controller, which is trusted.
pub fn request_user() -> Option<UserInfo> {
    REQUEST_USER.try_with(UserInfo::clone).ok()
}

/// What the TLS layer learned from a connection's client certificate.
#[derive(Debug, Clone)]
pub enum ClientCert {
    /// No certificate was presented.
    None,
    /// A certificate signed by the hub's CA, naming this user.
    Verified(UserInfo),
    /// A certificate was presented but cannot authenticate anyone (another CA, expired,
    /// no usable identity). Requests get 401 with this reason, as kube-apiserver answers
    /// them rather than failing the handshake.
    Rejected(String),
}
