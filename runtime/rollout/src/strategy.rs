//! The [`Strategy`] implementations: OCM's built-in rollouts over the [`engine`], and Wasm
//! `rollout-strategy` plugins through the plugin host. [`build_strategy`] makes the right one
//! from a parsed `rolloutStrategy`, so a controller needs one call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flotilla_plugin_host::{
    ClusterInfo, Limits, OwnerRef, Plugin, PluginError, PluginHost, Prepared, RolloutCluster as HostCluster,
    RolloutStatus as HostStatus, World,
};

use crate::engine::{self, BuiltinRollout, PluginStrategy, RolloutStrategy};
use crate::types::{Millis, RolloutCluster, RolloutDecision, RolloutStatus, Strategy, StrategyError};

/// OCM's `All`, `Progressive` and `ProgressivePerGroup`, decided by the [`engine`].
#[derive(Clone, Debug, PartialEq)]
pub struct BuiltinStrategy {
    rollout: BuiltinRollout,
}

impl BuiltinStrategy {
    pub fn new(rollout: BuiltinRollout) -> BuiltinStrategy {
        BuiltinStrategy { rollout }
    }

    pub fn rollout(&self) -> &BuiltinRollout {
        &self.rollout
    }
}

impl Strategy for BuiltinStrategy {
    fn decide(&self, now: Millis, clusters: &[RolloutCluster]) -> Result<RolloutDecision, StrategyError> {
        Ok(engine::decide(&self.rollout, clusters, now))
    }
}

/// A Wasm `rollout-strategy` plugin, prepared with its configuration. The plugin sees each
/// cluster as its configuration declared it reads (labels, claims, resources, fields), from
/// the [`ClusterInfo`]s given here by name; a cluster without one is passed with its name
/// only. The host checks that every name in the answer is one of the clusters passed.
///
/// Calls are synchronous and CPU-bound: make them from a blocking context (see
/// [`PluginHost`]).
pub struct WasmStrategy {
    host: Arc<PluginHost>,
    prepared: Prepared,
    owner: OwnerRef,
    limits: Limits,
    infos: HashMap<String, ClusterInfo>,
}

impl WasmStrategy {
    /// `owner` is the object whose rollout this is (the ManifestWorkReplicaSet); `limits` are
    /// the call's (the host's defaults with the WasmPlugin's and the reference's overrides).
    pub fn new(
        host: Arc<PluginHost>,
        prepared: Prepared,
        owner: OwnerRef,
        limits: Limits,
        infos: impl IntoIterator<Item = ClusterInfo>,
    ) -> WasmStrategy {
        let infos = infos.into_iter().map(|c| (c.name.clone(), c)).collect();
        WasmStrategy { host, prepared, owner, limits, infos }
    }

    /// Replaces (or adds) what the plugin may read of a cluster, as its ManagedCluster changes.
    pub fn upsert_cluster(&mut self, info: ClusterInfo) {
        self.infos.insert(info.name.clone(), info);
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        self.prepared.plugin.name()
    }

    fn error(&self, e: PluginError) -> StrategyError {
        StrategyError::Plugin { plugin: self.plugin().to_string(), message: e.to_string() }
    }
}

impl std::fmt::Debug for WasmStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmStrategy").field("plugin", &self.plugin()).field("owner", &self.owner).finish()
    }
}

fn host_status(s: RolloutStatus) -> HostStatus {
    match s {
        RolloutStatus::ToApply => HostStatus::ToApply,
        RolloutStatus::Progressing => HostStatus::Progressing,
        RolloutStatus::Succeeded => HostStatus::Succeeded,
        RolloutStatus::Failed => HostStatus::Failed,
        RolloutStatus::TimeOut => HostStatus::TimeOut,
        RolloutStatus::Skip => HostStatus::Skip,
    }
}

