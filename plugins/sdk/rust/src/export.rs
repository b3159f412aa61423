//! The export macros: `placement_filter!(MyFilter)` and one per world, each exporting a type
//! that implements the world's trait as the component's implementation of that world.
//!
//! A component exports exactly one world: call one of these once, in the plugin crate.

/// Exports `$plugin` (a [`crate::PlacementFilter`]) as this component's `placement-filter` world.
#[cfg(feature = "placement-filter")]
#[macro_export]
macro_rules! placement_filter {
    ($plugin:ty) => {
        const _: () = {
            // The raw export macro takes a plain name.
            type __FlotillaExport = $crate::placement_filter::Export<$plugin>;
            $crate::bindings::placement_filter::__export_placement_filter_raw!(
                __FlotillaExport with_types_in $crate::bindings::placement_filter
            );
        };
    };
}

/// Exports `$plugin` as this component's `placement-filter` world (needs the SDK's `placement-filter` feature).
#[cfg(not(feature = "placement-filter"))]
#[macro_export]
macro_rules! placement_filter {
    ($plugin:ty) => {
        ::core::compile_error!(
            "enable the \"placement-filter\" feature of flotilla-plugin-sdk to export a placement-filter"
        );
    };
}

/// Exports `$plugin` (a [`crate::PlacementScorer`]) as this component's `placement-scorer` world.
#[cfg(feature = "placement-scorer")]
#[macro_export]
macro_rules! placement_scorer {
    ($plugin:ty) => {
        const _: () = {
            // The raw export macro takes a plain name.
            type __FlotillaExport = $crate::placement_scorer::Export<$plugin>;
            $crate::bindings::placement_scorer::__export_placement_scorer_raw!(
                __FlotillaExport with_types_in $crate::bindings::placement_scorer
            );
        };
    };
}

/// Exports `$plugin` as this component's `placement-scorer` world (needs the SDK's `placement-scorer` feature).
#[cfg(not(feature = "placement-scorer"))]
#[macro_export]
macro_rules! placement_scorer {
    ($plugin:ty) => {
        ::core::compile_error!(
            "enable the \"placement-scorer\" feature of flotilla-plugin-sdk to export a placement-scorer"
        );
    };
}

/// Exports `$plugin` (a [`crate::PolicyCheck`]) as this component's `policy-check` world.
#[cfg(feature = "policy-check")]
#[macro_export]
macro_rules! policy_check {
    ($plugin:ty) => {
        const _: () = {
            // The raw export macro takes a plain name.
            type __FlotillaExport = $crate::policy_check::Export<$plugin>;
            $crate::bindings::policy_check::__export_policy_check_raw!(
                __FlotillaExport with_types_in $crate::bindings::policy_check
            );
        };
    };
}

/// Exports `$plugin` as this component's `policy-check` world (needs the SDK's `policy-check` feature).
#[cfg(not(feature = "policy-check"))]
#[macro_export]
macro_rules! policy_check {
    ($plugin:ty) => {
        ::core::compile_error!("enable the \"policy-check\" feature of flotilla-plugin-sdk to export a policy-check");
    };
}

/// Exports `$plugin` (a [`crate::RolloutStrategy`]) as this component's `rollout-strategy` world.
#[cfg(feature = "rollout-strategy")]
#[macro_export]
macro_rules! rollout_strategy {
    ($plugin:ty) => {
        const _: () = {
            // The raw export macro takes a plain name.
            type __FlotillaExport = $crate::rollout_strategy::Export<$plugin>;
            $crate::bindings::rollout_strategy::__export_rollout_strategy_raw!(
                __FlotillaExport with_types_in $crate::bindings::rollout_strategy
            );
        };
    };
}

/// Exports `$plugin` as this component's `rollout-strategy` world (needs the SDK's `rollout-strategy` feature).
#[cfg(not(feature = "rollout-strategy"))]
#[macro_export]
macro_rules! rollout_strategy {
    ($plugin:ty) => {
        ::core::compile_error!(
            "enable the \"rollout-strategy\" feature of flotilla-plugin-sdk to export a rollout-strategy"
        );
    };
}

/// Exports `$plugin` (a [`crate::ManifestTransform`]) as this component's `manifest-transform` world.
#[cfg(feature = "manifest-transform")]
#[macro_export]
macro_rules! manifest_transform {
    ($plugin:ty) => {
        const _: () = {
            // The raw export macro takes a plain name.
            type __FlotillaExport = $crate::manifest_transform::Export<$plugin>;
            $crate::bindings::manifest_transform::__export_manifest_transform_raw!(
                __FlotillaExport with_types_in $crate::bindings::manifest_transform
            );
        };
    };
}

/// Exports `$plugin` as this component's `manifest-transform` world (needs the SDK's `manifest-transform` feature).
#[cfg(not(feature = "manifest-transform"))]
#[macro_export]
macro_rules! manifest_transform {
    ($plugin:ty) => {
        ::core::compile_error!(
            "enable the \"manifest-transform\" feature of flotilla-plugin-sdk to export a manifest-transform"
        );
    };
}
