//! Write Flotilla plugins in Rust without touching wit-bindgen's raw bindings.
//!
//! A plugin is a type that implements [`Plugin`] (who it is, its configuration type, what it
//! reads under a configuration) and the trait of its world, exported with that world's macro:
//!
//! ```ignore
//! use flotilla_plugin_sdk::{Clusters, Context, Description, Filtered, Plugin, PlacementFilter, Reads, Result};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { key: String, values: Vec<String> }
//!
//! struct MyFilter;
//!
//! impl Plugin for MyFilter {
//!     type Config = Config;
//!     fn describe() -> Description { flotilla_plugin_sdk::package_description!() }
//!     fn reads(config: &Config) -> Result<Reads> { Ok(Reads::new().labels([&config.key])) }
//! }
//!
//! impl PlacementFilter for MyFilter {
//!     fn filter(config: &Config, _ctx: &Context, clusters: &Clusters) -> Result<Filtered> {
//!         Ok(Filtered::by(clusters, |c| match c.label(&config.key) {
//!             Some(v) if config.values.iter().any(|x| x == v) => None,
//!             _ => Some(format!("label {} not in the list", config.key)),
//!         }))
//!     }
//! }
//!
//! flotilla_plugin_sdk::placement_filter!(MyFilter);
//! ```
//!
//! Every world is a Cargo feature, all on by default: a component exports only the world whose
//! macro it calls and imports only what it uses, so the others cost compile time alone
//! (`default-features = false, features = ["placement-filter"]` saves that).

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

// The generated bindings and export macros name this crate by path, from inside it too.
extern crate self as flotilla_plugin_sdk;

mod export;
pub mod log;
mod worlds;

/// wit-bindgen's runtime, which the export macros expand to in the plugin's crate (so the
/// plugin needs no wit-bindgen dependency of its own).
#[doc(hidden)]
pub use wit_bindgen::rt as __rt;

#[doc(hidden)]
pub use worlds::*;

/// The raw wit-bindgen bindings of each enabled world, for what the SDK does not cover.
pub mod bindings {
    #[cfg(feature = "placement-filter")]
    pub mod placement_filter {
        wit_bindgen::generate!({
            path: "wit/placement-filter",
            world: "placement-filter",
            generate_all,
            runtime_path: "flotilla_plugin_sdk::__rt",
            pub_export_macro: true,
            export_macro_name: "__export_placement_filter_raw",
            default_bindings_module: "flotilla_plugin_sdk::bindings::placement_filter",
        });
    }
    #[cfg(feature = "placement-scorer")]
    pub mod placement_scorer {
        wit_bindgen::generate!({
            path: "wit/placement-scorer",
            world: "placement-scorer",
            generate_all,
            runtime_path: "flotilla_plugin_sdk::__rt",
            pub_export_macro: true,
            export_macro_name: "__export_placement_scorer_raw",
            default_bindings_module: "flotilla_plugin_sdk::bindings::placement_scorer",
        });
    }
    #[cfg(feature = "policy-check")]
    pub mod policy_check {
        wit_bindgen::generate!({
            path: "wit/policy-check",
            world: "policy-check",
            generate_all,
            runtime_path: "flotilla_plugin_sdk::__rt",
            pub_export_macro: true,
            export_macro_name: "__export_policy_check_raw",
            default_bindings_module: "flotilla_plugin_sdk::bindings::policy_check",
        });
    }
    #[cfg(feature = "rollout-strategy")]
    pub mod rollout_strategy {
        wit_bindgen::generate!({
            path: "wit/rollout-strategy",
            world: "rollout-strategy",
            generate_all,
            runtime_path: "flotilla_plugin_sdk::__rt",
            pub_export_macro: true,
            export_macro_name: "__export_rollout_strategy_raw",
            default_bindings_module: "flotilla_plugin_sdk::bindings::rollout_strategy",
        });
    }
    #[cfg(feature = "manifest-transform")]
    pub mod manifest_transform {
        wit_bindgen::generate!({
            path: "wit/manifest-transform",
            world: "manifest-transform",
            generate_all,
            runtime_path: "flotilla_plugin_sdk::__rt",
            pub_export_macro: true,
            export_macro_name: "__export_manifest_transform_raw",
            default_bindings_module: "flotilla_plugin_sdk::bindings::manifest_transform",
        });
    }
}

// ---------------------------------------------------------------------------------------
// Errors and configuration

