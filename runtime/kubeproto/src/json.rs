//! Turns a decoded dynamic message into the JSON Kubernetes' Go types would marshal, which differs
//! from proto3 canonical JSON: apimachinery wrapper types have their own JSON forms, int64 stays a
//! number, and empty optional strings are left out (Go's `omitempty`).

use base64::Engine as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, MapKey, ReflectMessage, Value};
use serde_json::{Map, Number, Value as Json};

use crate::DecodeError;
use crate::gofmt;
use crate::schema::{Schema, canonical};

/// `metav1.Time`: `{seconds, nanos}` → RFC 3339 with whole seconds.
const TIME: &str = "apimachinery.pkg.apis.meta.v1.Time";
/// `metav1.MicroTime`: `{seconds, nanos}` → RFC 3339 with microseconds.
const MICRO_TIME: &str = "apimachinery.pkg.apis.meta.v1.MicroTime";
/// `metav1.Duration`: `{duration}` nanoseconds → Go duration string.
const DURATION: &str = "apimachinery.pkg.apis.meta.v1.Duration";
/// `metav1.FieldsV1`: `{Raw}` JSON bytes → the JSON value.
const FIELDS_V1: &str = "apimachinery.pkg.apis.meta.v1.FieldsV1";
/// `resource.Quantity`: `{string}` → the string.
const QUANTITY: &str = "apimachinery.pkg.api.resource.Quantity";
/// `intstr.IntOrString`: `{type, intVal, strVal}` → number or string.
const INT_OR_STRING: &str = "apimachinery.pkg.util.intstr.IntOrString";
/// `runtime.RawExtension`: `{raw}` JSON bytes → the JSON value.
const RAW_EXTENSION: &str = "apimachinery.pkg.runtime.RawExtension";

/// Fields that are non-pointer `omitempty` in the Go types but that the `+optional` marker does not
/// reveal: integers and bools (Go's protobuf marshalling always writes them, even when zero, and
/// its JSON leaves zero out) and a few strings whose comment lacks `+optional`. Every other
/// integer/bool present on the wire is kept even when zero: for Go pointer fields (`replicas`,
/// `backoffLimit`, `automountServiceAccountToken` ...) an explicit zero is meaningful, and the wire
/// format cannot tell the two kinds apart.
const OMIT_ZERO: &[&str] = &[
    "apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry.subresource",
    "apimachinery.pkg.apis.meta.v1.ObjectMeta.generation",
    "apimachinery.pkg.apis.meta.v1.Condition.observedGeneration",
    "api.core.v1.Container.stdin",
    "api.core.v1.Container.stdinOnce",
    "api.core.v1.Container.tty",
    "api.core.v1.EphemeralContainerCommon.stdin",
    "api.core.v1.EphemeralContainerCommon.stdinOnce",
    "api.core.v1.EphemeralContainerCommon.tty",
    "api.core.v1.ContainerPort.hostPort",
    "api.core.v1.VolumeMount.readOnly",
    "api.core.v1.Probe.initialDelaySeconds",
    "api.core.v1.Probe.timeoutSeconds",
    "api.core.v1.Probe.periodSeconds",
    "api.core.v1.Probe.successThreshold",
    "api.core.v1.Probe.failureThreshold",
    "api.core.v1.PodSpec.hostNetwork",
    "api.core.v1.PodSpec.hostPID",
    "api.core.v1.PodSpec.hostIPC",
    "api.core.v1.ServicePort.nodePort",
    "api.core.v1.ServiceSpec.healthCheckNodePort",
    "api.core.v1.ServiceSpec.publishNotReadyAddresses",
    "api.core.v1.Event.count",
    "api.core.v1.EventSeries.count",
    "api.apps.v1.DeploymentSpec.minReadySeconds",
    "api.apps.v1.DeploymentSpec.paused",
    "api.apps.v1.DeploymentStatus.observedGeneration",
    "api.apps.v1.DeploymentStatus.replicas",
    "api.apps.v1.DeploymentStatus.updatedReplicas",
    "api.apps.v1.DeploymentStatus.readyReplicas",
    "api.apps.v1.DeploymentStatus.availableReplicas",
    "api.apps.v1.DeploymentStatus.unavailableReplicas",
    "api.apps.v1.ReplicaSetSpec.minReadySeconds",
    "api.apps.v1.ReplicaSetStatus.fullyLabeledReplicas",
    "api.apps.v1.ReplicaSetStatus.readyReplicas",
    "api.apps.v1.ReplicaSetStatus.availableReplicas",
    "api.apps.v1.ReplicaSetStatus.observedGeneration",
    "api.apps.v1.StatefulSetSpec.minReadySeconds",
    "api.apps.v1.DaemonSetSpec.minReadySeconds",
    "api.batch.v1.JobStatus.active",
    "api.batch.v1.JobStatus.succeeded",
    "api.batch.v1.JobStatus.failed",
    "api.policy.v1.PodDisruptionBudgetStatus.observedGeneration",
    "api.scheduling.v1.PriorityClass.globalDefault",
    "api.networking.v1.ServiceBackendPort.number",
    "api.events.v1.Event.reportingController",
    "api.events.v1.Event.reportingInstance",
    "api.events.v1.Event.action",
    "api.events.v1.Event.reason",
    "api.events.v1.Event.type",
    "api.events.v1.Event.deprecatedCount",
];

