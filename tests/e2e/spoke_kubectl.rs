//! kubectl against the simulated spoke: it looks and behaves like a fresh cluster.

use std::time::Duration;

use serde_json::Value;

use crate::common::{Server, eventually, stderr};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
"#;

#[test]
fn spoke_starts_like_a_fresh_cluster() {
    let spoke = Server::spoke();
    let namespaces = spoke.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    for ns in ["default", "kube-system", "kube-public"] {
        assert!(namespaces.contains(&format!("namespace/{ns}")), "{namespaces}");
    }
    let nodes = json(&spoke.kubectl_ok(&["get", "nodes", "-o", "json"]));
    let nodes = nodes["items"].as_array().expect("items");
    assert!(!nodes.is_empty());
    assert!(nodes[0]["status"]["capacity"]["cpu"].is_string());
    assert!(nodes[0]["status"]["allocatable"]["memory"].is_string());
    let version = json(&spoke.kubectl_ok(&["version", "-o", "json"]));
    assert!(version["serverVersion"]["gitVersion"].as_str().is_some_and(|v| v.starts_with("v1.")));
    let resources = spoke.kubectl_ok(&["api-resources"]);
    for r in [
        "deployments",
        "configmaps",
        "secrets",
        "customresourcedefinitions",
        "jobs",
        "appliedmanifestworks",
        "clusterclaims",
    ] {
        assert!(resources.contains(r), "{r} missing:\n{resources}");
    }
}

#[test]
fn spoke_serves_builtin_kinds_with_cluster_behaviour() {
    let spoke = Server::spoke();
    let out = spoke.kubectl_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    assert!(out.status.success(), "{}", stderr(&out));
    // Strategic merge: a container is patched by name, the other one stays.
    spoke.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}"#,
    ]);
    let deploy = json(&spoke.kubectl_ok(&["get", "deployment", "web", "-o", "json"]));
    let containers = deploy["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 2, "{containers:?}");
    assert_eq!(containers[0]["image"], "nginx:1.28");
    spoke.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"]);
    spoke.kubectl_ok(&["get", "deployments", "-o", "wide"]);

    // Secret stringData becomes data.
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s2\n  namespace: default\nstringData:\n  password: hunter2\n";
    let out = spoke.kubectl_stdin(&["apply", "-f", "-"], secret);
    assert!(out.status.success(), "{}", stderr(&out));
    let s2 = json(&spoke.kubectl_ok(&["get", "secret", "s2", "-o", "json"]));
    assert_eq!(s2["data"]["password"], "aHVudGVyMg==");
    assert!(s2.get("stringData").is_none());

    // Namespaced objects need their namespace.
    let out =
        spoke.kubectl_stdin(&["create", "-f", "-"], &DEPLOYMENT.replace("namespace: default", "namespace: missing"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("namespaces \"missing\" not found"), "{}", stderr(&out));

    let configmap =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  mode: fast\n";
    let out = spoke.kubectl_stdin(&["create", "-f", "-"], configmap);
    assert!(out.status.success(), "{}", stderr(&out));
    spoke.kubectl_ok(&["delete", "configmap", "settings"]);
}

#[test]
fn spoke_installs_crds_and_serves_their_kinds() {
    let spoke = Server::spoke();
    let crd = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
"#;
    let out = spoke.kubectl_stdin(&["apply", "-f", "-"], crd);
    assert!(out.status.success(), "{}", stderr(&out));
    let established = eventually(Duration::from_secs(20), || {
        let out = spoke.kubectl(&["get", "widgets"]);
        out.status.success().then_some(())
    });
    assert!(established.is_some(), "the CRD's kind is served");
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: default\nspec:\n  size: 3\n";
    let out = spoke.kubectl_stdin(&["apply", "-f", "-"], widget);
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = widget.replace("size: 3", "size: 0");
    let out = spoke.kubectl_stdin(&["apply", "-f", "-"], &bad.replace("w1", "w2"));
    assert!(!out.status.success(), "schema minimum is enforced");
    assert!(stderr(&out).contains("spec.size"), "{}", stderr(&out));
    spoke.kubectl_ok(&["get", "wd", "w1", "-o", "yaml"]);
}
