//! What the plugin development tests share: scratch space and the binary run as a plugin
//! author runs it.

use std::path::Path;
use std::process::{Command, Output};

/// This test's scratch space in the target directory (never in the repository).
pub fn target_tmp() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// Runs the binary in `dir` with a compilation cache of its own (`cache`, under the scratch
/// space) and the wasm target directory every plugin test shares, so wit-bindgen, serde and
/// the Rust SDK compile once.
pub fn flotilla_in(dir: &Path, cache: &str, args: &[&str]) -> Output {
    let target = target_tmp().parent().expect("the target directory").join("wasm-templates");
    Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(args)
        .current_dir(dir)
        .env("FLOTILLA_PLUGIN_CACHE", target_tmp().join(cache))
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUST_LOG")
        .output()
        .expect("run flotilla")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
