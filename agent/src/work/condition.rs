//! The `metav1.Condition` shape shared by status feedback ([`super::feedback`]) and condition
//! rules ([`super::rules`]).
//!
//! The evaluators are pure: they decide `type`, `status`, `reason` and `message` only.
//! `lastTransitionTime` and `observedGeneration` depend on what is already stored on the hub
//! (a transition time only moves when the status changes; rule conditions carry the work
//! generation so stale ones can be pruned), so the caller fills them in. They are optional
//! here so that conditions read back from a ManifestWork status deserialize into the same type.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `metav1.ConditionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    /// The wire spelling (`"True"`, `"False"`, `"Unknown"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `metav1.Condition` as it appears in `status.conditions` and
/// `status.resourceStatus.manifests[].conditions` of a ManifestWork.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    pub reason: String,
    /// Always serialized (metav1 requires the field, even when empty).
    #[serde(default)]
    pub message: String,
    /// Set by the caller (the work generation for rule conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Set by the caller (RFC 3339), kept when the status does not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

impl Condition {
    /// A condition without generation or transition time (the caller adds them).
    pub fn new(
        type_: impl Into<String>,
        status: ConditionStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: message.into(),
            observed_generation: None,
            last_transition_time: None,
        }
    }

    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn serializes_to_the_metav1_shape() {
        let c = Condition::new("Complete", ConditionStatus::True, "ConditionRuleEvaluated", "Job is finished");
        let v = match serde_json::to_value(&c) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            v,
            json!({"type": "Complete", "status": "True", "reason": "ConditionRuleEvaluated", "message": "Job is finished"})
        );
        let mut stored = c.clone();
        stored.observed_generation = Some(3);
        stored.last_transition_time = Some("2025-02-20T18:53:40Z".to_string());
        let v = match serde_json::to_value(&stored) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(v["observedGeneration"], json!(3));
        assert_eq!(v["lastTransitionTime"], json!("2025-02-20T18:53:40Z"));
    }

    #[test]
    fn deserializes_stored_conditions() {
        let c: Condition = match serde_json::from_value(json!({
            "type": "Applied", "status": "Unknown", "reason": "X",
            "lastTransitionTime": "2025-01-01T00:00:00Z", "observedGeneration": 2
        })) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.type_, "Applied");
        assert_eq!(c.status, ConditionStatus::Unknown);
        assert_eq!(c.message, "");
        assert_eq!(c.observed_generation, Some(2));
        assert!(serde_json::from_value::<Condition>(json!({"type": "A", "status": "Maybe", "reason": "X"})).is_err());
    }
}
