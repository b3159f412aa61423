//! Fixtures: one plugin invocation written as JSON, with the result it must give. What
//! `flotilla plugin run`, `test` and `bench` read, and what a plugin project keeps under
//! `fixtures/`.
//!
//! ```json
//! {
//!   "world": "placement-filter",
//!   "config": {"key": "region", "values": ["eu-west-1"]},
//!   "input": {
//!     "clusters": [
//!       {"name": "eu-1", "labels": {"region": "eu-west-1"}},
//!       {"name": "us-1", "labels": {"region": "us-east-1"}}
//!     ]
//!   },
//!   "expect": {"kept": ["eu-1"], "removed": {"us-1": "label region not in [eu-west-1]"}}
//! }
//! ```
//!
//! - `world` names the extension point (optional when the caller knows it);
//! - `config` is the plugin's configuration, any JSON (passed to the plugin as its text);
//! - `input` is what the host passes, per world (see [`FixtureInput`]): full clusters, which
//!   the host projects to what the plugin's `validate-config` says it reads, as it does in
//!   the hub;
//! - `expect` is the result as [`render`] writes it, compared exactly, or
//!   `{"error": "text"}` for a call that must fail with a message containing `text`
//!   (a rejected configuration included);
//! - `limits` (optional) overrides the call's limits as a `WasmPlugin`'s `spec.limits`.
//!
//! The hub and the tests use the same rendering, so a result reads the same everywhere.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::bindings::exports::flotilla::placement_filter::filter::FilterResult;
use crate::bindings::exports::flotilla::placement_scorer::scorer::ScoreResult;
use crate::bindings::exports::flotilla::policy_check::check::{CheckResult, Compliance};
use crate::bindings::exports::flotilla::rollout_strategy::strategy::{RolloutCluster, RolloutDecision, RolloutStatus};
use crate::bindings::flotilla::types::types::{Cluster, ClusterBatch, KindRef, OwnerRef, Timestamp};
use crate::cluster::{ClusterInfo, Quantity, parse_quantity_milli};
use crate::error::PluginError;
use crate::host::{Plugin, PluginHost, Prepared};
use crate::limits::{Limits, LimitsOverride};
use crate::output::TransformOutput;
use crate::state::SpokeReader;
use crate::world::World;

/// One fixture file.
#[derive(Clone, Debug, PartialEq)]
pub struct Fixture {
    pub world: Option<World>,
    /// The configuration, as JSON; the plugin receives its text.
    pub config: Value,
    pub input: Value,
    pub expect: Option<Expect>,
    pub limits: Option<LimitsOverride>,
    /// What the fixture shows, for people.
    pub description: Option<String>,
}

/// What a fixture expects of the call.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// The rendered result, compared exactly.
    Result(Value),
    /// The call fails with a message that contains this text.
    Error(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureFile {
    #[serde(default)]
    world: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    config: Option<Value>,
    input: Value,
    #[serde(default)]
    expect: Option<Value>,
    #[serde(default)]
    limits: Option<LimitsOverride>,
}

impl Fixture {
    /// Parses a fixture. A document without an `input` key is taken as a bare input (what
    /// `input` would hold), with no configuration and no expectation.
    pub fn parse(text: &str) -> Result<Fixture, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        Fixture::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Fixture, String> {
        let is_fixture = value.as_object().is_some_and(|o| o.contains_key("input"));
        if !is_fixture {
            if !value.is_object() {
                return Err("a fixture is a JSON object with \"input\" (and \"world\", \"config\", \"expect\")".into());
            }
            return Ok(Fixture {
                world: None,
                config: json!({}),
                input: value,
                expect: None,
                limits: None,
                description: None,
            });
        }
        let f: FixtureFile = serde_json::from_value(value).map_err(|e| format!("invalid fixture: {e}"))?;
        let world = f.world.map(|w| w.parse::<World>()).transpose()?;
        let expect = f.expect.map(|e| match e {
            Value::Object(o) if o.len() == 1 && o.get("error").is_some_and(Value::is_string) => {
                Expect::Error(o["error"].as_str().unwrap_or_default().to_string())
            }
            other => Expect::Result(other),
        });
        Ok(Fixture {
            world,
            config: f.config.unwrap_or_else(|| json!({})),
            input: f.input,
            expect,
            limits: f.limits,
            description: f.description,
        })
    }

    /// The configuration as the plugin receives it: the JSON text.
    pub fn config_text(&self) -> String {
        self.config.to_string()
    }

    /// Whether an outcome meets the expectation; `Err` says how it does not, one line per
    /// difference. A fixture without an expectation passes when the call succeeds.
    pub fn check(&self, outcome: &Result<Value, PluginError>) -> Result<(), String> {
        check_outcome(self.expect.as_ref(), outcome)
    }
}

/// Whether `outcome` meets `expect` (see [`Fixture::check`]).
pub fn check_outcome(expect: Option<&Expect>, outcome: &Result<Value, PluginError>) -> Result<(), String> {
    match (expect, outcome) {
        (None, Ok(_)) => Ok(()),
        (None, Err(e)) => Err(format!("the call failed: {e}")),
        (Some(Expect::Result(want)), Ok(got)) => {
            let diff = json_diff(want, got);
            if diff.is_empty() {
                Ok(())
            } else {
                let mut text = String::from("the result differs from \"expect\":");
                for d in diff {
                    text.push_str("\n  ");
                    text.push_str(&d);
                }
                text.push_str(&format!("\nexpected: {want}\ngot:      {got}"));
                Err(text)
            }
        }
        (Some(Expect::Result(want)), Err(e)) => Err(format!("expected the result {want}, but the call failed: {e}")),
        (Some(Expect::Error(text)), Err(e)) => {
            let message = e.to_string();
            if message.contains(text.as_str()) {
                Ok(())
            } else {
                Err(format!("expected an error containing {text:?}, got the error: {message}"))
            }
        }
        (Some(Expect::Error(text)), Ok(got)) => {
            Err(format!("expected an error containing {text:?}, but the call succeeded with {got}"))
        }
    }
}

/// The differences between two JSON values, one line each, by path (`$.removed.b`,
/// `$.clusters[2]`): what `expect` has and the result lacks, what differs, and what the
/// result has beyond `expect`.
pub fn json_diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_at("$", expected, actual, &mut out);
    out
}

