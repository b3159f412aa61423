//! `flotilla apply -f`: server-side apply of every object in files, directories or stdin.

use std::path::PathBuf;
use std::process::ExitCode;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::errors::{api_code, kube_message};
use super::manifest::{self, Manifest};
use super::resolve::{Catalog, ResourceInfo};
use super::session::Session;

#[derive(clap::Args, Debug, Clone)]
pub struct ApplyArgs {
    /// File, directory or `-` (stdin) with YAML or JSON objects; repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Descend into subdirectories of directories given with -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Namespace for namespaced objects that do not set one.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Take ownership of fields other managers own.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Field manager name for server-side apply.
    #[arg(long, default_value = "flotilla")]
    pub field_manager: String,
    /// Accepted for kubectl compatibility; apply is always server-side.
    #[arg(long, hide = true)]
    pub server_side: bool,
    /// `server`: have the server validate without persisting.
    #[arg(long, value_parser = ["none", "server"], default_value = "none")]
    pub dry_run: String,
}

/// Where an object goes: its type, namespace (if namespaced) and name.
#[derive(Debug, Clone, PartialEq)]
pub struct Target<'a> {
    pub res: &'a ResourceInfo,
    pub namespace: Option<String>,
    pub name: String,
}

/// Works out type, namespace and name of a manifest, with kubectl's rules: the object's own
/// namespace, else `-n`, else the default; `-n` that disagrees with the object is an error;
/// cluster-scoped objects have none.
pub fn target<'a>(
    catalog: &'a Catalog,
    m: &Manifest,
    flag_namespace: Option<&str>,
    default_namespace: &str,
) -> anyhow::Result<Target<'a>> {
    if m.api_version().is_empty() || m.kind().is_empty() {
        anyhow::bail!("apiVersion and kind are required");
    }
    let name = m.name();
    if name.is_empty() {
        anyhow::bail!("metadata.name is required");
    }
    let res = catalog.for_gvk(m.api_version(), m.kind()).map_err(|e| {
        anyhow::anyhow!(
            "resource mapping not found for name: \"{name}\" namespace: \"{}\": {e}; ensure CRDs are installed first",
            m.namespace()
        )
    })?;
    let namespace = if res.namespaced {
        let own = m.namespace();
        match flag_namespace.filter(|n| !n.is_empty()) {
            Some(flag) if !own.is_empty() && own != flag => anyhow::bail!(
                "the namespace from the provided object \"{own}\" does not match the namespace \"{flag}\". You must pass '--namespace={own}' to perform this operation."
            ),
            Some(flag) => Some(flag.to_string()),
            None if !own.is_empty() => Some(own.to_string()),
            None => Some(default_namespace.to_string()),
        }
    } else {
        None
    };
    Ok(Target { res, namespace, name: name.to_string() })
}

/// The body to apply: the manifest with its namespace set (namespaced) or removed
/// (cluster-scoped).
fn apply_body(m: &Manifest, t: &Target<'_>) -> Value {
    let mut body = m.object.clone();
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        match &t.namespace {
            Some(ns) => {
                meta.insert("namespace".into(), Value::String(ns.clone()));
            }
            None => {
                meta.remove("namespace");
            }
        }
    }
    body
}

