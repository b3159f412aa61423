//! Kubeconfig files in the real schema (`apiVersion: v1`, `kind: Config`), so kubectl,
//! client-go and kube-rs read what we write, and we read what they write.
//!
//! Fields we do not model (exec plugins, auth providers, extensions, preferences, ...) are
//! kept in `extra` maps and written back unchanged.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::PkiError;

type Extra = BTreeMap<String, serde_json::Value>;

/// A kubeconfig file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion", default = "default_api_version")]
    pub api_version: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub clusters: Vec<NamedCluster>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub users: Vec<NamedUser>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub contexts: Vec<NamedContext>,
    #[serde(rename = "current-context", default, deserialize_with = "null_as_default")]
    pub current_context: String,
    /// `preferences`, `extensions` and anything else, preserved.
    #[serde(flatten)]
    pub extra: Extra,
    /// Where this was loaded from; relative file paths inside resolve against its directory.
    #[serde(skip)]
    source: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedCluster {
    pub name: String,
    pub cluster: Cluster,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_tls_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedUser {
    pub name: String,
    #[serde(default)]
    pub user: User,
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("User")
            .field("client_certificate_data", &self.client_certificate_data)
            .field("client_certificate", &self.client_certificate)
            .field("client_key_data", &redacted(&self.client_key_data))
            .field("client_key", &self.client_key)
            .field("token", &redacted(&self.token))
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedContext {
    pub name: String,
    pub context: Context,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub cluster: String,
    #[serde(default)]
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One context with everything it refers to resolved: file paths read, base64 decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedContext {
    pub context_name: String,
    pub cluster_name: String,
    pub user_name: String,
    pub namespace: Option<String>,
    pub server: String,
    pub ca_pem: Option<String>,
    pub insecure_skip_tls_verify: bool,
    pub tls_server_name: Option<String>,
    pub client_cert_pem: Option<String>,
    pub client_key_pem: Option<String>,
    pub token: Option<String>,
}

impl std::fmt::Debug for ResolvedContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedContext")
            .field("context_name", &self.context_name)
            .field("cluster_name", &self.cluster_name)
            .field("user_name", &self.user_name)
            .field("namespace", &self.namespace)
            .field("server", &self.server)
            .field("has_ca", &self.ca_pem.is_some())
            .field("has_client_cert", &self.client_cert_pem.is_some())
            .field("has_token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

fn default_api_version() -> String {
    "v1".to_string()
}

fn default_kind() -> String {
    "Config".to_string()
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

impl Default for Kubeconfig {
    fn default() -> Self {
        Self {
            api_version: default_api_version(),
            kind: default_kind(),
            clusters: Vec::new(),
            users: Vec::new(),
            contexts: Vec::new(),
            current_context: String::new(),
            extra: Extra::new(),
            source: None,
        }
    }
}

impl Kubeconfig {
    /// A kubeconfig with one cluster, one client-certificate user and one context
    /// `USER@CLUSTER` (kubeadm's naming), selected as current. All credentials are inline.
    pub fn for_client_cert(
        cluster_name: &str,
        server_url: &str,
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
        user_name: &str,
    ) -> Kubeconfig {
        Self::single(
            cluster_name,
            server_url,
            ca_pem,
            user_name,
            User {
                client_certificate_data: Some(b64(cert_pem)),
                client_key_data: Some(b64(key_pem)),
                ..User::default()
            },
        )
    }

    /// Like [`Kubeconfig::for_client_cert`] but authenticating with a bearer token
    /// (e.g. a bootstrap token).
    pub fn for_token(cluster_name: &str, server_url: &str, ca_pem: &str, token: &str, user_name: &str) -> Kubeconfig {
        Self::single(
            cluster_name,
            server_url,
            ca_pem,
            user_name,
            User { token: Some(token.to_string()), ..User::default() },
        )
    }

    fn single(cluster_name: &str, server_url: &str, ca_pem: &str, user_name: &str, user: User) -> Kubeconfig {
        let context_name = format!("{user_name}@{cluster_name}");
        Kubeconfig {
            clusters: vec![NamedCluster {
                name: cluster_name.to_string(),
                cluster: Cluster {
                    server: server_url.to_string(),
                    certificate_authority_data: Some(b64(ca_pem)),
                    ..Cluster::default()
                },
            }],
            users: vec![NamedUser { name: user_name.to_string(), user }],
            contexts: vec![NamedContext {
                name: context_name.clone(),
                context: Context {
                    cluster: cluster_name.to_string(),
                    user: user_name.to_string(),
                    namespace: None,
                    extra: Extra::new(),
                },
            }],
            current_context: context_name,
            ..Kubeconfig::default()
        }
    }

    /// Parses a kubeconfig from YAML (or JSON). `origin` names it in errors and is the base
    /// for relative paths.
    pub fn from_yaml(yaml: &str, origin: Option<&Path>) -> Result<Kubeconfig, PkiError> {
        let mut config = if yaml.trim().is_empty() {
            Kubeconfig::default()
        } else {
            serde_saphyr::from_str::<Kubeconfig>(yaml).map_err(|e| PkiError::Kubeconfig {
                path: display_origin(origin),
                message: format!("not a valid kubeconfig: {e}"),
            })?
        };
        config.source = origin.map(Path::to_path_buf);
        Ok(config)
    }

    /// Reads a kubeconfig file.
    pub fn load(path: impl AsRef<Path>) -> Result<Kubeconfig, PkiError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(PkiError::io("reading", path))?;
        Self::from_yaml(&text, Some(path))
    }

    /// The file this was loaded from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Serializes to YAML in the shape kubectl writes (plain scalars, no folding).
    pub fn to_yaml(&self) -> Result<String, PkiError> {
        let mut options = serde_saphyr::SerializerOptions::default();
        options.prefer_block_scalars = false;
        serde_saphyr::to_string_with_options(self, options)
            .map_err(|e| PkiError::Kubeconfig { path: self.origin(), message: format!("cannot serialize: {e}") })
    }

    /// Writes the file atomically (temporary file in the same directory, fsync, rename) with
    /// mode 0600, creating the parent directory if needed.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), PkiError> {
        let path = path.as_ref();
        let yaml = self.to_yaml()?;
        write_private_file_atomically(path, yaml.as_bytes())
    }

    /// The name of the current context.
    pub fn current_context_name(&self) -> Result<&str, PkiError> {
        if self.current_context.is_empty() {
            return Err(self.err("current-context is not set"));
        }
        Ok(&self.current_context)
    }

    /// A context by name.
    pub fn context(&self, name: &str) -> Result<&Context, PkiError> {
        self.contexts
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.context)
            .ok_or_else(|| self.err(format!("context {name:?} not found")))
    }

    /// A cluster by name.
    pub fn cluster(&self, name: &str) -> Result<&Cluster, PkiError> {
        self.clusters
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.cluster)
            .ok_or_else(|| self.err(format!("cluster {name:?} not found")))
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> Result<&User, PkiError> {
        self.users
            .iter()
            .find(|u| u.name == name)
            .map(|u| &u.user)
            .ok_or_else(|| self.err(format!("user {name:?} not found")))
    }

    /// Resolves a context (the current one if `None`): reads referenced files, decodes data.
    pub fn resolve(&self, context: Option<&str>) -> Result<ResolvedContext, PkiError> {
        let context_name = match context {
            Some(name) => name,
            None => self.current_context_name()?,
        };
        let ctx = self.context(context_name)?;
        let cluster = self.cluster(&ctx.cluster)?;
        let user = if ctx.user.is_empty() { User::default() } else { self.user(&ctx.user)?.clone() };
        let cluster_what = format!("cluster {:?}", ctx.cluster);
        let user_what = format!("user {:?}", ctx.user);
        Ok(ResolvedContext {
            context_name: context_name.to_string(),
            cluster_name: ctx.cluster.clone(),
            user_name: ctx.user.clone(),
            namespace: ctx.namespace.clone().filter(|n| !n.is_empty()),
            server: cluster.server.clone(),
            ca_pem: self.data_or_file(
                &cluster_what,
                "certificate-authority",
                cluster.certificate_authority_data.as_deref(),
                cluster.certificate_authority.as_deref(),
            )?,
            insecure_skip_tls_verify: cluster.insecure_skip_tls_verify.unwrap_or(false),
            tls_server_name: cluster.tls_server_name.clone(),
            client_cert_pem: self.data_or_file(
                &user_what,
                "client-certificate",
                user.client_certificate_data.as_deref(),
                user.client_certificate.as_deref(),
            )?,
            client_key_pem: self.data_or_file(
                &user_what,
                "client-key",
                user.client_key_data.as_deref(),
                user.client_key.as_deref(),
            )?,
            token: user.token.clone().filter(|t| !t.is_empty()),
        })
    }

    /// The current context's server URL.
    pub fn server(&self) -> Result<String, PkiError> {
        let resolved = self.resolve(None)?;
        if resolved.server.is_empty() {
            return Err(self.err(format!("cluster {:?} has no server", resolved.cluster_name)));
        }
        Ok(resolved.server)
    }

    /// The current context's CA bundle (PEM).
    pub fn ca_pem(&self) -> Result<String, PkiError> {
        let resolved = self.resolve(None)?;
        resolved.ca_pem.ok_or_else(|| {
            self.err(format!(
                "cluster {:?} has no certificate-authority-data or certificate-authority",
                resolved.cluster_name
            ))
        })
    }

    /// The current context's client certificate (PEM).
    pub fn client_cert_pem(&self) -> Result<String, PkiError> {
        let resolved = self.resolve(None)?;
        resolved.client_cert_pem.ok_or_else(|| {
            self.err(format!("user {:?} has no client-certificate-data or client-certificate", resolved.user_name))
        })
    }

    /// The current context's client key (PEM).
    pub fn client_key_pem(&self) -> Result<String, PkiError> {
        let resolved = self.resolve(None)?;
        resolved
            .client_key_pem
            .ok_or_else(|| self.err(format!("user {:?} has no client-key-data or client-key", resolved.user_name)))
    }

    /// `*-data` (base64) wins over the file path variant, like client-go.
    fn data_or_file(
        &self,
        owner: &str,
        field: &str,
        data: Option<&str>,
        file: Option<&str>,
    ) -> Result<Option<String>, PkiError> {
        if let Some(data) = data.filter(|d| !d.trim().is_empty()) {
            let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .map_err(|e| self.err(format!("{owner}: {field}-data is not valid base64: {e}")))?;
            let text =
                String::from_utf8(bytes).map_err(|_| self.err(format!("{owner}: {field}-data is not PEM text")))?;
            return Ok(Some(text));
        }
        if let Some(file) = file.filter(|f| !f.is_empty()) {
            let path = self.relative_path(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| self.err(format!("{owner}: {field} {}: {e}", path.display())))?;
            return Ok(Some(text));
        }
        Ok(None)
    }

    fn relative_path(&self, file: &str) -> PathBuf {
        let p = Path::new(file);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        match self.source.as_deref().and_then(Path::parent) {
            Some(dir) => dir.join(p),
            None => p.to_path_buf(),
        }
    }

    fn origin(&self) -> String {
        display_origin(self.source.as_deref())
    }

    fn err(&self, message: impl Into<String>) -> PkiError {
        PkiError::Kubeconfig { path: self.origin(), message: message.into() }
    }
}

fn display_origin(origin: Option<&Path>) -> String {
    origin.map(|p| p.display().to_string()).unwrap_or_else(|| "<in memory>".to_string())
}

/// Writes `contents` to `path` atomically with mode 0600 (on Unix): a temporary file in the
/// same directory is written, synced and renamed over `path`. Useful for keys too.
pub fn write_private_file_atomically(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(PkiError::io("creating directory", &dir))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| PkiError::Io {
            action: "writing",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(PkiError::io("creating", &tmp))?;
        #[cfg(unix)]
        {
            // The mode above only applies to new files; a stale temp file keeps its own.
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(PkiError::io("setting permissions of", &tmp))?;
        }
        file.write_all(contents).map_err(PkiError::io("writing", &tmp))?;
        file.sync_all().map_err(PkiError::io("syncing", &tmp))?;
        std::fs::rename(&tmp, path).map_err(PkiError::io("renaming temporary file to", path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
