//! `flotilla get`: kubectl's `get` for any kind the hub serves.

use std::process::ExitCode;

use futures::TryStreamExt as _;
use jiff::Timestamp;
use kube::core::WatchEvent;
use serde_json::Value;

use super::errors::kube_message;
use super::output::{self, OutputFormat};
use super::resolve::ResourceInfo;
use super::session::{Session, build_get};
use super::table::{TABLE_ACCEPT, Table, TablePrinter, View};

/// Page size for lists, kubectl's default chunk size.
const CHUNK_SIZE: &str = "500";

#[derive(clap::Args, Debug, Clone)]
pub struct GetArgs {
    /// Resource type: plural, singular, short name or Kind, optionally `.group`
    /// (`clusters`, `mcl`, `ManagedCluster`, `policies.policy.open-cluster-management.io`),
    /// or TYPE/NAME.
    pub kind: String,
    /// Names of objects to get (all objects if none).
    pub names: Vec<String>,
    /// Namespace (default: the kubeconfig context's, else `default`; for works, every
    /// cluster namespace).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector (`-l app=x,tier!=db`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector (`--field-selector metadata.name=x`).
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,
    /// After listing, watch for changes and print them as they arrive.
    #[arg(short, long)]
    pub watch: bool,
    /// Keep metadata.managedFields in yaml/json output.
    #[arg(long)]
    pub show_managed_fields: bool,
}

/// Groups `TYPE NAME...` or `TYPE/NAME...` arguments into `(type, names)` runs.
pub fn parse_targets(kind: &str, names: &[String]) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    if !kind.contains('/') {
        if let Some(bad) = names.iter().find(|n| n.contains('/')) {
            anyhow::bail!(
                "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (got {kind:?} and {bad:?})"
            );
        }
        // `clusters,works` means both types, with the same names.
        return Ok(kind.split(',').filter(|k| !k.is_empty()).map(|k| (k.to_string(), names.to_vec())).collect());
    }
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for arg in std::iter::once(kind).chain(names.iter().map(String::as_str)) {
        let Some((ty, name)) = arg.split_once('/') else {
            anyhow::bail!("arguments in resource/name form must have a single resource and name (got {arg:?})");
        };
        if ty.is_empty() || name.is_empty() || name.contains('/') {
            anyhow::bail!("arguments in resource/name form must have a single resource and name (got {arg:?})");
        }
        match out.last_mut() {
            Some((last, names)) if last == ty => names.push(name.to_string()),
            _ => out.push((ty.to_string(), vec![name.to_string()])),
        }
    }
    Ok(out)
}

fn join_selectors(a: Option<&str>, b: Option<String>) -> String {
    [a.map(str::to_string), b].into_iter().flatten().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(",")
}

/// `No resources found in NS namespace.` / `No resources found`
pub fn no_resources_message(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("No resources found in {ns} namespace."),
        None => "No resources found".to_string(),
    }
}

