//! Evaluating the replicated policies on the spoke: one pass per policy evaluates the
//! templates that are due (their interval passed, or the policy changed), enforces what is
//! enforced, and writes the replica's status when it changed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_plugin_host::{
    ClusterInfo, Compliance as PluginCompliance, KindRef, OwnerRef, PluginError, PluginHost, Prepared,
};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::config::{self, ComplianceType, ConfigurationPolicy, Fix, PruneBehavior, RecordDiff, Remediation};
use super::spec::{
    CONFIGURATION_POLICY, Compliance, Dependency, EvaluationInterval, Interval, POLICY_GROUP, PolicyTemplate,
    ReplicatedPolicy, WASM_POLICY,
};
use super::spokewatch::{self, KindKey};
use super::status::{self, TemplateResult};
use super::wasm::{self, KubeSpokeReader, WasmPolicy};
use crate::client::SharedClient;
use crate::error::{ManifestError, api_code, api_message};
use crate::plugins::AgentPlugins;
use crate::work::apply::{self, Target};
use crate::work::discovery::{DiscoveryCache, Resolved};
use crate::work::hubwatch::HubStore;
use crate::work::manifest::{hash_of, parse_manifest};
use crate::work::queue::WorkQueue;

/// Bound on each spoke request a plugin makes.
const PLUGIN_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How soon a pass that could not finish something (a prune, a status write) runs again.
const RETRY: Duration = Duration::from_secs(5);

/// What the engine remembers about one template between passes.
struct TemplateMemory {
    /// When to evaluate it again; `None`: only when the policy changes (`never`).
    due: Option<Instant>,
    last: TemplateResult,
    /// The spoke kinds it reads, when a change of them must re-evaluate it (`watch`).
    reads: Vec<KindKey>,
}

#[derive(Default)]
struct PolicyMemory {
    spec_hash: String,
    templates: HashMap<String, TemplateMemory>,
}

/// A plugin prepared for one (digest, configuration, kinds).
type PreparedKey = (String, String, Vec<(String, String)>);

/// What the policy workers share.
pub(crate) struct Engine {
    pub cluster: String,
    pub hub: SharedClient,
    pub spoke: kube::Client,
    pub store: Arc<HubStore>,
    pub queue: Arc<WorkQueue>,
    pub discovery: Arc<DiscoveryCache>,
    pub plugins: Arc<AgentPlugins>,
    pub watch_period: Duration,
    pub records: Records,
    memory: Mutex<HashMap<String, PolicyMemory>>,
    /// (policy, template) pairs a spoke watch event made due; kept apart from `due` so an
    /// event arriving during a pass is not overwritten by that pass.
    touched: Mutex<HashSet<(String, String)>>,
    prepared: Mutex<HashMap<PreparedKey, Prepared>>,
    cluster_info: Mutex<Option<ClusterInfo>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An object a template manages on the spoke, for `pruneObjectBehavior`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TrackedObject {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// Created by the policy (else it existed and the policy only manages it).
    pub created: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct TemplateRecord {
    pub prune: PruneBehavior,
    pub objects: Vec<TrackedObject>,
}

/// What enforced templates with a prune behaviour manage, per policy, on disk under
/// `DATA_DIR/policy-state/<policy>.json`, so that a restarted agent still prunes.
pub(crate) struct Records {
    dir: PathBuf,
    disk: Mutex<()>,
}

impl Records {
    pub fn new(dir: &Path) -> Result<Records, crate::AgentError> {
        std::fs::create_dir_all(dir).map_err(crate::AgentError::io("creating", dir))?;
        Ok(Records { dir: dir.to_path_buf(), disk: Mutex::new(()) })
    }

    fn path(&self, policy: &str) -> PathBuf {
        self.dir.join(format!("{policy}.json"))
    }

    pub fn load(&self, policy: &str) -> BTreeMap<String, TemplateRecord> {
        let _guard = lock(&self.disk);
        match std::fs::read(self.path(policy)) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(policy, error = %e, "ignoring an unreadable policy record");
                BTreeMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                tracing::warn!(policy, error = %e, "cannot read a policy record");
                BTreeMap::new()
            }
        }
    }

    pub fn save(&self, policy: &str, record: &BTreeMap<String, TemplateRecord>) {
        let _guard = lock(&self.disk);
        let path = self.path(policy);
        let result = if record.is_empty() {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            }
        } else {
            serde_json::to_vec_pretty(record)
                .map_err(|e| e.to_string())
                .and_then(|bytes| flotilla_pki::write_private_file_atomically(&path, &bytes).map_err(|e| e.to_string()))
        };
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "cannot save a policy record");
        }
    }

    /// The policies with a record.
    pub fn policies(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(str::to_string))
            .collect()
    }
}

