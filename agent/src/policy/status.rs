//! The replica's status as OCM's status-sync writes it: `compliant` and, per template,
//! `details[] {templateMeta, compliant, history[]}`, the history deduplicated (one entry per
//! message, newest first) and capped at [`MAX_HISTORY`].

use jiff::Timestamp;
use serde_json::{Value, json};

use super::spec::Compliance;

/// OCM keeps 10 history entries per template.
pub const MAX_HISTORY: usize = 10;

/// The outcome of one template's evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateResult {
    pub name: String,
    /// The template's kind (`templateMeta.kind`), empty when unknown.
    pub kind: String,
    pub compliance: Compliance,
    /// The whole history message: `NonCompliant; violation - …`.
    pub message: String,
    /// `ignorePending`: a Pending template does not count in the aggregate.
    pub ignore_pending: bool,
}

impl TemplateResult {
    pub fn new(name: &str, kind: &str, compliance: Compliance, detail: &str) -> TemplateResult {
        let message = match compliance {
            Compliance::Compliant => format!("Compliant; notification - {detail}"),
            Compliance::NonCompliant => format!("NonCompliant; violation - {detail}"),
            Compliance::Pending => format!("Pending; {detail}"),
        };
        TemplateResult { name: name.to_string(), kind: kind.to_string(), compliance, message, ignore_pending: false }
    }
}

/// The policy's compliance from its templates': NonCompliant if any is, else Pending if any
/// counted template is, else Compliant. `None` when no template counts.
pub fn aggregate(results: &[TemplateResult]) -> Option<Compliance> {
    let counted: Vec<Compliance> = results
        .iter()
        .filter(|r| !(r.ignore_pending && r.compliance == Compliance::Pending))
        .map(|r| r.compliance)
        .collect();
    if counted.is_empty() {
        None
    } else if counted.contains(&Compliance::NonCompliant) {
        Some(Compliance::NonCompliant)
    } else if counted.contains(&Compliance::Pending) {
        Some(Compliance::Pending)
    } else {
        Some(Compliance::Compliant)
    }
}

fn timestamp(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The new `status` of replica `policy` from its current one and this round's results. A
/// template's history gains an entry only when its message changes, so an unchanged result
/// writes nothing.
pub fn next_status(current: Option<&Value>, policy: &str, results: &[TemplateResult], now: Timestamp) -> Value {
    let old_details = current.and_then(|s| s.get("details")).and_then(Value::as_array);
    let details: Vec<Value> = results
        .iter()
        .map(|r| {
            let old = old_details.and_then(|d| {
                d.iter().find(|d| d.pointer("/templateMeta/name").and_then(Value::as_str) == Some(&r.name))
            });
            let mut history: Vec<Value> =
                old.and_then(|d| d.get("history")).and_then(Value::as_array).cloned().unwrap_or_default();
            let newest = history.first().and_then(|h| h.get("message")).and_then(Value::as_str);
            if newest != Some(r.message.as_str()) {
                history.retain(|h| h.get("message").and_then(Value::as_str) != Some(r.message.as_str()));
                let event = format!("{policy}.{:x}", now.as_nanosecond());
                history.insert(0, json!({"lastTimestamp": timestamp(now), "message": r.message, "eventName": event}));
            }
            history.truncate(MAX_HISTORY);
            let mut meta = json!({"name": r.name});
            if !r.kind.is_empty() {
                meta["kind"] = json!(r.kind);
            }
            json!({"templateMeta": meta, "compliant": r.compliance.as_str(), "history": history})
        })
        .collect();
    // `null` clears a previous value when a merge patch carries it.
    let compliant = aggregate(results).map_or(Value::Null, |c| json!(c.as_str()));
    json!({"compliant": compliant, "details": details})
}

/// Whether the replica's status already says what `next` says.
pub fn same(current: Option<&Value>, next: &Value) -> bool {
    let Some(current) = current else { return false };
    let compliant = |s: &Value| s.get("compliant").filter(|c| !c.is_null()).cloned();
    compliant(current) == compliant(next) && current.get("details") == next.get("details")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn history_is_deduplicated_newest_first_and_capped() {
        let mut status: Option<Value> = None;
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        for i in 0..25 {
            let message = if i % 2 == 0 { format!("m{i}") } else { "same".to_string() };
            let r = TemplateResult::new("t", "ConfigurationPolicy", Compliance::NonCompliant, &message);
            let next = next_status(status.as_ref(), "ns.p", &[r], t0 + jiff::SignedDuration::from_secs(i));
            status = Some(next);
        }
        let status = status.unwrap();
        let history = status["details"][0]["history"].as_array().unwrap();
        assert_eq!(history.len(), MAX_HISTORY);
        assert_eq!(history[0]["message"], "NonCompliant; violation - m24");
        assert_eq!(history.iter().filter(|h| h["message"] == "NonCompliant; violation - same").count(), 1);
        assert!(history[0]["eventName"].as_str().unwrap().starts_with("ns.p."));
        assert_eq!(status["compliant"], "NonCompliant");
        // Unchanged results change nothing.
        let r = TemplateResult::new("t", "ConfigurationPolicy", Compliance::NonCompliant, "m24");
        let again = next_status(Some(&status), "ns.p", &[r], t0 + jiff::SignedDuration::from_secs(100));
        assert!(same(Some(&status), &again));
    }

    #[test]
    fn ignored_pending_templates_do_not_count() {
        let mut pending = TemplateResult::new("a", "", Compliance::Pending, "waiting");
        pending.ignore_pending = true;
        let ok = TemplateResult::new("b", "", Compliance::Compliant, "fine");
        assert_eq!(aggregate(&[pending.clone(), ok]), Some(Compliance::Compliant));
        pending.ignore_pending = false;
        assert_eq!(aggregate(&[pending]), Some(Compliance::Pending));
    }
}
