//! `metadata.managedFields` entries: decoding, encoding, ordering and the cap on
//! update entries, as `k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager` keeps them.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::fieldset::FieldSet;

/// At most this many `Update` entries are kept; older ones merge into one.
const MAX_UPDATE_ENTRIES: usize = 10;
/// The manager that absorbs the oldest update entries past the cap.
const ANCIENT_CHANGES_MANAGER: &str = "ancient-changes";

/// How a manager wrote its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    /// RFC 3339, as Kubernetes writes it (`2026-01-02T03:04:05Z`).
    pub time: Option<String>,
    /// `status` for writes through the status subresource.
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Entries are identified by manager, operation and subresource.
    pub fn is(&self, manager: &str, operation: Operation, subresource: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == subresource
    }

    /// The entry exactly as Kubernetes serializes it.
    pub fn to_json(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("manager".into(), json!(self.manager));
        entry.insert("operation".into(), json!(self.operation.as_str()));
        entry.insert("apiVersion".into(), json!(self.api_version));
        if let Some(time) = &self.time {
            entry.insert("time".into(), json!(time));
        }
        entry.insert("fieldsType".into(), json!("FieldsV1"));
        entry.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(subresource) = &self.subresource {
            entry.insert("subresource".into(), json!(subresource));
        }
        Value::Object(entry)
    }

    /// Reads one entry; `None` for anything that is not a FieldsV1 Apply/Update entry.
    pub fn from_json(value: &Value) -> Option<ManagedFieldsEntry> {
        let operation = match value.get("operation")?.as_str()? {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return None,
        };
        if value.get("fieldsType").and_then(Value::as_str).is_some_and(|t| t != "FieldsV1") {
            return None;
        }
        let fields = match value.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(v) => FieldSet::from_fields_v1(v).ok()?,
        };
        let text = |key: &str| value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        Some(ManagedFieldsEntry {
            manager: value.get("manager").and_then(Value::as_str).unwrap_or_default().to_string(),
            operation,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource"),
            fields,
        })
    }

    fn time_seconds(&self) -> i64 {
        self.time.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok()).map_or(0, |t| t.as_second())
    }
}

/// The raw `metadata.managedFields` value of an object, if any.
pub(crate) fn raw_managed_fields(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields").filter(|v| !v.is_null())
}

/// Reads the entries of `metadata.managedFields`. Entries that cannot be read are
/// dropped (Kubernetes resets managed fields it cannot decode), and entries with
/// the same identity are merged.
pub fn decode_managed_fields(obj: &Value) -> Vec<ManagedFieldsEntry> {
    let mut entries: Vec<ManagedFieldsEntry> = Vec::new();
    let items = raw_managed_fields(obj).and_then(Value::as_array);
    for entry in items.into_iter().flatten().filter_map(ManagedFieldsEntry::from_json) {
        let same = entries.iter_mut().find(|e| e.is(&entry.manager, entry.operation, entry.subresource.as_deref()));
        match same {
            Some(existing) => {
                existing.fields = existing.fields.union(&entry.fields);
                existing.time = entry.time.or(existing.time.take());
            }
            None => entries.push(entry),
        }
    }
    entries
}

/// Writes the entries into `metadata.managedFields` in Kubernetes' order (Apply
/// before Update, then oldest first), dropping empty ones and capping the number
/// of update entries. No entries means no `managedFields` at all.
pub fn encode_managed_fields(obj: &mut Value, entries: Vec<ManagedFieldsEntry>) {
    let mut entries: Vec<ManagedFieldsEntry> = entries.into_iter().filter(|e| !e.fields.is_empty()).collect();
    cap_update_entries(&mut entries);
    entries.sort_by(|a, b| {
        (a.operation, a.time_seconds(), &a.manager, &a.api_version, &a.subresource).cmp(&(
            b.operation,
            b.time_seconds(),
            &b.manager,
            &b.api_version,
            &b.subresource,
        ))
    });
    let Some(object) = obj.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
            metadata.shift_remove("managedFields");
        }
        return;
    }
    let metadata = object.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(metadata) = metadata {
        metadata
            .insert("managedFields".into(), Value::Array(entries.iter().map(ManagedFieldsEntry::to_json).collect()));
    }
}

/// Past the cap, the oldest update entries merge into one `ancient-changes` entry
/// per API version (Kubernetes' `capManagersManager`).
fn cap_update_entries(entries: &mut Vec<ManagedFieldsEntry>) {
    let mut updaters: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].operation == Operation::Update).collect();
    if updaters.len() <= MAX_UPDATE_ENTRIES {
        return;
    }
    updaters.sort_by(|&a, &b| {
        (entries[a].time_seconds(), &entries[a].manager).cmp(&(entries[b].time_seconds(), &entries[b].manager))
    });
    let mut slots: Vec<Option<ManagedFieldsEntry>> = std::mem::take(entries).into_iter().map(Some).collect();
    let mut first_of_version: HashMap<String, usize> = HashMap::new();
    let mut remaining = updaters.len();
    for index in updaters {
        if remaining <= MAX_UPDATE_ENTRIES {
            break;
        }
        let Some(version) = slots[index].as_ref().map(|e| e.api_version.clone()) else {
            continue;
        };
        let Some(&first) = first_of_version.get(&version) else {
            first_of_version.insert(version, index);
            continue;
        };
        let bucket = bucket_slot(&mut slots, first, &version);
        // The newer entry (at `index`) normally goes into the bucket; if it is the
        // bucket itself, the older `first` goes into it instead.
        let (absorbed, keep) = if bucket == index { (first, index) } else { (index, bucket) };
        let Some(gone) = slots[absorbed].take() else {
            continue;
        };
        if let Some(kept) = slots[keep].as_mut() {
            kept.fields = kept.fields.union(&gone.fields);
            if absorbed == index {
                kept.time = gone.time;
            }
        }
        remaining -= 1;
    }
    *entries = slots.into_iter().flatten().collect();
}

/// The `ancient-changes` entry for `version`, made from the entry at `first` if
/// there is none yet.
fn bucket_slot(slots: &mut [Option<ManagedFieldsEntry>], first: usize, version: &str) -> usize {
    let existing = slots.iter().position(|s| {
        s.as_ref().is_some_and(|e| e.is(ANCIENT_CHANGES_MANAGER, Operation::Update, None) && e.api_version == version)
    });
    if let Some(existing) = existing {
        return existing;
    }
    if let Some(entry) = slots[first].as_mut() {
        entry.manager = ANCIENT_CHANGES_MANAGER.to_string();
        entry.subresource = None;
    }
    first
}
