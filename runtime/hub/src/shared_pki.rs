//! One CA for every hub replica on a shared store.
//!
//! Agents trust the hub's serving certificate through the CA in their kubeconfig and present
//! client certificates the CA signed, so every replica must use the same CA to serve every
//! agent. The first replica to start publishes the CA of its data directory (from
//! `hub init`) under [`CA_KEY`] with a create-if-absent transaction; every replica then
//! adopts the published CA, issuing its serving and admin certificates again under it when
//! its data directory held another one.
//!
//! The CA's private key is thus in the store: etcd must be protected accordingly (TLS
//! between members and clients, no access but the hubs').

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use flotilla_apiserver::host::Layout;
use flotilla_store::{Compare, Op, Store, Txn, TxnResult};
use serde::{Deserialize, Serialize};

/// Store key of the shared CA (outside the API's `/registry/` key space).
pub const CA_KEY: &str = "/flotilla/hub/ca";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SharedCa {
    cert_pem: String,
    key_pem: String,
}

/// Publishes this data directory's CA if the store has none, else installs the store's CA
/// in the data directory. Returns true when the local CA was replaced.
pub async fn adopt_shared_ca(store: &Arc<dyn Store>, data_dir: &Path) -> anyhow::Result<bool> {
    let layout = Layout::new(data_dir);
    for _ in 0..3 {
        if let Some(kv) = store.get(CA_KEY).await.context("reading the shared CA from the store")? {
            let shared: SharedCa = serde_json::from_slice(&kv.value)
                .with_context(|| format!("the shared CA under {CA_KEY} is not valid JSON"))?;
            let local = std::fs::read_to_string(layout.ca_cert()).ok();
            if local.as_deref() == Some(shared.cert_pem.as_str()) {
                return Ok(false);
            }
            install(&layout, &shared)?;
            tracing::info!(data_dir = %data_dir.display(), "adopted the hub CA shared through the store");
            return Ok(true);
        }
        let cert_pem = std::fs::read_to_string(layout.ca_cert()).with_context(|| {
            format!(
                "{} missing: run `flotilla hub init --data-dir {}` first",
                layout.ca_cert().display(),
                data_dir.display()
            )
        })?;
        let key_pem = std::fs::read_to_string(layout.ca_key())
            .with_context(|| format!("{} missing: the hub CA is incomplete", layout.ca_key().display()))?;
        let value = serde_json::to_vec(&SharedCa { cert_pem, key_pem })?;
        let publish = Txn {
            compares: vec![Compare::ModRevision(CA_KEY.to_owned(), 0)],
            ops: vec![Op::Put { key: CA_KEY.to_owned(), value: Bytes::from(value) }],
        };
        match store.txn(publish).await.context("publishing the hub CA")? {
            TxnResult::Succeeded { .. } => {
                tracing::info!("published this hub's CA for the other replicas");
                return Ok(false);
            }
            // Another replica published first: adopt theirs on the next pass.
            TxnResult::Failed { .. } => continue,
        }
    }
    bail!("could not agree on a shared hub CA (the key {CA_KEY} kept changing)")
}

fn install(layout: &Layout, shared: &SharedCa) -> anyhow::Result<()> {
    write_private(&layout.ca_key(), &shared.key_pem)?;
    write_private(&layout.ca_cert(), &shared.cert_pem)?;
    // Certificates issued by the replaced CA would not verify: remove them so the server
    // issues them again under the shared CA when it starts.
    for path in [layout.serving_cert(), layout.serving_key(), layout.admin_cert(), layout.admin_key()] {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }
    Ok(())
}

/// Writes a file readable by the owner only, replacing it atomically (write, sync, rename).
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("shared.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
