//! What a [`Schedule`] looks like on the hub, as OCM's scheduling controller writes it
//! (`pkg/placement/controllers/scheduling/scheduling_controller.go`):
//!
//! - PlacementDecisions named `<placement>-decision-<n>`, `n` counting from 1 across the
//!   decision groups, at most [`MAX_DECISIONS_PER_OBJECT`] decisions each, labelled with the
//!   placement's name and the group's index and name, owned (controller, blocking deletion)
//!   by the Placement. A group with no cluster still gets one empty PlacementDecision, and
//!   a schedule with no group at all gets one empty group, so a consumer always finds one.
//! - The Placement's status: `numberOfSelectedClusters`, `decisionGroups` (index, name, the
//!   PlacementDecision names, the cluster count) and the `PlacementSatisfied` and
//!   `PlacementMisconfigured` conditions, whose `lastTransitionTime` moves only when their
//!   status does.
//!
//! Pure functions: the controller compares what they return with what is stored and
//! writes only the difference, so a schedule that changes nothing writes nothing.
//!
//! `score` is written with every decision (OCM's API has the field and leaves it empty), but
//! a change of score alone does not rewrite a PlacementDecision: Balance moves every
//! cluster's score whenever another placement's decisions change, and rewriting every
//! PlacementDecision of every placement for that would turn one decision into a storm of
//! writes and watch events. The score is the one computed when the decision last changed.

use flotilla_apiserver::objects::meta;
use serde_json::{Map, Value, json};

use flotilla_registration::conditions::{self, Condition};

use crate::{
    CONDITION_MISCONFIGURED, CONDITION_SATISFIED, ConditionOutcome, Decision, DecisionGroup, MAX_DECISIONS_PER_OBJECT,
    Schedule,
};

/// The group and version of Placement and PlacementDecision.
pub const API_VERSION: &str = "cluster.open-cluster-management.io/v1beta1";
/// The label naming a PlacementDecision's Placement.
pub const PLACEMENT_LABEL: &str = "cluster.open-cluster-management.io/placement";
/// The label with a PlacementDecision's decision group index.
pub const DECISION_GROUP_INDEX_LABEL: &str = "cluster.open-cluster-management.io/decision-group-index";
/// The label with a PlacementDecision's decision group name (empty for unnamed groups).
pub const DECISION_GROUP_NAME_LABEL: &str = "cluster.open-cluster-management.io/decision-group-name";

/// One PlacementDecision a schedule calls for.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionPage {
    pub name: String,
    pub group_index: usize,
    pub group_name: String,
    pub decisions: Vec<Decision>,
}

/// The PlacementDecisions of a schedule's groups, in order: each group split into pages of
/// at most [`MAX_DECISIONS_PER_OBJECT`], an empty group as one empty page, no group as one
/// empty unnamed group 0.
pub fn pages(placement_name: &str, groups: &[DecisionGroup]) -> Vec<DecisionPage> {
    let empty = [DecisionGroup { index: 0, name: String::new(), decisions: Vec::new() }];
    let groups = if groups.is_empty() { &empty[..] } else { groups };
    let mut out = Vec::new();
    for group in groups {
        let mut chunks: Vec<&[Decision]> = group.decisions.chunks(MAX_DECISIONS_PER_OBJECT).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for chunk in chunks {
            out.push(DecisionPage {
                name: format!("{placement_name}-decision-{}", out.len() + 1),
                group_index: group.index,
                group_name: group.name.clone(),
                decisions: chunk.to_vec(),
            });
        }
    }
    out
}

/// The labels a PlacementDecision carries.
pub fn labels(placement_name: &str, page: &DecisionPage) -> Map<String, Value> {
    let mut labels = Map::new();
    labels.insert(PLACEMENT_LABEL.into(), json!(placement_name));
    labels.insert(DECISION_GROUP_INDEX_LABEL.into(), json!(page.group_index.to_string()));
    labels.insert(DECISION_GROUP_NAME_LABEL.into(), json!(page.group_name));
    labels
}

/// The controller reference to the Placement: the garbage collector deletes the
/// PlacementDecisions with it, and foreground deletion waits for them.
pub fn owner_reference(placement: &Value) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "Placement",
        "name": meta::name(placement),
        "uid": meta::uid(placement),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// `status.decisions` of a page.
pub fn decisions_json(decisions: &[Decision]) -> Value {
    Value::Array(
        decisions
            .iter()
            .map(|d| json!({"clusterName": d.cluster_name, "reason": d.reason, "score": d.score}))
            .collect(),
    )
}

