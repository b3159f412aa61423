//! Where a root policy goes and what its replicas hold, as a pure function of the objects read:
//! the PlacementBindings and PolicySets of its namespace, the clusters their Placements'
//! PlacementDecisions list, and the WasmPlugins its templates name.
//!
//! OCM's rules (`governance-policy-propagator:controllers/propagator`):
//! - only bindings in the policy's own namespace count; a binding binds the policy when a
//!   subject names it (`kind: Policy`) or names a PolicySet of that namespace listing it;
//! - the bindings without `subFilter` place the policy: the union of their Placements'
//!   decisions; a binding with `subFilter: restricted` places nothing, it only applies its
//!   overrides to the clusters the others selected (and is listed in the status only then);
//! - `bindingOverrides.remediationAction: Enforce` makes the replica of every cluster that
//!   binding selects `enforce`, whatever the root says;
//! - a PolicySet's `exclusions` keep the policy off the listed clusters through that set's
//!   bindings only (other bindings of the policy are not affected).
//!
//! Only `Placement` (`cluster.open-cluster-management.io`) is a placement: the deprecated
//! PlacementRule does not exist in Flotilla, and a binding to one is reported, not ignored.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::{
    CLUSTER_NAME_LABEL, CLUSTER_NAMESPACE_LABEL, GROUP, MAX_REPLICA_NAME_LENGTH, POLICY_CHECK_WORLD, ROOT_POLICY_LABEL,
    WASM_POLICY_API_VERSION, WASM_POLICY_KIND, replica_name,
};

const PLACEMENT_GROUP: &str = "cluster.open-cluster-management.io";

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn name_of(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

/// A subject of a binding that binds nothing, reported on the policy of that name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSubject {
    /// The subject's `name` (the policy it was presumably meant for).
    pub name: String,
    pub message: String,
}

/// A PlacementBinding as the propagator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    /// The Placement it binds, or why it binds none.
    pub placement: Result<String, String>,
    /// Subjects `kind: Policy`.
    pub policies: BTreeSet<String>,
    /// Subjects `kind: PolicySet`.
    pub policy_sets: BTreeSet<String>,
    pub bad_subjects: Vec<BadSubject>,
    /// `bindingOverrides.remediationAction: Enforce`.
    pub enforce: bool,
    /// `subFilter: restricted`.
    pub restricted: bool,
}

impl Binding {
    pub fn parse(obj: &Value) -> Binding {
        let name = name_of(obj).to_string();
        let (group, kind, placement) = (
            str_at(obj, "/placementRef/apiGroup"),
            str_at(obj, "/placementRef/kind"),
            str_at(obj, "/placementRef/name"),
        );
        let placement = if kind != "Placement" {
            Err(format!(
                "placementRef.kind is {kind:?}: only Placement ({PLACEMENT_GROUP}) is supported (PlacementRule is deprecated in OCM and absent from Flotilla)"
            ))
        } else if group != PLACEMENT_GROUP {
            Err(format!("placementRef.apiGroup is {group:?}: a Placement's is {PLACEMENT_GROUP:?}"))
        } else if placement.is_empty() {
            Err("placementRef.name is empty".to_string())
        } else {
            Ok(placement.to_string())
        };
        let mut binding = Binding {
            name,
            placement,
            policies: BTreeSet::new(),
            policy_sets: BTreeSet::new(),
            bad_subjects: Vec::new(),
            enforce: str_at(obj, "/bindingOverrides/remediationAction").eq_ignore_ascii_case("enforce"),
            restricted: str_at(obj, "/subFilter") == "restricted",
        };
        let subjects = obj.get("subjects").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for (i, subject) in subjects.iter().enumerate() {
            let (group, kind, name) =
                (str_at(subject, "/apiGroup"), str_at(subject, "/kind"), str_at(subject, "/name"));
            if name.is_empty() {
                continue;
            }
            let bad = |message: String| BadSubject { name: name.to_string(), message };
            if group != GROUP {
                binding.bad_subjects.push(bad(format!(
                    "PlacementBinding {}: subjects[{i}].apiGroup is {group:?}, not {GROUP:?}; it binds nothing",
                    binding.name
                )));
                continue;
            }
            match kind {
                "Policy" => {
                    binding.policies.insert(name.to_string());
                }
                "PolicySet" => {
                    binding.policy_sets.insert(name.to_string());
                }
                other => binding.bad_subjects.push(bad(format!(
                    "PlacementBinding {}: subjects[{i}].kind is {other:?}, not Policy or PolicySet; it binds nothing",
                    binding.name
                ))),
            }
        }
        binding
    }

