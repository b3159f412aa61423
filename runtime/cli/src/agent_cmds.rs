//! `flotilla agent join`: the agent side of registration (the `flotilla-agent` crate, see
//! docs/registration.md). Joins this cluster to a hub, then keeps it joined (lease, status,
//! certificate rotation) until SIGINT/SIGTERM.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::CommandFactory as _;
use clap::parser::ValueSource;
use flotilla_agent::{AgentOptions, SpokeSource};

#[derive(clap::Subcommand, Debug)]
pub enum AgentCommand {
    /// Join this cluster to a hub and keep it joined (lease, status, certificate rotation).
    ///
    /// The spoke is the cluster the global --kubeconfig (and --context) names, else the
    /// in-cluster configuration or $KUBECONFIG; --simulated starts a simulated spoke in
    /// this process instead. A data directory that already holds an identity needs neither
    /// --token nor --hub-ca-hash (restarts).
    Join(JoinArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct JoinArgs {
    /// The hub's API URL, such as https://hub.example.com:6443. Replicas of one hub (on one
    /// etcd cluster) may be listed: repeat the flag or separate them with commas. The agent
    /// uses the first that answers and moves to the next when it stops answering, keeping
    /// its identity and its watches.
    #[arg(long, visible_alias = "hub-url", value_name = "URL", required = true, value_delimiter = ',')]
    pub hub: Vec<String>,
    /// Bootstrap token (ID.SECRET) from `flotilla token create`.
    #[arg(long, value_name = "TOKEN", env = "FLOTILLA_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Name of this cluster on the hub (its ManagedCluster and namespace).
    #[arg(long, value_name = "NAME")]
    pub cluster_name: String,
    /// Pin the hub CA by the SHA-256 of its public key (printed by `flotilla token create`).
    #[arg(long, value_name = "sha256:HEX")]
    pub hub_ca_hash: Option<String>,
    /// Start a simulated spoke in this process (under DATA_DIR/spoke) instead of using a cluster.
    #[arg(long)]
    pub simulated: bool,
    /// Where the agent keeps its key, certificate and hub kubeconfig
    /// [default: $FLOTILLA_AGENT_DATA_DIR, else ~/.flotilla/agents/NAME].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Renew the lease this often [default: the ManagedCluster's leaseDurationSeconds, 60].
    /// A ManagedCluster the agent creates gets this duration too (short ones are for tests).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_duration_seconds: Option<u64>,
    /// Report at most this many custom ClusterClaims (sorted by name); reserved ones always.
    #[arg(long, value_name = "N", default_value_t = flotilla_agent::claims::DEFAULT_MAX_CUSTOM_CLAIMS)]
    pub max_custom_cluster_claims: usize,
    /// Check the spoke's health and report status this often.
    #[arg(long, value_name = "N", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub status_sync_seconds: u64,
    /// A spoke health failure must last this long before the cluster is reported unavailable.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub health_grace_seconds: u64,
    /// Ask for certificates valid this long [default: the hub's].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(600..))]
    pub cert_expiration_seconds: Option<i32>,
    /// Reconcile every ManifestWork this often (`10s`, `1m`): drift on the spoke is put back
    /// and status feedback refreshed at this pace.
    /// A bare number is seconds (`--work-resync-seconds N` is accepted too).
    #[arg(long, value_name = "DURATION", default_value = "10s", alias = "work-resync-seconds",
        value_parser = crate::kubectl::delete::parse_duration)]
    pub work_resync_period: Duration,
    /// How long an AppliedManifestWork whose ManifestWork is gone from the hub is kept before
    /// it and the resources it applied are evicted (`60m`).
    #[arg(long, value_name = "DURATION", default_value = "60m", alias = "applied-work-eviction-grace-seconds",
        value_parser = crate::kubectl::delete::parse_duration)]
    pub applied_work_eviction_grace: Duration,
    /// The largest raw JSON value (a list or an object) status feedback reports, in bytes;
    /// larger values are refused with a message in the work's status (OCM: 1024, fixed).
    #[arg(long, value_name = "N", default_value_t = flotilla_agent::work::feedback::DEFAULT_MAX_JSON_RAW_BYTES as u64,
        value_parser = clap::value_parser!(u64).range(0..=flotilla_agent::work::feedback::MAX_JSON_RAW_BYTES as u64))]
    pub max_feedback_json_bytes: u64,
    /// Serve the agent's plugin metrics (Prometheus text) at http://ADDR:PORT/metrics: plain
    /// HTTP without authentication, so a loopback address such as 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Whether `--kubeconfig` was given on the command line rather than through
