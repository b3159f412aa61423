//! The plugin author's loop as processes: `flotilla plugin new` for every world, `build`,
//! `test` inside the project; `inspect`, `run`, `test` and `bench` on the built-in and
//! hostile plugins of `plugins/`. No timing is asserted.
//!
//! The generated projects build in one shared target directory beside this test's
//! (`<target>/wasm-templates`), so wit-bindgen and serde compile once, not once per world.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{target_tmp, text};

use serde_json::{Value, json};

/// The plugins of `plugins/`, built by `plugins/build.sh` once per test process.
fn artifacts() -> &'static Path {
    flotilla_plugin_host::source_tree_plugins().unwrap_or_else(|e| panic!("{e}"))
}

fn component(name: &str) -> PathBuf {
    artifacts().join(format!("{}.wasm", name.replace('-', "_")))
}

fn flotilla_in(dir: &Path, args: &[&str]) -> Output {
    common::flotilla_in(dir, "plugin-dev-cache", args)
}

fn flotilla(args: &[&str]) -> Output {
    flotilla_in(target_tmp(), args)
}

fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed:\nstdout:\n{}\nstderr:\n{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).expect("json")).expect("write fixture");
    path
}

/// `plugin new` → `plugin build` → `plugin test` with no arguments inside the project.
fn new_project_builds_and_passes_its_fixtures(world: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let name = format!("dev-{world}");
    let out = flotilla_in(tmp.path(), &["plugin", "new", &name, "--lang", "rust", "--world", world]);
    ok(&out, "plugin new");
    let project = tmp.path().join(&name);
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "README.md",
        "config.schema.json",
        "flotilla-plugin.json",
        ".gitignore",
        "flotilla-plugin-sdk/Cargo.toml",
        "flotilla-plugin-sdk/src/lib.rs",
    ] {
        assert!(project.join(file).is_file(), "{file} was written");
    }
    assert!(project.join(format!("wit/{world}.wit")).is_file());
    assert!(project.join("wit/deps/types/types.wit").is_file());

    let built = ok(&flotilla_in(&project, &["plugin", "build"]), "plugin build");
    let wasm = PathBuf::from(built.trim());
    assert_eq!(wasm.file_name().and_then(|n| n.to_str()), Some(format!("{}.wasm", name.replace('-', "_")).as_str()));
    assert!(wasm.is_file(), "{} exists", wasm.display());

    let out = flotilla_in(&project, &["plugin", "test"]);
    let report = ok(&out, "plugin test");
    assert!(report.contains(&format!("({world})")), "{report}");
    assert!(report.lines().any(|l| l.starts_with("PASS ")), "{report}");
    assert!(!report.contains("FAIL"), "{report}");
    assert!(report.trim_end().ends_with(" passed, 0 failed"), "{report}");

    // The component is what its world says, with the project's own describe().
    let out = flotilla(&["plugin", "inspect", "-o", "json", built.trim()]);
    let info: Value = serde_json::from_str(&ok(&out, "plugin inspect")).expect("json");
    assert_eq!(info["world"], world);
    assert_eq!(info["worldVersion"], "0.1.0");
    assert_eq!(info["describe"]["name"], name.as_str());
    assert!(info["describe"]["configSchema"].is_string(), "{info}");
}

#[test]
fn a_new_placement_filter_builds_and_passes_its_fixtures() {
    new_project_builds_and_passes_its_fixtures("placement-filter");
}

#[test]
fn a_new_placement_scorer_builds_and_passes_its_fixtures() {
    new_project_builds_and_passes_its_fixtures("placement-scorer");
}

#[test]
fn a_new_policy_check_builds_and_passes_its_fixtures() {
    new_project_builds_and_passes_its_fixtures("policy-check");
}

#[test]
fn a_new_rollout_strategy_builds_and_passes_its_fixtures() {
    new_project_builds_and_passes_its_fixtures("rollout-strategy");
}

#[test]
fn a_new_manifest_transform_builds_and_passes_its_fixtures() {
    new_project_builds_and_passes_its_fixtures("manifest-transform");
}