/// `+optional` strings that Go nevertheless marshals when empty (no `omitempty`).
const KEEP_EMPTY: &[&str] = &["api.core.v1.Event.reportingComponent", "api.core.v1.Event.reportingInstance"];

/// Fields that embed a Go struct with `json:",inline"`: go-to-protobuf gives them a field of their
/// own, Go's JSON puts their members directly into the parent object.
pub(crate) const INLINE: &[&str] = &[
    "api.core.v1.Volume.volumeSource",
    "api.core.v1.Probe.handler",
    "api.core.v1.EphemeralContainer.ephemeralContainerCommon",
    "api.core.v1.PersistentVolumeSpec.persistentVolumeSource",
    "api.core.v1.ConfigMapEnvSource.localObjectReference",
    "api.core.v1.ConfigMapKeySelector.localObjectReference",
    "api.core.v1.ConfigMapProjection.localObjectReference",
    "api.core.v1.ConfigMapVolumeSource.localObjectReference",
    "api.core.v1.SecretEnvSource.localObjectReference",
    "api.core.v1.SecretKeySelector.localObjectReference",
    "api.core.v1.SecretProjection.localObjectReference",
    "api.networking.v1.IngressRule.ingressRuleValue",
];

/// Messages that Go declares as a named string slice (`type ExtraValue []string`): their JSON is
/// the bare array of `items`.
const STRING_SLICES: &[&str] = &["api.certificates.v1.ExtraValue"];

/// Converts a message to its Kubernetes JSON form. `path` is the JSON path for error messages.
pub fn message(schema: &Schema, msg: &DynamicMessage, path: &str) -> Result<Json, DecodeError> {
    let desc = msg.descriptor();
    match canonical(desc.full_name()) {
        TIME => time(msg, path, gofmt::rfc3339_seconds),
        MICRO_TIME => time(msg, path, gofmt::rfc3339_micros),
        DURATION => Ok(Json::String(gofmt::go_duration(int_field(msg, "duration")))),
        QUANTITY => Ok(Json::String(string_field(msg, "string").unwrap_or_else(|| "0".to_string()))),
        INT_OR_STRING => int_or_string(msg, path),
        RAW_EXTENSION => embedded_json(msg, "raw", path),
        FIELDS_V1 => embedded_json(msg, "Raw", path),
        name if STRING_SLICES.contains(&name) => string_slice(msg),
        _ => plain_message(schema, msg, path),
    }
}

/// An ordinary message: every set field, in declaration order, under its proto (= Kubernetes
/// JSON) name. Empty strings in `+optional` fields are dropped like Go's `omitempty` would.
fn plain_message(schema: &Schema, msg: &DynamicMessage, path: &str) -> Result<Json, DecodeError> {
    let mut out = Map::new();
    for field in msg.descriptor().fields() {
        if !msg.has_field(&field) {
            continue;
        }
        let value = msg.get_field(&field);
        if is_omitted_empty_string(schema, &field, &value) || is_omitted_zero(&field, &value) {
            continue;
        }
        let child = join(path, field.name());
        let json = field_value(schema, &field, &value, &child)?;
        match json {
            Json::Object(members) if INLINE.contains(&canonical(field.full_name())) => out.extend(members),
            json => {
                out.insert(field.name().to_string(), json);
            }
        }
    }
    Ok(Json::Object(out))
}

/// A named string slice: the `items` strings as a JSON array.
fn string_slice(msg: &DynamicMessage) -> Result<Json, DecodeError> {
    let items = match msg.get_field_by_name("items").as_deref() {
        Some(Value::List(items)) => {
            items.iter().filter_map(|item| item.as_str().map(|s| Json::String(s.to_string()))).collect()
        }
        _ => Vec::new(),
    };
    Ok(Json::Array(items))
}

/// Whether a present `""` should be left out: the field is `+optional` (omitempty in Go).
fn is_omitted_empty_string(schema: &Schema, field: &FieldDescriptor, value: &Value) -> bool {
    let name = canonical(field.full_name());
    matches!(value, Value::String(s) if s.is_empty()) && schema.is_optional(name) && !KEEP_EMPTY.contains(&name)
}