fn diff_at(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = child_path(path, k);
                match a.get(k) {
                    Some(av) => diff_at(&p, ev, av, out),
                    None => out.push(format!("{p}: expected {ev}, missing")),
                }
            }
            for (k, av) in a {
                if !e.contains_key(k) {
                    out.push(format!("{}: not expected, got {av}", child_path(path, k)));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff_at(&format!("{path}[{i}]"), ev, av, out);
            }
            for (i, ev) in e.iter().enumerate().skip(a.len()) {
                out.push(format!("{path}[{i}]: expected {ev}, missing"));
            }
            for (i, av) in a.iter().enumerate().skip(e.len()) {
                out.push(format!("{path}[{i}]: not expected, got {av}"));
            }
        }
        (e, a) if e == a => {}
        (e, a) => out.push(format!("{path}: expected {e}, got {a}")),
    }
}

fn child_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if plain { format!("{path}.{key}") } else { format!("{path}[{}]", Value::String(key.to_string())) }
}

/// A cluster in a fixture: the short form, or a whole ManagedCluster.
///
/// ```json
/// {"name": "eu-1", "labels": {"region": "eu-west-1"}, "claims": {"platform.open-cluster-management.io": "AWS"},
///  "resources": {"cpu": {"capacity": "8", "allocatable": "7500m"}},
///  "fields": {"status.version.kubernetes": "v1.31.2"}}
/// {"managedCluster": {"metadata": {"name": "eu-1", "labels": {}}, "status": {}}}
/// ```
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFixture {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    claims: BTreeMap<String, String>,
    #[serde(default)]
    resources: BTreeMap<String, QuantityFixture>,
    /// Field paths (as a plugin declares them in `reads.fields`) and their values.
    #[serde(default)]
    fields: BTreeMap<String, Value>,
    #[serde(default, rename = "managedCluster")]
    managed_cluster: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantityFixture {
    #[serde(default)]
    capacity: Option<Value>,
    #[serde(default)]
    allocatable: Option<Value>,
}

/// A Kubernetes quantity as a string (`"7500m"`, `"16Gi"`) or a number of units, in
/// milli-units.
fn quantity_milli(v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => parse_quantity_milli(s).ok_or_else(|| format!("{s:?} is not a Kubernetes quantity")),
        Value::Number(n) => parse_quantity_milli(&n.to_string()).ok_or_else(|| format!("{n} is out of range")),
        other => Err(format!("{other} is not a quantity (a string such as \"500m\" or a number)")),
    }
}

impl ClusterFixture {
    fn into_info(self) -> Result<ClusterInfo, String> {
        if let Some(mc) = self.managed_cluster {
            let short_form = self.name.is_some()
                || !self.labels.is_empty()
                || !self.claims.is_empty()
                || !self.resources.is_empty()
                || !self.fields.is_empty();
            if short_form {
                return Err(
                    "a cluster is either \"managedCluster\" or name, labels, claims, resources and fields".into()
                );
            }
            let info = ClusterInfo::from_managed_cluster(&mc);
            if info.name.is_empty() {
                return Err("managedCluster has no metadata.name".into());
            }
            return Ok(info);
        }
        let name = self.name.filter(|n| !n.is_empty()).ok_or("a cluster needs a name")?;
        let mut resources = BTreeMap::new();
        for (r, q) in self.resources {
            let milli = |v: Option<Value>| {
                v.map(|v| quantity_milli(&v).map_err(|e| format!("cluster {name}: resource {r}: {e}"))).transpose()
            };
            resources.insert(
                r.clone(),
                Quantity { capacity_milli: milli(q.capacity)?, allocatable_milli: milli(q.allocatable)? },
            );
        }
        // Field paths become the ManagedCluster object they are read from.
        let object = (!self.fields.is_empty()).then(|| {
            let mut root = Map::new();
            for (path, value) in self.fields {
                insert_path(&mut root, &path, value);
            }
            Value::Object(root)
        });
        Ok(ClusterInfo { name, labels: self.labels, claims: self.claims, resources, object })
    }
}

