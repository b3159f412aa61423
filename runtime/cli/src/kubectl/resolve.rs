//! Discovery and resource-type resolution, the way kubectl's RESTMapper and shortcut
//! expander do it: plural, singular, short names, kind (case-insensitive), `resource.group`
//! and `resource.version.group`, plus Flotilla's own aliases.

use anyhow::Context as _;
use futures::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroupList, APIResourceList};
use kube::discovery::ApiResource;

/// Flotilla's aliases: `alias → (plural, group)`.
pub const ALIASES: &[(&str, &str, &str)] = &[
    ("clusters", "managedclusters", "cluster.open-cluster-management.io"),
    ("cluster", "managedclusters", "cluster.open-cluster-management.io"),
    ("clustersets", "managedclustersets", "cluster.open-cluster-management.io"),
    ("clusterset", "managedclustersets", "cluster.open-cluster-management.io"),
    ("works", "manifestworks", "work.open-cluster-management.io"),
    ("work", "manifestworks", "work.open-cluster-management.io"),
    ("policies", "policies", "policy.open-cluster-management.io"),
    ("policy", "policies", "policy.open-cluster-management.io"),
    ("plugins", "wasmplugins", "flotilla.dev"),
    ("plugin", "wasmplugins", "flotilla.dev"),
];

/// One resource type served by the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub verbs: Vec<String>,
    /// Whether `version` is its group's preferred version.
    pub preferred: bool,
}

impl ResourceInfo {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `kind.group` in lower case (`kind` for the core group): kubectl's name for a type in
    /// messages such as `managedcluster.cluster.open-cluster-management.io/x created`.
    pub fn kind_group(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() { kind } else { format!("{kind}.{}", self.group) }
    }

    /// The collection URL path, namespaced when `namespace` is given and the type is
    /// namespaced.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let prefix = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => {
                format!("{prefix}/namespaces/{ns}/{}", self.plural)
            }
            _ => format!("{prefix}/{}", self.plural),
        }
    }

    /// The object URL path.
    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{name}", self.collection_path(namespace))
    }

    /// kube-rs's dynamic type description.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }

    fn names_match(&self, name: &str) -> bool {
        self.plural == name || self.singular == name || self.kind.to_lowercase() == name
    }
}

/// Every resource type the hub serves, in discovery order (core first, then groups in the
/// server's order, each group's preferred version first).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    resources: Vec<ResourceInfo>,
}