/// A plugin's error: the message the host shows (a rejected configuration makes the object
/// that refers to the plugin `Misconfigured` with it; a failed call follows its failure
/// policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub fn msg(message: impl fmt::Display) -> Self {
        Error(message.to_string())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error(s.to_string())
    }
}

impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.0
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns an [`Error`] from the current function: `bail!("regions must not be empty")`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::msg(::std::format!($($arg)*)))
    };
}

/// Parses a configuration (the JSON text the host passes) into `T`. The error names the field
/// at fault: `invalid configuration: at regions[1]: invalid type: integer 3, expected a
/// string`. An empty text is the empty object, so plugins whose fields all have defaults take
/// no configuration.
pub fn parse_config<T: DeserializeOwned>(text: &str) -> Result<T> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Error::msg(format!("invalid configuration: {inner}"))
        } else {
            Error::msg(format!("invalid configuration: at {path}: {inner}"))
        }
    })?;
    de.end().map_err(|e| Error::msg(format!("invalid configuration: {e}")))?;
    Ok(value)
}

// ---------------------------------------------------------------------------------------
// Identity and reads

/// A Kubernetes kind: `apps/v1` `Deployment`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kind {
    pub api_version: String,
    pub kind: String,
}

impl Kind {
    pub fn new(api_version: impl Into<String>, kind: impl Into<String>) -> Self {
        Kind { api_version: api_version.into(), kind: kind.into() }
    }
}

/// What a plugin reads: the host passes each cluster with exactly these labels, claims,
/// resources and fields, and lets a policy check read exactly these kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    pub labels: Vec<String>,
    pub claims: Vec<String>,
    pub resources: Vec<String>,
    pub fields: Vec<String>,
    pub kinds: Vec<Kind>,
}

impl Reads {
    /// Nothing.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn labels<S: AsRef<str>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.labels.extend(keys.into_iter().map(|k| k.as_ref().to_string()));
        self
    }

    pub fn claims<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.claims.extend(names.into_iter().map(|k| k.as_ref().to_string()));
        self
    }

    pub fn resources<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.resources.extend(names.into_iter().map(|k| k.as_ref().to_string()));
        self
    }

    pub fn fields<S: AsRef<str>>(mut self, paths: impl IntoIterator<Item = S>) -> Self {
        self.fields.extend(paths.into_iter().map(|k| k.as_ref().to_string()));
        self
    }

    pub fn kinds(mut self, kinds: impl IntoIterator<Item = Kind>) -> Self {
        self.kinds.extend(kinds);
        self
    }
}

/// What `describe()` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub summary: String,
    /// What the plugin reads whatever its configuration.
    pub reads: Reads,
    /// The JSON Schema of the configuration.
    pub config_schema: Option<String>,
}

impl Description {
    pub fn new(name: impl Into<String>, version: impl Into<String>, summary: impl Into<String>) -> Self {
        Description {
            name: name.into(),
            version: version.into(),
            summary: summary.into(),
            reads: Reads::new(),
            config_schema: None,
        }
    }

    pub fn config_schema(mut self, schema: impl Into<String>) -> Self {
        self.config_schema = Some(schema.into());
        self
    }

    pub fn reads(mut self, reads: Reads) -> Self {
        self.reads = reads;
        self
    }
}

/// A [`Description`] from the plugin crate's `Cargo.toml` (name, version, description) and
/// its `config.schema.json` beside it.
#[macro_export]
macro_rules! package_description {
    () => {
        $crate::Description::new(
            ::core::env!("CARGO_PKG_NAME"),
            ::core::env!("CARGO_PKG_VERSION"),
            ::core::env!("CARGO_PKG_DESCRIPTION"),
        )
        .config_schema(::core::include_str!(::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "/config.schema.json")))
    };
}

/// The object on whose behalf the host calls: a Placement, a Policy, a ManifestWorkReplicaSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub owner_kind: String,
    /// Empty for cluster-scoped owners.
    pub owner_namespace: String,
    pub owner_name: String,
}

/// What every plugin says, whatever its world.
pub trait Plugin {
    /// The configuration, parsed from the JSON the referring object gives (with
    /// [`parse_config`]: errors name the field). Use `#[serde(deny_unknown_fields)]` to
    /// refuse misspelt fields.
    type Config: DeserializeOwned;

    /// Who the plugin is; [`package_description!`] takes it from `Cargo.toml`.
    fn describe() -> Description;

