//! `flotilla placement explain NAME [-n NS] [-o json|yaml]`: why a Placement selects the
//! clusters it does. The hub schedules the placement on request
//! (`GET /debug/placements/<ns>/<name>`, admins only) and answers with the schedule and its
//! explanation; this prints, per cluster, whether it was selected, which filter removed it
//! and why, and each prioritizer's score with its weight, as one table.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use serde_json::Value;

use crate::kubectl::output::{to_json, to_yaml};
use crate::kubectl::session::Session;
use crate::kubectl::tabwriter::TabWriter;

#[derive(Subcommand, Debug)]
pub enum PlacementCommand {
    /// Show why a Placement selects its clusters: per cluster the filter that removed it and
    /// why, and each prioritizer's score and weight.
    Explain(ExplainArgs),
}

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The Placement's name.
    pub name: String,
    /// The Placement's namespace [default: the kubeconfig context's, else `default`].
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Print the hub's answer as it is instead of the table.
    #[arg(short, long, value_enum)]
    pub output: Option<ExplainOutput>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainOutput {
    Json,
    Yaml,
}

pub async fn run(session: &Session, command: PlacementCommand) -> anyhow::Result<ExitCode> {
    match command {
        PlacementCommand::Explain(args) => explain(session, args).await,
    }
}