/// Sets `value` at a dotted path (`status.version.kubernetes`), creating the objects on the way.
fn insert_path(root: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut at = root;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            at.insert(part.to_string(), value);
            return;
        }
        let entry = at.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        at = next;
    }
}

fn clusters_of(value: Option<&Value>, what: &str) -> Result<Vec<ClusterInfo>, String> {
    let Some(value) = value else { return Err(format!("input needs \"{what}\"")) };
    let list: Vec<ClusterFixture> = serde_json::from_value(value.clone()).map_err(|e| format!("input.{what}: {e}"))?;
    let clusters = list.into_iter().map(ClusterFixture::into_info).collect::<Result<Vec<_>, _>>()?;
    unique_names(clusters.iter().map(|c| c.name.as_str()))?;
    Ok(clusters)
}

fn unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(format!("cluster {n:?} appears twice in the input"));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnerFixture {
    kind: String,
    #[serde(default)]
    namespace: String,
    name: String,
}

/// One cluster of a rollout: a cluster as above, with its decision group and status.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutClusterInput {
    pub cluster: ClusterInfo,
    pub group_index: u32,
    pub group_name: String,
    pub status: RolloutStatus,
    pub last_transition_time: Option<Timestamp>,
}

/// A fixture's input, decoded for its world: the host's own types, before projection.
///
/// Every world takes an optional `owner` (`{"kind", "namespace", "name"}`; by default the
/// kind the world serves, in `default`, named `fixture`). Then:
///
/// - placement-filter, placement-scorer: `clusters`, a list of clusters;
/// - policy-check: `cluster`, one cluster, and `objects`, the spoke's objects (each with
///   `apiVersion`, `kind` and `metadata`) that `spoke.list-objects` and `get-object` read;
/// - rollout-strategy: `now` (milliseconds since the Unix epoch) and `clusters`, each a
///   cluster with `status` (`ToApply`, `Progressing`, `Succeeded`, `Failed`, `TimeOut`,
///   `Skip`), and optionally `groupIndex`, `groupName` and `lastTransitionTime` (ms);
/// - manifest-transform: `manifests`, a list of objects, and `clusters`.
///
/// A cluster is `{"name", "labels": {}, "claims": {}, "resources": {"cpu": {"capacity":
/// "8", "allocatable": "7500m"}}, "fields": {"status.version.kubernetes": "v1.31.2"}}` or
/// `{"managedCluster": <a ManagedCluster object>}`.
#[derive(Clone, Debug, PartialEq)]
pub enum FixtureInput {
    PlacementFilter { owner: OwnerRef, clusters: Vec<ClusterInfo> },
    PlacementScorer { owner: OwnerRef, clusters: Vec<ClusterInfo> },
    PolicyCheck { owner: OwnerRef, cluster: ClusterInfo, objects: Vec<Value> },
    RolloutStrategy { owner: OwnerRef, now: Timestamp, clusters: Vec<RolloutClusterInput> },
    ManifestTransform { owner: OwnerRef, manifests: Vec<Value>, clusters: Vec<ClusterInfo> },
}

fn default_owner(world: World) -> OwnerRef {
    let kind = match world {
        World::PlacementFilter | World::PlacementScorer => "Placement",
        World::PolicyCheck => "Policy",
        World::RolloutStrategy | World::ManifestTransform => "ManifestWorkReplicaSet",
    };
    OwnerRef { kind: kind.into(), namespace: "default".into(), name: "fixture".into() }
}

fn parse_status(s: &str) -> Result<RolloutStatus, String> {
    Ok(match s {
        "ToApply" | "to-apply" => RolloutStatus::ToApply,
        "Progressing" | "progressing" => RolloutStatus::Progressing,
        "Succeeded" | "succeeded" => RolloutStatus::Succeeded,
        "Failed" | "failed" => RolloutStatus::Failed,
        "TimeOut" | "time-out" => RolloutStatus::TimeOut,
        "Skip" | "skip" => RolloutStatus::Skip,
        other => {
            return Err(format!(
                "status {other:?} is not one of ToApply, Progressing, Succeeded, Failed, TimeOut, Skip"
            ));
        }
    })
}

