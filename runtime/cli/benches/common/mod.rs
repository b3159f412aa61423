//! Helpers shared by the benchmarks: the hub as a separate `flotilla` process (so its RSS
//! and CPU can be read alone from /proc), kube clients, and /proc readings.

// Each benchmark uses a subset of these helpers.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The process-wide TLS provider kube-rs needs, and the agents' logs on stderr when
/// `RUST_LOG` is set.
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// Resident set size of a process, KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat` (clock-tick
/// resolution, usually 10 ms).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it are fixed.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15; `fields` starts at field 3.
    let ticks = field(11) + field(12);
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).ok().filter(|t| *t > 0).unwrap_or(100);
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// Raises this process's soft limit on open files to at least `wanted` (up to the hard
/// limit); children started afterwards inherit it. Returns the limit now in force.
pub fn raise_fd_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid, initialised struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit { rlim_cur: wanted.min(limit.rlim_max), rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// `flotilla hub init` in `data`, listening on `port`; `configure` may then edit hub.json
/// (for example to set `autoAccept`).
pub fn init_hub(data: &Path, port: u16, configure: impl FnOnce(&mut serde_json::Value)) {
    let init = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["hub", "init", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .output()
        .expect("run flotilla hub init");
    assert!(init.status.success(), "flotilla hub init failed: {}", String::from_utf8_lossy(&init.stderr));
    let path = data.join("hub.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read hub.json")).expect("hub.json is JSON");
    configure(&mut config);
    std::fs::write(&path, serde_json::to_string_pretty(&config).expect("json")).expect("write hub.json");
}

/// Starts `flotilla ARGS` with stderr to `log`. It dies with the benchmark even when that is
/// killed outright (no Drop runs then).
pub fn spawn_flotilla(args: &[&str], log: std::fs::File) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    command.args(args).stdout(Stdio::null()).stderr(log);
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command.spawn().expect("start flotilla")
}

/// A running `flotilla hub serve`, killed when dropped (also when the benchmark panics).
pub struct HubProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    log: PathBuf,
}

impl HubProcess {
    /// Serves the hub initialised in `data` on `127.0.0.1:port`, its log in `DATA/hub.log`
    /// (appended), and waits until the port accepts connections. Panics with the log's tail
    /// when the hub exits or does not listen within a minute.
    pub fn serve(data: &Path, port: u16) -> HubProcess {
        let log = data.join("hub.log");
        let log_file =
            std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("open the hub's log file");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let data_text = data.display().to_string();
        let child =
            spawn_flotilla(&["hub", "serve", "--data-dir", &data_text, "--listen", &addr.to_string()], log_file);
        // From here on the guard kills the hub, whatever happens.
        let mut hub = HubProcess { child, addr, kubeconfig: data.join("admin.kubeconfig"), log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = hub.child.try_wait() {
                panic!("the hub exited at start with {status}:\n{}", hub.log_tail(40));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return hub;
            }
            assert!(Instant::now() < deadline, "the hub did not listen on {addr} within 60 s:\n{}", hub.log_tail(40));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the hub is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `lines` lines of the hub's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn stop(self) {
        // Drop kills and reaps it.
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kube client from a kubeconfig file.
pub async fn client(kubeconfig: &Path) -> kube::Client {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await.expect("config");
    kube::Client::try_from(config).expect("client")
}

/// One bootstrap token for every agent of a benchmark (as a ZTP pipeline would hand out),
/// created on the hub initialised in `hub_data`; with the hub CA's pin.
pub async fn bootstrap_token(
    admin: &kube::Client,
    hub_data: &Path,
    description: &str,
) -> (flotilla_registration::token::Token, String) {
    use kube::api::{Api, DynamicObject, PostParams};
    let token = flotilla_registration::token::Token::generate().expect("token");
    let tokens = kube::api::ApiResource {
        group: "flotilla.dev".into(),
        version: "v1alpha1".into(),
        api_version: "flotilla.dev/v1alpha1".into(),
        kind: "BootstrapToken".into(),
        plural: "bootstraptokens".into(),
    };
    let object: DynamicObject =
        serde_json::from_value(flotilla_registration::token::object(&token, None, description)).expect("token object");
    Api::<DynamicObject>::all_with(admin.clone(), &tokens)
        .create(&PostParams::default(), &object)
        .await
        .expect("create the bootstrap token");
    let ca_pem = std::fs::read_to_string(hub_data.join("pki/ca.crt")).expect("hub CA");
    (token, flotilla_pki::ca_hash_of_pem(&ca_pem).expect("CA hash"))
}

/// The simulated spoke (in this process, under `dir`) that every in-process agent shares,
/// and the source the agents reach it through.
pub async fn shared_spoke(dir: &Path) -> (flotilla_apiserver::host::RunningServer, flotilla_agent::SpokeSource) {
    let spoke = flotilla_spoke::start(flotilla_spoke::SpokeOptions {
        data_dir: dir.to_path_buf(),
        listen: ([127, 0, 0, 1], 0).into(),
        name: "bench-spoke".into(),
        nodes: 3,
        ready_delay: flotilla_spoke::DEFAULT_READY_DELAY,
    })
    .await
    .expect("start the simulated spoke");
    let kubeconfig = flotilla_spoke::kubeconfig_path(dir);
    let source = flotilla_agent::SpokeSource::Client {
        client: client(&kubeconfig).await,
        url: spoke.url.clone(),
        ca_pem: flotilla_pki::Kubeconfig::load(&kubeconfig).and_then(|k| k.ca_pem()).ok(),
    };
    (spoke, source)
}
