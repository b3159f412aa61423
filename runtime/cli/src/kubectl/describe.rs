//! `flotilla describe`: kubectl's generic describer for any kind, with the object's events.

use std::process::ExitCode;

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::age;
use super::get::{no_resources_message, parse_targets};
use super::output::with_type;
use super::session::Session;
use super::tabwriter::TabWriter;

/// kubectl shortens annotations longer than this.
const MAX_ANNOTATION_LEN: usize = 140;

#[derive(clap::Args, Debug, Clone)]
pub struct DescribeArgs {
    /// Resource type (as for `get`), or TYPE/NAME.
    pub kind: String,
    /// Names (or name prefixes) of objects to describe (all if none).
    pub names: Vec<String>,
    /// Namespace (default: the kubeconfig context's, else `default`).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Describe objects in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

pub async fn run(session: &Session, args: DescribeArgs) -> anyhow::Result<ExitCode> {
    let targets = parse_targets(&args.kind, &args.names)?;
    let catalog = session.catalog().await?;
    let mut ok = true;
    let mut first = true;
    for (ty, names) in &targets {
        let res = catalog.resolve(ty)?;
        let all_namespaces = args.all_namespaces && res.namespaced;
        let namespace =
            if res.namespaced && !all_namespaces { Some(session.namespace(args.namespace.as_deref())) } else { None };
        let ns = namespace.as_deref();
        let mut objects = Vec::new();
        if names.is_empty() {
            let list = session
                .get(&res.collection_path(ns), &[("labelSelector", args.selector.clone().unwrap_or_default())], None)
                .await?;
            objects.extend(list.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
            if objects.is_empty() {
                session.err(&format!("{}\n", no_resources_message(ns)));
            }
        } else {
            for name in names {
                match session.get(&res.object_path(ns, name), &[], None).await {
                    Ok(v) => objects.push(v),
                    Err(e) => {
                        session.err(&format!("{e}\n"));
                        ok = false;
                    }
                }
            }
        }
        for obj in objects {
            let obj = with_type(obj, res);
            let events = events_for(session, &obj).await;
            let text = describe_object(&obj, &events, Timestamp::now());
            if first {
                session.out(&text)?;
                first = false;
            } else {
                session.out(&format!("\n\n{text}"))?;
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The object's core/v1 events (best effort: empty if listing fails).
async fn events_for(session: &Session, obj: &Value) -> Vec<Value> {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let (name, namespace, uid) = (s("/metadata/name"), s("/metadata/namespace"), s("/metadata/uid"));
    let mut selector = format!("involvedObject.name={name},involvedObject.namespace={namespace}");
    if !uid.is_empty() {
        selector.push_str(&format!(",involvedObject.uid={uid}"));
    }
    let path = if namespace.is_empty() {
        "/api/v1/events".to_string()
    } else {
        format!("/api/v1/namespaces/{namespace}/events")
    };
    match session.get(&path, &[("fieldSelector", selector)], None).await {
        Ok(list) => list.get("items").and_then(Value::as_array).cloned().unwrap_or_default(),
        Err(e) => {
            tracing::debug!("listing events for {name}: {e}");
            Vec::new()
        }
    }
}

/// Writes `text` at an indentation level (two spaces per level), like kubectl's
/// PrefixWriter.
fn write(tw: &mut TabWriter, level: usize, text: &str) {
    for _ in 0..level {
        tw.write_str("  ");
    }
    tw.write_str(text);
}

/// Renders one object the way `kubectl describe` renders kinds without a dedicated
/// describer.
pub fn describe_object(obj: &Value, events: &[Value], now: Timestamp) -> String {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
    let mut tw = TabWriter::for_describe();
    write(&mut tw, 0, &format!("Name:\t{}\n", s("/metadata/name")));
    write(&mut tw, 0, &format!("Namespace:\t{}\n", s("/metadata/namespace")));
    print_labels(&mut tw, "Labels", obj.pointer("/metadata/labels"));
    print_annotations(&mut tw, "Annotations", obj.pointer("/metadata/annotations"));
    if let Some(map) = obj.as_object() {
        print_unstructured(
            &mut tw,
            0,
            map,
            "",
            &[
                ".metadata.name",
                ".metadata.namespace",
                ".metadata.labels",
                ".metadata.annotations",
                ".metadata.managedFields",
            ],
        );
    }
    if events.is_empty() {
        // Part of the last block, as in kubectl.
        tw.write_str("Events:\t<none>\n");
        return tw.flush();
    }
    let mut out = tw.flush();
    out.push_str(&describe_events(events, now));
    out
}

fn as_string_map(v: Option<&Value>) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = v
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

fn print_labels(tw: &mut TabWriter, title: &str, labels: Option<&Value>) {
    write(tw, 0, &format!("{title}:\t"));
    let entries = as_string_map(labels);
    if entries.is_empty() {
        tw.write_str("<none>\n");
        return;
    }
    for (i, (k, v)) in entries.iter().enumerate() {
        if i != 0 {
            tw.write_str("\t");
        }
        tw.write_str(&format!("{k}={v}\n"));
    }
}

fn print_annotations(tw: &mut TabWriter, title: &str, annotations: Option<&Value>) {
    write(tw, 0, &format!("{title}:\t"));
    let entries: Vec<(String, String)> = as_string_map(annotations)
        .into_iter()
        .filter(|(k, _)| k != "kubectl.kubernetes.io/last-applied-configuration")
        .collect();
    if entries.is_empty() {
        tw.write_str("<none>\n");
        return;
    }
    for (i, (key, value)) in entries.iter().enumerate() {
        if i != 0 {
            tw.write_str("\t");
        }
        let value = value.trim_end_matches('\n');
        if value.len() + key.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            tw.write_str(&format!("{key}:\n"));
            for line in value.split('\n') {
                tw.write_str(&format!("\t  {}\n", shorten(line, MAX_ANNOTATION_LEN - 2)));
            }
        } else {
            tw.write_str(&format!("{key}: {value}\n"));
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}...")
    } else {
        s.to_string()
    }
}

/// Go's `%v` for a JSON value in unstructured content.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

fn print_unstructured(
    tw: &mut TabWriter,
    level: usize,
    content: &Map<String, Value>,
    skip_prefix: &str,
    skip: &[&str],
) {
    let mut fields: Vec<&String> = content.keys().collect();
    fields.sort();
    for field in fields {
        let skip_expr = format!("{skip_prefix}.{field}");
        if skip.contains(&skip_expr.as_str()) {
            continue;
        }
        let value = &content[field];
        match value {
            Value::Object(map) => {
                write(tw, level, &format!("{}:\n", smart_label(field)));
                print_unstructured(tw, level + 1, map, &skip_expr, skip);
            }
            Value::Array(items) => {
                write(tw, level, &format!("{}:\n", smart_label(field)));
                for item in items {
                    match item {
                        Value::Object(map) => {
                            print_unstructured(tw, level + 1, map, &skip_expr, skip);
                        }
                        other => write(tw, level + 1, &format!("{}\n", go_value(other))),
                    }
                }
            }
            other => write(tw, level, &format!("{}:\t{}\n", smart_label(field), go_value(other))),
        }
    }
}

/// `github.com/fatih/camelcase.Split`.
fn camelcase_split(s: &str) -> Vec<String> {
    fn class(c: char) -> u8 {
        if c.is_lowercase() {
            1
        } else if c.is_uppercase() {
            2
        } else if c.is_numeric() {
            3
        } else {
            4
        }
    }
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0;
    for c in s.chars() {
        let cl = class(c);
        match runs.last_mut() {
            Some(run) if cl == last => run.push(c),
            _ => runs.push(vec![c]),
        }
        last = cl;
    }
    for i in 0..runs.len().saturating_sub(1) {
        let upper_then_lower =
            runs[i].first().is_some_and(|c| c.is_uppercase()) && runs[i + 1].first().is_some_and(|c| c.is_lowercase());
        if upper_then_lower && let Some(moved) = runs[i].pop() {
            runs[i + 1].insert(0, moved);
        }
    }
    runs.into_iter().filter(|r| !r.is_empty()).map(|r| r.into_iter().collect()).collect()
}

/// kubectl's `smartLabelFor`: `hubAcceptsClient` → `Hub Accepts Client`, `apiVersion` →
/// `API Version`; fields with characters other than letters and `-` are left alone.
pub fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    const ACRONYMS: &[&str] = &["API", "URL", "UID", "OSB", "GUID"];
    camelcase_split(field)
        .into_iter()
        .filter(|p| p != "_")
        .map(|part| {
            let upper = part.to_uppercase();
            if ACRONYMS.contains(&upper.as_str()) {
                upper
            } else {
                let mut chars = part.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect(),
                    None => String::new(),
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn event_time(e: &Value) -> String {
    ["/lastTimestamp", "/eventTime", "/series/lastObservedTime", "/firstTimestamp", "/metadata/creationTimestamp"]
        .iter()
        .find_map(|p| e.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .and_then(|s| s.parse::<Timestamp>().ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// kubectl's `DescribeEvents`.
pub fn describe_events(events: &[Value], now: Timestamp) -> String {
    let mut tw = TabWriter::for_describe();
    if events.is_empty() {
        tw.write_str("Events:\t<none>\n");
        return tw.flush();
    }
    let mut sorted: Vec<&Value> = events.iter().collect();
    sorted.sort_by_key(|e| event_time(e));
    tw.write_str("Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    write(&mut tw, 1, "----\t------\t----\t----\t-------\n");
    for e in sorted {
        let s = |p: &str| e.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty());
        let first = match s("/eventTime") {
            Some(t) => age::age_or_unknown(Some(t), now),
            None => age::age_or_unknown(s("/firstTimestamp"), now),
        };
        let count = e.get("count").and_then(Value::as_i64).unwrap_or(0);
        let interval = if let Some(series) = e.get("series").filter(|v| v.is_object()) {
            let last = series.get("lastObservedTime").and_then(Value::as_str);
            let n = series.get("count").and_then(Value::as_i64).unwrap_or(0);
            format!("{} (x{n} over {first})", age::age_or_unknown(last, now))
        } else if count > 1 {
            format!("{} (x{count} over {first})", age::age_or_unknown(s("/lastTimestamp"), now))
        } else {
            first
        };
        let source = s("/source/component").or_else(|| s("/reportingComponent")).unwrap_or("");
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\n",
            s("/type").unwrap_or(""),
            s("/reason").unwrap_or(""),
            interval,
            source,
            s("/message").unwrap_or("").trim()
        );
        write(&mut tw, 1, &line);
    }
    tw.flush()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2025-01-10T12:00:00Z".parse().expect("ts")
    }

    #[test]
    fn smart_labels_match_kubectl() {
        assert_eq!(smart_label("hubAcceptsClient"), "Hub Accepts Client");
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("uid"), "UID");
        assert_eq!(smart_label("caBundle"), "Ca Bundle");
        assert_eq!(smart_label("url"), "URL");
        assert_eq!(smart_label("resourceVersion"), "Resource Version");
        assert_eq!(smart_label("HTTPServer"), "HTTP Server");
        assert_eq!(smart_label("leaseDurationSeconds"), "Lease Duration Seconds");
        assert_eq!(smart_label("x509Data"), "x509Data");
        assert_eq!(smart_label("open-cluster-management.io/x"), "open-cluster-management.io/x");
    }

    #[test]
    fn describes_like_the_generic_describer() {
        let obj = json!({
            "apiVersion": "cluster.open-cluster-management.io/v1",
            "kind": "ManagedCluster",
            "metadata": {
                "name": "cluster1",
                "labels": {"vendor": "Kind", "cloud": "Other"},
                "annotations": {},
                "creationTimestamp": "2025-01-10T11:00:00Z",
                "generation": 2,
                "resourceVersion": "17",
                "uid": "abc",
                "finalizers": ["cluster.open-cluster-management.io/api-resource-cleanup"],
                "managedFields": [{"manager": "x"}]
            },
            "spec": {
                "hubAcceptsClient": true,
                "leaseDurationSeconds": 60,
                "managedClusterClientConfigs": [{"url": "https://c1:6443", "caBundle": "Q0E="}]
            },
            "status": {
                "conditions": [
                    {"type": "ManagedClusterJoined", "status": "True", "reason": "Joined", "message": "joined"}
                ]
            }
        });
        let out = describe_object(&obj, &[], now());
        let expected = "\
Name:         cluster1
Namespace:    
Labels:       cloud=Other
              vendor=Kind
Annotations:  <none>
API Version:  cluster.open-cluster-management.io/v1
Kind:         ManagedCluster
Metadata:
  Creation Timestamp:  2025-01-10T11:00:00Z
  Finalizers:
    cluster.open-cluster-management.io/api-resource-cleanup
  Generation:        2
  Resource Version:  17
  UID:               abc
Spec:
  Hub Accepts Client:      true
  Lease Duration Seconds:  60
  Managed Cluster Client Configs:
    Ca Bundle:  Q0E=
    URL:        https://c1:6443
Status:
  Conditions:
    Message:  joined
    Reason:   Joined
    Status:   True
    Type:     ManagedClusterJoined
Events:       <none>
";
        assert_eq!(out, expected, "\n{out}");
    }

    #[test]
    fn events_table() {
        let events = vec![
            json!({"type": "Normal", "reason": "Accepted", "message": " accepted by admin ",
                   "firstTimestamp": "2025-01-10T11:00:00Z", "lastTimestamp": "2025-01-10T11:55:00Z",
                   "count": 3, "source": {"component": "registration-controller"}}),
            json!({"type": "Warning", "reason": "LeaseExpired", "message": "lease expired",
                   "eventTime": "2025-01-10T11:59:30.000000Z", "reportingComponent": "lease-controller"}),
        ];
        let out = describe_events(&events, now());
        let expected = "\
Events:
  Type     Reason        Age               From                     Message
  ----     ------        ----              ----                     -------
  Normal   Accepted      5m (x3 over 60m)  registration-controller  accepted by admin
  Warning  LeaseExpired  30s               lease-controller         lease expired
";
        assert_eq!(out, expected, "\n{out}");
    }
}
