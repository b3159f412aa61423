//! Bad input gets the right status code and message, and changes nothing.

use http::{Method, Request};
use kube::Client;
use serde_json::Value;

use crate::common::Server;

const CLUSTERS: &str = "/apis/cluster.open-cluster-management.io/v1/managedclusters";

struct Answer {
    code: u16,
    body: Value,
}

async fn send(client: &Client, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let request =
        Request::builder().method(method).uri(path).header("Content-Type", content_type).body(body).expect("request");
    let response = client.send(request.map(kube::client::Body::from)).await.expect("transport");
    let code = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { code, body }
}

/// The store revision seen by a cluster-wide list; unchanged means nothing was written.
async fn revision(client: &Client) -> String {
    let answer = send(client, Method::GET, "/api/v1/namespaces", "application/json", vec![]).await;
    answer.body["metadata"]["resourceVersion"].as_str().expect("list resourceVersion").to_string()
}

/// Waits until the hub's registration controllers are done with the accepted cluster "ok"
/// (its namespace, its acceptance condition, the default and global sets counting it), so
/// that their writes are not mistaken for writes by bad requests.
async fn registration_settled(client: &Client) {
    let has_condition = |body: &Value, type_: &str, status: &str| {
        body["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == type_ && c["status"] == status))
    };
    let sets = "/apis/cluster.open-cluster-management.io/v1beta2/managedclustersets";
    for _ in 0..300 {
        let namespace = send(client, Method::GET, "/api/v1/namespaces/ok", "application/json", vec![]).await;
        let cluster = send(client, Method::GET, &format!("{CLUSTERS}/ok"), "application/json", vec![]).await;
        let default = send(client, Method::GET, &format!("{sets}/default"), "application/json", vec![]).await;
        let global = send(client, Method::GET, &format!("{sets}/global"), "application/json", vec![]).await;
        if namespace.code == 200
            && has_condition(&cluster.body, "HubAcceptedManagedCluster", "True")
            && has_condition(&default.body, "ClusterSetEmpty", "False")
            && has_condition(&global.body, "ClusterSetEmpty", "False")
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the hub's registration controllers did not settle on the new cluster");
}

fn assert_status(answer: &Answer, code: u16, reason: &str, message_part: &str) {
    assert_eq!(answer.code, code, "{}", answer.body);
    assert_eq!(answer.body["kind"], "Status", "{}", answer.body);
    assert_eq!(answer.body["reason"], reason, "{}", answer.body);
    let message = answer.body["message"].as_str().unwrap_or_default();
    assert!(message.contains(message_part), "message {message:?} lacks {message_part:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_refused_and_change_nothing() {
    let hub = Server::hub();
    let client = hub.client().await;
    let good = br#"{"apiVersion":"cluster.open-cluster-management.io/v1","kind":"ManagedCluster","metadata":{"name":"ok"},"spec":{"hubAcceptsClient":true}}"#;
    let created = send(&client, Method::POST, CLUSTERS, "application/json", good.to_vec()).await;
    assert_eq!(created.code, 201, "{}", created.body);
    registration_settled(&client).await;
    let before = revision(&client).await;

    let answer = send(&client, Method::POST, CLUSTERS, "application/json", b"{\"apiVersion\": ".to_vec()).await;
    assert_status(&answer, 400, "BadRequest", "not valid JSON");

    let answer =
        send(&client, Method::POST, CLUSTERS, "application/yaml", b"metadata: [unclosed\n  name: x".to_vec()).await;
    assert_status(&answer, 400, "BadRequest", "not valid YAML");

    let answer = send(
        &client,
        Method::POST,
        "/apis/example.com/v1/namespaces/default/gizmos",
        "application/json",
        good.to_vec(),
    )
    .await;
    assert_status(&answer, 404, "NotFound", "could not find the requested resource");

    let wrong_version = String::from_utf8(good.to_vec()).expect("utf8").replace("/v1\"", "/v2\"");
    let answer = send(&client, Method::POST, CLUSTERS, "application/json", wrong_version.into_bytes()).await;
    assert_status(&answer, 400, "BadRequest", "does not match the expected API version");

    let bad_name = String::from_utf8(good.to_vec()).expect("utf8").replace("\"ok\"", "\"Not_Valid\"");
    let answer = send(&client, Method::POST, CLUSTERS, "application/json", bad_name.into_bytes()).await;
    assert_status(&answer, 422, "Invalid", "metadata.name");
    assert_eq!(answer.body["details"]["causes"][0]["field"], "metadata.name", "{}", answer.body);

    let mut huge = br#"{"apiVersion":"cluster.open-cluster-management.io/v1","kind":"ManagedCluster","metadata":{"name":"big","annotations":{"a":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 17 * 1024 * 1024));
    huge.extend(br#""}}}"#);
    let answer = send(&client, Method::POST, CLUSTERS, "application/json", huge).await;
    assert_status(&answer, 413, "RequestEntityTooLarge", "too large");

    let stale = br#"{"apiVersion":"cluster.open-cluster-management.io/v1","kind":"ManagedCluster","metadata":{"name":"ok","resourceVersion":"1"},"spec":{"hubAcceptsClient":false}}"#;
    let answer = send(&client, Method::PUT, &format!("{CLUSTERS}/ok"), "application/json", stale.to_vec()).await;
    assert_status(&answer, 409, "Conflict", "the object has been modified");

    let answer = send(
        &client,
        Method::PATCH,
        &format!("{CLUSTERS}/missing"),
        "application/merge-patch+json",
        b"{\"spec\":{}}".to_vec(),
    )
    .await;
    assert_status(&answer, 404, "NotFound", "managedclusters.cluster.open-cluster-management.io \"missing\" not found");

    let answer = send(
        &client,
        Method::PATCH,
        &format!("{CLUSTERS}/ok"),
        "application/json-patch+json",
        br#"[{"op":"replace","path":"/spec/nothere/x","value":1}]"#.to_vec(),
    )
    .await;
    assert_eq!(answer.code, 422, "{}", answer.body);

    let answer = send(&client, Method::PATCH, &format!("{CLUSTERS}/ok"), "text/plain", b"{}".to_vec()).await;
    assert_status(&answer, 415, "UnsupportedMediaType", "unknown format");

    let answer =
        send(&client, Method::GET, &format!("{CLUSTERS}?labelSelector=a%20in%20(b"), "application/json", vec![]).await;
    assert_eq!(answer.code, 400, "{}", answer.body);

    assert_eq!(revision(&client).await, before, "no bad request wrote anything");
    let answer = send(&client, Method::GET, &format!("{CLUSTERS}/ok"), "application/json", vec![]).await;
    assert_eq!(answer.body["spec"]["hubAcceptsClient"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_with_an_invalid_resource_version_is_rejected() {
    let hub = Server::hub();
    let client = hub.client().await;
    let answer =
        send(&client, Method::GET, &format!("{CLUSTERS}?watch=true&resourceVersion=abc"), "application/json", vec![])
            .await;
    assert_status(&answer, 400, "BadRequest", "resourceVersion");
}
