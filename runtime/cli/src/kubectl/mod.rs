//! kubectl-style client commands against the hub's Kubernetes-compatible API.

pub mod age;
pub mod apply;
pub mod delete;
pub mod describe;
pub mod errors;
pub mod get;
pub mod manifest;
pub mod output;
pub mod resolve;
pub mod session;
pub mod table;
pub mod tabwriter;

use std::io::Write as _;

/// Writes to stdout. A closed pipe (`flotilla get ... | head`) ends the process quietly.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(anyhow::anyhow!("writing to stdout: {e}")),
    }
}

/// Writes to stderr, ignoring failures (there is nowhere left to report them).
pub fn emit_err(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod fake_api;
#[cfg(test)]
mod flow_tests;