impl Strategy for WasmStrategy {
    fn decide(&self, now: Millis, clusters: &[RolloutCluster]) -> Result<RolloutDecision, StrategyError> {
        let inputs: Vec<HostCluster> = clusters
            .iter()
            .map(|c| {
                let cluster = match self.infos.get(&c.name) {
                    Some(info) => self.prepared.project(info),
                    None => self.prepared.project(&ClusterInfo { name: c.name.clone(), ..Default::default() }),
                };
                HostCluster {
                    cluster,
                    group_index: c.group_index,
                    group_name: c.group_name.clone(),
                    status: host_status(c.status),
                    last_transition_time: c.last_transition_time,
                }
            })
            .collect();
        // The host refuses an answer naming a cluster that was not passed (InvalidOutput).
        let d = self
            .host
            .rollout_strategy(&self.prepared, &self.owner, now, &inputs, &self.limits)
            .map_err(|e| self.error(e))?;
        Ok(RolloutDecision {
            proceed: d.proceed,
            timed_out: d.timed_out,
            failed: d.failed,
            stop: d.stop,
            recheck_after: d.recheck_after_ms.map(Duration::from_millis),
            message: d.message,
        })
    }
}

/// How [`build_strategy`] reaches Wasm strategy plugins: the hub implements it over its
/// `WasmPlugin`s, tests and benchmarks over the built-in plugins.
pub trait StrategyPlugins: Send + Sync {
    /// The host the plugins run in.
    fn host(&self) -> Arc<PluginHost>;

    /// The loaded plugin of `WasmPlugin` `reference.name`, and the limits of its calls (the
    /// host's defaults with the WasmPlugin's then the reference's overrides). The error says
    /// why there is none (not found, not loaded yet, refused at push).
    fn resolve(&self, reference: &PluginStrategy) -> Result<(Arc<Plugin>, Limits), String>;
}

