//! The HTTP face of the API server: decodes Kubernetes REST requests, authenticates
//! and authorizes them, dispatches to the storage, and encodes responses (JSON,
//! Tables for kubectl, newline-delimited watch streams).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flotilla_apimachinery::ApiError;
use flotilla_apimachinery::selector::{FieldSelector, LabelSelector};
use flotilla_apimachinery::table::{IncludeObject, to_table};
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};

use crate::auth::{Attributes, ClientCert, Decision, UserInfo};
use crate::objects::meta;
use crate::route::{ResourcePath, Route, route};
use crate::scale::ScaleWrite;
use crate::storage::{DeleteOptions, FieldValidation, ListOptions, Patch, PatchType, Propagation, WriteOptions};
use crate::watch::WatchOptions;
use crate::{ApiServer, openapi};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn json_response(status: StatusCode, value: &Value, warnings: &[String]) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "'"));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("Warning", value);
        }
    }
    response
}

pub fn error_response(err: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &err.to_status(), &[]);
    if let Some(secs) = err.retry_after_seconds
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if err.code == 401 {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"flotilla\""));
    }
    response
}

/// Query parameters of one request (the last value of a repeated key wins).
struct Query(HashMap<String, String>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        Query(form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("{key}: Invalid value: \"{v}\": must be a non-negative integer"))
            }),
        }
    }
}

/// How the caller wants the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Table(IncludeObject),
}

fn wants(headers: &http::HeaderMap, query: &Query) -> Format {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    // kubectl lists Table first and plain JSON as a fallback; honour the first choice.
    let first_table = accept.split(',').next().is_some_and(|choice| choice.contains("as=Table"));
    if first_table { Format::Table(IncludeObject::parse(query.get("includeObject"))) } else { Format::Json }
}