    /// Checks a parsed configuration beyond its shape, and says what the plugin reads under
    /// it. Called by `validate-config` and before every call, so the call can rely on it.
    fn reads(config: &Self::Config) -> Result<Reads>;
}

/// Parses and checks a configuration as every world's entry points do.
#[doc(hidden)]
pub fn configure<P: Plugin>(text: &str) -> Result<(P::Config, Reads)> {
    let config: P::Config = parse_config(text)?;
    let reads = P::reads(&config)?;
    Ok((config, reads))
}

// ---------------------------------------------------------------------------------------
// Clusters

/// One resource of a cluster, in milli-units (`cpu: "4"` is 4000, `memory: "1Ki"` 1024000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    pub capacity: Option<i64>,
    pub allocatable: Option<i64>,
}

/// One cluster as a row: policy checks and rollout strategies get these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    /// The declared labels the cluster has, sorted by key.
    pub labels: Vec<(String, String)>,
    /// The declared claims the cluster has, sorted by name.
    pub claims: Vec<(String, String)>,
    /// The declared resources the cluster reports, sorted by name.
    pub resources: Vec<(String, Quantity)>,
    /// The declared fields as one JSON object from field path to value.
    pub fields: Option<String>,
}

impl Cluster {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        lookup(&self.labels, key)
    }

    pub fn claim(&self, name: &str) -> Option<&str> {
        lookup(&self.claims, name)
    }

    pub fn resource(&self, name: &str) -> Option<Quantity> {
        self.resources.iter().find(|(n, _)| n == name).map(|(_, q)| *q)
    }

    pub fn allocatable(&self, resource: &str) -> Option<i64> {
        self.resource(resource).and_then(|q| q.allocatable)
    }

    pub fn capacity(&self, resource: &str) -> Option<i64> {
        self.resource(resource).and_then(|q| q.capacity)
    }

    /// A declared field of the ManagedCluster (`status.version.kubernetes`).
    pub fn field(&self, path: &str) -> Option<Value> {
        field_of(self.fields.as_deref(), path)
    }
}

fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn field_of(fields: Option<&str>, path: &str) -> Option<Value> {
    let mut object: serde_json::Map<String, Value> = serde_json::from_str(fields?).ok()?;
    object.remove(path)
}

/// A label or claim across a batch, dictionary-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub key: String,
    /// The distinct values.
    pub values: Vec<String>,
    /// Per cluster: 0 when it lacks the key, else 1 + the index of its value.
    pub index: Vec<u32>,
}

impl Column {
    /// Cluster `i`'s value.
    pub fn get(&self, i: usize) -> Option<&str> {
        match self.index.get(i).copied() {
            None | Some(0) => None,
            Some(v) => self.values.get(v as usize - 1).map(String::as_str),
        }
    }
}

/// A resource across a batch, in milli-units; -1 where a cluster does not report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceColumn {
    pub name: String,
    pub capacity: Vec<i64>,
    pub allocatable: Vec<i64>,
}

impl ResourceColumn {
    pub fn get(&self, i: usize) -> Quantity {
        let present = |v: Option<&i64>| v.copied().filter(|v| *v >= 0);
        Quantity { capacity: present(self.capacity.get(i)), allocatable: present(self.allocatable.get(i)) }
    }
}

/// Every cluster of a call, by column as the host sends them (placement filters and scorers,
/// manifest transforms), with a per-cluster view: `for c in clusters.iter() { c.label("region") }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clusters {
    names: String,
    /// Byte ranges of each name in `names`: one allocation, not one per cluster.
    spans: Vec<(usize, usize)>,
    pub labels: Vec<Column>,
    pub claims: Vec<Column>,
    pub resources: Vec<ResourceColumn>,
    /// Per cluster, the declared fields as JSON; empty when the plugin declared none.
    pub fields: Vec<String>,
}

impl Clusters {
    /// A batch from its columns (the SDK builds it from the host's; tests may too).
    pub fn new(
        count: usize,
        names: String,
        labels: Vec<Column>,
        claims: Vec<Column>,
        resources: Vec<ResourceColumn>,
        fields: Vec<String>,
    ) -> Self {
        let mut spans = Vec::with_capacity(count);
        if count > 0 {
            let mut start = 0;
            for part in names.split('\n') {
                spans.push((start, start + part.len()));
                start += part.len() + 1;
            }
        }
        spans.resize(count, (0, 0));
        Clusters { names, spans, labels, claims, resources, fields }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<ClusterView<'_>> {
        (index < self.len()).then_some(ClusterView { batch: self, index })
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = ClusterView<'_>> {
        (0..self.len()).map(move |index| ClusterView { batch: self, index })
    }

