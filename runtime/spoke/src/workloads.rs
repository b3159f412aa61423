//! Workload status simulation: what kube-controller-manager and the kubelet would write on a
//! real cluster, so that the agent's status feedback, condition rules and availability see
//! realistic objects on a simulated spoke (KWOK does the same for Pods and Nodes).
//!
//! A controller over the spoke's own store writes status through the status subresource (a
//! status-only write: resourceVersion changes, generation and spec never do). No Pods or
//! ReplicaSets are created; only the status of the objects users create changes:
//!
//! - Deployment, StatefulSet, ReplicaSet: right away a "rolling out" status for the
//!   current generation (replica counts, `Progressing=True`, for a Deployment
//!   `Available=False` until enough replicas are up), then after the ready delay every
//!   replica ready and available (`Available=True` `MinimumReplicasAvailable`, `Progressing=True`
//!   `NewReplicaSetAvailable`). A spec change (new generation) rolls out again.
//! - DaemonSet: the same, with one pod per Node that its `nodeSelector` admits; adding or
//!   removing Nodes rolls out again.
//! - Job: `active` and `startTime`, then after the delay `succeeded`, `completionTime` and
//!   `SuccessCriteriaMet`/`Complete=True`. A suspended Job is left alone.
//! - Pod: `Pending` (containers `ContainerCreating`), then `Running` and `Ready=True`, or
//!   `Succeeded` for `restartPolicy: Never`.
//!
//! Annotations on an object change its fate, read when its current generation is simulated:
//!
//! - `sim.flotilla.dev/never-ready: "true"`: never becomes ready (a Deployment stays at
//!   `readyReplicas: 0` with `Available=False` `MinimumReplicasUnavailable`, a Job stays
//!   `active: 1`, a Pod `Pending`). Wins over `fail`.
//! - `sim.flotilla.dev/fail: "true"`: after the delay a Job fails (`Failed=True`
//!   `BackoffLimitExceeded`), a Pod goes to phase `Failed`, a Deployment stops progressing
//!   (`Progressing=False` `ProgressDeadlineExceeded`); other kinds never become ready.
//! - `sim.flotilla.dev/ready-after-seconds: "N"`: this object's delay instead of the
//!   spoke's `ready_delay` (fractions allowed; `0` is immediate).
//!
//! Level-triggered: on every start the controller lists everything stored and converges it;
//! an object already ready (or finished) stays as it is, one caught half-way waits its
//! delay again from the restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_apimachinery::ApiError;
use flotilla_apiserver::controller::{self, Reconciler};
use flotilla_apiserver::host::RunningServer;
use flotilla_apiserver::objects::{meta, now_rfc3339};
use flotilla_apiserver::{ListOptions, Resource, Storage, WriteOptions};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

/// Keeps an object from ever becoming ready.
pub const NEVER_READY_ANNOTATION: &str = "sim.flotilla.dev/never-ready";
/// Makes a Job or Pod fail (and a Deployment stop progressing) once its delay has passed.
pub const FAIL_ANNOTATION: &str = "sim.flotilla.dev/fail";
/// Overrides the spoke's ready delay for one object, in seconds.
pub const READY_AFTER_ANNOTATION: &str = "sim.flotilla.dev/ready-after-seconds";
/// How long objects take to become ready unless the spoke is told otherwise.
pub const DEFAULT_READY_DELAY: Duration = Duration::from_secs(1);

/// The key that re-simulates every DaemonSet (a Node came or went).
const ALL_DAEMON_SETS: &str = "DaemonSet/*";

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// A kind the workload simulator follows.
    #[error(transparent)]
    NotServed(#[from] flotilla_apiserver::NotServed),
}

/// The kinds whose status is simulated, in the order of [`Simulator::watches`] (Nodes last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Deployment,
    StatefulSet,
    ReplicaSet,
    DaemonSet,
    Job,
    Pod,
}

const WORKLOADS: [Workload; 6] = [
    Workload::Deployment,
    Workload::StatefulSet,
    Workload::ReplicaSet,
    Workload::DaemonSet,
    Workload::Job,
    Workload::Pod,
];
const NODES_INDEX: usize = WORKLOADS.len();

impl Workload {
    fn api_version(self) -> &'static str {
        match self {
            Workload::Job => "batch/v1",
            Workload::Pod => "v1",
            _ => "apps/v1",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Workload::Deployment => "Deployment",
            Workload::StatefulSet => "StatefulSet",
            Workload::ReplicaSet => "ReplicaSet",
            Workload::DaemonSet => "DaemonSet",
            Workload::Job => "Job",
            Workload::Pod => "Pod",
        }
    }

    fn from_kind(kind: &str) -> Option<Workload> {
        WORKLOADS.into_iter().find(|w| w.kind() == kind)
    }

    /// The field manager a real cluster records for this status.
    fn manager(self) -> &'static str {
        match self {
            Workload::Pod => "kubelet",
            _ => "kube-controller-manager",
        }
    }
}