fn status_name(s: RolloutStatus) -> &'static str {
    match s {
        RolloutStatus::ToApply => "ToApply",
        RolloutStatus::Progressing => "Progressing",
        RolloutStatus::Succeeded => "Succeeded",
        RolloutStatus::Failed => "Failed",
        RolloutStatus::TimeOut => "TimeOut",
        RolloutStatus::Skip => "Skip",
    }
}

fn rollout_cluster(value: &Value) -> Result<RolloutClusterInput, String> {
    let Value::Object(map) = value else { return Err(format!("a rollout cluster is an object, not {value}")) };
    let mut map = map.clone();
    let name = map.get("name").and_then(Value::as_str).unwrap_or("?").to_string();
    let at = |e: String| format!("rollout cluster {name}: {e}");
    let status = match map.remove("status") {
        Some(Value::String(s)) => parse_status(&s).map_err(at)?,
        Some(other) => return Err(at(format!("status {other} is not a string"))),
        None => return Err(at("needs a status".into())),
    };
    let group_index = match map.remove("groupIndex") {
        None => 0,
        Some(v) => v.as_u64().and_then(|v| u32::try_from(v).ok()).ok_or_else(|| at(format!("groupIndex {v}")))?,
    };
    let group_name = match map.remove("groupName") {
        None => String::new(),
        Some(Value::String(s)) => s,
        Some(v) => return Err(at(format!("groupName {v} is not a string"))),
    };
    let last_transition_time = match map.remove("lastTransitionTime") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| at(format!("lastTransitionTime {v} is not milliseconds")))?),
    };
    let cluster: ClusterFixture = serde_json::from_value(Value::Object(map)).map_err(|e| at(e.to_string()))?;
    Ok(RolloutClusterInput { cluster: cluster.into_info()?, group_index, group_name, status, last_transition_time })
}

fn objects_of(value: Option<&Value>, what: &str) -> Result<Vec<Value>, String> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_object() {
                    return Err(format!("input.{what}[{i}] is not a JSON object"));
                }
            }
            Ok(items.clone())
        }
        Some(other) => Err(format!("input.{what} is not a list: {other}")),
    }
}

impl FixtureInput {
    /// Decodes `input` for `world`, refusing keys the world does not take.
    pub fn decode(world: World, input: &Value) -> Result<FixtureInput, String> {
        let Value::Object(map) = input else { return Err("input is not a JSON object".into()) };
        let allowed: &[&str] = match world {
            World::PlacementFilter | World::PlacementScorer => &["owner", "clusters"],
            World::PolicyCheck => &["owner", "cluster", "objects"],
            World::RolloutStrategy => &["owner", "now", "clusters"],
            World::ManifestTransform => &["owner", "manifests", "clusters"],
        };
        if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!("input of a {world} has no {k:?} (it takes {})", allowed.join(", ")));
        }
        let owner = match map.get("owner") {
            None => default_owner(world),
            Some(v) => {
                let o: OwnerFixture = serde_json::from_value(v.clone()).map_err(|e| format!("input.owner: {e}"))?;
                OwnerRef { kind: o.kind, namespace: o.namespace, name: o.name }
            }
        };
        Ok(match world {
            World::PlacementFilter => {
                FixtureInput::PlacementFilter { owner, clusters: clusters_of(map.get("clusters"), "clusters")? }
            }
            World::PlacementScorer => {
                FixtureInput::PlacementScorer { owner, clusters: clusters_of(map.get("clusters"), "clusters")? }
            }
            World::PolicyCheck => {
                let cluster: ClusterFixture =
                    serde_json::from_value(map.get("cluster").cloned().ok_or("input needs \"cluster\"")?)
                        .map_err(|e| format!("input.cluster: {e}"))?;
                FixtureInput::PolicyCheck {
                    owner,
                    cluster: cluster.into_info()?,
                    objects: objects_of(map.get("objects"), "objects")?,
                }
            }
            World::RolloutStrategy => {
                let now = map.get("now").ok_or("input needs \"now\" (milliseconds since the Unix epoch)")?;
                let now =
                    now.as_i64().ok_or_else(|| format!("input.now {now} is not milliseconds since the Unix epoch"))?;
                let list = match map.get("clusters") {
                    Some(Value::Array(list)) => list,
                    Some(other) => return Err(format!("input.clusters is not a list: {other}")),
                    None => return Err("input needs \"clusters\"".into()),
                };
                let clusters = list.iter().map(rollout_cluster).collect::<Result<Vec<_>, _>>()?;
                unique_names(clusters.iter().map(|c| c.cluster.name.as_str()))?;
                FixtureInput::RolloutStrategy { owner, now, clusters }
            }
            World::ManifestTransform => FixtureInput::ManifestTransform {
                owner,
                manifests: objects_of(map.get("manifests"), "manifests")?,
                clusters: clusters_of(map.get("clusters"), "clusters")?,
            },
        })
    }

    pub fn world(&self) -> World {
        match self {
            FixtureInput::PlacementFilter { .. } => World::PlacementFilter,
            FixtureInput::PlacementScorer { .. } => World::PlacementScorer,
            FixtureInput::PolicyCheck { .. } => World::PolicyCheck,
            FixtureInput::RolloutStrategy { .. } => World::RolloutStrategy,
            FixtureInput::ManifestTransform { .. } => World::ManifestTransform,
        }
    }

    /// The call's arguments as the plugin sees them under `prepared`'s configuration: each
    /// cluster projected to what the plugin reads, by column for the fleet-wide worlds.
    pub fn bind(&self, prepared: &Prepared) -> Result<Call, PluginError> {
        let world = prepared.plugin.world();
        if world != self.world() {
            return Err(PluginError::WorldMismatch {
                plugin: prepared.plugin.name().to_string(),
                expected: self.world(),
                actual: world,
            });
        }
        let names = |clusters: &[ClusterInfo]| clusters.iter().map(|c| c.name.clone()).collect();
        let (owner, args) = match self {
            FixtureInput::PlacementFilter { owner, clusters } => {
                (owner, Args::Filter(prepared.batch(clusters), names(clusters)))
            }
            FixtureInput::PlacementScorer { owner, clusters } => {
                (owner, Args::Scorer(prepared.batch(clusters), names(clusters)))
            }
            FixtureInput::PolicyCheck { owner, cluster, objects } => {
                (owner, Args::Check(prepared.project(cluster), Arc::new(FixtureSpoke::new(objects.clone()))))
            }
            FixtureInput::RolloutStrategy { owner, now, clusters } => {
                let rows = clusters
                    .iter()
                    .map(|c| RolloutCluster {
                        cluster: prepared.project(&c.cluster),
                        group_index: c.group_index,
                        group_name: c.group_name.clone(),
                        status: c.status,
                        last_transition_time: c.last_transition_time,
                    })
                    .collect();
                (owner, Args::Rollout(*now, rows))
            }
            FixtureInput::ManifestTransform { owner, manifests, clusters } => (
                owner,
                Args::Transform(
                    manifests.iter().map(Value::to_string).collect(),
                    prepared.batch(clusters),
                    names(clusters),
                ),
            ),
        };
        Ok(Call { prepared: prepared.clone(), owner: owner.clone(), args })
    }
}