impl ApiServer {
    /// Serves one request from an already authenticated-by-TLS (or anonymous) peer.
    pub async fn handle(&self, req: Request<Incoming>, cert: ClientCert) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let response = match self.dispatch(req, cert).await {
            Ok(response) => response,
            Err(err) => error_response(&err),
        };
        let status = response.status().as_u16();
        self.metrics.observe_request(method.as_str(), status, started.elapsed());
        tracing::debug!(%method, %path, status, elapsed_ms = started.elapsed().as_millis() as u64, "request");
        response
    }

    async fn authenticate(&self, headers: &http::HeaderMap, cert: ClientCert) -> Result<Option<UserInfo>, ApiError> {
        match cert {
            ClientCert::Verified(user) => return Ok(Some(user)),
            ClientCert::Rejected(reason) => {
                return Err(ApiError::unauthorized(format!(
                    "Unauthorized: the client certificate is not valid: {reason}"
                )));
            }
            ClientCert::None => {}
        }
        let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Ok(None);
        };
        let Some(token) = auth.strip_prefix("Bearer ").map(str::trim) else {
            return Err(ApiError::unauthorized(
                "Unauthorized: unsupported Authorization scheme (use a client certificate or a Bearer token)",
            ));
        };
        for authenticator in &self.tokens {
            if let Some(user) = authenticator.authenticate(token).await? {
                return Ok(Some(user));
            }
        }
        Err(ApiError::unauthorized("Unauthorized: the bearer token is not valid"))
    }

    async fn dispatch(&self, req: Request<Incoming>, cert: ClientCert) -> Result<Response<Body>, ApiError> {
        let route = route(&self.storage.registry, req.uri().path());
        if matches!(route, Route::Health) {
            let mut response = Response::new(full("ok"));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return Ok(response);
        }
        let Some(user) = self.authenticate(req.headers(), cert).await? else {
            return Err(ApiError::unauthorized("Unauthorized"));
        };
        let query = Query::parse(req.uri().query());
        let ok = |v: Value| Ok(json_response(StatusCode::OK, &v, &[]));
        if matches!(route, Route::NotFound) {
            let path = req.uri().path();
            if let Some(endpoint) = self.endpoints.iter().find(|e| path.starts_with(e.prefix())).cloned() {
                return crate::auth::with_request_user(user.clone(), endpoint.serve(self, &user, req)).await;
            }
            return Err(ApiError::path_not_found(path));
        }
        if !matches!(route, Route::Resource(_)) && req.method() != Method::GET {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on {}",
                req.uri().path()
            )));
        }
        match route {
            Route::Health => unreachable!("handled above"),
            Route::Version => ok(self.config.version.clone()),
            Route::CoreVersions => ok(self.storage.registry.core_versions_doc(&self.config.server_address)),
            Route::Groups => ok(self.storage.registry.group_list_doc()),
            Route::Group(group) => {
                if self.storage.registry.group_versions(&group).is_empty() {
                    return Err(ApiError::path_not_found(req.uri().path()));
                }
                ok(self.storage.registry.group_doc(&group))
            }
            Route::ResourceList { group, version } => match self.storage.registry.resource_list_doc(&group, &version) {
                Some(doc) => ok(doc),
                None => Err(ApiError::path_not_found(req.uri().path())),
            },
            Route::OpenApiV2 => Err(ApiError::path_not_found(req.uri().path())),
            Route::OpenApiV3Root => ok(openapi::v3_root(&self.storage.registry)),
            Route::OpenApiV3 { group, version } => {
                match openapi::v3_group_version(&self.storage.registry, &group, &version) {
                    Some(doc) => ok(doc),
                    None => Err(ApiError::path_not_found(req.uri().path())),
                }
            }
            Route::Metrics => {
                // As kube-apiserver: authenticated, and authorized as the non-resource URL.
                self.authorize(&user, &Attributes::non_resource("get", "/metrics")).await?;
                let mut response = Response::new(full(self.metrics.render()));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
                Ok(response)
            }
            Route::NotFound => unreachable!("handled above"),
            Route::Resource(target) => {
                crate::auth::with_request_user(user.clone(), self.resource_request(req, target, query, user)).await
            }
        }
    }

    async fn resource_request(
        &self,
        req: Request<Incoming>,
        target: ResourcePath,
        query: Query,
        user: UserInfo,
    ) -> Result<Response<Body>, ApiError> {
        let res = target.resource.clone();
        let ns = target.namespace.clone();
        let name = target.name.clone();
        let sub = target.subresource.clone();
        if let Some(sub) = &sub
            && crate::storage::subresource_part(&res.def, sub).is_none()
            && !(sub == "scale" && res.def.scale.is_some())
            && !(sub == "finalize" && res.def.kind == "Namespace" && res.def.group.is_empty())
        {
            return Err(ApiError::path_not_found(req.uri().path()));
        }
        let method = req.method().clone();
        let watch = query.flag("watch");
        let verb = match (&method, name.is_some()) {
            (&Method::GET, true) => "get",
            (&Method::GET, false) if watch => "watch",
            (&Method::GET, false) => "list",
            (&Method::POST, false) => "create",
            (&Method::PUT, true) => "update",
            (&Method::PATCH, true) => "patch",
            (&Method::DELETE, true) => "delete",
            (&Method::DELETE, false) => "deletecollection",
            _ => {
                return Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource ({method} {})",
                    req.uri().path()
                )));
            }
        };
        let attrs = Attributes {
            verb: verb.to_string(),
            group: res.def.group.clone(),
            resource: res.def.plural.clone(),
            subresource: sub.clone().unwrap_or_default(),
            namespace: ns.clone().unwrap_or_default(),
            name: name.clone().unwrap_or_default(),
        };
        if let Decision::Deny(reason) = self.authorizer.authorize(&user, &attrs).await {
            return Err(attrs.forbidden(&user, &reason));
        }
        let format = wants(req.headers(), &query);
        let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string();
        let write_opts = |query: &Query| -> Result<WriteOptions, ApiError> {
            Ok(WriteOptions {
                dry_run: dry_run(query)?,
                field_manager: field_manager(query, &user_agent)?,
                field_validation: FieldValidation::parse(query.get("fieldValidation"))?,
                force: query.flag("force"),
            })
        };
        let storage = &self.storage;
        if sub.as_deref() == Some("scale") {
            let name = name.as_deref().unwrap_or_default();
            let written = match verb {
                "get" => {
                    return Ok(json_response(
                        StatusCode::OK,
                        &storage.get_scale(&res, ns.as_deref(), name).await?,
                        &[],
                    ));
                }
                "update" => {
                    let opts = write_opts(&query)?;
                    let body = self.read_body(req, &content_type).await?;
                    storage.write_scale(&res, ns.as_deref(), name, ScaleWrite::Replace(&body), &opts).await?
                }
                "patch" => {
                    let patch_type = PatchType::from_content_type(&content_type).ok_or_else(|| {
                        ApiError::unsupported_media_type(format!("unsupported patch type {content_type}"))
                    })?;
                    let opts = write_opts(&query)?;
                    let patch = self.read_body(req, &content_type).await?;
                    storage.write_scale(&res, ns.as_deref(), name, ScaleWrite::Patch(patch_type, &patch), &opts).await?
                }
                _ => {
                    return Err(ApiError::method_not_allowed(format!(
                        "{verb} is not supported on the scale subresource"
                    )));
                }
            };
            return Ok(json_response(StatusCode::OK, &written.object, &written.warnings));
        }
        match verb {
            "get" => {
                let obj = storage.get(&res, ns.as_deref(), name.as_deref().unwrap_or_default()).await?;
                self.respond_object(&res, format, StatusCode::OK, obj, &[])
            }
            "list" => {
                let opts = list_options(&query)?;
                let list_meta = |page: &crate::storage::ListPage| {
                    let mut list_meta = json!({"resourceVersion": page.resource_version.to_string()});
                    if let Some(token) = &page.continue_token {
                        list_meta["continue"] = json!(token);
                    }
                    if let Some(remaining) = page.remaining_item_count {
                        list_meta["remainingItemCount"] = json!(remaining);
                    }
                    list_meta
                };
                match format {
                    Format::Table(include) => {
                        let listed = storage.list(&res, ns.as_deref(), &opts).await?;
                        let page = crate::storage::ListPage {
                            count: listed.items.len(),
                            resource_version: listed.resource_version,
                            continue_token: listed.continue_token.clone(),
                            remaining_item_count: listed.remaining_item_count,
                        };
                        let body = to_table(&res.def, &listed.items, include, list_meta(&page));
                        Ok(json_response(StatusCode::OK, &body, &[]))
                    }
                    Format::Json => {
                        // Items are spliced in already serialized; the list is never a value tree.
                        let (items, page) = storage.list_json(&res, ns.as_deref(), &opts).await?;
                        let head = json!({"kind": res.def.list_kind, "apiVersion": res.api_version(), "metadata": list_meta(&page)});
                        let mut body = serde_json::to_vec(&head).unwrap_or_default();
                        body.pop(); // the closing brace
                        body.extend_from_slice(b",\"items\":[");
                        body.extend_from_slice(&items);
                        body.extend_from_slice(b"]}");
                        let mut response = Response::new(full(body));
                        response
                            .headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        Ok(response)
                    }
                }
            }
            "watch" => {
                let opts = WatchOptions {
                    list: list_options(&query)?,
                    allow_bookmarks: query.flag("allowWatchBookmarks"),
                    send_initial_events: query.flag("sendInitialEvents"),
                    progress_interval: self.config.bookmark_interval,
                };
                let timeout = query.number::<u64>("timeoutSeconds")?.map(Duration::from_secs);
                let stream = storage.watch(res.clone(), ns.clone(), opts).await?;
                Ok(self.watch_response(res, format, stream, timeout))
            }
            "create" => {
                let opts = write_opts(&query)?;
                let obj = self.read_body(req, &content_type).await?;
                let written = storage.create(&res, ns.as_deref(), obj, &opts).await?;
                self.respond_object(&res, format, StatusCode::CREATED, written.object, &written.warnings)
            }
            "update" => {
                let opts = write_opts(&query)?;
                let obj = self.read_body(req, &content_type).await?;
                let written = storage
                    .update(&res, ns.as_deref(), name.as_deref().unwrap_or_default(), obj, sub.as_deref(), &opts)
                    .await?;
                self.respond_object(&res, format, StatusCode::OK, written.object, &written.warnings)
            }
            "patch" => {
                let Some(patch_type) = PatchType::from_content_type(&content_type) else {
                    return Err(ApiError::unsupported_media_type(format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"
                    )));
                };
                let opts = write_opts(&query)?;
                if patch_type != PatchType::Apply && query.get("force").is_some() {
                    return Err(ApiError::bad_request(
                        "force is only valid for apply patches (application/apply-patch+yaml)",
                    ));
                }
                let patch = self.read_body(req, &content_type).await?;
                if (patch_type == PatchType::Json) != patch.is_array() {
                    return Err(ApiError::bad_request(if patch_type == PatchType::Json {
                        "a JSON patch must be an array of operations"
                    } else {
                        "the patch must be a JSON or YAML object"
                    }));
                }
                let written = storage
                    .patch(
                        &res,
                        ns.as_deref(),
                        name.as_deref().unwrap_or_default(),
                        Patch { kind: patch_type, body: &patch },
                        sub.as_deref(),
                        &opts,
                    )
                    .await?;
                let status = if written.created { StatusCode::CREATED } else { StatusCode::OK };
                self.respond_object(&res, format, status, written.object, &written.warnings)
            }
            "delete" => {
                let opts = self.delete_options(req, &query).await?;
                let name = name.as_deref().unwrap_or_default();
                let written = storage.delete(&res, ns.as_deref(), name, &opts).await?;
                let pending = meta::deletion_timestamp(&written.object).is_some()
                    && crate::storage::blocks_deletion(&res, &written.object);
                let status = if pending { StatusCode::ACCEPTED } else { StatusCode::OK };
                self.respond_object(&res, format, status, written.object, &[])
            }
            "deletecollection" => {
                let opts = self.delete_options(req, &query).await?;
                let list_opts = list_options(&query)?;
                let listed = storage
                    .list(&res, ns.as_deref(), &ListOptions { limit: None, continue_token: None, ..list_opts })
                    .await?;
                let mut deleted = Vec::new();
                for obj in listed.items {
                    match storage.delete(&res, meta::namespace(&obj), meta::name(&obj), &opts).await {
                        Ok(written) => deleted.push(written.object),
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                let body = json!({
                    "kind": res.def.list_kind,
                    "apiVersion": res.api_version(),
                    "metadata": {"resourceVersion": listed.resource_version.to_string()},
                    "items": deleted,
                });
                Ok(json_response(StatusCode::OK, &body, &[]))
            }
            _ => unreachable!("verbs are enumerated above"),
        }
    }

    fn respond_object(
        &self,
        res: &crate::registry::Resource,
        format: Format,
        status: StatusCode,
        obj: Value,
        warnings: &[String],
    ) -> Result<Response<Body>, ApiError> {
        let body = match format {
            Format::Table(include) => to_table(
                &res.def,
                std::slice::from_ref(&obj),
                include,
                json!({"resourceVersion": meta::resource_version(&obj)}),
            ),
            Format::Json => obj,
        };
        Ok(json_response(status, &body, warnings))
    }

    fn watch_response(
        &self,
        res: Arc<crate::registry::Resource>,
        format: Format,
        stream: impl futures::Stream<Item = Value> + Send + 'static,
        timeout: Option<Duration>,
    ) -> Response<Body> {
        let guard = self.metrics.watch_started();
        let events = stream.map(move |mut ev| {
            let _alive = &guard;
            if let Format::Table(include) = format
                && matches!(ev.get("type").and_then(Value::as_str), Some("ADDED" | "MODIFIED" | "DELETED"))
            {
                let obj = ev["object"].take();
                let rv = meta::resource_version(&obj).to_string();
                ev["object"] = to_table(&res.def, std::slice::from_ref(&obj), include, json!({"resourceVersion": rv}));
            }
            let mut line = serde_json::to_vec(&ev).unwrap_or_default();
            line.push(b'\n');
            Ok::<_, Infallible>(Frame::data(Bytes::from(line)))
        });
        let body: Body = match timeout {
            Some(limit) => BodyExt::boxed_unsync(StreamBody::new(events.take_until(tokio::time::sleep(limit)))),
            None => BodyExt::boxed_unsync(StreamBody::new(events)),
        };
        let mut response = Response::new(body);
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
        response
    }

    /// Reads and decodes a JSON or YAML body within the configured size limit.
    async fn read_body(&self, req: Request<Incoming>, content_type: &str) -> Result<Value, ApiError> {
        let limit = self.config.max_body_bytes;
        let mut body = req.into_body();
        let mut bytes = bytes::BytesMut::new();
        let mut received = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
            let Some(data) = frame.data_ref() else { continue };
            received = received.saturating_add(data.len());
            if received <= limit {
                bytes.extend_from_slice(data);
            } else if received > limit.saturating_mul(4) {
                // Far beyond the limit: stop reading; the connection closes.
                return Err(too_large(limit));
            }
            // Between the limit and 4x it, keep reading (and dropping) so that an
            // HTTP/1.1 client still sending receives the 413 instead of a broken pipe.
        }
        if received > limit {
            return Err(too_large(limit));
        }
        decode_body(&bytes, content_type)
    }

    async fn delete_options(&self, req: Request<Incoming>, query: &Query) -> Result<DeleteOptions, ApiError> {
        let has_body = req.headers().get(header::CONTENT_LENGTH).is_some_and(|v| v != "0")
            || req.headers().get(header::TRANSFER_ENCODING).is_some();
        let body = if has_body { self.read_body(req, "application/json").await? } else { Value::Null };
        let propagation = body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .or(query.get("propagationPolicy"))
            .map(parse_propagation)
            .transpose()?
            .or_else(|| {
                let orphan =
                    body.get("orphanDependents").and_then(Value::as_bool).or(match query.get("orphanDependents") {
                        Some("true") => Some(true),
                        Some("false") => Some(false),
                        _ => None,
                    });
                orphan.map(|o| if o { Propagation::Orphan } else { Propagation::Background })
            });
        let dry_run = dry_run(query)?
            || body.get("dryRun").and_then(Value::as_array).is_some_and(|d| d.iter().any(|v| v == "All"));
        Ok(DeleteOptions {
            dry_run,
            propagation,
            precondition_uid: body.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_string),
            precondition_resource_version: body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::too_large(format!("Request entity too large: limit is {limit} bytes"))
}

fn parse_propagation(value: &str) -> Result<Propagation, ApiError> {
    match value {
        "Orphan" => Ok(Propagation::Orphan),
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        other => Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        ))),
    }
}

