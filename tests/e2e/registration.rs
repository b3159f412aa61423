//! Registration with every party a process (docs/registration.md): a `flotilla hub serve`,
//! agents as `flotilla agent join --simulated` processes, the operator's `flotilla token`,
//! `accept`, `deny`, `get` and `delete`, and kubectl holding an agent's hub kubeconfig.
//! The same rules are tested in-process in runtime/registration and agent/; here the real
//! binary, its exit codes and its messages are what is checked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::{Process, Server, eventually, kubectl, kubectl_stdin, stderr, stdout};

const SET_LABEL: &str = "cluster.open-cluster-management.io/clusterset";
const UNREACHABLE: &str = "cluster.open-cluster-management.io/unreachable";
const OWN_OBJECTS_ONLY: &str = "may only reach its own cluster's objects";
/// Generous: two cores shared with the other end-to-end tests.
const DEADLINE: Duration = Duration::from_secs(60);

/// What `flotilla token create` printed.
struct Join {
    token: String,
    hub_url: String,
    ca_hash: String,
}

fn create_token(hub: &Server, ttl: &str) -> Join {
    let out = hub.flotilla(&["token", "create", "--ttl", ttl, "--description", "e2e"]);
    assert!(out.status.success(), "token create: {}", stderr(&out));
    let printed = stdout(&out);
    let token = printed.lines().find_map(|l| l.strip_prefix("token: ")).expect("a token line").to_string();
    let command = printed.lines().map(str::trim).find(|l| l.starts_with("flotilla agent join")).expect("join command");
    let words: Vec<&str> = command.split_whitespace().collect();
    let after = |flag: &str| {
        let i = words.iter().position(|w| *w == flag).unwrap_or_else(|| panic!("{flag} in {command}"));
        words[i + 1].to_string()
    };
    assert_eq!(after("--token"), token, "{command}");
    assert_eq!(after("--hub"), format!("https://{}", hub.addr), "{command}");
    let ca_hash = after("--hub-ca-hash");
    assert!(ca_hash.starts_with("sha256:") && ca_hash.len() == 7 + 64, "{command}");
    Join { token, hub_url: after("--hub"), ca_hash }
}

/// An agent process with its data directory.
struct Agent {
    name: String,
    dir: PathBuf,
    process: Process,
}

impl Agent {
    /// `flotilla agent join ... --simulated` with 2-second leases. `token`/`hash` `None`:
    /// the flag is left out (a data directory with an identity needs neither).
    fn start(base: &Path, name: &str, hub_url: &str, token: Option<&str>, hash: Option<&str>) -> Agent {
        Agent::start_in(base.join(name), name, hub_url, token, hash)
    }

    fn start_in(dir: PathBuf, name: &str, hub_url: &str, token: Option<&str>, hash: Option<&str>) -> Agent {
        let dir_text = dir.display().to_string();
        let mut args = vec!["agent", "join", "--hub", hub_url, "--cluster-name", name, "--simulated"];
        args.extend(["--data-dir", &dir_text, "--lease-duration-seconds", "2"]);
        if let Some(token) = token {
            args.extend(["--token", token]);
        }
        if let Some(hash) = hash {
            args.extend(["--hub-ca-hash", hash]);
        }
        let log = dir.with_extension("log");
        std::fs::create_dir_all(dir.parent().expect("parent")).expect("agents dir");
        Agent { name: name.to_string(), process: Process::flotilla(&args, log), dir }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("hub.kubeconfig")
    }

    /// kubectl as this agent, with its hub kubeconfig.
    fn kubectl(&self, args: &[&str]) -> std::process::Output {
        kubectl(&self.kubeconfig(), args)
    }

    /// The agent must end with a failure; returns its log (stderr).
    fn fails(&mut self) -> String {
        let status = self
            .process
            .wait_exit(DEADLINE)
            .unwrap_or_else(|| panic!("agent {} did not give up:\n{}", self.name, self.process.log()));
        let log = self.process.log();
        assert!(!status.success(), "agent {} exited with {status}:\n{log}", self.name);
        log
    }
}

