//! Test plugin: reports the clocks and randomness it sees (deterministic worlds must see
//! none), and logs as many lines as its configuration asks (the host bounds them).

include!("../../filter_common.rs");

use std::hash::{BuildHasher, Hasher};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

impl Guest for Plugin {
    fn describe() -> Description {
        description("entropy-probe", "Reports clocks and randomness.")
    }

    fn validate_config(_config: String) -> Result<Reads, String> {
        Ok(reads())
    }

    fn filter(config: String, _owner: OwnerRef, clusters: ClusterBatch) -> Result<FilterResult, String> {
        let logs: usize = config.trim().parse().unwrap_or(0);
        for i in 0..logs {
            flotilla::types::log::log(flotilla::types::log::Level::Info, &format!("line {i}"));
        }
        let start = Instant::now();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let mut spin = 0u64;
        for i in 0..100_000u64 {
            spin = spin.wrapping_add(i * i);
        }
        let elapsed = start.elapsed().as_nanos();
        // std's HashMap seeds come from wasi:random: a fixed source gives the same hash each call.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(42);
        let hash = hasher.finish();
        let report = format!("wall={wall} elapsed={elapsed} hash={hash} spin={}", spin % 2);
        Ok(FilterResult { reasons: vec![report], verdicts: vec![1; clusters.count as usize], requeue_after_ms: None })
    }
}

export!(Plugin);
