//! Rust bindings generated from `wit/` for every world at once.
//!
//! One `bindgen!` over a host-only world that imports what any plugin may import and exports
//! every extension point's interface, so the shared types (`flotilla:types`) are generated
//! once. The host never instantiates this combined world: it uses each export's
//! `GuestIndices` on its own, so a component exports only its own world's interface.

wasmtime::component::bindgen!({
    inline: "
        package flotilla:host;

        world host {
            import flotilla:types/log@0.1.0;
            import flotilla:policy-check/spoke@0.1.0;

            export flotilla:placement-filter/filter@0.1.0;
            export flotilla:placement-scorer/scorer@0.1.0;
            export flotilla:policy-check/check@0.1.0;
            export flotilla:rollout-strategy/strategy@0.1.0;
            export flotilla:manifest-transform/transform@0.1.0;
        }
    ",
    // Files, not directories: each world's `deps/` links back to `wit/types`, which must be
    // parsed only once.
    path: [
        "../../wit/types/types.wit",
        "../../wit/placement-filter/placement-filter.wit",
        "../../wit/placement-scorer/placement-scorer.wit",
        "../../wit/policy-check/policy-check.wit",
        "../../wit/rollout-strategy/rollout-strategy.wit",
        "../../wit/manifest-transform/manifest-transform.wit",
    ],
    world: "flotilla:host/host",
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
});
