//! `flotilla plugin new NAME --lang rust --world WORLD [--dir DIR]`: a plugin project from
//! the templates under `plugins/templates/`, embedded in the binary.
//!
//! The project is self-contained: the world's WIT and the shared types are copied into its
//! `wit/`, and its `Cargo.lock` pins the versions of `plugins/Cargo.lock` (the same
//! wit-bindgen as the built-in plugins), so it builds as created, offline when those crates
//! are in cargo's cache.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use flotilla_plugin_host::{WIT_SOURCES, World};

use super::common::{out, parse_world};

#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and '-', starting with a letter (also the
    /// crate's name and the default WasmPlugin name).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The language of the template (rust; python, javascript and c come with the SDKs).
    #[arg(long, default_value = "rust", value_name = "LANG")]
    pub lang: String,
    /// The extension point: placement-filter, placement-scorer, policy-check,
    /// rollout-strategy or manifest-transform.
    #[arg(long, value_parser = parse_world, value_name = "WORLD")]
    pub world: World,
    /// Where to create the project [default: ./NAME]; must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The languages with templates now.
const LANGUAGES: &[&str] = &["rust"];

/// Languages whose templates come with their SDKs.
const LATER: &[&str] = &["python", "py", "javascript", "js", "typescript", "ts", "c"];

const CARGO_TOML: &str = include_str!("../../../../plugins/templates/rust/Cargo.toml.tmpl");
const README: &str = include_str!("../../../../plugins/templates/rust/README.md");
const GITIGNORE: &str = include_str!("../../../../plugins/templates/rust/gitignore");
/// The built-in plugins' lock file: the versions every template pins.
const PLUGINS_LOCK: &str = include_str!("../../../../plugins/Cargo.lock");

/// The files of one world's template.
struct Template {
    summary: &'static str,
    lib_rs: &'static str,
    schema: &'static str,
    fixtures: &'static [(&'static str, &'static str)],
}

macro_rules! template {
    ($world:literal, $summary:literal, [$($fixture:literal),+ $(,)?]) => {
        Template {
            summary: $summary,
            lib_rs: include_str!(concat!("../../../../plugins/templates/rust/", $world, "/src/lib.rs")),
            schema: include_str!(concat!("../../../../plugins/templates/rust/", $world, "/config.schema.json")),
            fixtures: &[$((
                $fixture,
                include_str!(concat!("../../../../plugins/templates/rust/", $world, "/fixtures/", $fixture)),
            )),+],
        }
    };
}

fn template(world: World) -> Template {
    match world {
        World::PlacementFilter => template!(
            "placement-filter",
            "Keeps the clusters whose label has one of the configured values.",
            ["keeps-matching-clusters.json", "rejects-empty-values.json"]
        ),
        World::PlacementScorer => template!(
            "placement-scorer",
            "Ranks clusters by the allocatable amount of one resource.",
            ["ranks-by-allocatable-cpu.json", "rejects-unknown-fields.json"]
        ),
        World::PolicyCheck => template!(
            "policy-check",
            "A cluster complies when the configured object exists on it.",
            ["compliant-when-present.json", "non-compliant-when-missing.json"]
        ),
        World::RolloutStrategy => template!(
            "rollout-strategy",
            "Rolls out to a few clusters at a time and stops at the first failure.",
            ["fills-free-slots.json", "stops-on-failure.json"]
        ),
        World::ManifestTransform => template!(
            "manifest-transform",
            "Labels every manifest with the name of the cluster it goes to.",
            ["labels-each-cluster.json"]
        ),
    }
}

/// Names cargo refuses for a package or its library.
const RESERVED: &[&str] = &[
    "test",
    "core",
    "std",
    "alloc",
    "proc-macro",
    "proc_macro",
    "self",
    "super",
    "crate",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "static",
    "struct",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "async",
    "await",
    "dyn",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "try",
    "gen",
];

/// A plugin name: a DNS label (it names the WasmPlugin too) that is also a crate name.
fn check_name(name: &str) -> Result<(), String> {
    let rule = "a plugin name is 1 to 63 lowercase letters, digits and '-', starting with a letter and not \
                ending with '-'";
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(format!("invalid plugin name {name:?}: {rule}"));
    }
    if RESERVED.contains(&name) {
        return Err(format!("invalid plugin name {name:?}: cargo reserves it (a Rust keyword or standard crate)"));
    }
    Ok(())
}

