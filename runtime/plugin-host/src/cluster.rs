//! Clusters as the host knows them, and their projection to what a plugin declared it reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::bindings::flotilla::types::types::{
    Cluster, ClusterBatch, Reads, ResourceColumn, ResourceQuantity, StringColumn,
};

/// A managed cluster with everything a plugin may read. Callers build it once per cluster
/// change (from the ManagedCluster with [`ClusterInfo::from_managed_cluster`]) and project it
/// per plugin with [`Projection`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    #[serde(default)]
    pub resources: BTreeMap<String, Quantity>,
    /// The ManagedCluster object, for plugins that read fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
}

/// A resource of a cluster in milli-units (Kubernetes' `MilliValue`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quantity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_milli: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocatable_milli: Option<i64>,
}

impl ClusterInfo {
    /// Reads a ManagedCluster (`cluster.open-cluster-management.io/v1`) object: name, labels,
    /// `status.clusterClaims`, `status.capacity` and `status.allocatable`. Quantities that do
    /// not parse are left out.
    pub fn from_managed_cluster(object: &Value) -> ClusterInfo {
        let str_map = |v: Option<&Value>| -> BTreeMap<String, String> {
            v.and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                .unwrap_or_default()
        };
        let status = object.get("status");
        let claims = status
            .and_then(|s| s.get("clusterClaims"))
            .and_then(Value::as_array)
            .map(|claims| {
                claims
                    .iter()
                    .filter_map(|c| Some((c.get("name")?.as_str()?.to_string(), c.get("value")?.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let mut resources: BTreeMap<String, Quantity> = BTreeMap::new();
        for (field, allocatable) in [("capacity", false), ("allocatable", true)] {
            let Some(map) = status.and_then(|s| s.get(field)).and_then(Value::as_object) else { continue };
            for (name, q) in map {
                let Some(milli) = q.as_str().and_then(parse_quantity_milli) else { continue };
                let entry = resources.entry(name.clone()).or_default();
                if allocatable {
                    entry.allocatable_milli = Some(milli);
                } else {
                    entry.capacity_milli = Some(milli);
                }
            }
        }
        ClusterInfo {
            name: object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string(),
            labels: str_map(object.pointer("/metadata/labels")),
            claims,
            resources,
            object: Some(object.clone()),
        }
    }
}

/// Parses a Kubernetes quantity (`500m`, `4`, `16Gi`, `1.5G`, `2e3`) into milli-units,
/// rounding up as `MilliValue` does. `None` when it does not parse or overflows.
pub fn parse_quantity_milli(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() {
        return None;
    }
    // (numerator, denominator) of the suffix's multiplier, times 1000 for milli-units.
    let (num, den): (i128, i128) = match suffix {
        "" => (1000, 1),
        "n" => (1, 1_000_000),
        "u" => (1, 1000),
        "m" => (1, 1),
        "k" => (1000 * 1000, 1),
        "M" => (1000 * 1_000_000, 1),
        "G" => (1000 * 1_000_000_000, 1),
        "T" => (1000 * 1_000_000_000_000, 1),
        "P" => (1000 * 1_000_000_000_000_000, 1),
        "E" => (1000 * 1_000_000_000_000_000_000, 1),
        "Ki" => (1000 << 10, 1),
        "Mi" => (1000 << 20, 1),
        "Gi" => (1000 << 30, 1),
        "Ti" => (1000 << 40, 1),
        "Pi" => (1000 << 50, 1),
        "Ei" => (1000 << 60, 1),
        e if e.starts_with(['e', 'E']) => {
            let exp: i32 = e[1..].parse().ok()?;
            if !(-9..=18).contains(&exp) {
                return None;
            }
            if exp >= 0 { (1000 * 10i128.pow(exp as u32), 1) } else { (1000, 10i128.pow((-exp) as u32)) }
        }
        _ => return None,
    };
    let negative = number.starts_with('-');
    let digits = number.trim_start_matches(['+', '-']);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || frac.len() > 18
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let scale = 10i128.pow(frac.len() as u32);
    let mantissa: i128 = format!("{int}{frac}").parse().ok()?;
    let numer = mantissa.checked_mul(num)?;
    let denom = scale.checked_mul(den)?;
    let value = if negative { -(numer / denom) } else { (numer + denom - 1) / denom };
    i64::try_from(value).ok()
}

/// FNV-1a: the dictionary of a column hashes short label values from the host's own
/// objects, where SipHash's resistance to chosen keys buys nothing and costs a third of the
/// batch's construction.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// What a plugin reads, prepared for projecting clusters fast: keys sorted and deduplicated,
/// `"*"` noted once.
#[derive(Clone, Debug, Default)]
pub struct Projection {
    labels: Keys,
    claims: Keys,
    resources: Keys,
    fields: Vec<String>,
}

#[derive(Clone, Debug, Default)]
enum Keys {
    #[default]
    None,
    All,
    Some(Vec<String>),
}

impl Keys {
    fn new(keys: &[String]) -> Keys {
        if keys.iter().any(|k| k == "*") {
            return Keys::All;
        }
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        if keys.is_empty() { Keys::None } else { Keys::Some(keys) }
    }

    /// The keys that at least one of `clusters` has, sorted.
    fn keys_of<V>(&self, clusters: &[&ClusterInfo], map: impl Fn(&ClusterInfo) -> &BTreeMap<String, V>) -> Vec<String> {
        match self {
            Keys::None => Vec::new(),
            Keys::All => {
                let mut keys: Vec<String> = clusters.iter().flat_map(|c| map(c).keys().cloned()).collect();
                keys.sort();
                keys.dedup();
                keys
            }
            Keys::Some(keys) => {
                keys.iter().filter(|k| clusters.iter().any(|c| map(c).contains_key(*k))).cloned().collect()
            }
        }
    }

    /// Dictionary-encoded columns of a string map, one per key present. One pass over the
    /// clusters, all keys at once: each cluster's map is visited while it is in cache.
    fn columns(
        &self,
        clusters: &[&ClusterInfo],
        map: impl Fn(&ClusterInfo) -> &BTreeMap<String, String>,
    ) -> Vec<StringColumn> {
        let keys = self.keys_of(clusters, &map);
        let mut columns: Vec<StringColumn> = keys
            .into_iter()
            .map(|key| StringColumn { key, values: Vec::new(), index: Vec::with_capacity(clusters.len()) })
            .collect();
        let mut seen: Vec<HashMap<&str, u32, BuildHasherDefault<Fnv>>> =
            columns.iter().map(|_| HashMap::default()).collect();
        for c in clusters {
            let m = map(c);
            for (col, seen) in columns.iter_mut().zip(seen.iter_mut()) {
                let i = match m.get(&col.key) {
                    None => 0,
                    Some(v) => *seen.entry(v.as_str()).or_insert_with(|| {
                        col.values.push(v.clone());
                        col.values.len() as u32
                    }),
                };
                col.index.push(i);
            }
        }
        columns
    }

    /// The pairs of `map` these keys select, sorted by key (a `BTreeMap` iterates sorted).
    fn pick<V, T>(&self, map: &BTreeMap<String, V>, make: impl Fn(&String, &V) -> T) -> Vec<T> {
        match self {
            Keys::None => Vec::new(),
            Keys::All => map.iter().map(|(k, v)| make(k, v)).collect(),
            Keys::Some(keys) => keys.iter().filter_map(|k| map.get_key_value(k)).map(|(k, v)| make(k, v)).collect(),
        }
    }
}

impl Projection {
    pub fn new(reads: &Reads) -> Projection {
        Projection {
            labels: Keys::new(&reads.labels),
            claims: Keys::new(&reads.claims),
            resources: Keys::new(&reads.resources),
            fields: reads.fields.clone(),
        }
    }

    /// Many clusters as the plugin sees them, by column: names, and a column for each
    /// declared label, claim and resource that at least one of them has.
    pub fn batch<'a>(&self, clusters: impl IntoIterator<Item = &'a ClusterInfo>) -> ClusterBatch {
        let clusters: Vec<&ClusterInfo> = clusters.into_iter().collect();
        let mut names = String::with_capacity(clusters.iter().map(|c| c.name.len() + 1).sum());
        for (i, c) in clusters.iter().enumerate() {
            if i > 0 {
                names.push('\n');
            }
            names.push_str(&c.name);
        }
        let labels = self.labels.columns(&clusters, |c| &c.labels);
        let claims = self.claims.columns(&clusters, |c| &c.claims);
        // One pass over the clusters for all resources, as for labels.
        let mut resources: Vec<ResourceColumn> = self
            .resources
            .keys_of(&clusters, |c| &c.resources)
            .into_iter()
            .map(|name| ResourceColumn {
                name,
                capacity_milli: Vec::with_capacity(clusters.len()),
                allocatable_milli: Vec::with_capacity(clusters.len()),
            })
            .collect();
        if !resources.is_empty() {
            for c in &clusters {
                // The columns and the map are both sorted by name: one merged walk reads each
                // of the cluster's resources once, instead of a lookup per column that
                // compares every name before it again.
                let mut have = c.resources.iter().peekable();
                for col in resources.iter_mut() {
                    let mut q = None;
                    while let Some((name, quantity)) = have.peek() {
                        match name.as_str().cmp(col.name.as_str()) {
                            std::cmp::Ordering::Less => {
                                have.next();
                            }
                            std::cmp::Ordering::Equal => {
                                q = Some(*quantity);
                                have.next();
                                break;
                            }
                            std::cmp::Ordering::Greater => break,
                        }
                    }
                    // -1: not reported (quantities are never negative).
                    col.capacity_milli.push(q.and_then(|q| q.capacity_milli).unwrap_or(-1));
                    col.allocatable_milli.push(q.and_then(|q| q.allocatable_milli).unwrap_or(-1));
                }
            }
        }
        let fields =
            if self.fields.is_empty() { Vec::new() } else { clusters.iter().map(|c| self.fields_json(c)).collect() };
        ClusterBatch { count: clusters.len() as u32, names, labels, claims, resources, fields }
    }

    fn fields_json(&self, c: &ClusterInfo) -> String {
        let mut out = serde_json::Map::new();
        for path in &self.fields {
            let pointer: String =
                path.split('.').map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1"))).collect();
            if let Some(v) = c.object.as_ref().and_then(|o| o.pointer(&pointer)) {
                out.insert(path.clone(), v.clone());
            }
        }
        Value::Object(out).to_string()
    }

    /// The cluster as the plugin sees it: its name, and only the declared labels, claims,
    /// resources and fields.
    pub fn apply(&self, c: &ClusterInfo) -> Cluster {
        Cluster {
            name: c.name.clone(),
            labels: self.labels.pick(&c.labels, |k, v| (k.clone(), v.clone())),
            claims: self.claims.pick(&c.claims, |k, v| (k.clone(), v.clone())),
            resources: self.resources.pick(&c.resources, |k, q| ResourceQuantity {
                name: k.clone(),
                capacity_milli: q.capacity_milli,
                allocatable_milli: q.allocatable_milli,
            }),
            fields: (!self.fields.is_empty()).then(|| self.fields_json(c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster_with(labels: &[(&str, &str)]) -> ClusterInfo {
        ClusterInfo {
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn quantities_parse_as_kubernetes_milli_values() {
        for (q, milli) in [
            ("4", 4000),
            ("500m", 500),
            ("1.5", 1500),
            ("1Ki", 1_024_000),
            ("16Gi", 17_179_869_184_000),
            ("2k", 2_000_000),
            ("1e3", 1_000_000),
            ("100n", 1),
            ("0", 0),
            ("-1", -1000),
        ] {
            assert_eq!(parse_quantity_milli(q), Some(milli), "{q}");
        }
        for bad in ["", "abc", "1Zi", "1.2.3", "Mi", "10Ei"] {
            assert_eq!(parse_quantity_milli(bad), None, "{bad}");
        }
    }

    #[test]
    fn projection_passes_only_what_was_declared() {
        let mc = json!({
            "metadata": {"name": "c1", "labels": {"region": "eu", "env": "prod", "zone": "a"}},
            "status": {
                "clusterClaims": [{"name": "platform", "value": "AWS"}, {"name": "id", "value": "x"}],
                "capacity": {"cpu": "8", "memory": "32Gi"},
                "allocatable": {"cpu": "7500m"},
                "version": {"kubernetes": "v1.31.2"}
            }
        });
        let c = ClusterInfo::from_managed_cluster(&mc);
        assert_eq!(c.resources["cpu"], Quantity { capacity_milli: Some(8000), allocatable_milli: Some(7500) });
        let reads = Reads {
            labels: vec!["zone".into(), "region".into(), "missing".into(), "region".into()],
            claims: vec!["platform".into()],
            resources: vec!["cpu".into()],
            fields: vec!["status.version.kubernetes".into(), "status.nothing".into()],
            kinds: vec![],
        };
        let p = Projection::new(&reads).apply(&c);
        assert_eq!(p.name, "c1");
        assert_eq!(p.labels, vec![("region".into(), "eu".into()), ("zone".into(), "a".into())]);
        assert_eq!(p.claims, vec![("platform".into(), "AWS".into())]);
        assert_eq!(p.resources.len(), 1);
        assert_eq!(p.fields.as_deref(), Some(r#"{"status.version.kubernetes":"v1.31.2"}"#));
        let all = Reads { labels: vec!["*".into()], ..reads.clone() };
        assert_eq!(Projection::new(&all).apply(&c).labels.len(), 3);
        let other = ClusterInfo { name: "c2".into(), ..cluster_with(&[("region", "us")]) };
        let third = ClusterInfo { name: "c3".into(), ..cluster_with(&[("region", "eu")]) };
        let b = Projection::new(&reads).batch([&c, &other, &third]);
        assert_eq!(b.count, 3);
        assert_eq!(b.names, "c1\nc2\nc3");
        let keys: Vec<&str> = b.labels.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["region", "zone"], "declared and present; sorted");
        assert_eq!(b.labels[0].values, ["eu", "us"]);
        assert_eq!(b.labels[0].index, [1, 2, 1]);
        assert_eq!(b.labels[1].index, [1, 0, 0]);
        assert_eq!(b.resources[0].allocatable_milli, [7500, -1, -1]);
        assert_eq!(b.fields.len(), 3);
        let none = Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![] };
        let bare = Projection::new(&none).apply(&c);
        assert!(bare.labels.is_empty() && bare.claims.is_empty() && bare.resources.is_empty() && bare.fields.is_none());
    }
}