enum Args {
    Filter(ClusterBatch, Vec<String>),
    Scorer(ClusterBatch, Vec<String>),
    Check(Cluster, Arc<FixtureSpoke>),
    Rollout(Timestamp, Vec<RolloutCluster>),
    Transform(Vec<String>, ClusterBatch, Vec<String>),
}

/// One call with its arguments ready (projected and encoded), to make once or many times
/// (`flotilla plugin bench`).
pub struct Call {
    prepared: Prepared,
    owner: OwnerRef,
    args: Args,
}

impl Call {
    pub fn prepared(&self) -> &Prepared {
        &self.prepared
    }

    /// Invokes the plugin and renders its result as JSON (see [`render`]).
    pub fn invoke(&self, host: &PluginHost, limits: &Limits) -> Result<Value, PluginError> {
        let p = &self.prepared;
        let owner = &self.owner;
        Ok(match &self.args {
            Args::Filter(batch, names) => render::filter(&host.placement_filter(p, owner, batch, limits)?, names),
            Args::Scorer(batch, names) => render::scores(&host.placement_scorer(p, owner, batch, limits)?, names),
            Args::Check(cluster, spoke) => {
                render::check(&host.policy_check(p, owner, cluster, spoke.clone(), limits)?)
            }
            Args::Rollout(now, clusters) => render::rollout(&host.rollout_strategy(p, owner, *now, clusters, limits)?),
            Args::Transform(manifests, batch, names) => {
                render::transform(&host.manifest_transform(p, owner, manifests, batch, limits)?, names)
            }
        })
    }
}

/// Runs a fixture against a loaded plugin: prepares its configuration (a rejection is an
/// outcome like any other), decodes its input, calls the plugin under `limits` (with the
/// fixture's own overrides applied) and renders the result. `Err` is a fixture that cannot
/// be run at all (an input that does not decode).
pub fn run_fixture(
    host: &PluginHost,
    plugin: &Arc<Plugin>,
    fixture: &Fixture,
    limits: &Limits,
) -> Result<Result<Value, PluginError>, String> {
    let input = FixtureInput::decode(plugin.world(), &fixture.input)?;
    let limits = match &fixture.limits {
        Some(o) => limits.with(o, &host.config().maxima),
        None => *limits,
    };
    let outcome = host
        .prepare_with(plugin, &fixture.config_text(), &limits)
        .and_then(|prepared| input.bind(&prepared))
        .and_then(|call| call.invoke(host, &limits));
    Ok(outcome)
}

