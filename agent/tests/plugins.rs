//! Plugins on the agent, against a real hub over TLS on loopback: blobs fetched by digest
//! with the agent's certificate, verified and cached (a second fetch needs no hub), and the
//! plugin counters on the agent's `/metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{client_for, init_logging, managed_clusters, start_hub};
use flotilla_agent::plugins::{AgentPlugins, PluginCache, serve_metrics};
use flotilla_agent::{AgentOptions, SpokeSource};
use flotilla_plugin_host::{ClusterInfo, Limits, OwnerRef, World, digest_of};
use flotilla_registration::identity::AgentIdentity;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn artifacts() -> &'static Path {
    flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}"))
}

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(artifacts().join(format!("{}.wasm", name.replace('-', "_")))).expect("built plugin")
}

async fn client(kc: &flotilla_pki::Kubeconfig) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(&kc.to_yaml().unwrap()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    kube::Client::try_from(config).unwrap()
}

/// `GET /metrics` over plain HTTP/1.1.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("content-type: text/plain; version=0.0.4"), "{response}");
    response
}

#[tokio::test(flavor = "multi_thread")]
async fn blobs_are_fetched_by_digest_then_served_from_the_cache() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    let hub = start_hub(&hub_dir).await;
    let admin_kubeconfig = flotilla_hub::admin_kubeconfig_path(&hub_dir);
    let admin = client_for(&admin_kubeconfig).await;
    let ca_pem = flotilla_pki::Kubeconfig::load(&admin_kubeconfig).unwrap().ca_pem().unwrap();

    let component = wasm("label-filter");
    let digest = digest_of(&component);
    let put = http::Request::put(format!("/blobs/{digest}")).body(component.clone()).unwrap();
    admin.request_text(put).await.expect("upload as the admin");

    // The agent of an accepted cluster, with the certificate the hub would sign for it.
    let clusters = managed_clusters();
    let mut mc = DynamicObject::new("c1", &clusters);
    mc.data = json!({"spec": {"hubAcceptsClient": true}});
    Api::<DynamicObject>::all_with(admin.clone(), &clusters).create(&PostParams::default(), &mc).await.unwrap();
    let identity = AgentIdentity { cluster: "c1".into(), agent_id: "agent00001".into() };
    let ca = flotilla_apiserver::host::Layout::new(&hub_dir).load_ca().unwrap();
    let cert = ca.issue_client_cert(&identity.user_name(), &identity.groups(), Duration::from_secs(3600)).unwrap();
    let agent_kc =
        flotilla_pki::Kubeconfig::for_client_cert("hub", &hub.url, &ca_pem, &cert.cert_pem, &cert.key_pem, "c1-agent");
    let agent = client(&agent_kc).await;

    let data = dir.path().join("agent");
    let cache = PluginCache::new(&data);
    assert_eq!(cache.cached(&digest).unwrap(), None);
    let fetched = cache.fetch(&agent, &digest).await.expect("fetch");
    assert!(fetched == component, "the same bytes");
    let file = data.join("plugins/sha256").join(digest.trim_start_matches("sha256:"));
    assert_eq!(cache.path(&digest).unwrap(), file);
    assert!(std::fs::read(&file).unwrap() == component, "cached under its digest");

    let missing = digest_of(b"never uploaded");
    let err = cache.fetch(&agent, &missing).await.expect_err("absent");
    assert_eq!(err.api_code(), Some(404), "{err}");
    assert!(err.to_string().contains(&format!("blob {missing} not found")), "{err}");
    let err = cache.fetch(&agent, "sha256:ABC").await.expect_err("not a digest");
    assert!(err.to_string().contains("not a digest"), "{err}");

    // Without the hub: from the cache, with no request.
    hub.shutdown().await;
    let again = PluginCache::new(&data).fetch(&agent, &digest).await.expect("from the cache");
    assert!(again == component);
    // A damaged cache entry is never used: dropped, and fetched again (which fails now).
    std::fs::write(&file, b"tampered").unwrap();
    let err = PluginCache::new(&data).fetch(&agent, &digest).await.expect_err("the hub is down");
    assert_eq!(err.api_code(), None, "a transport error: {err}");
    assert!(!file.exists(), "the damaged entry was removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_the_agents_plugin_calls() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let plugins = Arc::new(AgentPlugins::new(dir.path()));
    let host = plugins.host().unwrap();
    let plugin = host.load("lf", World::PlacementFilter, &wasm("label-filter")).expect("load");
    let prepared = host.prepare(&plugin, r#"{"labels": [{"key": "region", "operator": "Exists"}]}"#).expect("config");
    let fleet = [ClusterInfo { name: "a".into(), ..Default::default() }];
    let owner = OwnerRef { kind: "Policy".into(), namespace: "c1".into(), name: "p".into() };
    tokio::task::spawn_blocking(move || {
        host.placement_filter(&prepared, &owner, &prepared.batch(&fleet), &Limits::DEFAULT).expect("call")
    })
    .await
    .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(serve_metrics(listener, plugins, stopped));
    let text = scrape(addr).await;
    // describe() on load, validate-config, filter.
    let short = &digest_of(&wasm("label-filter"))[..19];
    let calls = format!("flotilla_plugin_calls_total{{plugin=\"lf\",world=\"placement-filter\",digest=\"{short}\"}} 3");
    assert!(text.contains(&calls), "{calls} in\n{text}");
    assert!(text.contains("flotilla_plugin_traps_total{plugin=\"lf\""), "{text}");
    assert!(text.contains("flotilla_agent_plugin_blob_fetches_total 0"), "{text}");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("stops").unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_serves_metrics_while_it_runs() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // A hub that is not there: the agent keeps retrying its join, and serves /metrics meanwhile.
    let spoke_dir = dir.path().join("spoke");
    let spoke = flotilla_spoke::start(flotilla_spoke::SpokeOptions {
        data_dir: spoke_dir.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        name: "spoke1".into(),
        nodes: 1,
        ready_delay: flotilla_spoke::DEFAULT_READY_DELAY,
    })
    .await
    .unwrap();
    let mut opts = AgentOptions::new(
        "https://127.0.0.1:9",
        "c1",
        dir.path().join("agent"),
        SpokeSource::Kubeconfig { path: flotilla_spoke::kubeconfig_path(&spoke_dir), context: None },
    );
    opts.token = Some("abcdef.0123456789abcdef".into());
    opts.hub_ca_hash = Some(format!("sha256:{}", "0".repeat(64)));
    opts.metrics_listen = Some(addr);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(flotilla_agent::run(opts, async move {
        let _ = rx.await;
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break scrape(addr).await;
        }
        assert!(std::time::Instant::now() < deadline, "the agent never served /metrics");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(text.contains("# TYPE flotilla_plugin_calls_total counter"), "{text}");
    assert!(text.contains("flotilla_plugin_compilations_total 0"), "{text}");
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(30), agent).await.expect("the agent stops").unwrap().unwrap();
    spoke.shutdown().await;
}
