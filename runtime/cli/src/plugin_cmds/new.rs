//! `flotilla plugin new NAME --lang LANG --world WORLD [--dir DIR]`: a plugin project from
//! the templates under `plugins/templates/`, embedded in the binary with the SDKs of
//! `plugins/sdk/` (see `build.rs`).
//!
//! A project is `plugins/templates/<lang>/common/` plus `plugins/templates/<lang>/<world>/`
//! (a world's file wins over a common one of the same path), with `{{name}}`,
//! `{{name_snake}}`, `{{world}}` and `{{world_snake}}` filled in in file contents and paths,
//! and a file named `gitignore` written as `.gitignore`. It is self-contained: the world's WIT
//! and the shared types are copied into `wit/`, the language's SDK (`plugins/sdk/<lang>/`)
//! into `flotilla-plugin-sdk/` with every world's WIT in its `wit/`, and a Rust project's
//! `Cargo.lock` pins the versions of `plugins/Cargo.lock` (the SDK's wit-bindgen), so it
//! builds as created, offline when those crates are in cargo's cache.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use flotilla_plugin_host::{WIT_SOURCES, World};

use super::common::{out, parse_world};

mod embedded {
    // TEMPLATE_FILES and SDK_FILES: (path under plugins/templates or plugins/sdk, contents).
    include!(concat!(env!("OUT_DIR"), "/plugin_files.rs"));
}

#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and '-', starting with a letter (also the
    /// package's name and the default WasmPlugin name).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The language: rust, python, js or c (those with a template in this build).
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

/// Other names for the languages, as people type them.
const ALIASES: &[(&str, &str)] =
    &[("rs", "rust"), ("py", "python"), ("javascript", "js"), ("node", "js"), ("typescript", "js"), ("ts", "js")];

/// Where `plugin new` puts the language's SDK in a project.
const SDK_DIR: &str = "flotilla-plugin-sdk";

/// The built-in plugins' lock file: the versions every Rust template pins.
const PLUGINS_LOCK: &str = include_str!("../../../../plugins/Cargo.lock");

/// The languages with a template directory, sorted.
fn languages() -> Vec<&'static str> {
    let mut langs: Vec<&str> = embedded::TEMPLATE_FILES.iter().filter_map(|(p, _)| p.split('/').next()).collect();
    langs.dedup();
    langs
}

/// The template language `lang` names, or why there is none.
fn check_lang(lang: &str) -> Result<&'static str, String> {
    let lower = lang.to_ascii_lowercase();
    let canonical = ALIASES.iter().find(|(alias, _)| *alias == lower).map_or(lower.as_str(), |(_, l)| l);
    let available = languages();
    available
        .iter()
        .find(|l| **l == canonical)
        .copied()
        .ok_or_else(|| format!("no template for language {lang:?}: templates exist for {}", available.join(", ")))
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

/// A plugin name: a DNS label (it names the WasmPlugin too) that is also a package name in
/// every language.
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

/// A `Cargo.lock` for a Rust project named `name` that depends on the vendored SDK, `serde`
/// and `serde_json`, pinned to the versions of `plugins/Cargo.lock` (where the SDK is a
/// member).
fn lock_file(name: &str) -> Result<String, String> {
    let (header, packages) = parse_lock(PLUGINS_LOCK);
    let sdk = packages
        .iter()
        .find(|p| p.name == "flotilla-plugin-sdk")
        .ok_or("plugins/Cargo.lock has no flotilla-plugin-sdk, which Rust templates depend on")?;
    let mut wanted: Vec<&Locked> = vec![sdk];
    let mut queue: Vec<&str> = sdk.dependencies.clone();
    while let Some(entry) = queue.pop() {
        let p = resolve(&packages, entry).ok_or_else(|| format!("plugins/Cargo.lock: no package for {entry:?}"))?;
        if !wanted.iter().any(|w| std::ptr::eq(*w, p)) {
            wanted.push(p);
            queue.extend(p.dependencies.iter().copied());
        }
    }
    // The template's own dependencies: the SDK, and serde and serde_json at the SDK's versions.
    let mut deps: Vec<&str> = vec!["flotilla-plugin-sdk"];
    deps.extend(
        sdk.dependencies.iter().copied().filter(|d| matches!(d.split(' ').next(), Some("serde" | "serde_json"))),
    );
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
    Ok(out)
}

/// The WIT a world's toolchain reads, laid out as wit-bindgen and componentize-py read a
/// directory: the world's package at the top, the shared types under `deps/`.
fn world_wit(world: &str, under: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let main = format!("{world}/{world}.wit");
    let mut files = Vec::new();
    for (path, text) in WIT_SOURCES {
        if *path == main {
            files.push((under.join(format!("{world}.wit")), text.as_bytes().to_vec()));
        } else if *path == "types/types.wit" {
            files.push((under.join("deps/types/types.wit"), text.as_bytes().to_vec()));
        }
    }
    files
}

