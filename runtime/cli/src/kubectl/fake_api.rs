//! A small in-memory Kubernetes-style API behind `kube::Client`, for testing the commands'
//! requests and output without a server: discovery, get/list (plain or Table), watch,
//! server-side apply (PATCH), delete, and Status errors.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use kube::client::Body;
use serde_json::{Value, json};

use super::session::{Captured, Io, Session};

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub accept: String,
    pub content_type: String,
    pub body: String,
}

impl Seen {
    pub fn param(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
    }
}

#[derive(Default)]
struct State {
    /// (group, plural, namespace, name, object)
    objects: Vec<(String, String, String, String, Value)>,
    seen: Vec<Seen>,
    next_rv: u64,
    /// Objects (as JSON lines) to stream to a watch before ending it with 410 Gone.
    watch_events: Vec<Value>,
}

#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

/// Where a path points: group ("" for core), namespace, plural, name.
fn parse_path(path: &str) -> Option<(String, Option<String>, String, Option<String>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _v, rest @ ..] => (String::new(), rest),
        ["apis", g, _v, rest @ ..] => (g.to_string(), rest),
        _ => return None,
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    match rest {
        [plural] => Some((group, ns, plural.to_string(), None)),
        [plural, name] => Some((group, ns, plural.to_string(), Some(name.to_string()))),
        _ => None,
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn discovery(path: &str) -> Option<Value> {
    let r = |name: &str, kind: &str, namespaced: bool, short: &[&str]| {
        json!({"name": name, "singularName": kind.to_lowercase(), "kind": kind,
               "namespaced": namespaced, "shortNames": short, "verbs": ["get", "list", "watch", "patch", "delete"]})
    };
    let group = |name: &str| {
        json!({"name": name, "versions": [{"groupVersion": format!("{name}/v1"), "version": "v1"}],
               "preferredVersion": {"groupVersion": format!("{name}/v1"), "version": "v1"}})
    };
    Some(match path {
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        "/api/v1" => json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            r("namespaces", "Namespace", false, &["ns"]),
            r("namespaces/status", "Namespace", false, &[]),
            r("events", "Event", true, &["ev"]),
        ]}),
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            group("cluster.open-cluster-management.io"),
            group("work.open-cluster-management.io"),
        ]}),
        "/apis/cluster.open-cluster-management.io/v1" => json!({"kind": "APIResourceList",
            "groupVersion": "cluster.open-cluster-management.io/v1", "resources": [
            r("managedclusters", "ManagedCluster", false, &["mcl", "mcls"]),
        ]}),
        "/apis/work.open-cluster-management.io/v1" => json!({"kind": "APIResourceList",
            "groupVersion": "work.open-cluster-management.io/v1", "resources": [
            r("manifestworks", "ManifestWork", true, &["mw"]),
        ]}),
        _ => return None,
    })
}