/// A new PlacementDecision for a page (its status is written through the status
/// subresource after the create, which ignores it).
pub fn new_object(placement: &Value, page: &DecisionPage) -> Value {
    let placement_name = meta::name(placement);
    json!({
        "apiVersion": API_VERSION,
        "kind": "PlacementDecision",
        "metadata": {
            "name": page.name,
            "namespace": meta::namespace(placement).unwrap_or_default(),
            "labels": labels(placement_name, page),
            "ownerReferences": [owner_reference(placement)],
        },
        "status": {"decisions": decisions_json(&page.decisions)},
    })
}

/// Whether a stored PlacementDecision has the page's labels and is controlled by this
/// Placement (other labels and owners are left alone).
pub fn metadata_matches(existing: &Value, placement: &Value, page: &DecisionPage) -> bool {
    let stored = existing.pointer("/metadata/labels").and_then(Value::as_object);
    let labels_match =
        labels(meta::name(placement), page).iter().all(|(k, v)| stored.and_then(|s| s.get(k)) == Some(v));
    labels_match && controlled_by(existing, placement)
}

/// Whether the Placement (by uid) is the controller owner of `obj`.
fn controlled_by(obj: &Value, placement: &Value) -> bool {
    let uid = meta::uid(placement);
    owner_references(obj).iter().any(|r| {
        r.get("uid").and_then(Value::as_str) == Some(uid) && r.get("controller").and_then(Value::as_bool) == Some(true)
    })
}

fn owner_references(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/ownerReferences").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// A stored PlacementDecision with the page's labels set and this Placement as its
/// controller (replacing a controller reference to anything else, such as an earlier
/// Placement of the same name).
pub fn with_metadata(mut existing: Value, placement: &Value, page: &DecisionPage) -> Value {
    let placement_name = meta::name(placement).to_string();
    let mut refs = owner_references(&existing);
    refs.retain(|r| r.get("controller").and_then(Value::as_bool) != Some(true));
    refs.push(owner_reference(placement));
    if let Some(metadata) = existing.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels_entry = metadata.entry("labels").or_insert_with(|| json!({}));
        if !labels_entry.is_object() {
            *labels_entry = json!({});
        }
        if let Some(stored) = labels_entry.as_object_mut() {
            stored.extend(labels(&placement_name, page));
        }
        metadata.insert("ownerReferences".into(), Value::Array(refs));
    }
    existing
}

