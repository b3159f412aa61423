//! JSON values as CEL values, for CEL over objects without a schema (a live spoke object in
//! a ManifestWork condition rule, a ManagedCluster in a placement's `celSelector`).

use std::collections::HashMap;
use std::sync::Arc;

use cel_interpreter::Value as Cel;
use serde_json::Value;

/// Integers that fit are `int` (so `object.status.replicas == 2` holds), other numbers
/// `uint`/`double`, objects maps with string keys.
pub fn json_to_cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Cel::Int(i),
            (None, Some(u), _) => Cel::UInt(u),
            (None, None, Some(f)) => Cel::Float(f),
            (None, None, None) => Cel::Null,
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Value::Object(map) => {
            let fields: HashMap<String, Cel> = map.iter().map(|(k, v)| (k.clone(), json_to_cel(v))).collect();
            Cel::from(fields)
        }
    }
}
