//! Kubernetes API machinery as pure functions over JSON objects: resource
//! definitions, Status errors, selectors, patches, server-side apply, structural
//! schema validation and table printing. No I/O lives here; the API server and the
//! simulated spoke build on it.

pub mod apply;
pub mod cel;
pub mod crd;
pub mod jsonpath;
pub mod merge_schema;
pub mod names;
pub mod patch;
pub mod resource;
pub mod schema;
pub mod selector;
pub mod status;
pub mod table;

pub use jsonpath::JsonPath;
pub use merge_schema::{AtomicLists, ListType, MergeStrategy};
pub use resource::{NameFormat, PrinterColumn, ResourceDef, ScaleSubresource};
pub use schema::Schema;
pub use status::{ApiError, CauseType, FieldError};

/// What kind of JSON value this is, for messages ("expected an object, found a list").
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