/// The (cluster, reason) pairs of a stored PlacementDecision, in order.
fn stored_decisions(obj: &Value) -> Vec<(&str, &str)> {
    obj.pointer("/status/decisions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|d| {
                    (
                        d.get("clusterName").and_then(Value::as_str).unwrap_or_default(),
                        d.get("reason").and_then(Value::as_str).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The cluster names a stored PlacementDecision lists (empty names, OCM's unscheduled
/// placeholders, left out).
pub fn cluster_names(obj: &Value) -> Vec<String> {
    stored_decisions(obj).into_iter().filter(|(c, _)| !c.is_empty()).map(|(c, _)| c.to_string()).collect()
}

/// Whether a stored PlacementDecision lists the page's clusters with their reasons, in
/// order (scores are not compared; see the module documentation).
pub fn status_matches(existing: &Value, page: &DecisionPage) -> bool {
    existing.pointer("/status/decisions").is_some_and(Value::is_array)
        && stored_decisions(existing)
            .into_iter()
            .eq(page.decisions.iter().map(|d| (d.cluster_name.as_str(), d.reason.as_str())))
}

/// A stored PlacementDecision with the page's decisions as its status.
pub fn with_status(mut existing: Value, page: &DecisionPage) -> Value {
    if let Some(obj) = existing.as_object_mut() {
        let status = obj.entry("status").or_insert_with(|| json!({}));
        if !status.is_object() {
            *status = json!({});
        }
        status["decisions"] = decisions_json(&page.decisions);
    }
    existing
}

/// `status.decisionGroups` for the pages: one entry per group, in group order, naming its
/// PlacementDecisions and counting its clusters.
pub fn group_status(pages: &[DecisionPage]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut current: Option<(usize, String, Vec<String>, usize)> = None;
    for page in pages {
        match &mut current {
            Some((index, name, names, count)) if *index == page.group_index && *name == page.group_name => {
                names.push(page.name.clone());
                *count += page.decisions.len();
            }
            _ => {
                if let Some(done) = current.take() {
                    out.push(group_entry(done));
                }
                current =
                    Some((page.group_index, page.group_name.clone(), vec![page.name.clone()], page.decisions.len()));
            }
        }
    }
    if let Some(done) = current {
        out.push(group_entry(done));
    }
    out
}

fn group_entry((index, name, decisions, count): (usize, String, Vec<String>, usize)) -> Value {
    json!({"decisionGroupIndex": index, "decisionGroupName": name, "decisions": decisions, "clusterCount": count})
}

/// The Placement's new status, or `None` when it already says all this (OCM writes the
/// status only when it changed). Other status fields are kept.
pub fn placement_status(placement: &Value, schedule: &Schedule, pages: &[DecisionPage], now: &str) -> Option<Value> {
    let old = placement.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut status = match &old {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    status.insert("numberOfSelectedClusters".into(), json!(schedule.number_of_selected_clusters));
    status.insert("decisionGroups".into(), Value::Array(group_status(pages)));
    let generation = placement.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    let mut list = conditions::of(placement);
    for (type_, outcome) in
        [(CONDITION_SATISFIED, &schedule.satisfied), (CONDITION_MISCONFIGURED, &schedule.misconfigured)]
    {
        conditions::set(&mut list, &condition(type_, outcome), generation, now);
    }
    status.insert("conditions".into(), Value::Array(list));
    let status = Value::Object(status);
    (status != old).then_some(status)
}

fn condition<'a>(type_: &'a str, outcome: &'a ConditionOutcome) -> Condition<'a> {
    Condition { type_, status: outcome.status, reason: &outcome.reason, message: &outcome.message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2030-01-01T00:00:00Z";
    const T1: &str = "2030-01-01T00:05:00Z";

    fn decision(name: &str) -> Decision {
        Decision { cluster_name: name.to_string(), reason: String::new(), score: 200 }
    }

    fn group(index: usize, name: &str, clusters: impl IntoIterator<Item = String>) -> DecisionGroup {
        DecisionGroup { index, name: name.to_string(), decisions: clusters.into_iter().map(|c| decision(&c)).collect() }
    }

    fn placement() -> Value {
        json!({"apiVersion": API_VERSION, "kind": "Placement",
            "metadata": {"name": "web", "namespace": "apps", "uid": "u-1", "generation": 2}})
    }

    fn outcome(status: &'static str, reason: &str, message: &str) -> ConditionOutcome {
        ConditionOutcome { status, reason: reason.to_string(), message: message.to_string() }
    }

    fn schedule(groups: Vec<DecisionGroup>) -> Schedule {
        let n = groups.iter().map(|g| g.decisions.len()).sum();
        Schedule {
            groups,
            number_of_selected_clusters: n,
            satisfied: outcome("True", "AllDecisionsScheduled", "All cluster decisions scheduled"),
            misconfigured: outcome("False", "Succeedconfigured", "Placement configurations check pass"),
            requeue_after: None,
            explanation: Value::Null,
            kept_previous: false,
            warnings: Vec::new(),
        }
    }

    fn names(n: usize, prefix: &str) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i:03}")).collect()
    }

    #[test]
    fn no_group_still_gets_one_empty_placement_decision() {
        let pages = pages("web", &[]);
        assert_eq!(pages.len(), 1);
        assert_eq!(
            (pages[0].name.as_str(), pages[0].group_index, pages[0].group_name.as_str()),
            ("web-decision-1", 0, "")
        );
        assert!(pages[0].decisions.is_empty());
        let obj = new_object(&placement(), &pages[0]);
        assert_eq!(obj["status"]["decisions"], json!([]));
        assert_eq!(
            obj["metadata"]["labels"],
            json!({PLACEMENT_LABEL: "web", DECISION_GROUP_INDEX_LABEL: "0", DECISION_GROUP_NAME_LABEL: ""})
        );
        assert_eq!(
            obj["metadata"]["ownerReferences"],
            json!([{"apiVersion": API_VERSION, "kind": "Placement", "name": "web", "uid": "u-1",
                "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(obj["metadata"]["namespace"], "apps");
    }

    #[test]
    fn groups_page_by_100_and_number_across_groups() {
        let groups = vec![
            group(0, "canary", names(3, "c")),
            group(1, "", names(250, "m")),
            group(2, "", Vec::new()),
            group(3, "", names(100, "z")),
        ];
        let pages = pages("web", &groups);
        let summary: Vec<(String, usize, String, usize)> =
            pages.iter().map(|p| (p.name.clone(), p.group_index, p.group_name.clone(), p.decisions.len())).collect();
        let expected = [
            ("web-decision-1", 0, "canary", 3),
            ("web-decision-2", 1, "", 100),
            ("web-decision-3", 1, "", 100),
            ("web-decision-4", 1, "", 50),
            ("web-decision-5", 2, "", 0),
            ("web-decision-6", 3, "", 100),
        ];
        assert_eq!(summary, expected.map(|(a, b, c, d)| (a.to_string(), b, c.to_string(), d)));
        assert_eq!(pages[2].decisions[0].cluster_name, "m100", "order kept across pages");
        assert_eq!(labels("web", &pages[0])[DECISION_GROUP_NAME_LABEL], "canary");
        assert_eq!(labels("web", &pages[3])[DECISION_GROUP_INDEX_LABEL], "1");

        let status = group_status(&pages);
        assert_eq!(
            status,
            vec![
                json!({"decisionGroupIndex": 0, "decisionGroupName": "canary", "decisions": ["web-decision-1"], "clusterCount": 3}),
                json!({"decisionGroupIndex": 1, "decisionGroupName": "",
                    "decisions": ["web-decision-2", "web-decision-3", "web-decision-4"], "clusterCount": 250}),
                json!({"decisionGroupIndex": 2, "decisionGroupName": "", "decisions": ["web-decision-5"], "clusterCount": 0}),
                json!({"decisionGroupIndex": 3, "decisionGroupName": "", "decisions": ["web-decision-6"], "clusterCount": 100}),
            ]
        );
    }

    #[test]
    fn stored_objects_are_compared_by_labels_owner_and_decisions() {
        let p = placement();
        let page = &pages("web", &[group(0, "", names(2, "a"))])[0];
        let stored = new_object(&p, page);
        assert!(metadata_matches(&stored, &p, page));
        assert!(status_matches(&stored, page));
        assert_eq!(cluster_names(&stored), ["a000", "a001"]);

        let mut rescored = stored.clone();
        rescored["status"]["decisions"][0]["score"] = json!(-5);
        assert!(status_matches(&rescored, page), "a score alone does not rewrite");
        let mut tampered = stored.clone();
        tampered["status"]["decisions"][1]["clusterName"] = json!("evil");
        assert!(!status_matches(&tampered, page));
        assert_eq!(with_status(tampered, page)["status"], stored["status"]);
        let mut no_status = stored.clone();
        no_status.as_object_mut().map(|o| o.remove("status"));
        assert!(!status_matches(&no_status, page), "a fresh object has no status yet");
        let empty_page = &pages("web", &[])[0];
        assert!(!status_matches(&no_status, empty_page));
        assert!(status_matches(&with_status(no_status, empty_page), empty_page));

        let mut relabelled = stored.clone();
        relabelled["metadata"]["labels"][DECISION_GROUP_INDEX_LABEL] = json!("7");
        relabelled["metadata"]["labels"]["team"] = json!("blue");
        assert!(!metadata_matches(&relabelled, &p, page));
        let fixed = with_metadata(relabelled, &p, page);
        assert!(metadata_matches(&fixed, &p, page));
        assert_eq!(fixed["metadata"]["labels"]["team"], "blue", "other labels are kept");

        let mut orphan = stored.clone();
        orphan["metadata"]["ownerReferences"] = json!([
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "cm"},
            {"apiVersion": API_VERSION, "kind": "Placement", "name": "web", "uid": "old", "controller": true}
        ]);
        assert!(!metadata_matches(&orphan, &p, page));
        let fixed = with_metadata(orphan, &p, page);
        let refs = fixed["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
        assert_eq!(refs.len(), 2, "{refs:?}");
        assert_eq!(refs[0]["uid"], "cm");
        assert_eq!(refs[1]["uid"], "u-1");
    }

    #[test]
    fn placement_status_is_written_only_when_it_changes() {
        let mut p = placement();
        let s = schedule(vec![group(0, "", names(3, "a"))]);
        let pages = pages("web", &s.groups);
        let status = placement_status(&p, &s, &pages, T0).unwrap_or_default();
        assert_eq!(status["numberOfSelectedClusters"], 3);
        assert_eq!(status["decisionGroups"][0]["decisions"], json!(["web-decision-1"]));
        let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0]["type"], CONDITION_SATISFIED);
        assert_eq!(conditions[0]["reason"], "AllDecisionsScheduled");
        assert_eq!(conditions[1]["type"], CONDITION_MISCONFIGURED);
        assert_eq!(conditions[1]["status"], "False");
        assert_eq!(conditions[1]["reason"], "Succeedconfigured");
        assert_eq!(conditions[0]["observedGeneration"], 2);

        p["status"] = status.clone();
        p["status"]["lastScoreUpdateTime"] = json!(T0);
        assert_eq!(placement_status(&p, &s, &pages, T1), None, "nothing changed, nothing written");

        let mut unsatisfied = s.clone();
        unsatisfied.satisfied = outcome("False", "NotAllDecisionsScheduled", "2 cluster decisions unscheduled");
        let status = placement_status(&p, &unsatisfied, &pages, T1).unwrap_or_default();
        assert_eq!(status["conditions"][0]["lastTransitionTime"], T1);
        assert_eq!(status["conditions"][1]["lastTransitionTime"], T0, "unchanged conditions keep their time");
        assert_eq!(status["lastScoreUpdateTime"], T0, "other fields are kept");
    }
}
