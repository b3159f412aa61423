//! Round trips (JSON → protobuf built with the same descriptors → [`decode`] → the same JSON) and
//! malformed-input tests.

use std::str::FromStr;

use base64::Engine as _;
use prost::Message as _;
use prost_reflect::{DynamicMessage, Kind, MapKey, MessageDescriptor, Value};
use serde_json::{Value as Json, json};

use crate::schema::{Schema, canonical};
use crate::{DecodeError, MAGIC, UNKNOWN, decode, supported_kinds};

/// Encodes a Kubernetes JSON object as a protobuf body, the way client-go would.
fn encode(object: &Json) -> Vec<u8> {
    let schema = Schema::get().expect("schema");
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    let desc = schema.message_for(api_version, kind).expect("supported kind");
    let mut body = object.as_object().expect("object").clone();
    body.remove("apiVersion");
    body.remove("kind");
    let raw = to_message(desc, &Json::Object(body)).encode_to_vec();
    envelope(api_version, kind, raw)
}

/// `k8s\0` + runtime.Unknown{typeMeta, raw}.
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let schema = Schema::get().expect("schema");
    let desc = schema.message(UNKNOWN).expect("Unknown");
    let mut unknown = DynamicMessage::new(desc.clone());
    let Some(Kind::Message(meta_desc)) = desc.get_field_by_name("typeMeta").map(|f| f.kind()) else {
        panic!("typeMeta")
    };
    let mut meta = DynamicMessage::new(meta_desc);
    meta.set_field_by_name("apiVersion", Value::String(api_version.to_string()));
    meta.set_field_by_name("kind", Value::String(kind.to_string()));
    unknown.set_field_by_name("typeMeta", Value::Message(meta));
    unknown.set_field_by_name("raw", Value::Bytes(raw.into()));
    [MAGIC.as_slice(), &unknown.encode_to_vec()].concat()
}

/// The inverse of `json::message` for test fixtures.
fn to_message(desc: MessageDescriptor, v: &Json) -> DynamicMessage {
    let mut msg = DynamicMessage::new(desc.clone());
    match canonical(desc.full_name()) {
        "apimachinery.pkg.apis.meta.v1.Time" | "apimachinery.pkg.apis.meta.v1.MicroTime" => {
            if let Some(s) = v.as_str() {
                let ts = jiff::Timestamp::from_str(s).expect("timestamp");
                msg.set_field_by_name("seconds", Value::I64(ts.as_second()));
                msg.set_field_by_name("nanos", Value::I32(ts.subsec_nanosecond()));
            }
        }
        "apimachinery.pkg.api.resource.Quantity" => {
            msg.set_field_by_name("string", Value::String(v.as_str().expect("quantity").to_string()));
        }
        "apimachinery.pkg.util.intstr.IntOrString" => match v {
            Json::String(s) => {
                msg.set_field_by_name("type", Value::I64(1));
                msg.set_field_by_name("strVal", Value::String(s.clone()));
            }
            _ => {
                msg.set_field_by_name("type", Value::I64(0));
                msg.set_field_by_name("intVal", Value::I32(v.as_i64().expect("int") as i32));
            }
        },
        "apimachinery.pkg.runtime.RawExtension" => {
            msg.set_field_by_name("raw", Value::Bytes(serde_json::to_vec(v).expect("json").into()));
        }
        "apimachinery.pkg.apis.meta.v1.Duration" => {
            let nanos = jiff::SignedDuration::from_str(v.as_str().expect("duration")).expect("go duration");
            msg.set_field_by_name("duration", Value::I64(nanos.as_nanos() as i64));
        }
        "api.certificates.v1.ExtraValue" => {
            let items = v.as_array().expect("string slice").iter().map(|s| single(&Kind::String, s)).collect();
            msg.set_field_by_name("items", Value::List(items));
        }
        _ => {
            let inline: Vec<_> =
                desc.fields().filter(|f| crate::json::INLINE.contains(&canonical(f.full_name()))).collect();
            for (name, value) in v.as_object().expect("object") {
                if desc.get_field_by_name(name).is_none()
                    && let Some(field) = inline
                        .iter()
                        .find(|f| matches!(f.kind(), Kind::Message(sub) if sub.get_field_by_name(name).is_some()))
                {
                    let Kind::Message(sub) = field.kind() else { unreachable!() };
                    let mut part = match msg.get_field(field).into_owned() {
                        Value::Message(m) if msg.has_field(field) => m,
                        _ => DynamicMessage::new(sub.clone()),
                    };
                    let one = to_message(sub, &json!({ name: value }));
                    part.merge(one.encode_to_vec().as_slice()).expect("merge");
                    msg.set_field(field, Value::Message(part));
                    continue;
                }
                let field = desc.get_field_by_name(name).unwrap_or_else(|| panic!("{} has no {name}", desc.name()));
                let value = if field.is_map() {
                    let Kind::Message(entry) = field.kind() else { panic!("map entry") };
                    let value_kind = entry.map_entry_value_field().kind();
                    let map = value.as_object().expect("map");
                    Value::Map(map.iter().map(|(k, v)| (MapKey::String(k.clone()), single(&value_kind, v))).collect())
                } else if field.is_list() {
                    Value::List(value.as_array().expect("list").iter().map(|v| single(&field.kind(), v)).collect())
                } else {
                    single(&field.kind(), value)
                };
                msg.set_field(&field, value);
            }
        }
    }
    msg
}

