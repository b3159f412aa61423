//! High availability: two hub replicas as processes on a three-member etcd cluster (Debian's
//! `etcd-server`, started on loopback ports). Kill the replica leading the controllers: the
//! other takes them over; kill an etcd member: writes continue.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flotilla_store::etcd_testing::EtcdCluster;
use flotilla_store::{EtcdStore, EtcdStoreOptions};

use crate::common::{Process, eventually, flotilla_bin, free_port, kubectl, stderr, stdout};

const ELECTION_KEY: &str = "/flotilla/leader/controllers";

pub(crate) struct Replica {
    pub(crate) data: PathBuf,
    pub(crate) addr: SocketAddr,
    pub(crate) process: Process,
}

impl Replica {
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.data.join("admin.kubeconfig")
    }

    pub(crate) fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub(crate) fn kubectl(&self, args: &[&str]) -> std::process::Output {
        kubectl(&self.kubeconfig(), args)
    }

    /// `flotilla --kubeconfig ADMIN ARGS`.
    pub(crate) fn flotilla(&self, args: &[&str]) -> std::process::Output {
        Command::new(flotilla_bin())
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .output()
            .expect("run flotilla")
    }
}

fn start_replica(root: &Path, name: &str, endpoints: &str) -> Replica {
    start_replica_with(root, name, endpoints, |_| {})
}

/// A replica whose `hub.json` `configure` edits between init and serve.
pub(crate) fn start_replica_with(
    root: &Path,
    name: &str,
    endpoints: &str,
    configure: impl FnOnce(&mut serde_json::Value),
) -> Replica {
    let data = root.join(name);
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let out = Command::new(flotilla_bin())
        .args(["hub", "init", "--data-dir"])
        .arg(&data)
        .args(["--listen", &addr.to_string()])
        .output()
        .expect("run flotilla hub init");
    assert!(out.status.success(), "hub init: {}", stderr(&out));
    let config_path = data.join("hub.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("read hub.json")).expect("hub.json");
    configure(&mut config);
    std::fs::write(&config_path, serde_json::to_string_pretty(&config).expect("json")).expect("write hub.json");
    let data_arg = data.display().to_string();
    let process = Process::flotilla(
        &["hub", "serve", "--data-dir", &data_arg, "--store", "etcd", "--etcd-endpoints", endpoints],
        root.join(format!("{name}.log")),
    );
    let mut replica = Replica { data, addr, process };
    let ready = eventually(Duration::from_secs(60), || {
        if let Some(status) = replica.process.exited() {
            panic!("replica {name} exited with {status}: {}", replica.process.log());
        }
        replica.kubectl(&["get", "--raw", "/readyz"]).status.success().then_some(())
    });
    assert!(ready.is_some(), "replica {name} never became ready: {}", replica.process.log());
    replica
}

/// The identity stored in the election key (`ADDR/pid-N`), if someone leads.
async fn leader(store: &EtcdStore) -> Option<String> {
    let mut client = store.client();
    let response = client.get(ELECTION_KEY, None).await.ok()?;
    response.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_fail_over_between_hub_replicas_on_etcd() {
    let mut etcd = EtcdCluster::start(3).await.unwrap_or_else(|e| panic!("starting etcd: {e}"));
    let endpoints = etcd.endpoints().join(",");
    let root = tempfile::tempdir().expect("tempdir");
    let a = start_replica(root.path(), "a", &endpoints);
    let b = start_replica(root.path(), "b", &endpoints);
    let observer = EtcdStore::connect(EtcdStoreOptions { endpoints: etcd.endpoints(), ..Default::default() })
        .await
        .unwrap_or_else(|e| panic!("observer store: {e}"));

    // Both serve one store: what one writes, the other reads.
    let out = a.kubectl(&["create", "namespace", "written-on-a"]);
    assert!(out.status.success(), "create on a: {}", stderr(&out));
    let out = b.kubectl(&["get", "namespace", "written-on-a", "-o", "name"]);
    assert!(out.status.success(), "read on b: {}", stderr(&out));

    // One CA: b's admin credentials verify a's serving certificate and are accepted by a.
    let server_a = format!("--server=https://{}", a.addr);
    let out = b.kubectl(&[&server_a, "get", "namespace", "written-on-a", "-o", "name"]);
    assert!(out.status.success(), "b's kubeconfig against a (shared CA): {}", stderr(&out));

    // Exactly one replica leads; its controllers created the built-in cluster sets.
    let deadline = Instant::now() + Duration::from_secs(20);
    let leading = loop {
        if let Some(id) = leader(&observer).await
            && a.kubectl(&["get", "managedclusterset", "global", "-o", "name"]).status.success()
        {
            break id;
        }
        assert!(Instant::now() < deadline, "no leader with running controllers within 20 s: {}", a.process.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (mut dead, survivor) = if leading.starts_with(&a.addr.to_string()) { (a, b) } else { (b, a) };
    assert!(leading.starts_with(&dead.addr.to_string()), "leader {leading:?} is one of the replicas");

    // Kill the leader without a chance to resign; remove what its controllers keep in place.
    dead.process.kill();
    let killed = Instant::now();
    let out = survivor.kubectl(&["delete", "managedclusterset", "global"]);
    assert!(out.status.success(), "delete on the survivor: {}", stderr(&out));
    let recreated = eventually(Duration::from_secs(20), || {
        let out = survivor.kubectl(&["get", "managedclusterset", "global", "-o", "name"]);
        out.status.success().then(|| stdout(&out))
    });
    assert!(
        recreated.is_some(),
        "controllers did not resume on the survivor within 20 s\n--- survivor log ---\n{}",
        survivor.process.log()
    );
    let failover = killed.elapsed();
    let now_leading = leader(&observer).await.expect("a leader after failover");
    assert!(now_leading.starts_with(&survivor.addr.to_string()), "survivor leads, not {now_leading:?}");
    assert!(failover < Duration::from_secs(15), "controllers resumed {failover:?} after the leader died");

    // Lose one etcd member of three: writes through the surviving replica continue.
    etcd.kill(0);
    for i in 0..5 {
        let name = format!("after-member-loss-{i}");
        let created = eventually(Duration::from_secs(15), || {
            survivor
                .kubectl(&["create", "namespace", &name])
                .status
                .success()
                .then_some(())
                .or_else(|| survivor.kubectl(&["get", "namespace", &name]).status.success().then_some(()))
        });
        assert!(created.is_some(), "write {i} after losing an etcd member: {}", survivor.process.log());
    }
    let out = survivor.kubectl(&["get", "namespaces", "-o", "name"]);
    let listed = stdout(&out);
    for i in 0..5 {
        assert!(listed.contains(&format!("namespace/after-member-loss-{i}")), "{listed}");
    }
    eprintln!("controllers resumed {failover:?} after the leading replica was killed");
}