#[test]
fn plugin_new_refuses_what_it_cannot_create() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = flotilla_in(tmp.path(), args);
        assert!(!out.status.success(), "{args:?} succeeded");
        text(&out.stderr)
    };
    let e = run(&["plugin", "new", "My_Plugin", "--world", "placement-filter"]);
    assert!(e.contains("invalid plugin name \"My_Plugin\""), "{e}");
    let e = run(&["plugin", "new", "p", "--world", "placement"]);
    assert!(e.contains("unknown world \"placement\""), "{e}");
    let e = run(&["plugin", "new", "p", "--lang", "cobol", "--world", "placement-filter"]);
    assert!(e.contains("no template for language \"cobol\": templates exist for ") && e.contains("rust"), "{e}");
    std::fs::create_dir(tmp.path().join("taken")).expect("dir");
    std::fs::write(tmp.path().join("taken/file"), "x").expect("file");
    let e = run(&["plugin", "new", "taken", "--world", "placement-filter"]);
    assert!(e.contains("taken already exists"), "{e}");
    let e = run(&["plugin", "build", "--dir", "taken"]);
    assert!(e.contains("is not a plugin project: it has no flotilla-plugin.json"), "{e}");

    // A tool the manifest needs that is not installed: its name and the command that
    // installs it, before anything runs.
    let dir = tmp.path().join("needs-tool");
    std::fs::create_dir(&dir).expect("dir");
    let manifest = json!({
        "name": "needs-tool", "world": "placement-filter", "language": "c", "component": "p.wasm",
        "build": [["touch", "ran"]],
        "tools": [{"command": "flotilla-no-such-tool", "install": "apt-get install -y flotilla-no-such-tool"}]
    });
    write_json(&dir, "flotilla-plugin.json", &manifest);
    let e = run(&["plugin", "build", "--dir", "needs-tool"]);
    assert_eq!(
        e.trim(),
        "error: flotilla-no-such-tool is missing: install it with `apt-get install -y flotilla-no-such-tool`"
    );
    assert!(!dir.join("ran").exists(), "no build command ran");

    // A failing build command: the command and its exit status.
    let manifest = json!({
        "name": "fails", "world": "placement-filter", "language": "c", "component": "p.wasm",
        "build": [["sh", "-c", "echo building >&2; exit 3"]], "tools": [{"command": "sh", "install": "apt-get install -y dash"}]
    });
    write_json(&dir, "flotilla-plugin.json", &manifest);
    let e = run(&["plugin", "build", "--dir", "needs-tool"]);
    assert!(e.contains("building\n"), "the build's stderr streams through: {e}");
    assert!(e.contains("`sh -c echo building >&2; exit 3` failed in needs-tool with exit status 3"), "{e}");

    // A build that writes no component says where it looked.
    let manifest = json!({
        "name": "nothing", "world": "placement-filter", "language": "c", "component": "out/p.wasm",
        "build": [["true"]]
    });
    write_json(&dir, "flotilla-plugin.json", &manifest);
    let e = run(&["plugin", "build", "--dir", "needs-tool"]);
    assert!(e.contains("the build of nothing wrote no needs-tool/out/p.wasm"), "{e}");
}

#[test]
fn inspect_shows_the_world_imports_exports_and_describe() {
    let label_filter = component("label-filter");
    let out = ok(&flotilla(&["plugin", "inspect", label_filter.to_str().expect("path")]), "inspect");
    assert!(out.contains("world:    placement-filter 0.1.0\n"), "{out}");
    assert!(out.contains("exports:\n  flotilla:placement-filter/filter@0.1.0\n"), "{out}");
    assert!(out.contains("imports:\n"), "{out}");
    assert!(out.contains("describe():\n  name:      label-filter\n  version:   0.1.0\n"), "{out}");
    assert!(out.contains("config schema:\n    {"), "{out}");

    let required = component("required-labels");
    let out = ok(&flotilla(&["plugin", "inspect", "-o", "json", required.to_str().expect("path")]), "inspect json");
    let info: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(info["world"], "policy-check");
    assert_eq!(info["exports"], json!(["flotilla:policy-check/check@0.1.0"]));
    assert!(
        info["imports"].as_array().expect("imports").contains(&json!("flotilla:policy-check/spoke@0.1.0")),
        "{info}"
    );
    assert_eq!(info["describe"]["name"], "required-labels");

    // A component the host refuses is still shown, and the refusal is the exit status.
    let forbidden = component("hostile-forbidden-import");
    let out = flotilla(&["plugin", "inspect", forbidden.to_str().expect("path")]);
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("wasi:sockets/tcp@0.2.6"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("does not validate: forbidden import"), "{}", text(&out.stderr));
}