/// What a ConfigurationPolicy template's pass found, and what it tracks for pruning.
struct ConfigOutcome {
    result: TemplateResult,
    tracked: Vec<TrackedObject>,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cluster: &str,
        hub: SharedClient,
        spoke: kube::Client,
        store: Arc<HubStore>,
        queue: Arc<WorkQueue>,
        plugins: Arc<AgentPlugins>,
        watch_period: Duration,
        records: Records,
    ) -> Engine {
        Engine {
            cluster: cluster.to_string(),
            hub,
            discovery: Arc::new(DiscoveryCache::new(spoke.clone())),
            spoke,
            store,
            queue,
            plugins,
            watch_period,
            records,
            memory: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashSet::new()),
            prepared: Mutex::new(HashMap::new()),
            cluster_info: Mutex::new(None),
        }
    }

    /// Every spoke kind some `watch` template reads.
    pub fn watched_kinds(&self) -> BTreeSet<KindKey> {
        lock(&self.memory).values().flat_map(|p| p.templates.values()).flat_map(|t| t.reads.iter().cloned()).collect()
    }

    /// A spoke object of `kind` changed: marks the templates reading it due and queues
    /// their policies.
    pub fn touch(&self, kind: &KindKey) {
        let hits: Vec<(String, String)> = lock(&self.memory)
            .iter()
            .flat_map(|(policy, p)| {
                p.templates
                    .iter()
                    .filter(|(_, t)| t.reads.contains(kind))
                    .map(move |(template, _)| (policy.clone(), template.clone()))
            })
            .collect();
        if hits.is_empty() {
            return;
        }
        lock(&self.touched).extend(hits.iter().cloned());
        for (policy, _) in &hits {
            self.queue.add(policy);
        }
        tracing::debug!(cluster = %self.cluster, api_version = %kind.0, kind = %kind.1, templates = hits.len(),
            "spoke change: re-evaluating the policies reading it");
    }

    fn policies_api(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.hub.get(), &self.cluster, &super::policies())
    }

    /// One pass over policy `name`; when to pass again.
    pub async fn process(&self, name: &str) -> Option<Duration> {
        let Some(policy) = self.store.get(name) else {
            return self.policy_gone(name).await;
        };
        let parsed = match ReplicatedPolicy::parse(&policy) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::warn!(cluster = %self.cluster, policy = name, error = %e, "cannot use a replicated policy");
                let result = TemplateResult::new(name, "Policy", Compliance::NonCompliant, &e);
                return self.write_status(name, &policy, &[result]).await.then_some(self.watch_period).or(Some(RETRY));
            }
        };
        if parsed.disabled {
            lock(&self.memory).remove(name);
            lock(&self.touched).retain(|(p, _)| p != name);
            return None;
        }
        let spec_hash = hash_of(policy.get("spec").unwrap_or(&Value::Null));
        let changed = lock(&self.memory).get(name).is_none_or(|m| m.spec_hash != spec_hash);
        let mut retry = self.prune_removed_templates(&parsed).await;

        let now = Instant::now();
        let mut results: Vec<TemplateResult> = Vec::new();
        let mut next: Option<Duration> = None;
        for template in &parsed.templates {
            let remembered = lock(&self.memory)
                .get(name)
                .and_then(|m| m.templates.get(&template.name).map(|t| (t.due, t.last.clone())));
            let touched = lock(&self.touched).remove(&(name.to_string(), template.name.clone()));
            if !changed && let Some((due, last)) = &remembered {
                let waiting = !touched && due.is_none_or(|d| d > now);
                if waiting {
                    if let Some(due) = due {
                        next = Some(next.map_or(*due - now, |n| n.min(*due - now)));
                    }
                    results.push(last.clone());
                    continue;
                }
            }
            let (mut result, interval) = match self.unmet_dependencies(&parsed, template, &results) {
                Some(unmet) => (
                    TemplateResult::new(
                        &template.name,
                        &template.kind,
                        Compliance::Pending,
                        &format!("Dependencies were not satisfied: {unmet}"),
                    ),
                    EvaluationInterval::default(),
                ),
                None => {
                    let (result, interval, failed) = self.evaluate(&parsed, template).await;
                    retry |= failed;
                    (result, interval)
                }
            };
            result.ignore_pending = template.ignore_pending;
            let (due, reads) = match interval.after(result.compliance) {
                Interval::Watch => (Some(self.watch_period), spokewatch::reads(template)),
                Interval::Every(every) => (Some(every), Vec::new()),
                Interval::Never => (None, Vec::new()),
            };
            if let Some(due) = due {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
            let mut memory = lock(&self.memory);
            let entry = memory.entry(name.to_string()).or_default();
            entry.templates.insert(
                template.name.clone(),
                TemplateMemory { due: due.map(|d| now + d), last: result.clone(), reads },
            );
            results.push(result);
        }
        for (template, why) in &parsed.broken {
            results.push(TemplateResult::new(template, "", Compliance::NonCompliant, why));
        }
        {
            let mut memory = lock(&self.memory);
            let entry = memory.entry(name.to_string()).or_default();
            entry.spec_hash = spec_hash;
            entry.templates.retain(|t, _| parsed.templates.iter().any(|p| p.name == *t));
        }
        if !self.write_status(name, &policy, &results).await {
            retry = true;
        }
        match (next, retry) {
            (Some(n), true) => Some(n.min(RETRY)),
            (None, true) => Some(RETRY),
            (n, false) => n,
        }
    }

    /// Writes the replica's status when it changed; false when the hub could not be told.
    async fn write_status(&self, name: &str, policy: &Value, results: &[TemplateResult]) -> bool {
        let current = policy.get("status");
        let next = status::next_status(current, name, results, jiff::Timestamp::now());
        if status::same(current, &next) {
            return true;
        }
        let patch = json!({"status": next});
        match self.policies_api().patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(updated) => {
                if let Ok(updated) = serde_json::to_value(&updated) {
                    self.store.upsert(updated);
                }
                tracing::debug!(cluster = %self.cluster, policy = name, compliant = ?next.get("compliant"), "policy status written");
                true
            }
            // Gone meanwhile: the watch will say so.
            Err(e) if api_code(&e) == Some(404) => true,
            Err(e) => {
                tracing::warn!(cluster = %self.cluster, policy = name, error = %api_message(&e),
                    "cannot write the policy status to the hub; retrying");
                false
            }
        }
    }

    /// The first unmet dependency of `template` (policy-level ones first), for people.
    fn unmet_dependencies(
        &self,
        policy: &ReplicatedPolicy,
        template: &PolicyTemplate,
        earlier: &[TemplateResult],
    ) -> Option<String> {
        let unmet: Vec<String> = policy
            .dependencies
            .iter()
            .chain(&template.extra_dependencies)
            .filter_map(|dep| {
                let actual = self.dependency_state(policy, dep, earlier);
                (actual != Some(dep.compliance)).then(|| {
                    let is = actual.map_or("not found".to_string(), |c| format!("{c}"));
                    format!("{} is {is} (needs {})", dep.describe(&policy.root_namespace), dep.compliance)
                })
            })
            .collect();
        (!unmet.is_empty()).then(|| unmet.join("; "))
    }

    fn dependency_state(
        &self,
        policy: &ReplicatedPolicy,
        dep: &Dependency,
        earlier: &[TemplateResult],
    ) -> Option<Compliance> {
        if dep.is_policy() {
            let replica = format!("{}.{}", dep.namespace.as_deref().unwrap_or(&policy.root_namespace), dep.name);
            let other = self.store.get(&replica)?;
            return other.pointer("/status/compliant").and_then(Value::as_str).and_then(Compliance::parse);
        }
        // A template of this policy: this pass's result, else the last one.
        if let Some(r) = earlier.iter().find(|r| r.name == dep.name && r.kind == dep.kind) {
            return Some(r.compliance);
        }
        let memory = lock(&self.memory);
        memory
            .get(&policy.name)?
            .templates
            .get(&dep.name)
            .filter(|t| t.last.kind == dep.kind)
            .map(|t| t.last.compliance)
    }

    /// Evaluates one template: its result, its interval, and whether something must be retried.
    async fn evaluate(
        &self,
        policy: &ReplicatedPolicy,
        template: &PolicyTemplate,
    ) -> (TemplateResult, EvaluationInterval, bool) {
        let at = template.path();
        let spec = template.object.get("spec").unwrap_or(&Value::Null);
        let interval = match EvaluationInterval::parse(spec, &format!("{at}.spec")) {
            Ok(interval) => interval,
            Err(e) => {
                let r = TemplateResult::new(&template.name, &template.kind, Compliance::NonCompliant, &e);
                return (r, EvaluationInterval::default(), false);
            }
        };
        let group = template.api_version.split_once('/').map(|(g, _)| g).unwrap_or_default();
        match (group, template.kind.as_str()) {
            (POLICY_GROUP, CONFIGURATION_POLICY) => match ConfigurationPolicy::parse(&template.object, &at) {
                Ok(cp) => {
                    let remediation = policy.remediation.unwrap_or(cp.remediation);
                    let outcome = self.evaluate_configuration(&cp, remediation).await;
                    self.track(&policy.name, &cp, remediation, outcome.tracked);
                    (outcome.result, interval, false)
                }
                Err(e) => {
                    (TemplateResult::new(&template.name, &template.kind, Compliance::NonCompliant, &e), interval, false)
                }
            },
            ("flotilla.dev", WASM_POLICY) => match WasmPolicy::parse(&template.object, &at) {
                Ok(wp) => {
                    let remediation = policy.remediation.unwrap_or(wp.remediation);
                    (self.evaluate_wasm(policy, &wp, remediation).await, interval, false)
                }
                Err(e) => {
                    (TemplateResult::new(&template.name, &template.kind, Compliance::NonCompliant, &e), interval, false)
                }
            },
            _ => {
                let why = format!(
                    "{at}: kind {} {} is not evaluated by the Flotilla agent (ConfigurationPolicy and WasmPolicy are)",
                    template.api_version, template.kind
                );
                (TemplateResult::new(&template.name, &template.kind, Compliance::NonCompliant, &why), interval, false)
            }
        }
    }

    // ---- ConfigurationPolicy ----

    async fn evaluate_configuration(&self, cp: &ConfigurationPolicy, remediation: Remediation) -> ConfigOutcome {
        let mut good: Vec<String> = Vec::new();
        let mut bad: Vec<String> = Vec::new();
        let mut tracked: Vec<TrackedObject> = Vec::new();
        let mut namespaces: Option<Result<Vec<Value>, String>> = None;
        for template in &cp.object_templates {
            let (group, version) = template.group_version();
            let resolved = match self.discovery.resolve(group, version, &template.kind).await {
                Ok(resolved) => resolved,
                Err(e) => {
                    bad.push(e.to_string());
                    continue;
                }
            };
            let plural = resolved.resource.plural.clone();
            let scopes: Vec<Option<String>> = if !resolved.namespaced {
                vec![None]
            } else if let Some(ns) = &template.namespace {
                vec![Some(ns.clone())]
            } else if cp.namespace_selector.is_empty() {
                bad.push(format!(
                    "{plural}: the object definition has no namespace and the namespaceSelector selects none"
                ));
                continue;
            } else {
                if namespaces.is_none() {
                    namespaces = Some(self.list_namespaces().await);
                }
                match namespaces.as_ref() {
                    Some(Ok(all)) => {
                        let mut selected: Vec<Option<String>> = all
                            .iter()
                            .filter(|ns| cp.namespace_selector.selects(ns))
                            .filter_map(|ns| ns.pointer("/metadata/name").and_then(Value::as_str))
                            .map(|n| Some(n.to_string()))
                            .collect();
                        selected.sort();
                        if selected.is_empty() {
                            good.push(format!("{plural}: no namespace matches the namespaceSelector"));
                        }
                        selected
                    }
                    Some(Err(e)) => {
                        bad.push(e.clone());
                        continue;
                    }
                    None => continue,
                }
            };
            for scope in scopes {
                let ns = scope.as_deref();
                let objects = match self.read_objects(&resolved, template, ns).await {
                    Ok(objects) => objects,
                    Err(e) => {
                        bad.push(e);
                        continue;
                    }
                };
                let outcome = config::evaluate(template, ns, &objects);
                let track = |name: &str, created: bool| TrackedObject {
                    api_version: template.api_version.clone(),
                    kind: template.kind.clone(),
                    namespace: scope.clone(),
                    name: name.to_string(),
                    created,
                };
                if outcome.compliant || remediation == Remediation::Inform || outcome.fixes.is_empty() {
                    let mut clause = config::describe(&plural, ns, outcome.finding, &outcome.names);
                    if !outcome.compliant && outcome.fixes.is_empty() && remediation == Remediation::Enforce {
                        clause.push_str(" (cannot be enforced: the object definition has no name)");
                    }
                    self.record_diff(template, &plural, ns, &outcome.diffs, &mut clause);
                    if outcome.compliant {
                        if template.name.is_some() && template.compliance_type != ComplianceType::MustNotHave {
                            tracked.extend(outcome.names.iter().map(|n| track(n, false)));
                        }
                        good.push(clause);
                    } else {
                        bad.push(clause);
                    }
                    continue;
                }
                match self.enforce(&resolved, ns, &outcome.fixes).await {
                    Ok(action) => {
                        if template.compliance_type != ComplianceType::MustNotHave {
                            tracked.extend(outcome.names.iter().map(|n| track(n, action == "created")));
                        }
                        good.push(config::describe(&plural, ns, format!("was {action} successfully"), &outcome.names));
                    }
                    Err(e) => bad.push(format!(
                        "{}; enforcing failed: {e}",
                        config::describe(&plural, ns, outcome.finding, &outcome.names)
                    )),
                }
            }
        }
        let result = if bad.is_empty() {
            TemplateResult::new(&cp.name, CONFIGURATION_POLICY, Compliance::Compliant, &good.join("; "))
        } else {
            TemplateResult::new(&cp.name, CONFIGURATION_POLICY, Compliance::NonCompliant, &bad.join("; "))
        };
        ConfigOutcome { result, tracked }
    }

    fn record_diff(
        &self,
        template: &config::ObjectTemplate,
        plural: &str,
        ns: Option<&str>,
        diffs: &[(String, Vec<String>)],
        clause: &mut String,
    ) {
        if diffs.is_empty() || template.record_diff == RecordDiff::None {
            return;
        }
        // OCM censors the contents of Secrets.
        let censored = template.kind == "Secret" && template.api_version == "v1";
        for (name, lines) in diffs {
            match template.record_diff {
                RecordDiff::Log => {
                    tracing::info!(cluster = %self.cluster, object = %name, namespace = ?ns, kind = plural,
                        diff = %lines.join("; "), "policy object differs")
                }
                RecordDiff::InStatus if censored => {
                    clause.push_str(&format!(" (diff of {name} not recorded: a Secret)"))
                }
                RecordDiff::InStatus => clause.push_str(&format!(" (diff of {name}: {})", lines.join("; "))),
                RecordDiff::None => {}
            }
        }
    }

    async fn list_namespaces(&self) -> Result<Vec<Value>, String> {
        let namespaces: Api<DynamicObject> = Api::all_with(self.spoke.clone(), &namespaces_resource());
        let list = namespaces
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("cannot list namespaces on the spoke: {}", api_message(&e)))?;
        list.items.iter().map(|o| serde_json::to_value(o).map_err(|e| e.to_string())).collect()
    }

    fn api_for(&self, resolved: &Resolved, ns: Option<&str>) -> Api<DynamicObject> {
        match ns {
            Some(ns) if resolved.namespaced => Api::namespaced_with(self.spoke.clone(), ns, &resolved.resource),
            _ => Api::all_with(self.spoke.clone(), &resolved.resource),
        }
    }

    /// The objects a template is compared with in one scope: the named one, or all.
    async fn read_objects(
        &self,
        resolved: &Resolved,
        template: &config::ObjectTemplate,
        ns: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let api = self.api_for(resolved, ns);
        let plural = &resolved.resource.plural;
        let where_ = ns.map(|ns| format!(" in namespace {ns}")).unwrap_or_default();
        let objects = match &template.name {
            Some(name) => api
                .get_opt(name)
                .await
                .map_err(|e| format!("cannot read {plural} [{name}]{where_}: {}", api_message(&e)))?
                .into_iter()
                .collect(),
            None => {
                api.list(&ListParams::default())
                    .await
                    .map_err(|e| format!("cannot list {plural}{where_}: {}", api_message(&e)))?
                    .items
            }
        };
        objects.iter().map(|o| serde_json::to_value(o).map_err(|e| e.to_string())).collect()
    }

    /// Carries out fixes in one scope with the work agent's apply machinery; what was done.
    async fn enforce(&self, resolved: &Resolved, ns: Option<&str>, fixes: &[Fix]) -> Result<&'static str, String> {
        let mut action = "updated";
        for (i, fix) in fixes.iter().enumerate() {
            let done = match fix {
                Fix::Create(object) => self.apply_object(resolved, object).await.map(|_| "created"),
                Fix::Update(object) => self.apply_object(resolved, object).await.map(|_| "updated"),
                Fix::Delete(name) => self.delete_object(resolved, ns, name).await.map(|_| "deleted"),
            }
            .map_err(|e| e.to_string())?;
            if i == 0 {
                action = done;
            }
        }
        Ok(action)
    }

    /// Creates or updates `object` as the work agent's `Update` strategy does.
    async fn apply_object(&self, resolved: &Resolved, object: &Value) -> Result<apply::Applied, ManifestError> {
        let reference = parse_manifest(0, object)?;
        // No owner: the policy, not an AppliedManifestWork, manages the object.
        let no_owner = json!({});
        apply::apply(&Target {
            client: &self.spoke,
            manifest: object,
            reference: &reference,
            resolved,
            strategy: None,
            owner: &no_owner,
            owned: false,
        })
        .await
    }

    async fn delete_object(&self, resolved: &Resolved, ns: Option<&str>, name: &str) -> Result<(), ManifestError> {
        let what = match ns {
            Some(ns) => format!("{} {ns}/{name}", resolved.resource.kind),
            None => format!("{} {name}", resolved.resource.kind),
        };
        match self.api_for(resolved, ns).delete(name, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!(cluster = %self.cluster, object = %what, "deleted by a policy");
                Ok(())
            }
            Err(e) if api_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(ManifestError::spoke("deleting", what)(e)),
        }
    }

    // ---- pruning ----

    /// Records what an enforced template with a prune behaviour manages.
    fn track(&self, policy: &str, cp: &ConfigurationPolicy, remediation: Remediation, objects: Vec<TrackedObject>) {
        if cp.prune == PruneBehavior::None || remediation != Remediation::Enforce {
            return;
        }
        let mut record = self.records.load(policy);
        let entry = record.entry(cp.name.clone()).or_default();
        let before = (entry.prune, entry.objects.clone());
        entry.prune = cp.prune;
        for object in objects {
            match entry.objects.iter_mut().find(|o| same_object(o, &object)) {
                // Once created by the policy, always created by it.
                Some(existing) => existing.created |= object.created,
                None => entry.objects.push(object),
            }
        }
        if (entry.prune, entry.objects.clone()) != before {
            self.records.save(policy, &record);
        }
    }

    /// Prunes what templates no longer in the policy left; true when something must be retried.
    async fn prune_removed_templates(&self, policy: &ReplicatedPolicy) -> bool {
        let mut record = self.records.load(&policy.name);
        let gone: Vec<String> =
            record.keys().filter(|t| !policy.templates.iter().any(|p| p.name == **t)).cloned().collect();
        if gone.is_empty() {
            return false;
        }
        let mut retry = false;
        for template in gone {
            if let Some(entry) = record.remove(&template) {
                let left = self.prune(&policy.name, &template, entry).await;
                if !left.objects.is_empty() {
                    retry = true;
                    record.insert(template, left);
                }
            }
        }
        self.records.save(&policy.name, &record);
        retry
    }

    /// The policy is gone from the hub: prune what its templates created, forget it.
    async fn policy_gone(&self, name: &str) -> Option<Duration> {
        lock(&self.memory).remove(name);
        lock(&self.touched).retain(|(p, _)| p != name);
        let record = self.records.load(name);
        if record.is_empty() {
            return None;
        }
        // Only a hub that answered may make the agent delete anything.
        if !self.store.synced() {
            return Some(RETRY);
        }
        let mut left = BTreeMap::new();
        for (template, entry) in record {
            let remaining = self.prune(name, &template, entry).await;
            if !remaining.objects.is_empty() {
                left.insert(template, remaining);
            }
        }
        self.records.save(name, &left);
        (!left.is_empty()).then_some(RETRY)
    }

    /// Deletes what `entry`'s behaviour says; what is left to retry.
    async fn prune(&self, policy: &str, template: &str, entry: TemplateRecord) -> TemplateRecord {
        let mut left = TemplateRecord { prune: entry.prune, objects: Vec::new() };
        for object in entry.objects {
            let delete = match entry.prune {
                PruneBehavior::DeleteAll => true,
                PruneBehavior::DeleteIfCreated => object.created,
                PruneBehavior::None => false,
            };
            if !delete {
                continue;
            }
            let (group, version) = wasm::group_version(&object.api_version);
            let outcome = match self.discovery.resolve(group, version, &object.kind).await {
                Ok(resolved) => self.delete_object(&resolved, object.namespace.as_deref(), &object.name).await,
                Err(ManifestError::UnknownKind { .. }) => Ok(()),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => tracing::info!(cluster = %self.cluster, policy, template, object = %object.name,
                    behavior = ?entry.prune, "pruned an object of a removed policy template"),
                Err(e) => {
                    tracing::warn!(cluster = %self.cluster, policy, template, error = %e, "cannot prune; retrying");
                    left.objects.push(object);
                }
            }
        }
        left
    }

    // ---- WasmPolicy ----

    async fn evaluate_wasm(
        &self,
        policy: &ReplicatedPolicy,
        wp: &WasmPolicy,
        remediation: Remediation,
    ) -> TemplateResult {
        let fail = |detail: String| TemplateResult::new(&wp.name, WASM_POLICY, Compliance::NonCompliant, &detail);
        let Some(digest) = &wp.digest else {
            return fail(format!("plugin {} is not available on the hub", wp.plugin));
        };
        let prepared = match self.prepare(wp, digest).await {
            Ok(prepared) => prepared,
            Err(e) => return fail(e),
        };
        let first = self.run_check(policy, wp, &prepared).await;
        let (result, refused) = first;
        if !refused.is_empty() {
            return fail(refusal(wp, &refused, &result));
        }
        let checked = match result {
            Ok(checked) => checked,
            Err(e) => return fail(format!("plugin {} failed ({}): {e}", wp.plugin, e.reason())),
        };
        if checked.compliance != PluginCompliance::NonCompliant || remediation == Remediation::Inform {
            return plugin_result(wp, &checked, None);
        }
        let fixes = self.remediate(&checked.violations).await;
        if fixes.is_empty() {
            return plugin_result(wp, &checked, None);
        }
        // Report what the spoke holds now, not what the plugin saw before the fixes.
        let (again, refused) = self.run_check(policy, wp, &prepared).await;
        if !refused.is_empty() {
            return fail(refusal(wp, &refused, &again));
        }
        match again {
            Ok(after) => plugin_result(wp, &after, Some(&fixes)),
            Err(e) => fail(format!("plugin {} failed ({}): {e}", wp.plugin, e.reason())),
        }
    }

    /// The plugin loaded and its configuration accepted, cached per digest, configuration and kinds.
    async fn prepare(&self, wp: &WasmPolicy, digest: &str) -> Result<Prepared, String> {
        let kinds: Vec<(String, String)> = wp.kinds.iter().map(|k| (k.api_version.clone(), k.kind.clone())).collect();
        let key = (digest.to_string(), wp.configuration.clone(), kinds);
        if let Some(prepared) = lock(&self.prepared).get(&key) {
            return Ok(prepared.clone());
        }
        let bytes = self
            .plugins
            .cache
            .fetch(&self.hub.get(), digest)
            .await
            .map_err(|e| format!("plugin {} ({digest}) cannot be fetched: {e}", wp.plugin))?;
        let plugins = self.plugins.clone();
        let (name, config, allowed) = (wp.plugin.clone(), wp.configuration.clone(), wp.kinds.clone());
        let prepared = tokio::task::spawn_blocking(move || -> Result<Prepared, String> {
            let host = plugins.host().map_err(|e| e.to_string())?;
            let plugin = host
                .load(&name, flotilla_plugin_host::World::PolicyCheck, &bytes)
                .map_err(|e| format!("plugin {name} cannot be loaded ({}): {e}", e.reason()))?;
            let prepared = host
                .prepare(&plugin, &config)
                .map_err(|e| format!("plugin {name} refused its configuration ({}): {e}", e.reason()))?;
            Ok(prepared.restrict_kinds(&allowed))
        })
        .await
        .map_err(|e| format!("plugin {}: the host task failed: {e}", wp.plugin))??;
        lock(&self.prepared).insert(key, prepared.clone());
        Ok(prepared)
    }

    async fn cluster(&self) -> ClusterInfo {
        let clusters: Api<DynamicObject> = Api::all_with(self.hub.get(), &managed_clusters());
        match clusters.get(&self.cluster).await {
            Ok(object) => {
                if let Ok(value) = serde_json::to_value(&object) {
                    let info = ClusterInfo::from_managed_cluster(&value);
                    *lock(&self.cluster_info) = Some(info.clone());
                    return info;
                }
            }
            Err(e) => {
                tracing::debug!(cluster = %self.cluster, error = %api_message(&e), "cannot read the ManagedCluster")
            }
        }
        lock(&self.cluster_info)
            .clone()
            .unwrap_or_else(|| ClusterInfo { name: self.cluster.clone(), ..ClusterInfo::default() })
    }

    async fn run_check(
        &self,
        policy: &ReplicatedPolicy,
        wp: &WasmPolicy,
        prepared: &Prepared,
    ) -> (Result<flotilla_plugin_host::CheckResult, PluginError>, Vec<KindRef>) {
        let host: Arc<PluginHost> = {
            let plugins = self.plugins.clone();
            match tokio::task::spawn_blocking(move || plugins.host()).await {
                Ok(Ok(host)) => host,
                Ok(Err(e)) => return (Err(PluginError::Host(e.to_string())), Vec::new()),
                Err(e) => return (Err(PluginError::Host(format!("the host task failed: {e}"))), Vec::new()),
            }
        };
        let cluster = prepared.project(&self.cluster().await);
        let owner = OwnerRef { kind: "Policy".into(), namespace: self.cluster.clone(), name: policy.name.clone() };
        let reader = Arc::new(KubeSpokeReader {
            client: self.spoke.clone(),
            discovery: self.discovery.clone(),
            runtime: tokio::runtime::Handle::current(),
            timeout: PLUGIN_READ_TIMEOUT,
        });
        let prepared = prepared.clone();
        let limits = host.limits(&[]);
        let plugin = wp.plugin.clone();
        tokio::task::spawn_blocking(move || host.policy_check_reporting(&prepared, &owner, &cluster, reader, &limits))
            .await
            .unwrap_or_else(|e| {
                (Err(PluginError::Host(format!("plugin {plugin}: the host task failed: {e}"))), Vec::new())
            })
    }

    /// Applies each violation's remediation (a JSON merge patch; `null` deletes the object,
    /// a patch on a missing object creates it). What was done, for the message.
    async fn remediate(&self, violations: &[flotilla_plugin_host::Violation]) -> Vec<String> {
        let mut done = Vec::new();
        for violation in violations {
            let (Some(object), Some(remediation)) = (&violation.object, &violation.remediation) else { continue };
            let at = match &object.namespace {
                Some(ns) => format!("{} {ns}/{}", object.kind.kind, object.name),
                None => format!("{} {}", object.kind.kind, object.name),
            };
            let patch: Value = match serde_json::from_str(remediation) {
                Ok(patch) => patch,
                Err(e) => {
                    done.push(format!("{at}: the plugin's remediation is not JSON ({e})"));
                    continue;
                }
            };
            let (group, version) = wasm::group_version(&object.kind.api_version);
            let resolved = match self.discovery.resolve(group, version, &object.kind.kind).await {
                Ok(resolved) => resolved,
                Err(e) => {
                    done.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let ns = object.namespace.as_deref();
            if patch.is_null() {
                match self.delete_object(&resolved, ns, &object.name).await {
                    Ok(()) => done.push(format!("{at} deleted")),
                    Err(e) => done.push(format!("{at}: {e}")),
                }
                continue;
            }
            let live = match self.api_for(&resolved, ns).get_opt(&object.name).await {
                Ok(live) => live.and_then(|o| serde_json::to_value(o).ok()),
                Err(e) => {
                    done.push(format!("{at}: cannot read it: {}", api_message(&e)));
                    continue;
                }
            };
            let existed = live.is_some();
            let mut target = live.unwrap_or_else(|| {
                let mut skeleton = json!({"metadata": {"name": object.name}});
                if let Some(ns) = ns {
                    skeleton["metadata"]["namespace"] = json!(ns);
                }
                skeleton
            });
            wasm::merge_patch(&mut target, &patch);
            target["apiVersion"] = json!(object.kind.api_version);
            target["kind"] = json!(object.kind.kind);
            match self.apply_object(&resolved, &target).await {
                Ok(_) => done.push(format!("{at} {}", if existed { "patched" } else { "created" })),
                Err(e) => done.push(format!("{at}: {e}")),
            }
        }
        done
    }
}

fn same_object(a: &TrackedObject, b: &TrackedObject) -> bool {
    a.api_version == b.api_version && a.kind == b.kind && a.namespace == b.namespace && a.name == b.name
}

/// The message of a check the host refused reads for: the refused kinds, then what the
/// plugin said (or how it failed).
fn refusal(
    wp: &WasmPolicy,
    refused: &[KindRef],
    result: &Result<flotilla_plugin_host::CheckResult, PluginError>,
) -> String {
    let kinds: Vec<String> = refused.iter().map(wasm::describe_kind).collect();
    let then = match result {
        Ok(r) => format!("the plugin said: {}", r.message),
        Err(e) => format!("the plugin failed ({}): {e}", e.reason()),
    };
    format!("plugin {} read kind(s) it did not declare, refused by the host: {}; {then}", wp.plugin, kinds.join(", "))
}

fn plugin_result(wp: &WasmPolicy, r: &flotilla_plugin_host::CheckResult, fixes: Option<&[String]>) -> TemplateResult {
    let compliance = match r.compliance {
        PluginCompliance::Compliant => Compliance::Compliant,
        PluginCompliance::NonCompliant => Compliance::NonCompliant,
        PluginCompliance::Pending => Compliance::Pending,
    };
    let mut detail = r.message.clone();
    if compliance == Compliance::NonCompliant && !r.violations.is_empty() {
        let each: Vec<&str> = r.violations.iter().map(|v| v.message.as_str()).collect();
        detail = format!("{detail}: {}", each.join("; "));
    }
    if let Some(fixes) = fixes {
        detail = format!("{detail} (enforced: {})", fixes.join("; "));
    }
    TemplateResult::new(&wp.name, WASM_POLICY, compliance, &detail)
}

fn namespaces_resource() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Namespace".into(),
        plural: "namespaces".into(),
    }
}

fn managed_clusters() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "cluster.open-cluster-management.io".into(),
        version: "v1".into(),
        api_version: "cluster.open-cluster-management.io/v1".into(),
        kind: "ManagedCluster".into(),
        plural: "managedclusters".into(),
    }
}
