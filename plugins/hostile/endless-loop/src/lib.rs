//! Hostile test plugin: never returns from `filter`; the host stops it at its deadline.

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
            name: "endless-loop".into(),
            version: "0.1.0".into(),
            summary: "Loops forever.".into(),
            reads: reads(),
            config_schema: None,
        }
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
