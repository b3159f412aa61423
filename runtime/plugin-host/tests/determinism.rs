//! Deterministic worlds see no clock and no randomness; logging is bounded.

mod common;

use common::*;
use flotilla_plugin_host::*;

fn probe(host: &PluginHost, config: &str, limits: &Limits) -> String {
    let p = prepared(host, "hostile-entropy-probe", World::PlacementFilter, config);
    let r = host.placement_filter(&p, &owner(), &p.batch(&[cluster("c", &[], &[])]), limits).expect("probe");
    r.reason(0).expect("report").to_string()
}

#[test]
fn placement_plugins_see_no_clock_and_no_randomness() {
    let host = host();
    let first = probe(&host, "0", &Limits::DEFAULT);
    assert!(first.starts_with("wall=0 elapsed=0 hash="), "{first}");
    // std's hash seeds come from wasi:random, so equal hashes mean the same random source.
    assert_eq!(probe(&host, "0", &Limits::DEFAULT), first);
    assert_eq!(probe(&host_in(tempfile::tempdir().expect("dir").path()), "0", &Limits::DEFAULT), first);
}

#[test]
fn log_lines_beyond_the_budget_are_dropped_and_counted() {
    let host = host();
    let limits = Limits { log_lines: 10, ..Limits::DEFAULT };
    probe(&host, "25", &limits);
    let m = load(&host, "hostile-entropy-probe", World::PlacementFilter).metrics();
    assert_eq!(m.logs_dropped, 15);
    let text = host.render_prometheus();
    assert!(
        text.contains(
            "flotilla_plugin_log_lines_dropped_total{plugin=\"hostile-entropy-probe\",world=\"placement-filter\""
        ),
        "{text}"
    );
}
