//! The parts of a Placement's spec the scheduler reads, parsed from JSON. Admission has
//! already checked the object against the CRD's schema; what is still wrong here becomes
//! `PlacementMisconfigured` with OCM's `plugin:message` (the plugin that found it).

use std::sync::Arc;

use flotilla_apimachinery::selector::LabelSelector;
use serde_json::{Map, Value};

use crate::cel::{CelCache, Compiled};
use crate::plugins::PluginRef;

/// A misconfiguration: which of OCM's plugins (or Flotilla's stages) found it, and what.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Misconfig {
    pub plugin: String,
    pub message: String,
}

impl Misconfig {
    pub fn new(plugin: impl Into<String>, message: impl Into<String>) -> Misconfig {
        Misconfig { plugin: plugin.into(), message: message.into() }
    }
}

/// One `predicates[].requiredClusterSelector`: its parts are ANDed.
pub(crate) struct Predicate {
    pub labels: LabelSelector,
    pub claims: LabelSelector,
    pub cel: Vec<Arc<Compiled>>,
    pub plugin: Option<PluginRef>,
}

/// A label selector object (`matchLabels`, `matchExpressions`); absent selects everything.
pub(crate) fn label_selector(v: Option<&Value>) -> Result<LabelSelector, String> {
    match v {
        None | Some(Value::Null) => Ok(LabelSelector::everything()),
        Some(v) => LabelSelector::from_object(v),
    }
}

/// A claim selector: `matchExpressions` only, matched against the cluster's claims.
pub(crate) fn claim_selector(v: Option<&Value>) -> Result<LabelSelector, String> {
    let exprs = v.and_then(|c| c.get("matchExpressions")).filter(|e| !e.is_null());
    match exprs {
        None => Ok(LabelSelector::everything()),
        Some(e) => LabelSelector::from_object(&Value::Object(Map::from_iter([("matchExpressions".into(), e.clone())]))),
    }
}

/// Reads `spec.predicates`. Errors are the `Predicate` plugin's (a CEL compile error reads
/// `compilation failed: ...` as OCM's).
pub(crate) fn predicates(spec: &Value, cel: &CelCache) -> Result<Vec<Predicate>, Misconfig> {
    let Some(items) = spec.get("predicates").and_then(Value::as_array) else { return Ok(Vec::new()) };
    let bad = |m: String| Misconfig::new("Predicate", m);
    let mut out = Vec::with_capacity(items.len());
    for (i, p) in items.iter().enumerate() {
        let sel = p.get("requiredClusterSelector").unwrap_or(&Value::Null);
        let labels = label_selector(sel.get("labelSelector")).map_err(bad)?;
        let claims = claim_selector(sel.get("claimSelector")).map_err(bad)?;
        let mut compiled = Vec::new();
        let exprs = sel.pointer("/celSelector/celExpressions").and_then(Value::as_array);
        for e in exprs.into_iter().flatten() {
            let Some(text) = e.as_str() else {
                return Err(bad(format!(
                    "predicates[{i}].requiredClusterSelector.celSelector: expressions must be strings"
                )));
            };
            compiled.push(cel.compile(text).map_err(bad)?);
        }
        let plugin = match sel.get("plugin") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                PluginRef::parse(v, &format!("predicates[{i}].requiredClusterSelector.plugin"))
                    .map_err(|m| Misconfig::new("Predicate", m))?,
            ),
        };
        out.push(Predicate { labels, claims, cel: compiled, plugin });
    }
    Ok(out)
}

/// What a prioritizer is (OCM's `ScoreCoordinate`, plus Flotilla's `Plugin` and
/// `TaintToleration`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Coordinate {
    Balance,
    Steady,
    ResourceAllocatableCpu,
    ResourceAllocatableMemory,
    /// Flotilla: the penalty for PreferNoSelect taints no toleration matches.
    TaintToleration,
    AddOn {
        resource: String,
        score: String,
    },
    Plugin(PluginRef),
}

impl Coordinate {
    /// The name in the explanation, as OCM's prioritizer names (`AddOn/<resource>/<score>`).
    pub fn name(&self) -> String {
        match self {
            Coordinate::Balance => "Balance".into(),
            Coordinate::Steady => "Steady".into(),
            Coordinate::ResourceAllocatableCpu => "ResourceAllocatableCPU".into(),
            Coordinate::ResourceAllocatableMemory => "ResourceAllocatableMemory".into(),
            Coordinate::TaintToleration => "TaintToleration".into(),
            Coordinate::AddOn { resource, score } => format!("AddOn/{resource}/{score}"),
            Coordinate::Plugin(p) => format!("Plugin/{}", p.name),
        }
    }

