//! `metav1.Condition` lists (type, status, reason, message, lastTransitionTime,
//! observedGeneration), set as `meta.SetStatusCondition` does: `lastTransitionTime`
//! changes only when the status does.

use serde_json::{Value, json};

/// One condition to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition<'a> {
    pub type_: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";

/// The `status.conditions` of an object (empty if none).
pub fn of(obj: &Value) -> Vec<Value> {
    obj.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// The condition of a type.
pub fn find<'a>(conditions: &'a [Value], type_: &str) -> Option<&'a Value> {
    conditions.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// The status of a condition type on an object (`True`, `False`, `Unknown`), if present.
pub fn status_of<'a>(obj: &'a Value, type_: &str) -> Option<&'a str> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(type_)))
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
}

pub fn is_true(obj: &Value, type_: &str) -> bool {
    status_of(obj, type_) == Some(TRUE)
}

/// Sets a condition. Returns whether anything changed. `now` becomes the
/// `lastTransitionTime` of a new condition or of a status change.
pub fn set(conditions: &mut Vec<Value>, new: &Condition<'_>, generation: i64, now: &str) -> bool {
    let fresh = || {
        json!({
            "type": new.type_,
            "status": new.status,
            "reason": new.reason,
            "message": new.message,
            "lastTransitionTime": now,
            "observedGeneration": generation,
        })
    };
    let Some(existing) = conditions.iter_mut().find(|c| c.get("type").and_then(Value::as_str) == Some(new.type_))
    else {
        conditions.push(fresh());
        return true;
    };
    if existing.get("status").and_then(Value::as_str) != Some(new.status) || !existing.is_object() {
        *existing = fresh();
        return true;
    }
    let mut changed = false;
    let mut put = |field: &str, value: Value| {
        if existing.get(field) != Some(&value) {
            existing[field] = value;
            changed = true;
        }
    };
    put("reason", json!(new.reason));
    put("message", json!(new.message));
    put("observedGeneration", json!(generation));
    if existing.get("lastTransitionTime").and_then(Value::as_str).is_none_or(str::is_empty) {
        existing["lastTransitionTime"] = json!(now);
        changed = true;
    }
    changed
}

/// Removes a condition type. Returns whether it was there.
pub fn remove(conditions: &mut Vec<Value>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some(type_));
    conditions.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2030-01-01T00:00:00Z";
    const T1: &str = "2030-01-01T00:01:00Z";

    fn cond<'a>(status: &'a str, reason: &'a str, message: &'a str) -> Condition<'a> {
        Condition { type_: "Ready", status, reason, message }
    }

    #[test]
    fn only_status_changes_move_the_transition_time() {
        let mut list = Vec::new();
        assert!(set(&mut list, &cond(TRUE, "Fine", "all good"), 1, T0));
        assert_eq!(
            list[0],
            json!({"type": "Ready", "status": "True", "reason": "Fine", "message": "all good",
                "lastTransitionTime": T0, "observedGeneration": 1})
        );
        assert!(!set(&mut list, &cond(TRUE, "Fine", "all good"), 1, T1), "no change, no write");
        assert!(set(&mut list, &cond(TRUE, "StillFine", "better"), 2, T1));
        assert_eq!(list[0]["lastTransitionTime"], T0, "same status keeps its transition time");
        assert_eq!(list[0]["reason"], "StillFine");
        assert_eq!(list[0]["observedGeneration"], 2);
        assert!(set(&mut list, &cond(UNKNOWN, "Lost", "gone"), 2, T1));
        assert_eq!(list[0]["lastTransitionTime"], T1);
        assert_eq!(list[0]["status"], "Unknown");
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn finds_and_removes() {
        let mut list = Vec::new();
        set(&mut list, &cond(FALSE, "No", ""), 1, T0);
        set(&mut list, &Condition { type_: "Other", status: TRUE, reason: "Yes", message: "" }, 1, T0);
        let obj = json!({"status": {"conditions": list.clone()}});
        assert_eq!(status_of(&obj, "Ready"), Some("False"));
        assert!(is_true(&obj, "Other"));
        assert!(find(&of(&obj), "Missing").is_none());
        assert!(remove(&mut list, "Ready"));
        assert!(!remove(&mut list, "Ready"));
        assert_eq!(list.len(), 1);
    }
}