    /// Whether the binding names the policy directly or through one of `sets`.
    pub fn binds(&self, policy: &str, sets: &[PolicySet]) -> bool {
        self.policies.contains(policy)
            || sets.iter().any(|s| self.policy_sets.contains(&s.name) && s.policies.contains(policy))
    }
}

/// A PolicySet as the propagator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySet {
    pub name: String,
    pub policies: BTreeSet<String>,
    /// Policy name -> the clusters it is kept off through this set (`spec.exclusions`).
    pub exclusions: BTreeMap<String, BTreeSet<String>>,
}

impl PolicySet {
    pub fn parse(obj: &Value) -> PolicySet {
        let strings = |v: Option<&Value>| -> BTreeSet<String> {
            v.and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let mut exclusions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for exclusion in obj.pointer("/spec/exclusions").and_then(Value::as_array).into_iter().flatten() {
            let policy = str_at(exclusion, "/policyName");
            if !policy.is_empty() {
                exclusions.entry(policy.to_string()).or_default().extend(strings(exclusion.get("clusterNames")));
            }
        }
        PolicySet { name: name_of(obj).to_string(), policies: strings(obj.pointer("/spec/policies")), exclusions }
    }
}

/// One way a policy is bound: a binding's Placement, directly or through a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub binding: String,
    pub placement: String,
    pub policy_set: Option<String>,
    pub enforce: bool,
    pub restricted: bool,
    /// Clusters this route must not reach (the set's exclusions of this policy).
    pub excluded: BTreeSet<String>,
}

/// The routes of a policy, and the bindings that name it but cannot bind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    pub routes: Vec<Route>,
    pub problems: Vec<String>,
}

impl Routing {
    /// The Placements whose decisions are needed.
    pub fn placements(&self) -> BTreeSet<&str> {
        self.routes.iter().map(|r| r.placement.as_str()).collect()
    }
}

/// How `policy` is bound by the bindings and sets of its namespace.
pub fn routes(policy: &str, bindings: &[Binding], sets: &[PolicySet]) -> Routing {
    let mut routing = Routing::default();
    for binding in bindings {
        for bad in binding.bad_subjects.iter().filter(|b| b.name == policy) {
            routing.problems.push(bad.message.clone());
        }
        let direct = binding.policies.contains(policy);
        let through: Vec<&PolicySet> =
            sets.iter().filter(|s| binding.policy_sets.contains(&s.name) && s.policies.contains(policy)).collect();
        if !direct && through.is_empty() {
            continue;
        }
        let placement = match &binding.placement {
            Ok(p) => p.clone(),
            Err(why) => {
                routing.problems.push(format!("PlacementBinding {}: {why}; it binds nothing", binding.name));
                continue;
            }
        };
        let route = |policy_set: Option<&PolicySet>| Route {
            binding: binding.name.clone(),
            placement: placement.clone(),
            policy_set: policy_set.map(|s| s.name.clone()),
            enforce: binding.enforce,
            restricted: binding.restricted,
            excluded: policy_set.and_then(|s| s.exclusions.get(policy)).cloned().unwrap_or_default(),
        };
        if direct {
            routing.routes.push(route(None));
        }
        for set in through {
            routing.routes.push(route(Some(set)));
        }
    }
    routing
}