/// What an object's annotations ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    NeverReady,
    Fail,
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str)
}

fn mode(obj: &Value) -> Mode {
    let set = |key| annotation(obj, key).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if set(NEVER_READY_ANNOTATION) {
        Mode::NeverReady
    } else if set(FAIL_ANNOTATION) {
        Mode::Fail
    } else {
        Mode::Normal
    }
}

/// The object's own delay, when it asks for a valid one.
fn delay_override(obj: &Value) -> Option<Duration> {
    let text = annotation(obj, READY_AFTER_ANNOTATION)?;
    let seconds: f64 = text.trim().parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// Where an object is in its simulated life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Created or changed, not ready yet.
    Starting,
    /// Ready (a Job complete, a `restartPolicy: Never` Pod succeeded).
    Ready,
    /// Given up (`sim.flotilla.dev/fail`).
    Failed,
}

/// When the current generation of an object was first seen (in this process).
struct Pending {
    uid: String,
    generation: i64,
    since: Instant,
}

/// The workload status controller of one simulated spoke.
pub struct Simulator {
    storage: Storage,
    /// One per [`WORKLOADS`] entry, then Nodes.
    resources: Vec<Arc<Resource>>,
    delay: Duration,
    pending: Mutex<HashMap<String, Pending>>,
}

/// Starts the simulator on a running spoke; it stops with the server.
pub fn start(server: &mut RunningServer, delay: Duration) -> Result<(), SimulatorError> {
    let simulator = Simulator::new(server.storage().clone(), delay)?;
    let task = controller::run(simulator, server.storage().clone(), server.shutdown_signal());
    server.spawn(task);
    tracing::info!(ready_delay = ?delay, "workload status simulation started");
    Ok(())
}

impl Simulator {
    pub fn new(storage: Storage, delay: Duration) -> Result<Simulator, SimulatorError> {
        let lookup = |api_version: &str, kind: &str| storage.registry.served(api_version, kind);
        let mut resources = Vec::new();
        for workload in WORKLOADS {
            resources.push(lookup(workload.api_version(), workload.kind())?);
        }
        resources.push(lookup("v1", "Node")?);
        Ok(Simulator { storage, resources, delay, pending: Mutex::new(HashMap::new()) })
    }

