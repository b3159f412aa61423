//! A replicated Policy as the hub writes it into the cluster namespace
//! (`<rootNamespace>.<rootName>`): its templates, dependencies, remediation override and
//! evaluation intervals.

use std::time::Duration;

use serde_json::Value;

use super::config::Remediation;

pub const POLICY_GROUP: &str = "policy.open-cluster-management.io";
pub const POLICY_API_VERSION: &str = "policy.open-cluster-management.io/v1";
pub const CONFIGURATION_POLICY: &str = "ConfigurationPolicy";
pub const WASM_POLICY_API_VERSION: &str = "flotilla.dev/v1alpha1";
pub const WASM_POLICY: &str = "WasmPolicy";
/// The replica's labels (OCM's propagator).
pub const ROOT_POLICY_LABEL: &str = "policy.open-cluster-management.io/root-policy";

/// `Compliant`, `NonCompliant` or `Pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compliance {
    Compliant,
    NonCompliant,
    Pending,
}

impl Compliance {
    pub fn as_str(self) -> &'static str {
        match self {
            Compliance::Compliant => "Compliant",
            Compliance::NonCompliant => "NonCompliant",
            Compliance::Pending => "Pending",
        }
    }

    pub fn parse(text: &str) -> Option<Compliance> {
        match text {
            "Compliant" => Some(Compliance::Compliant),
            "NonCompliant" => Some(Compliance::NonCompliant),
            "Pending" => Some(Compliance::Pending),
            _ => None,
        }
    }
}

impl std::fmt::Display for Compliance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value of `evaluationInterval.compliant`/`.noncompliant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interval {
    /// `watch` (the default): re-evaluated on change; the agent re-reads at its watch period.
    #[default]
    Watch,
    /// `never`: evaluated once per change of the policy.
    Never,
    Every(Duration),
}

impl Interval {
    pub fn parse(text: &str, field: &str) -> Result<Interval, String> {
        match text {
            "" | "watch" => Ok(Interval::Watch),
            "never" => Ok(Interval::Never),
            _ => parse_duration(text).map(Interval::Every).map_err(|e| format!("{field}: {e}")),
        }
    }
}

/// `evaluationInterval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvaluationInterval {
    pub compliant: Interval,
    pub noncompliant: Interval,
}

impl EvaluationInterval {
    pub fn parse(spec: &Value, at: &str) -> Result<EvaluationInterval, String> {
        let Some(interval) = spec.get("evaluationInterval").filter(|v| !v.is_null()) else {
            return Ok(EvaluationInterval::default());
        };
        let one = |key: &str| match interval.get(key) {
            None | Some(Value::Null) => Ok(Interval::Watch),
            Some(Value::String(text)) => Interval::parse(text, &format!("{at}.evaluationInterval.{key}")),
            Some(_) => Err(format!("{at}.evaluationInterval.{key}: must be a duration, watch or never")),
        };
        Ok(EvaluationInterval { compliant: one("compliant")?, noncompliant: one("noncompliant")? })
    }

    /// The interval after an evaluation that came out `compliance`.
    pub fn after(&self, compliance: Compliance) -> Interval {
        match compliance {
            Compliance::Compliant => self.compliant,
            Compliance::NonCompliant => self.noncompliant,
            // Waiting on something else: look again soon.
            Compliance::Pending => Interval::Watch,
        }
    }
}

/// A Go duration (`10s`, `1m30s`, `1.5h`, `250ms`), as OCM's intervals are written.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration such as 10s, 5m or 1h30m");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let number: f64 = rest[..number_end].parse().map_err(|_| bad())?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// One entry of `spec.dependencies` or a template's `extraDependencies`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub compliance: Compliance,
}

impl Dependency {
    fn parse(value: &Value, at: &str) -> Result<Dependency, String> {
        let text = |key: &str| value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let compliance = match text("compliance") {
            None => Compliance::Compliant,
            Some(c) => Compliance::parse(&c)
                .ok_or_else(|| format!("{at}.compliance: must be Compliant, NonCompliant or Pending, not {c:?}"))?,
        };
        Ok(Dependency {
            api_version: text("apiVersion").unwrap_or_else(|| POLICY_API_VERSION.to_string()),
            kind: text("kind").unwrap_or_else(|| "Policy".to_string()),
            name: text("name").ok_or_else(|| format!("{at}.name: required"))?,
            namespace: text("namespace"),
            compliance,
        })
    }

    /// Whether it names another Policy (else a template of the same policy).
    pub fn is_policy(&self) -> bool {
        self.kind == "Policy" && self.api_version.starts_with(POLICY_GROUP)
    }

    /// For people: `Policy default.upstream` or `ConfigurationPolicy cm-present`.
    pub fn describe(&self, root_namespace: &str) -> String {
        if self.is_policy() {
            format!("Policy {}.{}", self.namespace.as_deref().unwrap_or(root_namespace), self.name)
        } else {
            format!("{} {}", self.kind, self.name)
        }
    }
}

fn parse_dependencies(value: Option<&Value>, at: &str) -> Result<Vec<Dependency>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            items.iter().enumerate().map(|(i, d)| Dependency::parse(d, &format!("{at}[{i}]"))).collect()
        }
        Some(_) => Err(format!("{at}: must be a list")),
    }
}

/// One `spec.policy-templates[]` entry.
#[derive(Debug, Clone)]
pub struct PolicyTemplate {
    pub index: usize,
    pub kind: String,
    pub api_version: String,
    /// `objectDefinition.metadata.name` (unique in the policy).
    pub name: String,
    pub object: Value,
    pub extra_dependencies: Vec<Dependency>,
    pub ignore_pending: bool,
}

