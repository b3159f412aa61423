//! The glue between each world's raw bindings and the SDK's traits and types: one module per
//! enabled world with an `Export<T>` that implements the raw `Guest` for a plugin `T`, the
//! export macros plugin crates call, and the host imports (`log`, `spoke`).
//!
//! Every world has its own copy of the shared `flotilla:types` bindings, so the SDK has its own
//! types and converts at this boundary (moving the vectors, not copying them).

#![allow(unused_macros, unused_imports)]

use crate::log::Level;
use crate::{Kind, Result};

/// Conversions between the SDK's types and one world's copy of `flotilla:types`, expanded in
/// a module where `raw` names that world's bindings.
macro_rules! type_conversions {
    (batch) => {
        type_conversions!();
        type_conversions!(@batch);
    };
    (cluster) => {
        type_conversions!();
        type_conversions!(@cluster);
    };
    () => {
        use raw::flotilla::types::types as t;

        pub(crate) fn reads(r: crate::Reads) -> t::Reads {
            t::Reads {
                labels: r.labels,
                claims: r.claims,
                resources: r.resources,
                fields: r.fields,
                kinds: r.kinds.into_iter().map(|k| t::KindRef { api_version: k.api_version, kind: k.kind }).collect(),
            }
        }

        pub(crate) fn description(d: crate::Description) -> t::Description {
            t::Description {
                name: d.name,
                version: d.version,
                summary: d.summary,
                reads: reads(d.reads),
                config_schema: d.config_schema,
            }
        }

        pub(crate) fn context(o: t::OwnerRef) -> crate::Context {
            crate::Context { owner_kind: o.kind, owner_namespace: o.namespace, owner_name: o.name }
        }

        pub(crate) fn validate<T: crate::Plugin>(config: String) -> std::result::Result<t::Reads, String> {
            crate::configure::<T>(&config).map(|(_, r)| reads(r)).map_err(String::from)
        }

        #[allow(dead_code)]
        pub(crate) fn log(level: crate::log::Level, message: &str) {
            use raw::flotilla::types::log::{Level as L, log};
            let level = match level {
                crate::log::Level::Trace => L::Trace,
                crate::log::Level::Debug => L::Debug,
                crate::log::Level::Info => L::Info,
                crate::log::Level::Warn => L::Warn,
                crate::log::Level::Error => L::Error,
            };
            log(level, message);
        }
    };
    // Each world's bindings have only the shared types it uses: batches or rows.
    (@batch) => {
        pub(crate) fn batch(b: t::ClusterBatch) -> crate::Clusters {
            let column = |c: t::StringColumn| crate::Column { key: c.key, values: c.values, index: c.index };
            crate::Clusters::new(
                b.count as usize,
                b.names,
                b.labels.into_iter().map(column).collect(),
                b.claims.into_iter().map(column).collect(),
                b.resources
                    .into_iter()
                    .map(|r| crate::ResourceColumn {
                        name: r.name,
                        capacity: r.capacity_milli,
                        allocatable: r.allocatable_milli,
                    })
                    .collect(),
                b.fields,
            )
        }

    };
    (@cluster) => {
        pub(crate) fn cluster(c: t::Cluster) -> crate::Cluster {
            crate::Cluster {
                name: c.name,
                labels: c.labels,
                claims: c.claims,
                resources: c
                    .resources
                    .into_iter()
                    .map(|r| {
                        (r.name, crate::Quantity { capacity: r.capacity_milli, allocatable: r.allocatable_milli })
                    })
                    .collect(),
                fields: c.fields,
            }
        }
    };
}

#[cfg(feature = "placement-filter")]
pub mod placement_filter {
    use std::marker::PhantomData;

    use crate::bindings::placement_filter as raw;
    use raw::exports::flotilla::placement_filter::filter as api;

    type_conversions!(batch);

    /// Implements the raw export for a [`crate::PlacementFilter`]; use
    /// [`crate::placement_filter!`].
    pub struct Export<T>(PhantomData<T>);

    impl<T: crate::PlacementFilter> api::Guest for Export<T> {
        fn describe() -> t::Description {
            description(T::describe())
        }

        fn validate_config(config: String) -> Result<t::Reads, String> {
            validate::<T>(config)
        }

        fn filter(config: String, owner: t::OwnerRef, clusters: t::ClusterBatch) -> Result<api::FilterResult, String> {
            let (config, _) = crate::configure::<T>(&config)?;
            let (reasons, verdicts, requeue_after_ms) =
                T::filter(&config, &context(owner), &batch(clusters))?.into_parts();
            Ok(api::FilterResult { reasons, verdicts, requeue_after_ms })
        }
    }
}

