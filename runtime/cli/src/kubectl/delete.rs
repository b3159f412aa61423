//! `flotilla delete`: by type and names, by selector, or every object in files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject};
use serde_json::Value;

use super::apply::target;
use super::errors::{api_code, kube_message};
use super::get::parse_targets;
use super::manifest;
use super::resolve::ResourceInfo;
use super::session::Session;

/// kubectl waits a week when no timeout is given.
const FOREVER: Duration = Duration::from_secs(168 * 3600);

#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    /// `KIND NAME...` or `TYPE/NAME...`.
    pub args: Vec<String>,
    /// Delete the objects described in these files, directories or `-` (stdin).
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// Descend into subdirectories of directories given with -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Namespace (default: the kubeconfig context's, else `default`).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Delete every object of the type in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Delete the objects matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Treat "not found" as success.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Wait until the objects are gone (finalizers done). `--wait=false` returns at once.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub wait: bool,
    /// How long to wait (`30s`, `5m`); 0 waits for up to a week, like kubectl.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `1h30m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        let (num, tail) = rest.split_at(digits);
        let value: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let secs = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            _ => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
        };
        total += Duration::from_secs_f64(secs);
        rest = tail;
    }
    Ok(total)
}

struct Deleted {
    res: ResourceInfo,
    namespace: Option<String>,
    name: String,
    uid: Option<String>,
}

fn api_for(session: &Session, res: &ResourceInfo, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) if res.namespaced => Api::namespaced_with(session.client.clone(), ns, &res.api_resource()),
        _ => Api::all_with(session.client.clone(), &res.api_resource()),
    }
}

pub async fn run(session: &Session, args: DeleteArgs) -> anyhow::Result<ExitCode> {
    // (type, namespace, name) to delete, plus failures found on the way.
    let mut todo: Vec<(ResourceInfo, Option<String>, String)> = Vec::new();
    let mut failures = 0usize;
    let catalog = session.catalog().await?;

    if !args.files.is_empty() {
        if !args.args.is_empty() {
            anyhow::bail!("cannot specify both -f and resource arguments");
        }
        let read = manifest::read_sources(&args.files, args.recursive);
        for e in &read.errors {
            session.err(&format!("error: {e}\n"));
        }
        failures += read.errors.len();
        for m in &read.manifests {
            match target(&catalog, m, args.namespace.as_deref(), &session.default_namespace) {
                Ok(t) => todo.push((t.res.clone(), t.namespace, t.name)),
                Err(e) => {
                    failures += 1;
                    session.err(&format!("error: {}: {e:#}\n", m.location()));
                }
            }
        }
    } else {
        let Some((kind, names)) = args.args.split_first() else {
            anyhow::bail!(
                "you must provide one or more resources by argument or filename (KIND NAME..., TYPE/NAME... or -f FILE)"
            );
        };
        for (ty, names) in parse_targets(kind, names)? {
            let res = catalog.resolve(&ty)?;
            let namespace = res.namespaced.then(|| session.namespace(args.namespace.as_deref()));
            if names.is_empty() {
                if !args.all && args.selector.is_none() {
                    anyhow::bail!(
                        "resource(s) were provided, but no name was specified (use --all or -l to delete several)"
                    );
                }
                let list = session
                    .get(
                        &res.collection_path(namespace.as_deref()),
                        &[("labelSelector", args.selector.clone().unwrap_or_default())],
                        None,
                    )
                    .await?;
                let items = list.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
                if items.is_empty() {
                    session.err(&format!("{}\n", super::get::no_resources_message(namespace.as_deref())));
                }
                for item in items {
                    if let Some(name) = item.pointer("/metadata/name").and_then(Value::as_str) {
                        todo.push((res.clone(), namespace.clone(), name.to_string()));
                    }
                }
            } else {
                for name in names {
                    todo.push((res.clone(), namespace.clone(), name));
                }
            }
        }
    }

    let mut deleted = Vec::new();
    for (res, namespace, name) in todo {
        let api = api_for(session, &res, namespace.as_deref());
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(answer) => {
                let uid = answer.either(|obj| obj.metadata.uid, |status| status.details.map(|d| d.uid));
                session.out(&format!("{} \"{name}\" deleted\n", res.kind_group()))?;
                deleted.push(Deleted { res, namespace, name, uid: uid.filter(|u| !u.is_empty()) });
            }
            Err(e) if api_code(&e) == Some(404) && args.ignore_not_found => {}
            Err(e) => {
                failures += 1;
                session.err(&format!("{}\n", kube_message(&e)));
            }
        }
    }

    if args.wait && !deleted.is_empty() {
        let timeout = if args.timeout.is_zero() { FOREVER } else { args.timeout };
        let deadline = tokio::time::Instant::now() + timeout;
        for d in &deleted {
            if let Err(e) = wait_gone(session, d, deadline).await {
                failures += 1;
                session.err(&format!("error: {e:#}\n"));
            }
        }
    }
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Polls until the object is gone (404, or replaced by one with another uid).
async fn wait_gone(session: &Session, d: &Deleted, deadline: tokio::time::Instant) -> anyhow::Result<()> {
    let api = api_for(session, &d.res, d.namespace.as_deref());
    let mut delay = Duration::from_millis(100);
    loop {
        match api.get(&d.name).await {
            Err(e) if api_code(&e) == Some(404) => return Ok(()),
            Err(e) => {
                anyhow::bail!("waiting for {}/{} to be deleted: {}", d.res.kind_group(), d.name, kube_message(&e))
            }
            Ok(obj) => {
                if d.uid.is_some() && obj.metadata.uid != d.uid {
                    return Ok(());
                }
            }
        }
        if tokio::time::Instant::now() + delay > deadline {
            anyhow::bail!("timed out waiting for the condition on {}/{}", d.res.kind_group(), d.name);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
    }
}
