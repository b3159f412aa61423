// Shared by the hostile placement filters (each `include!`s it): the bindings, and a
// `describe()`/`validate-config` that read nothing, so each plugin holds only its misbehaviour.

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

fn description(name: &str, summary: &str) -> Description {
    Description { name: name.into(), version: "0.1.0".into(), summary: summary.into(), reads: reads(), config_schema: None }
}

struct Plugin;
