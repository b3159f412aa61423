//! Shared harness for the end-to-end tests: hubs and simulated spokes run as real
//! `flotilla` processes on loopback ports, driven with kubectl and kube-rs.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn flotilla_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flotilla"))
}

/// A free loopback port (bound then released; loopback races are negligible here).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local addr").port()
}

fn wait_for_port(addr: SocketAddr, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not start listening on {addr} within 60s");
}

/// A server process (hub or spoke) with its data directory and admin kubeconfig.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    what: &'static str,
}

impl Server {
    /// `flotilla hub init` then `flotilla hub serve` in a fresh directory.
    pub fn hub() -> Server {
        Server::hub_with(|_| {})
    }

    /// Like [`Server::hub`], with `configure` editing `hub.json` (camelCase keys such as
    /// `leaseGraceFactor`, `autoAccept`) between init and serve.
    pub fn hub_with(configure: impl FnOnce(&mut serde_json::Value)) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let data = dir.path().join("hub");
        let out = Command::new(flotilla_bin())
            .args(["hub", "init", "--data-dir"])
            .arg(&data)
            .args(["--listen", &addr.to_string()])
            .output()
            .expect("run flotilla hub init");
        assert!(out.status.success(), "hub init failed: {}", String::from_utf8_lossy(&out.stderr));
        let config_path = data.join("hub.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config_path).expect("read hub.json")).expect("hub.json");
        configure(&mut config);
        std::fs::write(&config_path, serde_json::to_string_pretty(&config).expect("json")).expect("write hub.json");
        let args = vec!["hub".into(), "serve".into(), "--data-dir".into(), data.display().to_string()];
        let mut server =
            Server { kubeconfig: data.join("admin.kubeconfig"), dir, addr, args, child: None, what: "hub" };
        server.start();
        server
    }

    /// `flotilla spoke serve` in a fresh directory.
    pub fn spoke() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let data = dir.path().join("spoke");
        let args = vec![
            "spoke".into(),
            "serve".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--listen".into(),
            addr.to_string(),
        ];
        let mut server = Server { kubeconfig: data.join("kubeconfig"), dir, addr, args, child: None, what: "spoke" };
        server.start();
        server
    }

    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", self.what))).expect("log file");
        let mut child = Command::new(flotilla_bin())
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn flotilla");
        wait_for_port(self.addr, &mut child, self.what);
        self.child = Some(child);
        // The kubeconfig is written before the port opens; wait until the API answers.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.kubectl(&["get", "--raw", "/readyz"]);
            if out.status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "{} never became ready: {}", self.what, stderr(&out));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.start();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{}.log", self.what))).unwrap_or_default()
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl(&self.kubeconfig, args)
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?} failed: {}\n--- server log ---\n{}", stderr(&out), self.log());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl with a YAML document on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        kubectl_stdin(&self.kubeconfig, args, input)
    }

    /// Creates a namespace (kubectl apply, so it may already exist).
    pub fn namespace(&self, name: &str) {
        let out = self.kubectl_stdin(
            &["apply", "-f", "-"],
            &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"),
        );
        assert!(out.status.success(), "creating namespace {name}: {}", stderr(&out));
    }

    pub fn flotilla(&self, args: &[&str]) -> Output {
        Command::new(flotilla_bin())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run flotilla")
    }

    pub async fn client(&self) -> kube::Client {
        client_for(&self.kubeconfig).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A child process (an agent, say) that is killed when dropped, also when the test panics.
/// Its stderr goes to a log file.
pub struct Process {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Process {
    /// Runs `flotilla ARGS`, stderr to `log`, with `RUST_LOG=info`.
    pub fn flotilla(args: &[&str], log: PathBuf) -> Process {
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(flotilla_bin())
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn flotilla");
        Process { child: Some(child), log }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("the process was started")
    }

    /// Sends a signal by name (`STOP`, `CONT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status =
            Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().expect("try_wait"))
    }

    /// Waits at most `timeout` for the process to end.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        eventually(timeout, || self.exited())
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGKILL ends a stopped (SIGSTOP) process too.
        self.kill();
    }
}

pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl is installed (scripts/test.sh installs it)")
}

pub fn kubectl_stdin(kubeconfig: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("kubectl output")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await.expect("kube config");
    kube::Client::try_from(config).expect("kube client")
}

/// The workspace's `tests/fixtures` directory.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// Polls `check` until it returns Some, for at most `timeout`.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP forwarder on loopback between an agent and its hub, that a test can cut: every
/// open connection is shut down and new ones are accepted and closed at once, as a network
/// partition looks to the agent. [`Proxy::restore`] forwards again.
pub struct Proxy {
    pub addr: SocketAddr,
    state: std::sync::Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    cut: std::sync::atomic::AtomicBool,
    open: std::sync::Mutex<Vec<TcpStream>>,
    stop: std::sync::atomic::AtomicBool,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let state = std::sync::Arc::new(ProxyState::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = conn else { continue };
                if shared.cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { continue };
                {
                    let mut open = shared.open.lock().unwrap_or_else(|e| e.into_inner());
                    open.extend(client.try_clone());
                    open.extend(server.try_clone());
                }
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                };
                pipe(client, server);
                pipe(s2, c2);
            }
        });
        Proxy { addr, state }
    }

    /// Stops forwarding: open connections are shut down, new ones closed on accept.
    pub fn cut(&self) {
        self.state.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        let open = std::mem::take(&mut *self.state.open.lock().unwrap_or_else(|e| e.into_inner()));
        for stream in open {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.state.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.state.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so that it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}
