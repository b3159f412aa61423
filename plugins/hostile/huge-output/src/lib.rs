//! Hostile test plugin: answers with about 4 MiB of reasons, over a small output limit.

wit_bindgen::generate!({
    path: "../../../wit/placement-filter",
    world: "placement-filter",
    generate_all,
});

use exports::flotilla::placement_filter::filter::{FilterResult, Guest};
use flotilla::types::types::{ClusterBatch, Description, OwnerRef, Reads};

fn reads() -> Reads {
    Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![] }
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "huge-output".into(),
            version: "0.1.0".into(),
            summary: "Returns a huge result.".into(),
            reads: reads(),
            config_schema: None,
        }
    }

    fn validate_config(_config: String) -> Result<Reads, String> {
        Ok(reads())
    }

    fn filter(_config: String, _owner: OwnerRef, clusters: ClusterBatch) -> Result<FilterResult, String> {
        Ok(FilterResult {
            reasons: vec!["x".repeat(4 << 20)],
            verdicts: vec![1; clusters.count as usize],
            requeue_after_ms: None,
        })
    }
}

export!(Plugin);
