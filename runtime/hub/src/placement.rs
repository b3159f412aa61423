//! Placement scheduling on the hub: `GET /debug/placements/<namespace>/<name>` (as OCM's
//! placement controller serves on its own port) answers what the scheduler decides for a
//! Placement now and why: per cluster, which filter removed it and the reason, and each
//! prioritizer's score and weight (`flotilla placement explain` prints it). Admins only:
//! authorization goes through the hub's authorizer as the non-resource path, like `/blobs/`.
//!
//! The endpoint is mounted before the server starts and the controller after (it needs the
//! storage), so the explainer is handed over through a [`OnceLock`]; until then the endpoint
//! answers 503.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use flotilla_apimachinery::ApiError;
use flotilla_apiserver::http::{Body, full};
use flotilla_apiserver::{ApiServer, Attributes, Endpoint, UserInfo};
use flotilla_placement::controller::PlacementExplainer;
use http::{HeaderValue, Method, Request, Response, header};
use hyper::body::Incoming;

/// Where the placement debug endpoint is served.
pub const DEBUG_PREFIX: &str = "/debug/placements/";

/// `GET /debug/placements/<namespace>/<name>`.
pub struct PlacementDebugEndpoint {
    explainer: Arc<OnceLock<PlacementExplainer>>,
}

impl PlacementDebugEndpoint {
    pub fn new(explainer: Arc<OnceLock<PlacementExplainer>>) -> PlacementDebugEndpoint {
        PlacementDebugEndpoint { explainer }
    }
}

/// The namespace and name in `/debug/placements/<namespace>/<name>`.
fn parse_path(path: &str) -> Option<(&str, &str)> {
    let (ns, name) = path.strip_prefix(DEBUG_PREFIX)?.split_once('/')?;
    let ok = |s: &str| !s.is_empty() && !s.contains('/');
    (ok(ns) && ok(name)).then_some((ns, name))
}

#[async_trait]
impl Endpoint for PlacementDebugEndpoint {
    fn prefix(&self) -> &str {
        DEBUG_PREFIX
    }

    async fn serve(
        &self,
        api: &ApiServer,
        user: &UserInfo,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, ApiError> {
        let path = req.uri().path().to_string();
        if req.method() != Method::GET {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow {} on {path}: placement explanations are read with GET",
                req.method()
            )));
        }
        api.authorize(user, &Attributes::non_resource("get", &path)).await?;
        let Some((namespace, name)) = parse_path(&path) else {
            return Err(ApiError::bad_request(format!("{path}: expected {DEBUG_PREFIX}<namespace>/<placement name>")));
        };
        let Some(explainer) = self.explainer.get() else {
            return Err(ApiError::service_unavailable("the placement controller is starting; try again"));
        };
        let explanation = explainer.explain(namespace, name).await?;
        let body = serde_json::to_vec(&explanation)
            .map_err(|e| ApiError::internal(format!("the explanation does not serialize: {e}")))?;
        let mut response = Response::new(full(body));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_one_placement() {
        assert_eq!(parse_path("/debug/placements/apps/web"), Some(("apps", "web")));
        for bad in
            ["/debug/placements/apps", "/debug/placements/apps/", "/debug/placements//web", "/debug/placements/a/b/c"]
        {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
    }
}