    /// Whether two entries are the same prioritizer (a later entry overrides the weight).
    fn same(&self, other: &Coordinate) -> bool {
        match (self, other) {
            (Coordinate::Plugin(a), Coordinate::Plugin(b)) => a.name == b.name && a.configuration == b.configuration,
            (a, b) => a == b,
        }
    }
}

/// A prioritizer with its weight (never 0: weight 0 disables it, as OCM).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Weighted {
    pub coordinate: Coordinate,
    pub weight: i64,
}

/// `spec.prioritizerPolicy` as OCM's `getWeights` and `getPrioritizers`: `Additive` (or
/// empty) starts from Balance=1, Steady=1 (and Flotilla's TaintToleration=1), `Exact` from
/// nothing; each configuration then sets its coordinate's weight. Errors are reported as
/// OCM does, with an empty plugin name.
pub(crate) fn prioritizers(spec: &Value) -> Result<Vec<Weighted>, Misconfig> {
    let policy = spec.get("prioritizerPolicy");
    let mode = policy.and_then(|p| p.get("mode")).and_then(Value::as_str).unwrap_or_default();
    let mut weights: Vec<Weighted> = match mode {
        "" | "Additive" => vec![
            Weighted { coordinate: Coordinate::Balance, weight: 1 },
            Weighted { coordinate: Coordinate::Steady, weight: 1 },
            Weighted { coordinate: Coordinate::TaintToleration, weight: 1 },
        ],
        "Exact" => Vec::new(),
        other => return Err(Misconfig::new("", format!("incorrect prioritizer policy mode: {other}"))),
    };
    let configs = policy.and_then(|p| p.get("configurations")).and_then(Value::as_array);
    for (i, c) in configs.into_iter().flatten().enumerate() {
        let Some(sc) = c.get("scoreCoordinate").filter(|v| !v.is_null()) else {
            return Err(Misconfig::new("", "scoreCoordinate field is required"));
        };
        let weight = c.get("weight").and_then(Value::as_i64).unwrap_or(1);
        if !(-10..=10).contains(&weight) {
            return Err(Misconfig::new("", format!("configurations[{i}].weight {weight} is not within [-10, 10]")));
        }
        let coordinate = coordinate(sc, i)?;
        match weights.iter_mut().find(|w| w.coordinate.same(&coordinate)) {
            Some(w) => w.weight = weight,
            None => weights.push(Weighted { coordinate, weight }),
        }
    }
    weights.retain(|w| w.weight != 0);
    Ok(weights)
}

fn coordinate(sc: &Value, i: usize) -> Result<Coordinate, Misconfig> {
    let kind = sc.get("type").and_then(Value::as_str).unwrap_or("BuiltIn");
    match kind {
        "BuiltIn" | "" => {
            let name = sc.get("builtIn").and_then(Value::as_str).unwrap_or_default();
            Ok(match name {
                "Balance" => Coordinate::Balance,
                "Steady" => Coordinate::Steady,
                "ResourceAllocatableCPU" => Coordinate::ResourceAllocatableCpu,
                "ResourceAllocatableMemory" => Coordinate::ResourceAllocatableMemory,
                "TaintToleration" => Coordinate::TaintToleration,
                other => return Err(Misconfig::new("", format!("incorrect builtin prioritizer: {other}"))),
            })
        }
        "Plugin" => {
            let Some(p) = sc.get("plugin").filter(|v| !v.is_null()) else {
                return Err(Misconfig::new("", "plugin should not be empty"));
            };
            PluginRef::parse(p, &format!("prioritizerPolicy.configurations[{i}].scoreCoordinate.plugin"))
                .map(Coordinate::Plugin)
                .map_err(|m| Misconfig::new("", m))
        }
        // OCM reads every other type as AddOn.
        _ => {
            let Some(a) = sc.get("addOn").filter(|v| !v.is_null()) else {
                return Err(Misconfig::new("", "addOn should not be empty"));
            };
            let text = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            Ok(Coordinate::AddOn { resource: text("resourceName"), score: text("scoreName") })
        }
    }
}

