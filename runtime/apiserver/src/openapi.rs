//! OpenAPI v3 documents generated from the registry, so clients that look up schemas
//! (kubectl's server-side field validation check, `kubectl explain`) find them.

use serde_json::{Map, Value, json};

use crate::registry::{Registry, Resource};

/// `/openapi/v3`: one entry per served group/version.
pub fn v3_root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<(String, String)> =
        registry.all().iter().map(|r| (r.def.group.clone(), r.def.version.clone())).collect();
    gvs.sort();
    gvs.dedup();
    for (group, version) in gvs {
        let path = gv_path(&group, &version);
        paths.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}")}));
    }
    json!({"paths": paths})
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

fn definition_name(res: &Resource) -> String {
    let group = if res.def.group.is_empty() { "core".to_string() } else { res.def.group.clone() };
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), res.def.version, res.def.kind)
}

/// `/openapi/v3/apis/GROUP/VERSION`: paths with the parameters clients probe for
/// (notably `fieldValidation` on PATCH) and component schemas from the CRD schemas.
pub fn v3_group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<_> =
        registry.all().into_iter().filter(|r| r.def.group == group && r.def.version == version).collect();
    if resources.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let field_validation =
        json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let dry_run = json!({"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let field_manager =
        json!({"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    for res in &resources {
        let def_name = definition_name(res);
        let mut schema = res
            .def
            .schema
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        if let Some(map) = schema.as_object_mut() {
            map.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": res.def.group, "version": res.def.version, "kind": res.def.kind}]),
            );
        }
        schemas.insert(def_name.clone(), schema);
        let reference = json!({"$ref": format!("#/components/schemas/{def_name}")});
        let gvk = json!({"group": res.def.group, "version": res.def.version, "kind": res.def.kind});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        let base = format!("/{}", gv_path(group, version));
        let collection = if res.def.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", res.def.plural)
        } else {
            format!("{base}/{}", res.def.plural)
        };
        let op = |id: &str, params: Vec<Value>| json!({"operationId": id, "parameters": params, "responses": ok, "x-kubernetes-group-version-kind": gvk});
        paths.insert(
            collection.clone(),
            json!({
                "get": op(&format!("list{}", res.def.kind), vec![]),
                "post": op(&format!("create{}", res.def.kind), vec![dry_run.clone(), field_manager.clone(), field_validation.clone()]),
            }),
        );
        let item = json!({
            "get": op(&format!("read{}", res.def.kind), vec![]),
            "put": op(&format!("replace{}", res.def.kind), vec![dry_run.clone(), field_manager.clone(), field_validation.clone()]),
            "patch": op(&format!("patch{}", res.def.kind), vec![dry_run.clone(), field_manager.clone(), field_validation.clone(), json!({"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}})]),
            "delete": op(&format!("delete{}", res.def.kind), vec![dry_run.clone()]),
        });
        paths.insert(format!("{collection}/{{name}}"), item.clone());
        if res.def.status_subresource {
            paths.insert(format!("{collection}/{{name}}/status"), item);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Flotilla", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