/// One scalar or message value of `kind`.
fn single(kind: &Kind, v: &Json) -> Value {
    match kind {
        Kind::Message(desc) => Value::Message(to_message(desc.clone(), v)),
        Kind::String => Value::String(v.as_str().expect("string").to_string()),
        Kind::Bytes => Value::Bytes(
            base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("b64")).expect("b64").into(),
        ),
        Kind::Bool => Value::Bool(v.as_bool().expect("bool")),
        Kind::Int32 => Value::I32(v.as_i64().expect("i32") as i32),
        Kind::Int64 => Value::I64(v.as_i64().expect("i64")),
        Kind::Double => Value::F64(v.as_f64().expect("f64")),
        other => panic!("fixture kind {other:?} not handled"),
    }
}

/// decode(encode(object)) == object.
fn assert_round_trip(object: Json) {
    let decoded = decode(&encode(&object)).unwrap_or_else(|err| panic!("decode: {err}"));
    assert_eq!(decoded, object, "\n got: {decoded:#}\nwant: {object:#}");
}

fn has(api_version: &str, kind: &str) -> bool {
    supported_kinds().contains(&(api_version, kind))
}

#[test]
fn lease_with_micro_time() {
    assert_round_trip(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": "flotilla-hub",
            "namespace": "kube-system",
            "creationTimestamp": null,
            "labels": {"app": "hub", "tier": "control"},
            "resourceVersion": "12",
            "generation": 3,
        },
        "spec": {
            "holderIdentity": "hub-0",
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-02T03:04:05.000000Z",
            "renewTime": "2026-01-02T03:04:20.123456Z",
            "leaseTransitions": 0,
        },
    }));
}

#[test]
fn zero_time_is_null_and_absent_time_is_omitted() {
    let object = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "a", "creationTimestamp": null},
        "spec": {}
    });
    let decoded = decode(&encode(&object)).expect("decode");
    assert_eq!(decoded["metadata"]["creationTimestamp"], Json::Null);
    assert!(decoded["metadata"].as_object().is_some_and(|m| m.contains_key("creationTimestamp")));
    assert!(!decoded["metadata"].as_object().is_some_and(|m| m.contains_key("deletionTimestamp")));
}

#[test]
fn empty_optional_strings_are_omitted() {
    // Go's protobuf marshalling writes every non-pointer string, even "", which Go's JSON
    // `omitempty` then leaves out.
    let object = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "a", "generateName": "", "namespace": "", "uid": ""},
    });
    let decoded = decode(&encode(&object)).expect("decode");
    assert_eq!(decoded, json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "a"}}));
}

#[test]
fn namespace() {
    assert_round_trip(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "foo", "creationTimestamp": null, "labels": {"team": "a"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {}
    }));
}

#[test]
fn secret_with_bytes() {
    assert_round_trip(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "default", "creationTimestamp": null},
        "data": {"password": "czNjcjN0", "binary": "AAEC/w=="},
        "type": "Opaque"
    }));
}

#[test]
fn configmap_with_binary_data() {
    assert_round_trip(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default", "creationTimestamp": null},
        "data": {"a": "1", "b.conf": "x=y\n"},
        "binaryData": {"blob": "3q2+7w=="}
    }));
}

