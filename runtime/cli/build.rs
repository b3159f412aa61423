//! Embeds `plugins/templates/` and `plugins/sdk/` in the binary for `flotilla plugin new`:
//! every file of both trees, so adding a language's template or SDK files needs no Rust
//! change. Cargo reruns this when anything under either directory changes (it watches a
//! directory's whole tree), so a new file is picked up on the next build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Directories that hold what a toolchain or editor made, never sources.
const SKIP_DIRS: &[&str] = &["target", "node_modules", "__pycache__", ".pytest_cache", ".mypy_cache", ".venv", ".git"];
/// Compiled Python. (Not `.wasm`: an SDK may ship an adapter module.)
const SKIP_EXTENSIONS: &[&str] = &["pyc"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let plugins = manifest_dir.join("../../plugins");
    let mut out = String::new();
    for (name, dir) in [("TEMPLATE_FILES", plugins.join("templates")), ("SDK_FILES", plugins.join("sdk"))] {
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        if dir.is_dir() {
            walk(&dir, &dir, &mut files);
        }
        files.sort();
        writeln!(out, "pub static {name}: &[(&str, &[u8])] = &[").expect("write to a String");
        for (relative, absolute) in files {
            writeln!(out, "    ({relative:?}, include_bytes!({:?})),", absolute.display().to_string())
                .expect("write to a String");
        }
        writeln!(out, "];").expect("write to a String");
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("plugin_files.rs"), out).expect("write plugin_files.rs");
}

/// Collects the files under `dir` as (path relative to `root` with `/`, absolute path).
/// Directory symlinks (an SDK's `wit` link to the repository's WIT) are skipped: `plugin new`
/// writes the WIT itself.
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let link = entry.file_type().map(|t| t.is_symlink()).unwrap_or(false);
        if path.is_dir() {
            if !link && !SKIP_DIRS.contains(&name.as_str()) {
                walk(root, &path, files);
            }
            continue;
        }
        if path.extension().is_some_and(|e| SKIP_EXTENSIONS.iter().any(|s| e == *s)) || !path.is_file() {
            continue;
        }
        let relative = path.strip_prefix(root).expect("under the root");
        let relative: Vec<String> =
            relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let absolute = path.canonicalize().unwrap_or_else(|e| panic!("resolving {}: {e}", path.display()));
        files.push((relative.join("/"), absolute));
    }
}
