//! `flotilla plugin run --input FIXTURE.json [--world W] [--config JSON] FILE`: one
//! invocation, its result printed as JSON.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use flotilla_plugin_host::{Limits, World, run_fixture};

use super::common::{self, out};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The component (.wasm).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The fixture to run (its "expect" is ignored), or a bare input object.
    #[arg(short, long, value_name = "FIXTURE.json")]
    pub input: PathBuf,
    /// The world to run the component as [default: the fixture's, else the one it exports].
    #[arg(long, value_parser = common::parse_world, value_name = "WORLD")]
    pub world: Option<World>,
    /// The plugin's configuration as JSON, instead of the fixture's; @FILE reads it from a file.
    #[arg(long, value_name = "JSON")]
    pub config: Option<String>,
    /// The call's deadline in milliseconds [default: the fixture's limits, else 1000].
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
}

/// The limits of a call from the command line: the host's defaults, then `--timeout-ms`.
pub fn limits(host: &flotilla_plugin_host::PluginHost, timeout_ms: Option<u64>) -> Limits {
    let mut limits = host.limits(&[]);
    if let Some(ms) = timeout_ms {
        limits.timeout = Duration::from_millis(ms);
    }
    limits
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let host = common::host(None)?;
    let bytes = common::read_component(&args.file)?;
    let mut fixture = common::read_fixture(&args.input)?;
    if let Some(config) = &args.config {
        fixture.config = common::config_arg(config)?;
    }
    if let (Some(ms), Some(l)) = (args.timeout_ms, fixture.limits.as_mut()) {
        // --timeout-ms wins over the fixture's.
        l.timeout_millis = Some(ms);
    }
    let world = common::resolve_world(&host, &bytes, args.world, Some((&args.input, &fixture)))?;
    let plugin = common::load(&host, &args.file, &bytes, world)?;
    let outcome = run_fixture(&host, &plugin, &fixture, &limits(&host, args.timeout_ms))
        .map_err(|e| anyhow::anyhow!("fixture {}: {e}", args.input.display()))?;
    match outcome {
        Ok(result) => {
            out!("{}", serde_json::to_string_pretty(&result)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(anyhow::anyhow!("{e} ({})", e.reason())),
    }
}
