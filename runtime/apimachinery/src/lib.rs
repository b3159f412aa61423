//! Kubernetes API machinery as pure functions over JSON objects: resource
//! definitions, Status errors, selectors, patches, server-side apply, structural
//! schema validation and table printing. No I/O lives here; the API server and the
//! simulated spoke build on it.

pub mod merge_schema;
pub mod resource;
pub mod status;

pub use merge_schema::{AtomicLists, ListType, MergeStrategy};
pub use resource::{NameFormat, PrinterColumn, ResourceDef};
pub use status::{ApiError, CauseType, FieldError};