/// Where a spread constraint reads the topology value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyType {
    Label,
    Claim,
}

/// One `spreadPolicy.spreadConstraints[]` item.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SpreadConstraint {
    pub key: String,
    pub key_type: KeyType,
    pub max_skew: usize,
    /// `DoNotSchedule`; `false` is `ScheduleAnyway` (the CRD's default).
    pub hard: bool,
}

/// Most spread constraints (the CRD's `maxItems`).
pub(crate) const MAX_SPREAD_CONSTRAINTS: usize = 8;

/// Reads `spec.spreadPolicy.spreadConstraints` with the CRD's defaults (`maxSkew` 1,
/// `whenUnsatisfiable` ScheduleAnyway, `topologyKeyType` Label).
pub(crate) fn spread_constraints(spec: &Value) -> Result<Vec<SpreadConstraint>, Misconfig> {
    let bad = |m: String| Misconfig::new("SpreadConstraints", m);
    let Some(items) = spec.pointer("/spreadPolicy/spreadConstraints").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    if items.len() > MAX_SPREAD_CONSTRAINTS {
        return Err(bad(format!("at most {MAX_SPREAD_CONSTRAINTS} spread constraints, got {}", items.len())));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, c) in items.iter().enumerate() {
        let key = c.get("topologyKey").and_then(Value::as_str).unwrap_or_default().to_string();
        if key.is_empty() {
            return Err(bad(format!("spreadConstraints[{i}].topologyKey is required")));
        }
        let key_type = match c.get("topologyKeyType").and_then(Value::as_str).unwrap_or("Label") {
            "Label" | "" => KeyType::Label,
            "Claim" => KeyType::Claim,
            other => {
                return Err(bad(format!("spreadConstraints[{i}].topologyKeyType must be Label or Claim, not {other}")));
            }
        };
        let max_skew = c.get("maxSkew").and_then(Value::as_i64).unwrap_or(1);
        if max_skew < 1 {
            return Err(bad(format!("spreadConstraints[{i}].maxSkew must be at least 1, got {max_skew}")));
        }
        let hard = match c.get("whenUnsatisfiable").and_then(Value::as_str).unwrap_or("ScheduleAnyway") {
            "DoNotSchedule" => true,
            "ScheduleAnyway" | "" => false,
            other => {
                return Err(bad(format!(
                    "spreadConstraints[{i}].whenUnsatisfiable must be DoNotSchedule or ScheduleAnyway, not {other}"
                )));
            }
        };
        out.push(SpreadConstraint { key, key_type, max_skew: usize::try_from(max_skew).unwrap_or(usize::MAX), hard });
    }
    Ok(out)
}

/// One `decisionStrategy.groupStrategy.decisionGroups[]` item.
pub(crate) struct GroupSpec {
    pub name: String,
    pub labels: LabelSelector,
    pub claims: LabelSelector,
}

/// `clustersPerDecisionGroup`: a count or a percentage of the selected clusters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum PerGroup {
    Count(i64),
    Percent(f64),
}

