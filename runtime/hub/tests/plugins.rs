//! Plugin blobs and `WasmPlugin` validation against a real hub over TLS on loopback: the
//! content-addressed blob endpoint and who may use it, validation on push with the exact
//! reason for each way a component can be wrong, and the plugin counters on `/metrics`.

#[path = "../../registration/tests/common/mod.rs"]
mod common;

use std::path::Path;

use common::*;
use flotilla_plugin_host::digest_of;
use flotilla_registration::token::Token;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The directory of the built plugins (`plugins/build.sh`, once per test process).
fn artifacts() -> &'static Path {
    flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}"))
}

fn wasm(name: &str) -> Vec<u8> {
    let path = artifacts().join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn wasm_plugins() -> ApiResource {
    ApiResource {
        group: "flotilla.dev".into(),
        version: "v1alpha1".into(),
        api_version: "flotilla.dev/v1alpha1".into(),
        kind: "WasmPlugin".into(),
        plural: "wasmplugins".into(),
    }
}

fn wasm_plugin(name: &str, world: &str, version: &str, digest: &str) -> DynamicObject {
    let mut obj = DynamicObject::new(name, &wasm_plugins());
    obj.data = json!({"spec": {"world": world, "version": version, "digest": digest}});
    obj
}

/// One raw request: (status, content type, body).
async fn raw(client: &kube::Client, method: &str, path: &str, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let request =
        http::Request::builder().method(method).uri(path).body(kube::client::Body::from(body)).expect("request");
    let response = client.send(request).await.expect("send");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let length = response.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = response.into_body().collect_bytes().await.expect("body").to_vec();
    if method == "HEAD" {
        return (status, length.unwrap_or_default(), bytes);
    }
    (status, content_type, bytes)
}

/// The `message` of a Status body.
fn status_message(body: &[u8]) -> String {
    let status: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("not a Status ({e}): {body:?}"));
    assert_eq!(status["kind"], "Status", "{status}");
    status["message"].as_str().unwrap_or_default().to_string()
}

async fn metrics(client: &kube::Client) -> Result<String, kube::Error> {
    client.request_text(http::Request::get("/metrics").body(Vec::new()).expect("request")).await
}

