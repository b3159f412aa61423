//! Real kubectl v1.32 protobuf request bodies (captured with `kubectl -v=9`, see
//! `tests/vectors/README.md`) decode to exactly the JSON kubectl sends for the same command
//! (`--dry-run=client -o json`), field order aside.

use std::path::Path;

use serde_json::Value;

#[test]
fn kubectl_payloads_decode_to_kubectl_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir).expect("vectors dir").flatten().map(|e| e.path()).collect();
    entries.sort();
    for pb in entries.iter().filter(|p| p.extension().is_some_and(|e| e == "pb")) {
        let body = std::fs::read(pb).expect("vector");
        let want: Value =
            serde_json::from_slice(&std::fs::read(pb.with_extension("json")).expect("expected json")).expect("json");
        match flotilla_kubeproto::decode(&body) {
            Ok(got) if got == want => checked += 1,
            Ok(got) => failures.push(format!("{}\n got: {got:#}\nwant: {want:#}", pb.display())),
            Err(err) => failures.push(format!("{}: {err}", pb.display())),
        }
    }
    assert!(failures.is_empty(), "{} vector(s) differ:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 10, "only {checked} vectors");
}
