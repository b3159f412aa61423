//! Server-side tables (`meta.k8s.io/v1` `Table`) and how kubectl prints them.

use jiff::Timestamp;
use serde_json::Value;

use super::age;
use super::tabwriter::TabWriter;

/// kubectl's Accept header for `get`: a v1 Table, else plain JSON.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub priority: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: Vec<Value>,
    /// The row's object (usually `PartialObjectMetadata`), when the server included it.
    pub object: Option<Value>,
}

impl Row {
    pub fn namespace(&self) -> &str {
        self.object.as_ref().and_then(|o| o.pointer("/metadata/namespace")).and_then(Value::as_str).unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    pub resource_version: Option<String>,
    pub continue_token: Option<String>,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

impl Table {
    /// Parses a `Table` response; `None` if `v` is something else.
    pub fn from_table(v: &Value) -> Option<Table> {
        if v.get("kind").and_then(Value::as_str) != Some("Table") {
            return None;
        }
        let columns = v
            .get("columnDefinitions")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| Column {
                        name: str_at(c, "/name").unwrap_or("").to_string(),
                        type_: str_at(c, "/type").unwrap_or("string").to_string(),
                        format: str_at(c, "/format").unwrap_or("").to_string(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rows = v
            .get("rows")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .map(|r| Row {
                        cells: r.get("cells").and_then(Value::as_array).cloned().unwrap_or_default(),
                        object: r.get("object").filter(|o| !o.is_null()).cloned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Table {
            columns,
            rows,
            resource_version: non_empty(str_at(v, "/metadata/resourceVersion")),
            continue_token: non_empty(str_at(v, "/metadata/continue")),
        })
    }

    /// kubectl's fallback when the server does not print tables: NAME and AGE.
    pub fn fallback(objects: &[Value]) -> Table {
        Table {
            columns: vec![
                Column { name: "Name".into(), type_: "string".into(), format: "name".into(), priority: 0 },
                Column { name: "Age".into(), type_: "date".into(), format: String::new(), priority: 0 },
            ],
            rows: objects
                .iter()
                .map(|o| Row {
                    cells: vec![
                        o.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
                        o.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null),
                    ],
                    object: Some(o.clone()),
                })
                .collect(),
            resource_version: None,
            continue_token: None,
        }
    }

    /// A table from any GET/LIST response: a Table, a list (`items`) or one object.
    pub fn from_response(v: &Value) -> Table {
        if let Some(t) = Table::from_table(v) {
            return t;
        }
        if let Some(items) = v.get("items").and_then(Value::as_array) {
            let mut t = Table::fallback(items);
            t.resource_version = non_empty(str_at(v, "/metadata/resourceVersion"));
            t.continue_token = non_empty(str_at(v, "/metadata/continue"));
            return t;
        }
        let mut t = Table::fallback(std::slice::from_ref(v));
        t.resource_version = non_empty(str_at(v, "/metadata/resourceVersion"));
        t
    }

    /// Appends another page's rows (columns come from the first page that has them).
    pub fn extend(&mut self, other: Table) {
        if self.columns.is_empty() {
            self.columns = other.columns;
        }
        self.rows.extend(other.rows);
        if other.resource_version.is_some() {
            self.resource_version = other.resource_version;
        }
        self.continue_token = other.continue_token;
    }
}

/// kubectl's `labels.FormatLabels` of an object (a row's `PartialObjectMetadata`): `k=v`
/// pairs sorted by key, comma-separated; `<none>` without labels.
pub fn format_labels(object: Option<&Value>) -> String {
    let labels = object.and_then(|o| o.pointer("/metadata/labels")).and_then(Value::as_object);
    let mut pairs: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort();
    pairs.join(",")
}

/// A column `flotilla get` computes from each row's whole object.
#[derive(Debug, Clone, Copy)]
pub struct Computed {
    pub name: &'static str,
    pub type_: &'static str,
    /// 0: always shown, before AGE; 1: only with `-o wide`, at the end.
    pub priority: i64,
    pub cell: fn(&Value) -> Value,
}

/// How `flotilla get` shows a kind, on top of the server's table (which stays exactly what
/// the CRD's printer columns give kubectl).
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Append a LABELS column (kubectl's `--show-labels`).
    pub labels: bool,
    /// Server columns shown only with `-o wide`.
    pub wide_only: &'static [&'static str],
    /// Columns computed from the objects, which the rows then carry whole
    /// (`includeObject=Object`).
    pub computed: &'static [Computed],
    /// Without `-n`, list every namespace (works live in one namespace per cluster; an
    /// operator asking for "the works" means all of them).
    pub all_namespaces_by_default: bool,
}

/// The `status` of a condition in `status.conditions`, or null when the object has none of
/// that type (printed blank, as the server's columns print a missing value).
fn condition_status(obj: &Value, type_: &str) -> Value {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|conditions| conditions.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(type_)))
        .and_then(|c| c.get("status"))
        .cloned()
        .unwrap_or(Value::Null)
}

const WORK_COLUMNS: &[Computed] = &[
    Computed { name: "Applied", type_: "string", priority: 0, cell: |o| condition_status(o, "Applied") },
    Computed { name: "Available", type_: "string", priority: 0, cell: |o| condition_status(o, "Available") },
    Computed { name: "Degraded", type_: "string", priority: 0, cell: |o| condition_status(o, "Degraded") },
    Computed {
        name: "Manifests",
        type_: "integer",
        priority: 0,
        cell: |o| {
            let count = o.pointer("/spec/workload/manifests").and_then(Value::as_array).map_or(0, Vec::len);
            Value::from(count)
        },
    },
    Computed { name: "Progressing", type_: "string", priority: 1, cell: |o| condition_status(o, "Progressing") },
    Computed { name: "Complete", type_: "string", priority: 1, cell: |o| condition_status(o, "Complete") },
];

impl View {
    /// ManagedClusters (`flotilla get clusters`): NAME, HUB ACCEPTED, JOINED, AVAILABLE, AGE
    /// and LABELS; the spoke URLs move to `-o wide`. ManifestWorks (`flotilla get works`):
    /// NAME, APPLIED, AVAILABLE, DEGRADED, MANIFESTS and AGE (`-o wide`: PROGRESSING and
    /// COMPLETE), in every cluster namespace unless `-n` says which. Other kinds: the server's
    /// table.
    pub fn for_kind(group: &str, plural: &str) -> View {
        match (group, plural) {
            ("cluster.open-cluster-management.io", "managedclusters") => {
                View { labels: true, wide_only: &["Managed Cluster URLs"], ..View::default() }
            }
            ("work.open-cluster-management.io", "manifestworks") => {
                View { computed: WORK_COLUMNS, all_namespaces_by_default: true, ..View::default() }
            }
            _ => View::default(),
        }
    }

