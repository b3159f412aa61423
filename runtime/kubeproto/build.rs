//! Compiles the vendored Kubernetes `generated.proto` files (see `proto/README.md`) with the
//! pure-Rust `protox` compiler into one `FileDescriptorSet`, written to `$OUT_DIR` and embedded in
//! the library with `include_bytes!`. Source info (comments) is kept: the decoder reads the
//! `+optional` markers from it.

use std::path::{Path, PathBuf};

use prost::Message;

fn main() {
    let root = Path::new("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    collect_protos(root, root, &mut files);
    files.sort();

    let mut compiler = match protox::Compiler::new([root]) {
        Ok(compiler) => compiler,
        Err(err) => panic!("protox: cannot set include path {}: {err}", root.display()),
    };
    compiler.include_imports(true).include_source_info(true);
    if let Err(err) = compiler.open_files(&files) {
        panic!("protox: cannot compile the vendored Kubernetes protos: {err:?}");
    }
    let set = compiler.file_descriptor_set();

    let out = match std::env::var_os("OUT_DIR") {
        Some(dir) => PathBuf::from(dir).join("kubernetes.fds"),
        None => panic!("OUT_DIR is not set"),
    };
    if let Err(err) = std::fs::write(&out, set.encode_to_vec()) {
        panic!("cannot write {}: {err}", out.display());
    }
}

/// Every `*.proto` below `dir`, as a path relative to the include root `root`.
fn collect_protos(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => panic!("cannot read {}: {err}", dir.display()),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_protos(root, &path, out);
        } else if path.extension().is_some_and(|ext| ext == "proto")
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(rel.to_path_buf());
        }
    }
}
