//! A plugin project's `flotilla-plugin.json`: what `plugin build` runs and where the
//! component lands, in any language.
//!
//! ```json
//! {"name": "my-filter", "world": "placement-filter", "language": "python",
//!  "component": "my-filter.wasm",
//!  "build": [["componentize-py", "-d", "wit", "-w", "placement-filter", "componentize", "app", "-o", "my-filter.wasm"]],
//!  "tools": [{"command": "componentize-py", "install": "pip install componentize-py==0.17.2"}],
//!  "fixtures": "fixtures"}
//! ```
//!
//! The build commands run in order in the project directory. A `cargo build` command is run
//! the way cargo tells where its artifacts are (so `$CARGO_TARGET_DIR` is honoured and
//! `component` is only the fallback).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

pub const MANIFEST: &str = "flotilla-plugin.json";

/// Other fields are allowed and ignored: a language may keep its own settings here.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub name: String,
    pub world: String,
    pub language: String,
    /// The component the build writes, relative to the project.
    pub component: String,
    /// Commands run in order in the project directory: argv lists.
    #[serde(default)]
    pub build: Vec<Vec<String>>,
    /// Programs the build needs, each with the one command that installs it.
    #[serde(default)]
    pub tools: Vec<Tool>,
    /// The directory of fixture files, relative to the project.
    #[serde(default = "default_fixtures")]
    pub fixtures: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tool {
    pub command: String,
    pub install: String,
}

fn default_fixtures() -> String {
    "fixtures".into()
}

/// The manifest of the project in `dir`, `None` when it has none (a Rust project from before
/// manifests).
pub fn read(dir: &Path) -> anyhow::Result<Option<Manifest>> {
    let path = dir.join(MANIFEST);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    if let Err(e) = manifest.world.parse::<flotilla_plugin_host::World>() {
        anyhow::bail!("{}: world: {e}", path.display());
    }
    if let Some(empty) = manifest.build.iter().position(Vec::is_empty) {
        anyhow::bail!("{}: build command {} is empty", path.display(), empty + 1);
    }
    Ok(Some(manifest))
}

/// Where `command` would be run from: a path (with a `/`) relative to `dir`, else the first
/// executable of that name on `PATH`.
pub fn find_program(command: &str, dir: &Path) -> Option<PathBuf> {
    if command.contains('/') {
        let path = dir.join(command);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(command)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// The first tool that is not installed, as the error `plugin build` gives.
pub fn missing_tool(manifest: &Manifest, dir: &Path) -> Option<String> {
    manifest
        .tools
        .iter()
        .find(|t| find_program(&t.command, dir).is_none())
        .map(|t| format!("{} is missing: install it with `{}`", t.command, t.install))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(tools: serde_json::Value) -> Manifest {
        serde_json::from_value(serde_json::json!({
            "name": "p", "world": "placement-filter", "language": "c", "component": "p.wasm",
            "build": [["sh", "-c", "true"]], "tools": tools
        }))
        .expect("manifest")
    }

    #[test]
    fn a_missing_tool_names_its_install_command() {
        let dir = Path::new(".");
        assert_eq!(missing_tool(&manifest(serde_json::json!([{"command": "sh", "install": "x"}])), dir), None);
        let m = manifest(serde_json::json!([
            {"command": "sh", "install": "x"},
            {"command": "no-such-tool-flotilla", "install": "apt-get install no-such-tool"}
        ]));
        assert_eq!(
            missing_tool(&m, dir).as_deref(),
            Some("no-such-tool-flotilla is missing: install it with `apt-get install no-such-tool`")
        );
        assert_eq!(m.fixtures, "fixtures");
    }
}
