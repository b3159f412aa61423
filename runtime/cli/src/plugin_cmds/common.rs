//! What the local plugin commands share: the plugin host, reading components and fixtures,
//! and deciding which world a component is run as.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use flotilla_plugin_host::{Fixture, HostConfig, Plugin, PluginHost, World};

/// `println!` that stops quietly when stdout is closed (`flotilla plugin inspect F | head`).
macro_rules! out {
    ($($arg:tt)*) => {
        crate::kubectl::emit(&format!("{}\n", format_args!($($arg)*)))?
    };
}
pub(crate) use out;

/// A plugin host for one command, with its compilation cache in `cache_dir` (the user's
/// cache when `None`).
pub fn host(cache_dir: Option<&Path>) -> anyhow::Result<PluginHost> {
    let dir = cache_dir.map(Path::to_path_buf).unwrap_or_else(HostConfig::user_cache_dir);
    let mut config = HostConfig::new(dir);
    // One call at a time: a small pool.
    config.max_concurrent_instances = 2;
    PluginHost::new(config).context("starting the plugin host")
}

pub fn read_component(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The name a component is loaded under: its file name without `.wasm`.
pub fn plugin_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plugin".into())
}

pub fn read_fixture(path: &Path) -> anyhow::Result<Fixture> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Fixture::parse(&text).map_err(|e| anyhow::anyhow!("fixture {}: {e}", path.display()))
}

/// A world from the command line.
pub fn parse_world(s: &str) -> Result<World, String> {
    s.parse()
}

/// The world to run a component as: the one asked for, else the fixture's, else the one the
/// component exports. A fixture of another world than the one asked for is an error.
pub fn resolve_world(
    host: &PluginHost,
    bytes: &[u8],
    asked: Option<World>,
    fixture: Option<(&Path, &Fixture)>,
) -> anyhow::Result<World> {
    if let (Some(asked), Some((path, Fixture { world: Some(f), .. }))) = (asked, fixture)
        && asked != *f
    {
        anyhow::bail!("--world {asked}, but the fixture {} is for a {f}", path.display());
    }
    match asked.or_else(|| fixture.and_then(|(_, f)| f.world)) {
        Some(w) => Ok(w),
        None => Ok(host.detect_world(bytes)?),
    }
}

/// Validates and loads a component as `world`, as a push would.
pub fn load(host: &PluginHost, path: &Path, bytes: &[u8], world: World) -> anyhow::Result<Arc<Plugin>> {
    host.load(&plugin_name(path), world, bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A configuration from the command line: JSON, or `@FILE` to read it from a file.
pub fn config_arg(arg: &str) -> anyhow::Result<serde_json::Value> {
    let (text, from) = match arg.strip_prefix('@') {
        Some(file) => (std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?, file),
        None => (arg.to_string(), "--config"),
    };
    serde_json::from_str(&text).with_context(|| format!("{from} is not JSON"))
}

/// The `*.json` files of the arguments, sorted within each directory.
pub fn fixture_files(args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(arg)
                .with_context(|| format!("reading {}", arg.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(arg.clone());
        }
    }
    Ok(out)
}
