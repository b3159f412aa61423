//! Real etcd servers for tests: one member or a cluster on free loopback ports, with data
//! in a temporary directory, killed when dropped.
//!
//! The binary is `$FLOTILLA_ETCD_BIN`, else `/usr/bin/etcd` (Debian's `etcd-server`, which
//! `scripts/test.sh` installs), else `etcd` on `PATH`. A missing binary is an error, never a
//! skipped test: the etcd backend must not look tested when it was not.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// How long members get to form a cluster and answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// etcd's progress notifications every 100 ms, so watch progress is testable quickly.
const PROGRESS_NOTIFY_INTERVAL: &str = "100ms";

#[derive(Debug, thiserror::Error)]
pub enum EtcdTestError {
    #[error(
        "etcd binary not found (looked at $FLOTILLA_ETCD_BIN, /usr/bin/etcd and PATH): install the Debian package \
         etcd-server (`apt-get install -y etcd-server`; scripts/test.sh does this)"
    )]
    NotInstalled,
    #[error("etcd test harness I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("etcd member {name} exited early ({status}); log {log}:\n{tail}")]
    Exited { name: String, status: String, log: PathBuf, tail: String },
    #[error("etcd cluster did not answer within {0:?}: {1}")]
    Timeout(Duration, String),
}

/// Locates the etcd binary.
pub fn etcd_binary() -> Result<PathBuf, EtcdTestError> {
    if let Some(path) = std::env::var_os("FLOTILLA_ETCD_BIN").map(PathBuf::from).filter(|p| p.is_file()) {
        return Ok(path);
    }
    let debian = Path::new("/usr/bin/etcd");
    if debian.is_file() {
        return Ok(debian.to_path_buf());
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .ok_or(EtcdTestError::NotInstalled)
}

/// A free TCP port on 127.0.0.1 (released before etcd binds it; the window is tiny).
fn free_port() -> Result<u16, EtcdTestError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// An etcd cluster of one or more members on loopback ports.
pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
    binary: PathBuf,
    // Kept last so members are killed before their data is removed.
    dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `size` members and waits until every one answers.
    pub async fn start(size: usize) -> Result<EtcdCluster, EtcdTestError> {
        let binary = etcd_binary()?;
        let dir = tempfile::Builder::new().prefix("flotilla-etcd-").tempdir()?;
        let mut members = Vec::with_capacity(size);
        for i in 0..size.max(1) {
            let name = format!("m{i}");
            members.push(Member {
                client_url: format!("http://127.0.0.1:{}", free_port()?),
                peer_url: format!("http://127.0.0.1:{}", free_port()?),
                data_dir: dir.path().join(&name),
                log: dir.path().join(format!("{name}.log")),
                name,
                child: None,
            });
        }
        let initial_cluster =
            members.iter().map(|m| format!("{}={}", m.name, m.peer_url)).collect::<Vec<_>>().join(",");
        let token = format!("flotilla-test-{}", uuid::Uuid::new_v4().simple());
        let mut cluster = EtcdCluster { members, initial_cluster, token, binary, dir };
        for i in 0..cluster.members.len() {
            cluster.spawn(i, "new")?;
        }
        cluster.wait_ready().await?;
        info!(endpoints = %cluster.endpoints().join(","), "etcd test cluster up");
        Ok(cluster)
    }

    fn spawn(&mut self, index: usize, state: &str) -> Result<(), EtcdTestError> {
        let member = &self.members[index];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&member.log)?;
        let child = Command::new(&self.binary)
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&member.data_dir)
            .args(["--listen-client-urls", &member.client_url, "--advertise-client-urls", &member.client_url])
            .args(["--listen-peer-urls", &member.peer_url, "--initial-advertise-peer-urls", &member.peer_url])
            .args(["--initial-cluster", &self.initial_cluster, "--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            .args(["--experimental-watch-progress-notify-interval", PROGRESS_NOTIFY_INTERVAL])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.members[index].child = Some(child);
        Ok(())
    }

    /// Waits until every running member answers a read.
    pub async fn wait_ready(&mut self) -> Result<(), EtcdTestError> {
        let deadline = Instant::now() + START_TIMEOUT;
        for i in 0..self.members.len() {
            if self.members[i].child.is_none() {
                continue;
            }
            loop {
                self.check_alive(i)?;
                let url = self.members[i].client_url.clone();
                let last_error = match try_read(&url).await {
                    Ok(()) => break,
                    Err(e) => e,
                };
                if Instant::now() >= deadline {
                    return Err(EtcdTestError::Timeout(START_TIMEOUT, format!("{url}: {last_error}")));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    fn check_alive(&mut self, index: usize) -> Result<(), EtcdTestError> {
        let member = &mut self.members[index];
        if let Some(child) = member.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            member.child = None;
            let text = std::fs::read_to_string(&member.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            return Err(EtcdTestError::Exited {
                name: member.name.clone(),
                status: status.to_string(),
                log: member.log.clone(),
                tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            });
        }
        Ok(())
    }

    /// Client URLs of all members.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// The client URL of one member.
    pub fn endpoint(&self, index: usize) -> &str {
        &self.members[index].client_url
    }

    /// Kills one member with SIGKILL (its data stays, so it can be restarted).
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].child.take() {
            if let Err(e) = child.kill() {
                warn!(error = %e, "killing etcd member");
            }
            let _ = child.wait();
        }
    }

    /// Restarts a killed member with its data and waits until it answers.
    pub async fn restart(&mut self, index: usize) -> Result<(), EtcdTestError> {
        if self.members[index].child.is_none() {
            self.spawn(index, "existing")?;
        }
        self.wait_ready().await
    }

    /// The directory holding the members' data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

async fn try_read(url: &str) -> Result<(), String> {
    let options = etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_secs(1));
    let mut client = etcd_client::Client::connect([url], Some(options)).await.map_err(|e| e.to_string())?;
    let read = client.get("/flotilla-test-ready", None);
    match tokio::time::timeout(Duration::from_secs(2), read).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("read timed out".to_owned()),
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
