//! Rollouts of ManifestWorkReplicaSets (OCM `work.open-cluster-management.io/v1alpha1`).
//!
//! - [`types`]: what every strategy decides over: clusters, their groups and rollout statuses
//!   (sdk-go's `ClusterRolloutStatus`), and the decision of one cycle;
//! - [`engine`]: sdk-go's rollout engine (`All`, `Progressive`, `ProgressivePerGroup`) as a
//!   pure function of the strategy, the clusters and `now`;
//! - [`strategy`]: the [`types::Strategy`] trait's implementations: the built-in strategies
//!   over the engine, and Wasm `rollout-strategy` plugins through the plugin host;
//! - [`controller`]: the hub's ManifestWorkReplicaSet controller, over [`cycle`] (one rollout
//!   cycle of a placement, pure), [`works`] (the generated ManifestWorks and the health read
//!   back from them), [`revisions`] (template revisions as ControllerRevisions),
//!   [`transform`] (per-cluster manifest transforms) and [`status`].

pub mod controller;
pub mod cycle;
pub mod engine;
pub mod revisions;
pub mod status;
pub mod strategy;
pub mod transform;
pub mod types;
pub mod works;
