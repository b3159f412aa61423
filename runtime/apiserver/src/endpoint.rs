//! Extra HTTP endpoints a server serves beside the resource API, on the same listener,
//! authentication and error format: the hub mounts its plugin blob store (`/blobs/`) here
//! without this crate knowing about plugins.

use async_trait::async_trait;
use flotilla_apimachinery::ApiError;
use http::{Request, Response};
use hyper::body::Incoming;

use crate::ApiServer;
use crate::auth::UserInfo;
use crate::http::Body;

/// A handler for the paths under one prefix. Requests reach it authenticated (anonymous ones
/// get 401 first) and only for paths the API itself does not serve; it authorizes them itself
/// with [`ApiServer::authorize`] (typically [`Attributes::non_resource`]), and its errors
/// become `Status` objects like the API's.
///
/// [`Attributes::non_resource`]: crate::auth::Attributes::non_resource
#[async_trait]
pub trait Endpoint: Send + Sync + 'static {
    /// The path prefix it serves, such as `/blobs/`.
    fn prefix(&self) -> &str;

    /// Serves one request from `user`.
    async fn serve(&self, api: &ApiServer, user: &UserInfo, req: Request<Incoming>)
    -> Result<Response<Body>, ApiError>;
}