    /// The column of a label key; `None` when no cluster has it. Faster than
    /// [`ClusterView::label`] in a loop over thousands of clusters.
    pub fn label_column(&self, key: &str) -> Option<&Column> {
        self.labels.iter().find(|c| c.key == key)
    }

    pub fn claim_column(&self, name: &str) -> Option<&Column> {
        self.claims.iter().find(|c| c.key == name)
    }

    pub fn resource_column(&self, name: &str) -> Option<&ResourceColumn> {
        self.resources.iter().find(|c| c.name == name)
    }
}

impl<'a> IntoIterator for &'a Clusters {
    type Item = ClusterView<'a>;
    type IntoIter = Box<dyn ExactSizeIterator<Item = ClusterView<'a>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// One cluster of a [`Clusters`] batch.
#[derive(Clone, Copy)]
pub struct ClusterView<'a> {
    batch: &'a Clusters,
    index: usize,
}

impl fmt::Debug for ClusterView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterView").field("index", &self.index).field("name", &self.name()).finish()
    }
}

impl<'a> ClusterView<'a> {
    /// Its position in the batch (and in every per-cluster result).
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn name(&self) -> &'a str {
        let (start, end) = self.batch.spans[self.index];
        self.batch.names.get(start..end).unwrap_or_default()
    }

    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.batch.label_column(key)?.get(self.index)
    }

    pub fn claim(&self, name: &str) -> Option<&'a str> {
        self.batch.claim_column(name)?.get(self.index)
    }

    pub fn resource(&self, name: &str) -> Option<Quantity> {
        let q = self.batch.resource_column(name)?.get(self.index);
        (q.capacity.is_some() || q.allocatable.is_some()).then_some(q)
    }

    pub fn allocatable(&self, resource: &str) -> Option<i64> {
        self.resource(resource).and_then(|q| q.allocatable)
    }

    pub fn capacity(&self, resource: &str) -> Option<i64> {
        self.resource(resource).and_then(|q| q.capacity)
    }

    pub fn field(&self, path: &str) -> Option<Value> {
        field_of(self.batch.fields.get(self.index).map(String::as_str), path)
    }
}

// ---------------------------------------------------------------------------------------
// Results

/// A placement filter's verdicts: each cluster kept or removed with a reason. Reasons are
/// stored once each, as the host wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filtered {
    reasons: Vec<String>,
    verdicts: Vec<u32>,
    seen: HashMap<String, u32>,
    pub requeue_after_ms: Option<u64>,
}

impl Filtered {
    /// Every cluster of `clusters` kept.
    pub fn keep_all(clusters: &Clusters) -> Self {
        Filtered { reasons: vec![], verdicts: vec![0; clusters.len()], seen: HashMap::new(), requeue_after_ms: None }
    }

    /// A verdict per cluster: `None` keeps it, `Some(reason)` removes it.
    pub fn by<R: Into<String>>(clusters: &Clusters, mut verdict: impl FnMut(ClusterView<'_>) -> Option<R>) -> Self {
        let mut out = Self::keep_all(clusters);
        for c in clusters.iter() {
            if let Some(reason) = verdict(c) {
                out.remove(c.index(), reason);
            }
        }
        out
    }

    /// Removes cluster `index` for `reason`.
    pub fn remove(&mut self, index: usize, reason: impl Into<String>) {
        let reason = reason.into();
        let next = self.reasons.len() as u32 + 1;
        let code = *self.seen.entry(reason.clone()).or_insert(next);
        if code == next {
            self.reasons.push(reason);
        }
        if let Some(v) = self.verdicts.get_mut(index) {
            *v = code;
        }
    }

    pub fn kept(&self, index: usize) -> bool {
        self.verdicts.get(index) == Some(&0)
    }

    pub fn removed_count(&self) -> usize {
        self.verdicts.iter().filter(|v| **v != 0).count()
    }

    /// Asks the host to run the cycle again after this long even if nothing changed.
    pub fn requeue_after_ms(mut self, ms: u64) -> Self {
        self.requeue_after_ms = Some(ms);
        self
    }

    #[doc(hidden)]
    pub fn into_parts(self) -> (Vec<String>, Vec<u32>, Option<u64>) {
        (self.reasons, self.verdicts, self.requeue_after_ms)
    }
}

/// A placement scorer's scores, one per cluster in batch order, each within [-100, 100].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scores {
    pub scores: Vec<i32>,
    pub requeue_after_ms: Option<u64>,
}

