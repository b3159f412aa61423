//! Hostile plugins: each gives its own error, the process and its other plugins carry on,
//! and the next call of a good plugin works.

mod common;

use std::sync::Arc;

use common::*;
use flotilla_plugin_host::*;

fn run_hostile(host: &PluginHost, name: &str, limits: &Limits) -> PluginError {
    let p = prepared(host, name, World::PlacementFilter, "{}");
    let fleet: Vec<ClusterInfo> = (0..4).map(|i| cluster(&format!("c{i}"), &[], &[])).collect();
    let fleet = p.batch(&fleet);
    let err = host.placement_filter(&p, &owner(), &fleet, limits).expect_err("a hostile plugin fails");
    // The process is fine and a good plugin still works, in the same host.
    good_filter_works(host);
    err
}

#[test]
fn an_endless_loop_is_stopped_at_its_deadline() {
    let host = host();
    let err = run_hostile(&host, "hostile-endless-loop", &tight());
    assert_eq!(err, PluginError::Timeout { timeout_ms: 200 });
    assert_eq!(err.to_string(), "the plugin did not finish within its deadline of 200 ms");
    assert_eq!(err.reason(), "PluginTimeout");
    let m = load(&host, "hostile-endless-loop", World::PlacementFilter).metrics();
    assert_eq!(m.timeouts, 1);
    assert!(m.calls >= 3, "describe, validate-config and the timed-out call: {m:?}");
}

#[test]
fn a_memory_bomb_is_stopped_at_its_limit() {
    let host = host();
    let err = run_hostile(&host, "hostile-memory-bomb", &tight());
    match &err {
        PluginError::MemoryLimit { what: "memory", limit, requested: Some(r) } => {
            assert_eq!(*limit, 32 << 20);
            assert!(*r > 32 << 20);
        }
        other => panic!("expected a memory limit, got {other:?}"),
    }
    assert!(err.to_string().starts_with("the plugin exceeded its memory limit of 33554432 (asked for "), "{err}");
    assert_eq!(err.reason(), "PluginMemoryLimit");
}

#[test]
fn deep_recursion_exhausts_the_stack() {
    let host = host();
    let err = run_hostile(&host, "hostile-deep-recursion", &tight());
    assert_eq!(err, PluginError::StackOverflow { max_wasm_stack: 1 << 20 });
    assert_eq!(err.to_string(), "the plugin exhausted its stack of 1048576 bytes (unbounded recursion?)");
}

#[test]
fn a_panic_traps_with_its_message() {
    let host = host();
    let err = run_hostile(&host, "hostile-trap", &tight());
    match &err {
        PluginError::Trap { message, detail: Some(detail) } => {
            assert_eq!(message, "wasm `unreachable` instruction executed");
            assert!(detail.contains("hostile plugin gives up on 4 cluster(s)"), "the panic message is kept: {detail}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(err.reason(), "PluginTrapped");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "the plugin trapped: wasm `unreachable` instruction executed (panicked at hostile/trap/src/lib.rs:"
        ),
        "{text}"
    );
    assert!(text.ends_with(": hostile plugin gives up on 4 cluster(s))"), "{text}");
    let m = load(&host, "hostile-trap", World::PlacementFilter).metrics();
    assert_eq!(m.traps, 1);
}

#[test]
fn a_huge_result_is_refused() {
    let host = host();
    let err = run_hostile(&host, "hostile-huge-output", &tight());
    match err {
        PluginError::OutputTooLarge { size, limit } => {
            assert_eq!(limit, 1 << 20);
            assert!(size > 4 << 20, "{size}");
        }
        other => panic!("expected an output limit, got {other:?}"),
    }
    // Within a limit that allows it, the same plugin's result is accepted.
    let p = prepared(&host, "hostile-huge-output", World::PlacementFilter, "{}");
    let fleet = p.batch(&[cluster("c", &[], &[])]);
    let roomy = Limits { max_output_bytes: 8 << 20, ..Limits::DEFAULT };
    assert!(host.placement_filter(&p, &owner(), &fleet, &roomy).is_ok());
}

#[test]
fn a_configuration_the_plugin_rejects_gives_its_own_message() {
    let host = host();
    let plugin = load(&host, "label-filter", World::PlacementFilter);
    let err = host.prepare(&plugin, r#"{"labels": [{"key": "region", "operator": "In"}]}"#).expect_err("rejected");
    assert_eq!(err, PluginError::ConfigRejected("requirement on region: operator In and NotIn need values".into()));
    assert_eq!(err.reason(), "PluginConfigRejected");
    let err = host.prepare(&plugin, r#"{"selector": {}}"#).expect_err("rejected");
    assert!(
        err.to_string()
            .starts_with("configuration rejected by the plugin: invalid configuration: unknown field `selector`"),
        "{err}"
    );
    assert!(!err.is_runtime(), "a bad configuration is not a run-time failure");
    good_filter_works(&host);
}

#[test]
fn hostile_calls_do_not_disturb_concurrent_good_ones() {
    let host = Arc::new(host());
    let hostile = ["hostile-endless-loop", "hostile-memory-bomb", "hostile-deep-recursion", "hostile-trap"];
    let mut threads = Vec::new();
    for name in hostile {
        let host = host.clone();
        threads.push(std::thread::spawn(move || {
            let p = prepared(&host, name, World::PlacementFilter, "{}");
            let fleet = p.batch(&[cluster("c", &[], &[])]);
            host.placement_filter(&p, &owner(), &fleet, &tight()).expect_err("hostile")
        }));
    }
    for _ in 0..20 {
        good_filter_works(&host);
    }
    let errors: Vec<&str> = threads.into_iter().map(|t| t.join().expect("no panic").reason()).collect();
    assert_eq!(errors, ["PluginTimeout", "PluginMemoryLimit", "PluginStackOverflow", "PluginTrapped"]);
}
