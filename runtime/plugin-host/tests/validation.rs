//! Validation on load (a push): the exact message for each way a component can be wrong.

mod common;

use common::*;
use flotilla_plugin_host::*;

#[test]
fn the_wrong_world_is_refused() {
    let host = host();
    let err = host.load("ww", World::PlacementFilter, &wasm("hostile-wrong-world")).expect_err("wrong world");
    assert_eq!(
        err.to_string(),
        "wrong world: declared placement-filter, but the component exports flotilla:rollout-strategy/strategy@0.1.0 \
         (the rollout-strategy world)"
    );
    assert_eq!(err.reason(), "PluginWrongWorld");
    // The same component loads as what it is.
    let p = host.load("ww", World::RolloutStrategy, &wasm("hostile-wrong-world")).expect("a rollout strategy");
    assert_eq!(p.info().world, World::RolloutStrategy);
    // A plugin cannot be called through another world's API.
    let scorer = load(&host, "capacity-scorer", World::PlacementScorer);
    let prepared = host.prepare(&scorer, "{}").expect("config");
    let err = host.placement_filter(&prepared, &owner(), &prepared.batch(&[]), &Limits::DEFAULT).expect_err("mismatch");
    assert_eq!(err.to_string(), "plugin capacity-scorer implements placement-scorer, not placement-filter");
}

#[test]
fn imports_outside_the_grant_are_refused() {
    let host = host();
    let err = host.load("fi", World::PlacementFilter, &wasm("hostile-forbidden-import")).expect_err("forbidden");
    let PluginError::ForbiddenImport { world, imports, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*world, World::PlacementFilter);
    assert!(imports.iter().all(|i| i.starts_with("wasi:sockets/")), "{imports:?}");
    assert!(imports.contains(&"wasi:sockets/tcp@0.2.6".to_string()), "{imports:?}");
    assert!(
        err.to_string().starts_with(
            "forbidden import: the component imports wasi:sockets/network@0.2.6, wasi:sockets/instance-network@0.2.6"
        ),
        "{err}"
    );
    assert!(err.to_string().contains("which the placement-filter world does not grant"), "{err}");
    assert_eq!(err.reason(), "PluginForbiddenImport");
    // The policy world grants the spoke reads, the filter world does not.
    let err = host.load("rl", World::PlacementFilter, &wasm("required-labels")).expect_err("wrong world first");
    assert_eq!(err.reason(), "PluginWrongWorld");
}

#[test]
fn corrupt_binaries_are_refused() {
    let host = host();
    let err = host.load("x", World::PlacementFilter, b"#!/bin/sh\necho not wasm\n").expect_err("corrupt");
    assert_eq!(
        err.to_string(),
        "not a valid WebAssembly component: the file does not start with the WebAssembly magic number \\0asm"
    );
    let core_module = b"\0asm\x01\0\0\0";
    let err = host.load("x", World::PlacementFilter, core_module).expect_err("core module");
    assert_eq!(
        err.to_string(),
        "not a valid WebAssembly component: this is a core WebAssembly module, not a component: build for \
         wasm32-wasip2, or wrap the module with `wasm-tools component new`"
    );
    let good = wasm("label-filter");
    let truncated = &good[..good.len() / 2];
    let err = host.load("x", World::PlacementFilter, truncated).expect_err("truncated");
    assert_eq!(err.reason(), "PluginCorrupt");
    assert!(err.to_string().starts_with("not a valid WebAssembly component: "), "{err}");
    let mut scrambled = good.clone();
    for b in scrambled.iter_mut().skip(64).step_by(7) {
        *b ^= 0x5a;
    }
    let err = host.load("x", World::PlacementFilter, &scrambled).expect_err("scrambled");
    assert_eq!(err.reason(), "PluginCorrupt");
    assert_eq!(host.cache_stats().compiled, 0, "nothing corrupt reached the cache");
    good_filter_works(&host);
}

#[test]
fn a_loaded_plugin_reports_what_it_is() {
    let host = host();
    let p = load(&host, "label-filter", World::PlacementFilter);
    let info = p.info();
    assert_eq!(info.world, World::PlacementFilter);
    assert_eq!(info.world_version, "0.1.0");
    assert_eq!(info.exports, ["flotilla:placement-filter/filter@0.1.0"]);
    assert!(info.digest.starts_with("sha256:") && info.digest.len() == 71, "{}", info.digest);
    assert!(
        info.imports.iter().all(|i| i.starts_with("wasi:") || i.starts_with("flotilla:types/")),
        "{:?}",
        info.imports
    );
    assert_eq!(info.describe.name, "label-filter");
    let json = serde_json::to_value(info).expect("json");
    assert_eq!(json["world"], "placement-filter");
    assert_eq!(json["describe"]["name"], "label-filter");
    assert!(json["describe"]["configSchema"].is_string(), "camelCase for the object's status: {json}");
}

#[test]
fn the_world_is_detected_from_the_component() {
    let host = host();
    assert_eq!(host.detect_world(&wasm("label-filter")), Ok(World::PlacementFilter));
    assert_eq!(host.detect_world(&wasm("hostile-wrong-world")), Ok(World::RolloutStrategy));
    assert_eq!(host.detect_world(&wasm("required-labels")), Ok(World::PolicyCheck));
    let err = host.detect_world(b"not wasm").expect_err("corrupt");
    assert_eq!(err.reason(), "PluginCorrupt");
    // Detection then the full validation of that world.
    let p = host.load_detected("cs", &wasm("capacity-scorer")).expect("a scorer");
    assert_eq!(p.world(), World::PlacementScorer);
    assert_eq!(p.info().digest, digest_of(&wasm("capacity-scorer")));
    let err = host.load_detected("fi", &wasm("hostile-forbidden-import")).expect_err("forbidden import");
    assert_eq!(err.reason(), "PluginForbiddenImport");
}