/// A Table as the hub prints one: ManifestWorks have no printer columns (NAME and AGE), the
/// rest the columns of a ManagedCluster. `include_object` as the `includeObject` parameter.
fn table(plural: &str, objects: &[Value], rv: &str, include_object: &str) -> Value {
    let works = plural == "manifestworks";
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells = if works {
                json!([o["metadata"]["name"], o["metadata"]["creationTimestamp"]])
            } else {
                json!([
                    o["metadata"]["name"],
                    o.pointer("/status/available").cloned().unwrap_or(Value::Null),
                    o["metadata"]["creationTimestamp"],
                    o.pointer("/spec/url").cloned().unwrap_or(Value::Null),
                ])
            };
            let object = if include_object == "Object" {
                o.clone()
            } else {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    let column = |name: &str, type_: &str, format: &str, priority: i64| json!({"name": name, "type": type_, "format": format, "description": "", "priority": priority});
    let columns = if works {
        json!([column("Name", "string", "name", 0), column("Age", "date", "", 0)])
    } else {
        json!([
            column("Name", "string", "name", 0),
            column("Available", "string", "", 0),
            column("Age", "date", "", 0),
            column("URL", "string", "", 1),
        ])
    };
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

impl FakeApi {
    /// Adds an object (group "" for core).
    pub fn insert(&self, group: &str, plural: &str, obj: Value) {
        let mut st = self.state.lock().unwrap();
        st.next_rv += 1;
        let mut obj = obj;
        let rv = st.next_rv.to_string();
        obj["metadata"]["resourceVersion"] = json!(rv);
        obj["metadata"]["uid"] = json!(format!("uid-{rv}"));
        if obj["metadata"]["creationTimestamp"].is_null() {
            obj["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        st.objects.retain(|(g, p, n, nm, _)| !(g == group && p == plural && *n == ns && *nm == name));
        st.objects.push((group.into(), plural.into(), ns, name, obj));
    }

    /// Events served to the next watch, before a 410 ends it.
    pub fn set_watch_events(&self, events: Vec<Value>) {
        self.state.lock().unwrap().watch_events = events;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn object(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        let st = self.state.lock().unwrap();
        st.objects
            .iter()
            .find(|(g, p, n, nm, _)| g == group && p == plural && n == ns && nm == name)
            .map(|(_, _, _, _, o)| o.clone())
    }

    /// A session talking to this fake, with captured output.
    pub fn session(&self) -> (Session, Arc<Mutex<Captured>>) {
        let api = self.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.handle(req).await) }
        });
        let client = kube::Client::new(service, "default");
        let captured = Arc::new(Mutex::new(Captured::default()));
        let session = Session::with_client(client, "default", Io::Capture(captured.clone()));
        (session, captured)
    }

    async fn handle(&self, req: Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let header = |name: http::header::HeaderName| {
            parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
        };
        let seen = Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            accept: header(http::header::ACCEPT),
            content_type: header(http::header::CONTENT_TYPE),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        self.state.lock().unwrap().seen.push(seen.clone());
        if let Some(doc) = discovery(&seen.path) {
            return json_response(200, &doc);
        }
        let Some((group, ns, plural, name)) = parse_path(&seen.path) else {
            return json_response(404, &status(404, "NotFound", "the server could not find the requested resource"));
        };
        let wants_table = seen.accept.starts_with("application/json;as=Table");
        let include_object = seen.param("includeObject").unwrap_or_default();
        let not_found = |name: &str| {
            let gr = if group.is_empty() { plural.clone() } else { format!("{plural}.{group}") };
            json_response(404, &status(404, "NotFound", &format!("{gr} \"{name}\" not found")))
        };
        let mut st = self.state.lock().unwrap();
        let matches =
            |g: &str, p: &str, n: &str| g == group && p == plural && ns.as_deref().is_none_or(|want| want == n);
        match (seen.method.as_str(), name) {
            ("GET", None) if seen.param("watch").as_deref() == Some("true") => {
                let mut lines = String::new();
                for ev in std::mem::take(&mut st.watch_events) {
                    let object =
                        if wants_table { table(&plural, std::slice::from_ref(&ev), "99", &include_object) } else { ev };
                    lines.push_str(&json!({"type": "ADDED", "object": object}).to_string());
                    lines.push('\n');
                }
                lines.push_str(
                    &json!({"type": "ERROR", "object": status(410, "Expired", "too old resource version")}).to_string(),
                );
                lines.push('\n');
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from(lines.into_bytes()))
                    .unwrap()
            }
            ("GET", None) => {
                let selector = seen.param("labelSelector").unwrap_or_default();
                // Only `metadata.name=` and `metadata.namespace=` field selectors.
                let fields = seen.param("fieldSelector").unwrap_or_default();
                let items: Vec<Value> = st
                    .objects
                    .iter()
                    .filter(|(g, p, n, _, _)| matches(g, p, n))
                    .map(|(_, _, _, _, o)| o.clone())
                    .filter(|o| {
                        selector.split(',').filter(|s| !s.is_empty()).all(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            o.pointer(&format!("/metadata/labels/{k}")).and_then(Value::as_str) == Some(v)
                        })
                    })
                    .filter(|o| {
                        fields.split(',').filter(|s| !s.is_empty()).all(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            o.pointer(&format!("/{}", k.replace('.', "/"))).and_then(Value::as_str) == Some(v)
                        })
                    })
                    .collect();
                let rv = st.next_rv.to_string();
                if wants_table {
                    json_response(200, &table(&plural, &items, &rv, &include_object))
                } else {
                    json_response(
                        200,
                        &json!({"kind": "List", "apiVersion": "v1",
                        "metadata": {"resourceVersion": rv}, "items": items}),
                    )
                }
            }
            ("GET", Some(name)) => {
                let found = st
                    .objects
                    .iter()
                    .find(|(g, p, n, nm, _)| matches(g, p, n) && *nm == name)
                    .map(|(_, _, _, _, o)| o.clone());
                match found {
                    Some(o) if wants_table => {
                        let rv = o["metadata"]["resourceVersion"].as_str().unwrap_or("").to_string();
                        json_response(200, &table(&plural, &[o], &rv, &include_object))
                    }
                    Some(o) => json_response(200, &o),
                    None => not_found(&name),
                }
            }
            ("PATCH", Some(name)) => {
                let mut obj: Value = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => return json_response(400, &status(400, "BadRequest", &e.to_string())),
                };
                if obj.pointer("/metadata/labels/conflict").is_some() && seen.param("force").is_none() {
                    return json_response(
                        409,
                        &status(409, "Conflict", "Apply failed with 1 conflict: conflict with \"other\": .spec.x"),
                    );
                }
                st.next_rv += 1;
                let rv = st.next_rv.to_string();
                obj["metadata"]["resourceVersion"] = json!(rv);
                obj["metadata"]["uid"] = json!(format!("uid-{rv}"));
                let n = ns.clone().unwrap_or_default();
                st.objects.retain(|(g, p, o_ns, nm, _)| !(*g == group && *p == plural && *o_ns == n && *nm == name));
                st.objects.push((group.clone(), plural.clone(), n, name, obj.clone()));
                json_response(200, &obj)
            }
            ("DELETE", Some(name)) => {
                let pos = st.objects.iter().position(|(g, p, n, nm, _)| matches(g, p, n) && *nm == name);
                match pos {
                    Some(i) => {
                        let (_, _, _, _, o) = st.objects.remove(i);
                        json_response(200, &o)
                    }
                    None => not_found(&name),
                }
            }
            _ => json_response(405, &status(405, "MethodNotAllowed", "not supported by the fake")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/api/v1/namespaces/x"),
            Some((String::new(), None, "namespaces".into(), Some("x".into())))
        );
        assert_eq!(
            parse_path("/api/v1/namespaces/x/events"),
            Some((String::new(), Some("x".into()), "events".into(), None))
        );
        assert_eq!(
            parse_path("/apis/g/v1/namespaces/ns/works/w"),
            Some(("g".into(), Some("ns".into()), "works".into(), Some("w".into())))
        );
    }
}
