//! Which resource (plural) and scope a manifest's kind is on the spoke, from the spoke's
//! discovery documents, one group version at a time (`kube::discovery::pinned_group`: one
//! request, not a walk of every API group).
//!
//! Answers are cached. A kind the cache does not know triggers a refresh of its group
//! version (a CRD applied earlier in the same work becomes usable at once), but at most
//! once per [`MIN_REFRESH`] per group version, so a work naming a kind that does not exist
//! does not turn every resync into discovery traffic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::api::ApiResource;
use kube::discovery::{self, Scope};

use crate::error::{ManifestError, api_code, api_message};

/// The shortest time between two discovery requests for one group version.
pub const MIN_REFRESH: Duration = Duration::from_secs(2);

/// A kind as the spoke serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

struct Entry {
    fetched: Instant,
    /// `None`: the spoke does not serve the group version at all.
    kinds: Option<HashMap<String, Resolved>>,
}

pub struct DiscoveryCache {
    client: kube::Client,
    entries: Mutex<HashMap<String, Entry>>,
}

impl DiscoveryCache {
    pub fn new(client: kube::Client) -> DiscoveryCache {
        DiscoveryCache { client, entries: Mutex::new(HashMap::new()) }
    }

    fn cached(&self, api_version: &str, kind: &str) -> (Option<Resolved>, bool) {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.get(api_version) {
            Some(entry) => {
                let found = entry.kinds.as_ref().and_then(|k| k.get(kind)).cloned();
                (found, entry.fetched.elapsed() < MIN_REFRESH)
            }
            None => (None, false),
        }
    }

    /// The resource serving `kind` in `group`/`version`.
    pub async fn resolve(&self, group: &str, version: &str, kind: &str) -> Result<Resolved, ManifestError> {
        let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
        let unknown = || ManifestError::UnknownKind { api_version: api_version.clone(), kind: kind.to_string() };
        match self.cached(&api_version, kind) {
            (Some(found), _) => return Ok(found),
            (None, true) => return Err(unknown()),
            (None, false) => {}
        }
        let kinds = match discovery::pinned_group(&self.client, &kube::core::GroupVersion::gv(group, version)).await {
            Ok(group) => Some(
                group
                    .versioned_resources(version)
                    .into_iter()
                    .map(|(resource, caps)| {
                        let namespaced = matches!(caps.scope, Scope::Namespaced);
                        (resource.kind.clone(), Resolved { resource, namespaced })
                    })
                    .collect::<HashMap<_, _>>(),
            ),
            Err(e) if api_code(&e) == Some(404) => None,
            Err(e) => {
                return Err(ManifestError::Spoke {
                    action: "discovering",
                    what: api_version.clone(),
                    code: api_code(&e),
                    message: api_message(&e),
                });
            }
        };
        let found = kinds.as_ref().and_then(|k| k.get(kind)).cloned();
        tracing::debug!(api_version = %api_version, kinds = kinds.as_ref().map_or(0, HashMap::len), "spoke discovery refreshed");
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(api_version.clone(), Entry { fetched: Instant::now(), kinds });
        found.ok_or_else(unknown)
    }
}

/// An ApiResource from what an AppliedManifestWork records (group, version, plural): enough
/// to get, patch and delete by name (the kind is not part of those URLs).
pub fn from_applied(group: &str, version: &str, resource: &str) -> ApiResource {
    ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: if group.is_empty() { version.to_string() } else { format!("{group}/{version}") },
        kind: String::new(),
        plural: resource.to_string(),
    }
}