#[tokio::test(flavor = "multi_thread")]
async fn blobs_are_content_addressed_and_only_admins_upload_them() {
    let hub = Hub::start().await;
    let component = wasm("label-filter");
    let digest = digest_of(&component);
    let path = format!("/blobs/{digest}");

    let (status, _, body) = raw(&hub.admin, "PUT", &path, component.clone()).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let stored: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(stored, json!({"digest": digest, "size": component.len()}));
    let (status, _, _) = raw(&hub.admin, "PUT", &path, component.clone()).await;
    assert_eq!(status, 200, "already present");
    let (status, content_type, bytes) = raw(&hub.admin, "GET", &path, Vec::new()).await;
    assert_eq!((status, content_type.as_str()), (200, "application/wasm"));
    assert!(bytes == component, "the same bytes come back");
    let (status, length, bytes) = raw(&hub.admin, "HEAD", &path, Vec::new()).await;
    assert_eq!((status, length), (200, component.len().to_string()));
    assert!(bytes.is_empty());
    let on_disk = hub.data_dir().join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    assert!(std::fs::read(on_disk).expect("blob file") == component);

    // A body that is not what the path names: 400 with both digests, nothing stored.
    let other = digest_of(b"something else");
    let (status, _, body) = raw(&hub.admin, "PUT", &format!("/blobs/{other}"), component.clone()).await;
    assert_eq!(status, 400);
    let msg = status_message(&body);
    assert!(msg.contains(&digest) && msg.contains(&other), "{msg}");
    let (status, _, body) = raw(&hub.admin, "GET", &format!("/blobs/{other}"), Vec::new()).await;
    assert_eq!(status, 404);
    assert_eq!(status_message(&body), format!("blob {other} not found"));
    let (status, _, _) = raw(&hub.admin, "HEAD", &format!("/blobs/{other}"), Vec::new()).await;
    assert_eq!(status, 404);
    let (status, _, body) = raw(&hub.admin, "GET", "/blobs/latest", Vec::new()).await;
    assert_eq!(status, 400);
    assert!(status_message(&body).contains("64 lowercase hex digits"));
    let (status, _, _) = raw(&hub.admin, "DELETE", &path, Vec::new()).await;
    assert_eq!(status, 405);
    assert_eq!(std::fs::read_dir(hub.data_dir().join("blobs/tmp")).expect("tmp").count(), 0, "no partial blobs");

    // An accepted agent reads blobs and uploads none.
    hub.create_cluster("c1", true, None).await;
    let agent = hub.agent_client(&identity("c1", "agent00001")).await;
    let (status, _, bytes) = raw(&agent, "GET", &path, Vec::new()).await;
    assert_eq!(status, 200);
    assert!(bytes == component);
    let (status, _, body) = raw(&agent, "PUT", &path, component.clone()).await;
    assert_eq!(status, 403);
    let msg = status_message(&body);
    assert!(msg.contains(&format!("cannot put path \"{path}\"")), "{msg}");
    let answer = metrics(&agent).await;
    assert_eq!(status_code(&answer), Some(403), "{}", message(&answer));
    // Not once its cluster is no longer accepted.
    hub.set_accepts("c1", false).await;
    let (status, _, body) = raw(&agent, "GET", &path, Vec::new()).await;
    assert_eq!(status, 403);
    assert!(status_message(&body).contains("not accepted"));

    // A bootstrap token does neither.
    let token = Token::generate().expect("token");
    hub.create_token(&token, None).await;
    let boot = hub.token_client(&token.expose()).await;
    for (method, body) in [("GET", Vec::new()), ("HEAD", Vec::new()), ("PUT", component.clone())] {
        let (status, _, _) = raw(&boot, method, &path, body).await;
        assert_eq!(status, 403, "bootstrap {method}");
    }
    assert_eq!(status_code(&metrics(&boot).await), Some(403));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn blobs_have_their_own_size_limit() {
    let hub = Hub::start_with(|c| {
        c.max_body_bytes = 8 << 10;
        // Small enough that the body limit stays at 8 KiB.
        c.max_manifest_work_bytes = 4 << 10;
        c.max_blob_bytes = 64 << 10;
    })
    .await;
    let medium = vec![0x5au8; 32 << 10];
    let (status, _, body) = raw(&hub.admin, "PUT", &format!("/blobs/{}", digest_of(&medium)), medium).await;
    assert_eq!(status, 201, "over the JSON body limit, within the blob limit: {}", String::from_utf8_lossy(&body));
    let big = vec![0x5au8; 100 << 10];
    let big_path = format!("/blobs/{}", digest_of(&big));
    let (status, _, body) = raw(&hub.admin, "PUT", &big_path, big).await;
    assert_eq!(status, 413);
    assert!(status_message(&body).contains("at most 65536 bytes"), "{}", status_message(&body));
    let (status, _, _) = raw(&hub.admin, "HEAD", &big_path, Vec::new()).await;
    assert_eq!(status, 404);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wasm_plugins_are_validated_against_their_blob() {
    let hub = Hub::start().await;
    let plugins: Api<DynamicObject> = Api::all_with(hub.admin.clone(), &wasm_plugins());
    let upload = |bytes: Vec<u8>| {
        let admin = hub.admin.clone();
        async move {
            let digest = digest_of(&bytes);
            let (status, _, body) = raw(&admin, "PUT", &format!("/blobs/{digest}"), bytes).await;
            assert!(status == 201 || status == 200, "{}", String::from_utf8_lossy(&body));
            digest
        }
    };
    let refused = |name: &'static str, world: &'static str, version: &'static str, digest: String| {
        let plugins = plugins.clone();
        async move {
            let answer = plugins.create(&PostParams::default(), &wasm_plugin(name, world, version, &digest)).await;
            assert_eq!(status_code(&answer), Some(422), "{name}: {}", message(&answer));
            assert!(plugins.get_opt(name).await.expect("get").is_none(), "{name} was not stored");
            message(&answer)
        }
    };

    let filter = upload(wasm("label-filter")).await;
    plugins.create(&PostParams::default(), &wasm_plugin("lf", "placement-filter", "0.1.0", &filter)).await.expect("lf");
    let stored = plugins.get("lf").await.expect("get");
    assert_eq!(stored.data["spec"]["digest"], filter);
    assert_eq!(stored.data["spec"]["failurePolicy"], "Fail");

    // The describe() call of the validation is counted on /metrics, for admins.
    let text = metrics(&hub.admin).await.expect("metrics");
    let short = &filter[..19];
    let calls = format!("flotilla_plugin_calls_total{{plugin=\"lf\",world=\"placement-filter\",digest=\"{short}\"}} 1");
    assert!(text.contains(&calls), "{calls} in\n{text}");
    for family in
        ["flotilla_plugin_traps_total", "flotilla_plugin_timeouts_total", "flotilla_plugin_compilations_total"]
    {
        assert!(text.contains(&format!("# TYPE {family} counter")), "{family} in\n{text}");
    }
    assert!(text.contains("flotilla_apiserver_requests_total"), "the server's own families stay");

    // The status says what the hub found: Validated, and the component's describe() answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let obj = plugins.get("lf").await.expect("get");
        if obj.data["status"]["observedGeneration"] == obj.metadata.generation.unwrap_or(0) {
            break obj.data["status"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "no status on lf: {:?}", obj.data);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let validated = &status["conditions"][0];
    assert_eq!(validated["type"], "Validated");
    assert_eq!(validated["status"], "True");
    assert_eq!(validated["reason"], "ComponentValidated");
    assert_eq!(status["describe"]["version"], "0.1.0");
    assert!(status["describe"]["reads"]["labels"].is_array(), "{status}");
    // The status controller reused admission's describe() answer: still one call.
    let text = metrics(&hub.admin).await.expect("metrics");
    assert!(text.contains(&calls), "{calls} in\n{text}");

    let msg = refused("never", "placement-filter", "0.1.0", digest_of(b"never uploaded")).await;
    assert!(
        msg.contains(&format!(
            "spec.digest: Invalid value: \"{0}\": blob {0} was not uploaded: run `flotilla plugin push",
            digest_of(b"never uploaded")
        )),
        "{msg}"
    );

    let corrupt = upload(b"#!/bin/sh\necho not wasm\n".to_vec()).await;
    let msg = refused("corrupt", "placement-filter", "0.1.0", corrupt.clone()).await;
    assert_eq!(
        msg,
        format!(
            "WasmPlugin.flotilla.dev \"corrupt\" is invalid: spec.digest: Invalid value: \"{corrupt}\": not a valid \
             WebAssembly component: the file does not start with the WebAssembly magic number \\0asm"
        )
    );

    let rollout = upload(wasm("hostile-wrong-world")).await;
    let msg = refused("ww", "placement-filter", "0.1.0", rollout.clone()).await;
    assert!(
        msg.ends_with(
            "spec.world: Invalid value: \"placement-filter\": wrong world: declared placement-filter, but the \
             component exports flotilla:rollout-strategy/strategy@0.1.0 (the rollout-strategy world)"
        ),
        "{msg}"
    );
    // The same component as what it is.
    plugins
        .create(&PostParams::default(), &wasm_plugin("ww", "rollout-strategy", "0.1.0", &rollout))
        .await
        .expect("a rollout strategy");

    let sockets = upload(wasm("hostile-forbidden-import")).await;
    let msg = refused("fi", "placement-filter", "0.1.0", sockets).await;
    assert!(msg.contains("spec.digest: Invalid value:"), "{msg}");
    assert!(msg.contains("forbidden import: the component imports wasi:sockets/"), "{msg}");
    assert!(msg.contains("which the placement-filter world does not grant"), "{msg}");

    let msg = refused("lf2", "placement-filter", "2.0.0", filter.clone()).await;
    assert!(
        msg.contains("spec.version: Invalid value: \"2.0.0\": the component's describe() reports version \"0.1.0\""),
        "{msg}"
    );

    // An update that points at a bad component is refused and changes nothing; one that
    // keeps the component is not validated again.
    let patch = json!({"spec": {"digest": corrupt}});
    let answer = plugins.patch("lf", &PatchParams::default(), &Patch::Merge(&patch)).await;
    assert_eq!(status_code(&answer), Some(422), "{}", message(&answer));
    assert_eq!(plugins.get("lf").await.expect("get").data["spec"]["digest"], filter);
    let patch = json!({"spec": {"description": "keeps clusters by label", "limits": {"timeoutMillis": 200}}});
    plugins.patch("lf", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("description");
    let patch = json!({"spec": {"limits": {"memoryBytes": 8u64 << 30}}});
    let answer = plugins.patch("lf", &PatchParams::default(), &Patch::Merge(&patch)).await;
    assert_eq!(status_code(&answer), Some(422));
    assert!(
        message(&answer).contains("memoryBytes 8589934592 is above the maximum 1073741824"),
        "{}",
        message(&answer)
    );
    hub.stop().await;
}
