//! Hostile test plugin: recurses without bound until the wasm stack overflows.

include!("../../filter_common.rs");

/// Not a tail call (the result is rotated after the call returns), so the compiler cannot turn
/// it into a loop, and only scalars: the frames live on the wasm stack, not in linear memory.
#[inline(never)]
fn recurse(x: u64, depth: u64) -> u64 {
    if depth == 0 { x } else { recurse(x.wrapping_mul(31).wrapping_add(depth), depth - 1).rotate_left(3) ^ x }
}

impl Guest for Plugin {
    fn describe() -> Description {
        description("deep-recursion", "Recurses without bound.")
    }

    fn validate_config(_config: String) -> Result<Reads, String> {
        Ok(reads())
    }

    fn filter(_config: String, _owner: OwnerRef, clusters: ClusterBatch) -> Result<FilterResult, String> {
        let n = recurse(clusters.count as usize as u64, u64::MAX - clusters.count as usize as u64);
        Err(format!("unreachable in practice: {n}"))
    }
}

export!(Plugin);
