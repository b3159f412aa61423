//! Admission: per-server mutation and validation of writes, beyond the schema.

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