fn label_filter_fixture(expect: Value) -> Value {
    json!({
        "world": "placement-filter",
        "config": {"labels": [{"key": "region", "operator": "In", "values": ["eu"]}]},
        "input": {"clusters": [
            {"name": "a", "labels": {"region": "eu"}},
            {"name": "b", "labels": {"region": "us"}},
            {"name": "c"}
        ]},
        "expect": expect
    })
}

#[test]
fn run_prints_the_result_as_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fixture = write_json(tmp.path(), "f.json", &label_filter_fixture(json!({})));
    let wasm = component("label-filter");
    let out = flotilla(&["plugin", "run", "--input", fixture.to_str().expect("path"), wasm.to_str().expect("path")]);
    let result: Value = serde_json::from_str(&ok(&out, "plugin run")).expect("json");
    assert_eq!(
        result,
        json!({"kept": ["a"], "removed": {"b": "label region not in [eu]", "c": "label region not in [eu]"}})
    );

    // --config and --world on the command line; the world must match the fixture's.
    let out = flotilla(&[
        "plugin",
        "run",
        "--world",
        "placement-filter",
        "--config",
        r#"{"labels": [{"key": "region", "operator": "Exists"}]}"#,
        "--input",
        fixture.to_str().expect("path"),
        wasm.to_str().expect("path"),
    ]);
    let result: Value = serde_json::from_str(&ok(&out, "plugin run --config")).expect("json");
    assert_eq!(result, json!({"kept": ["a", "b"], "removed": {"c": "label region missing"}}));
    let out = flotilla(&[
        "plugin",
        "run",
        "--world",
        "placement-scorer",
        "--input",
        fixture.to_str().expect("path"),
        wasm.to_str().expect("path"),
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is for a placement-filter"), "{}", text(&out.stderr));

    // A configuration the plugin rejects is an error with its message.
    let out = flotilla(&[
        "plugin",
        "run",
        "--config",
        r#"{"labels": [{"key": "region", "operator": "In"}]}"#,
        "--input",
        fixture.to_str().expect("path"),
        wasm.to_str().expect("path"),
    ]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        "error: configuration rejected by the plugin: requirement on region: operator In and NotIn need values \
         (PluginConfigRejected)"
    );
}

#[test]
fn an_endless_loop_fails_run_at_its_deadline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fixture = write_json(tmp.path(), "loop.json", &json!({"input": {"clusters": [{"name": "a"}]}}));
    let wasm = component("hostile-endless-loop");
    let out = flotilla(&[
        "plugin",
        "run",
        "--timeout-ms",
        "200",
        "--input",
        fixture.to_str().expect("path"),
        wasm.to_str().expect("path"),
    ]);
    assert!(!out.status.success());
    assert_eq!(text(&out.stdout), "", "no result");
    assert_eq!(
        text(&out.stderr).trim(),
        "error: the plugin did not finish within its deadline of 200 ms (PluginTimeout)"
    );
}

#[test]
fn test_reports_each_fixture_and_fails_on_a_wrong_expectation() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let right = label_filter_fixture(
        json!({"kept": ["a"], "removed": {"b": "label region not in [eu]", "c": "label region not in [eu]"}}),
    );
    let wrong = label_filter_fixture(json!({"kept": ["a", "b"], "removed": {"c": "label region not in [eu]"}}));
    let mut rejected = label_filter_fixture(json!({"error": "operator In and NotIn need values"}));
    rejected["config"] = json!({"labels": [{"key": "region", "operator": "In"}]});
    let dir = tmp.path().join("fixtures");
    std::fs::create_dir(&dir).expect("dir");
    write_json(&dir, "1-right.json", &right);
    write_json(&dir, "2-rejected.json", &rejected);
    let wasm = component("label-filter");
    let out = flotilla(&["plugin", "test", wasm.to_str().expect("path"), dir.to_str().expect("path")]);
    let report = ok(&out, "plugin test");
    assert!(report.contains("PASS ") && report.contains("1-right.json"), "{report}");
    assert!(report.trim_end().ends_with("2 passed, 0 failed"), "{report}");

    let wrong = write_json(tmp.path(), "wrong.json", &wrong);
    let out = flotilla(&[
        "plugin",
        "test",
        wasm.to_str().expect("path"),
        wrong.to_str().expect("path"),
        dir.to_str().expect("path"),
    ]);
    assert!(!out.status.success(), "a wrong expectation fails");
    let report = text(&out.stdout);
    let fail = format!("FAIL {}\n", wrong.display());
    assert!(report.contains(&fail), "{report}");
    assert!(report.contains("    the result differs from \"expect\":\n"), "{report}");
    assert!(report.contains("      $.kept[1]: expected \"b\", missing\n"), "{report}");
    assert!(report.contains("      $.removed.b: not expected, got \"label region not in [eu]\"\n"), "{report}");
    assert!(report.trim_end().ends_with("2 passed, 1 failed"), "{report}");

    // A fixture for another world fails by itself; the others still run.
    let other = write_json(tmp.path(), "scorer.json", &json!({"world": "placement-scorer", "input": {"clusters": []}}));
    let out = flotilla(&["plugin", "test", wasm.to_str().expect("path"), other.to_str().expect("path")]);
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("the fixture is for a placement-scorer, the component is a placement-filter"));
}

