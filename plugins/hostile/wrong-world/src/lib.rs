//! Test plugin: a valid rollout strategy, for checking that the host refuses it where a
//! placement filter is declared.

wit_bindgen::generate!({
    path: "../../../wit/rollout-strategy",
    world: "rollout-strategy",
    generate_all,
});

use exports::flotilla::rollout_strategy::strategy::{Guest, RolloutCluster, RolloutDecision};
use flotilla::types::types::{Description, OwnerRef, Reads, Timestamp};

fn reads() -> Reads {
    Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![] }
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "wrong-world".into(),
            version: "0.1.0".into(),
            summary: "Rolls out everywhere at once.".into(),
            reads: reads(),
            config_schema: None,
        }
    }

    fn validate_config(_config: String) -> Result<Reads, String> {
        Ok(reads())
    }

    fn decide(
        _config: String,
        _owner: OwnerRef,
        _now: Timestamp,
        clusters: Vec<RolloutCluster>,
    ) -> Result<RolloutDecision, String> {
        Ok(RolloutDecision {
            proceed: clusters.into_iter().map(|c| c.cluster.name).collect(),
            timed_out: vec![],
            failed: vec![],
            stop: false,
            recheck_after_ms: None,
            message: None,
        })
    }
}

export!(Plugin);