    fn resource(&self, workload: Workload) -> &Arc<Resource> {
        // `resources` is built from WORKLOADS in order.
        &self.resources[workload as usize]
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget(&self, key: &str) {
        self.pending().remove(key);
    }

    /// How long the object still has to wait before it is ready (zero: no more).
    fn remaining(&self, key: &str, obj: &Value) -> Duration {
        let delay = delay_override(obj).unwrap_or(self.delay);
        let uid = meta::uid(obj);
        let generation = meta::generation(obj);
        let mut pending = self.pending();
        let since = match pending.get(key) {
            Some(p) if p.uid == uid && p.generation == generation => p.since,
            _ => {
                let since = Instant::now();
                pending.insert(key.to_string(), Pending { uid: uid.to_string(), generation, since });
                since
            }
        };
        delay.saturating_sub(since.elapsed())
    }

    async fn nodes(&self) -> Result<Vec<Value>, ApiError> {
        Ok(self.storage.list(&self.resources[NODES_INDEX], None, &ListOptions::default()).await?.items)
    }

    /// Converges one object's status; `Some(d)`: look again after `d`. `nodes`: the Nodes, for
    /// a DaemonSet (read here when the caller has not read them already).
    async fn sync(
        &self,
        workload: Workload,
        key: &str,
        obj: Value,
        nodes: Option<&[Value]>,
    ) -> Result<Option<Duration>, ApiError> {
        if meta::deletion_timestamp(&obj).is_some() {
            self.forget(key);
            return Ok(None);
        }
        let listed;
        let nodes = match (workload, nodes) {
            (Workload::DaemonSet, Some(nodes)) => nodes,
            (Workload::DaemonSet, None) => {
                listed = self.nodes().await?;
                &listed[..]
            }
            _ => &[],
        };
        let now = now_rfc3339();
        let sim = Sim { workload, obj: &obj, nodes, now: &now };
        let mode = mode(&obj);
        if sim.settled(mode) {
            self.forget(key);
            return Ok(None);
        }
        let wait = self.remaining(key, &obj);
        let stage = match mode {
            Mode::Normal if wait.is_zero() => Stage::Ready,
            Mode::Fail if wait.is_zero() => Stage::Failed,
            _ => Stage::Starting,
        };
        let desired = sim.status(stage);
        if obj.get("status") != Some(&desired) {
            let mut updated = obj.clone();
            updated["status"] = desired;
            let (ns, name) = (meta::namespace(&obj), meta::name(&obj));
            let opts = WriteOptions::manager(workload.manager());
            self.storage.update(self.resource(workload), ns, name, updated, Some("status"), &opts).await?;
            tracing::debug!(kind = workload.kind(), namespace = ns, name, ?stage, "simulated status");
        }
        if stage == Stage::Starting && mode != Mode::NeverReady {
            return Ok(Some(wait));
        }
        self.forget(key);
        Ok(None)
    }

    async fn sync_all_daemon_sets(&self) -> Result<Option<Duration>, ApiError> {
        let listed = self.storage.list(self.resource(Workload::DaemonSet), None, &ListOptions::default()).await?;
        // One list of the Nodes for every DaemonSet.
        let nodes = self.nodes().await?;
        let mut again: Option<Duration> = None;
        let mut failed = None;
        for obj in listed.items {
            let key = key_of(Workload::DaemonSet, &obj);
            match self.sync(Workload::DaemonSet, &key, obj, Some(&nodes)).await {
                Ok(Some(d)) => again = Some(again.map_or(d, |a| a.min(d))),
                Ok(None) => {}
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(again),
        }
    }
}

fn key_of(workload: Workload, obj: &Value) -> String {
    format!("{}/{}/{}", workload.kind(), meta::namespace(obj).unwrap_or_default(), meta::name(obj))
}

fn parse_key(key: &str) -> Option<(Workload, &str, &str)> {
    let (kind, rest) = key.split_once('/')?;
    let (ns, name) = rest.split_once('/')?;
    Some((Workload::from_kind(kind)?, ns, name))
}

impl Reconciler for Simulator {
    fn name(&self) -> &'static str {
        "workload-simulator"
    }

    fn watches(&self) -> Vec<Arc<Resource>> {
        self.resources.clone()
    }

    fn keys_for(&self, index: usize, obj: &Value, _deleted: bool) -> Vec<String> {
        match WORKLOADS.get(index) {
            Some(workload) => vec![key_of(*workload, obj)],
            None if index == NODES_INDEX => vec![ALL_DAEMON_SETS.to_string()],
            None => Vec::new(),
        }
    }

    async fn reconcile(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        if key == ALL_DAEMON_SETS {
            return self.sync_all_daemon_sets().await;
        }
        let Some((workload, ns, name)) = parse_key(key) else {
            return Ok(None);
        };
        match self.storage.get(self.resource(workload), Some(ns), name).await {
            Ok(obj) => self.sync(workload, key, obj, None).await,
            Err(e) if e.code == 404 => {
                self.forget(key);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

// ---------------------------------------------------------------- status of each kind

/// One object being simulated, with what its status depends on.
struct Sim<'a> {
    workload: Workload,
    obj: &'a Value,
    /// The spoke's Nodes (DaemonSets only).
    nodes: &'a [Value],
    now: &'a str,
}

/// Which timestamps a kind's conditions carry.
#[derive(Clone, Copy)]
enum Stamps {
    /// Deployments: `lastUpdateTime` and `lastTransitionTime`.
    Update,
    /// Jobs: `lastProbeTime` and `lastTransitionTime`.
    Probe,
    /// Pods: `lastTransitionTime`.
    Transition,
}

impl Sim<'_> {
    fn prev(&self) -> &Value {
        self.obj.get("status").unwrap_or(&Value::Null)
    }

    fn prev_int(&self, field: &str) -> i64 {
        self.prev().get(field).and_then(Value::as_i64).unwrap_or(0)
    }

    fn spec(&self, pointer: &str) -> Option<&Value> {
        self.obj.get("spec").and_then(|s| s.pointer(pointer))
    }

    fn spec_int(&self, pointer: &str) -> Option<i64> {
        self.spec(pointer).and_then(Value::as_i64)
    }

    /// Ready and available counts out of `n`: all once ready; otherwise what the status
    /// reported (pods of the previous rollout keep serving while the new ones start).
    fn ready_available(&self, stage: Stage, n: i64, ready: &str, available: &str) -> (i64, i64) {
        match stage {
            Stage::Ready => (n, n),
            Stage::Starting | Stage::Failed => (self.prev_int(ready).min(n), self.prev_int(available).min(n)),
        }
    }

    /// `spec.replicas`, 1 when unset (the API default).
    fn replicas(&self) -> i64 {
        self.spec_int("/replicas").unwrap_or(1).max(0)
    }

    /// Whether the object has reached where its mode leads and needs nothing more.
    fn settled(&self, mode: Mode) -> bool {
        match self.workload {
            Workload::Pod => {
                matches!(self.prev().get("phase").and_then(Value::as_str), Some("Running" | "Succeeded" | "Failed"))
            }
            Workload::Job => {
                self.spec("/suspend").and_then(Value::as_bool) == Some(true)
                    || ["Complete", "Failed"].iter().any(|t| condition_is_true(self.prev(), t))
            }
            _ => {
                let end = match mode {
                    Mode::Normal => Stage::Ready,
                    Mode::Fail => Stage::Failed,
                    Mode::NeverReady => Stage::Starting,
                };
                self.obj.get("status") == Some(&self.status(end))
            }
        }
    }

    fn status(&self, stage: Stage) -> Value {
        match self.workload {
            Workload::Deployment => self.deployment(stage),
            Workload::StatefulSet => self.stateful_set(stage),
            Workload::ReplicaSet => self.replica_set(stage),
            Workload::DaemonSet => self.daemon_set(stage),
            Workload::Job => self.job(stage),
            Workload::Pod => self.pod(stage),
        }
    }

    /// A condition as Kubernetes' controllers set one: unchanged when its status and reason
    /// are, keeping `lastTransitionTime` while its status is.
    fn condition(&self, stamps: Stamps, type_: &str, status: &str, reason: &str, message: &str) -> Value {
        let prev = find_condition(self.prev(), type_);
        if let Some(prev) = prev
            && prev.get("status").and_then(Value::as_str) == Some(status)
            && prev.get("reason").and_then(Value::as_str).unwrap_or_default() == reason
        {
            return prev.clone();
        }
        let transition = prev
            .filter(|p| p.get("status").and_then(Value::as_str) == Some(status))
            .and_then(|p| p.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(self.now));
        let mut c = Map::new();
        c.insert("type".into(), json!(type_));
        c.insert("status".into(), json!(status));
        match stamps {
            Stamps::Update => {
                c.insert("lastUpdateTime".into(), json!(self.now));
            }
            Stamps::Probe => {
                c.insert("lastProbeTime".into(), json!(self.now));
            }
            Stamps::Transition => {}
        }
        c.insert("lastTransitionTime".into(), transition);
        if !reason.is_empty() {
            c.insert("reason".into(), json!(reason));
        }
        if !message.is_empty() {
            c.insert("message".into(), json!(message));
        }
        Value::Object(c)
    }

    /// A timestamp already in the status, else now.
    fn kept_time(&self, field: &str) -> Value {
        self.prev().get(field).filter(|v| v.is_string()).cloned().unwrap_or_else(|| json!(self.now))
    }

    fn template_hash(&self) -> String {
        safe_encode(fnv32a(self.spec("/template").map(Value::to_string).unwrap_or_default().as_bytes()))
    }

    fn deployment(&self, stage: Stage) -> Value {
        let n = self.replicas();
        let rs = format!("{}-{}", meta::name(self.obj), self.template_hash());
        let (ready, available) = self.ready_available(stage, n, "readyReplicas", "availableReplicas");
        let minimum = (n - self.max_unavailable(n)).max(0);
        let available_condition = if available >= minimum {
            self.condition(
                Stamps::Update,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        } else {
            self.condition(
                Stamps::Update,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        };
        let progressing = match stage {
            Stage::Ready => self.condition(
                Stamps::Update,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{rs}\" has successfully progressed."),
            ),
            Stage::Starting => self.condition(
                Stamps::Update,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{rs}\" is progressing."),
            ),
            Stage::Failed => self.condition(
                Stamps::Update,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet \"{rs}\" has timed out progressing."),
            ),
        };
        let mut status = json!({
            "observedGeneration": meta::generation(self.obj),
            "replicas": n,
            "updatedReplicas": n,
            "readyReplicas": ready,
            "availableReplicas": available,
        });
        if n > available {
            status["unavailableReplicas"] = json!(n - available);
        }
        status["conditions"] = json!([available_condition, progressing]);
        status
    }

    /// `maxUnavailable` of a rolling update (25% by default, rounded down); a Recreate
    /// Deployment tolerates none (Kubernetes' `MaxUnavailable`).
    fn max_unavailable(&self, replicas: i64) -> i64 {
        if self.spec("/strategy/type").and_then(Value::as_str) == Some("Recreate") {
            return 0;
        }
        let value = self.spec("/strategy/rollingUpdate/maxUnavailable").cloned().unwrap_or_else(|| json!("25%"));
        let resolved = match &value {
            Value::Number(n) => n.as_i64().unwrap_or(0),
            Value::String(s) => match s.strip_suffix('%').map(str::trim).and_then(|p| p.parse::<i64>().ok()) {
                Some(percent) => replicas.saturating_mul(percent) / 100,
                None => s.trim().parse().unwrap_or(0),
            },
            _ => 0,
        };
        resolved.clamp(0, replicas)
    }

    fn stateful_set(&self, stage: Stage) -> Value {
        let n = self.replicas();
        let revision = format!("{}-{}", meta::name(self.obj), self.template_hash());
        let (ready, available) = self.ready_available(stage, n, "readyReplicas", "availableReplicas");
        json!({
            "observedGeneration": meta::generation(self.obj),
            "replicas": n,
            "readyReplicas": ready,
            "currentReplicas": n,
            "updatedReplicas": n,
            "availableReplicas": available,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        })
    }

    fn replica_set(&self, stage: Stage) -> Value {
        let n = self.replicas();
        let (ready, available) = self.ready_available(stage, n, "readyReplicas", "availableReplicas");
        json!({
            "observedGeneration": meta::generation(self.obj),
            "replicas": n,
            "fullyLabeledReplicas": n,
            "readyReplicas": ready,
            "availableReplicas": available,
        })
    }

    /// The Nodes a DaemonSet's `nodeSelector` admits (taints are not simulated).
    fn scheduled_nodes(&self) -> i64 {
        let selector = self.spec("/template/spec/nodeSelector").and_then(Value::as_object);
        let admitted = self.nodes.iter().filter(|node| {
            selector.is_none_or(|sel| {
                sel.iter().all(|(k, v)| node.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
            })
        });
        i64::try_from(admitted.count()).unwrap_or(i64::MAX)
    }

    fn daemon_set(&self, stage: Stage) -> Value {
        let desired = self.scheduled_nodes();
        let (ready, available) = self.ready_available(stage, desired, "numberReady", "numberAvailable");
        let mut status = json!({
            "observedGeneration": meta::generation(self.obj),
            "currentNumberScheduled": desired,
            "desiredNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": available,
            "updatedNumberScheduled": desired,
        });
        if desired > available {
            status["numberUnavailable"] = json!(desired - available);
        }
        status
    }

    fn job(&self, stage: Stage) -> Value {
        let completions = self.spec_int("/completions").unwrap_or(1).max(0);
        let parallelism = self.spec_int("/parallelism").unwrap_or(1).max(0);
        let mut status = json!({"startTime": self.kept_time("startTime")});
        match stage {
            Stage::Starting => {
                status["active"] = json!(parallelism.min(completions.max(1)));
            }
            Stage::Ready => {
                status["completionTime"] = self.kept_time("completionTime");
                status["succeeded"] = json!(completions.max(1));
                let message = "Reached expected number of succeeded pods";
                status["conditions"] = json!([
                    self.condition(Stamps::Probe, "SuccessCriteriaMet", "True", "CompletionsReached", message),
                    self.condition(Stamps::Probe, "Complete", "True", "CompletionsReached", message),
                ]);
            }
            Stage::Failed => {
                status["failed"] = json!(self.spec_int("/backoffLimit").unwrap_or(6).max(0) + 1);
                let message = "Job has reached the specified backoff limit";
                status["conditions"] = json!([
                    self.condition(Stamps::Probe, "FailureTarget", "True", "BackoffLimitExceeded", message),
                    self.condition(Stamps::Probe, "Failed", "True", "BackoffLimitExceeded", message),
                ]);
            }
        }
        status["ready"] = json!(0);
        status["terminating"] = json!(0);
        status["uncountedTerminatedPods"] = json!({});
        status
    }

    fn pod(&self, stage: Stage) -> Value {
        let never_restarts = self.spec("/restartPolicy").and_then(Value::as_str) == Some("Never");
        // Running until it succeeds: only a pod that never restarts finishes by itself.
        let phase = match stage {
            Stage::Starting => "Pending",
            Stage::Ready if never_restarts => "Succeeded",
            Stage::Ready => "Running",
            Stage::Failed => "Failed",
        };
        let names = |field: &str| -> Vec<(String, String)> {
            self.spec(field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| {
                    let get = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                    (get("name"), get("image"))
                })
                .collect()
        };
        let containers = names("/containers");
        let init_containers = names("/initContainers");
        let started = self.kept_time("startTime");
        let id = fnv32a(meta::uid(self.obj).as_bytes());
        let state = |exit: Option<i64>| match (phase, exit) {
            ("Pending", _) => json!({"waiting": {"reason": "ContainerCreating"}}),
            (_, Some(code)) => json!({"terminated": {
                "exitCode": code,
                "reason": if code == 0 { "Completed" } else { "Error" },
                "startedAt": started,
                "finishedAt": self.now,
                "containerID": format!("simulated://{id:08x}"),
            }}),
            _ => json!({"running": {"startedAt": started}}),
        };
        let container_status = |(name, image): &(String, String), state: Value, ready: bool| {
            let mut s = json!({
                "name": name,
                "image": image,
                "imageID": format!("{image}@sha256:{id:08x}{}", "0".repeat(56)),
                "ready": ready,
                "started": ready,
                "restartCount": 0,
                "state": state,
            });
            if phase != "Pending" {
                s["containerID"] = json!(format!("simulated://{id:08x}"));
            }
            s
        };
        let exit = match phase {
            "Succeeded" => Some(0),
            "Failed" => Some(1),
            _ => None,
        };
        let statuses: Vec<Value> =
            containers.iter().map(|c| container_status(c, state(exit), phase == "Running")).collect();
        let init_state = if phase == "Pending" { state(None) } else { state(Some(0)) };
        let init_statuses: Vec<Value> =
            init_containers.iter().map(|c| container_status(c, init_state.clone(), false)).collect();

        let unready: Vec<&str> = containers.iter().map(|(n, _)| n.as_str()).collect();
        let unready = format!("containers with unready status: [{}]", unready.join(" "));
        let t = Stamps::Transition;
        let (ready, ready_reason, ready_message) = match phase {
            "Running" => ("True", "", String::new()),
            "Pending" => ("False", "ContainersNotReady", unready),
            "Succeeded" => ("False", "PodCompleted", String::new()),
            _ => ("False", "PodFailed", String::new()),
        };
        let initialized = if phase == "Pending" && !init_containers.is_empty() {
            let names: Vec<&str> = init_containers.iter().map(|(n, _)| n.as_str()).collect();
            self.condition(
                t,
                "Initialized",
                "False",
                "ContainersNotInitialized",
                &format!("containers with incomplete status: [{}]", names.join(" ")),
            )
        } else {
            let reason = if matches!(phase, "Succeeded" | "Failed") { "PodCompleted" } else { "" };
            self.condition(t, "Initialized", "True", reason, "")
        };
        let sandbox = if phase == "Running" { "True" } else { "False" };
        let conditions = json!([
            self.condition(t, "PodReadyToStartContainers", sandbox, "", ""),
            initialized,
            self.condition(t, "Ready", ready, ready_reason, &ready_message),
            self.condition(t, "ContainersReady", ready, ready_reason, &ready_message),
            self.condition(t, "PodScheduled", "True", "", ""),
        ]);

        let mut status = json!({"phase": phase, "conditions": conditions});
        if let Some(host_ip) = self.host_ip() {
            status["hostIP"] = json!(host_ip);
            status["hostIPs"] = json!([{"ip": host_ip}]);
        }
        if phase != "Pending" {
            let ip = format!("10.244.{}.{}", (id >> 8) & 0xff, (id & 0xff).max(2));
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        }
        status["startTime"] = started;
        if !init_statuses.is_empty() {
            status["initContainerStatuses"] = json!(init_statuses);
        }
        status["containerStatuses"] = json!(statuses);
        status["qosClass"] = json!(self.qos_class());
        status
    }

    /// The InternalIP of the Node the Pod was bound to (`spec.nodeName`), if any.
    fn host_ip(&self) -> Option<String> {
        let node = self.spec("/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty())?;
        let index: usize = node.rsplit('-').next()?.parse().ok()?;
        Some(format!("10.0.0.{}", index + 1))
    }

    /// Kubernetes' QoS class from the containers' requests and limits.
    fn qos_class(&self) -> &'static str {
        let containers: Vec<&Value> = ["/containers", "/initContainers"]
            .iter()
            .filter_map(|f| self.spec(f).and_then(Value::as_array))
            .flatten()
            .collect();
        let of = |c: &Value, part: &str, r: &str| c.pointer(&format!("/resources/{part}/{r}")).cloned();
        let none = containers
            .iter()
            .all(|c| ["cpu", "memory"].iter().all(|r| of(c, "requests", r).is_none() && of(c, "limits", r).is_none()));
        if none {
            return "BestEffort";
        }
        let guaranteed = containers.iter().all(|c| {
            ["cpu", "memory"].iter().all(|r| {
                let limit = of(c, "limits", r);
                limit.is_some() && of(c, "requests", r).is_none_or(|req| Some(req) == limit)
            })
        });
        if guaranteed { "Guaranteed" } else { "Burstable" }
    }
}

fn find_condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status
        .get("conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn condition_is_true(status: &Value, type_: &str) -> bool {
    find_condition(status, type_).and_then(|c| c.get("status")).and_then(Value::as_str) == Some("True")
}

/// FNV-1a, 32 bits: the hash Kubernetes uses for pod-template-hash.
fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// Kubernetes' `rand.SafeEncodeString` of the hash's decimal digits (no vowels, no
/// look-alike characters), as in `nginx-7b8dcdd5c9`.
fn safe_encode(hash: u32) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string().bytes().map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim<'a>(workload: Workload, obj: &'a Value, nodes: &'a [Value]) -> Sim<'a> {
        Sim { workload, obj, nodes, now: "2025-01-01T00:00:10Z" }
    }

    fn deployment(replicas: Option<i64>, status: Value) -> Value {
        let mut obj = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1", "generation": 2},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": status,
        });
        if let Some(n) = replicas {
            obj["spec"]["replicas"] = json!(n);
        }
        obj
    }