/// The strategy a parsed `rolloutStrategy` describes: a [`BuiltinStrategy`], or a
/// [`WasmStrategy`] whose plugin `plugins` resolves and whose configuration the plugin
/// accepts (one `validate-config` call). `field` is the strategy's path in the owner (for
/// errors), `owner` the object rolled out, `infos` what the plugin may read of each cluster.
///
/// Errors: a plugin of another world, or a configuration the plugin refuses, is
/// [`StrategyError::Invalid`] at `field.plugin.name` / `field.plugin.configuration`; a plugin
/// that cannot be resolved or fails while validating is [`StrategyError::Plugin`].
pub fn build_strategy(
    spec: &RolloutStrategy,
    field: &str,
    owner: &OwnerRef,
    plugins: &dyn StrategyPlugins,
    infos: impl IntoIterator<Item = ClusterInfo>,
) -> Result<Box<dyn Strategy>, StrategyError> {
    let reference = match spec {
        RolloutStrategy::Builtin(b) => return Ok(Box::new(BuiltinStrategy::new(b.clone()))),
        RolloutStrategy::Plugin(p) => p,
    };
    let failed = |message: String| StrategyError::Plugin { plugin: reference.name.clone(), message };
    let (plugin, limits) = plugins.resolve(reference).map_err(failed)?;
    if plugin.world() != World::RolloutStrategy {
        return Err(StrategyError::Invalid {
            field: format!("{field}.plugin.name"),
            message: format!("plugin {} implements {}, not {}", reference.name, plugin.world(), World::RolloutStrategy),
        });
    }
    let host = plugins.host();
    let prepared = host.prepare_with(&plugin, &reference.configuration, &limits).map_err(|e| match e {
        PluginError::ConfigRejected(message) => {
            StrategyError::Invalid { field: format!("{field}.plugin.configuration"), message }
        }
        e => failed(e.to_string()),
    })?;
    Ok(Box::new(WasmStrategy::new(host, prepared, owner.clone(), limits, infos)))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use flotilla_plugin_host::HostConfig;
    use serde_json::json;

    use super::*;
    use crate::engine::parse_strategy;
    use crate::types::RolloutStatus::*;

    const FIELD: &str = "spec.placementRefs[0].rolloutStrategy";

    /// The plugins of this checkout (`plugins/`), built by `plugins/build.sh`, in a real host.
    struct SourceTreePlugins {
        host: Arc<PluginHost>,
        dir: PathBuf,
    }

    impl SourceTreePlugins {
        fn new() -> SourceTreePlugins {
            let dir = flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}")).to_path_buf();
            let cache = std::env::temp_dir().join("flotilla-rollout-tests");
            std::fs::create_dir_all(&cache).expect("cache dir");
            let mut config = HostConfig::new(cache);
            config.max_concurrent_instances = 4;
            SourceTreePlugins { host: Arc::new(PluginHost::new(config).expect("plugin host")), dir }
        }
    }

    impl StrategyPlugins for SourceTreePlugins {
        fn host(&self) -> Arc<PluginHost> {
            self.host.clone()
        }

        fn resolve(&self, reference: &PluginStrategy) -> Result<(Arc<Plugin>, Limits), String> {
            let path = self.dir.join(format!("{}.wasm", reference.name.replace('-', "_")));
            let bytes = std::fs::read(&path).map_err(|e| format!("no WasmPlugin {}: {e}", reference.name))?;
            let plugin = self.host.load_detected(&reference.name, &bytes).map_err(|e| e.to_string())?;
            let overrides: Vec<&flotilla_plugin_host::LimitsOverride> = reference.limits.iter().collect();
            Ok((plugin, self.host.limits(&overrides)))
        }
    }

    fn owner() -> OwnerRef {
        OwnerRef { kind: "ManifestWorkReplicaSet".into(), namespace: "default".into(), name: "web".into() }
    }

    fn cl(name: &str, group: u32, status: RolloutStatus, since: Option<Millis>) -> RolloutCluster {
        RolloutCluster {
            name: name.into(),
            group_index: group,
            group_name: String::new(),
            status,
            last_transition_time: since,
        }
    }

    fn build(plugins: &SourceTreePlugins, strategy: serde_json::Value) -> Result<Box<dyn Strategy>, StrategyError> {
        let spec = parse_strategy(Some(&strategy), FIELD)?;
        let infos = ["a", "b", "c", "d"].map(|n| ClusterInfo { name: n.into(), ..Default::default() });
        build_strategy(&spec, FIELD, &owner(), plugins, infos)
    }

    #[test]
    fn canary_waves_plugin_decides_through_the_wasm_strategy() {
        let plugins = SourceTreePlugins::new();
        let strategy = build(
            &plugins,
            json!({"type": "Plugin", "plugin": {"name": "canary-waves", "configuration": {
                "canary": 1, "waves": ["50%", "100%"], "maxFailures": 1,
                "progressDeadline": "10m", "minSuccessTime": "1m"}}}),
        )
        .expect("canary-waves accepts its configuration");
        let min = 60_000;
        let mut clusters: Vec<RolloutCluster> = ["a", "b", "c", "d"].iter().map(|n| cl(n, 0, ToApply, None)).collect();

        let d = strategy.decide(0, &clusters).expect("decide");
        assert_eq!(d.proceed, ["a"], "only the canary goes first");
        assert!(!d.stop);
        assert_eq!(d.message.as_deref(), Some("canary of 3: waiting for 1 of 1 cluster(s)"));

        clusters[0] = cl("a", 0, Succeeded, Some(0));
        let d = strategy.decide(30_000, &clusters).expect("decide");
        assert_eq!(d.proceed, ["a"], "the canary soaks");
        assert_eq!(d.recheck_after, Some(Duration::from_secs(30)));

        let d = strategy.decide(min, &clusters).expect("decide");
        assert_eq!(d.proceed, ["b"], "soaked: the first wave, 50% of 4");

        clusters[1] = cl("b", 0, Progressing, Some(min));
        clusters[2] = cl("c", 1, Failed, Some(min));
        let d = strategy.decide(11 * min, &clusters).expect("decide");
        assert_eq!(d.timed_out, ["b", "c"]);
        assert_eq!(d.failed, ["b", "c"]);
        assert!(d.stop, "two failures breach maxFailures 1");
        assert_eq!(d.proceed, Vec::<String>::new());
    }

    #[test]
    fn a_failing_plugin_is_a_strategy_error() {
        let plugins = SourceTreePlugins::new();
        let clusters = [cl("a", 0, ToApply, None)];

        // The plugin reports an error of its own at decide time: a configuration that
        // validate-config would have refused, swapped in behind the host's back.
        let reference = PluginStrategy {
            name: "canary-waves".into(),
            configuration: "{}".into(),
            failure_policy: None,
            limits: None,
        };
        let (plugin, limits) = plugins.resolve(&reference).expect("resolve");
        let mut prepared = plugins.host.prepare(&plugin, "{}").expect("prepare");
        prepared.config = r#"{"progressDeadline": "soon"}"#.into();
        let broken = WasmStrategy::new(plugins.host(), prepared.clone(), owner(), limits, []);
        match broken.decide(0, &clusters) {
            Err(StrategyError::Plugin { plugin, message }) => {
                assert_eq!(plugin, "canary-waves");
                assert_eq!(message, "the plugin reported an error: progressDeadline: invalid duration \"soon\"");
            }
            other => panic!("expected a plugin error, got {other:?}"),
        }

        // The host stops it: memory limited below what the component needs to instantiate.
        let starved = Limits { memory_bytes: 64 << 10, ..limits };
        let strategy = WasmStrategy::new(
            plugins.host(),
            plugins.host.prepare(&plugin, "{}").expect("prepare"),
            owner(),
            starved,
            [],
        );
        match strategy.decide(0, &clusters) {
            Err(e @ StrategyError::Plugin { .. }) => {
                assert!(e.to_string().starts_with("rollout strategy plugin canary-waves: "), "{e}")
            }
            other => panic!("expected a plugin error, got {other:?}"),
        }

        // Building: a configuration the plugin refuses, a plugin of another world, a missing one.
        let rejected = build(
            &plugins,
            json!({"type": "Plugin", "plugin": {"name": "canary-waves",
            "configuration": {"waves": ["many"]}}}),
        )
        .map(|_| ())
        .expect_err("refused");
        assert_eq!(
            rejected.to_string(),
            "spec.placementRefs[0].rolloutStrategy.plugin.configuration: waves: \"many\" is neither a count nor a \
             percentage like \"25%\""
        );
        let wrong = build(&plugins, json!({"type": "Plugin", "plugin": {"name": "label-filter"}}))
            .map(|_| ())
            .expect_err("wrong");
        assert_eq!(
            wrong.to_string(),
            "spec.placementRefs[0].rolloutStrategy.plugin.name: plugin label-filter implements placement-filter, not \
             rollout-strategy"
        );
        let missing =
            build(&plugins, json!({"type": "Plugin", "plugin": {"name": "nowhere"}})).map(|_| ()).expect_err("missing");
        assert!(
            matches!(&missing, StrategyError::Plugin { plugin, message } if plugin == "nowhere" && message.starts_with("no WasmPlugin nowhere")),
            "{missing:?}"
        );
    }

    /// 12 clusters in 4 groups of 3, none applied.
    fn twelve_in_four_groups() -> Vec<RolloutCluster> {
        (0..12u32).map(|i| cl(&format!("c{i:02}"), i / 3, ToApply, None)).collect()
    }

    /// One step of a simulated rollout, 10 s long: what proceeds is applied and becomes
    /// Progressing; cluster `i` becomes Succeeded 10, 20 or 30 s after (by `i % 3`), except
    /// `failing`, which becomes Failed.
    fn advance(clusters: &mut [RolloutCluster], d: &RolloutDecision, now: Millis, failing: Option<usize>) {
        for (i, c) in clusters.iter_mut().enumerate() {
            let since = c.last_transition_time.unwrap_or(now);
            match c.status {
                ToApply if d.proceed.contains(&c.name) => (c.status, c.last_transition_time) = (Progressing, Some(now)),
                Progressing if Some(i) == failing => (c.status, c.last_transition_time) = (Failed, Some(now)),
                Progressing if now - since >= 10_000 * (1 + i as i64 % 3) => {
                    (c.status, c.last_transition_time) = (Succeeded, Some(now));
                }
                _ => {}
            }
        }
    }

    const START: Millis = 1_796_472_000_000;

    #[test]
    fn builtin_strategy_agrees_with_the_engine() {
        let plugins = SourceTreePlugins::new();
        for strategy in [
            json!({"type": "All", "all": {"progressDeadline": "2m"}}),
            json!({"type": "Progressive", "progressive": {"maxConcurrency": "30%", "minSuccessTime": "30s",
                "progressDeadline": "3m", "maxFailures": 2, "mandatoryDecisionGroups": [{"groupIndex": 0}]}}),
            json!({"type": "ProgressivePerGroup", "progressivePerGroup": {"minSuccessTime": "30s",
                "progressDeadline": "3m", "maxFailures": "50%"}}),
        ] {
            let spec = parse_strategy(Some(&strategy), FIELD).expect("parse");
            let RolloutStrategy::Builtin(rollout) = &spec else { panic!("{strategy} is built in") };
            let built = build_strategy(&spec, FIELD, &owner(), &plugins, []).expect("build");
            let direct = BuiltinStrategy::new(rollout.clone());
            let mut clusters = twelve_in_four_groups();
            let mut now = START;
            for cycle in 0..60 {
                let d = direct.decide(now, &clusters).expect("builtin");
                assert_eq!(d, engine::decide(rollout, &clusters, now), "{strategy}, cycle {cycle}");
                assert_eq!(d, built.decide(now, &clusters).expect("built"), "{strategy}, cycle {cycle}");
                advance(&mut clusters, &d, now, Some(7));
                now += 10_000;
            }
            let succeeded = clusters.iter().filter(|c| c.status == Succeeded).count();
            assert_eq!(succeeded, 11, "{strategy}: every cluster but the failing one rolled out: {clusters:?}");
        }
    }

    /// An independent implementation of the same gates: canary-waves with one wave per
    /// decision group decides as ProgressivePerGroup (its messages aside) at every cycle of a
    /// rollout without failures.
    #[test]
    fn canary_waves_by_group_decides_as_progressive_per_group() {
        let plugins = SourceTreePlugins::new();
        let per_group = build(
            &plugins,
            json!({"type": "ProgressivePerGroup", "progressivePerGroup": {"minSuccessTime": "30s", "progressDeadline": "3m"}}),
        )
        .expect("per group");
        let waves = build(
            &plugins,
            json!({"type": "Plugin", "plugin": {"name": "canary-waves", "configuration": {"canary": "25%",
                "waves": ["50%", "75%", "100%"], "minSuccessTime": "30s", "progressDeadline": "3m"}}}),
        )
        .expect("canary-waves");
        let mut clusters = twelve_in_four_groups();
        let mut now = START;
        let mut cycles = 0;
        while clusters.iter().any(|c| c.status != Succeeded) {
            let d = per_group.decide(now, &clusters).expect("per group");
            let w = waves.decide(now, &clusters).expect("canary-waves");
            assert_eq!(
                (&d.proceed, &d.timed_out, &d.failed, d.stop, d.recheck_after),
                (&w.proceed, &w.timed_out, &w.failed, w.stop, w.recheck_after),
                "cycle {cycle} at {now}: {clusters:?}",
                cycle = cycles
            );
            advance(&mut clusters, &d, now, None);
            now += 10_000;
            cycles += 1;
            assert!(cycles < 100, "the rollout completes: {clusters:?}");
        }
    }
}
