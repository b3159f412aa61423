//! Decision groups (`decisionStrategy.groupStrategy`), as OCM's scheduling controller makes
//! them:
//!
//! - the group length is `clustersPerDecisionGroup` of the selected clusters: a count, or a
//!   percentage rounded up; a length of 0 or less, or more than the selected clusters, is
//!   all of them (the default is `100%`);
//! - each `decisionGroups[]` entry takes, in order, the selected clusters its
//!   `groupClusterSelector` (labels and claims) matches and no earlier entry took (first
//!   match wins), sorted by name and split into groups of the group length, all named
//!   `groupName`; an entry that matches nothing makes no group;
//! - the clusters left over are sorted by name and split the same way into unnamed groups;
//! - groups are indexed from 0 across all of them; with no cluster selected there is one
//!   empty unnamed group (so one empty PlacementDecision exists, as OCM's).

use flotilla_plugin_host::ClusterInfo;

use crate::spec::{GroupSpec, PerGroup};
use crate::{Decision, DecisionGroup};

/// OCM's `calculateLength`.
pub(crate) fn group_length(per: PerGroup, total: usize) -> usize {
    let length: i64 = match per {
        PerGroup::Count(n) => n,
        PerGroup::Percent(p) => (p / 100.0 * total as f64).ceil() as i64,
    };
    if length <= 0 || length > total as i64 { total } else { length as usize }
}

/// Splits the selected clusters into decision groups. `selected` pairs each cluster with its
/// decision.
pub(crate) fn decision_groups(
    selected: Vec<(&ClusterInfo, Decision)>,
    specs: &[GroupSpec],
    per: PerGroup,
) -> Vec<DecisionGroup> {
    let length = group_length(per, selected.len()).max(1);
    let mut left: Vec<Option<(&ClusterInfo, Decision)>> = selected.into_iter().map(Some).collect();
    let mut groups: Vec<DecisionGroup> = Vec::new();
    let push = |name: &str, mut decisions: Vec<Decision>, groups: &mut Vec<DecisionGroup>| {
        decisions.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
        for chunk in decisions.chunks(length) {
            groups.push(DecisionGroup { index: groups.len(), name: name.to_string(), decisions: chunk.to_vec() });
        }
    };
    for spec in specs {
        let mut matched = Vec::new();
        for slot in left.iter_mut() {
            let hit = slot
                .as_ref()
                .is_some_and(|(c, _)| spec.labels.matches_map(&c.labels) && spec.claims.matches_map(&c.claims));
            if hit && let Some((_, d)) = slot.take() {
                matched.push(d);
            }
        }
        push(&spec.name, matched, &mut groups);
    }
    let rest: Vec<Decision> = left.into_iter().flatten().map(|(_, d)| d).collect();
    push("", rest, &mut groups);
    if groups.is_empty() {
        groups.push(DecisionGroup { index: 0, name: String::new(), decisions: Vec::new() });
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_apimachinery::selector::LabelSelector;
    use serde_json::json;

    fn cluster(name: &str, env: &str) -> ClusterInfo {
        let mut c = ClusterInfo { name: name.into(), ..Default::default() };
        c.labels.insert("env".into(), env.into());
        c
    }

    fn decision(c: &ClusterInfo) -> Decision {
        Decision { cluster_name: c.name.clone(), reason: String::new(), score: 0 }
    }

    fn spec(name: &str, env: &str) -> GroupSpec {
        GroupSpec {
            name: name.into(),
            labels: LabelSelector::from_object(&json!({"matchLabels": {"env": env}})).unwrap_or_default(),
            claims: LabelSelector::everything(),
        }
    }

    fn shape(groups: &[DecisionGroup]) -> Vec<(usize, String, Vec<String>)> {
        groups
            .iter()
            .map(|g| (g.index, g.name.clone(), g.decisions.iter().map(|d| d.cluster_name.clone()).collect()))
            .collect()
    }

    #[test]
    fn lengths_round_percentages_up() {
        assert_eq!(group_length(PerGroup::Percent(100.0), 7), 7);
        assert_eq!(group_length(PerGroup::Percent(25.0), 7), 2);
        assert_eq!(group_length(PerGroup::Percent(30.0), 10), 3);
        assert_eq!(group_length(PerGroup::Percent(33.4), 10), 4);
        assert_eq!(group_length(PerGroup::Count(3), 7), 3);
        assert_eq!(group_length(PerGroup::Count(0), 7), 7);
        assert_eq!(group_length(PerGroup::Count(9), 7), 7);
        assert_eq!(group_length(PerGroup::Percent(0.0), 7), 7);
    }

    #[test]
    fn named_groups_take_first_then_the_rest_split_by_name() {
        let cs = [
            cluster("p3", "prod"),
            cluster("c1", "canary"),
            cluster("p1", "prod"),
            cluster("d1", "dev"),
            cluster("p2", "prod"),
            cluster("d2", "dev"),
        ];
        let selected: Vec<_> = cs.iter().map(|c| (c, decision(c))).collect();
        let groups = decision_groups(
            selected,
            &[spec("canary", "canary"), spec("none", "nothing"), spec("prod", "prod")],
            PerGroup::Percent(50.0),
        );
        assert_eq!(
            shape(&groups),
            [
                (0, "canary".to_string(), vec!["c1".to_string()]),
                (1, "prod".to_string(), vec!["p1".to_string(), "p2".to_string(), "p3".to_string()]),
                (2, String::new(), vec!["d1".to_string(), "d2".to_string()]),
            ]
        );
        // Percentages of the selected clusters (6): 34% -> 3 per group.
        let selected: Vec<_> = cs.iter().map(|c| (c, decision(c))).collect();
        let groups = decision_groups(selected, &[spec("prod", "prod")], PerGroup::Percent(34.0));
        assert_eq!(groups.len(), 2);
        let selected: Vec<_> = cs.iter().map(|c| (c, decision(c))).collect();
        let groups = decision_groups(selected, &[], PerGroup::Count(4));
        assert_eq!(
            shape(&groups),
            [
                (0, String::new(), ["c1", "d1", "d2", "p1"].map(String::from).to_vec()),
                (1, String::new(), ["p2", "p3"].map(String::from).to_vec()),
            ]
        );
    }

    #[test]
    fn nothing_selected_is_one_empty_group() {
        assert_eq!(
            shape(&decision_groups(Vec::new(), &[spec("a", "a")], PerGroup::Count(1))),
            [(0, String::new(), vec![])]
        );
    }
}