/// A request the agent must be refused: exit non-zero, `Forbidden` and `reason` in stderr.
fn forbidden(out: &std::process::Output, reason: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "allowed: {}", stdout(out));
    // kubectl words it "Error from server (Forbidden): ..." or, for protobuf requests,
    // "error: failed to create ...: ... is forbidden: ...".
    assert!(err.contains("(Forbidden)") || err.contains(" is forbidden: "), "{err}");
    assert!(err.contains(reason), "expected {reason:?} in: {err}");
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn managed_cluster(hub: &Server, name: &str) -> Option<Value> {
    let out = hub.kubectl(&["get", "managedcluster", name, "-o", "json"]);
    out.status.success().then(|| json(&stdout(&out)))
}

fn condition<'a>(mc: &'a Value, type_: &str) -> Option<&'a Value> {
    mc.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == type_)
}

fn condition_status(mc: &Value, type_: &str) -> String {
    condition(mc, type_).and_then(|c| c["status"].as_str()).unwrap_or("").to_string()
}

fn tainted(mc: &Value, key: &str) -> bool {
    mc.pointer("/spec/taints").and_then(Value::as_array).is_some_and(|t| t.iter().any(|t| t["key"] == key))
}

/// Waits until `name`'s ManagedCluster satisfies `check`; panics with the last state.
fn wait_cluster(hub: &Server, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = None;
    eventually(DEADLINE, || {
        last = managed_cluster(hub, name);
        last.clone().filter(|mc| check(mc))
    })
    .unwrap_or_else(|| panic!("{name}: {what}; last seen: {last:#?}\n--- hub log ---\n{}", hub.log()))
}

fn csr_names(hub: &Server, cluster: &str) -> Vec<String> {
    let selector = format!("open-cluster-management.io/cluster-name={cluster}");
    stdout(&hub.kubectl(&["get", "csr", "-l", &selector, "-o", "name"])).lines().map(str::to_string).collect()
}

fn available(mc: &Value) -> bool {
    condition_status(mc, "ManagedClusterConditionAvailable") == "True" && !tainted(mc, UNREACHABLE)
}

