//! The command line: global options and every subcommand's arguments.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

use crate::kubectl::apply::ApplyArgs;
use crate::kubectl::delete::DeleteArgs;
use crate::kubectl::describe::DescribeArgs;
use crate::kubectl::get::GetArgs;

#[derive(Parser, Debug)]
#[command(
    name = "flotilla",
    version,
    about = "Flotilla: a multicluster control plane (Open Cluster Management compatible)",
    propagate_version = true
)]
pub struct Cli {
    /// Kubeconfig for talking to the hub [default: DATA_DIR/admin.kubeconfig, where DATA_DIR
    /// is $FLOTILLA_DATA_DIR or ~/.flotilla/hub].
    #[arg(long, global = true, env = "FLOTILLA_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use [default: its current-context].
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// More logging on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides when no -v).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Display one or many objects (like kubectl get).
    Get(GetArgs),
    /// Show details of objects and their events (like kubectl describe).
    Describe(DescribeArgs),
    /// Server-side apply objects from files, directories or stdin.
    Apply(ApplyArgs),
    /// Delete objects by type and name, selector, or from files.
    Delete(DeleteArgs),
    /// Run or initialise the hub.
    Hub {
        #[command(subcommand)]
        command: HubCommand,
    },
    /// Run a simulated spoke cluster (a Kubernetes-style API without kubelet).
    Spoke {
        #[command(subcommand)]
        command: SpokeCommand,
    },
    /// Start a hub and simulated spokes and walk through the whole story.
    Demo(DemoArgs),
    /// Create, list and revoke bootstrap tokens that let clusters join.
    Token {
        #[command(subcommand)]
        command: crate::registration_cmds::TokenCommand,
    },
    /// Accept clusters: approve their certificate requests and set hubAcceptsClient.
    Accept(crate::registration_cmds::ClusterNames),
    /// Deny clusters: deny their certificate requests and clear hubAcceptsClient.
    Deny(crate::registration_cmds::ClusterNames),
    /// Run the agent of a managed cluster: join the hub and keep the cluster joined.
    Agent {
        #[command(subcommand)]
        command: crate::agent_cmds::AgentCommand,
    },
    /// Write, build, inspect, run, test and benchmark Wasm plugins; push them to the hub.
    Plugin {
        #[command(subcommand)]
        command: crate::plugin_cmds::PluginCommand,
    },
    /// Inspect placement scheduling: why a Placement selects the clusters it does.
    Placement {
        #[command(subcommand)]
        command: crate::placement_cmds::PlacementCommand,
    },
    /// Follow and undo ManifestWorkReplicaSet rollouts: status [--watch], history, undo.
    Rollout {
        #[command(subcommand)]
        command: crate::rollout_cmds::RolloutCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum HubCommand {
    /// Create the data directory: CA, serving certificate, admin.kubeconfig.
    Init(HubArgs),
    /// Serve the hub API and run its controllers.
    Serve(HubArgs),
}

#[derive(Subcommand, Debug)]
pub enum SpokeCommand {
    /// Serve a simulated spoke's API.
    Serve(SpokeServeArgs),
}

/// Storage backend of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StoreKind {
    /// Embedded redb database in the data directory.
    #[default]
    Redb,
    /// An etcd cluster (for several hub replicas).
    Etcd,
}

#[derive(clap::Args, Debug, Clone)]
pub struct HubArgs {
    /// Data directory [default: $FLOTILLA_DATA_DIR, else ~/.flotilla/hub].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (ADDR:PORT).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Extra DNS names or IP addresses for the hub's serving certificate (`hub init`).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub san: Vec<String>,
    /// Storage backend.
    #[arg(long, value_enum, default_value_t = StoreKind::Redb)]
    pub store: StoreKind,
    /// etcd endpoints, comma-separated (with --store etcd).
    #[arg(long, value_name = "URLS", value_delimiter = ',', required_if_eq("store", "etcd"))]
    pub etcd_endpoints: Vec<String>,
    /// Prefix of this hub's etcd keys (with --store etcd); hubs of different fleets on one
    /// etcd use different prefixes.
    #[arg(long, value_name = "PREFIX", default_value = "/flotilla/")]
    pub etcd_prefix: String,
}

impl HubArgs {
    /// `--data-dir`, else the default data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct SpokeServeArgs {
    /// Data directory of the simulated spoke.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on (ADDR:PORT).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: String,
    /// How long Deployments, Jobs, Pods... take to become ready (`0s`, `500ms`, `5s`); one
    /// object can ask for its own with the `sim.flotilla.dev/ready-after-seconds` annotation.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::kubectl::delete::parse_duration)]
    pub ready_delay: std::time::Duration,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Where the demo keeps its hub and spokes [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `$FLOTILLA_DATA_DIR`, else `~/.flotilla/hub`: the hub's own default.
pub use flotilla_hub::default_data_dir;

/// The admin kubeconfig inside a data directory.
pub use flotilla_hub::admin_kubeconfig_path as admin_kubeconfig;

impl Cli {
    /// `--kubeconfig` / `$FLOTILLA_KUBECONFIG`, else the default data dir's admin kubeconfig.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.kubeconfig
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| admin_kubeconfig(&default_data_dir()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("flotilla").chain(args.iter().copied()))
    }

    #[test]
    fn parses_client_commands() {
        let cli = parse(&["get", "clusters", "-o", "wide", "-l", "a=b", "-v"]).expect("get");
        assert_eq!(cli.verbose, 1);
        let Command::Get(get) = cli.command else { panic!("not get") };
        assert_eq!(get.kind, "clusters");
        assert_eq!(get.output, Some(crate::kubectl::output::OutputFormat::Wide));
        assert_eq!(get.selector.as_deref(), Some("a=b"));

        let cli = parse(&["--kubeconfig", "/k", "get", "works", "w1", "-n", "c1", "-w"]).expect("get");
        assert_eq!(cli.kubeconfig_path(), PathBuf::from("/k"));
        let Command::Get(get) = cli.command else { panic!("not get") };
        assert_eq!(get.names, ["w1"]);
        assert!(get.watch);

        let cli = parse(&["apply", "-f", "a.yaml", "-f", "-", "--force-conflicts"]).expect("apply");
        let Command::Apply(apply) = cli.command else { panic!("not apply") };
        assert_eq!(apply.files.len(), 2);
        assert_eq!(apply.field_manager, "flotilla");
        assert!(apply.force_conflicts);

        let cli = parse(&["delete", "clusters", "a", "b", "--wait=false"]).expect("delete");
        let Command::Delete(del) = cli.command else { panic!("not delete") };
        assert_eq!(del.args, ["clusters", "a", "b"]);
        assert!(!del.wait);
        let cli = parse(&["delete", "-f", "x.yaml"]).expect("delete -f");
        let Command::Delete(del) = cli.command else { panic!("not delete") };
        assert!(del.wait);
        assert!(parse(&["get", "clusters", "-o", "table"]).is_err());

        let cli = parse(&["placement", "explain", "web", "-n", "apps", "-o", "json"]).expect("placement explain");
        let Command::Placement { command: crate::placement_cmds::PlacementCommand::Explain(explain) } = cli.command
        else {
            panic!("not placement explain")
        };
        assert_eq!((explain.name.as_str(), explain.namespace.as_deref()), ("web", Some("apps")));
        assert_eq!(explain.output, Some(crate::placement_cmds::ExplainOutput::Json));
        assert!(parse(&["placement", "explain"]).is_err(), "a name is required");
        assert!(parse(&["placement", "explain", "web", "-o", "wide"]).is_err());
    }

    #[test]
    fn parses_server_commands() {
        let cli = parse(&[
            "hub",
            "serve",
            "--data-dir",
            "/d",
            "--listen",
            "0.0.0.0:6443",
            "--store",
            "etcd",
            "--etcd-endpoints",
            "http://a:2379,http://b:2379",
        ])
        .expect("hub serve");
        let Command::Hub { command: HubCommand::Serve(hub) } = cli.command else { panic!("not hub serve") };
        assert_eq!(hub.data_dir(), PathBuf::from("/d"));
        assert_eq!(hub.store, StoreKind::Etcd);
        assert_eq!(hub.etcd_endpoints, ["http://a:2379", "http://b:2379"]);
        assert_eq!(hub.etcd_prefix, "/flotilla/");
        assert!(parse(&["hub", "serve", "--store", "etcd"]).is_err());

        let cli = parse(&["hub", "init"]).expect("hub init");
        let Command::Hub { command: HubCommand::Init(hub) } = cli.command else { panic!("not hub init") };
        assert_eq!(hub.store, StoreKind::Redb);

        assert!(parse(&["spoke", "serve", "--data-dir", "/s"]).is_err());
        let cli = parse(&["spoke", "serve", "--data-dir", "/s", "--listen", "127.0.0.1:7000"]).expect("spoke serve");
        let Command::Spoke { command: SpokeCommand::Serve(spoke) } = cli.command else { panic!("not spoke serve") };
        assert_eq!(spoke.ready_delay, std::time::Duration::from_secs(1));
        let cli = parse(&["spoke", "serve", "--data-dir", "/s", "--listen", "127.0.0.1:7000", "--ready-delay", "0s"])
            .expect("spoke serve --ready-delay");
        let Command::Spoke { command: SpokeCommand::Serve(spoke) } = cli.command else { panic!("not spoke serve") };
        assert!(spoke.ready_delay.is_zero());
        assert!(parse(&["demo"]).is_ok());
    }
}