/// `$FLOTILLA_KUBECONFIG`: that variable names the hub for the client commands, and must
/// not silently become the agent's spoke.
fn kubeconfig_on_command_line(args: impl IntoIterator<Item = OsString>) -> bool {
    crate::args::Cli::command()
        .try_get_matches_from(args)
        .is_ok_and(|m| m.value_source("kubeconfig") == Some(ValueSource::CommandLine))
}

/// Where the agent's spoke is, from `--simulated` and the global `--kubeconfig`/`--context`.
fn spoke_source(simulated: bool, kubeconfig: Option<PathBuf>, context: Option<String>) -> anyhow::Result<SpokeSource> {
    Ok(match (simulated, kubeconfig) {
        (true, Some(path)) => {
            bail!("--simulated and --kubeconfig {} are alternatives: pick the spoke one way", path.display())
        }
        (true, None) => SpokeSource::Simulated,
        (false, Some(path)) => SpokeSource::Kubeconfig { path, context },
        (false, None) => SpokeSource::Infer,
    })
}

fn options(args: JoinArgs, spoke: SpokeSource) -> AgentOptions {
    let data_dir = args.data_dir.unwrap_or_else(|| flotilla_agent::default_data_dir(&args.cluster_name));
    let mut urls = args.hub.iter().map(|u| u.trim().to_string()).filter(|u| !u.is_empty());
    let first = urls.next().unwrap_or_default();
    let mut opts = AgentOptions::new(&first, &args.cluster_name, data_dir, spoke);
    opts.fallback_hub_urls = urls.collect();
    opts.token = args.token.filter(|t| !t.is_empty());
    opts.hub_ca_hash = args.hub_ca_hash;
    opts.lease_duration = args.lease_duration_seconds.map(Duration::from_secs);
    opts.max_custom_cluster_claims = args.max_custom_cluster_claims;
    opts.status_period = Duration::from_secs(args.status_sync_seconds);
    opts.health_grace = Duration::from_secs(args.health_grace_seconds);
    opts.cert_expiration_seconds = args.cert_expiration_seconds;
    opts.metrics_listen = args.metrics_listen;
    opts.work_resync_period = args.work_resync_period;
    opts.applied_work_eviction_grace = args.applied_work_eviction_grace;
    opts.max_feedback_json_bytes = usize::try_from(args.max_feedback_json_bytes).unwrap_or(usize::MAX);
    opts
}