/// A spoke made of a fixture's objects, for policy checks: lists by kind, namespace and
/// label selector, gets by kind, namespace and name.
pub struct FixtureSpoke {
    objects: Vec<Value>,
}

impl FixtureSpoke {
    pub fn new(objects: Vec<Value>) -> FixtureSpoke {
        FixtureSpoke { objects }
    }

    fn of_kind<'a>(&'a self, kind: &'a KindRef, namespace: Option<&'a str>) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| {
            o.get("apiVersion").and_then(Value::as_str) == Some(kind.api_version.as_str())
                && o.get("kind").and_then(Value::as_str) == Some(kind.kind.as_str())
                && namespace.is_none_or(|ns| o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns))
        })
    }
}

impl SpokeReader for FixtureSpoke {
    fn list(
        &self,
        kind: &KindRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<String>, String> {
        let selector = match label_selector {
            Some(s) => parse_selector(s).map_err(|e| format!("invalid label selector {s:?}: {e}"))?,
            None => Vec::new(),
        };
        Ok(self
            .of_kind(kind, namespace)
            .filter(|o| {
                let labels = o.pointer("/metadata/labels").and_then(Value::as_object);
                selector.iter().all(|r| r.matches(labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str)))
            })
            .map(Value::to_string)
            .collect())
    }

    fn get(&self, kind: &KindRef, namespace: Option<&str>, name: &str) -> Result<Option<String>, String> {
        Ok(self
            .of_kind(kind, None)
            .find(|o| {
                o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
                    && o.pointer("/metadata/namespace").and_then(Value::as_str) == namespace
            })
            .map(Value::to_string))
    }
}

/// One requirement of a Kubernetes label selector.
struct Requirement {
    key: String,
    op: SelectorOp,
}

enum SelectorOp {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

impl Requirement {
    fn matches(&self, value: Option<&str>) -> bool {
        match &self.op {
            SelectorOp::Equals(v) => value == Some(v.as_str()),
            SelectorOp::NotEquals(v) => value != Some(v.as_str()),
            SelectorOp::In(vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
            SelectorOp::NotIn(vs) => value.is_none_or(|x| vs.iter().all(|v| v != x)),
            SelectorOp::Exists => value.is_some(),
            SelectorOp::DoesNotExist => value.is_none(),
        }
    }
}

/// Parses the string form of a label selector (`app=web,tier!=cache`, `env in (a,b)`,
/// `env notin (c)`, `gpu`, `!legacy`), as `spoke.list-objects` receives it.
fn parse_selector(selector: &str) -> Result<Vec<Requirement>, String> {
    // Split at the commas outside parentheses.
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&selector[start..]);
    let key_ok = |k: &str| !k.is_empty() && !k.contains(|c: char| c.is_whitespace() || "=!(),".contains(c));
    let mut out = Vec::new();
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let (key, op) = if let Some(key) = part.strip_prefix('!') {
            (key.trim(), SelectorOp::DoesNotExist)
        } else if let Some(open) = part.find('(') {
            let inner = part[open + 1..].strip_suffix(')').ok_or("a value set lacks its closing ')'")?;
            let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
            match part[..open].split_whitespace().collect::<Vec<_>>().as_slice() {
                [key, "in"] => (*key, SelectorOp::In(values)),
                [key, "notin"] => (*key, SelectorOp::NotIn(values)),
                _ => return Err(format!("{part:?}: expected KEY in (...) or KEY notin (...)")),
            }
        } else if let Some((key, value)) = part.split_once("!=") {
            (key.trim(), SelectorOp::NotEquals(value.trim().to_string()))
        } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
            (key.trim(), SelectorOp::Equals(value.trim().to_string()))
        } else {
            (part, SelectorOp::Exists)
        };
        if !key_ok(key) {
            return Err(format!("{part:?}: invalid key {key:?}"));
        }
        out.push(Requirement { key: key.to_string(), op });
    }
    Ok(out)
}

/// Each world's result as JSON, readable and keyed by cluster name: what fixtures expect,
/// `flotilla plugin run` prints, and status and `placement explain` can show.
pub mod render {
    use super::*;

    /// `{"kept": [names], "removed": {name: reason}, "requeueAfterMs": n}` (the last only
    /// when asked for), in input order.
    pub fn filter(r: &FilterResult, names: &[String]) -> Value {
        let mut kept = Vec::new();
        let mut removed = Map::new();
        for (i, name) in names.iter().enumerate() {
            match r.reason(i) {
                None if r.keeps(i) => kept.push(Value::String(name.clone())),
                reason => {
                    removed.insert(name.clone(), Value::String(reason.unwrap_or_default().to_string()));
                }
            }
        }
        let mut out = Map::new();
        out.insert("kept".into(), Value::Array(kept));
        out.insert("removed".into(), Value::Object(removed));
        if let Some(ms) = r.requeue_after_ms {
            out.insert("requeueAfterMs".into(), json!(ms));
        }
        Value::Object(out)
    }

