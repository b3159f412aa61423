//! Nothing acknowledged is lost when the hub is killed with SIGKILL mid-stream.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use crate::common::Server;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_writes_loses_no_acknowledged_write() {
    let mut hub = Server::hub();
    let client = hub.client().await;
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{writer}-{i}");
                let lease: Lease =
                    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"holderIdentity": name}}))
                        .expect("lease");
                match leases.create(&PostParams::default(), &lease).await {
                    Ok(_) => {
                        acknowledged.lock().expect("lock").insert(name);
                    }
                    Err(_) => break,
                }
            }
        }));
    }
    // Let writes stream, then kill without warning.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while acknowledged.lock().expect("lock").len() < 300 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hub.kill9();
    for writer in writers {
        let _ = writer.await;
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() >= 50, "the writers made progress before the kill ({} writes)", acknowledged.len());

    hub.start();
    let client = hub.client().await;
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let stored: BTreeSet<String> = leases
        .list(&ListParams::default())
        .await
        .expect("list after restart")
        .items
        .into_iter()
        .filter_map(|l| l.metadata.name)
        .collect();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
}
