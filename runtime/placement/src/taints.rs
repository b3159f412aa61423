//! Taints and tolerations, as OCM's `plugins/tainttoleration`:
//!
//! - a `NoSelect` taint removes the cluster unless a toleration matches it; the automatic
//!   taints `cluster.open-cluster-management.io/unreachable` and `.../unavailable` are
//!   `NoSelect` taints like any other;
//! - `NoSelectIfNew` does the same, except that a cluster already in this placement's
//!   decisions tolerates it;
//! - a toleration matches when its `effect` is empty or equal, its `key` is empty or equal,
//!   and its operator is `Exists`, or `Equal` (the default) with an equal value;
//! - with `tolerationSeconds`, a matching toleration holds until the taint's `timeAdded`
//!   plus that many seconds (a taint without `timeAdded` counts as added long ago, so the
//!   toleration has expired); the schedule is requeued at the earliest such expiry;
//! - `PreferNoSelect`: OCM ignores it (always tolerated). Flotilla keeps the cluster too, but
//!   counts the PreferNoSelect taints that no toleration matches; the `TaintToleration`
//!   prioritizer turns that count into a penalty (see `prioritize.rs`).

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    NoSelect,
    PreferNoSelect,
    NoSelectIfNew,
    /// An effect this version does not know: treated as `NoSelect` (the safe reading).
    Other,
}

impl Effect {
    fn parse(s: &str) -> Effect {
        match s {
            "NoSelect" => Effect::NoSelect,
            "PreferNoSelect" => Effect::PreferNoSelect,
            "NoSelectIfNew" => Effect::NoSelectIfNew,
            _ => Effect::Other,
        }
    }
}

/// A ManagedCluster's `spec.taints[]` item.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Taint {
    pub key: String,
    pub value: String,
    pub effect: Effect,
    pub effect_text: String,
    pub time_added: Option<Timestamp>,
}

impl Taint {
    pub fn list_of(managed_cluster: &Value) -> Vec<Taint> {
        let Some(items) = managed_cluster.pointer("/spec/taints").and_then(Value::as_array) else {
            return Vec::new();
        };
        items
            .iter()
            .map(|t| {
                let text = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                let effect_text = text("effect");
                Taint {
                    key: text("key"),
                    value: text("value"),
                    effect: Effect::parse(&effect_text),
                    effect_text,
                    time_added: t.get("timeAdded").and_then(Value::as_str).and_then(|s| s.parse().ok()),
                }
            })
            .collect()
    }
}

impl std::fmt::Display for Taint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect_text)
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect_text)
        }
    }
}

/// A Placement's `spec.tolerations[]` item.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Toleration {
    pub key: String,
    /// "Equal" (also for an empty operator), "Exists", or anything else (matches nothing).
    pub operator: String,
    pub value: String,
    pub effect: String,
    pub seconds: Option<i64>,
}

impl Toleration {
    /// Reads the tolerations and checks them as OCM does; the error is the
    /// `TaintToleration` plugin's Misconfigured message.
    pub fn list_of(spec: &Value) -> Result<Vec<Toleration>, String> {
        let Some(items) = spec.get("tolerations").and_then(Value::as_array) else { return Ok(Vec::new()) };
        let mut out = Vec::with_capacity(items.len());
        for t in items {
            let text = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let mut operator = text("operator");
            if operator.is_empty() {
                operator = "Equal".into();
            }
            let tol = Toleration {
                key: text("key"),
                value: text("value"),
                effect: text("effect"),
                seconds: t.get("tolerationSeconds").and_then(Value::as_i64),
                operator,
            };
            if tol.key.is_empty() && tol.operator != "Exists" {
                return Err("If the key is empty, operator must be Exists.".into());
            }
            if tol.operator == "Exists" && !tol.value.is_empty() {
                return Err("If the operator is Exists, the value should be empty.".into());
            }
            out.push(tol);
        }
        Ok(out)
    }

    /// `Some(until)` when this toleration matches `taint` (`until` is its expiry, `None` for
    /// never); `None` when it does not match or has expired.
    fn tolerates(&self, taint: &Taint, now: Timestamp) -> Option<Option<Timestamp>> {
        if !self.effect.is_empty() && self.effect != taint.effect_text {
            return None;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return None;
        }
        let matched = match self.operator.as_str() {
            "Equal" => self.value == taint.value,
            "Exists" => true,
            _ => false,
        };
        if !matched {
            return None;
        }
        let Some(seconds) = self.seconds else { return Some(None) };
        let until = taint.time_added?.checked_add(SignedDuration::from_secs(seconds)).ok()?;
        (now < until).then_some(Some(until))
    }
}

/// What the taints of one cluster mean for one placement.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Verdict {
    /// The first taint that removes the cluster, if any.
    pub blocked_by: Option<String>,
    /// The earliest expiry of a toleration the cluster relies on.
    pub expires: Option<Timestamp>,
    /// PreferNoSelect taints that no toleration matches.
    pub preferred_against: usize,
}