impl Catalog {
    /// Builds a catalog from discovery documents: `(resource list, is preferred version)`.
    pub fn from_lists(lists: &[(APIResourceList, bool)]) -> Catalog {
        let mut resources = Vec::new();
        for (list, preferred) in lists {
            let (group, version) = match list.group_version.split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), list.group_version.clone()),
            };
            for r in &list.resources {
                if r.name.contains('/') {
                    continue; // subresource
                }
                let singular =
                    if r.singular_name.is_empty() { r.kind.to_lowercase() } else { r.singular_name.to_lowercase() };
                resources.push(ResourceInfo {
                    group: r.group.clone().unwrap_or_else(|| group.clone()),
                    version: r.version.clone().unwrap_or_else(|| version.clone()),
                    kind: r.kind.clone(),
                    plural: r.name.to_lowercase(),
                    singular,
                    namespaced: r.namespaced,
                    short_names: r.short_names.iter().flatten().map(|s| s.to_lowercase()).collect(),
                    verbs: r.verbs.clone(),
                    preferred: *preferred,
                });
            }
        }
        Catalog { resources }
    }

    /// Runs discovery against the hub (`/api`, `/api/v1`, `/apis`, `/apis/G/V`). A group
    /// whose document fails is skipped with a warning, like kubectl.
    pub async fn discover(client: &kube::Client) -> anyhow::Result<Catalog> {
        let core = client
            .list_core_api_versions()
            .await
            .map_err(|e| anyhow::anyhow!(super::errors::kube_message(&e)))
            .context("discovery of /api failed")?;
        let groups: APIGroupList = client
            .list_api_groups()
            .await
            .map_err(|e| anyhow::anyhow!(super::errors::kube_message(&e)))
            .context("discovery of /apis failed")?;

        // (group version, preferred)
        let mut wanted: Vec<(String, bool)> = Vec::new();
        for (i, v) in core.versions.iter().enumerate() {
            wanted.push((v.clone(), i == 0));
        }
        for g in &groups.groups {
            let preferred = g
                .preferred_version
                .as_ref()
                .map(|p| p.group_version.clone())
                .or_else(|| g.versions.first().map(|v| v.group_version.clone()));
            if let Some(p) = &preferred {
                wanted.push((p.clone(), true));
            }
            for v in &g.versions {
                if Some(&v.group_version) != preferred.as_ref() {
                    wanted.push((v.group_version.clone(), false));
                }
            }
        }
        let fetches = wanted.iter().map(|(gv, _)| async move {
            if gv.contains('/') {
                client.list_api_group_resources(gv).await
            } else {
                client.list_core_api_resources(gv).await
            }
        });
        let results = join_all(fetches).await;
        let mut lists = Vec::new();
        for ((gv, preferred), result) in wanted.into_iter().zip(results) {
            match result {
                Ok(list) => lists.push((list, preferred)),
                Err(e) => tracing::warn!("couldn't get resource list for {gv}: {}", super::errors::kube_message(&e)),
            }
        }
        Ok(Catalog::from_lists(&lists))
    }

    /// The first match, preferring preferred versions, in discovery order.
    fn best(&self, pred: impl Fn(&ResourceInfo) -> bool) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .filter(|r| r.preferred)
            .find(|r| pred(r))
            .or_else(|| self.resources.iter().find(|r| pred(r)))
    }

    /// Resolves what a user typed (`clusters`, `mcl`, `ManagedCluster`,
    /// `managedclusters.cluster.open-cluster-management.io`, `pods.v1.`...) to a type.
    pub fn resolve(&self, input: &str) -> anyhow::Result<&ResourceInfo> {
        let s = input.trim().to_lowercase();
        if s.is_empty() {
            anyhow::bail!("resource type is empty");
        }
        if let Some(r) = ALIASES
            .iter()
            .find(|(alias, _, _)| *alias == s)
            .and_then(|(_, plural, group)| self.best(|r| r.plural == *plural && r.group == *group))
        {
            return Ok(r);
        }
        if let Some((name, rest)) = s.split_once('.') {
            // resource.version.group
            if let Some((version, group)) = rest.split_once('.')
                && let Some(r) = self.best(|r| {
                    r.version == version
                        && r.group == group
                        && (r.names_match(name) || r.short_names.iter().any(|n| n == name))
                })
            {
                return Ok(r);
            }
            // resource.group (also resource.version. for the core group: "pods.v1.")
            let group = rest.trim_end_matches('.');
            if let Some(r) = self.best(|r| {
                (r.group == group || (r.group.is_empty() && r.version == group))
                    && (r.names_match(name) || r.short_names.iter().any(|n| n == name))
            }) {
                return Ok(r);
            }
        }
        if let Some(r) = self.best(|r| r.names_match(&s)).or_else(|| self.best(|r| r.short_names.contains(&s))) {
            return Ok(r);
        }
        anyhow::bail!("the server doesn't have a resource type \"{input}\"")
    }

    /// The type for an object's `apiVersion` and `kind` (for manifests).
    pub fn for_gvk(&self, api_version: &str, kind: &str) -> anyhow::Result<&ResourceInfo> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .ok_or_else(|| anyhow::anyhow!("no matches for kind \"{kind}\" in version \"{api_version}\""))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

    fn res(name: &str, singular: &str, kind: &str, namespaced: bool, short: &[&str]) -> APIResource {
        APIResource {
            name: name.into(),
            singular_name: singular.into(),
            kind: kind.into(),
            namespaced,
            short_names: if short.is_empty() { None } else { Some(short.iter().map(|s| s.to_string()).collect()) },
            verbs: vec!["get".into(), "list".into()],
            ..APIResource::default()
        }
    }

    fn list(gv: &str, resources: Vec<APIResource>) -> APIResourceList {
        APIResourceList { group_version: gv.into(), resources }
    }

    fn catalog() -> Catalog {
        Catalog::from_lists(&[
            (
                list(
                    "v1",
                    vec![
                        res("namespaces", "namespace", "Namespace", false, &["ns"]),
                        res("events", "event", "Event", true, &["ev"]),
                        res("namespaces/status", "", "Namespace", false, &[]),
                    ],
                ),
                true,
            ),
            (
                list(
                    "cluster.open-cluster-management.io/v1",
                    vec![res("managedclusters", "managedcluster", "ManagedCluster", false, &["mcl", "mcls"])],
                ),
                true,
            ),
            (
                list(
                    "cluster.open-cluster-management.io/v1beta2",
                    vec![res(
                        "managedclustersets",
                        "managedclusterset",
                        "ManagedClusterSet",
                        false,
                        &["mclset", "mclsets"],
                    )],
                ),
                true,
            ),
            (
                list(
                    "work.open-cluster-management.io/v1",
                    vec![res("manifestworks", "manifestwork", "ManifestWork", true, &["mw"])],
                ),
                true,
            ),
            (
                list("policy.open-cluster-management.io/v1", vec![res("policies", "policy", "Policy", true, &["plc"])]),
                true,
            ),
            (list("flotilla.dev/v1alpha1", vec![res("wasmplugins", "", "WasmPlugin", false, &[])]), true),
            (list("events.k8s.io/v1", vec![res("events", "event", "Event", true, &["ev"])]), true),
            (list("events.k8s.io/v1beta1", vec![res("events", "event", "Event", true, &["ev"])]), false),
        ])
    }

    fn resolved(c: &Catalog, input: &str) -> String {
        let r = c.resolve(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        format!("{}.{}/{}", r.plural, r.group, r.version)
    }

    #[test]
    fn resolves_names_like_kubectl() {
        let c = catalog();
        let mc = "managedclusters.cluster.open-cluster-management.io/v1";
        for input in [
            "managedclusters",
            "managedcluster",
            "ManagedCluster",
            "MANAGEDCLUSTERS",
            "mcl",
            "mcls",
            "managedclusters.cluster.open-cluster-management.io",
            "ManagedCluster.cluster.open-cluster-management.io",
            "mcl.cluster.open-cluster-management.io",
            "managedclusters.v1.cluster.open-cluster-management.io",
            "clusters",
            "cluster",
        ] {
            assert_eq!(resolved(&c, input), mc, "{input}");
        }
        assert_eq!(resolved(&c, "ns"), "namespaces./v1");
        assert_eq!(resolved(&c, "namespaces.v1."), "namespaces./v1");
        assert_eq!(resolved(&c, "Namespace"), "namespaces./v1");
    }

    #[test]
    fn resolves_flotilla_aliases() {
        let c = catalog();
        assert_eq!(resolved(&c, "clustersets"), "managedclustersets.cluster.open-cluster-management.io/v1beta2");
        assert_eq!(resolved(&c, "works"), "manifestworks.work.open-cluster-management.io/v1");
        assert_eq!(resolved(&c, "policies"), "policies.policy.open-cluster-management.io/v1");
        assert_eq!(resolved(&c, "plugins"), "wasmplugins.flotilla.dev/v1alpha1");
        assert_eq!(resolved(&c, "wasmplugin"), "wasmplugins.flotilla.dev/v1alpha1");
    }

    #[test]
    fn core_group_wins_and_versions_can_be_chosen() {
        let c = catalog();
        assert_eq!(resolved(&c, "events"), "events./v1");
        assert_eq!(resolved(&c, "ev"), "events./v1");
        assert_eq!(resolved(&c, "events.events.k8s.io"), "events.events.k8s.io/v1");
        assert_eq!(resolved(&c, "events.v1beta1.events.k8s.io"), "events.events.k8s.io/v1beta1");
    }

    #[test]
    fn unknown_types_and_subresources_are_errors() {
        let c = catalog();
        let err = c.resolve("widgets").unwrap_err().to_string();
        assert_eq!(err, "the server doesn't have a resource type \"widgets\"");
        assert!(c.resolve("namespaces/status").is_err());
        assert!(c.resolve("").is_err());
    }

    #[test]
    fn gvk_lookup_and_paths() {
        let c = catalog();
        let mw = c.for_gvk("work.open-cluster-management.io/v1", "ManifestWork").unwrap();
        assert_eq!(mw.kind_group(), "manifestwork.work.open-cluster-management.io");
        assert_eq!(
            mw.object_path(Some("cluster1"), "w"),
            "/apis/work.open-cluster-management.io/v1/namespaces/cluster1/manifestworks/w"
        );
        assert_eq!(mw.collection_path(None), "/apis/work.open-cluster-management.io/v1/manifestworks");
        let ns = c.for_gvk("v1", "Namespace").unwrap();
        assert_eq!(ns.kind_group(), "namespace");
        assert_eq!(ns.object_path(Some("ignored"), "a"), "/api/v1/namespaces/a");
        assert_eq!(ns.api_resource().api_version, "v1");
        let err = c.for_gvk("example.com/v1", "Widget").unwrap_err().to_string();
        assert_eq!(err, "no matches for kind \"Widget\" in version \"example.com/v1\"");
        let wp = c.resolve("plugins").unwrap();
        assert_eq!(wp.singular, "wasmplugin");
    }
}