async fn explain(session: &Session, args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let namespace = session.namespace(args.namespace.as_deref());
    let path = format!("/debug/placements/{namespace}/{}", args.name);
    let answer = session
        .get(&path, &[], Some("application/json"))
        .await
        .with_context(|| format!("explaining placement {namespace}/{}", args.name))?;
    let text = match args.output {
        Some(ExplainOutput::Json) => to_json(&answer)?,
        Some(ExplainOutput::Yaml) => to_yaml(&answer)?,
        None => render(&answer),
    };
    session.out(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// A condition as `Type=Status (Reason): message`.
fn condition_line(answer: &Value, field: &str, type_: &str) -> String {
    let c = &answer[field];
    let message = text(c, "/message");
    let mut line = format!("{type_}={} ({})", text(c, "/status"), text(c, "/reason"));
    if !message.is_empty() {
        line.push_str(": ");
        line.push_str(message);
    }
    line
}

/// Table cells may not hold tabs or newlines (the tab writer's separators).
fn cell(s: &str) -> String {
    s.replace(['\t', '\n'], " ")
}

/// The readable form of the hub's answer: a summary, then one row per cluster with its
/// result, the stage that removed it and why, each prioritizer's score and the total.
pub fn render(answer: &Value) -> String {
    let explanation = &answer["explanation"];
    let ns = text(answer, "/placement/namespace");
    let name = text(answer, "/placement/name");
    let mut out = String::new();
    out.push_str(&format!("Placement:   {ns}/{name}\n"));
    if answer["schedulingDisabled"] == true {
        out.push_str("Scheduling:  disabled by annotation (an external scheduler writes the decisions)\n");
    }
    let sets = &explanation["clusterSets"];
    out.push_str(&format!(
        "Cluster sets: bound [{}], eligible [{}]; {} candidate clusters\n",
        strings(sets.get("bound")).join(", "),
        strings(sets.get("eligible")).join(", "),
        sets["candidates"].as_u64().unwrap_or(0)
    ));
    let selected = strings(explanation.get("selected"));
    out.push_str(&format!(
        "Selected:    {} clusters\n",
        answer["numberOfSelectedClusters"].as_u64().unwrap_or(selected.len() as u64)
    ));
    out.push_str(&format!("Conditions:  {}\n", condition_line(answer, "satisfied", "PlacementSatisfied")));
    out.push_str(&format!("             {}\n", condition_line(answer, "misconfigured", "PlacementMisconfigured")));
    if answer["keptPrevious"] == true {
        out.push_str("Note:        a plugin failed under failure policy Fail; the previous decisions are kept\n");
    }
    if let Some(note) = explanation.get("note").and_then(Value::as_str) {
        out.push_str(&format!("Note:        {note}\n"));
    }
    let mut warnings: Vec<String> = strings(answer.get("warnings"));
    for w in strings(explanation.get("warnings")) {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    for w in &warnings {
        out.push_str(&format!("Warning:     {w}\n"));
    }
    let stages: Vec<String> = explanation["filteredPipelineResults"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    format!("{} ({} left)", text(s, "/name"), s["filteredClusters"].as_array().map_or(0, Vec::len))
                })
                .collect()
        })
        .unwrap_or_default();
    if !stages.is_empty() {
        out.push_str(&format!("Filters:     {}\n", stages.join(" -> ")));
    }

    let prioritizers: Vec<&Value> =
        explanation["prioritizeResults"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let eliminated = explanation["eliminated"].as_object();
    let not_selected = explanation["notSelected"].as_object();
    let totals = explanation["aggregatedScores"].as_object();

    // Selected first (in the scheduler's order), then the scored ones left out, then the
    // filtered ones, each by name.
    let mut rows: Vec<String> = selected.clone();
    let mut seen: BTreeSet<String> = selected.iter().cloned().collect();
    let scored: BTreeSet<String> = totals.map(|t| t.keys().cloned().collect()).unwrap_or_default();
    let left_out: BTreeSet<String> = not_selected.map(|m| m.keys().cloned().collect()).unwrap_or_default();
    for c in left_out.iter().chain(scored.iter()) {
        if seen.insert(c.clone()) {
            rows.push(c.clone());
        }
    }
    for c in eliminated.map(|m| m.keys().cloned().collect::<BTreeSet<_>>()).unwrap_or_default() {
        if seen.insert(c.clone()) {
            rows.push(c);
        }
    }
    if rows.is_empty() {
        out.push_str("\nNo candidate clusters.\n");
        return out;
    }

    let mut table = TabWriter::for_tables();
    let mut header = vec!["CLUSTER".to_string(), "RESULT".to_string()];
    for p in &prioritizers {
        header.push(format!("{}(x{})", cell(text(p, "/name")).to_uppercase(), p["weight"].as_i64().unwrap_or(0)));
    }
    header.push("TOTAL".to_string());
    header.push("REASON".to_string());
    table.write_str(&header.join("\t"));
    table.write_str("\n");
    for cluster in &rows {
        let (result, reason) = if selected.contains(cluster) {
            ("selected".to_string(), String::new())
        } else if let Some(e) = eliminated.and_then(|m| m.get(cluster)) {
            (format!("filtered by {}", text(e, "/stage")), text(e, "/reason").to_string())
        } else if let Some(why) = not_selected.and_then(|m| m.get(cluster)) {
            ("not selected".to_string(), why.as_str().unwrap_or_default().to_string())
        } else {
            ("not selected".to_string(), String::new())
        };
        let mut line = vec![cell(cluster), result];
        for p in &prioritizers {
            line.push(
                p["scores"].get(cluster).and_then(Value::as_i64).map_or_else(|| "-".to_string(), |s| s.to_string()),
            );
        }
        line.push(
            totals
                .and_then(|t| t.get(cluster))
                .and_then(Value::as_i64)
                .map_or_else(|| "-".to_string(), |s| s.to_string()),
        );
        line.push(cell(&reason));
        table.write_str(&line.join("\t"));
        table.write_str("\n");
    }
    out.push('\n');
    // Rows without a reason would end in padding.
    for line in table.flush().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;
    use crate::kubectl::session::{Captured, Io};

    fn answer() -> Value {
        json!({
            "placement": {"namespace": "apps", "name": "web"},
            "schedulingDisabled": false,
            "numberOfSelectedClusters": 2,
            "satisfied": {"status": "True", "reason": "AllDecisionsScheduled", "message": "All cluster decisions scheduled"},
            "misconfigured": {"status": "False", "reason": "Succeedconfigured", "message": "Placement configurations check pass"},
            "keptPrevious": false,
            "warnings": ["plugin slow: ignored"],
            "explanation": {
                "placement": {"namespace": "apps", "name": "web"},
                "clusterSets": {"bound": ["default"], "eligible": ["default"], "candidates": 5, "terminating": []},
                "filteredPipelineResults": [
                    {"name": "Predicate", "filteredClusters": ["a", "b", "c", "d"]},
                    {"name": "Predicate,TaintToleration", "filteredClusters": ["a", "b", "c"]}],
                "prioritizeResults": [
                    {"name": "Balance", "weight": 1, "scores": {"a": 100, "b": 100, "c": 0}},
                    {"name": "capacity", "weight": 2, "scores": {"a": 50, "b": -20, "c": 10}}],
                "aggregatedScores": {"a": 200, "b": 60, "c": 20},
                "eliminated": {
                    "d": {"stage": "TaintToleration", "reason": "taint gpu:NoSelect is not tolerated"},
                    "e": {"stage": "Predicate", "reason": "predicates[0]: label env is not prod"}},
                "selected": ["a", "b"],
                "notSelected": {"c": "numberOfClusters is 2"},
                "warnings": ["plugin slow: ignored"]
            }
        })
    }

    #[test]
    fn explanations_render_one_row_per_cluster() {
        let text = render(&answer());
        let expected = "\
Placement:   apps/web
Cluster sets: bound [default], eligible [default]; 5 candidate clusters
Selected:    2 clusters
Conditions:  PlacementSatisfied=True (AllDecisionsScheduled): All cluster decisions scheduled
             PlacementMisconfigured=False (Succeedconfigured): Placement configurations check pass
Warning:     plugin slow: ignored
Filters:     Predicate (4 left) -> Predicate,TaintToleration (3 left)

CLUSTER   RESULT                        BALANCE(x1)   CAPACITY(x2)   TOTAL   REASON
a         selected                      100           50             200
b         selected                      100           -20            60
c         not selected                  0             10             20      numberOfClusters is 2
d         filtered by TaintToleration   -             -              -       taint gpu:NoSelect is not tolerated
e         filtered by Predicate         -             -              -       predicates[0]: label env is not prod
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn kept_decisions_and_disabled_scheduling_are_said() {
        let mut a = answer();
        a["keptPrevious"] = json!(true);
        a["schedulingDisabled"] = json!(true);
        a["explanation"]["selected"] = json!([]);
        a["explanation"]["aggregatedScores"] = json!({});
        a["explanation"]["eliminated"] = json!({});
        a["explanation"]["notSelected"] = json!({});
        let text = render(&a);
        assert!(text.contains("Scheduling:  disabled by annotation"), "{text}");
        assert!(text.contains("previous decisions are kept"), "{text}");
        assert!(text.ends_with("No candidate clusters.\n"), "{text}");
        assert_eq!(render(&json!({})).lines().next(), Some("Placement:   /"), "an odd answer still renders");
    }

    /// The paths the fake server was asked for.
    type Seen = Arc<Mutex<Vec<String>>>;

    /// A session whose server answers the debug path with `answer()` and anything else 404.
    fn session() -> (Session, Arc<Mutex<Captured>>, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let paths = seen.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let paths = paths.clone();
            async move {
                let path = req.uri().path().to_string();
                paths.lock().unwrap().push(path.clone());
                let (code, body) = if path == "/debug/placements/apps/web" {
                    (200, answer())
                } else {
                    (
                        404,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "message": "placements.cluster.open-cluster-management.io \"nope\" not found",
                        "reason": "NotFound", "code": 404}),
                    )
                };
                let response = http::Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap();
                Ok::<_, Infallible>(response)
            }
        });
        let client = kube::Client::new(service, "apps");
        let captured = Arc::new(Mutex::new(Captured::default()));
        (Session::with_client(client, "apps", Io::Capture(captured.clone())), captured, seen)
    }

    #[tokio::test]
    async fn explain_asks_the_hub_and_prints_table_or_json() {
        let (session, captured, seen) = session();
        let args = |output| ExplainArgs { name: "web".into(), namespace: None, output };
        explain(&session, args(None)).await.unwrap();
        assert!(captured.lock().unwrap().out.contains("filtered by TaintToleration"));
        assert_eq!(seen.lock().unwrap().as_slice(), ["/debug/placements/apps/web"], "the context's namespace");

        captured.lock().unwrap().out.clear();
        explain(&session, args(Some(ExplainOutput::Json))).await.unwrap();
        let printed: Value = serde_json::from_str(&captured.lock().unwrap().out).unwrap();
        assert_eq!(printed, answer());

        let err = explain(&session, ExplainArgs { name: "nope".into(), namespace: Some("apps".into()), output: None })
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("not found"), "{err:#}");
    }
}