fn check_lang(lang: &str) -> Result<(), String> {
    let lang = lang.to_ascii_lowercase();
    if LANGUAGES.contains(&lang.as_str()) {
        return Ok(());
    }
    if LATER.contains(&lang.as_str()) {
        return Err(format!(
            "no {lang} template yet: templates for Python, JavaScript and C come with their plugin SDKs; \
             supported now: {}",
            LANGUAGES.join(", ")
        ));
    }
    Err(format!(
        "unknown language {lang:?}: supported now: {} (Python, JavaScript and C come with their SDKs)",
        LANGUAGES.join(", ")
    ))
}

/// One `[[package]]` of a lock file.
struct Locked<'a> {
    name: &'a str,
    version: &'a str,
    block: &'a str,
    dependencies: Vec<&'a str>,
}

fn parse_lock(lock: &str) -> (&str, Vec<Locked<'_>>) {
    let mut parts = lock.split("\n[[package]]\n");
    let header = parts.next().unwrap_or_default();
    let packages = parts
        .map(|block| {
            let block = block.trim_end();
            let mut dependencies = Vec::new();
            let mut in_deps = false;
            for line in block.lines() {
                if line == "dependencies = [" {
                    in_deps = true;
                } else if in_deps && line == "]" {
                    in_deps = false;
                } else if in_deps {
                    dependencies.push(line.trim().trim_end_matches(',').trim_matches('"'));
                }
            }
            Locked { name: block_field(block, "name"), version: block_field(block, "version"), block, dependencies }
        })
        .collect();
    (header, packages)
}

fn block_field<'a>(block: &'a str, key: &str) -> &'a str {
    block
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(" = \"")).and_then(|r| r.strip_suffix('"')))
        .unwrap_or_default()
}

/// The package a lock file's dependency entry (`name`, `name version` or `name version
/// (source)`) refers to.
fn resolve<'a, 'b>(packages: &'b [Locked<'a>], entry: &str) -> Option<&'b Locked<'a>> {
    let mut words = entry.split(' ');
    let name = words.next()?;
    let version = words.next();
    packages.iter().find(|p| p.name == name && version.is_none_or(|v| p.version == v))
}

/// A `Cargo.lock` for a project named `name` with the built-in plugins' dependencies
/// (`serde`, `serde_json`, `wit-bindgen`), pinned to the versions of `plugins/Cargo.lock`;
/// and the wit-bindgen version requirement for `Cargo.toml`.
fn lock_file(name: &str) -> Result<(String, String), String> {
    let (header, packages) = parse_lock(PLUGINS_LOCK);
    // A built-in plugin with exactly the template's dependencies.
    let model = packages
        .iter()
        .find(|p| p.name == "label-filter")
        .ok_or("plugins/Cargo.lock has no label-filter, whose dependencies the templates take")?;
    let mut wanted: Vec<&Locked> = Vec::new();
    let mut queue: Vec<&str> = model.dependencies.clone();
    while let Some(entry) = queue.pop() {
        let p = resolve(&packages, entry).ok_or_else(|| format!("plugins/Cargo.lock: no package for {entry:?}"))?;
        if !wanted.iter().any(|w| std::ptr::eq(*w, p)) {
            wanted.push(p);
            queue.extend(p.dependencies.iter().copied());
        }
    }
    let wit_bindgen = wanted
        .iter()
        .find(|p| p.name == "wit-bindgen")
        .map(|p| p.version)
        .ok_or("plugins/Cargo.lock: label-filter does not depend on wit-bindgen")?;
    let requirement = match wit_bindgen.split('.').collect::<Vec<_>>().as_slice() {
        ["0", minor, _] => format!("0.{minor}"),
        [major, ..] => major.to_string(),
        [] => wit_bindgen.to_string(),
    };
    let mut deps: Vec<&str> = model.dependencies.clone();
    deps.sort();
    let own = format!(
        "name = \"{name}\"\nversion = \"0.1.0\"\ndependencies = [\n{}]",
        deps.iter().map(|d| format!(" \"{d}\",\n")).collect::<String>()
    );
    let mut blocks: Vec<(&str, &str, String)> =
        wanted.iter().map(|p| (p.name, p.version, p.block.to_string())).collect();
    blocks.push((name, "0.1.0", own));
    blocks.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut out = header.trim_end().to_string();
    out.push('\n');
    for (_, _, block) in blocks {
        out.push_str("\n[[package]]\n");
        out.push_str(&block);
        out.push('\n');
    }
    Ok((out, requirement))
}