#[test]
fn deployment_with_intstr_and_quantities() {
    assert_round_trip(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "args": ["-g", "daemon off;"],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [
                            {"name": "MODE", "value": "prod"},
                            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}
                        ],
                        "envFrom": [{"configMapRef": {"name": "cfg"}}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m", "memory": "64Mi"}
                        }
                    }],
                    "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}],
                    "terminationGracePeriodSeconds": 30
                }
            }
        },
        "status": {}
    }));
}

#[test]
fn job_and_cronjob() {
    let pod = json!({
        "metadata": {"creationTimestamp": null},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["date"], "resources": {}}], "restartPolicy": "Never"}
    });
    assert_round_trip(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "once", "namespace": "default", "creationTimestamp": null},
        "spec": {"backoffLimit": 0, "template": pod.clone()},
        "status": {}
    }));
    assert_round_trip(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "default", "creationTimestamp": null},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"metadata": {"name": "tick", "creationTimestamp": null}, "spec": {"template": pod}}
        },
        "status": {}
    }));
}

#[test]
fn rolebinding() {
    assert_round_trip(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "rb", "namespace": "default", "creationTimestamp": null},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
            {"kind": "ServiceAccount", "name": "bot", "namespace": "default"}
        ]
    }));
}

#[test]
fn certificate_signing_request_with_conditions() {
    assert_round_trip(json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "agent-1", "creationTimestamp": "2026-01-02T03:04:05Z"},
        "spec": {
            "request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K",
            "signerName": "kubernetes.io/kube-apiserver-client",
            "expirationSeconds": 86400,
            "usages": ["client auth"],
            "username": "alice",
            "groups": ["system:authenticated"],
            "extra": {"scopes": ["a", "b"]}
        },
        "status": {
            "conditions": [{
                "type": "Approved", "status": "True", "reason": "KubectlApprove",
                "message": "This CSR was approved by kubectl certificate approve.",
                "lastUpdateTime": "2026-01-02T03:04:06Z",
                "lastTransitionTime": "2026-01-02T03:04:06Z"
            }]
        }
    }));
}

#[test]
fn events_core_and_events_k8s_io() {
    assert_round_trip(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default", "creationTimestamp": null},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "apiVersion": "v1"},
        "reason": "Started", "message": "Started container", "source": {"component": "kubelet"},
        "firstTimestamp": "2026-01-02T03:04:05Z", "lastTimestamp": "2026-01-02T03:04:06Z", "count": 2,
        "type": "Normal", "eventTime": null, "reportingComponent": "", "reportingInstance": ""
    }));
    assert_round_trip(json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web.2", "namespace": "default", "creationTimestamp": null},
        "eventTime": "2026-01-02T03:04:05.123456Z",
        "series": {"count": 3, "lastObservedTime": "2026-01-02T03:05:00.000001Z"},
        "reportingController": "flotilla.dev/hub", "reportingInstance": "hub-0",
        "action": "Scheduled", "reason": "Placed",
        "regarding": {"kind": "Deployment", "namespace": "default", "name": "web"},
        "note": "placed on spoke-1", "type": "Normal"
    }));
}

