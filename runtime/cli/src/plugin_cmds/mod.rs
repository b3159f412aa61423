//! `flotilla plugin ...`: write, build, inspect, run, test and benchmark Wasm plugins, and
//! push them to the hub.
//!
//! Everything but `push` works locally: `new` writes a project from a template in any of
//! the SDK languages, `build` runs the project's toolchain (`flotilla-plugin.json`), and `inspect`, `run`, `test` and `bench` run components in the same plugin
//! host as the hub (`flotilla-plugin-host`), on fixtures (see `plugins/README.md`).

use std::path::Path;
use std::process::ExitCode;

use crate::kubectl::session::Session;

mod bench;
mod build;
mod common;
mod inspect;
mod new;
mod project;
pub(crate) mod push;
mod run;
mod test;

#[derive(clap::Subcommand, Debug)]
pub enum PluginCommand {
    /// Create a plugin project from a template: flotilla plugin new NAME --lang LANG --world WORLD.
    New(new::NewArgs),
    /// Build the plugin project in a directory into a component (.wasm) and print its path.
    Build(build::BuildArgs),
    /// Show a component's world and version, imports, exports and describe().
    Inspect(inspect::InspectArgs),
    /// Run one invocation on a fixture and print the result as JSON.
    Run(run::RunArgs),
    /// Check a component against fixtures; with no arguments, build the project here and run
    /// its fixtures/*.json.
    Test(test::TestArgs),
    /// Measure a component: first and cached load, instantiation, warm-up and call latency.
    Bench(bench::BenchArgs),
    /// Upload a plugin component to the hub and create or update its WasmPlugin.
    Push(push::PushArgs),
}

pub async fn run(command: PluginCommand, kubeconfig: &Path, context: Option<&str>) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Push(args) => push::run(&Session::connect(kubeconfig, context).await?, args).await,
        // Plugin calls are synchronous and CPU-bound, and builds wait on cargo: off the
        // async runtime.
        local => tokio::task::spawn_blocking(move || run_local(local)).await?,
    }
}

fn run_local(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::New(args) => new::run(args),
        PluginCommand::Build(args) => build::run(args),
        PluginCommand::Inspect(args) => inspect::run(args),
        PluginCommand::Run(args) => run::run(args),
        PluginCommand::Test(args) => test::run(args),
        PluginCommand::Bench(args) => bench::run(args),
        PluginCommand::Push(_) => unreachable!("push talks to the hub"),
    }
}
