//! `flotilla plugin push` as a process against a hub running in this test, over TLS on
//! loopback: the blob upload, the WasmPlugin it applies, and the exact reason for each
//! component it refuses (nothing is uploaded or stored then).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kube::api::{Api, ApiResource, DynamicObject, ListParams};

/// The plugins, built by `plugins/build.sh` once per test process.
fn artifacts() -> &'static Path {
    flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}"))
}

fn component(name: &str) -> PathBuf {
    artifacts().join(format!("{}.wasm", name.replace('-', "_")))
}

/// Runs the binary with the admin kubeconfig; the local compilation cache is shared by the
/// tests of this file, not the user's.
fn flotilla(kubeconfig: &Path, args: &[&str]) -> Output {
    let cache = std::env::temp_dir().join("flotilla-cli-push-tests");
    Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("FLOTILLA_PLUGIN_CACHE", cache)
        .output()
        .expect("run flotilla")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn digest_of(path: &Path) -> String {
    flotilla_plugin_host::digest_of(&std::fs::read(path).expect("read component"))
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

struct Hub {
    dir: tempfile::TempDir,
    server: flotilla_apiserver::host::RunningServer,
    kubeconfig: PathBuf,
    admin: kube::Client,
}

impl Hub {
    async fn start() -> Hub {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("hub");
        let loopback = "127.0.0.1:0".parse().expect("addr");
        flotilla_hub::init(&data, &flotilla_hub::HubConfig::new(loopback)).expect("init");
        let server = flotilla_hub::start(&data, Some(loopback)).await.expect("start");
        let kubeconfig = flotilla_hub::admin_kubeconfig_path(&data);
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
        let admin = kube::Client::try_from(config).expect("client");
        Hub { dir, server, kubeconfig, admin }
    }

    fn plugins(&self) -> Api<DynamicObject> {
        Api::all_with(self.admin.clone(), &wasm_plugins())
    }

    fn stored_blobs(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("hub/blobs/sha256")).expect("blob dir").count()
    }

    async fn blob(&self, digest: &str) -> Vec<u8> {
        let request = http::Request::get(format!("/blobs/{digest}")).body(kube::client::Body::empty()).expect("req");
        let response = self.admin.send(request).await.expect("GET blob");
        assert_eq!(response.status(), 200);
        response.into_body().collect_bytes().await.expect("body").to_vec()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn push_uploads_the_component_and_applies_its_wasm_plugin() {
    let hub = Hub::start().await;
    let file = component("label-filter");
    let digest = digest_of(&file);
    let file_arg = file.to_str().expect("utf-8 path");

    let out = flotilla(&hub.kubeconfig, &["plugin", "push", file_arg, "--name", "lf"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("wasmplugin.flotilla.dev/lf created ({digest}, placement-filter 0.1.0, uploaded)\n")
    );
    let lf = hub.plugins().get("lf").await.expect("the WasmPlugin");
    let spec = &lf.data["spec"];
    assert_eq!((spec["world"].as_str(), spec["version"].as_str()), (Some("placement-filter"), Some("0.1.0")));
    assert_eq!(spec["digest"].as_str(), Some(digest.as_str()));
    assert!(spec["description"].as_str().is_some_and(|d| !d.is_empty()), "describe()'s summary: {spec}");
    assert!(hub.blob(&digest).await == std::fs::read(&file).expect("read"), "the hub serves the same bytes");

    // Again: the hub has the blob, nothing changes.
    let out = flotilla(&hub.kubeconfig, &["plugin", "push", file_arg, "--name", "lf"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("wasmplugin.flotilla.dev/lf unchanged ({digest}, placement-filter 0.1.0)\n"));

    // Limits, failure policy and description go into the object.
    let out = flotilla(
        &hub.kubeconfig,
        &[
            "plugin",
            "push",
            file_arg,
            "--name",
            "lf",
            "--world",
            "placement-filter",
            "--description",
            "keeps clusters by label",
            "--failure-policy",
            "Ignore",
            "--timeout-ms",
            "250",
            "--memory-bytes",
            "67108864",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("wasmplugin.flotilla.dev/lf configured ("), "{}", text(&out.stdout));
    let spec = hub.plugins().get("lf").await.expect("get").data["spec"].clone();
    assert_eq!(spec["description"], "keeps clusters by label");
    assert_eq!(spec["failurePolicy"], "Ignore");
    assert_eq!(spec["limits"], serde_json::json!({"timeoutMillis": 250, "memoryBytes": 67108864}));

    // A component pushed without --world is what it exports.
    let out = flotilla(
        &hub.kubeconfig,
        &["plugin", "push", component("canary-waves").to_str().expect("path"), "--name", "waves"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(", rollout-strategy 0.1.0, uploaded)"), "{}", text(&out.stdout));
    assert_eq!(hub.stored_blobs(), 2);
    hub.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_components_are_refused_with_the_reason_and_nothing_is_stored() {
    let hub = Hub::start().await;
    let push = |file: &Path, extra: &[&str]| {
        let mut args = vec!["plugin", "push", file.to_str().expect("utf-8"), "--name", "bad"];
        args.extend_from_slice(extra);
        let out = flotilla(&hub.kubeconfig, &args);
        assert!(!out.status.success(), "{file:?} was pushed: {}", text(&out.stdout));
        text(&out.stderr)
    };

    let corrupt = hub.dir.path().join("corrupt.wasm");
    std::fs::write(&corrupt, b"#!/bin/sh\necho not wasm\n").expect("write");
    let err = push(&corrupt, &[]);
    assert_eq!(
        err,
        format!(
            "error: {} cannot be pushed: not a valid WebAssembly component: the file does not start with the \
             WebAssembly magic number \\0asm\n",
            corrupt.display()
        )
    );

    let err = push(&component("hostile-wrong-world"), &["--world", "placement-filter"]);
    assert!(
        err.contains(
            "cannot be pushed: wrong world: declared placement-filter, but the component exports \
             flotilla:rollout-strategy/strategy@0.1.0 (the rollout-strategy world)"
        ),
        "{err}"
    );

    let err = push(&component("hostile-forbidden-import"), &[]);
    assert!(err.contains("cannot be pushed: forbidden import: the component imports wasi:sockets/"), "{err}");
    assert!(err.contains("which the placement-filter world does not grant"), "{err}");

    let err = push(&hub.dir.path().join("missing.wasm"), &[]);
    assert!(err.contains("cannot read") && err.contains("missing.wasm"), "{err}");

    let err = push(&component("label-filter"), &["--world", "scheduler"]);
    assert!(err.contains("unknown world \"scheduler\": expected one of placement-filter"), "{err}");

    // A WasmPlugin that names a component never uploaded.
    let yaml = hub.dir.path().join("plugin.yaml");
    let digest = flotilla_plugin_host::digest_of(b"never uploaded");
    std::fs::write(
        &yaml,
        format!(
            "apiVersion: flotilla.dev/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: ghost\nspec:\n  world: \
             placement-filter\n  version: 0.1.0\n  digest: {digest}\n"
        ),
    )
    .expect("write");
    let out = flotilla(&hub.kubeconfig, &["apply", "-f", yaml.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("spec.digest: Invalid value: \"{digest}\": blob {digest} was not uploaded")),
        "{err}"
    );
    assert!(err.contains("flotilla plugin push"), "{err}");

    let listed = hub.plugins().list(&ListParams::default()).await.expect("list");
    assert!(listed.items.is_empty(), "no WasmPlugin was stored: {:?}", listed.items);
    assert_eq!(hub.stored_blobs(), 0, "no blob was uploaded");
    hub.server.shutdown().await;
}