#[cfg(feature = "placement-scorer")]
pub mod placement_scorer {
    use std::marker::PhantomData;

    use crate::bindings::placement_scorer as raw;
    use raw::exports::flotilla::placement_scorer::scorer as api;

    type_conversions!(batch);

    /// Implements the raw export for a [`crate::PlacementScorer`]; use
    /// [`crate::placement_scorer!`].
    pub struct Export<T>(PhantomData<T>);

    impl<T: crate::PlacementScorer> api::Guest for Export<T> {
        fn describe() -> t::Description {
            description(T::describe())
        }

        fn validate_config(config: String) -> Result<t::Reads, String> {
            validate::<T>(config)
        }

        fn score(config: String, owner: t::OwnerRef, clusters: t::ClusterBatch) -> Result<api::ScoreResult, String> {
            let (config, _) = crate::configure::<T>(&config)?;
            let s = T::score(&config, &context(owner), &batch(clusters))?;
            Ok(api::ScoreResult { scores: s.scores, requeue_after_ms: s.requeue_after_ms })
        }
    }
}

#[cfg(feature = "policy-check")]
pub mod policy_check {
    use std::marker::PhantomData;

    use crate::bindings::policy_check as raw;
    use raw::exports::flotilla::policy_check::check as api;

    type_conversions!(cluster);

    /// Implements the raw export for a [`crate::PolicyCheck`]; use [`crate::policy_check!`].
    pub struct Export<T>(PhantomData<T>);

    fn violation(v: crate::Violation) -> api::Violation {
        api::Violation {
            object: v.object.map(|o| api::ObjectRef {
                kind: t::KindRef { api_version: o.kind.api_version, kind: o.kind.kind },
                namespace: o.namespace,
                name: o.name,
            }),
            message: v.message,
            remediation: v.remediation.map(|patch| patch.to_string()),
        }
    }

    impl<T: crate::PolicyCheck> api::Guest for Export<T> {
        fn describe() -> t::Description {
            description(T::describe())
        }

        fn validate_config(config: String) -> Result<t::Reads, String> {
            validate::<T>(config)
        }

        fn check(config: String, owner: t::OwnerRef, c: t::Cluster) -> Result<api::CheckResult, String> {
            let (config, _) = crate::configure::<T>(&config)?;
            let r = T::check(&config, &context(owner), &cluster(c))?;
            Ok(api::CheckResult {
                compliance: match r.compliance {
                    crate::Compliance::Compliant => api::Compliance::Compliant,
                    crate::Compliance::NonCompliant => api::Compliance::NonCompliant,
                    crate::Compliance::Pending => api::Compliance::Pending,
                },
                message: r.message,
                violations: r.violations.into_iter().map(violation).collect(),
            })
        }
    }

    pub(crate) fn kind_ref(k: &crate::Kind) -> t::KindRef {
        t::KindRef { api_version: k.api_version.clone(), kind: k.kind.clone() }
    }
}

#[cfg(feature = "rollout-strategy")]
pub mod rollout_strategy {
    use std::marker::PhantomData;

    use crate::bindings::rollout_strategy as raw;
    use raw::exports::flotilla::rollout_strategy::strategy as api;

    type_conversions!(cluster);

    /// Implements the raw export for a [`crate::RolloutStrategy`]; use
    /// [`crate::rollout_strategy!`].
    pub struct Export<T>(PhantomData<T>);

    fn rollout_cluster(c: api::RolloutCluster) -> crate::RolloutCluster {
        use crate::RolloutStatus as S;
        crate::RolloutCluster {
            cluster: cluster(c.cluster),
            group_index: c.group_index,
            group_name: c.group_name,
            status: match c.status {
                api::RolloutStatus::ToApply => S::ToApply,
                api::RolloutStatus::Progressing => S::Progressing,
                api::RolloutStatus::Succeeded => S::Succeeded,
                api::RolloutStatus::Failed => S::Failed,
                api::RolloutStatus::TimeOut => S::TimeOut,
                api::RolloutStatus::Skip => S::Skip,
            },
            last_transition_time: c.last_transition_time,
        }
    }

    impl<T: crate::RolloutStrategy> api::Guest for Export<T> {
        fn describe() -> t::Description {
            description(T::describe())
        }

        fn validate_config(config: String) -> Result<t::Reads, String> {
            validate::<T>(config)
        }

