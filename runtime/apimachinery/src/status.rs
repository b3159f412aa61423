//! API errors rendered as Kubernetes `Status` objects.

use serde_json::{Value, json};

/// The `reason` of one `StatusCause`, as Kubernetes spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseType {
    FieldValueRequired,
    FieldValueInvalid,
    FieldValueNotSupported,
    FieldValueDuplicate,
    FieldValueForbidden,
    FieldValueTooLong,
    FieldValueTooMany,
    FieldValueTypeInvalid,
    FieldManagerConflict,
    UnknownField,
}

impl CauseType {
    pub fn as_str(self) -> &'static str {
        match self {
            CauseType::FieldValueRequired => "FieldValueRequired",
            CauseType::FieldValueInvalid => "FieldValueInvalid",
            CauseType::FieldValueNotSupported => "FieldValueNotSupported",
            CauseType::FieldValueDuplicate => "FieldValueDuplicate",
            CauseType::FieldValueForbidden => "FieldValueForbidden",
            CauseType::FieldValueTooLong => "FieldValueTooLong",
            CauseType::FieldValueTooMany => "FieldValueTooMany",
            CauseType::FieldValueTypeInvalid => "FieldValueTypeInvalid",
            CauseType::FieldManagerConflict => "FieldManagerConflict",
            CauseType::UnknownField => "FieldValueInvalid",
        }
    }
}

/// One problem with one field of an object. `field` is the Kubernetes field path,
/// for example `spec.predicates[0].requiredClusterSelector.labelSelector`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub cause: CauseType,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(cause: CauseType, field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { cause, field: field.into(), message: message.into() }
    }
    pub fn required(field: impl Into<String>) -> Self {
        FieldError::new(CauseType::FieldValueRequired, field, "Required value")
    }
    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl AsRef<str>) -> Self {
        FieldError::new(
            CauseType::FieldValueInvalid,
            field,
            format!("Invalid value: {}: {}", short_json(value), detail.as_ref()),
        )
    }
    pub fn not_supported(field: impl Into<String>, value: &Value, allowed: &[Value]) -> Self {
        let allowed: Vec<String> = allowed.iter().map(short_json).collect();
        FieldError::new(
            CauseType::FieldValueNotSupported,
            field,
            format!("Unsupported value: {}: supported values: {}", short_json(value), allowed.join(", ")),
        )
    }
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError::new(CauseType::FieldValueForbidden, field, format!("Forbidden: {}", detail.into()))
    }
    pub fn type_invalid(field: impl Into<String>, value: &Value, expected: &str) -> Self {
        FieldError::new(
            CauseType::FieldValueTypeInvalid,
            field,
            format!("Invalid value: {}: must be of type {expected}", short_json(value)),
        )
    }
    /// `field: message`, the form Kubernetes joins into a 422 message.
    pub fn to_message(&self) -> String {
        if self.field.is_empty() { self.message.clone() } else { format!("{}: {}", self.field, self.message) }
    }
}

fn short_json(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// An API error with everything needed to render a `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    /// Kubernetes `StatusReason`: NotFound, AlreadyExists, Conflict, Invalid, BadRequest, ...
    pub reason: &'static str,
    pub message: String,
    pub group: String,
    pub kind: String,
    pub name: String,
    pub causes: Vec<FieldError>,
    /// Seconds a client should wait before retrying (429/503/504).
    pub retry_after_seconds: Option<u32>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            group: String::new(),
            kind: String::new(),
            name: String::new(),
            causes: Vec::new(),
            retry_after_seconds: None,
        }
    }
    /// Names the object the error is about (`details.group/kind/name`).
    pub fn about(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.group = group.to_string();
        self.kind = kind.to_string();
        self.name = name.to_string();
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(401, "Unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(403, "Forbidden", message)
    }
    /// `plural.group "name" not found`, Kubernetes' wording.
    pub fn not_found(group_resource: &str, name: &str) -> Self {
        ApiError::new(404, "NotFound", format!("{group_resource} \"{name}\" not found"))
    }
    pub fn path_not_found(path: &str) -> Self {
        ApiError::new(404, "NotFound", format!("the server could not find the requested resource ({path})"))
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::new(405, "MethodNotAllowed", message)
    }
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        ApiError::new(406, "NotAcceptable", message)
    }
    pub fn already_exists(group_resource: &str, name: &str) -> Self {
        ApiError::new(409, "AlreadyExists", format!("{group_resource} \"{name}\" already exists"))
    }
    pub fn conflict(group_resource: &str, name: &str, detail: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {group_resource} \"{name}\": {detail}"),
        )
    }
    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError::new(413, "RequestEntityTooLarge", message)
    }
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        ApiError::new(415, "UnsupportedMediaType", message)
    }
    /// 422 with one cause per field error; the message lists them all, as Kubernetes does:
    /// `Kind.group "name" is invalid: [field: msg, field: msg]`.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: Vec<FieldError>) -> Self {
        let qualified = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let joined: Vec<String> = errors.iter().map(FieldError::to_message).collect();
        let list = if joined.len() == 1 { joined[0].clone() } else { format!("[{}]", joined.join(", ")) };
        let mut err = ApiError::new(422, "Invalid", format!("{qualified} \"{name}\" is invalid: {list}"));
        err.group = group.to_string();
        err.kind = kind.to_string();
        err.name = name.to_string();
        err.causes = errors;
        err
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, "InternalError", message)
    }
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        ApiError::new(503, "ServiceUnavailable", message)
    }

    /// The `Status` object (`apiVersion: v1`, `kind: Status`, `status: Failure`).
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        if !self.name.is_empty() {
            details.insert("name".into(), json!(self.name));
        }
        if !self.group.is_empty() {
            details.insert("group".into(), json!(self.group));
        }
        if !self.kind.is_empty() {
            details.insert("kind".into(), json!(self.kind));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| json!({"reason": c.cause.as_str(), "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(secs) = self.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(secs));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}