impl PolicyTemplate {
    /// Where it is in the Policy, for error messages.
    pub fn path(&self) -> String {
        format!("spec.policy-templates[{}].objectDefinition", self.index)
    }
}

/// A replicated Policy.
#[derive(Debug, Clone)]
pub struct ReplicatedPolicy {
    /// `<rootNamespace>.<rootName>`.
    pub name: String,
    /// The root policy's namespace (the default of policy dependencies).
    pub root_namespace: String,
    pub disabled: bool,
    pub remediation: Option<Remediation>,
    pub dependencies: Vec<Dependency>,
    pub templates: Vec<PolicyTemplate>,
    /// Templates that cannot be used, with why (reported NonCompliant under their name).
    pub broken: Vec<(String, String)>,
}

impl ReplicatedPolicy {
    /// Reads a replica. An error in one template leaves the others usable; an error in the
    /// policy-level fields fails the whole policy.
    pub fn parse(policy: &Value) -> Result<ReplicatedPolicy, String> {
        let name = policy.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let root = policy
            .pointer("/metadata/labels")
            .and_then(|l| l.get(ROOT_POLICY_LABEL))
            .and_then(Value::as_str)
            .unwrap_or(&name);
        let root_namespace = root.split_once('.').map(|(ns, _)| ns).unwrap_or_default().to_string();
        let spec = policy.get("spec").cloned().unwrap_or(Value::Null);
        let remediation = match spec.get("remediationAction").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            Some(text) => Some(Remediation::parse(text, "spec.remediationAction")?),
            None => None,
        };
        let dependencies = parse_dependencies(spec.get("dependencies"), "spec.dependencies")?;
        let mut templates = Vec::new();
        let mut broken = Vec::new();
        let entries = match spec.get("policy-templates") {
            None | Some(Value::Null) => &Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => return Err("spec.policy-templates: must be a list".to_string()),
        };
        for (index, entry) in entries.iter().enumerate() {
            let at = format!("spec.policy-templates[{index}]");
            let object = entry.get("objectDefinition").cloned().unwrap_or(Value::Null);
            let text = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
            let name = text("/metadata/name");
            if name.is_empty() {
                broken.push((format!("template-{index}"), format!("{at}.objectDefinition.metadata.name: required")));
                continue;
            }
            if templates.iter().any(|t: &PolicyTemplate| t.name == name) {
                broken.push((name.clone(), format!("{at}.objectDefinition.metadata.name: {name:?} is used twice")));
                continue;
            }
            let extra_dependencies =
                match parse_dependencies(entry.get("extraDependencies"), &format!("{at}.extraDependencies")) {
                    Ok(deps) => deps,
                    Err(e) => {
                        broken.push((name, e));
                        continue;
                    }
                };
            templates.push(PolicyTemplate {
                index,
                kind: text("/kind"),
                api_version: text("/apiVersion"),
                name,
                extra_dependencies,
                ignore_pending: entry.get("ignorePending").and_then(Value::as_bool).unwrap_or(false),
                object,
            });
        }
        Ok(ReplicatedPolicy {
            name,
            root_namespace,
            disabled: spec.get("disabled").and_then(Value::as_bool).unwrap_or(false),
            remediation,
            dependencies,
            templates,
            broken,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("ten seconds").is_err());
        assert_eq!(
            EvaluationInterval::parse(
                &json!({"evaluationInterval": {"compliant": "never", "noncompliant": "5s"}}),
                "spec"
            )
            .unwrap(),
            EvaluationInterval { compliant: Interval::Never, noncompliant: Interval::Every(Duration::from_secs(5)) }
        );
        assert_eq!(
            EvaluationInterval::parse(&json!({"evaluationInterval": {"compliant": "soon"}}), "spec").unwrap_err(),
            "spec.evaluationInterval.compliant: \"soon\" is not a duration such as 10s, 5m or 1h30m"
        );
    }

    #[test]
    fn replicas_parse_with_broken_templates_kept_apart() {
        let policy = json!({
            "metadata": {"name": "prod.p1", "labels": {ROOT_POLICY_LABEL: "prod.p1"}},
            "spec": {
                "remediationAction": "Enforce",
                "dependencies": [{"name": "base", "compliance": "Compliant"}],
                "policy-templates": [
                    {"objectDefinition": {"apiVersion": POLICY_API_VERSION, "kind": CONFIGURATION_POLICY, "metadata": {"name": "a"}}},
                    {"objectDefinition": {"kind": CONFIGURATION_POLICY}},
                    {"objectDefinition": {"kind": WASM_POLICY, "metadata": {"name": "b"}}, "ignorePending": true,
                     "extraDependencies": [{"kind": CONFIGURATION_POLICY, "apiVersion": POLICY_API_VERSION, "name": "a"}]},
                ],
            },
        });
        let p = ReplicatedPolicy::parse(&policy).unwrap();
        assert_eq!(p.root_namespace, "prod");
        assert_eq!(p.remediation, Some(Remediation::Enforce));
        assert_eq!(p.dependencies[0].describe(&p.root_namespace), "Policy prod.base");
        assert_eq!(p.templates.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(p.templates[1].ignore_pending);
        assert!(!p.templates[1].extra_dependencies[0].is_policy());
        assert_eq!(p.broken[0].1, "spec.policy-templates[1].objectDefinition.metadata.name: required");
    }
}