    /// The `includeObject` the view needs in table rows.
    pub fn include_object(&self) -> &'static str {
        if self.computed.is_empty() { "Metadata" } else { "Object" }
    }

    pub fn apply(&self, table: &mut Table) {
        // A page or watch event without column definitions is left as the server sent it.
        if table.columns.is_empty() {
            return;
        }
        for column in &mut table.columns {
            if self.wide_only.iter().any(|w| w.eq_ignore_ascii_case(&column.name)) {
                column.priority = column.priority.max(1);
            }
        }
        if !self.computed.is_empty() && !table.columns.iter().any(|c| c.name == self.computed[0].name) {
            self.add_computed(table);
        }
        if self.labels && !table.columns.iter().any(|c| c.name.eq_ignore_ascii_case("labels")) {
            let width = table.columns.len();
            table.columns.push(Column {
                name: "Labels".into(),
                type_: "string".into(),
                format: String::new(),
                priority: 0,
            });
            for row in &mut table.rows {
                row.cells.resize(width, Value::Null);
                row.cells.push(Value::String(format_labels(row.object.as_ref())));
            }
        }
    }
}

impl View {
    /// Inserts the computed columns: always-shown ones before AGE (or at the end), wide ones
    /// at the end. The rows' objects are dropped afterwards but for their metadata, so a
    /// large object is not kept while the rest of the list is read.
    fn add_computed(&self, table: &mut Table) {
        let width = table.columns.len();
        let at = table.columns.iter().position(|c| c.name.eq_ignore_ascii_case("age")).unwrap_or(width);
        let column = |c: &Computed| Column {
            name: c.name.to_string(),
            type_: c.type_.to_string(),
            format: String::new(),
            priority: c.priority,
        };
        let (shown, wide): (Vec<&Computed>, Vec<&Computed>) = self.computed.iter().partition(|c| c.priority == 0);
        let tail: Vec<Column> = table.columns.split_off(at);
        table.columns.extend(shown.iter().map(|c| column(c)));
        table.columns.extend(tail);
        table.columns.extend(wide.iter().map(|c| column(c)));
        for row in &mut table.rows {
            row.cells.resize(width, Value::Null);
            let object = row.object.take().unwrap_or(Value::Null);
            let tail: Vec<Value> = row.cells.split_off(at);
            row.cells.extend(shown.iter().map(|c| (c.cell)(&object)));
            row.cells.extend(tail);
            row.cells.extend(wide.iter().map(|c| (c.cell)(&object)));
            row.object = Some(serde_json::json!({"metadata": object.get("metadata").cloned().unwrap_or(Value::Null)}));
        }
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

/// Renders one cell like kubectl: strings cut at the first line break (then `...`), `date`
/// columns holding a timestamp shown as an age, null as nothing (as kubectl does).
pub fn render_cell(column: Option<&Column>, cell: &Value, now: Timestamp) -> String {
    let is_date = column.is_some_and(|c| c.type_ == "date");
    match cell {
        Value::Null => String::new(),
        Value::String(s) => {
            if is_date && let Some(age) = age::age_of(s, now) {
                return age;
            }
            match s.find(['\n', '\r', '\x0c']) {
                Some(i) => format!("{}...", &s[..i]),
                None => s.clone(),
            }
        }
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Prints tables with kubectl's layout. Keeps column widths across calls so that rows
/// arriving later (`-w`) line up with the first batch.
pub struct TablePrinter {
    wide: bool,
    with_namespace: bool,
    kind_prefix: Option<String>,
    tw: TabWriter,
    header_done: bool,
}

impl TablePrinter {
    pub fn new(wide: bool, with_namespace: bool) -> Self {
        Self { wide, with_namespace, kind_prefix: None, tw: TabWriter::for_tables(), header_done: false }
    }

    /// Prefixes names with `kind.group/`, as kubectl does when one command prints
    /// several kinds.
    pub fn with_kind(mut self, kind_group: String) -> Self {
        self.kind_prefix = Some(kind_group);
        self
    }

    fn visible(&self, columns: &[Column]) -> Vec<usize> {
        columns.iter().enumerate().filter(|(_, c)| c.priority == 0 || self.wide).map(|(i, _)| i).collect()
    }

    /// Renders the table's rows, preceded by the header the first time.
    pub fn render(&mut self, table: &Table, now: Timestamp) -> String {
        let visible = self.visible(&table.columns);
        if !self.header_done && !table.columns.is_empty() {
            let mut header: Vec<String> = Vec::new();
            if self.with_namespace {
                header.push("NAMESPACE".into());
            }
            header.extend(visible.iter().map(|&i| table.columns[i].name.to_uppercase()));
            self.tw.write_str(&header.join("\t"));
            self.tw.write_str("\n");
            self.header_done = true;
        }
        for row in &table.rows {
            let mut cells: Vec<String> = Vec::new();
            if self.with_namespace {
                cells.push(row.namespace().to_string());
            }
            for &i in &visible {
                let cell = row.cells.get(i).unwrap_or(&Value::Null);
                let column = table.columns.get(i);
                let mut text = render_cell(column, cell, now);
                if let Some(kind) = &self.kind_prefix
                    && column.is_some_and(|c| c.format == "name")
                {
                    text = format!("{kind}/{text}");
                }
                cells.push(text);
            }
            // Tabs inside cells would break the layout.
            let line: Vec<String> = cells.into_iter().map(|c| c.replace('\t', " ")).collect();
            self.tw.write_str(&line.join("\t"));
            self.tw.write_str("\n");
        }
        self.tw.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2025-01-10T12:00:00Z".parse().expect("ts")
    }

    fn sample() -> Value {
        json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": "42"},
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "priority": 0},
                {"name": "Hub Accepted", "type": "boolean", "format": "", "priority": 0},
                {"name": "Joined", "type": "string", "format": "", "priority": 0},
                {"name": "Available", "type": "string", "format": "", "priority": 0},
                {"name": "Age", "type": "date", "format": "", "priority": 0},
                {"name": "Url", "type": "string", "format": "", "priority": 1},
            ],
            "rows": [
                {"cells": ["cluster1", true, "True", "True", "5m", "https://c1"],
                 "object": {"kind": "PartialObjectMetadata", "metadata": {"name": "cluster1"}}},
                {"cells": ["cluster-two", false, null, null, "2025-01-08T08:00:00Z", null],
                 "object": {"kind": "PartialObjectMetadata", "metadata": {"name": "cluster-two"}}},
            ]
        })
    }

