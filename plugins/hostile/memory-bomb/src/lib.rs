//! Hostile test plugin: allocates (and touches) memory until something stops it.

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
            name: "memory-bomb".into(),
            version: "0.1.0".into(),
            summary: "Allocates without end.".into(),
            reads: reads(),
            config_schema: None,
        }
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
