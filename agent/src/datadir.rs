//! The agent's data directory (docs/registration.md, "Agent data directory"):
//!
//! - `agent.json`: cluster name, agent ID, hub URLs, and the name of a CSR still waiting for
//!   acceptance (so that a restarted agent resumes waiting on it instead of asking again);
//! - `agent.key` (0600): the private key, generated here, never sent anywhere;
//! - `agent.crt`: the certificate the hub signed;
//! - `hub-ca.crt`: the pinned hub CA;
//! - `hub.kubeconfig`: all of the above inline, so kubectl works as the agent.
//!
//! Two files cannot be replaced atomically together, so `hub.kubeconfig` (one atomic write)
//! is the source of truth for the identity: it is written first, and `agent.key` and
//! `agent.crt` are brought back in line with it at start-up if a crash fell in between.

use std::path::{Path, PathBuf};

use flotilla_pki::{CertInfo, Kubeconfig, write_private_file_atomically};
use serde::{Deserialize, Serialize};

use crate::AgentError;

pub const AGENT_JSON: &str = "agent.json";
pub const AGENT_KEY: &str = "agent.key";
pub const AGENT_CRT: &str = "agent.crt";
pub const HUB_CA: &str = "hub-ca.crt";
pub const HUB_KUBECONFIG: &str = "hub.kubeconfig";

/// `agent.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRecord {
    pub cluster_name: String,
    pub agent_id: String,
    #[serde(default)]
    pub hub_urls: Vec<String>,
    /// A bootstrap CSR created and not answered yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_csr: Option<String>,
}