    #[test]
    fn renders_server_table_like_kubectl() {
        let table = Table::from_response(&sample());
        assert_eq!(table.resource_version.as_deref(), Some("42"));
        let out = TablePrinter::new(false, false).render(&table, now());
        let expected = format!(
            "NAME          HUB ACCEPTED   JOINED   AVAILABLE   AGE\n\
             cluster1      true           True     True        5m\n\
             cluster-two   false{}2d4h\n",
            " ".repeat(10 + 9 + 12)
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn wide_shows_priority_columns_and_namespace_column() {
        let mut v = sample();
        v["rows"][0]["object"]["metadata"]["namespace"] = json!("ns-a");
        let table = Table::from_response(&v);
        let out = TablePrinter::new(true, true).render(&table, now());
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("NAMESPACE   NAME"), "{out}");
        assert!(lines[0].ends_with("AGE    URL"), "{out}");
        assert!(lines[1].starts_with("ns-a        cluster1"), "{out}");
        assert!(lines[1].ends_with("https://c1"), "{out}");
    }

    #[test]
    fn falls_back_to_name_and_age_for_plain_lists() {
        let list = json!({
            "kind": "ManagedClusterList",
            "apiVersion": "cluster.open-cluster-management.io/v1",
            "metadata": {"resourceVersion": "7"},
            "items": [
                {"metadata": {"name": "a", "creationTimestamp": "2025-01-10T11:59:55Z"}},
                {"metadata": {"name": "b"}},
            ]
        });
        let table = Table::from_response(&list);
        assert_eq!(table.resource_version.as_deref(), Some("7"));
        let out = TablePrinter::new(false, false).render(&table, now());
        assert_eq!(out, "NAME   AGE\na      5s\nb      \n");

        let single =
            json!({"kind": "Namespace", "metadata": {"name": "x", "creationTimestamp": "2025-01-10T11:00:00Z"}});
        let out = TablePrinter::new(false, false).render(&Table::from_response(&single), now());
        assert_eq!(out, "NAME   AGE\nx      60m\n");
    }

    #[test]
    fn header_printed_once_and_widths_kept_for_watch() {
        let mut printer = TablePrinter::new(false, false);
        let first = printer.render(&Table::from_response(&sample()), now());
        assert!(first.starts_with("NAME"));
        let mut later = Table::from_response(&sample());
        later.rows.truncate(1);
        let out = printer.render(&later, now());
        assert_eq!(out, "cluster1      true           True     True        5m\n");
    }

    #[test]
    fn kind_prefix_on_the_name_column() {
        let table = Table::from_response(&sample());
        let out = TablePrinter::new(false, false)
            .with_kind("managedcluster.cluster.open-cluster-management.io".into())
            .render(&table, now());
        let second = out.lines().nth(1).unwrap_or("");
        assert!(second.starts_with("managedcluster.cluster.open-cluster-management.io/cluster1 "), "{out}");
        assert!(out.starts_with("NAME "), "{out}");
    }

    #[test]
    fn the_cluster_view_adds_labels_and_moves_urls_to_wide() {
        let mut v = sample();
        v["columnDefinitions"][5]["name"] = json!("Managed Cluster URLs");
        v["columnDefinitions"][5]["priority"] = json!(0);
        v["rows"][0]["object"]["metadata"]["labels"] =
            json!({"cluster.open-cluster-management.io/clusterset": "default", "env": "prod"});
        let view = View::for_kind("cluster.open-cluster-management.io", "managedclusters");
        let mut table = Table::from_response(&v);
        view.apply(&mut table);
        let out = TablePrinter::new(false, false).render(&table, now());
        let expected = format!(
            "NAME          HUB ACCEPTED   JOINED   AVAILABLE   AGE    LABELS\n\
             cluster1      true           True     True        5m     cluster.open-cluster-management.io/clusterset=default,env=prod\n\
             cluster-two   false{}2d4h   <none>\n",
            " ".repeat(10 + 9 + 12)
        );
        assert_eq!(out, expected);
        let wide = TablePrinter::new(true, false).render(&table, now());
        assert!(
            wide.starts_with(
                "NAME          HUB ACCEPTED   JOINED   AVAILABLE   AGE    MANAGED CLUSTER URLS   LABELS\n"
            ),
            "{wide}"
        );
        // Applying twice changes nothing; other kinds keep the server's table.
        let again = table.clone();
        view.apply(&mut table);
        assert_eq!(table, again);
        let mut plain = Table::from_response(&sample());
        View::for_kind("apps", "deployments").apply(&mut plain);
        assert_eq!(plain, Table::from_response(&sample()));
        assert_eq!(format_labels(None), "<none>");
    }

    #[test]
    fn cells_are_cut_at_line_breaks() {
        let col = Column { name: "Message".into(), type_: "string".into(), format: String::new(), priority: 0 };
        assert_eq!(render_cell(Some(&col), &json!("a\nb"), now()), "a...");
        assert_eq!(render_cell(Some(&col), &json!(3), now()), "3");
        assert_eq!(render_cell(Some(&col), &json!(1.5), now()), "1.5");
        // A string in a date column that is not a timestamp is printed as is.
        let date = Column { type_: "date".into(), ..col };
        assert_eq!(render_cell(Some(&date), &json!("10m"), now()), "10m");
    }
}