impl Scores {
    /// A score per cluster.
    pub fn by(clusters: &Clusters, score: impl FnMut(ClusterView<'_>) -> i32) -> Self {
        Scores { scores: clusters.iter().map(score).collect(), requeue_after_ms: None }
    }

    pub fn requeue_after_ms(mut self, ms: u64) -> Self {
        self.requeue_after_ms = Some(ms);
        self
    }
}

/// A policy check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compliance {
    Compliant,
    NonCompliant,
    /// Cannot be decided yet.
    Pending,
}

/// One object on the spoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub kind: Kind,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
}

/// What is wrong with one object, and optionally how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub object: Option<ObjectRef>,
    pub message: String,
    /// A JSON merge patch (RFC 7386) for `object` that makes it comply, applied by the agent
    /// only when the Policy is enforced.
    pub remediation: Option<Value>,
}

impl Violation {
    pub fn new(object: Option<ObjectRef>, message: impl Into<String>) -> Self {
        Violation { object, message: message.into(), remediation: None }
    }

    pub fn remediation(mut self, merge_patch: Value) -> Self {
        self.remediation = Some(merge_patch);
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub compliance: Compliance,
    /// A one-line summary for the Policy's status.
    pub message: String,
    pub violations: Vec<Violation>,
}

impl CheckResult {
    pub fn compliant(message: impl Into<String>) -> Self {
        CheckResult { compliance: Compliance::Compliant, message: message.into(), violations: vec![] }
    }

    pub fn non_compliant(message: impl Into<String>, violations: Vec<Violation>) -> Self {
        CheckResult { compliance: Compliance::NonCompliant, message: message.into(), violations }
    }

    pub fn pending(message: impl Into<String>) -> Self {
        CheckResult { compliance: Compliance::Pending, message: message.into(), violations: vec![] }
    }
}

/// A spoke object as JSON, with accessors for what every object has.
#[derive(Debug, Clone, PartialEq)]
pub struct Object(pub Value);

impl Object {
    pub fn api_version(&self) -> &str {
        self.0["apiVersion"].as_str().unwrap_or_default()
    }

    pub fn kind(&self) -> &str {
        self.0["kind"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.0["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<&str> {
        self.0["metadata"]["namespace"].as_str().filter(|n| !n.is_empty())
    }

    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.0["metadata"]["labels"][key].as_str()
    }

    /// The value at a JSON pointer (`/spec/template/spec/containers`).
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        self.0.pointer(pointer)
    }

    /// This object, for a [`Violation`].
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: Kind::new(self.api_version(), self.kind()),
            namespace: self.namespace().map(str::to_string),
            name: self.name().to_string(),
        }
    }
}

impl std::ops::Deref for Object {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0
    }
}

/// A cluster's rollout status, as OCM's sdk-go `RolloutStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RolloutStatus {
    ToApply,
    Progressing,
    Succeeded,
    Failed,
    TimeOut,
    Skip,
}

/// One cluster of a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutCluster {
    pub cluster: Cluster,
    pub group_index: u32,
    /// Empty for unnamed groups.
    pub group_name: String,
    pub status: RolloutStatus,
    /// When `status` last changed, in ms since the Unix epoch.
    pub last_transition_time: Option<i64>,
}

impl RolloutCluster {
    pub fn name(&self) -> &str {
        &self.cluster.name
    }
}

/// A rollout strategy's decision for one cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Clusters that get (or keep getting) the current revision now.
    pub proceed: Vec<String>,
    /// Clusters whose progress deadline passed.
    pub timed_out: Vec<String>,
    /// Clusters the strategy declares failed.
    pub failed: Vec<String>,
    /// The rollout must stop.
    pub stop: bool,
    /// When to decide again even if no status changes, in ms after `now`.
    pub recheck_after_ms: Option<u64>,
    /// A one-line summary for the rollout's status.
    pub message: Option<String>,
}

/// What a manifest transform answers for one cluster: its manifests, or why it cannot have
/// the work.
pub type ClusterManifests = std::result::Result<Vec<Value>, String>;

// ---------------------------------------------------------------------------------------
// World traits

/// A placement filter: removes clusters a Placement must not choose.
pub trait PlacementFilter: Plugin {
    fn filter(config: &Self::Config, ctx: &Context, clusters: &Clusters) -> Result<Filtered>;
}

