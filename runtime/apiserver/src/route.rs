//! Maps a request path onto what it addresses: discovery documents or a resource.

use std::sync::Arc;

use crate::registry::{Registry, Resource};

/// A path under `/api/v1` or `/apis/GROUP/VERSION` naming a resource.
#[derive(Debug, Clone)]
pub struct ResourcePath {
    pub resource: Arc<Resource>,
    /// Set for namespaced requests (`.../namespaces/NS/PLURAL...`).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Route {
    Health,
    Version,
    CoreVersions,
    Groups,
    Group(String),
    ResourceList { group: String, version: String },
    OpenApiV2,
    OpenApiV3Root,
    OpenApiV3 { group: String, version: String },
    Metrics,
    Resource(ResourcePath),
    NotFound,
}

pub fn route(registry: &Registry, path: &str) -> Route {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["version"] => Route::Version,
        ["metrics"] => Route::Metrics,
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Root,
        ["openapi", "v3", "api", version] => Route::OpenApiV3 { group: String::new(), version: version.to_string() },
        ["openapi", "v3", "apis", group, version] => {
            Route::OpenApiV3 { group: group.to_string(), version: version.to_string() }
        }
        ["api"] => Route::CoreVersions,
        ["api", version] => Route::ResourceList { group: String::new(), version: version.to_string() },
        ["api", version, rest @ ..] => resource_route(registry, "", version, rest),
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["apis", group, version] => Route::ResourceList { group: group.to_string(), version: version.to_string() },
        ["apis", group, version, rest @ ..] => resource_route(registry, group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(registry: &Registry, group: &str, version: &str, rest: &[&str]) -> Route {
    // `namespaces/NS/PLURAL[/NAME[/SUB]]` when PLURAL is a namespaced resource; otherwise
    // the path addresses the Namespace object itself (`namespaces/NAME/status`).
    if let ["namespaces", namespace, plural, tail @ ..] = rest
        && let Some(resource) = registry.get(group, version, plural)
        && resource.def.namespaced
    {
        if tail.len() > 2 {
            return Route::NotFound;
        }
        return Route::Resource(ResourcePath {
            resource,
            namespace: Some(namespace.to_string()),
            name: tail.first().map(|s| s.to_string()),
            subresource: tail.get(1).map(|s| s.to_string()),
        });
    }
    let [plural, tail @ ..] = rest else { return Route::NotFound };
    let Some(resource) = registry.get(group, version, plural) else { return Route::NotFound };
    if tail.len() > 2 || (resource.def.namespaced && !tail.is_empty()) {
        return Route::NotFound;
    }
    Route::Resource(ResourcePath {
        resource,
        namespace: None,
        name: tail.first().map(|s| s.to_string()),
        subresource: tail.get(1).map(|s| s.to_string()),
    })
}
