//! `flotilla plugin build [--dir DIR]`: `cargo build --release --target wasm32-wasip2` in a
//! plugin project, installing the target with rustup when it is missing (as
//! `plugins/build.sh` does), then the path of the component it wrote.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context as _;

use super::common::out;

const TARGET: &str = "wasm32-wasip2";

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The plugin project (the directory with its Cargo.toml).
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

/// Builds the project in `dir` and returns the component it wrote. Cargo's progress and
/// diagnostics go to stderr; `CARGO_TARGET_DIR`, when set, is where the build goes.
pub fn build_project(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        anyhow::bail!(
            "{} is not a plugin project: it has no Cargo.toml (create one with `flotilla plugin new NAME --world WORLD`)",
            dir.display()
        );
    }
    let manifest = manifest.canonicalize().with_context(|| format!("resolving {}", manifest.display()))?;
    ensure_target(dir)?;
    let mut cargo = Command::new("cargo");
    cargo
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // What a surrounding cargo invocation (a test run, `cargo run`) may set would leak native
    // flags into the wasm build or point it at another package.
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_MANIFEST_DIR", "CARGO_PRIMARY_PACKAGE"]
    {
        cargo.env_remove(var);
    }
    let mut child = cargo.spawn().context("running cargo (is Rust installed? https://rustup.rs)")?;
    let mut wasm = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading cargo's output")?;
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
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
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        anyhow::bail!("cargo build --release --target {TARGET} failed in {} (see above)", dir.display());
    }
    wasm.ok_or_else(|| {
        anyhow::anyhow!(
            "the build of {} wrote no .wasm: a plugin crate needs crate-type = [\"cdylib\"] under [lib]",
            manifest.display()
        )
    })
}
