//! Admission: per-server mutation and validation of writes, beyond the schema.

use async_trait::async_trait;
use flotilla_apimachinery::ApiError;
use serde_json::Value;

use crate::registry::Resource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// A hook that sees every write before it is validated and stored. It may change
/// the object (mutation) or refuse the write with an error the client receives.
pub trait Admission: Send + Sync + 'static {
    fn admit(&self, res: &Resource, op: Operation, obj: &mut Value, old: Option<&Value>) -> Result<(), ApiError>;
}

/// A validating hook that may take its time (read files, run blocking work on
/// `spawn_blocking`), as Kubernetes' validating admission webhooks do. It runs on creates and
/// updates after the [`Admission`] hooks, pruning, defaulting and schema validation, so it
/// sees the object as it would be stored; it runs only when an update changes the object,
/// and on dry runs too. It cannot change the object.
#[async_trait]
pub trait ValidatingAdmission: Send + Sync + 'static {
    async fn validate(&self, res: &Resource, op: Operation, obj: &Value, old: Option<&Value>) -> Result<(), ApiError>;
}