/// Decodes JSON, or YAML when the content type says so or JSON parsing fails.
pub fn decode_body(bytes: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media == flotilla_kubeproto::CONTENT_TYPE {
        // kubectl's imperative commands and typed clients send built-in kinds as protobuf.
        return flotilla_kubeproto::decode(bytes)
            .map_err(|err| ApiError::bad_request(format!("the request body is not a valid protobuf object: {err}")));
    }
    let yaml_type = content_type.contains("yaml");
    let parsed = if yaml_type {
        parse_yaml(bytes)
    } else {
        serde_json::from_slice::<Value>(bytes).map_err(|e| format!("json parse error: {e}"))
    };
    let value = parsed.map_err(|detail| {
        ApiError::bad_request(format!(
            "the request body is not valid {}: {detail}",
            if yaml_type { "YAML" } else { "JSON" }
        ))
    })?;
    if !(value.is_object() || value.is_array()) {
        return Err(ApiError::bad_request("the request body must be a JSON or YAML object"));
    }
    Ok(value)
}

fn parse_yaml(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string())
}

fn dry_run(query: &Query) -> Result<bool, ApiError> {
    match query.get("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => {
            Err(ApiError::bad_request(format!("dryRun: Unsupported value: \"{other}\": supported values: \"All\"")))
        }
    }
}

