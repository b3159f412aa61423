//! Hostile test plugin: allocates (and touches) memory until something stops it.

include!("../../filter_common.rs");

impl Guest for Plugin {
    fn describe() -> Description {
        description("memory-bomb", "Allocates without end.")
    }

    fn validate_config(_config: String) -> Result<Reads, String> {
        Ok(reads())
    }

    fn filter(_config: String, _owner: OwnerRef, clusters: ClusterBatch) -> Result<FilterResult, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Written, not just reserved, so every page is really used.
            hoard.push(vec![clusters.count as usize as u8 + 1; 1 << 20]);
            if hoard.len() == usize::MAX {
                return Err(format!("{}", hoard.len()));
            }
        }
    }
}

export!(Plugin);
