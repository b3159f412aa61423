//! Hostile test plugin: answers with about 4 MiB of reasons, over a small output limit.

include!("../../filter_common.rs");

impl Guest for Plugin {
    fn describe() -> Description {
        description("huge-output", "Returns a huge result.")
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