/// An entry of the root's `status.placement`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlacementStatus {
    pub binding: String,
    pub placement: String,
    pub policy_set: Option<String>,
}

impl PlacementStatus {
    pub fn to_json(&self) -> Value {
        let mut out = json!({"placementBinding": self.binding, "placement": self.placement});
        if let Some(set) = &self.policy_set {
            out["policySet"] = json!(set);
        }
        out
    }
}

/// Where the policy goes: cluster -> whether its replica is enforced by a binding override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placed {
    pub clusters: BTreeMap<String, bool>,
    pub placements: Vec<PlacementStatus>,
}

/// The clusters the routes select, given each Placement's decided clusters (OCM's
/// `getAllClusterDecisions`: unrestricted bindings place, restricted ones only override).
pub fn place(routes: &[Route], decided: &BTreeMap<String, BTreeSet<String>>) -> Placed {
    let mut placed = Placed::default();
    let clusters_of = |route: &Route| -> Vec<String> {
        decided.get(&route.placement).into_iter().flatten().filter(|c| !route.excluded.contains(*c)).cloned().collect()
    };
    for route in routes.iter().filter(|r| !r.restricted) {
        for cluster in clusters_of(route) {
            *placed.clusters.entry(cluster).or_insert(false) |= route.enforce;
        }
        placed.placements.push(status_of(route));
    }
    for route in routes.iter().filter(|r| r.restricted) {
        let mut found = false;
        for cluster in clusters_of(route) {
            if let Some(enforce) = placed.clusters.get_mut(&cluster) {
                found = true;
                *enforce |= route.enforce;
            }
        }
        if found {
            placed.placements.push(status_of(route));
        }
    }
    placed.placements.sort();
    placed.placements.dedup();
    placed
}

fn status_of(route: &Route) -> PlacementStatus {
    PlacementStatus {
        binding: route.binding.clone(),
        placement: route.placement.clone(),
        policy_set: route.policy_set.clone(),
    }
}

/// Why a policy's replicas cannot be named, if they cannot.
pub fn replica_name_problem(namespace: &str, name: &str) -> Option<String> {
    let replica = replica_name(namespace, name);
    (replica.len() > MAX_REPLICA_NAME_LENGTH).then(|| {
        format!(
            "the replicated policy's name {replica:?} (<namespace>.<name>) is {} characters; it is also a label value, which \
             Kubernetes limits to {MAX_REPLICA_NAME_LENGTH}: shorten the policy's name or namespace",
            replica.len()
        )
    })
}

/// A WasmPlugin as a WasmPolicy template needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub digest: String,
    pub world: String,
}

/// The `spec.policy-templates` of a policy.
fn templates(policy: &Value) -> &[Value] {
    policy.pointer("/spec/policy-templates").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// The WasmPlugin a template names, if it is a WasmPolicy.
fn wasm_plugin_of(template: &Value) -> Option<&str> {
    let definition = template.get("objectDefinition")?;
    (str_at(definition, "/apiVersion") == WASM_POLICY_API_VERSION && str_at(definition, "/kind") == WASM_POLICY_KIND)
        .then(|| str_at(definition, "/spec/plugin/name"))
}

/// The WasmPlugins the policy's WasmPolicy templates name.
pub fn plugin_names(policy: &Value) -> BTreeSet<String> {
    templates(policy).iter().filter_map(wasm_plugin_of).filter(|n| !n.is_empty()).map(str::to_string).collect()
}

/// What each template's plugin resolves to: its digest, or why there is none.
fn resolve<'a>(name: &str, plugins: &'a BTreeMap<String, Option<PluginInfo>>) -> Result<&'a str, String> {
    match plugins.get(name).and_then(Option::as_ref) {
        None => Err(format!("WasmPlugin {name:?} does not exist")),
        Some(info) if info.world != POLICY_CHECK_WORLD => {
            Err(format!("WasmPlugin {name:?} implements world {:?}, not {POLICY_CHECK_WORLD:?}", info.world))
        }
        Some(info) if info.digest.is_empty() => Err(format!("WasmPlugin {name:?} has no spec.digest")),
        Some(info) => Ok(&info.digest),
    }
}