/// The files of a new project, by path relative to its directory.
fn project_files(name: &str, lang: &str, world: World) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let name_snake = name.replace('-', "_");
    let world_snake = world.name().replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{name_snake}}", &name_snake)
            .replace("{{world}}", world.name())
            .replace("{{world_snake}}", &world_snake)
    };
    let common = format!("{lang}/common/");
    let own = format!("{lang}/{}/", world.name());
    if !embedded::TEMPLATE_FILES.iter().any(|(p, _)| p.starts_with(&own)) {
        return Err(format!("there is no {lang} template for a {world} yet"));
    }
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    // Common files first, so a world's file of the same path replaces its common one.
    for prefix in [&common, &own] {
        for (path, bytes) in embedded::TEMPLATE_FILES {
            let Some(relative) = path.strip_prefix(prefix.as_str()) else { continue };
            let relative = fill(relative);
            let relative = match relative.rsplit_once('/') {
                Some((dir, "gitignore")) => format!("{dir}/.gitignore"),
                None if relative == "gitignore" => ".gitignore".to_string(),
                _ => relative,
            };
            let bytes = match std::str::from_utf8(bytes) {
                Ok(text) => fill(text).into_bytes(),
                Err(_) => bytes.to_vec(),
            };
            let path = PathBuf::from(relative);
            files.retain(|(p, _)| *p != path);
            files.push((path, bytes));
        }
    }
    files.extend(world_wit(world.name(), Path::new("wit")));
    // The SDK as it is (its code is not a template), with the WIT of every world.
    let sdk_prefix = format!("{lang}/");
    let mut has_sdk = false;
    for (path, bytes) in embedded::SDK_FILES {
        if let Some(relative) = path.strip_prefix(sdk_prefix.as_str()) {
            has_sdk = true;
            files.push((Path::new(SDK_DIR).join(relative), bytes.to_vec()));
        }
    }
    if has_sdk {
        for w in World::ALL {
            files.extend(world_wit(w.name(), &Path::new(SDK_DIR).join("wit").join(w.name())));
        }
    }
    if lang == "rust" {
        files.push((PathBuf::from("Cargo.lock"), lock_file(name)?.into_bytes()));
    }
    Ok(files)
}

pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let lang = check_lang(&args.lang).map_err(anyhow::Error::msg)?;
    check_name(&args.name).map_err(anyhow::Error::msg)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        let empty = dir.is_dir() && std::fs::read_dir(&dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !empty {
            anyhow::bail!("{} already exists: choose another --dir, or remove it", dir.display());
        }
    }
    let files = project_files(&args.name, lang, args.world).map_err(anyhow::Error::msg)?;
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    out!("created {}: a {lang} {} plugin named {}", dir.display(), args.world, args.name);
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
    fn languages_come_from_the_template_directories() {
        assert!(languages().contains(&"rust"), "{:?}", languages());
        assert_eq!(check_lang("Rust"), Ok("rust"));
        assert_eq!(check_lang("rs"), Ok("rust"));
        let e = check_lang("cobol").expect_err("unknown");
        assert!(e.starts_with("no template for language \"cobol\": templates exist for ") && e.contains("rust"), "{e}");
    }

    #[test]
    fn the_lock_pins_the_sdk_and_its_versions() {
        let lock = lock_file("my-filter").expect("lock");
        assert!(lock.starts_with("# This file is automatically @generated by Cargo."), "{lock}");
        assert!(lock.contains(
            "\n[[package]]\nname = \"my-filter\"\nversion = \"0.1.0\"\ndependencies = [\n \"flotilla-plugin-sdk\",\n \"serde\",\n \"serde_json\",\n]"
        ), "{lock}");
        assert!(lock.contains("\n[[package]]\nname = \"flotilla-plugin-sdk\"\nversion = \"0.1.0\"\n"), "{lock}");
        let (_, pinned) = parse_lock(PLUGINS_LOCK);
        let version = pinned.iter().find(|p| p.name == "wit-bindgen").map(|p| p.version).expect("wit-bindgen");
        assert!(lock.contains(&format!("name = \"wit-bindgen\"\nversion = \"{version}\"")), "{lock}");
        assert!(!lock.contains("name = \"label-filter\""), "only the template's dependencies");
    }

    #[test]
    fn every_rust_world_has_a_self_contained_template() {
        for world in World::ALL {
            let files = project_files("p", "rust", world).expect("files");
            let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
            for want in [
                "Cargo.toml",
                "Cargo.lock",
                "flotilla-plugin.json",
                ".gitignore",
                "src/lib.rs",
                "wit/deps/types/types.wit",
                "flotilla-plugin-sdk/Cargo.toml",
                "flotilla-plugin-sdk/src/lib.rs",
                "flotilla-plugin-sdk/wit/policy-check/deps/types/types.wit",
            ] {
                assert!(names.iter().any(|n| n == want), "{world}: {want} in {names:?}");
            }
            assert!(names.contains(&format!("wit/{world}.wit")), "{names:?}");
            assert!(names.iter().any(|n| n.starts_with("fixtures/")), "{names:?}");
            for (path, bytes) in &files {
                let text = String::from_utf8_lossy(bytes);
                for placeholder in ["{{name}}", "{{name_snake}}", "{{world}}", "{{world_snake}}"] {
                    assert!(!text.contains(placeholder), "{world}: {} has {placeholder}", path.display());
                }
                if path.starts_with("fixtures") {
                    let f = flotilla_plugin_host::Fixture::parse(&text).expect("a fixture");
                    assert_eq!(f.world, Some(world), "{}", path.display());
                }
            }
            let manifest = &files.iter().find(|(p, _)| p == Path::new("flotilla-plugin.json")).expect("manifest").1;
            let manifest: serde_json::Value = serde_json::from_slice(manifest).expect("json");
            assert_eq!((manifest["name"].as_str(), manifest["world"].as_str()), (Some("p"), Some(world.name())));
        }
    }
}
