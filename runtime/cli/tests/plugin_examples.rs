//! The SDK examples and templates in every language, built from source and run through the
//! plugin host as processes:
//!
//! - every example of `plugins/examples/`, in each language it has (`rust/`, `python/`,
//!   `js/`, `c/`): `flotilla plugin build`, then `flotilla plugin test --fixtures
//!   ../fixtures`, the fixtures all languages share;
//! - `flotilla plugin new` for every language with a template directory other than Rust
//!   (`plugin_dev.rs` covers Rust) and every world: the project builds and passes its own
//!   fixtures.
//!
//! A missing toolchain fails the test with the message `plugin build` gives: which tool, and
//! the command that installs it (`scripts/test.sh` installs them all).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::text;

const LANGUAGES: &[&str] = &["rust", "python", "js", "c"];
const WORLDS: &[&str] =
    &["placement-filter", "placement-scorer", "policy-check", "rollout-strategy", "manifest-transform"];

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

fn flotilla_in(dir: &Path, args: &[&str]) -> Output {
    common::flotilla_in(dir, "plugin-examples-cache", args)
}

fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed:\nstdout:\n{}\nstderr:\n{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn fixture_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count()
}

/// Builds and tests every language's version of `example` on the shared fixtures.
fn example_in_every_language(example: &str) {
    let root = plugins_dir().join("examples").join(example);
    let fixtures = root.join("fixtures");
    let count = fixture_count(&fixtures);
    assert!(count > 0, "{example} has fixtures");
    assert!(root.join("rust").is_dir(), "every example has a Rust version");
    for lang in LANGUAGES {
        let project = root.join(lang);
        if !project.is_dir() {
            eprintln!("{example}: no {lang} version yet");
            continue;
        }
        let built = ok(&flotilla_in(&project, &["plugin", "build"]), &format!("{example}/{lang}: plugin build"));
        let wasm = PathBuf::from(built.trim());
        assert!(wasm.is_file(), "{example}/{lang}: {} exists", wasm.display());

        let out = flotilla_in(&project, &["plugin", "test", "--fixtures", "../fixtures"]);
        let report = ok(&out, &format!("{example}/{lang}: plugin test --fixtures ../fixtures"));
        assert!(report.trim_end().ends_with(&format!("{count} passed, 0 failed")), "{example}/{lang}: {report}");

        let out = flotilla_in(&project, &["plugin", "inspect", "-o", "json", built.trim()]);
        let info: serde_json::Value = serde_json::from_str(&ok(&out, "plugin inspect")).expect("json");
        assert_eq!(info["describe"]["name"], example, "{example}/{lang}: describe().name");
    }
}

#[test]
fn region_capacity_filter_in_every_language() {
    example_in_every_language("region-capacity-filter");
}

#[test]
fn least_loaded_scorer_in_every_language() {
    example_in_every_language("least-loaded-scorer");
}

#[test]
fn allowed_registries_in_every_language() {
    example_in_every_language("allowed-registries");
}

#[test]
fn canary_waves_in_every_language() {
    example_in_every_language("canary-waves");
}

#[test]
fn claims_transform_in_every_language() {
    example_in_every_language("claims-transform");
}

#[test]
fn every_example_is_in_this_test() {
    let mut found: Vec<String> = std::fs::read_dir(plugins_dir().join("examples"))
        .expect("plugins/examples")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(
        found,
        ["allowed-registries", "canary-waves", "claims-transform", "least-loaded-scorer", "region-capacity-filter"]
    );
}

/// `plugin new` for every world of `lang`, when it has templates: each project builds and
/// passes its own fixtures.
fn new_projects_in(lang: &str) {
    if !plugins_dir().join("templates").join(lang).is_dir() {
        eprintln!("no {lang} templates yet");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    for world in WORLDS {
        let name = format!("new-{lang}-{world}");
        ok(
            &flotilla_in(tmp.path(), &["plugin", "new", &name, "--lang", lang, "--world", world]),
            &format!("plugin new --lang {lang} --world {world}"),
        );
        let project = tmp.path().join(&name);
        assert!(project.join("flotilla-plugin.json").is_file(), "{lang}/{world}: flotilla-plugin.json");
        assert!(project.join(format!("wit/{world}.wit")).is_file(), "{lang}/{world}: wit");
        let built = ok(&flotilla_in(&project, &["plugin", "build"]), &format!("{lang}/{world}: plugin build"));
        assert!(Path::new(built.trim()).is_file(), "{lang}/{world}: {built}");
        let report = ok(&flotilla_in(&project, &["plugin", "test"]), &format!("{lang}/{world}: plugin test"));
        assert!(report.contains(&format!("({world})")), "{report}");
        assert!(report.trim_end().ends_with(" passed, 0 failed"), "{lang}/{world}: {report}");
    }
}

#[test]
fn new_python_projects_build_and_pass_their_fixtures() {
    new_projects_in("python");
}

#[test]
fn new_js_projects_build_and_pass_their_fixtures() {
    new_projects_in("js");
}

#[test]
fn new_c_projects_build_and_pass_their_fixtures() {
    new_projects_in("c");
}