#[test]
fn bench_reports_load_instantiation_and_latency() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fixture = write_json(tmp.path(), "f.json", &label_filter_fixture(json!({})));
    let wasm = component("label-filter");
    let out = flotilla(&[
        "plugin",
        "bench",
        "--iterations",
        "20",
        "--warmup",
        "3",
        "-o",
        "json",
        "--input",
        fixture.to_str().expect("path"),
        wasm.to_str().expect("path"),
    ]);
    let report: Value = serde_json::from_str(&ok(&out, "plugin bench")).expect("json");
    for key in ["firstLoadMicros", "cachedLoadMicros", "instantiationMicros"] {
        assert!(report[key].is_number(), "{key}: {report}");
    }
    assert_eq!(report["warmup"]["calls"], 3);
    assert_eq!(report["calls"]["samples"], 20);
    for key in ["p50Micros", "p90Micros", "p99Micros", "maxMicros"] {
        assert!(report["calls"][key].is_number(), "{key}: {report}");
    }
    let out = flotilla(&[
        "plugin",
        "bench",
        "--iterations",
        "5",
        "--warmup",
        "1",
        "--input",
        fixture.to_str().expect("path"),
        wasm.to_str().expect("path"),
    ]);
    let report = ok(&out, "plugin bench");
    for row in ["first load", "cached load", "instantiation", "warm-up: 1 calls", "p50", "p90", "p99", "max"] {
        assert!(report.contains(row), "{row}: {report}");
    }
}

#[test]
fn a_manifest_project_builds_with_its_commands_and_tests_its_fixtures() {
    // Any toolchain: here the build copies a component the repository built.
    let tmp = tempfile::tempdir().expect("tempdir");
    let project = tmp.path().join("copied");
    std::fs::create_dir_all(project.join("cases")).expect("dirs");
    let wasm = component("label-filter");
    let manifest = json!({
        "name": "copied", "world": "placement-filter", "language": "c", "component": "out/copied.wasm",
        "build": [["mkdir", "-p", "out"], ["cp", wasm.to_str().expect("path"), "out/copied.wasm"]],
        "tools": [{"command": "cp", "install": "apt-get install -y coreutils"}],
        "fixtures": "cases"
    });
    write_json(&project, "flotilla-plugin.json", &manifest);
    let right = label_filter_fixture(
        json!({"kept": ["a"], "removed": {"b": "label region not in [eu]", "c": "label region not in [eu]"}}),
    );
    write_json(&project.join("cases"), "right.json", &right);

    let built = ok(&flotilla_in(&project, &["plugin", "build"]), "plugin build");
    assert_eq!(PathBuf::from(built.trim()), project.join("out/copied.wasm").canonicalize().expect("built"));
    let report = ok(&flotilla_in(&project, &["plugin", "test"]), "plugin test");
    assert!(report.contains("right.json") && report.trim_end().ends_with("1 passed, 0 failed"), "{report}");

    // --fixtures points elsewhere: examples in several languages share one directory.
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).expect("dir");
    write_json(&shared, "one.json", &right);
    write_json(&shared, "two.json", &right);
    let report = ok(&flotilla_in(&project, &["plugin", "test", "--fixtures", "../shared"]), "plugin test --fixtures");
    assert!(report.trim_end().ends_with("2 passed, 0 failed"), "{report}");
    let out = flotilla_in(&project, &["plugin", "test", "--fixtures", "../missing"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no fixtures at ../missing"), "{}", text(&out.stderr));
}