/// A placement scorer: scores every cluster within [-100, 100].
pub trait PlacementScorer: Plugin {
    fn score(config: &Self::Config, ctx: &Context, clusters: &Clusters) -> Result<Scores>;
}

/// A policy check: decides whether the agent's cluster complies; reads spoke objects with
/// [`spoke`] (only the kinds [`Plugin::reads`] declares).
pub trait PolicyCheck: Plugin {
    fn check(config: &Self::Config, ctx: &Context, cluster: &Cluster) -> Result<CheckResult>;
}

/// A rollout strategy: decides which clusters roll out next. `now` is ms since the Unix epoch
/// (the world has no clock).
pub trait RolloutStrategy: Plugin {
    fn decide(config: &Self::Config, ctx: &Context, now: i64, clusters: &[RolloutCluster]) -> Result<Decision>;
}

/// A manifest transform: the manifests for each cluster, one entry per cluster in batch order.
pub trait ManifestTransform: Plugin {
    fn transform(
        config: &Self::Config,
        ctx: &Context,
        manifests: &[Value],
        clusters: &Clusters,
    ) -> Result<Vec<ClusterManifests>>;
}

/// Reads of spoke objects, for policy checks.
pub mod spoke {
    use super::{Kind, Object, Result};

    /// Lists objects of `kind` in `namespace` (`None`: all namespaces, or a cluster-scoped
    /// kind), optionally by label selector (`app=web,tier!=cache`).
    pub fn list(kind: &Kind, namespace: Option<&str>, label_selector: Option<&str>) -> Result<Vec<Object>> {
        let raw = crate::worlds::spoke_list(kind, namespace, label_selector)?;
        raw.iter()
            .map(|text| {
                serde_json::from_str(text)
                    .map(Object)
                    .map_err(|e| crate::Error::msg(format!("the host sent a {} that is not JSON: {e}", kind.kind)))
            })
            .collect()
    }

    /// Gets one object, or `None` when it does not exist.
    pub fn get(kind: &Kind, namespace: Option<&str>, name: &str) -> Result<Option<Object>> {
        match crate::worlds::spoke_get(kind, namespace, name)? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(|v| Some(Object(v)))
                .map_err(|e| crate::Error::msg(format!("the host sent a {} that is not JSON: {e}", kind.kind))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Config {
        regions: Vec<String>,
        #[serde(default)]
        min_allocatable_milli: std::collections::BTreeMap<String, i64>,
    }

    #[test]
    fn configuration_errors_name_the_field() {
        let e = parse_config::<Config>(r#"{"regions": ["a", 3]}"#).expect_err("bad");
        assert!(e.message().starts_with("invalid configuration: at regions[1]: invalid type: integer `3`"), "{e}");
        let e = parse_config::<Config>(r#"{"regions": [], "minAllocatableMilli": {"cpu": "x"}}"#).expect_err("bad");
        assert!(e.message().contains("at minAllocatableMilli.cpu:"), "{e}");
        let e = parse_config::<Config>(r#"{"regions": [], "region": 1}"#).expect_err("bad");
        assert!(e.message().contains("unknown field `region`"), "{e}");
        assert!(parse_config::<Config>("").expect_err("missing").message().contains("missing field `regions`"));
    }

    #[test]
    fn views_read_the_columns() {
        let clusters = Clusters::new(
            3,
            "a\nbb\nc".into(),
            vec![Column { key: "region".into(), values: vec!["eu".into()], index: vec![1, 0, 1] }],
            vec![],
            vec![ResourceColumn { name: "cpu".into(), capacity: vec![4000, -1, 1], allocatable: vec![3000, -1, -1] }],
            vec![],
        );
        let names: Vec<&str> = clusters.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["a", "bb", "c"]);
        let b = clusters.get(1).expect("b");
        assert_eq!((b.label("region"), b.resource("cpu")), (None, None));
        let c = clusters.get(2).expect("c");
        assert_eq!(c.label("region"), Some("eu"));
        assert_eq!((c.capacity("cpu"), c.allocatable("cpu")), (Some(1), None));

        let f = Filtered::by(&clusters, |c| (c.label("region") != Some("eu")).then_some("not eu"));
        let mut f2 = Filtered::keep_all(&clusters);
        f2.remove(0, "x");
        f2.remove(2, "x");
        assert_eq!(f.into_parts(), (vec!["not eu".into()], vec![0, 1, 0], None));
        assert_eq!(f2.into_parts().1, vec![1, 0, 1]);
    }
}
