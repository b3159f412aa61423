//! Server-side commands: `hub init`, `hub serve`, `spoke serve`, `demo`.

use std::net::SocketAddr;

use anyhow::{Context, bail};

use crate::args::{DemoArgs, HubArgs, SpokeServeArgs, StoreKind};

fn parse_listen(listen: &str) -> anyhow::Result<SocketAddr> {
    listen.parse().with_context(|| format!("--listen {listen:?} is not an ADDR:PORT such as 127.0.0.1:6443"))
}

/// The store `hub serve` runs on.
fn hub_store(args: &HubArgs) -> anyhow::Result<flotilla_hub::HubStore> {
    match args.store {
        StoreKind::Redb => Ok(flotilla_hub::HubStore::Embedded),
        StoreKind::Etcd => {
            if args.etcd_endpoints.is_empty() {
                bail!("--store etcd needs --etcd-endpoints URL[,URL...]");
            }
            if !args.etcd_prefix.starts_with('/') || !args.etcd_prefix.ends_with('/') {
                bail!("--etcd-prefix {:?} must start and end with '/'", args.etcd_prefix);
            }
            Ok(flotilla_hub::HubStore::Etcd {
                endpoints: args.etcd_endpoints.clone(),
                prefix: args.etcd_prefix.clone(),
            })
        }
    }
}

/// `flotilla hub init`: creates the data directory, CA, certificates and `DIR/admin.kubeconfig`.
pub async fn hub_init(args: HubArgs) -> anyhow::Result<()> {
    // The data directory is local even with etcd: each replica is initialized, and the first
    // to serve shares its CA through etcd.
    let data_dir = args.data_dir();
    let listen = parse_listen(args.listen.as_deref().unwrap_or(flotilla_hub::DEFAULT_LISTEN))?;
    let config = flotilla_hub::HubConfig { extra_sans: args.san.clone(), ..flotilla_hub::HubConfig::new(listen) };
    let kubeconfig = flotilla_hub::init(&data_dir, &config)?;
    println!("Hub initialized in {}", data_dir.display());
    println!("  admin kubeconfig: {}", kubeconfig.display());
    println!("Start it with:\n  flotilla hub serve --data-dir {}", data_dir.display());
    println!("Then:\n  kubectl --kubeconfig {} get managedclusters", kubeconfig.display());
    Ok(())
}

/// `flotilla hub serve`: runs the hub until SIGINT/SIGTERM.
pub async fn hub_serve(args: HubArgs) -> anyhow::Result<()> {
    let store = hub_store(&args)?;
    let listen = args.listen.as_deref().map(parse_listen).transpose()?;
    let hub = flotilla_hub::start_with_store(&args.data_dir(), listen, store).await?;
    eprintln!(
        "flotilla hub serving at {} (kubeconfig {})",
        hub.url,
        flotilla_hub::admin_kubeconfig_path(&args.data_dir()).display()
    );
    hub.run_until_signal().await;
    Ok(())
}

/// `flotilla spoke serve`: runs a simulated spoke until SIGINT/SIGTERM.
pub async fn spoke_serve(args: SpokeServeArgs) -> anyhow::Result<()> {
    let listen = parse_listen(&args.listen)?;
    let name =
        args.data_dir.file_name().and_then(|n| n.to_str()).filter(|n| !n.is_empty()).unwrap_or("spoke").to_string();
    let spoke = flotilla_spoke::start(flotilla_spoke::SpokeOptions {
        data_dir: args.data_dir.clone(),
        listen,
        name,
        nodes: 3,
        ready_delay: args.ready_delay,
    })
    .await?;
    eprintln!(
        "flotilla simulated spoke serving at {} (kubeconfig {})",
        spoke.url,
        flotilla_spoke::kubeconfig_path(&args.data_dir).display()
    );
    spoke.run_until_signal().await;
    Ok(())
}

/// `flotilla demo`: hub, simulated spoke and the whole story so far.
pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    crate::demo::run(args).await
}
