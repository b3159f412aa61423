//! The size limit of a ManifestWork's manifests. OCM's work webhook caps the total at 500 KiB
//! (`--manifestLimit`); Flotilla delivers up to `maxManifestWorkBytes` (8 MiB by default), so
//! that a large chart need not be split over several works. The same rule applies to the
//! template of a ManifestWorkReplicaSet, whose works would carry the same manifests.
//!
//! The size is what OCM measures: the sum of each manifest's serialized (compact JSON) size.
//! A request body must also fit `maxBodyBytes`; the hub raises that to
//! [`required_body_bytes`] so that every work within this limit can be sent.

use async_trait::async_trait;
use flotilla_apimachinery::{ApiError, CauseType, FieldError};
use flotilla_apiserver::{Operation, Resource, ValidatingAdmission};
use serde_json::Value;

pub const GROUP: &str = "work.open-cluster-management.io";
/// The default of `maxManifestWorkBytes`: 8 MiB.
pub const DEFAULT_MAX_MANIFEST_WORK_BYTES: usize = 8 << 20;

/// The smallest request body limit that admits a work of `max_manifest_work_bytes`: twice the
/// manifests, leaving room for the rest of the object and for YAML or indented JSON bodies,
/// which are larger than the compact JSON the limit measures.
pub fn required_body_bytes(max_manifest_work_bytes: usize) -> usize {
    max_manifest_work_bytes.saturating_mul(2)
}

/// Where each kind keeps its manifests.
fn manifests_path(res: &Resource) -> Option<(&'static str, &'static str)> {
    if res.def.group != GROUP {
        return None;
    }
    match res.def.kind.as_str() {
        "ManifestWork" => Some(("/spec/workload/manifests", "spec.workload.manifests")),
        "ManifestWorkReplicaSet" => {
            Some(("/spec/manifestWorkTemplate/workload/manifests", "spec.manifestWorkTemplate.workload.manifests"))
        }
        _ => None,
    }
}

/// Counts bytes without keeping them: a work's size is known without a second copy of it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The total serialized size of the manifests (OCM adds up each manifest's raw size).
pub fn manifests_size(manifests: &Value) -> usize {
    let mut counter = Counter(0);
    for manifest in manifests.as_array().into_iter().flatten() {
        // Writing a Value to a sink that never fails cannot fail.
        let _ = serde_json::to_writer(&mut counter, manifest);
    }
    counter.0
}

/// `8.5 MiB`, `500 KiB`, `12 bytes`.
fn human(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{} MiB", trim(b / (KIB * KIB)))
    } else if b >= KIB {
        format!("{} KiB", trim(b / KIB))
    } else {
        format!("{bytes} bytes")
    }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Validating admission of ManifestWork and ManifestWorkReplicaSet writes: manifests over the
/// limit are refused with 422, naming the field, the size, the limit and how to raise it.
pub struct ManifestWorkSizeLimit {
    limit: usize,
}

impl ManifestWorkSizeLimit {
    pub fn new(limit: usize) -> ManifestWorkSizeLimit {
        ManifestWorkSizeLimit { limit }
    }
}

#[async_trait]
impl ValidatingAdmission for ManifestWorkSizeLimit {
    async fn validate(&self, res: &Resource, op: Operation, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
        let Some((pointer, field)) = manifests_path(res) else {
            return Ok(());
        };
        let Some(manifests) = obj.pointer(pointer) else {
            return Ok(());
        };
        // Unchanged manifests pass (status updates, labels): lowering the limit never strands
        // the works already stored.
        if op == Operation::Delete || old.and_then(|o| o.pointer(pointer)) == Some(manifests) {
            return Ok(());
        }
        let size = manifests_size(manifests);
        if size <= self.limit {
            return Ok(());
        }
        let name = flotilla_apiserver::objects::meta::name(obj);
        tracing::info!(kind = %res.def.kind, name, size, limit = self.limit, "refused manifests over the size limit");
        let message = format!(
            "Too long: the manifests total {size} bytes ({}), more than the hub's limit of {} bytes ({}); split them \
             over several works, or raise maxManifestWorkBytes in the hub's hub.json and restart the hub",
            human(size),
            self.limit,
            human(self.limit),
        );
        Err(ApiError::invalid(
            &res.def.kind,
            GROUP,
            name,
            vec![FieldError::new(CauseType::FieldValueTooLong, field, message)],
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sizes_add_up_compact_manifests() {
        let manifests = json!([{"a": 1}, {"b": "xy"}]);
        assert_eq!(manifests_size(&manifests), r#"{"a":1}"#.len() + r#"{"b":"xy"}"#.len());
        assert_eq!(manifests_size(&json!("not a list")), 0);
        assert_eq!(human(8 << 20), "8 MiB");
        assert_eq!(human((17 << 20) / 2), "8.5 MiB");
        assert_eq!(human(500 << 10), "500 KiB");
        assert_eq!(human(12), "12 bytes");
        assert_eq!(required_body_bytes(DEFAULT_MAX_MANIFEST_WORK_BYTES), 16 << 20);
    }
}