pub async fn run(session: &Session, args: GetArgs) -> anyhow::Result<ExitCode> {
    let targets = parse_targets(&args.kind, &args.names)?;
    if args.watch && (targets.len() > 1 || targets.iter().any(|(_, n)| n.len() > 1)) {
        anyhow::bail!("you may only specify a single resource type, and at most one name, with --watch");
    }
    let catalog = session.catalog().await?;
    let resolved =
        targets.iter().map(|(ty, names)| Ok((catalog.resolve(ty)?, names))).collect::<anyhow::Result<Vec<_>>>()?;
    // Like kubectl: several kinds in one command print `kind.group/name` and a blank line
    // between tables.
    let mut kinds: Vec<String> = resolved.iter().map(|(r, _)| r.kind_group()).collect();
    kinds.sort();
    kinds.dedup();
    let with_kind = kinds.len() > 1;
    let mut ok = true;
    let mut printed = false;
    let mut empty_message = None;
    for (res, names) in resolved {
        let (fine, output, empty) = get_type(session, &args, res, names, with_kind, printed).await?;
        ok &= fine;
        printed |= output;
        empty_message = empty_message.or(empty);
    }
    // Like kubectl, "No resources found" only when nothing at all was printed.
    if let Some(message) = empty_message.filter(|_| !printed) {
        session.err(&format!("{message}\n"));
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Gets one type. Returns whether every named object was fetched and whether a table was
/// printed (`blank_first`: print a blank line before the table).
async fn get_type(
    session: &Session,
    args: &GetArgs,
    res: &ResourceInfo,
    names: &[String],
    with_kind: bool,
    blank_first: bool,
) -> anyhow::Result<(bool, bool, Option<String>)> {
    if args.all_namespaces && res.namespaced && !names.is_empty() {
        anyhow::bail!("a resource cannot be retrieved by name across all namespaces");
    }
    let view = View::for_kind(&res.group, &res.plural);
    // Works without `-n`: every cluster namespace, names included (`get works app` shows
    // `app` on every cluster).
    let every_namespace = view.all_namespaces_by_default && args.namespace.as_deref().is_none_or(str::is_empty);
    let all_namespaces = (args.all_namespaces || every_namespace) && res.namespaced;
    let namespace =
        if res.namespaced && !all_namespaces { Some(session.namespace(args.namespace.as_deref())) } else { None };
    let ns = namespace.as_deref();
    let label_selector = args.selector.clone().unwrap_or_default();
    let field_selector = args.field_selector.clone().unwrap_or_default();
    let table_output = matches!(args.output, None | Some(OutputFormat::Wide));
    let accept = table_output.then_some(TABLE_ACCEPT);
    let now = Timestamp::now;
    let mut ok = true;
    let mut printed = false;
    let mut empty_message: Option<String> = None;

    let mut stream = output::ObjectStream::new(args.output.unwrap_or(OutputFormat::Yaml), res.clone());
    let include_object = view.include_object().to_string();
    let by_name = |name: &str| join_selectors(Some(&field_selector), Some(format!("metadata.name={name}")));
    let mut printer = TablePrinter::new(args.output == Some(OutputFormat::Wide), all_namespaces);
    if with_kind {
        printer = printer.with_kind(res.kind_group());
    }
    let resource_version: Option<String>;
    if table_output {
        let mut table = Table::default();
        if names.is_empty() {
            let query = vec![
                ("labelSelector", label_selector.clone()),
                ("fieldSelector", field_selector.clone()),
                ("includeObject", include_object.clone()),
            ];
            for page in list_pages(session, &res.collection_path(ns), query, accept).await? {
                table.extend(Table::from_response(&page));
            }
        } else if all_namespaces {
            for name in names {
                let query = vec![
                    ("labelSelector", label_selector.clone()),
                    ("fieldSelector", by_name(name)),
                    ("includeObject", include_object.clone()),
                ];
                let mut found = Table::default();
                for page in list_pages(session, &res.collection_path(None), query, accept).await? {
                    found.extend(Table::from_response(&page));
                }
                if found.rows.is_empty() {
                    session.err(&format!("{}\n", not_found_message(res, name)));
                    ok = false;
                }
                table.extend(found);
            }
        } else {
            for name in names {
                match session
                    .get(&res.object_path(ns, name), &[("includeObject", include_object.clone())], accept)
                    .await
                {
                    Ok(v) => table.extend(Table::from_response(&v)),
                    Err(e) => {
                        session.err(&format!("{e}\n"));
                        ok = false;
                    }
                }
            }
        }
        view.apply(&mut table);
        // With no rows the header waits for the first watched row, as kubectl does.
        if !table.rows.is_empty() {
            let text = printer.render(&table, now());
            session.out(&if blank_first { format!("\n{text}") } else { text })?;
            printed = true;
        }
        if table.rows.is_empty() && names.is_empty() {
            empty_message = Some(no_resources_message(ns));
        }
        resource_version = table.resource_version.clone();
    } else {
        let format = args.output.unwrap_or(OutputFormat::Yaml);
        let mut objects = Vec::new();
        let mut rv = None;
        if names.is_empty() {
            let query = vec![("labelSelector", label_selector.clone()), ("fieldSelector", field_selector.clone())];
            for page in list_pages(session, &res.collection_path(ns), query, None).await? {
                if let Some(v) = page.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                    rv = Some(v.to_string());
                }
                if let Some(items) = page.get("items").and_then(Value::as_array) {
                    objects.extend(items.iter().cloned());
                }
            }
        } else if all_namespaces {
            for name in names {
                let query = vec![("labelSelector", label_selector.clone()), ("fieldSelector", by_name(name))];
                let mut found = 0;
                for page in list_pages(session, &res.collection_path(None), query, None).await? {
                    if let Some(v) = page.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                        rv = Some(v.to_string());
                    }
                    if let Some(items) = page.get("items").and_then(Value::as_array) {
                        found += items.len();
                        objects.extend(items.iter().cloned());
                    }
                }
                if found == 0 {
                    session.err(&format!("{}\n", not_found_message(res, name)));
                    ok = false;
                }
            }
        } else {
            for name in names {
                match session.get(&res.object_path(ns, name), &[], None).await {
                    Ok(v) => {
                        rv = v.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string);
                        objects.push(v);
                    }
                    Err(e) => {
                        session.err(&format!("{e}\n"));
                        ok = false;
                    }
                }
            }
        }
        if !args.show_managed_fields {
            objects = objects.into_iter().map(output::without_managed_fields).collect();
        }
        let empty = objects.is_empty();
        if args.watch {
            // A stream of objects, as kubectl prints with --watch (no List wrapper).
            for obj in objects {
                session.out(&stream.render(obj)?)?;
            }
        } else if !empty || names.is_empty() {
            let single = names.len() == 1 && objects.len() == 1;
            session.out(&output::render_objects(format, res, objects, single)?)?;
        }
        if empty && names.is_empty() && format == OutputFormat::Name {
            empty_message = Some(no_resources_message(ns));
        } else if !empty || format != OutputFormat::Name {
            printed = true;
        }
        resource_version = rv;
    }

    if args.watch && !printed {
        // Printed now: the watch below does not return.
        if let Some(message) = empty_message.take() {
            session.err(&format!("{message}\n"));
        }
    }
    if args.watch {
        let mut query = vec![("labelSelector", label_selector)];
        let name_selector = names.first().map(|n| format!("metadata.name={n}"));
        query.push(("fieldSelector", join_selectors(Some(&field_selector), name_selector)));
        if table_output {
            query.push(("includeObject", include_object.clone()));
        }
        let format = args.output;
        let show_managed_fields = args.show_managed_fields;
        watch(session, &res.collection_path(ns), query, accept, resource_version, |object| {
            let object = if show_managed_fields { object } else { output::without_managed_fields(object) };
            let text = match format {
                None | Some(OutputFormat::Wide) => {
                    let mut table = Table::from_response(&object);
                    view.apply(&mut table);
                    printer.render(&table, now())
                }
                Some(_) => stream.render(object)?,
            };
            session.out(&text)
        })
        .await?;
    }
    Ok((ok, printed, empty_message))
}