/// The field manager: `fieldManager`, else the client's User-Agent up to the first '/'.
fn field_manager(query: &Query, user_agent: &str) -> Result<String, ApiError> {
    if let Some(manager) = query.get("fieldManager") {
        if manager.len() > 128 {
            return Err(ApiError::bad_request("fieldManager: Too long: may not be more than 128 bytes"));
        }
        return Ok(manager.to_string());
    }
    let prefix = user_agent.split('/').next().unwrap_or("").trim();
    let manager: String = if prefix.is_empty() { "unknown".to_string() } else { prefix.chars().take(128).collect() };
    Ok(manager)
}

fn list_options(query: &Query) -> Result<ListOptions, ApiError> {
    let label_selector = match query.get("labelSelector") {
        None | Some("") => None,
        Some(s) => Some(LabelSelector::parse(s).map_err(ApiError::bad_request)?),
    };
    let field_selector = match query.get("fieldSelector") {
        None | Some("") => None,
        Some(s) => Some(FieldSelector::parse(s).map_err(ApiError::bad_request)?),
    };
    Ok(ListOptions {
        label_selector,
        field_selector,
        limit: query.number("limit")?,
        continue_token: query.get("continue").filter(|c| !c.is_empty()).map(str::to_string),
        resource_version: query.get("resourceVersion").map(str::to_string),
    })
}