        fn decide(
            config: String,
            owner: t::OwnerRef,
            now: t::Timestamp,
            clusters: Vec<api::RolloutCluster>,
        ) -> Result<api::RolloutDecision, String> {
            let (config, _) = crate::configure::<T>(&config)?;
            let clusters: Vec<crate::RolloutCluster> = clusters.into_iter().map(rollout_cluster).collect();
            let d = T::decide(&config, &context(owner), now, &clusters)?;
            Ok(api::RolloutDecision {
                proceed: d.proceed,
                timed_out: d.timed_out,
                failed: d.failed,
                stop: d.stop,
                recheck_after_ms: d.recheck_after_ms,
                message: d.message,
            })
        }
    }
}

#[cfg(feature = "manifest-transform")]
pub mod manifest_transform {
    use std::marker::PhantomData;

    use crate::bindings::manifest_transform as raw;
    use raw::exports::flotilla::manifest_transform::transform as api;

    type_conversions!(batch);

    /// Implements the raw export for a [`crate::ManifestTransform`]; use
    /// [`crate::manifest_transform!`].
    pub struct Export<T>(PhantomData<T>);

    type PerCluster = Vec<Result<Vec<String>, String>>;

    impl<T: crate::ManifestTransform> api::Guest for Export<T> {
        fn describe() -> t::Description {
            description(T::describe())
        }

        fn validate_config(config: String) -> Result<t::Reads, String> {
            validate::<T>(config)
        }

        fn transform(
            config: String,
            owner: t::OwnerRef,
            manifests: Vec<String>,
            clusters: t::ClusterBatch,
        ) -> Result<PerCluster, String> {
            let (config, _) = crate::configure::<T>(&config)?;
            let manifests: Vec<serde_json::Value> = manifests
                .iter()
                .enumerate()
                .map(|(i, m)| serde_json::from_str(m).map_err(|e| format!("manifest {i} is not JSON: {e}")))
                .collect::<Result<_, _>>()?;
            let out = T::transform(&config, &context(owner), &manifests, &batch(clusters))?;
            Ok(out.into_iter().map(|r| r.map(|ms| ms.iter().map(serde_json::Value::to_string).collect())).collect())
        }
    }
}

/// Sends a log line through whichever world is enabled: every world imports the same
/// `flotilla:types/log`.
pub(crate) fn host_log(level: Level, message: &str) {
    #[cfg(feature = "placement-filter")]
    return placement_filter::log(level, message);
    #[cfg(all(not(feature = "placement-filter"), feature = "placement-scorer"))]
    return placement_scorer::log(level, message);
    #[cfg(all(not(any(feature = "placement-filter", feature = "placement-scorer")), feature = "policy-check"))]
    return policy_check::log(level, message);
    #[cfg(all(
        not(any(feature = "placement-filter", feature = "placement-scorer", feature = "policy-check")),
        feature = "rollout-strategy"
    ))]
    return rollout_strategy::log(level, message);
    #[cfg(all(
        not(any(
            feature = "placement-filter",
            feature = "placement-scorer",
            feature = "policy-check",
            feature = "rollout-strategy"
        )),
        feature = "manifest-transform"
    ))]
    return manifest_transform::log(level, message);
    #[allow(unreachable_code)]
    {
        eprintln!("[{level:?}] {message}");
    }
}

#[cfg(feature = "policy-check")]
pub(crate) fn spoke_list(kind: &Kind, namespace: Option<&str>, selector: Option<&str>) -> Result<Vec<String>> {
    use crate::bindings::policy_check::flotilla::policy_check::spoke;
    Ok(spoke::list_objects(&policy_check::kind_ref(kind), namespace, selector)?)
}

#[cfg(feature = "policy-check")]
pub(crate) fn spoke_get(kind: &Kind, namespace: Option<&str>, name: &str) -> Result<Option<String>> {
    use crate::bindings::policy_check::flotilla::policy_check::spoke;
    Ok(spoke::get_object(&policy_check::kind_ref(kind), namespace, name)?)
}

// Without the policy-check world there is no spoke to read.
#[cfg(not(feature = "policy-check"))]
pub(crate) fn spoke_list(kind: &Kind, _namespace: Option<&str>, _selector: Option<&str>) -> Result<Vec<String>> {
    Err(crate::Error::msg(format!(
        "cannot list {}: only policy checks read spoke objects (enable the policy-check feature)",
        kind.kind
    )))
}

#[cfg(not(feature = "policy-check"))]
pub(crate) fn spoke_get(kind: &Kind, _namespace: Option<&str>, _name: &str) -> Result<Option<String>> {
    Err(crate::Error::msg(format!(
        "cannot get a {}: only policy checks read spoke objects (enable the policy-check feature)",
        kind.kind
    )))
}
