//! Walks over objects guided by a merge strategy: the field set of an applied
//! configuration, the comparison of two objects, the server-side-apply merge and
//! the removal of fields (structured-merge-diff's `typed` package, schema-light).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use super::fieldset::{FieldPath, FieldSet, PathElement};
use crate::merge_schema::{ListType, MergeStrategy};
use crate::patch::WithObjectMeta;

/// How a position in an object is walked.
enum Shape {
    /// Compared and owned as a whole: scalars, atomic lists and maps, type changes.
    Leaf,
    /// A granular map: each field on its own.
    Map,
    /// A map or set list: each item on its own.
    List(ListType),
}

/// Fields added, changed and removed between two objects. Added and removed
/// include maps, lists and list items that appear or disappear as a whole.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    /// Fields whose value the new object sets: added or modified.
    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }
}

/// Where the walk is: field names for the strategy (list items are transparent)
/// and the full path for field sets.
#[derive(Default)]
struct Position {
    names: Vec<String>,
    path: Vec<PathElement>,
}

impl Position {
    fn enter_field(&mut self, name: &str) {
        self.names.push(name.to_string());
        self.path.push(PathElement::Field(name.to_string()));
    }

    fn leave_field(&mut self) {
        self.names.pop();
        self.path.pop();
    }
}

pub(crate) struct Walker<'a> {
    strategy: WithObjectMeta<'a>,
}

impl<'a> Walker<'a> {
    pub fn new(strategy: &'a dyn MergeStrategy) -> Self {
        Walker { strategy: WithObjectMeta(strategy) }
    }

    fn list_type(&self, names: &[String]) -> ListType {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.strategy.list_type(&names)
    }

    fn map_is_atomic(&self, names: &[String]) -> bool {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.strategy.map_is_atomic(&names)
    }

    /// The shape of a position given the values on either side (either may be absent).
    fn shape(&self, names: &[String], a: Option<&Value>, b: Option<&Value>) -> Shape {
        let present: Vec<&Value> = a.into_iter().chain(b).collect();
        if present.is_empty() {
            return Shape::Leaf;
        }
        if present.iter().all(|v| v.is_object()) && !self.map_is_atomic(names) {
            return Shape::Map;
        }
        if present.iter().all(|v| v.is_array()) {
            return match self.list_type(names) {
                ListType::Map(keys) if !keys.is_empty() => Shape::List(ListType::Map(keys)),
                ListType::Set => Shape::List(ListType::Set),
                _ => Shape::Leaf,
            };
        }
        Shape::Leaf
    }

    // -- Field set of an applied configuration -----------------------------------

    /// Every field the configuration specifies, as structured-merge-diff's
    /// `ToFieldSet`: leaves, list items (with `.`), empty maps and nulls; maps and
    /// lists that have content are implied by their children.
    pub fn field_set(&self, obj: &Value) -> FieldSet {
        let mut set = FieldSet::new();
        self.collect(obj, &mut Position::default(), &mut set);
        set
    }