/// The templates whose plugin cannot be resolved, each with the reason (replicated without a
/// digest: the agent reports them NonCompliant).
pub fn plugin_problems(policy: &Value, plugins: &BTreeMap<String, Option<PluginInfo>>) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, template) in templates(policy).iter().enumerate() {
        let Some(name) = wasm_plugin_of(template) else { continue };
        let field = format!("spec.policy-templates[{i}].objectDefinition.spec.plugin");
        if name.is_empty() {
            problems.push(format!("{field}.name is missing: the WasmPolicy names no WasmPlugin"));
        } else if let Err(why) = resolve(name, plugins) {
            problems.push(format!("{field}.name: {why}; replicated without a digest"));
        }
    }
    problems
}

/// The labels and annotations a replica carries: the root's (all of them, or with
/// `copyPolicyMetadata: false` only the policy framework's own), plus OCM's three labels.
fn replica_metadata(root: &Value, cluster: &str) -> (Map<String, Value>, Map<String, Value>) {
    let copy_all = root.pointer("/spec/copyPolicyMetadata").and_then(Value::as_bool).unwrap_or(true);
    let framework = |key: &String| copy_all || key.starts_with(&format!("{GROUP}/"));
    let pick = |field: &str| -> Map<String, Value> {
        root.pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(k, _)| framework(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut labels = pick("labels");
    let root_label = replica_name(str_at(root, "/metadata/namespace"), name_of(root));
    labels.insert(ROOT_POLICY_LABEL.into(), json!(root_label));
    labels.insert(CLUSTER_NAME_LABEL.into(), json!(cluster));
    labels.insert(CLUSTER_NAMESPACE_LABEL.into(), json!(cluster));
    (labels, pick("annotations"))
}

/// The replica of `root` for `cluster` (its metadata and spec; the agent owns its status).
/// `enforce`: a binding override makes it `enforce` whatever the root says. WasmPolicy
/// templates get their plugin's `spec.plugin.digest`, or lose it when it cannot be resolved.
pub fn replica(root: &Value, cluster: &str, enforce: bool, plugins: &BTreeMap<String, Option<PluginInfo>>) -> Value {
    let (labels, annotations) = replica_metadata(root, cluster);
    let mut metadata = json!({
        "name": replica_name(str_at(root, "/metadata/namespace"), name_of(root)),
        "namespace": cluster,
        "labels": labels,
    });
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations);
    }
    let mut spec = root.get("spec").cloned().unwrap_or_else(|| json!({}));
    if enforce {
        // OCM writes the override in lower case.
        spec["remediationAction"] = json!("enforce");
    }
    if let Some(templates) = spec.get_mut("policy-templates").and_then(Value::as_array_mut) {
        for template in templates {
            let Some(name) = wasm_plugin_of(template).map(str::to_string) else { continue };
            let Some(plugin) = template.pointer_mut("/objectDefinition/spec/plugin").and_then(Value::as_object_mut)
            else {
                continue;
            };
            match resolve(&name, plugins) {
                Ok(digest) => {
                    plugin.insert("digest".into(), json!(digest));
                }
                Err(_) => {
                    plugin.remove("digest");
                }
            }
        }
    }
    json!({"apiVersion": crate::API_VERSION, "kind": "Policy", "metadata": metadata, "spec": spec})
}

/// Whether a stored replica already is `desired` (labels, annotations and spec; the status
/// and the server's metadata do not count).
pub fn replica_matches(stored: &Value, desired: &Value) -> bool {
    let field = |obj: &Value, pointer: &str| obj.pointer(pointer).cloned().unwrap_or_else(|| json!({}));
    let same = |pointer: &str| field(stored, pointer) == field(desired, pointer);
    same("/metadata/labels") && same("/metadata/annotations") && same("/spec")
}