pub async fn run(
    command: AgentCommand,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
) -> anyhow::Result<ExitCode> {
    let AgentCommand::Join(args) = command;
    let kubeconfig = kubeconfig.filter(|_| kubeconfig_on_command_line(std::env::args_os()));
    let context = context.filter(|_| kubeconfig.is_some());
    let spoke = spoke_source(args.simulated, kubeconfig, context)?;
    let opts = options(args, spoke);
    eprintln!(
        "flotilla agent: cluster {} joining {} (data directory {})",
        opts.cluster_name,
        opts.hub_urls().join(", "),
        opts.data_dir.display()
    );
    flotilla_agent::run(opts, wait_for_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping the agent");
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping the agent");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser as _;

    use super::*;
    use crate::args::{Cli, Command};

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("flotilla").chain(args.iter().copied()).map(OsString::from).collect()
    }

    fn join(args: &[&str]) -> (Cli, JoinArgs) {
        let cli = Cli::try_parse_from(argv(args)).unwrap();
        let Command::Agent { command: AgentCommand::Join(join) } = &cli.command else { panic!("not agent join") };
        let join = join.clone();
        (cli, join)
    }

    #[test]
    fn parses_agent_join() {
        let hash = format!("sha256:{}", "ab".repeat(32));
        let (cli, args) = join(&[
            "agent",
            "join",
            "--hub",
            "https://127.0.0.1:6443",
            "--token",
            "abcdef.0123456789abcdef",
            "--cluster-name",
            "c1",
            "--hub-ca-hash",
            &hash,
            "--kubeconfig",
            "/spoke.kubeconfig",
            "--data-dir",
            "/d",
            "--lease-duration-seconds",
            "5",
            "--work-resync-period",
            "500ms",
        ]);
        assert_eq!(cli.kubeconfig.as_deref(), Some(std::path::Path::new("/spoke.kubeconfig")));
        let opts = options(args.clone(), SpokeSource::Infer);
        assert_eq!(opts.hub_url, "https://127.0.0.1:6443");
        assert_eq!(opts.token.as_deref(), Some("abcdef.0123456789abcdef"));
        assert_eq!(opts.hub_ca_hash.as_deref(), Some(hash.as_str()));
        assert_eq!(opts.data_dir, PathBuf::from("/d"));
        assert_eq!(opts.lease_duration, Some(Duration::from_secs(5)));
        assert_eq!(opts.max_custom_cluster_claims, 20);
        assert_eq!(opts.status_period, Duration::from_secs(60));
        assert_eq!(opts.health_grace, Duration::from_secs(20));
        assert_eq!(opts.work_resync_period, Duration::from_millis(500));
        assert_eq!(opts.applied_work_eviction_grace, Duration::from_secs(3600));

        let (_, args) =
            join(&["agent", "join", "--hub", "https://h", "--cluster-name", "c1", "--work-resync-seconds", "2"]);
        assert_eq!(options(args, SpokeSource::Infer).work_resync_period, Duration::from_secs(2));

        let (_, args) = join(&["agent", "join", "--hub", "https://h", "--cluster-name", "c1"]);
        assert_eq!(options(args, SpokeSource::Infer).max_feedback_json_bytes, 1024, "OCM's default");
        let (_, args) = join(&[
            "agent",
            "join",
            "--hub",
            "https://h",
            "--cluster-name",
            "c1",
            "--max-feedback-json-bytes",
            "65536",
        ]);
        assert_eq!(options(args, SpokeSource::Infer).max_feedback_json_bytes, 65536);
        let too_big = Cli::try_parse_from(argv(&[
            "agent",
            "join",
            "--hub",
            "https://h",
            "--cluster-name",
            "c1",
            "--max-feedback-json-bytes",
            "65537",
        ]));
        assert!(too_big.is_err(), "above what the hub's schema accepts");

        let (_, args) = join(&["agent", "join", "--hub", "https://h", "--cluster-name", "c1", "--simulated"]);
        assert!(args.simulated);
        assert_eq!(options(args, SpokeSource::Simulated).data_dir, flotilla_agent::default_data_dir("c1"));

        assert!(Cli::try_parse_from(argv(&["agent", "join", "--hub", "https://h"])).is_err());
        assert!(
            Cli::try_parse_from(argv(&[
                "agent",
                "join",
                "--hub",
                "h",
                "--cluster-name",
                "c",
                "--lease-duration-seconds",
                "0"
            ]))
            .is_err()
        );
    }

    #[test]
    fn several_hub_urls_repeated_or_comma_separated() {
        let (_, args) = join(&[
            "agent",
            "join",
            "--hub-url",
            "https://a:6443,https://b:6443/",
            "--hub",
            "https://c:6443",
            "--hub-url",
            "https://a:6443",
            "--cluster-name",
            "c1",
        ]);
        let opts = options(args, SpokeSource::Infer);
        assert_eq!(opts.hub_url, "https://a:6443");
        assert_eq!(opts.hub_urls(), ["https://a:6443", "https://b:6443", "https://c:6443"], "in order, once each");
        assert!(
            Cli::try_parse_from(argv(&["agent", "join", "--cluster-name", "c1"])).is_err(),
            "a hub URL is required"
        );
    }

    #[test]
    fn the_spoke_comes_from_the_command_line_only() {
        let given = argv(&["agent", "join", "--hub", "https://h", "--cluster-name", "c1", "--kubeconfig", "/k"]);
        assert!(kubeconfig_on_command_line(given));
        let global_first = argv(&["--kubeconfig", "/k", "agent", "join", "--hub", "https://h", "--cluster-name", "c1"]);
        assert!(kubeconfig_on_command_line(global_first));
        let absent = argv(&["agent", "join", "--hub", "https://h", "--cluster-name", "c1"]);
        assert!(!kubeconfig_on_command_line(absent));

        assert!(matches!(spoke_source(true, None, None).unwrap(), SpokeSource::Simulated));
        assert!(matches!(spoke_source(false, None, None).unwrap(), SpokeSource::Infer));
        assert!(matches!(
            spoke_source(false, Some("/k".into()), Some("ctx".into())).unwrap(),
            SpokeSource::Kubeconfig { context: Some(_), .. }
        ));
        let err = spoke_source(true, Some("/k".into()), None).unwrap_err();
        assert!(err.to_string().contains("alternatives"), "{err}");
    }
}