    fn collect(&self, value: &Value, at: &mut Position, set: &mut FieldSet) {
        match (self.shape(&at.names, Some(value), None), value) {
            (Shape::Map, Value::Object(map)) => {
                if map.is_empty() {
                    set.insert(&at.path);
                }
                for (key, child) in map {
                    at.enter_field(key);
                    self.collect(child, at, set);
                    at.leave_field();
                }
            }
            (Shape::List(list_type), Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    at.path.push(item_element(&list_type, item, index));
                    self.collect(item, at, set);
                    set.insert(&at.path);
                    at.path.pop();
                }
            }
            _ => set.insert(&at.path),
        }
    }

    // -- Comparison ---------------------------------------------------------------

    pub fn compare(&self, old: &Value, new: &Value) -> Comparison {
        let mut out = Comparison::default();
        self.compare_at(Some(old), Some(new), &mut Position::default(), &mut out);
        out
    }

    fn compare_at(&self, old: Option<&Value>, new: Option<&Value>, at: &mut Position, out: &mut Comparison) {
        match self.shape(&at.names, old, new) {
            Shape::Map => {
                let (om, nm) = (old.and_then(Value::as_object), new.and_then(Value::as_object));
                // Empty on both sides: compared as a leaf, so `{}` vs absent shows.
                if om.is_none_or(Map::is_empty) && nm.is_none_or(Map::is_empty) {
                    return compare_leaf(old, new, &at.path, out);
                }
                for key in union_keys(om, nm) {
                    at.enter_field(key);
                    self.compare_at(om.and_then(|m| m.get(key)), nm.and_then(|m| m.get(key)), at, out);
                    at.leave_field();
                }
                mark_container(old, new, &at.path, out);
            }
            Shape::List(list_type) => {
                let (ol, nl) = (old.and_then(Value::as_array), new.and_then(Value::as_array));
                if ol.is_none_or(Vec::is_empty) && nl.is_none_or(Vec::is_empty) {
                    return compare_leaf(old, new, &at.path, out);
                }
                let old_items = keyed_items(&list_type, ol.map(Vec::as_slice));
                let new_items = keyed_items(&list_type, nl.map(Vec::as_slice));
                let elements = old_items.order.iter().chain(&new_items.order).collect::<Vec<_>>();
                let mut seen = BTreeSet::new();
                for pe in elements {
                    if !seen.insert(pe) {
                        continue;
                    }
                    at.path.push(pe.clone());
                    self.compare_at(old_items.first(pe), new_items.first(pe), at, out);
                    at.path.pop();
                }
                mark_container(old, new, &at.path, out);
            }
            Shape::Leaf => compare_leaf(old, new, &at.path, out),
        }
    }

    // -- Server-side-apply merge ------------------------------------------------

    /// Merges an applied configuration into the live object: maps field by field,
    /// map lists by key and set lists by value (in structured-merge-diff's order),
    /// everything else replaced. `null` in the configuration removes the field.
    pub fn merge(&self, live: &Value, config: &Value) -> Value {
        let mut names = Vec::new();
        self.merge_at(Some(live), Some(config), &mut names).unwrap_or_else(|| live.clone())
    }

    fn merge_at(&self, live: Option<&Value>, config: Option<&Value>, names: &mut Vec<String>) -> Option<Value> {
        let Some(config) = config else {
            return live.cloned();
        };
        match (self.shape(names, live, Some(config)), config) {
            (_, Value::Null) => None,
            (Shape::Map, Value::Object(cm)) => {
                Some(Value::Object(self.merge_maps(live.and_then(Value::as_object), cm, names)))
            }
            (Shape::List(list_type), Value::Array(cl)) => {
                Some(Value::Array(self.merge_lists(&list_type, live.and_then(Value::as_array), cl, names)))
            }
            _ => Some(config.clone()),
        }
    }

    fn merge_maps(
        &self,
        live: Option<&Map<String, Value>>,
        config: &Map<String, Value>,
        names: &mut Vec<String>,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, lv) in live.into_iter().flatten() {
            names.push(key.clone());
            if let Some(v) = self.merge_at(Some(lv), config.get(key), names) {
                out.insert(key.clone(), v);
            }
            names.pop();
        }
        for (key, cv) in config {
            if live.is_some_and(|l| l.contains_key(key)) {
                continue;
            }
            names.push(key.clone());
            if let Some(v) = self.merge_at(None, Some(cv), names) {
                out.insert(key.clone(), v);
            }
            names.pop();
        }
        out
    }

    /// Items only in the live list keep their place; items of the configuration
    /// follow the configuration's order (structured-merge-diff's list merge).
    /// Duplicate live items the configuration does not name are kept as they are.
    fn merge_lists(
        &self,
        list_type: &ListType,
        live: Option<&Vec<Value>>,
        config: &[Value],
        names: &mut Vec<String>,
    ) -> Vec<Value> {
        let lhs: Vec<(PathElement, &Value)> =
            live.into_iter().flatten().enumerate().map(|(i, v)| (item_element(list_type, v, i), v)).collect();
        let keyed_config = keyed_items(list_type, Some(config));
        let rhs: Vec<(PathElement, &Value)> =
            keyed_config.order.iter().filter_map(|pe| Some((pe.clone(), keyed_config.first(pe)?))).collect();
        let in_rhs: BTreeSet<&PathElement> = rhs.iter().map(|(pe, _)| pe).collect();
        let mut first_lhs: BTreeMap<&PathElement, &Value> = BTreeMap::new();
        for (pe, v) in &lhs {
            first_lhs.entry(pe).or_insert(v);
        }
        let mut shared: VecDeque<&PathElement> =
            rhs.iter().map(|(pe, _)| pe).filter(|pe| first_lhs.contains_key(pe)).collect();
        let mut next_shared = shared.pop_front();
        let mut emitted: BTreeSet<&PathElement> = BTreeSet::new();
        let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
        let (mut li, mut ri) = (0, 0);
        while li < lhs.len() || ri < rhs.len() {
            if li < lhs.len() && ri < rhs.len() {
                let lpe = &lhs[li].0;
                if *lpe == rhs[ri].0 {
                    out.extend(self.merge_at(first_lhs.get(lpe).copied(), Some(rhs[ri].1), names));
                    emitted.insert(lpe);
                    if next_shared == Some(lpe) {
                        next_shared = shared.pop_front();
                    }
                    li += 1;
                    ri += 1;
                    continue;
                }
                // A shared item that comes later in the configuration: wait for it.
                if in_rhs.contains(lpe) && next_shared.is_some_and(|n| n != lpe) {
                    li += 1;
                    continue;
                }
            }
            if li < lhs.len() {
                let (lpe, lv) = &lhs[li];
                if !in_rhs.contains(lpe) {
                    out.push((*lv).clone());
                    li += 1;
                    continue;
                }
                if emitted.contains(lpe) || ri >= rhs.len() {
                    li += 1;
                    continue;
                }
            }
            if ri < rhs.len() {
                let (rpe, rv) = &rhs[ri];
                out.extend(self.merge_at(first_lhs.get(rpe).copied(), Some(rv), names));
                emitted.insert(rpe);
                if next_shared == Some(rpe) {
                    next_shared = shared.pop_front();
                }
                ri += 1;
            }
        }
        out
    }

    // -- Removal ------------------------------------------------------------------

    /// Removes every member of `set` (with everything below it) from the object.
    pub fn remove(&self, obj: &mut Value, set: &FieldSet) {
        self.remove_at(obj, set, &mut Vec::new());
    }

    fn remove_at(&self, value: &mut Value, set: &FieldSet, names: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                map.retain(|k, _| !set.has_member(&PathElement::Field(k.clone())));
                for (pe, child) in set.children() {
                    if let PathElement::Field(name) = pe
                        && let Some(inner) = map.get_mut(name)
                    {
                        names.push(name.clone());
                        self.remove_at(inner, child, names);
                        names.pop();
                    }
                }
            }
            Value::Array(items) => {
                let list_type = match self.list_type(names) {
                    ListType::Map(keys) if keys.is_empty() => return,
                    ListType::Atomic => return,
                    other => other,
                };
                let old = std::mem::take(items);
                for (index, mut item) in old.into_iter().enumerate() {
                    let pe = item_element(&list_type, &item, index);
                    if set.has_member(&pe) {
                        continue;
                    }
                    if let Some(child) = set.child(&pe) {
                        self.remove_at(&mut item, child, names);
                    }
                    items.push(item);
                }
            }
            _ => {}
        }
    }

    // -- Checks of an applied configuration -------------------------------------

    /// Map-list items must carry their keys, and no list may name an item twice
    /// (structured-merge-diff rejects such configurations).
    pub fn check_lists(&self, obj: &Value) -> Result<(), String> {
        self.check_at(obj, &mut Position::default())
    }

    fn check_at(&self, value: &Value, at: &mut Position) -> Result<(), String> {
        match (self.shape(&at.names, Some(value), None), value) {
            (Shape::Map, Value::Object(map)) => {
                for (key, child) in map {
                    at.enter_field(key);
                    let result = self.check_at(child, at);
                    at.leave_field();
                    result?;
                }
                Ok(())
            }
            (Shape::List(list_type), Value::Array(items)) => {
                let where_ = FieldPath(at.path.clone());
                let mut seen = BTreeSet::new();
                for (index, item) in items.iter().enumerate() {
                    if let ListType::Map(keys) = &list_type {
                        check_keys(item, keys).map_err(|e| format!("{where_}: element {index}: {e}"))?;
                    }
                    let pe = item_element(&list_type, item, index);
                    if !seen.insert(pe.clone()) {
                        return Err(format!("{where_}: duplicate entries for key {pe}"));
                    }
                    at.path.push(pe);
                    let result = self.check_at(item, at);
                    at.path.pop();
                    result?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn check_keys(item: &Value, keys: &[String]) -> Result<(), String> {
    let Some(map) = item.as_object() else {
        return Err("associative list with keys may only contain maps".to_string());
    };
    match keys.iter().find(|k| map.get(k.as_str()).is_none_or(Value::is_null)) {
        Some(missing) => Err(format!("associative list with keys has an element that omits key field {missing:?}")),
        None => Ok(()),
    }
}

/// The path element that identifies a list item: its key fields in a map list
/// (those present), its value in a set list, its position when it cannot be keyed.
pub(crate) fn item_element(list_type: &ListType, item: &Value, index: usize) -> PathElement {
    match (list_type, item) {
        (ListType::Map(keys), Value::Object(map)) => {
            let fields: Vec<(&str, &Value)> = keys
                .iter()
                .filter_map(|k| map.get(k.as_str()).filter(|v| !v.is_null()).map(|v| (k.as_str(), v)))
                .collect();
            if fields.is_empty() { PathElement::Index(index) } else { PathElement::key(fields) }
        }
        (ListType::Set, value) => PathElement::value(value),
        _ => PathElement::Index(index),
    }
}

/// List items by path element, in list order; later duplicates are ignored.
struct KeyedItems<'v> {
    order: Vec<PathElement>,
    items: BTreeMap<PathElement, &'v Value>,
}

impl<'v> KeyedItems<'v> {
    fn first(&self, pe: &PathElement) -> Option<&'v Value> {
        self.items.get(pe).copied()
    }
}

fn keyed_items<'v>(list_type: &ListType, list: Option<&'v [Value]>) -> KeyedItems<'v> {
    let mut keyed = KeyedItems { order: Vec::new(), items: BTreeMap::new() };
    for (index, item) in list.into_iter().flatten().enumerate() {
        let pe = item_element(list_type, item, index);
        if !keyed.items.contains_key(&pe) {
            keyed.order.push(pe.clone());
            keyed.items.insert(pe, item);
        }
    }
    keyed
}

fn union_keys<'m>(a: Option<&'m Map<String, Value>>, b: Option<&'m Map<String, Value>>) -> Vec<&'m String> {
    let mut keys: Vec<&String> = a.into_iter().flat_map(|m| m.keys()).collect();
    keys.extend(b.into_iter().flat_map(|m| m.keys()).filter(|k| !a.is_some_and(|m| m.contains_key(k.as_str()))));
    keys
}

fn compare_leaf(old: Option<&Value>, new: Option<&Value>, path: &[PathElement], out: &mut Comparison) {
    match (old, new) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) if a != b => out.modified.insert(path),
        _ => {}
    }
}

/// A map, list or list item that appears or disappears as a whole is itself
/// added or removed.
fn mark_container(old: Option<&Value>, new: Option<&Value>, path: &[PathElement], out: &mut Comparison) {
    match (old, new) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        _ => {}
    }
}