#[test]
fn agents_join_as_processes_and_reach_only_their_own_cluster() {
    // Leases of 2 s and a grace of 3 durations: unreachable 6 s after the last renewal.
    let hub = Server::hub_with(|config| config["leaseGraceFactor"] = 3.into());
    let agents_dir = tempfile::tempdir().expect("tempdir");
    let join = create_token(&hub, "10m");
    let (token, hash) = (Some(join.token.as_str()), Some(join.ca_hash.as_str()));
    let mut a = Agent::start(agents_dir.path(), "cluster-a", &join.hub_url, token, hash);
    let b = Agent::start(agents_dir.path(), "cluster-b", &join.hub_url, token, hash);

    // Both ask; nothing is accepted until the operator says so.
    for agent in [&a, &b] {
        eventually(DEADLINE, || (!csr_names(&hub, &agent.name).is_empty()).then_some(()))
            .unwrap_or_else(|| panic!("{} never asked for a certificate:\n{}", agent.name, agent.process.log()));
        let mc = managed_cluster(&hub, &agent.name).expect("the agent created its ManagedCluster");
        assert_eq!(mc["spec"]["hubAcceptsClient"], false, "{mc}");
        assert_eq!(mc["spec"]["leaseDurationSeconds"], 2, "{mc}");
        assert!(!agent.kubeconfig().exists());
    }
    let out = hub.flotilla(&["accept", "cluster-a", "cluster-b"]);
    assert!(out.status.success(), "accept: {}", stderr(&out));
    for name in ["cluster-a", "cluster-b"] {
        let line = format!("managed cluster \"{name}\" accepted, approved 1 certificate request");
        assert!(stdout(&out).contains(&line), "{}", stdout(&out));
    }
    for agent in [&a, &b] {
        let mc = wait_cluster(&hub, &agent.name, "accepted, joined and available", |mc| {
            ["HubAcceptedManagedCluster", "ManagedClusterJoined", "ManagedClusterConditionAvailable"]
                .iter()
                .all(|t| condition_status(mc, t) == "True")
        });
        assert_eq!(condition(&mc, "HubAcceptedManagedCluster").expect("accepted")["reason"], "HubClusterAdminAccepted");
        assert_eq!(mc["metadata"]["labels"][SET_LABEL], "default", "{mc}");
        let ns = json(&hub.kubectl_ok(&["get", "namespace", &agent.name, "-o", "json"]));
        assert_eq!(ns["metadata"]["labels"]["open-cluster-management.io/cluster-name"], agent.name.as_str());
        assert!(agent.kubeconfig().exists(), "{}", agent.process.log());
        assert!(agent.process.log().contains("the hub accepted the cluster"), "{}", agent.process.log());
    }

    // `flotilla get clusters`: the operator's view, with labels; kubectl keeps OCM's columns.
    for kind in ["clusters", "cluster", "mcl", "mcls", "managedclusters"] {
        let out = hub.flotilla(&["get", kind]);
        assert!(out.status.success(), "get {kind}: {}", stderr(&out));
        let table = stdout(&out);
        let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[0], ["NAME", "HUB", "ACCEPTED", "JOINED", "AVAILABLE", "AGE", "LABELS"], "{kind}:\n{table}");
        for (row, name) in rows[1..].iter().zip(["cluster-a", "cluster-b"]) {
            let label = format!("{SET_LABEL}=default");
            assert_eq!(
                [row[0], row[1], row[2], row[3], row[5]],
                [name, "true", "True", "True", label.as_str()],
                "{table}"
            );
        }
        assert_eq!(rows.len(), 3, "{table}");
    }
    let wide = stdout(&hub.flotilla(&["get", "clusters", "-o", "wide"]));
    assert!(wide.lines().next().is_some_and(|h| h.contains("MANAGED CLUSTER URLS") && h.ends_with("LABELS")), "{wide}");
    let ocm = hub.kubectl_ok(&["get", "managedclusters"]);
    let header: Vec<&str> = ocm.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "HUB", "ACCEPTED", "MANAGED", "CLUSTER", "URLS", "JOINED", "AVAILABLE", "AGE"]);

    // Agent A's certificate: its own cluster, nothing else.
    let own = json(&stdout(&a.kubectl(&["get", "managedcluster", "cluster-a", "-o", "json"])));
    assert_eq!(own["metadata"]["name"], "cluster-a");
    assert!(a.kubectl(&["get", "manifestworks", "-n", "cluster-a"]).status.success(), "its own works");
    forbidden(&a.kubectl(&["get", "managedcluster", "cluster-b"]), OWN_OBJECTS_ONLY);
    forbidden(&a.kubectl(&["get", "managedclusters"]), OWN_OBJECTS_ONLY);
    forbidden(&a.kubectl(&["get", "manifestworks", "-n", "cluster-b"]), OWN_OBJECTS_ONLY);
    forbidden(&a.kubectl(&["get", "lease", "managed-cluster-lease", "-n", "cluster-b"]), OWN_OBJECTS_ONLY);
    forbidden(&a.kubectl(&["delete", "lease", "managed-cluster-lease", "-n", "cluster-b"]), OWN_OBJECTS_ONLY);
    forbidden(&a.kubectl(&["label", "managedcluster", "cluster-b", "stolen=yes"]), OWN_OBJECTS_ONLY);
    forbidden(&a.kubectl(&["create", "namespace", "stolen"]), OWN_OBJECTS_ONLY);
    forbidden(&a.kubectl(&["get", "bootstraptokens"]), OWN_OBJECTS_ONLY);
    for ns in ["cluster-b", "cluster-a"] {
        let work = format!(
            "apiVersion: work.open-cluster-management.io/v1\nkind: ManifestWork\nmetadata:\n  name: stolen\n  \
             namespace: {ns}\nspec:\n  workload:\n    manifests: []\n"
        );
        forbidden(&kubectl_stdin(&a.kubeconfig(), &["create", "-f", "-"], &work), OWN_OBJECTS_ONLY);
    }
    // ConfigMaps: refused where the hub serves them, unknown where it does not.
    let served = hub.kubectl(&["get", "configmaps", "-n", "default"]).status.success();
    let out = a.kubectl(&["create", "configmap", "stolen", "-n", "cluster-a", "--from-literal=k=v"]);
    if served {
        forbidden(&out, OWN_OBJECTS_ONLY);
    } else {
        assert!(!out.status.success(), "{}", stdout(&out));
    }
    // Nor can it accept, deny or untaint, not even its own cluster (OCM's webhooks).
    forbidden(
        &a.kubectl(&[
            "patch",
            "managedcluster",
            "cluster-a",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"hubAcceptsClient":false}}"#,
        ]),
        "cannot change spec.hubAcceptsClient",
    );
    // Nor ask for cluster B's identity: `flotilla accept cluster-b` would approve that.
    let (_key, request) = flotilla_pki::generate_key_and_csr(
        "system:open-cluster-management:cluster-b:stolen0001",
        &["system:open-cluster-management:cluster-b".to_string()],
    )
    .expect("csr");
    let csr = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  generateName: cluster-b-\n  \
         labels:\n    open-cluster-management.io/cluster-name: cluster-b\nspec:\n  request: {}\n  \
         signerName: kubernetes.io/kube-apiserver-client\n  usages: [digital signature, key encipherment, client auth]\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, request)
    );
    forbidden(
        &kubectl_stdin(&a.kubeconfig(), &["create", "-f", "-"], &csr),
        "may only request certificates of its own cluster",
    );
    // ... and nothing changed.
    let b_now = managed_cluster(&hub, "cluster-b").expect("cluster-b");
    assert!(b_now["metadata"]["labels"].get("stolen").is_none(), "{b_now}");
    assert!(stdout(&hub.kubectl(&["get", "manifestworks", "-A", "-o", "name"])).trim().is_empty());
    assert!(!hub.kubectl(&["get", "namespace", "stolen"]).status.success());
    assert_eq!(csr_names(&hub, "cluster-b").len(), 1, "only cluster-b's own request");
    hub.kubectl_ok(&["get", "lease", "managed-cluster-lease", "-n", "cluster-b"]);

    // Lease expiry: agent A paused -> Unknown plus the unreachable taint; B unaffected.
    a.process.signal("STOP");
    let mc = wait_cluster(&hub, "cluster-a", "unknown and tainted unreachable", |mc| {
        condition_status(mc, "ManagedClusterConditionAvailable") == "Unknown" && tainted(mc, UNREACHABLE)
    });
    let available_condition = condition(&mc, "ManagedClusterConditionAvailable").expect("available");
    assert_eq!(available_condition["reason"], "ManagedClusterLeaseUpdateStopped", "{mc}");
    wait_cluster(&hub, "cluster-b", "available while A is not (B renews its lease)", available);
    let out = hub.flotilla(&["get", "clusters", "cluster-a"]);
    assert!(stdout(&out).lines().nth(1).is_some_and(|row| row.contains("Unknown")), "{}", stdout(&out));
    // ... resumed -> Available again and untainted, promptly (the agent re-reports when its
    // lease renewal comes late, not only at its next status period of 60 s).
    a.process.signal("CONT");
    wait_cluster(&hub, "cluster-a", "available and untainted after SIGCONT", available);
    assert!(a.process.log().contains("the lease was renewed late"), "{}", a.process.log());

    // A restart with the data directory needs neither token nor CA hash, and no new CSR.
    a.process.kill();
    let mut a = Agent::start_in(a.dir.clone(), "cluster-a", &join.hub_url, None, None);
    eventually(DEADLINE, || a.process.log().contains("using the identity in the data directory").then_some(()))
        .unwrap_or_else(|| panic!("restart:\n{}", a.process.log()));
    assert!(a.process.exited().is_none(), "{}", a.process.log());
    assert_eq!(csr_names(&hub, "cluster-a").len(), 1, "no new bootstrap");
    wait_cluster(&hub, "cluster-a", "available after the restart", available);

    // A deleted cluster's old certificate is refused on the very next request.
    let out = hub.flotilla(&["delete", "cluster", "cluster-b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    eventually(DEADLINE, || managed_cluster(&hub, "cluster-b").is_none().then_some(())).expect("cluster-b deleted");
    let gone = "managed cluster \"cluster-b\" is not accepted by the hub (it does not exist)";
    forbidden(&b.kubectl(&["get", "managedcluster", "cluster-b"]), gone);
    forbidden(&b.kubectl(&["get", "manifestworks", "-n", "cluster-b"]), gone);
    let recreate = "apiVersion: cluster.open-cluster-management.io/v1\nkind: ManagedCluster\nmetadata:\n  name: \
                    cluster-b\nspec:\n  hubAcceptsClient: false\n";
    forbidden(&kubectl_stdin(&b.kubeconfig(), &["create", "-f", "-"], recreate), gone);
    // B's agent is refused too, keeps retrying (it never gives up on a hub), recreates nothing.
    eventually(DEADLINE, || b.process.log().contains(gone).then_some(()))
        .unwrap_or_else(|| panic!("agent B was not refused:\n{}", b.process.log()));
    assert!(managed_cluster(&hub, "cluster-b").is_none());
    assert!(a.kubectl(&["get", "managedcluster", "cluster-a"]).status.success(), "A is unaffected");
    assert!(a.process.exited().is_none(), "{}", a.process.log());
}

#[test]
fn refused_joins_end_the_agent_with_a_clear_message_and_change_nothing() {
    let hub = Server::hub();
    let agents_dir = tempfile::tempdir().expect("tempdir");
    let base = agents_dir.path();
    let join = create_token(&hub, "10m");
    let url = join.hub_url.as_str();
    let id = join.token.split('.').next().expect("token ID").to_string();
    let hash = Some(join.ca_hash.as_str());

    let revoked = create_token(&hub, "10m").token;
    let out = hub.flotilla(&["token", "revoke", &revoked]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expired = create_token(&hub, "1s").token;
    let expired_id = expired.split('.').next().expect("ID").to_string();
    eventually(DEADLINE, || {
        let list = stdout(&hub.flotilla(&["token", "list"]));
        list.lines().any(|l| l.starts_with(&expired_id) && l.contains("<expired>")).then_some(())
    })
    .expect("the 1s token expires");

    let zero_hash = format!("sha256:{}", "0".repeat(64));
    let wrong_secret = format!("{id}.ffffffffffffffff");
    // All at once: they are independent.
    let mut refused = vec![
        (
            Agent::start(base, "wrong-hash", url, Some(join.token.as_str()), Some(zero_hash.as_str())),
            vec![format!("hub CA hash mismatch: expected {zero_hash}, the hub presented"), join.ca_hash.clone()],
        ),
        (
            Agent::start(base, "unknown-token", url, Some("abcdef.0123456789abcdef"), hash),
            vec!["the hub refused the bootstrap credentials (401)".into(), "bootstrap token \"abcdef\"".into()],
        ),
        (
            Agent::start(base, "wrong-secret", url, Some(wrong_secret.as_str()), hash),
            vec![format!("bootstrap token \"{id}\" is not valid: its secret does not match")],
        ),
        (
            Agent::start(base, "garbage-token", url, Some("garbage"), hash),
            vec!["--token is not a bootstrap token: expected ID.SECRET".into()],
        ),
        (
            Agent::start(base, "revoked-token", url, Some(revoked.as_str()), hash),
            vec!["(401)".into(), "has been revoked".into()],
        ),
        (
            Agent::start(base, "expired-token", url, Some(expired.as_str()), hash),
            vec!["(401)".into(), format!("bootstrap token \"{expired_id}\" has expired")],
        ),
    ];
    for (agent, expected) in &mut refused {
        let log = agent.fails();
        let error = log.lines().filter(|l| l.starts_with("error: ")).collect::<Vec<_>>().join("\n");
        for text in expected.iter() {
            assert!(error.contains(text.as_str()), "{}: expected {text:?} in:\n{log}", agent.name);
        }
        assert!(!agent.kubeconfig().exists(), "{}", agent.name);
        assert!(managed_cluster(&hub, &agent.name).is_none(), "{} created nothing", agent.name);
    }
    assert!(!refused[0].0.dir.join("hub-ca.crt").exists(), "a CA that does not match is not kept");

    // A denied cluster: its agent waits for an answer, and ends when it is no.
    let mut denied = Agent::start(base, "denied", url, Some(join.token.as_str()), hash);
    eventually(DEADLINE, || (!csr_names(&hub, "denied").is_empty()).then_some(()))
        .unwrap_or_else(|| panic!("never asked:\n{}", denied.process.log()));
    let out = hub.flotilla(&["deny", "denied"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = denied.fails();
    assert!(
        log.contains("error: the hub denied certificate signing request")
            && log.contains("of cluster denied")
            && log.contains("flotilla deny denied"),
        "{log}"
    );
    assert!(!denied.kubeconfig().exists());
    let mc = wait_cluster(&hub, "denied", "reported denied", |mc| {
        condition_status(mc, "HubDeniedManagedCluster") == "True"
            && condition_status(mc, "HubAcceptedManagedCluster") == "False"
    });
    assert_eq!(mc["spec"]["hubAcceptsClient"], false);
    assert!(!hub.kubectl(&["get", "namespace", "denied"]).status.success(), "no namespace for a denied cluster");

    // Only the denied cluster exists, and only its request.
    let clusters = hub.kubectl_ok(&["get", "managedclusters", "-o", "name"]);
    assert_eq!(clusters.trim(), "managedcluster.cluster.open-cluster-management.io/denied");
    assert_eq!(hub.kubectl_ok(&["get", "csr", "-o", "name"]).lines().count(), 1);

    // Client certificates from another CA, even with an agent's or the admin's subject, get
    // 401 with the reason (the handshake completes, as with kube-apiserver).
    let admin = flotilla_pki::Kubeconfig::load(&hub.kubeconfig).expect("admin kubeconfig");
    let ca_pem = admin.ca_pem().expect("hub CA");
    let rogue = flotilla_pki::CertificateAuthority::generate("rogue-ca", Duration::from_secs(3600)).expect("CA");
    for (user, groups) in [
        ("system:open-cluster-management:denied:agent00001", "system:open-cluster-management:denied"),
        ("admin", "system:masters"),
    ] {
        let cert = rogue.issue_client_cert(user, &[groups.to_string()], Duration::from_secs(3600)).expect("cert");
        let path = base.join(format!("rogue-{}.kubeconfig", groups.replace(':', "-")));
        flotilla_pki::Kubeconfig::for_client_cert("hub", url, &ca_pem, &cert.cert_pem, &cert.key_pem, user)
            .write(&path)
            .expect("write kubeconfig");
        for args in [&["get", "managedclusters"][..], &["delete", "managedcluster", "denied"][..]] {
            let out = kubectl(&path, args);
            let err = stderr(&out);
            assert!(!out.status.success(), "{user} from another CA got in: {}", stdout(&out));
            assert!(err.contains("Unauthorized"), "{user}: {err}");
        }
    }
    assert!(managed_cluster(&hub, "denied").is_some(), "nothing was deleted");
}