    /// `{"scores": {name: score}, "requeueAfterMs": n}` (the last only when asked for).
    pub fn scores(r: &ScoreResult, names: &[String]) -> Value {
        let scores: Map<String, Value> = names.iter().cloned().zip(r.scores.iter().map(|s| json!(s))).collect();
        let mut out = Map::new();
        out.insert("scores".into(), Value::Object(scores));
        if let Some(ms) = r.requeue_after_ms {
            out.insert("requeueAfterMs".into(), json!(ms));
        }
        Value::Object(out)
    }

    /// `{"compliance": "Compliant"|"NonCompliant"|"Pending", "message", "violations": [{"object":
    /// {"apiVersion", "kind", "namespace", "name"}, "message", "remediation": <merge patch>}]}`.
    pub fn check(r: &CheckResult) -> Value {
        let compliance = match r.compliance {
            Compliance::Compliant => "Compliant",
            Compliance::NonCompliant => "NonCompliant",
            Compliance::Pending => "Pending",
        };
        let violations: Vec<Value> = r
            .violations
            .iter()
            .map(|v| {
                let mut out = Map::new();
                if let Some(o) = &v.object {
                    let mut object = Map::new();
                    object.insert("apiVersion".into(), json!(o.kind.api_version));
                    object.insert("kind".into(), json!(o.kind.kind));
                    if let Some(ns) = &o.namespace {
                        object.insert("namespace".into(), json!(ns));
                    }
                    object.insert("name".into(), json!(o.name));
                    out.insert("object".into(), Value::Object(object));
                }
                out.insert("message".into(), json!(v.message));
                if let Some(patch) = &v.remediation {
                    // The host checked it is a JSON object.
                    let patch = serde_json::from_str(patch).unwrap_or_else(|_| Value::String(patch.clone()));
                    out.insert("remediation".into(), patch);
                }
                Value::Object(out)
            })
            .collect();
        json!({"compliance": compliance, "message": r.message, "violations": violations})
    }

    /// `{"proceed", "timedOut", "failed", "stop", "recheckAfterMs", "message"}` (the last two
    /// only when set).
    pub fn rollout(r: &RolloutDecision) -> Value {
        let mut out = Map::new();
        out.insert("proceed".into(), json!(r.proceed));
        out.insert("timedOut".into(), json!(r.timed_out));
        out.insert("failed".into(), json!(r.failed));
        out.insert("stop".into(), json!(r.stop));
        if let Some(ms) = r.recheck_after_ms {
            out.insert("recheckAfterMs".into(), json!(ms));
        }
        if let Some(m) = &r.message {
            out.insert("message".into(), json!(m));
        }
        Value::Object(out)
    }

    /// `{"clusters": {name: {"manifests": [...]} or {"error": reason}}}`.
    pub fn transform(r: &TransformOutput, names: &[String]) -> Value {
        let clusters: Map<String, Value> = names
            .iter()
            .cloned()
            .zip(r.iter().map(|entry| match entry {
                Ok(manifests) => json!({"manifests": manifests}),
                Err(reason) => json!({"error": reason}),
            }))
            .collect();
        json!({"clusters": clusters})
    }