#[test]
fn every_listed_kind_is_supported() {
    for (api_version, kind) in [
        ("v1", "Namespace"),
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("v1", "ServiceAccount"),
        ("v1", "Service"),
        ("v1", "ResourceQuota"),
        ("v1", "Event"),
        ("apps/v1", "Deployment"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("networking.k8s.io/v1", "Ingress"),
        ("policy/v1", "PodDisruptionBudget"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("coordination.k8s.io/v1", "Lease"),
        ("certificates.k8s.io/v1", "CertificateSigningRequest"),
        ("events.k8s.io/v1", "Event"),
    ] {
        assert!(has(api_version, kind), "{api_version} {kind} is not supported");
    }
}

#[test]
fn missing_magic() {
    assert_eq!(decode(b"{\"kind\":\"Namespace\"}"), Err(DecodeError::MissingMagic));
    assert_eq!(decode(b""), Err(DecodeError::MissingMagic));
    assert_eq!(decode(b"k8s"), Err(DecodeError::MissingMagic));
}

#[test]
fn unknown_kind_names_supported_ones() {
    let body = envelope("example.com/v1", "Widget", Vec::new());
    let err = decode(&body).expect_err("unsupported");
    let text = err.to_string();
    assert!(text.starts_with("protobuf bodies are supported for "), "{text}");
    assert!(text.contains("coordination.k8s.io/v1/Lease"), "{text}");
    assert!(text.ends_with("send JSON for example.com/v1 Widget"), "{text}");
}

#[test]
fn missing_type_meta() {
    let body = envelope("", "Lease", Vec::new());
    assert_eq!(decode(&body), Err(DecodeError::MissingTypeMeta("apiVersion")));
    assert_eq!(decode(b"k8s\x00"), Err(DecodeError::MissingTypeMeta("typeMeta")));
}

#[test]
fn malformed_object_names_the_field() {
    // Lease.spec (field 2, length-delimited) claims 10 bytes but has 2.
    let body = envelope("coordination.k8s.io/v1", "Lease", vec![0x12, 0x0a, 0x0a, 0x00]);
    match decode(&body) {
        Err(DecodeError::Malformed { detail, .. }) => assert!(detail.starts_with("spec: length 10"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_and_random_bodies_never_panic() {
    let good = encode(&json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "a", "labels": {"x": "y"}},
        "spec": {"holderIdentity": "h", "renewTime": "2026-01-02T03:04:05.000001Z"}
    }));
    for len in 0..good.len() {
        let _ = decode(&good[..len]);
    }
    // A small deterministic xorshift generator: no dependency, reproducible failures.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..2000 {
        let mut body = good.clone();
        let flips = 1 + (next() % 4) as usize;
        for _ in 0..flips {
            let at = 4 + (next() as usize) % (body.len() - 4);
            body[at] = next() as u8;
        }
        let _ = decode(&body);
        let random: Vec<u8> = (0..(round % 64)).map(|_| next() as u8).collect();
        let _ = decode(&[MAGIC.as_slice(), &random].concat());
    }
}

#[test]
fn content_encoding_is_refused() {
    let schema = Schema::get().expect("schema");
    let desc = schema.message(UNKNOWN).expect("Unknown");
    let mut unknown =
        DynamicMessage::decode(desc, &envelope("coordination.k8s.io/v1", "Lease", Vec::new())[4..]).expect("envelope");
    unknown.set_field_by_name("contentEncoding", Value::String("gzip".to_string()));
    let body = [MAGIC.as_slice(), &unknown.encode_to_vec()].concat();
    assert_eq!(decode(&body), Err(DecodeError::UnsupportedContentEncoding("gzip".to_string())));
}

/// A message of `name` (without package prefix) decoded from `fields` and converted to JSON.
fn wrapper_json(name: &str, fields: Json) -> Result<Json, DecodeError> {
    let schema = Schema::get().expect("schema");
    let msg = to_message(schema.message(name).expect("message"), &fields);
    crate::json::message(schema, &msg, "x")
}

#[test]
fn duration_and_raw_extension_wrappers() {
    let duration = |nanos: i64| {
        let schema = Schema::get().expect("schema");
        let mut msg = DynamicMessage::new(schema.message("apimachinery.pkg.apis.meta.v1.Duration").expect("Duration"));
        msg.set_field_by_name("duration", Value::I64(nanos));
        crate::json::message(schema, &msg, "x")
    };
    assert_eq!(duration(3_600_000_000_000), Ok(json!("1h0m0s")));
    assert_eq!(duration(1_500_000), Ok(json!("1.5ms")));
    assert_eq!(
        wrapper_json("apimachinery.pkg.runtime.RawExtension", json!({"a": [1, "b"]})),
        Ok(json!({"a": [1, "b"]}))
    );

    let schema = Schema::get().expect("schema");
    let mut raw = DynamicMessage::new(schema.message("apimachinery.pkg.runtime.RawExtension").expect("RawExtension"));
    raw.set_field_by_name("raw", Value::Bytes(b"\x0a\x01not json".to_vec().into()));
    assert!(matches!(crate::json::message(schema, &raw, "x"), Err(DecodeError::InvalidValue { .. })));
}

#[test]
fn int_or_string_both_ways() {
    assert_eq!(wrapper_json("apimachinery.pkg.util.intstr.IntOrString", json!(8080)), Ok(json!(8080)));
    assert_eq!(wrapper_json("apimachinery.pkg.util.intstr.IntOrString", json!("http")), Ok(json!("http")));
    assert_eq!(wrapper_json("apimachinery.pkg.api.resource.Quantity", json!("250m")), Ok(json!("250m")));
}
