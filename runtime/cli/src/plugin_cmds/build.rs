//! `flotilla plugin build [--dir DIR]`: builds a plugin project into a component and prints
//! its path.
//!
//! A project with a `flotilla-plugin.json` (any language) is built by its `build` commands,
//! after checking that its `tools` are installed; a Rust project without one by
//! `cargo build --release --target wasm32-wasip2`, as before manifests. Rust builds install
//! the wasm32-wasip2 target with rustup when it is missing (as `plugins/build.sh` does).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context as _;

use super::common::out;
use super::project::{self, Manifest};

const TARGET: &str = "wasm32-wasip2";

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The plugin project: the directory with its flotilla-plugin.json (or a Rust project's
    /// Cargo.toml).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let wasm = build_project(&args.dir)?;
    out!("{}", wasm.display());
    Ok(ExitCode::SUCCESS)
}

/// Installs the wasm32-wasip2 target when rustup manages the toolchain and lacks it.
fn ensure_target(dir: &Path) -> anyhow::Result<()> {
    // Run where the project is, so a rust-toolchain file there picks the toolchain.
    let Ok(out) = Command::new("rustup").args(["target", "list", "--installed"]).current_dir(dir).output() else {
        // No rustup: cargo says what is missing.
        return Ok(());
    };
    if !out.status.success() || String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET) {
        return Ok(());
    }
    eprintln!("==> installing the {TARGET} target (rustup target add {TARGET})");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .context("running rustup")?;
    if !status.success() {
        anyhow::bail!("the {TARGET} Rust target is missing and could not be installed: rustup target add {TARGET}");
    }
    Ok(())
}

/// What a surrounding cargo invocation (a test run, `cargo run`) may set would leak native
/// flags into a wasm build or point it at another package.
const LEAKY_VARS: &[&str] =
    &["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_MANIFEST_DIR", "CARGO_PRIMARY_PACKAGE"];

/// Builds the project in `dir` and returns the component it wrote. The build's output goes
/// to stderr; stdout is left for the path.
pub fn build_project(dir: &Path) -> anyhow::Result<PathBuf> {
    match project::read(dir)? {
        Some(manifest) => build_with_manifest(dir, &manifest),
        None if dir.join("Cargo.toml").is_file() => {
            ensure_target(dir)?;
            let argv: Vec<String> =
                ["cargo", "build", "--release", "--target", TARGET].iter().map(|s| s.to_string()).collect();
            run_command(dir, &argv, &[])?.ok_or_else(|| {
                anyhow::anyhow!(
                    "the build of {} wrote no .wasm: a plugin crate needs crate-type = [\"cdylib\"] under [lib]",
                    dir.join("Cargo.toml").display()
                )
            })
        }
        None => anyhow::bail!(
            "{} is not a plugin project: it has no {} (create one with `flotilla plugin new NAME --lang LANG --world WORLD`)",
            dir.display(),
            project::MANIFEST
        ),
    }
}

fn build_with_manifest(dir: &Path, manifest: &Manifest) -> anyhow::Result<PathBuf> {
    if let Some(missing) = project::missing_tool(manifest, dir) {
        anyhow::bail!(missing);
    }
    if manifest.language == "rust" {
        ensure_target(dir)?;
    }
    let mut built = None;
    for argv in &manifest.build {
        if let Some(wasm) = run_command(dir, argv, &manifest.tools)? {
            built = Some(wasm);
        }
    }
    // Cargo says where it wrote the component (under $CARGO_TARGET_DIR when set); other
    // toolchains write where the manifest says.
    let component = built.unwrap_or_else(|| dir.join(&manifest.component));
    if !component.is_file() {
        anyhow::bail!(
            "the build of {} wrote no {}: check \"component\" in {}",
            manifest.name,
            component.display(),
            project::MANIFEST
        );
    }
    // Absolute, so the path printed works from anywhere.
    component.canonicalize().with_context(|| format!("resolving {}", component.display()))
}

/// Runs one build command in `dir`, its output on stderr; for `cargo build`, the component
/// cargo reports for the project's own package.
fn run_command(dir: &Path, argv: &[String], tools: &[project::Tool]) -> anyhow::Result<Option<PathBuf>> {
    let Some((program, args)) = argv.split_first() else { return Ok(None) };
    let shown = argv.join(" ");
    let cargo_build = program == "cargo" && args.first().is_some_and(|a| a == "build");
    let mut command = Command::new(program);
    command.args(args).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut manifest_path = None;
    if cargo_build {
        let manifest = dir.join("Cargo.toml");
        let manifest = manifest.canonicalize().with_context(|| format!("resolving {}", manifest.display()))?;
        command.args(["--message-format", "json-render-diagnostics"]);
        if !args.iter().any(|a| a.starts_with("--manifest-path")) {
            command.arg("--manifest-path").arg(&manifest);
        }
        manifest_path = Some(manifest);
    }
    for var in LEAKY_VARS {
        command.env_remove(var);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let hint = tools.iter().find(|t| &t.command == program).map_or_else(
                || {
                    if program == "cargo" {
                        " (is Rust installed? https://rustup.rs)".to_string()
                    } else {
                        String::new()
                    }
                },
                |t| format!(": install it with `{}`", t.install),
            );
            anyhow::bail!("{program} is missing{hint}");
        }
        Err(e) => return Err(e).with_context(|| format!("running {shown}")),
    };
    let mut wasm = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.with_context(|| format!("reading the output of {shown}"))?;
            let Some(manifest) = &manifest_path else {
                eprintln!("{line}");
                continue;
            };
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                eprintln!("{line}");
                continue;
            };
            if message["reason"] != "compiler-artifact" {
                continue;
            }
            let ours = message["manifest_path"].as_str().is_some_and(|m| Path::new(m) == manifest);
            let files = message["filenames"].as_array().into_iter().flatten().filter_map(|f| f.as_str());
            for file in files.filter(|f| f.ends_with(".wasm")) {
                if ours {
                    wasm = Some(PathBuf::from(file));
                }
            }
        }
    }
    let status = child.wait().with_context(|| format!("waiting for {shown}"))?;
    if !status.success() {
        let code = status.code().map_or_else(|| "a signal".to_string(), |c| c.to_string());
        anyhow::bail!("`{shown}` failed in {} with exit status {code} (see above)", dir.display());
    }
    Ok(wasm)
}
