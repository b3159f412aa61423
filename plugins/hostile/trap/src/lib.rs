//! Hostile test plugin: panics, which prints the message to stderr and traps.

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
            name: "trap".into(),
            version: "0.1.0".into(),
            summary: "Panics.".into(),
            reads: reads(),
            config_schema: None,
        }
    }

    fn validate_config(_config: String) -> Result<Reads, String> {
        Ok(reads())
    }

    fn filter(_config: String, _owner: OwnerRef, clusters: ClusterBatch) -> Result<FilterResult, String> {
        panic!("hostile plugin gives up on {} cluster(s)", clusters.count as usize);
    }
}

export!(Plugin);
