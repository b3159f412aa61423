//! Compliance flowing back: the root policy's status from its replicas' `status.compliant`,
//! and a PolicySet's from its policies' root status (OCM's `CalculateRootCompliance` and
//! PolicySet controller), plus Flotilla's `status.summary` counts.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};

/// A policy's compliance state (`status.compliant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Compliance {
    Compliant,
    NonCompliant,
    Pending,
}

impl Compliance {
    /// The state a `status.compliant` value names; `None` for empty or anything else.
    pub fn parse(value: &str) -> Option<Compliance> {
        match value {
            "Compliant" => Some(Compliance::Compliant),
            "NonCompliant" => Some(Compliance::NonCompliant),
            "Pending" => Some(Compliance::Pending),
            _ => None,
        }
    }

    /// The `status.compliant` of an object.
    pub fn of(obj: &Value) -> Option<Compliance> {
        obj.pointer("/status/compliant").and_then(Value::as_str).and_then(Compliance::parse)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compliance::Compliant => "Compliant",
            Compliance::NonCompliant => "NonCompliant",
            Compliance::Pending => "Pending",
        }
    }
}

impl fmt::Display for Compliance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The overall state of several: NonCompliant if any is, else Pending if any is, else
/// unknown (`None`) if any has not reported or there are none, else Compliant.
pub fn overall<I: IntoIterator<Item = Option<Compliance>>>(states: I) -> Option<Compliance> {
    let mut seen_any = false;
    let (mut pending, mut unknown) = (false, false);
    for state in states {
        seen_any = true;
        match state {
            Some(Compliance::NonCompliant) => return Some(Compliance::NonCompliant),
            Some(Compliance::Pending) => pending = true,
            Some(Compliance::Compliant) => {}
            None => unknown = true,
        }
    }
    if pending {
        Some(Compliance::Pending)
    } else if unknown || !seen_any {
        None
    } else {
        Some(Compliance::Compliant)
    }
}

/// Clusters by the compliance their replicas report (`status.summary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub clusters: usize,
    pub compliant: usize,
    pub non_compliant: usize,
    pub pending: usize,
}

impl Summary {
    pub fn of<'a, I: IntoIterator<Item = &'a Option<Compliance>>>(states: I) -> Summary {
        let mut summary = Summary::default();
        for state in states {
            summary.clusters += 1;
            match state {
                Some(Compliance::Compliant) => summary.compliant += 1,
                Some(Compliance::NonCompliant) => summary.non_compliant += 1,
                Some(Compliance::Pending) => summary.pending += 1,
                None => {}
            }
        }
        summary
    }

    pub fn to_json(self) -> Value {
        json!({
            "clusters": self.clusters,
            "compliant": self.compliant,
            "nonCompliant": self.non_compliant,
            "pending": self.pending,
        })
    }
}

/// The root's `status.status` (one entry per cluster, by name), `status.compliant` and
/// `status.summary`, from each cluster's reported state.
pub fn cluster_status(clusters: &BTreeMap<String, Option<Compliance>>) -> (Vec<Value>, Option<Compliance>, Summary) {
    let entries = clusters
        .iter()
        .map(|(cluster, state)| {
            let mut entry = json!({"clustername": cluster, "clusternamespace": cluster});
            if let Some(state) = state {
                entry["compliant"] = json!(state.as_str());
            }
            entry
        })
        .collect();
    (entries, overall(clusters.values().copied()), Summary::of(clusters.values()))
}

/// What a PolicySet's status says of one of its policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    Missing,
    Disabled,
    Enabled(Option<Compliance>),
}

/// A PolicySet's `status.compliant` and `status.statusMessage` (OCM's wording): the overall
/// state of its enabled policies, and which are deleted, disabled or have no status yet.
pub fn policy_set_status(members: &BTreeMap<String, Member>) -> (Option<Compliance>, String) {
    let names = |want: fn(&Member) -> bool| -> Vec<&str> {
        members.iter().filter(|(_, m)| want(m)).map(|(n, _)| n.as_str()).collect()
    };
    let deleted = names(|m| *m == Member::Missing);
    let disabled = names(|m| *m == Member::Disabled);
    let awaiting = names(|m| *m == Member::Enabled(None));
    let mut parts = Vec::new();
    if !deleted.is_empty() {
        parts.push(format!("Deleted policies: {}", deleted.join(", ")));
    }
    if !disabled.is_empty() {
        parts.push(format!("Disabled policies: {}", disabled.join(", ")));
    }
    if !awaiting.is_empty() {
        parts.push(format!("No status provided while awaiting policy status: {}", awaiting.join(", ")));
    }
    let states = members.values().filter_map(|m| match m {
        Member::Enabled(state) => Some(*state),
        _ => None,
    });
    let compliant = overall(states);
    if parts.is_empty() && compliant.is_none() && !members.is_empty() {
        parts.push("All policies are disabled or deleted".to_string());
    }
    (compliant, parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    use Compliance::*;

    #[test]
    fn overall_compliance_as_ocm_with_empty_for_nothing_known() {
        assert_eq!(overall([]), None, "no clusters");
        assert_eq!(overall([Some(Compliant), Some(Compliant)]), Some(Compliant));
        assert_eq!(overall([Some(Compliant), Some(Pending)]), Some(Pending));
        assert_eq!(overall([Some(Pending), Some(NonCompliant), None]), Some(NonCompliant));
        assert_eq!(overall([Some(Compliant), None]), None, "a cluster has not reported");
        assert_eq!(overall([None, Some(Pending)]), Some(Pending));
    }

    #[test]
    fn cluster_status_lists_every_cluster_and_counts() {
        let clusters: BTreeMap<String, Option<Compliance>> = [
            ("b".to_string(), Some(NonCompliant)),
            ("a".to_string(), Some(Compliant)),
            ("c".to_string(), None),
            ("d".to_string(), Some(Pending)),
        ]
        .into();
        let (entries, state, summary) = cluster_status(&clusters);
        assert_eq!(entries[0], json!({"clustername": "a", "clusternamespace": "a", "compliant": "Compliant"}));
        assert_eq!(entries[2], json!({"clustername": "c", "clusternamespace": "c"}));
        assert_eq!(state, Some(NonCompliant));
        assert_eq!(summary, Summary { clusters: 4, compliant: 1, non_compliant: 1, pending: 1 });
        assert_eq!(summary.to_json()["nonCompliant"], 1);
    }

    #[test]
    fn policy_set_status_names_what_is_missing() {
        let members: BTreeMap<String, Member> = [
            ("a".to_string(), Member::Enabled(Some(Compliant))),
            ("b".to_string(), Member::Missing),
            ("c".to_string(), Member::Disabled),
            ("d".to_string(), Member::Enabled(None)),
        ]
        .into();
        let (state, message) = policy_set_status(&members);
        assert_eq!(state, None);
        assert_eq!(
            message,
            "Deleted policies: b; Disabled policies: c; No status provided while awaiting policy status: d"
        );
        let fine: BTreeMap<String, Member> = [("a".to_string(), Member::Enabled(Some(Compliant)))].into();
        assert_eq!(policy_set_status(&fine), (Some(Compliant), String::new()));
        let off: BTreeMap<String, Member> = [("a".to_string(), Member::Disabled)].into();
        assert_eq!(policy_set_status(&off).0, None);
    }
}
