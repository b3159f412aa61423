//! Hostile test plugin: never returns from `filter`; the host stops it at its deadline.

include!("../../filter_common.rs");

impl Guest for Plugin {
    fn describe() -> Description {
        description("endless-loop", "Loops forever.")
    }

    fn validate_config(_config: String) -> Result<Reads, String> {
        Ok(reads())
    }

    fn filter(_config: String, _owner: OwnerRef, clusters: ClusterBatch) -> Result<FilterResult, String> {
        // An opaque computation, so the compiler cannot prove the loop empty or finite.
        let mut x = clusters.count as usize as u64;
        loop {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if x == 42 && clusters.count == 0 {
                return Err(format!("unreachable in practice: {x}"));
            }
        }
    }
}

export!(Plugin);
