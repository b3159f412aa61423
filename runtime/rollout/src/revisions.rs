//! Revisions of a ManifestWorkReplicaSet's `spec.manifestWorkTemplate`, kept as apps/v1
//! ControllerRevisions, as a Deployment's controller keeps its ReplicaSets' templates and
//! `kubectl rollout undo` reads them:
//!
//! - named `<replica set>-<first 10 hex digits of the template hash>`, labelled
//!   [`crate::works::REPLICA_SET_LABEL`], owned by the ManifestWorkReplicaSet (the garbage
//!   collector deletes them with it), `data.template` the template, `revision` its number;
//! - every new template gets the next number; a template seen before (an undo, or an edit
//!   back) takes the next number again, as `kubectl rollout undo` does, so the newest number is
//!   always the current template;
//! - at most `revisionHistoryLimit` (default 10) are kept, oldest first out, except those
//!   that a cluster holds or may roll back to.
//!
//! Why ControllerRevisions and not the status: they survive a status rewrite, kubectl lists
//! them, and a template can be several megabytes, too large to repeat in the status.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::works::{REPLICA_SET_LABEL, replica_set_key};

pub const API_VERSION: &str = "apps/v1";
pub const KIND: &str = "ControllerRevision";
/// The full template hash, on each ControllerRevision.
pub const HASH_ANNOTATION: &str = "rollout.flotilla.dev/template-hash";
pub const DEFAULT_HISTORY_LIMIT: usize = 10;

/// One stored revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// The ControllerRevision's name.
    pub name: String,
    pub number: i64,
    pub hash: String,
    pub template: Value,
}

/// The SHA-256 of the template's canonical JSON (keys sorted), in hex.
pub fn template_hash(template: &Value) -> String {
    let canonical = flotilla_apimachinery::apply::canonical_json(template);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The ControllerRevision name of a template.
pub fn revision_name(replica_set: &str, hash: &str) -> String {
    format!("{replica_set}-{}", &hash[..hash.len().min(10)])
}

/// A new ControllerRevision for `template`, owned by `replica_set` (the stored object).
pub fn new_object(replica_set: &Value, number: i64, hash: &str, template: &Value) -> Value {
    let name = replica_set.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let namespace = replica_set.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let uid = replica_set.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
    json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": revision_name(name, hash),
            "namespace": namespace,
            "labels": {REPLICA_SET_LABEL: replica_set_key(namespace, name)},
            "annotations": {HASH_ANNOTATION: hash},
            "ownerReferences": [{
                "apiVersion": "work.open-cluster-management.io/v1alpha1",
                "kind": "ManifestWorkReplicaSet",
                "name": name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "data": {"template": template},
        "revision": number,
    })
}

/// A stored ControllerRevision as a [`Revision`]; `None` for one that is not ours (no hash).
pub fn parse(obj: &Value) -> Option<Revision> {
    let hash = obj.pointer("/metadata/annotations").and_then(|a| a.get(HASH_ANNOTATION)).and_then(Value::as_str)?;
    Some(Revision {
        name: obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string(),
        number: obj.get("revision").and_then(Value::as_i64).unwrap_or(0),
        hash: hash.to_string(),
        template: obj.pointer("/data/template").cloned().unwrap_or(Value::Null),
    })
}

/// A ManifestWorkReplicaSet's revisions, oldest first.
#[derive(Debug, Clone, Default)]
pub struct History {
    revisions: Vec<Revision>,
}

/// What makes a template the current revision.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// It is the newest revision already.
    Current(Revision),
    /// A template seen before: its ControllerRevision takes number `to`.
    Renumber { revision: Revision, to: i64 },
    /// A new template: a new ControllerRevision numbered `number`.
    Create { number: i64 },
}

impl History {
    pub fn new(mut revisions: Vec<Revision>) -> History {
        revisions.sort_by_key(|r| r.number);
        History { revisions }
    }

    pub fn revisions(&self) -> &[Revision] {
        &self.revisions
    }

    pub fn by_number(&self, number: i64) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.number == number)
    }

    pub fn latest(&self) -> Option<&Revision> {
        self.revisions.last()
    }

    /// How to make the template of hash `hash` the current revision.
    pub fn plan(&self, hash: &str) -> Plan {
        let next = self.latest().map_or(1, |r| r.number + 1);
        match self.revisions.iter().find(|r| r.hash == hash) {
            Some(r) if Some(r) == self.latest() => Plan::Current(r.clone()),
            Some(r) => Plan::Renumber { revision: r.clone(), to: next },
            None => Plan::Create { number: next },
        }
    }

    /// Records a write made after [`History::plan`].
    pub fn put(&mut self, revision: Revision) {
        self.revisions.retain(|r| r.name != revision.name);
        self.revisions.push(revision);
        self.revisions.sort_by_key(|r| r.number);
    }

    /// The revisions to delete: beyond the `limit` newest, except those in `keep`.
    pub fn prunable(&self, limit: usize, keep: &BTreeSet<i64>) -> Vec<Revision> {
        let excess = self.revisions.len().saturating_sub(limit.max(1));
        self.revisions.iter().take(excess).filter(|r| !keep.contains(&r.number)).cloned().collect()
    }

    pub fn remove(&mut self, name: &str) {
        self.revisions.retain(|r| r.name != name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(number: i64, hash: &str) -> Revision {
        Revision { name: format!("web-{hash}"), number, hash: hash.into(), template: json!({"n": number}) }
    }

    #[test]
    fn hashes_ignore_key_order() {
        assert_eq!(template_hash(&json!({"a": 1, "b": [1, 2]})), template_hash(&json!({"b": [1, 2], "a": 1})));
        assert_ne!(template_hash(&json!({"a": 1})), template_hash(&json!({"a": 2})));
        assert_eq!(revision_name("web", &template_hash(&json!({}))).len(), "web-".len() + 10);
    }

    #[test]
    fn new_templates_number_up_and_old_ones_renumber_as_kubectl_undo() {
        let history = History::new(vec![rev(2, "b"), rev(1, "a")]);
        assert_eq!(history.plan("b"), Plan::Current(rev(2, "b")));
        assert_eq!(history.plan("a"), Plan::Renumber { revision: rev(1, "a"), to: 3 });
        assert_eq!(history.plan("c"), Plan::Create { number: 3 });
        assert_eq!(History::default().plan("a"), Plan::Create { number: 1 });
    }

    #[test]
    fn pruning_keeps_the_newest_and_what_clusters_need() {
        let history = History::new((1..=5).map(|n| rev(n, &format!("h{n}"))).collect());
        let pruned: Vec<i64> = history.prunable(2, &BTreeSet::from([2])).iter().map(|r| r.number).collect();
        assert_eq!(pruned, [1, 3]);
        assert!(history.prunable(10, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn objects_round_trip() {
        let owner = json!({"metadata": {"name": "web", "namespace": "apps", "uid": "u1"}});
        let obj = new_object(&owner, 3, "0123456789abcdef", &json!({"workload": {}}));
        assert_eq!(obj["metadata"]["name"], "web-0123456789");
        assert_eq!(obj["metadata"]["ownerReferences"][0]["uid"], "u1");
        let parsed = parse(&obj).expect("ours");
        assert_eq!((parsed.number, parsed.hash.as_str()), (3, "0123456789abcdef"));
        assert_eq!(parsed.template, json!({"workload": {}}));
    }
}
