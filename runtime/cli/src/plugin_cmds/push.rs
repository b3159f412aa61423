//! `flotilla plugin push FILE --name N`: validates the component locally (the world it
//! exports, its imports, that it instantiates and `describe()` answers), uploads it to the
//! hub's content-addressed blob store unless the hub has it already, and server-side applies
//! its `WasmPlugin` (world, version from `describe()`, digest, limits). The hub validates the
//! same way again before it stores the object.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use flotilla_plugin_host::{HostConfig, PluginHost, World, digest_of};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::kubectl::errors::{api_code, kube_message};
use crate::kubectl::session::Session;

/// The field manager of pushes.
const FIELD_MANAGER: &str = "flotilla-plugin-push";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    #[value(name = "Fail")]
    Fail,
    #[value(name = "Ignore")]
    Ignore,
}

impl FailurePolicy {
    fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Fail => "Fail",
            FailurePolicy::Ignore => "Ignore",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// The component (.wasm) to upload.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Name of the WasmPlugin object.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The world the component must implement: placement-filter, placement-scorer,
    /// policy-check, rollout-strategy or manifest-transform [default: the one it exports].
    #[arg(long, value_name = "WORLD", value_parser = parse_world)]
    pub world: Option<World>,
    /// What the plugin does, for people [default: the summary its describe() gives].
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// What happens when the plugin traps, times out or misbehaves [default: Fail].
    #[arg(long, value_enum, value_name = "POLICY", ignore_case = true)]
    pub failure_policy: Option<FailurePolicy>,
    /// Deadline of one call, in milliseconds [default: the hub's, 1000].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: Option<u64>,
    /// Largest linear memory of one instance, in bytes [default: the hub's, 128 MiB].
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_bytes: Option<u64>,
    /// Largest result of one call, in bytes [default: the hub's, 16 MiB].
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_output_bytes: Option<u64>,
}

fn parse_world(s: &str) -> Result<World, String> {
    s.parse()
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

/// What `describe()` and the local validation found.
struct Local {
    world: World,
    version: String,
    summary: String,
    digest: String,
}

/// Validates the component with a local plugin host, as the hub will.
fn validate_locally(args: &PushArgs, bytes: &[u8]) -> anyhow::Result<Local> {
    let mut config = HostConfig::new(HostConfig::user_cache_dir());
    // One plugin, one call: no instance pool to reserve.
    config.pooling = false;
    config.max_concurrent_instances = 1;
    let host = PluginHost::new(config).map_err(|e| anyhow::anyhow!("starting the local plugin host: {e}"))?;
    let loaded = match args.world {
        Some(world) => host.load(&args.name, world, bytes),
        None => host.load_detected(&args.name, bytes),
    };
    let plugin = loaded.map_err(|e| anyhow::anyhow!("{} cannot be pushed: {e}", args.file.display()))?;
    let info = plugin.info();
    Ok(Local {
        world: info.world,
        version: info.describe.version.clone(),
        summary: info.describe.summary.clone(),
        digest: info.digest.clone(),
    })
}

/// A failed request in kubectl's words; a transport failure names the hub.
fn request_error(session: &Session, e: &kube::Error) -> anyhow::Error {
    if api_code(e).is_some() {
        anyhow::anyhow!(kube_message(e))
    } else {
        anyhow::anyhow!(
            "cannot reach the hub at {} (is it running, and is the kubeconfig {} right?): {}",
            session.server.trim_end_matches('/'),
            session.kubeconfig.display(),
            kube_message(e)
        )
    }
}

/// Uploads the blob unless the hub has it. Returns whether it was uploaded.
async fn upload(session: &Session, digest: &str, bytes: Vec<u8>) -> anyhow::Result<bool> {
    let path = format!("/blobs/{digest}");
    let head = http::Request::head(&path).body(Vec::new())?;
    match session.client.request_text(head).await {
        Ok(_) => return Ok(false),
        Err(e) if api_code(&e) == Some(404) => {}
        Err(e) => return Err(request_error(session, &e)),
    }
    let size = bytes.len();
    let put = http::Request::put(&path).header(http::header::CONTENT_TYPE, "application/wasm").body(bytes)?;
    session
        .client
        .request_text(put)
        .await
        .map_err(|e| request_error(session, &e))
        .with_context(|| format!("uploading {digest} ({size} bytes)"))?;
    Ok(true)
}

pub async fn run(session: &Session, args: PushArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    // Compiling a component takes a moment of CPU: off the async threads.
    let (args, bytes, local) = tokio::task::spawn_blocking(move || {
        let local = validate_locally(&args, &bytes);
        (args, bytes, local)
    })
    .await?;
    let local = local?;
    debug_assert_eq!(local.digest, digest_of(&bytes));
    let uploaded = upload(session, &local.digest, bytes).await?;

    let mut limits = serde_json::Map::new();
    if let Some(ms) = args.timeout_ms {
        limits.insert("timeoutMillis".into(), json!(ms));
    }
    if let Some(b) = args.memory_bytes {
        limits.insert("memoryBytes".into(), json!(b));
    }
    if let Some(b) = args.max_output_bytes {
        limits.insert("maxOutputBytes".into(), json!(b));
    }
    let description = args.description.clone().unwrap_or_else(|| local.summary.chars().take(1024).collect());
    let mut spec = json!({
        "world": local.world.name(),
        "version": local.version,
        "digest": local.digest,
    });
    if !description.is_empty() {
        spec["description"] = json!(description);
    }
    if let Some(policy) = args.failure_policy {
        spec["failurePolicy"] = json!(policy.as_str());
    }
    if !limits.is_empty() {
        spec["limits"] = Value::Object(limits);
    }
    let object = json!({
        "apiVersion": "flotilla.dev/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": args.name},
        "spec": spec,
    });
    let api: Api<DynamicObject> = Api::all_with(session.client.clone(), &wasm_plugins());
    let before = api.get_opt(&args.name).await.map_err(|e| request_error(session, &e))?;
    let applied = api
        .patch(&args.name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object))
        .await
        .map_err(|e| request_error(session, &e))?;
    let verb = match before {
        None => "created",
        Some(b) if b.metadata.resource_version == applied.metadata.resource_version => "unchanged",
        Some(_) => "configured",
    };
    session.out(&format!(
        "wasmplugin.flotilla.dev/{} {verb} ({}, {} {}{})\n",
        args.name,
        local.digest,
        local.world,
        local.version,
        if uploaded { ", uploaded" } else { "" }
    ))?;
    Ok(ExitCode::SUCCESS)
}
