//! `flotilla`: the one binary. Client commands (get, describe, apply, delete) talk to the
//! hub's Kubernetes-compatible API through a kubeconfig; server commands run the hub, a
//! simulated spoke or the demo.

mod agent_cmds;
mod args;
mod demo;
mod kubectl;
mod placement_cmds;
mod plugin_cmds;
mod registration_cmds;
mod rollout_cmds;
mod server_cmds;

use std::process::ExitCode;

use clap::Parser as _;

use args::{Cli, Command, HubCommand, SpokeCommand};
use kubectl::session::Session;

fn init_logging(verbose: u8, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = match verbose {
        0 => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        1 => EnvFilter::new("info"),
        2 => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let server_command = matches!(cli.command, Command::Hub { .. } | Command::Spoke { .. });
    let agent_command = matches!(cli.command, Command::Agent { .. });
    // Client commands (and the agent) report failures themselves; kube's own request error
    // logs only add noise.
    // Plugin commands report a plugin's failures themselves; the plugin's own log lines are
    // worth seeing (`flotilla::plugin`), the host's warnings about them are not.
    let plugin_command = matches!(cli.command, Command::Plugin { .. });
    let default_level = match (server_command, agent_command) {
        (true, _) => "info",
        (_, true) => "info,kube_client=off",
        _ if plugin_command => "warn,kube_client=off,flotilla_plugin_host=error,flotilla::plugin=info",
        _ => "warn,kube_client=off",
    };
    init_logging(cli.verbose, default_level);
    // One process-wide TLS provider, whatever else the dependency graph enables.
    let _ = rustls::crypto::ring::default_provider().install_default();

    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            let message = format!("{e:#}");
            if message.starts_with("Error from server") {
                kubectl::emit_err(&format!("{message}\n"));
            } else {
                kubectl::emit_err(&format!("error: {message}\n"));
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let kubeconfig = cli.kubeconfig_path();
    let context = cli.context.clone();
    let session = || Session::connect(&kubeconfig, context.as_deref());
    match cli.command {
        Command::Get(args) => kubectl::get::run(&session().await?, args).await,
        Command::Describe(args) => kubectl::describe::run(&session().await?, args).await,
        Command::Apply(args) => kubectl::apply::run(&session().await?, args).await,
        Command::Delete(args) => kubectl::delete::run(&session().await?, args).await,
        Command::Hub { command } => {
            match command {
                HubCommand::Init(args) => server_cmds::hub_init(args).await?,
                HubCommand::Serve(args) => server_cmds::hub_serve(args).await?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Spoke { command: SpokeCommand::Serve(args) } => {
            server_cmds::spoke_serve(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command } => {
            registration_cmds::token(&session().await?, &kubeconfig, context.as_deref(), command).await
        }
        Command::Accept(args) => registration_cmds::accept(&session().await?, args).await,
        Command::Deny(args) => registration_cmds::deny(&session().await?, args).await,
        Command::Agent { command } => agent_cmds::run(command, cli.kubeconfig.clone(), context.clone()).await,
        Command::Plugin { command } => plugin_cmds::run(command, &kubeconfig, context.as_deref()).await,
        Command::Placement { command } => placement_cmds::run(&session().await?, command).await,
        Command::Rollout { command } => rollout_cmds::run(&session().await?, command).await,
        Command::Demo(args) => {
            server_cmds::demo(args).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