pub async fn run(session: &Session, args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let read = manifest::read_sources(&args.files, args.recursive);
    for e in &read.errors {
        session.err(&format!("error: {e}\n"));
    }
    if read.manifests.is_empty() {
        if read.errors.is_empty() {
            anyhow::bail!("no objects passed to apply");
        }
        return Ok(ExitCode::FAILURE);
    }
    let catalog = session.catalog().await?;
    let mut params = PatchParams::apply(&args.field_manager);
    if args.force_conflicts {
        params = params.force();
    }
    params.dry_run = args.dry_run == "server";
    let suffix = if params.dry_run { " (server dry run)" } else { "" };

    let mut failures = read.errors.len();
    for m in &read.manifests {
        let result = async {
            let t = target(&catalog, m, args.namespace.as_deref(), &session.default_namespace)?;
            let api: Api<DynamicObject> = match &t.namespace {
                Some(ns) => Api::namespaced_with(session.client.clone(), ns, &t.res.api_resource()),
                None => Api::all_with(session.client.clone(), &t.res.api_resource()),
            };
            let body = apply_body(m, &t);
            api.patch(&t.name, &params, &Patch::Apply(&body)).await.map_err(|e| {
                let mut msg = kube_message(&e);
                if api_code(&e) == Some(409) && !args.force_conflicts {
                    msg.push_str("\n(use --force-conflicts to take ownership of the conflicting fields)");
                }
                anyhow::anyhow!(msg)
            })?;
            anyhow::Ok(format!("{}/{}", t.res.kind_group(), t.name))
        }
        .await;
        match result {
            Ok(name) => session.out(&format!("{name} serverside-applied{suffix}\n"))?,
            Err(e) => {
                failures += 1;
                session.err(&format!("error: {}: {e:#}\n", m.location()));
            }
        }
    }
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIResource, APIResourceList};
    use serde_json::json;

    fn catalog() -> Catalog {
        let r = |name: &str, kind: &str, namespaced: bool| APIResource {
            name: name.into(),
            kind: kind.into(),
            namespaced,
            ..APIResource::default()
        };
        Catalog::from_lists(&[
            (
                APIResourceList {
                    group_version: "cluster.open-cluster-management.io/v1".into(),
                    resources: vec![r("managedclusters", "ManagedCluster", false)],
                },
                true,
            ),
            (
                APIResourceList {
                    group_version: "work.open-cluster-management.io/v1".into(),
                    resources: vec![r("manifestworks", "ManifestWork", true)],
                },
                true,
            ),
        ])
    }

    fn manifest(obj: Value) -> Manifest {
        Manifest { source: "f.yaml".into(), document: 1, item: None, object: obj }
    }

    #[test]
    fn namespaces_follow_kubectl_rules() {
        let c = catalog();
        let work = |ns: Option<&str>| {
            let mut o = json!({"apiVersion": "work.open-cluster-management.io/v1", "kind": "ManifestWork", "metadata": {"name": "w"}});
            if let Some(ns) = ns {
                o["metadata"]["namespace"] = json!(ns);
            }
            manifest(o)
        };
        let ns = |m: &Manifest, flag: Option<&str>| target(&c, m, flag, "default").map(|t| t.namespace);
        assert_eq!(ns(&work(None), None).expect("ok").as_deref(), Some("default"));
        assert_eq!(ns(&work(None), Some("c1")).expect("ok").as_deref(), Some("c1"));
        assert_eq!(ns(&work(Some("c2")), None).expect("ok").as_deref(), Some("c2"));
        assert_eq!(ns(&work(Some("c2")), Some("c2")).expect("ok").as_deref(), Some("c2"));
        let err = ns(&work(Some("c2")), Some("c1")).expect_err("mismatch");
        assert!(err.to_string().contains("does not match the namespace \"c1\""), "{err}");

        let mc = manifest(
            json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster", "metadata": {"name": "c1", "namespace": "junk"}}),
        );
        let t = target(&c, &mc, Some("x"), "default").expect("ok");
        assert_eq!(t.namespace, None);
        assert_eq!(t.res.kind_group(), "managedcluster.cluster.open-cluster-management.io");
        let body = apply_body(&mc, &t);
        assert!(body["metadata"].get("namespace").is_none());
    }

    #[test]
    fn missing_fields_and_unknown_kinds_are_explained() {
        let c = catalog();
        let err = target(&c, &manifest(json!({"kind": "X"})), None, "d").expect_err("no apiVersion");
        assert_eq!(err.to_string(), "apiVersion and kind are required");
        let err = target(&c, &manifest(json!({"apiVersion": "v1", "kind": "X", "metadata": {}})), None, "d")
            .expect_err("no name");
        assert_eq!(err.to_string(), "metadata.name is required");
        let err = target(
            &c,
            &manifest(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})),
            None,
            "d",
        )
        .expect_err("unknown");
        assert!(err.to_string().contains("no matches for kind \"Widget\" in version \"example.com/v1\""), "{err}");
    }
}