/// The agent's mutual-TLS identity on the hub.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    pub hub_url: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub info: CertInfo,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("hub_url", &self.hub_url)
            .field("common_name", &self.info.common_name)
            .field("not_after", &self.info.not_after)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Identity {
    pub fn new(hub_url: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Identity, AgentError> {
        Ok(Identity {
            hub_url: hub_url.to_string(),
            ca_pem: ca_pem.to_string(),
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            info: flotilla_pki::cert_info(cert_pem)?,
        })
    }

    /// The kubeconfig kubectl and the agent use: cluster `hub`, user `<cluster>-agent`.
    pub fn kubeconfig(&self, cluster_name: &str) -> Kubeconfig {
        Kubeconfig::for_client_cert(
            "hub",
            &self.hub_url,
            &self.ca_pem,
            &self.cert_pem,
            &self.key_pem,
            &format!("{cluster_name}-agent"),
        )
    }
}

#[derive(Debug, Clone)]
pub struct DataDir {
    dir: PathBuf,
}

impl DataDir {
    pub fn new(dir: impl Into<PathBuf>) -> DataDir {
        DataDir { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Creates the directory, private to its owner.
    pub fn ensure(&self) -> Result<(), AgentError> {
        std::fs::create_dir_all(&self.dir).map_err(AgentError::io("creating", &self.dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(AgentError::io("setting permissions of", &self.dir))?;
        }
        Ok(())
    }

    fn read_optional(&self, file: &str) -> Result<Option<String>, AgentError> {
        let path = self.path(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AgentError::Io { action: "reading", path, source: e }),
        }
    }

    fn write(&self, file: &str, contents: &str) -> Result<(), AgentError> {
        Ok(write_private_file_atomically(&self.path(file), contents.as_bytes())?)
    }

    pub fn load_record(&self) -> Result<Option<AgentRecord>, AgentError> {
        let Some(text) = self.read_optional(AGENT_JSON)? else { return Ok(None) };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| AgentError::Corrupt { path: self.path(AGENT_JSON), reason: e.to_string() })
    }

    pub fn save_record(&self, record: &AgentRecord) -> Result<(), AgentError> {
        let text = serde_json::to_string_pretty(record)
            .map_err(|e| AgentError::Corrupt { path: self.path(AGENT_JSON), reason: e.to_string() })?;
        self.write(AGENT_JSON, &format!("{text}\n"))
    }

    pub fn load_hub_ca(&self) -> Result<Option<String>, AgentError> {
        self.read_optional(HUB_CA)
    }

    pub fn save_hub_ca(&self, pem: &str) -> Result<(), AgentError> {
        self.write(HUB_CA, pem)
    }

    /// The key of a bootstrap still in progress (`agent.key` without an identity).
    pub fn load_pending_key(&self) -> Result<Option<String>, AgentError> {
        if self.path(HUB_KUBECONFIG).exists() { Ok(None) } else { self.read_optional(AGENT_KEY) }
    }

    /// Saves the bootstrap key before the CSR for it exists, so that a crash in between
    /// leaves a key to resume with rather than a CSR nobody can use.
    pub fn save_pending_key(&self, key_pem: &str) -> Result<(), AgentError> {
        self.write(AGENT_KEY, key_pem)
    }

    /// The identity from `hub.kubeconfig`, if there is one.
    pub fn load_identity(&self) -> Result<Option<Identity>, AgentError> {
        let path = self.path(HUB_KUBECONFIG);
        if !path.exists() {
            return Ok(None);
        }
        let config = Kubeconfig::load(&path)?;
        let resolved = config.resolve(None)?;
        let corrupt = |what: &str| AgentError::Corrupt { path: path.clone(), reason: format!("no {what}") };
        let ca = resolved.ca_pem.ok_or_else(|| corrupt("certificate-authority-data"))?;
        let cert = resolved.client_cert_pem.ok_or_else(|| corrupt("client-certificate-data"))?;
        let key = resolved.client_key_pem.ok_or_else(|| corrupt("client-key-data"))?;
        Ok(Some(Identity::new(&resolved.server, &ca, &cert, &key)?))
    }

    /// Writes the identity: `hub.kubeconfig` first (the source of truth), then the key, the
    /// certificate and the CA as separate files.
    pub fn save_identity(&self, identity: &Identity, cluster_name: &str) -> Result<(), AgentError> {
        identity.kubeconfig(cluster_name).write(self.path(HUB_KUBECONFIG))?;
        self.sync_files(identity)
    }

    /// Brings `agent.key`, `agent.crt` and `hub-ca.crt` in line with the identity (after a
    /// crash between writes), touching only files that differ.
    pub fn sync_files(&self, identity: &Identity) -> Result<(), AgentError> {
        for (file, contents) in
            [(AGENT_KEY, &identity.key_pem), (AGENT_CRT, &identity.cert_pem), (HUB_CA, &identity.ca_pem)]
        {
            if self.read_optional(file)?.as_deref() != Some(contents.as_str()) {
                self.write(file, contents)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    #[test]
    fn identity_round_trips_and_files_resync() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("agent"));
        dir.ensure().unwrap();
        assert!(dir.load_identity().unwrap().is_none());
        assert!(dir.load_record().unwrap().is_none());

        let record = AgentRecord {
            cluster_name: "c1".into(),
            agent_id: "abcde12345".into(),
            hub_urls: vec!["https://127.0.0.1:6443".into()],
            pending_csr: Some("c1-xyz".into()),
        };
        dir.save_record(&record).unwrap();
        assert_eq!(dir.load_record().unwrap(), Some(record));

        dir.save_pending_key("pending key").unwrap();
        assert_eq!(dir.load_pending_key().unwrap().as_deref(), Some("pending key"));

        let ca = flotilla_pki::CertificateAuthority::generate("hub", Duration::from_secs(3600)).unwrap();
        let cert = ca
            .issue_client_cert("system:open-cluster-management:c1:abcde12345", &[], Duration::from_secs(600))
            .unwrap();
        let identity = Identity::new("https://127.0.0.1:6443", ca.cert_pem(), &cert.cert_pem, &cert.key_pem).unwrap();
        dir.save_identity(&identity, "c1").unwrap();
        assert_eq!(dir.load_identity().unwrap(), Some(identity.clone()));
        assert!(dir.load_pending_key().unwrap().is_none());

        // A crash after hub.kubeconfig but before agent.crt: start-up repairs it.
        std::fs::write(dir.path(AGENT_CRT), "stale").unwrap();
        dir.sync_files(&identity).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path(AGENT_CRT)).unwrap(), cert.cert_pem);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path(AGENT_KEY)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(dir.dir()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }
}