    /// The rollout status's name in fixtures (`ToApply`, `TimeOut`, ...).
    pub fn rollout_status(s: RolloutStatus) -> &'static str {
        status_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_parse_with_and_without_the_envelope() {
        let f = Fixture::parse(
            r#"{"world": "placement-filter", "config": {"a": 1}, "input": {"clusters": []}, "expect": {"error": "boom"}}"#,
        )
        .expect("fixture");
        assert_eq!(f.world, Some(World::PlacementFilter));
        assert_eq!(f.config_text(), r#"{"a":1}"#);
        assert_eq!(f.expect, Some(Expect::Error("boom".into())));
        let bare = Fixture::parse(r#"{"clusters": []}"#).expect("bare input");
        assert_eq!(bare.input, json!({"clusters": []}));
        assert_eq!(bare.expect, None);
        let e = Fixture::parse(r#"{"input": {}, "expected": {}}"#).expect_err("typo");
        assert!(e.contains("unknown field `expected`"), "{e}");
        let e = Fixture::parse(r#"{"world": "placement", "input": {}}"#).expect_err("world");
        assert!(e.contains("unknown world"), "{e}");
    }

    #[test]
    fn inputs_decode_per_world() {
        let input = json!({"clusters": [
            {"name": "a", "labels": {"region": "eu"}, "resources": {"cpu": {"capacity": "8", "allocatable": 7.5}},
             "fields": {"status.version.kubernetes": "v1.31.2"}},
            {"managedCluster": {"metadata": {"name": "b", "labels": {"region": "us"}},
                                "status": {"clusterClaims": [{"name": "platform", "value": "AWS"}]}}}
        ]});
        let FixtureInput::PlacementFilter { owner, clusters } =
            FixtureInput::decode(World::PlacementFilter, &input).expect("decode")
        else {
            panic!("a filter input")
        };
        assert_eq!(owner.kind, "Placement");
        assert_eq!(
            clusters[0].resources["cpu"],
            Quantity { capacity_milli: Some(8000), allocatable_milli: Some(7500) }
        );
        assert_eq!(clusters[0].object, Some(json!({"status": {"version": {"kubernetes": "v1.31.2"}}})));
        assert_eq!(clusters[1].claims["platform"], "AWS");

        let e = FixtureInput::decode(World::PlacementFilter, &json!({"clusters": [{"name": "a"}, {"name": "a"}]}))
            .expect_err("duplicate");
        assert_eq!(e, "cluster \"a\" appears twice in the input");
        let e = FixtureInput::decode(World::PlacementScorer, &json!({"now": 1, "clusters": []})).expect_err("key");
        assert!(e.contains("has no \"now\""), "{e}");

        let rollout = json!({"now": 5, "clusters": [
            {"name": "a", "status": "Succeeded", "lastTransitionTime": 1, "groupIndex": 1},
            {"name": "b", "status": "to-apply"}]});
        let FixtureInput::RolloutStrategy { now, clusters, .. } =
            FixtureInput::decode(World::RolloutStrategy, &rollout).expect("rollout")
        else {
            panic!("a rollout input")
        };
        assert_eq!(now, 5);
        assert_eq!((clusters[0].status, clusters[0].group_index), (RolloutStatus::Succeeded, 1));
        assert_eq!(clusters[1].status, RolloutStatus::ToApply);
        let e = FixtureInput::decode(World::RolloutStrategy, &json!({"now": 5, "clusters": [{"name": "a"}]}))
            .expect_err("status");
        assert_eq!(e, "rollout cluster a: needs a status");
    }

    #[test]
    fn outcomes_are_checked_with_a_readable_diff() {
        let want = Expect::Result(json!({"kept": ["a", "b"], "removed": {"c": "x", "d.e": "y"}}));
        let got = json!({"kept": ["a"], "removed": {"c": "z", "f": "w"}});
        let e = check_outcome(Some(&want), &Ok(got)).expect_err("differs");
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            &lines[..5],
            [
                "the result differs from \"expect\":",
                "  $.kept[1]: expected \"b\", missing",
                "  $.removed.c: expected \"x\", got \"z\"",
                "  $.removed[\"d.e\"]: expected \"y\", missing",
                "  $.removed.f: not expected, got \"w\"",
            ]
        );
        let err = Err(PluginError::Timeout { timeout_ms: 5 });
        assert_eq!(check_outcome(Some(&Expect::Error("deadline".into())), &err), Ok(()));
        let e = check_outcome(Some(&Expect::Error("trapped".into())), &err).expect_err("other error");
        assert_eq!(
            e,
            "expected an error containing \"trapped\", got the error: the plugin did not finish within its deadline of 5 ms"
        );
        assert!(check_outcome(None, &Ok(json!({}))).is_ok());
    }

    #[test]
    fn the_fixture_spoke_lists_by_kind_namespace_and_selector() {
        let spoke = FixtureSpoke::new(vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "a", "name": "x", "labels": {"app": "web"}}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "b", "name": "x"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": "a", "name": "x"}}),
        ]);
        let cm = KindRef { api_version: "v1".into(), kind: "ConfigMap".into() };
        assert_eq!(spoke.list(&cm, None, None).expect("list").len(), 2);
        assert_eq!(spoke.list(&cm, Some("b"), None).expect("list").len(), 1);
        assert_eq!(spoke.list(&cm, None, Some("app=web")).expect("list").len(), 1);
        assert_eq!(spoke.list(&cm, None, Some("app in (web, api),!legacy")).expect("list").len(), 1);
        assert_eq!(spoke.list(&cm, None, Some("app notin (web)")).expect("list").len(), 1);
        assert_eq!(spoke.list(&cm, None, Some("app!=web")).expect("list").len(), 1);
        assert_eq!(spoke.list(&cm, None, Some("app")).expect("list").len(), 1);
        assert!(spoke.list(&cm, None, Some("app in (")).is_err());
        assert!(spoke.list(&cm, None, Some("app within (x)")).is_err());
        let got = spoke.get(&cm, Some("b"), "x").expect("get").expect("found");
        assert!(got.contains("\"namespace\":\"b\""), "{got}");
        assert_eq!(spoke.get(&cm, Some("c"), "x").expect("get"), None);
    }
}