/// Whether a present zero/false/"" should be left out: the Go field is a non-pointer `omitempty`.
fn is_omitted_zero(field: &FieldDescriptor, value: &Value) -> bool {
    let zero = match value {
        Value::Bool(b) => !b,
        Value::I32(n) => *n == 0,
        Value::I64(n) => *n == 0,
        Value::U32(n) => *n == 0,
        Value::U64(n) => *n == 0,
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    zero && OMIT_ZERO.contains(&canonical(field.full_name()))
}

/// One field's value: a list, a map, or a single value.
fn field_value(schema: &Schema, field: &FieldDescriptor, value: &Value, path: &str) -> Result<Json, DecodeError> {
    match value {
        Value::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| single(schema, item, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array),
        Value::Map(entries) => {
            let mut out = Map::new();
            let mut keys: Vec<_> = entries.keys().collect();
            keys.sort_by_key(|key| map_key(key));
            for key in keys {
                let name = map_key(key);
                let child = format!("{path}[{name}]");
                if let Some(item) = entries.get(key) {
                    out.insert(name, single(schema, item, &child)?);
                }
            }
            Ok(Json::Object(out))
        }
        _ if field.is_list() || field.is_map() => {
            Err(invalid(path, "a repeated field holds a single value".to_string()))
        }
        other => single(schema, other, path),
    }
}

/// A scalar or message value. int64 stays a JSON number; bytes become standard base64.
fn single(schema: &Schema, value: &Value, path: &str) -> Result<Json, DecodeError> {
    Ok(match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(n) => float(f64::from(*n), path)?,
        Value::F64(n) => float(*n, path)?,
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::EnumNumber(n) => Json::from(*n),
        Value::Message(m) => message(schema, m, path)?,
        Value::List(_) | Value::Map(_) => return Err(invalid(path, "nested repeated value".to_string())),
    })
}

/// A finite float as a JSON number.
fn float(n: f64, path: &str) -> Result<Json, DecodeError> {
    Number::from_f64(n).map(Json::Number).ok_or_else(|| invalid(path, format!("{n} has no JSON form")))
}

/// A map key as the JSON object key Go would write.
fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// `Time`/`MicroTime`: an empty message or Go's zero time is `null`, as Go marshals it.
fn time(msg: &DynamicMessage, path: &str, format: fn(i64, i32) -> Result<String, String>) -> Result<Json, DecodeError> {
    let seconds = int_field(msg, "seconds");
    let nanos = i32::try_from(int_field(msg, "nanos")).map_err(|_| invalid(path, "nanos out of range".to_string()))?;
    let empty = !msg.has_field_by_name("seconds") && !msg.has_field_by_name("nanos");
    if empty || (seconds == gofmt::GO_ZERO_TIME_SECONDS && nanos == 0) {
        return Ok(Json::Null);
    }
    format(seconds, nanos).map(Json::String).map_err(|reason| invalid(path, reason))
}

/// `IntOrString`: type 0 is the int, type 1 the string.
fn int_or_string(msg: &DynamicMessage, path: &str) -> Result<Json, DecodeError> {
    match int_field(msg, "type") {
        0 => Ok(Json::from(int_field(msg, "intVal"))),
        1 => Ok(Json::String(string_field(msg, "strVal").unwrap_or_default())),
        other => Err(invalid(path, format!("IntOrString type {other} is neither 0 (int) nor 1 (string)"))),
    }
}

/// `RawExtension`/`FieldsV1`: the bytes are JSON; empty bytes are `null`.
fn embedded_json(msg: &DynamicMessage, field: &str, path: &str) -> Result<Json, DecodeError> {
    let bytes = match msg.get_field_by_name(field).as_deref() {
        Some(Value::Bytes(bytes)) => bytes.clone(),
        _ => return Ok(Json::Null),
    };
    if bytes.is_empty() {
        return Ok(Json::Null);
    }
    serde_json::from_slice(&bytes).map_err(|err| invalid(path, format!("embedded object is not JSON: {err}")))
}

/// An integer field of any width, 0 when unset or not an integer.
fn int_field(msg: &DynamicMessage, name: &str) -> i64 {
    match msg.get_field_by_name(name).as_deref() {
        Some(Value::I64(n)) => *n,
        Some(Value::I32(n)) => i64::from(*n),
        Some(Value::U32(n)) => i64::from(*n),
        Some(Value::U64(n)) => i64::try_from(*n).unwrap_or(i64::MAX),
        _ => 0,
    }
}

/// A string field, `None` when unset.
fn string_field(msg: &DynamicMessage, name: &str) -> Option<String> {
    if !msg.has_field_by_name(name) {
        return None;
    }
    match msg.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// `a.b` path joining for error messages.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// An [`DecodeError::InvalidValue`] at `path`.
fn invalid(path: &str, reason: String) -> DecodeError {
    DecodeError::InvalidValue { path: path.to_string(), reason }
}