    #[test]
    fn deployment_rolls_out_then_is_available() {
        let obj = deployment(Some(3), Value::Null);
        let starting = sim(Workload::Deployment, &obj, &[]).status(Stage::Starting);
        assert_eq!(starting["observedGeneration"], 2);
        assert_eq!((starting["replicas"].as_i64(), starting["readyReplicas"].as_i64()), (Some(3), Some(0)));
        assert_eq!(starting["unavailableReplicas"], 3);
        assert_eq!(starting["conditions"][0]["type"], "Available");
        assert_eq!(starting["conditions"][0]["status"], "False");
        assert_eq!(starting["conditions"][0]["reason"], "MinimumReplicasUnavailable");
        assert_eq!(starting["conditions"][1]["reason"], "ReplicaSetUpdated");

        let obj = deployment(Some(3), starting);
        let s = sim(Workload::Deployment, &obj, &[]);
        let ready = s.status(Stage::Ready);
        for field in ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"] {
            assert_eq!(ready[field], 3, "{field}");
        }
        assert!(ready.get("unavailableReplicas").is_none());
        assert_eq!(ready["conditions"][0]["status"], "True");
        assert_eq!(ready["conditions"][0]["reason"], "MinimumReplicasAvailable");
        assert_eq!(ready["conditions"][1]["reason"], "NewReplicaSetAvailable");
        let message = ready["conditions"][1]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("ReplicaSet \"web-") && message.ends_with("\" has successfully progressed."));
        // Progressing stayed True: its transition time is kept.
        assert_eq!(ready["conditions"][1]["lastTransitionTime"], "2025-01-01T00:00:10Z");

        // Settled once ready; the same status again is not a change.
        let obj = deployment(Some(3), ready);
        assert!(sim(Workload::Deployment, &obj, &[]).settled(Mode::Normal));
        assert!(!sim(Workload::Deployment, &obj, &[]).settled(Mode::Fail));
    }

    #[test]
    fn deployment_defaults_and_failures() {
        let obj = deployment(None, Value::Null);
        let s = sim(Workload::Deployment, &obj, &[]);
        assert_eq!(s.status(Stage::Ready)["availableReplicas"], 1, "spec.replicas defaults to 1");
        let failed = s.status(Stage::Failed);
        assert_eq!(failed["conditions"][1]["status"], "False");
        assert_eq!(failed["conditions"][1]["reason"], "ProgressDeadlineExceeded");
        assert_eq!(s.max_unavailable(10), 2);
        let mut recreate = obj.clone();
        recreate["spec"]["strategy"] = json!({"type": "Recreate"});
        assert_eq!(sim(Workload::Deployment, &recreate, &[]).max_unavailable(10), 0);
        let mut fixed = obj.clone();
        fixed["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": 3}});
        assert_eq!(sim(Workload::Deployment, &fixed, &[]).max_unavailable(10), 3);
        // Scaling up from 2 ready keeps them serving: Available stays True within maxUnavailable.
        let ready2 = deployment(Some(2), Value::Null);
        let ready2 = deployment(Some(2), sim(Workload::Deployment, &ready2, &[]).status(Stage::Ready));
        let mut up = ready2.clone();
        up["spec"]["replicas"] = json!(10);
        let starting = sim(Workload::Deployment, &up, &[]).status(Stage::Starting);
        assert_eq!(starting["availableReplicas"], 2);
        assert_eq!(starting["conditions"][0]["status"], "False");
        up["spec"]["replicas"] = json!(2);
        up["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": "50%"}});
        let starting = sim(Workload::Deployment, &up, &[]).status(Stage::Starting);
        assert_eq!(starting["conditions"][0]["status"], "True");
    }

    #[test]
    fn daemon_sets_count_admitted_nodes() {
        let nodes = vec![
            json!({"metadata": {"name": "n0", "labels": {"zone": "a"}}}),
            json!({"metadata": {"name": "n1", "labels": {"zone": "b"}}}),
            json!({"metadata": {"name": "n2", "labels": {"zone": "a"}}}),
        ];
        let obj = json!({"metadata": {"name": "d", "generation": 1},
            "spec": {"template": {"spec": {"nodeSelector": {"zone": "a"}}}}});
        let ready = sim(Workload::DaemonSet, &obj, &nodes).status(Stage::Ready);
        for field in ["desiredNumberScheduled", "numberReady", "numberAvailable", "updatedNumberScheduled"] {
            assert_eq!(ready[field], 2, "{field}");
        }
        let all = json!({"metadata": {"name": "d", "generation": 1}, "spec": {}});
        let starting = sim(Workload::DaemonSet, &all, &nodes).status(Stage::Starting);
        assert_eq!((starting["desiredNumberScheduled"].as_i64(), starting["numberReady"].as_i64()), (Some(3), Some(0)));
        assert_eq!(starting["numberUnavailable"], 3);
    }

    #[test]
    fn jobs_start_complete_and_fail() {
        let obj = json!({"metadata": {"name": "j"}, "spec": {"completions": 2, "backoffLimit": 3}});
        let s = sim(Workload::Job, &obj, &[]);
        let starting = s.status(Stage::Starting);
        assert_eq!(starting["active"], 1);
        assert_eq!(starting["startTime"], "2025-01-01T00:00:10Z");
        assert!(starting.get("conditions").is_none());
        let done = s.status(Stage::Ready);
        assert_eq!(done["succeeded"], 2);
        assert_eq!(done["completionTime"], "2025-01-01T00:00:10Z");
        assert!(done.get("active").is_none());
        assert!(condition_is_true(&done, "Complete") && condition_is_true(&done, "SuccessCriteriaMet"));
        let failed = s.status(Stage::Failed);
        assert_eq!(failed["failed"], 4);
        assert!(condition_is_true(&failed, "Failed"));
        assert_eq!(
            find_condition(&failed, "Failed").and_then(|c| c.get("reason")),
            Some(&json!("BackoffLimitExceeded"))
        );
        let finished = json!({"spec": {}, "status": done});
        assert!(sim(Workload::Job, &finished, &[]).settled(Mode::Normal));
    }

    #[test]
    fn pods_run_succeed_and_fail() {
        let obj = json!({"metadata": {"name": "p", "uid": "abc"},
            "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "nginx",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}], "nodeName": "c1-node-2"}});
        let s = sim(Workload::Pod, &obj, &[]);
        let pending = s.status(Stage::Starting);
        assert_eq!(pending["phase"], "Pending");
        assert_eq!(pending["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating");
        assert_eq!(
            find_condition(&pending, "Ready").and_then(|c| c.get("message")),
            Some(&json!("containers with unready status: [a b]"))
        );
        assert_eq!(pending["hostIP"], "10.0.0.3");
        assert_eq!(pending["qosClass"], "Burstable");
        let running = s.status(Stage::Ready);
        assert_eq!(running["phase"], "Running");
        assert!(condition_is_true(&running, "Ready") && condition_is_true(&running, "ContainersReady"));
        assert_eq!(running["containerStatuses"][1]["ready"], true);
        assert!(running["podIP"].as_str().is_some_and(|ip| ip.starts_with("10.244.")));
        let failed = s.status(Stage::Failed);
        assert_eq!(failed["phase"], "Failed");
        assert_eq!(failed["containerStatuses"][0]["state"]["terminated"]["exitCode"], 1);

        let mut once = obj.clone();
        once["spec"]["restartPolicy"] = json!("Never");
        let done = sim(Workload::Pod, &once, &[]).status(Stage::Ready);
        assert_eq!(done["phase"], "Succeeded");
        assert_eq!(done["containerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
        assert_eq!(find_condition(&done, "Ready").and_then(|c| c.get("reason")), Some(&json!("PodCompleted")));
    }

    #[test]
    fn annotations_and_keys() {
        let annotated = |k: &str, v: &str| json!({"metadata": {"annotations": {k: v}}});
        assert_eq!(mode(&json!({})), Mode::Normal);
        assert_eq!(mode(&annotated(NEVER_READY_ANNOTATION, "true")), Mode::NeverReady);
        assert_eq!(mode(&annotated(FAIL_ANNOTATION, "True")), Mode::Fail);
        assert_eq!(mode(&annotated(FAIL_ANNOTATION, "false")), Mode::Normal);
        assert_eq!(delay_override(&annotated(READY_AFTER_ANNOTATION, "2.5")), Some(Duration::from_millis(2500)));
        assert_eq!(delay_override(&annotated(READY_AFTER_ANNOTATION, "-1")), None);
        assert_eq!(delay_override(&annotated(READY_AFTER_ANNOTATION, "soon")), None);
        let obj = json!({"metadata": {"name": "web", "namespace": "ns"}});
        let key = key_of(Workload::Deployment, &obj);
        assert_eq!(key, "Deployment/ns/web");
        assert_eq!(parse_key(&key), Some((Workload::Deployment, "ns", "web")));
        assert_eq!(parse_key(ALL_DAEMON_SETS), None);
        assert_eq!(safe_encode(fnv32a(b"x")).len(), fnv32a(b"x").to_string().len());
    }
}