/// Checks a cluster's taints against the tolerations. `in_decisions`: the cluster is
/// already one of this placement's decisions (tolerates `NoSelectIfNew`).
pub(crate) fn check(taints: &[Taint], tolerations: &[Toleration], in_decisions: bool, now: Timestamp) -> Verdict {
    let mut v = Verdict::default();
    for taint in taints {
        if taint.effect == Effect::NoSelectIfNew && in_decisions {
            continue;
        }
        // The first toleration that matches and has not expired, as OCM's loop.
        let tolerated = tolerations.iter().find_map(|t| t.tolerates(taint, now));
        match (tolerated, taint.effect) {
            (Some(until), _) => {
                if let Some(until) = until {
                    v.expires = Some(v.expires.map_or(until, |e| e.min(until)));
                }
            }
            (None, Effect::PreferNoSelect) => v.preferred_against += 1,
            (None, _) => {
                v.blocked_by = Some(format!("taint {taint} is not tolerated"));
                v.expires = None;
                return v;
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn taints(v: Value) -> Vec<Taint> {
        Taint::list_of(&json!({"spec": {"taints": v}}))
    }

    fn tols(v: Value) -> Vec<Toleration> {
        Toleration::list_of(&json!({"tolerations": v})).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn no_select_taints_need_a_matching_toleration() {
        let now = ts("2025-01-01T00:00:00Z");
        let t = taints(json!([{"key": "gpu", "value": "true", "effect": "NoSelect"}]));
        assert!(check(&t, &[], false, now).blocked_by.is_some());
        for ok in [
            json!([{"key": "gpu", "operator": "Equal", "value": "true"}]),
            json!([{"key": "gpu", "value": "true"}]),
            json!([{"key": "gpu", "operator": "Exists"}]),
            json!([{"operator": "Exists"}]),
            json!([{"key": "gpu", "operator": "Exists", "effect": "NoSelect"}]),
        ] {
            assert_eq!(check(&t, &tols(ok.clone()), false, now).blocked_by, None, "{ok}");
        }
        for no in [
            json!([{"key": "gpu", "value": "false"}]),
            json!([{"key": "other", "operator": "Exists"}]),
            json!([{"key": "gpu", "operator": "Exists", "effect": "PreferNoSelect"}]),
        ] {
            assert!(check(&t, &tols(no.clone()), false, now).blocked_by.is_some(), "{no}");
        }
        // The automatic unreachable taint is a NoSelect taint like any other.
        let unreachable =
            taints(json!([{"key": "cluster.open-cluster-management.io/unreachable", "effect": "NoSelect"}]));
        let v = check(&unreachable, &[], false, now);
        assert_eq!(
            v.blocked_by.as_deref(),
            Some("taint cluster.open-cluster-management.io/unreachable:NoSelect is not tolerated")
        );
    }

    #[test]
    fn no_select_if_new_spares_current_decisions() {
        let now = ts("2025-01-01T00:00:00Z");
        let t = taints(json!([{"key": "drain", "effect": "NoSelectIfNew"}]));
        assert!(check(&t, &[], false, now).blocked_by.is_some());
        assert_eq!(check(&t, &[], true, now).blocked_by, None);
    }

    #[test]
    fn prefer_no_select_is_kept_and_counted() {
        let now = ts("2025-01-01T00:00:00Z");
        let t = taints(json!([{"key": "a", "effect": "PreferNoSelect"}, {"key": "b", "effect": "PreferNoSelect"}]));
        let v = check(&t, &[], false, now);
        assert_eq!((v.blocked_by, v.preferred_against), (None, 2));
        let v = check(&t, &tols(json!([{"key": "a", "operator": "Exists"}])), false, now);
        assert_eq!(v.preferred_against, 1);
    }

    #[test]
    fn toleration_seconds_count_from_time_added() {
        let t = taints(json!([{"key": "cluster.open-cluster-management.io/unavailable", "effect": "NoSelect",
                               "timeAdded": "2025-01-01T00:00:00Z"}]));
        let tol = tols(json!([{"key": "cluster.open-cluster-management.io/unavailable", "operator": "Exists",
                                "tolerationSeconds": 300}]));
        let v = check(&t, &tol, false, ts("2025-01-01T00:04:59Z"));
        assert_eq!(v.blocked_by, None);
        assert_eq!(v.expires, Some(ts("2025-01-01T00:05:00Z")));
        assert!(check(&t, &tol, false, ts("2025-01-01T00:05:00Z")).blocked_by.is_some());
        // No timeAdded: the toleration has expired.
        let no_time = taints(json!([{"key": "cluster.open-cluster-management.io/unavailable", "effect": "NoSelect"}]));
        assert!(check(&no_time, &tol, false, ts("2025-01-01T00:00:00Z")).blocked_by.is_some());
        // An expired toleration, then one without seconds: the second holds.
        let two = tols(json!([{"operator": "Exists", "tolerationSeconds": 1}, {"operator": "Exists"}]));
        let v = check(&t, &two, false, ts("2026-01-01T00:00:00Z"));
        assert_eq!((v.blocked_by, v.expires), (None, None));
    }

    #[test]
    fn invalid_tolerations_are_misconfigurations() {
        let e = Toleration::list_of(&json!({"tolerations": [{"operator": "Equal", "value": "x"}]}));
        assert_eq!(e, Err("If the key is empty, operator must be Exists.".to_string()));
        let e = Toleration::list_of(&json!({"tolerations": [{"key": "k", "operator": "Exists", "value": "x"}]}));
        assert_eq!(e, Err("If the operator is Exists, the value should be empty.".to_string()));
    }
}
