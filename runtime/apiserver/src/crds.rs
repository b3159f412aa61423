//! CustomResourceDefinitions: a stored CRD becomes served resources (and stops being
//! served when deleted), so the simulated spoke can install CRDs like a cluster.

use std::time::Duration;

use flotilla_apimachinery::crd::resource_defs_from_crd;
use flotilla_store::{EventKind, WatchItem};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::objects::{self, meta};
use crate::storage::{Storage, WriteOptions};

const GROUP: &str = "apiextensions.k8s.io";
const PLURAL: &str = "customresourcedefinitions";

/// Serves every stored CRD and keeps the registry in step with the store until shutdown.
pub async fn run(storage: Storage, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Some(crd_resource) = storage.registry.get(GROUP, "v1", PLURAL) else {
        return;
    };
    loop {
        let listed = match storage.list(&crd_resource, None, &Default::default()).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list CRDs; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for crd in &listed.items {
            establish(&storage, crd).await;
        }
        let prefix = objects::kind_prefix(&crd_resource);
        let mut events = match storage.store.watch(&prefix, listed.resource_version, Duration::from_secs(30)).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch CRDs; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                item = events.next() => match item {
                    Some(Ok(WatchItem::Event(ev))) => {
                        let Ok(crd) = objects::decode(&crd_resource, &ev.kv) else { continue };
                        match ev.kind {
                            EventKind::Put => establish(&storage, &crd).await,
                            EventKind::Delete => withdraw(&storage, &crd).await,
                        }
                    }
                    Some(Ok(WatchItem::Progress(_))) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "CRD watch ended; relisting");
                        break;
                    }
                    None => break,
                }
            }
        }
    }
}

async fn establish(storage: &Storage, crd: &Value) {
    let name = meta::name(crd).to_string();
    if meta::deletion_timestamp(crd).is_some() {
        withdraw(storage, crd).await;
        return;
    }
    let (status, reason, message) = match resource_defs_from_crd(crd) {
        Ok(defs) => {
            let mut failure = None;
            for def in defs {
                if let Err(e) = storage.registry.add(def) {
                    failure = Some(e.to_string());
                }
            }
            match failure {
                None => ("True", "InitialNamesAccepted", "the initial names have been accepted".to_string()),
                Some(e) => ("False", "InvalidSchema", e),
            }
        }
        Err(e) => ("False", "Invalid", e),
    };
    let already = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Established" && c["status"] == status));
    if already {
        return;
    }
    let now = objects::now_rfc3339();
    let mut updated = crd.clone();
    updated["status"] = json!({
        "conditions": [
            {"type": "NamesAccepted", "status": status, "reason": reason, "message": message, "lastTransitionTime": now},
            {"type": "Established", "status": status, "reason": reason, "message": message, "lastTransitionTime": now},
        ],
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(Value::Null),
        "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array).map(|versions| {
            versions.iter().filter(|v| v["storage"] == true).filter_map(|v| v["name"].as_str()).map(|s| json!(s)).collect::<Vec<_>>()
        }).unwrap_or_default(),
    });
    let Some(res) = storage.registry.get(GROUP, "v1", PLURAL) else { return };
    let opts = WriteOptions::manager("flotilla-crd-controller");
    if let Err(e) = storage.update(&res, None, &name, updated, Some("status"), &opts).await {
        tracing::debug!(crd = %name, error = %e, "CRD status update will be retried on the next change");
    }
}

async fn withdraw(storage: &Storage, crd: &Value) {
    let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default().to_string();
    let plural = crd.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default().to_string();
    if group.is_empty() || plural.is_empty() {
        return;
    }
    // Custom resources go with their definition, as in Kubernetes.
    if let Some(res) = storage.registry.by_storage(&group, &plural) {
        let prefix = objects::kind_prefix(&res);
        loop {
            let range = match storage.store.range(&prefix, None, Some(512)).await {
                Ok(range) => range,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list custom resources to remove");
                    break;
                }
            };
            if range.kvs.is_empty() {
                break;
            }
            let ops = range.kvs.iter().map(|kv| flotilla_store::Op::Delete { key: kv.key.clone() }).collect();
            if let Err(e) = storage.store.txn(flotilla_store::Txn { compares: vec![], ops }).await {
                tracing::warn!(error = %e, "cannot remove custom resources");
                break;
            }
        }
    }
    storage.registry.remove(&group, &plural);
}