/// The files of a new project, by path relative to its directory.
fn project_files(name: &str, world: World) -> Result<Vec<(PathBuf, String)>, String> {
    let t = template(world);
    let (lock, wit_bindgen) = lock_file(name)?;
    let lib = name.replace('-', "_");
    let first_fixture = t.fixtures.first().map(|(f, _)| *f).unwrap_or_default();
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{lib}}", &lib)
            .replace("{{world}}", world.name())
            .replace("{{summary}}", t.summary)
            .replace("{{wit_bindgen}}", &wit_bindgen)
            .replace("{{fixture}}", first_fixture)
    };
    let mut files = vec![
        (PathBuf::from("Cargo.toml"), fill(CARGO_TOML)),
        (PathBuf::from("Cargo.lock"), lock),
        (PathBuf::from("README.md"), fill(README)),
        (PathBuf::from(".gitignore"), GITIGNORE.to_string()),
        (PathBuf::from("src/lib.rs"), t.lib_rs.to_string()),
        (PathBuf::from("config.schema.json"), t.schema.to_string()),
    ];
    for (file, text) in t.fixtures {
        files.push((Path::new("fixtures").join(file), text.to_string()));
    }
    // The world's package and the shared types, laid out as wit-bindgen reads a directory:
    // the main package at the top, dependencies under deps/.
    let world_wit = format!("{0}/{0}.wit", world.name());
    for (path, text) in WIT_SOURCES {
        if *path == world_wit {
            files.push((Path::new("wit").join(format!("{}.wit", world.name())), text.to_string()));
        } else if *path == "types/types.wit" {
            files.push((PathBuf::from("wit/deps/types/types.wit"), text.to_string()));
        }
    }
    Ok(files)
}

pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    check_lang(&args.lang).map_err(anyhow::Error::msg)?;
    check_name(&args.name).map_err(anyhow::Error::msg)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        let empty = dir.is_dir() && std::fs::read_dir(&dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !empty {
            anyhow::bail!("{} already exists: choose another --dir, or remove it", dir.display());
        }
    }
    let files = project_files(&args.name, args.world).map_err(anyhow::Error::msg)?;
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    out!("created {}: a Rust {} plugin named {}", dir.display(), args.world, args.name);
    out!("next:\n  cd {}\n  flotilla plugin test      # builds, then runs fixtures/*.json", dir.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_and_crate_names() {
        for good in ["a", "my-filter", "region2", "a-b-c"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "My", "1a", "a_b", "a-", "a.b", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("test").expect_err("reserved").contains("cargo reserves it"));
    }

    #[test]
    fn other_languages_say_when_they_come() {
        assert_eq!(check_lang("Rust"), Ok(()));
        let e = check_lang("python").expect_err("later");
        assert!(e.contains("come with their plugin SDKs") && e.contains("supported now: rust"), "{e}");
        assert!(check_lang("cobol").expect_err("unknown").starts_with("unknown language \"cobol\""));
    }

    #[test]
    fn the_lock_pins_the_built_in_plugins_versions() {
        let (lock, wit_bindgen) = lock_file("my-filter").expect("lock");
        assert!(lock.starts_with("# This file is automatically @generated by Cargo."), "{lock}");
        assert!(
            lock.contains("\n[[package]]\nname = \"my-filter\"\nversion = \"0.1.0\"\ndependencies = [\n \"serde\",\n")
        );
        let (_, pinned) = parse_lock(PLUGINS_LOCK);
        let version = pinned.iter().find(|p| p.name == "wit-bindgen").map(|p| p.version).expect("wit-bindgen");
        assert!(lock.contains(&format!("name = \"wit-bindgen\"\nversion = \"{version}\"")), "{lock}");
        assert!(version.starts_with(&format!("{wit_bindgen}.")), "{wit_bindgen} {version}");
        assert!(!lock.contains("name = \"label-filter\""), "only the template's dependencies");
    }

    #[test]
    fn every_world_has_a_self_contained_template() {
        for world in World::ALL {
            let files = project_files("p", world).expect("files");
            let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
            for want in ["Cargo.toml", "Cargo.lock", "src/lib.rs", "wit/deps/types/types.wit"] {
                assert!(names.iter().any(|n| n == want), "{world}: {want} in {names:?}");
            }
            assert!(names.contains(&format!("wit/{world}.wit")), "{names:?}");
            assert!(names.iter().any(|n| n.starts_with("fixtures/")), "{names:?}");
            for (path, text) in &files {
                assert!(!text.contains("{{"), "{world}: {} has an unfilled placeholder", path.display());
                if path.starts_with("fixtures") {
                    let f = flotilla_plugin_host::Fixture::parse(text).expect("a fixture");
                    assert_eq!(f.world, Some(world), "{}", path.display());
                }
            }
            let lib = &files.iter().find(|(p, _)| p == Path::new("src/lib.rs")).expect("lib").1;
            assert!(lib.contains(&format!("world: \"{world}\"")), "{world}");
        }
    }
}