/// kubectl's message for a named object that is not there.
fn not_found_message(res: &ResourceInfo, name: &str) -> String {
    let resource = if res.group.is_empty() { res.plural.clone() } else { format!("{}.{}", res.plural, res.group) };
    format!("Error from server (NotFound): {resource} \"{name}\" not found")
}

/// All pages of a list (`limit`/`continue`).
async fn list_pages(
    session: &Session,
    path: &str,
    query: Vec<(&str, String)>,
    accept: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    let mut pages = Vec::new();
    let mut continue_token = String::new();
    loop {
        let mut q = query.clone();
        q.push(("limit", CHUNK_SIZE.to_string()));
        q.push(("continue", continue_token.clone()));
        let page = session.get(path, &q, accept).await?;
        let next = page.pointer("/metadata/continue").and_then(Value::as_str).unwrap_or("").to_string();
        pages.push(page);
        if next.is_empty() || next == continue_token {
            break;
        }
        continue_token = next;
    }
    Ok(pages)
}

/// The resourceVersion carried by a watch event's object (a Table or an object).
fn event_resource_version(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/resourceVersion")
        .or_else(|| object.pointer("/rows/0/object/metadata/resourceVersion"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Watches a collection from `resource_version`, calling `on_object` for every added,
/// modified or deleted object; re-establishes the watch when the server ends it.
pub async fn watch(
    session: &Session,
    path: &str,
    query: Vec<(&str, String)>,
    accept: Option<&str>,
    mut resource_version: Option<String>,
    mut on_object: impl FnMut(Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    loop {
        let mut q = query.clone();
        q.push(("watch", "true".to_string()));
        q.push(("allowWatchBookmarks", "true".to_string()));
        q.push(("resourceVersion", resource_version.clone().unwrap_or_default()));
        let request = build_get(path, &q, accept).map_err(|e| anyhow::anyhow!(kube_message(&e)))?;
        let stream =
            session.client.request_events::<Value>(request).await.map_err(|e| anyhow::anyhow!(kube_message(&e)))?;
        futures::pin_mut!(stream);
        while let Some(event) = stream.try_next().await.map_err(|e| anyhow::anyhow!(kube_message(&e)))? {
            match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                    if let Some(rv) = event_resource_version(&o) {
                        resource_version = Some(rv);
                    }
                    on_object(o)?;
                }
                WatchEvent::Bookmark(b) => {
                    resource_version = Some(b.metadata.resource_version);
                }
                WatchEvent::Error(status) => {
                    if status.code == 410 {
                        anyhow::bail!("watch expired, the resourceVersion is too old (410 Gone): {}", status.message);
                    }
                    anyhow::bail!(kube_message(&kube::Error::Api(status)));
                }
            }
        }
        tracing::debug!("watch of {path} ended; resuming from {resource_version:?}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn targets_in_both_forms() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_targets("clusters", &names(&["a", "b"])).expect("ok"),
            vec![("clusters".to_string(), names(&["a", "b"]))]
        );
        assert_eq!(
            parse_targets("mcl/a", &names(&["mcl/b", "works/w"])).expect("ok"),
            vec![("mcl".to_string(), names(&["a", "b"])), ("works".to_string(), names(&["w"]))]
        );
        assert!(parse_targets("mcl/a", &names(&["b"])).is_err());
        assert!(parse_targets("mcl", &names(&["mcl/b"])).is_err());
        assert!(parse_targets("mcl/", &[]).is_err());
        assert_eq!(
            parse_targets("clusters,works", &[]).expect("ok"),
            vec![("clusters".to_string(), vec![]), ("works".to_string(), vec![])]
        );
    }

    #[test]
    fn selectors_and_messages() {
        assert_eq!(join_selectors(Some(""), Some("metadata.name=a".into())), "metadata.name=a");
        assert_eq!(join_selectors(Some("status.x=y"), Some("metadata.name=a".into())), "status.x=y,metadata.name=a");
        assert_eq!(join_selectors(None, None), "");
        assert_eq!(no_resources_message(Some("default")), "No resources found in default namespace.");
        assert_eq!(no_resources_message(None), "No resources found");
    }

    #[test]
    fn resource_versions_from_events() {
        let table = serde_json::json!({"kind": "Table", "metadata": {}, "rows": [{"object": {"metadata": {"resourceVersion": "9"}}}]});
        assert_eq!(event_resource_version(&table).as_deref(), Some("9"));
        let obj = serde_json::json!({"metadata": {"resourceVersion": "10"}});
        assert_eq!(event_resource_version(&obj).as_deref(), Some("10"));
    }
}
