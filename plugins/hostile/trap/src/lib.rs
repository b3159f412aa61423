//! Hostile test plugin: panics, which prints the message to stderr and traps.

include!("../../filter_common.rs");

impl Guest for Plugin {
    fn describe() -> Description {
        description("trap", "Panics.")
    }

    fn validate_config(_config: String) -> Result<Reads, String> {
        Ok(reads())
    }

    fn filter(_config: String, _owner: OwnerRef, clusters: ClusterBatch) -> Result<FilterResult, String> {
        panic!("hostile plugin gives up on {} cluster(s)", clusters.count as usize);
    }
}

export!(Plugin);