/// `stored` with `desired`'s labels, annotations and spec (everything else as stored, so the
/// write keeps its resourceVersion precondition, finalizers and status).
pub fn updated_replica(stored: &Value, desired: &Value) -> Value {
    let mut out = stored.clone();
    let take = |out: &mut Value, field: &str| match desired.pointer(&format!("/metadata/{field}")) {
        Some(v) => out["metadata"][field] = v.clone(),
        None => {
            if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove(field);
            }
        }
    };
    take(&mut out, "labels");
    take(&mut out, "annotations");
    out["spec"] = desired.get("spec").cloned().unwrap_or_else(|| json!({}));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, placement: &str, subjects: &[(&str, &str)], extra: Value) -> Binding {
        let mut obj = json!({
            "metadata": {"name": name},
            "placementRef": {"apiGroup": PLACEMENT_GROUP, "kind": "Placement", "name": placement},
            "subjects": subjects.iter().map(|(k, n)| json!({"apiGroup": GROUP, "kind": k, "name": n})).collect::<Vec<_>>(),
        });
        if let (Some(o), Some(e)) = (obj.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        Binding::parse(&obj)
    }

    fn set(name: &str, policies: &[&str], exclusions: Value) -> PolicySet {
        PolicySet::parse(&json!({"metadata": {"name": name}, "spec": {"policies": policies, "exclusions": exclusions}}))
    }

    fn decided(entries: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        entries.iter().map(|(p, cs)| (p.to_string(), cs.iter().map(|c| c.to_string()).collect())).collect()
    }

    fn clusters(placed: &Placed) -> Vec<(&str, bool)> {
        placed.clusters.iter().map(|(c, e)| (c.as_str(), *e)).collect()
    }

    #[test]
    fn direct_and_set_bindings_place_the_union_minus_exclusions() {
        let bindings = [
            binding("direct", "p1", &[("Policy", "pol")], json!({})),
            binding("via-set", "p2", &[("PolicySet", "s")], json!({})),
            binding("other", "p3", &[("Policy", "unrelated")], json!({})),
        ];
        let sets = [set("s", &["pol", "x"], json!([{"policyName": "pol", "clusterNames": ["c3"], "reason": "r"}]))];
        let routing = routes("pol", &bindings, &sets);
        assert!(routing.problems.is_empty());
        assert_eq!(routing.placements().into_iter().collect::<Vec<_>>(), ["p1", "p2"]);
        let placed = place(&routing.routes, &decided(&[("p1", &["c1"]), ("p2", &["c2", "c3"]), ("p3", &["c9"])]));
        assert_eq!(clusters(&placed), [("c1", false), ("c2", false)], "c3 excluded through the set");
        assert_eq!(
            placed.placements.iter().map(PlacementStatus::to_json).collect::<Vec<_>>(),
            [
                json!({"placementBinding": "direct", "placement": "p1"}),
                json!({"placementBinding": "via-set", "placement": "p2", "policySet": "s"})
            ]
        );
        // The exclusion holds only through the set: a direct binding to c3 still reaches it.
        let more =
            [bindings[0].clone(), bindings[1].clone(), binding("c3-direct", "p3", &[("Policy", "pol")], json!({}))];
        let placed = place(&routes("pol", &more, &sets).routes, &decided(&[("p2", &["c2", "c3"]), ("p3", &["c3"])]));
        assert_eq!(clusters(&placed), [("c2", false), ("c3", false)]);
    }

    #[test]
    fn overrides_enforce_and_restricted_bindings_only_override() {
        let bindings = [
            binding("all", "everywhere", &[("Policy", "pol")], json!({})),
            binding(
                "prod",
                "prod",
                &[("Policy", "pol")],
                json!({"bindingOverrides": {"remediationAction": "Enforce"}, "subFilter": "restricted"}),
            ),
            binding(
                "extra",
                "elsewhere",
                &[("Policy", "pol")],
                json!({"bindingOverrides": {"remediationAction": "enforce"}, "subFilter": "restricted"}),
            ),
        ];
        let placed = place(
            &routes("pol", &bindings, &[]).routes,
            &decided(&[("everywhere", &["a", "b"]), ("prod", &["b", "z"]), ("elsewhere", &["y"])]),
        );
        assert_eq!(clusters(&placed), [("a", false), ("b", true)], "restricted bindings add no cluster");
        let listed: Vec<&str> = placed.placements.iter().map(|p| p.binding.as_str()).collect();
        assert_eq!(listed, ["all", "prod"], "a restricted binding matching nothing is not listed");

        let unrestricted =
            [binding("e", "p", &[("Policy", "pol")], json!({"bindingOverrides": {"remediationAction": "Enforce"}}))];
        let placed = place(&routes("pol", &unrestricted, &[]).routes, &decided(&[("p", &["a"])]));
        assert_eq!(clusters(&placed), [("a", true)]);
    }

    #[test]
    fn bad_bindings_are_reported_on_the_policy_they_name() {
        let rule = Binding::parse(&json!({"metadata": {"name": "old"},
            "placementRef": {"apiGroup": "apps.open-cluster-management.io", "kind": "PlacementRule", "name": "r"},
            "subjects": [{"apiGroup": GROUP, "kind": "Policy", "name": "pol"}]}));
        let odd = Binding::parse(&json!({"metadata": {"name": "odd"},
            "placementRef": {"apiGroup": PLACEMENT_GROUP, "kind": "Placement", "name": "p"},
            "subjects": [{"apiGroup": GROUP, "kind": "ConfigurationPolicy", "name": "pol"},
                         {"apiGroup": "apps", "kind": "Policy", "name": "pol"}]}));
        let routing = routes("pol", &[rule, odd], &[]);
        assert!(routing.routes.is_empty());
        assert_eq!(routing.problems.len(), 3, "{:?}", routing.problems);
        assert!(
            routing.problems.iter().any(|p| p.contains("PlacementBinding old: placementRef.kind is \"PlacementRule\""))
        );
        assert!(routing.problems.iter().any(|p| p.contains("subjects[0].kind is \"ConfigurationPolicy\"")));
        assert!(routing.problems.iter().any(|p| p.contains("subjects[1].apiGroup is \"apps\"")));
        assert!(routes("other", &[], &[]).problems.is_empty());
    }

    #[test]
    fn replica_names_are_limited_to_63_characters() {
        assert_eq!(replica_name_problem("ns", "short"), None);
        let name = "n".repeat(61);
        let problem = replica_name_problem("ns", &name).expect("64 characters");
        assert!(problem.contains("is 64 characters"), "{problem}");
        assert_eq!(replica_name_problem("n", &"n".repeat(61)), None, "exactly 63");
    }

    fn root(copy: Option<bool>) -> Value {
        let mut spec = json!({"disabled": false, "remediationAction": "inform", "policy-templates": [
            {"objectDefinition": {"apiVersion": "policy.open-cluster-management.io/v1", "kind": "ConfigurationPolicy",
                "metadata": {"name": "cp"}, "spec": {"remediationAction": "inform"}}},
            {"objectDefinition": {"apiVersion": WASM_POLICY_API_VERSION, "kind": WASM_POLICY_KIND,
                "metadata": {"name": "wp"}, "spec": {"plugin": {"name": "no-priv", "digest": "sha256:stale"}}}},
            {"objectDefinition": {"apiVersion": WASM_POLICY_API_VERSION, "kind": WASM_POLICY_KIND,
                "metadata": {"name": "gone"}, "spec": {"plugin": {"name": "missing"}}}}]});
        if let Some(copy) = copy {
            spec["copyPolicyMetadata"] = json!(copy);
        }
        json!({"metadata": {"name": "pol", "namespace": "policies", "uid": "u", "resourceVersion": "5",
            "labels": {"team": "a", "policy.open-cluster-management.io/x": "y"},
            "annotations": {"policy.open-cluster-management.io/standards": "NIST", "note": "n"}},
            "spec": spec, "status": {"compliant": "Compliant"}})
    }

    #[test]
    fn replicas_copy_the_root_with_labels_overrides_and_digests() {
        let plugins: BTreeMap<String, Option<PluginInfo>> = [
            ("no-priv".to_string(), Some(PluginInfo { digest: "sha256:abc".into(), world: POLICY_CHECK_WORLD.into() })),
            ("missing".to_string(), None),
        ]
        .into();
        let r = replica(&root(None), "c1", true, &plugins);
        assert_eq!(r["metadata"]["name"], "policies.pol");
        assert_eq!(r["metadata"]["namespace"], "c1");
        assert_eq!(
            r["metadata"]["labels"],
            json!({"team": "a", "policy.open-cluster-management.io/x": "y", ROOT_POLICY_LABEL: "policies.pol",
                CLUSTER_NAME_LABEL: "c1", CLUSTER_NAMESPACE_LABEL: "c1"})
        );
        assert_eq!(r["metadata"]["annotations"]["note"], "n");
        assert_eq!(r["spec"]["remediationAction"], "enforce");
        assert_eq!(
            r["spec"]["policy-templates"][0]["objectDefinition"]["spec"]["remediationAction"], "inform",
            "templates as written"
        );
        assert_eq!(
            r["spec"]["policy-templates"][1]["objectDefinition"]["spec"]["plugin"],
            json!({"name": "no-priv", "digest": "sha256:abc"})
        );
        assert_eq!(r["spec"]["policy-templates"][2]["objectDefinition"]["spec"]["plugin"], json!({"name": "missing"}));
        assert!(r.get("status").is_none());
        assert_eq!(plugin_names(&root(None)).into_iter().collect::<Vec<_>>(), ["missing", "no-priv"]);
        let problems = plugin_problems(&root(None), &plugins);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with(
                "spec.policy-templates[2].objectDefinition.spec.plugin.name: WasmPlugin \"missing\" does not exist"
            ),
            "{}",
            problems[0]
        );

        let wrong_world: BTreeMap<String, Option<PluginInfo>> = [(
            "no-priv".to_string(),
            Some(PluginInfo { digest: "sha256:abc".into(), world: "placement-filter".into() }),
        )]
        .into();
        assert!(plugin_problems(&root(None), &wrong_world)[0].contains("implements world \"placement-filter\""));

        let quiet = replica(&root(Some(false)), "c2", false, &plugins);
        assert_eq!(quiet["spec"]["remediationAction"], "inform");
        assert_eq!(
            quiet["metadata"]["labels"],
            json!({"policy.open-cluster-management.io/x": "y", ROOT_POLICY_LABEL: "policies.pol",
                CLUSTER_NAME_LABEL: "c2", CLUSTER_NAMESPACE_LABEL: "c2"})
        );
        assert_eq!(quiet["metadata"]["annotations"], json!({"policy.open-cluster-management.io/standards": "NIST"}));
    }

    #[test]
    fn updates_keep_status_and_server_metadata() {
        let plugins = BTreeMap::new();
        let desired = replica(&root(None), "c1", false, &plugins);
        let mut stored = desired.clone();
        stored["metadata"]["resourceVersion"] = json!("9");
        stored["status"] = json!({"compliant": "NonCompliant"});
        assert!(replica_matches(&stored, &desired));
        stored["spec"]["remediationAction"] = json!("enforce");
        stored["metadata"]["labels"]["added"] = json!("by a user");
        assert!(!replica_matches(&stored, &desired));
        let updated = updated_replica(&stored, &desired);
        assert!(replica_matches(&updated, &desired));
        assert_eq!(updated["status"], stored["status"]);
        assert_eq!(updated["metadata"]["resourceVersion"], "9");
    }
}