/// Reads the group strategy; errors as OCM's (`<value> invalid type: string is not a
/// percentage`, with an empty plugin name).
pub(crate) fn group_strategy(spec: &Value) -> Result<(Vec<GroupSpec>, PerGroup), Misconfig> {
    let gs = spec.pointer("/decisionStrategy/groupStrategy");
    let per = match gs.and_then(|g| g.get("clustersPerDecisionGroup")) {
        None | Some(Value::Null) => PerGroup::Percent(100.0),
        Some(Value::Number(n)) => PerGroup::Count(n.as_i64().unwrap_or(0)),
        Some(Value::String(s)) => {
            let percent = s.strip_suffix('%').and_then(|p| p.trim().parse::<f64>().ok()).filter(|f| f.is_finite());
            match percent {
                Some(p) => PerGroup::Percent(p),
                None => return Err(Misconfig::new("", format!("{s} invalid type: string is not a percentage"))),
            }
        }
        Some(other) => return Err(Misconfig::new("", format!("{other} invalid type: string is not a percentage"))),
    };
    let mut groups = Vec::new();
    let items = gs.and_then(|g| g.get("decisionGroups")).and_then(Value::as_array);
    for g in items.into_iter().flatten() {
        let name = g.get("groupName").and_then(Value::as_str).unwrap_or_default().to_string();
        let sel = g.get("groupClusterSelector").unwrap_or(&Value::Null);
        let labels = label_selector(sel.get("labelSelector")).map_err(|m| Misconfig::new("", m))?;
        let claims = claim_selector(sel.get("claimSelector")).map_err(|m| Misconfig::new("", m))?;
        groups.push(GroupSpec { name, labels, claims });
    }
    Ok((groups, per))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn weights_follow_the_mode_and_override_defaults() {
        let names = |spec: Value| -> Vec<(String, i64)> {
            prioritizers(&spec)
                .unwrap_or_else(|e| panic!("{e:?}"))
                .into_iter()
                .map(|w| (w.coordinate.name(), w.weight))
                .collect()
        };
        assert_eq!(names(json!({})), [("Balance".into(), 1), ("Steady".into(), 1), ("TaintToleration".into(), 1)]);
        let additive = json!({"prioritizerPolicy": {"mode": "Additive", "configurations": [
            {"scoreCoordinate": {"builtIn": "Steady"}, "weight": 3},
            {"scoreCoordinate": {"builtIn": "Balance"}, "weight": 0},
            {"scoreCoordinate": {"type": "AddOn", "addOn": {"resourceName": "r", "scoreName": "s"}}, "weight": -2},
            {"scoreCoordinate": {"type": "BuiltIn", "builtIn": "ResourceAllocatableCPU"}}
        ]}});
        assert_eq!(
            names(additive),
            [
                ("Steady".into(), 3),
                ("TaintToleration".into(), 1),
                ("AddOn/r/s".into(), -2),
                ("ResourceAllocatableCPU".into(), 1)
            ]
        );
        let exact = json!({"prioritizerPolicy": {"mode": "Exact", "configurations": [
            {"scoreCoordinate": {"builtIn": "ResourceAllocatableMemory"}, "weight": 2}]}});
        assert_eq!(names(exact), [("ResourceAllocatableMemory".into(), 2)]);
        for (spec, message) in [
            (json!({"prioritizerPolicy": {"mode": "Other"}}), "incorrect prioritizer policy mode: Other"),
            (json!({"prioritizerPolicy": {"configurations": [{"weight": 1}]}}), "scoreCoordinate field is required"),
            (
                json!({"prioritizerPolicy": {"configurations": [{"scoreCoordinate": {"builtIn": "Nope"}}]}}),
                "incorrect builtin prioritizer: Nope",
            ),
            (
                json!({"prioritizerPolicy": {"configurations": [{"scoreCoordinate": {"type": "AddOn"}}]}}),
                "addOn should not be empty",
            ),
        ] {
            assert_eq!(prioritizers(&spec).err().map(|e| e.message), Some(message.to_string()));
        }
    }

    #[test]
    fn spread_constraints_take_the_crd_defaults() {
        let c = spread_constraints(&json!({"spreadPolicy": {"spreadConstraints": [{"topologyKey": "zone"}]}}))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c, [SpreadConstraint { key: "zone".into(), key_type: KeyType::Label, max_skew: 1, hard: false }]);
        for bad in [
            json!({"spreadPolicy": {"spreadConstraints": [{"topologyKey": ""}]}}),
            json!({"spreadPolicy": {"spreadConstraints": [{"topologyKey": "z", "maxSkew": 0}]}}),
            json!({"spreadPolicy": {"spreadConstraints": [{"topologyKey": "z", "topologyKeyType": "Field"}]}}),
            json!({"spreadPolicy": {"spreadConstraints": vec![json!({"topologyKey": "z"}); 9]}}),
        ] {
            assert!(spread_constraints(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clusters_per_group_is_a_count_or_a_percentage() {
        let per = |v: Value| {
            group_strategy(&json!({"decisionStrategy": {"groupStrategy": {"clustersPerDecisionGroup": v}}}))
                .map(|(_, p)| p)
        };
        assert_eq!(per(json!(5)), Ok(PerGroup::Count(5)));
        assert_eq!(per(json!("25%")), Ok(PerGroup::Percent(25.0)));
        assert_eq!(per(Value::Null), Ok(PerGroup::Percent(100.0)));
        assert_eq!(
            per(json!("5")).err().map(|e| e.message),
            Some("5 invalid type: string is not a percentage".to_string())
        );
    }
}
