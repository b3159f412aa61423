//! Hostile test plugin: a placement filter that opens a TCP connection, so the component
//! imports `wasi:sockets`, which no Flotilla world grants. The host refuses it on load.

include!("../../filter_common.rs");

impl Guest for Plugin {
    fn describe() -> Description {
        description("forbidden-import", "Imports wasi:sockets.")
    }

    fn validate_config(_config: String) -> Result<Reads, String> {
        Ok(reads())
    }

    fn filter(config: String, _owner: OwnerRef, clusters: ClusterBatch) -> Result<FilterResult, String> {
        // Reachable (the configuration decides), so the sockets import stays in the component.
        if let Some(addr) = config.strip_prefix("dial ") {
            let stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
            drop(stream);
        }
        Ok(FilterResult { reasons: vec![], verdicts: vec![0; clusters.count as usize], requeue_after_ms: None })
    }
}

export!(Plugin);
