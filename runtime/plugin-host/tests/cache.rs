//! The compilation cache: a digest compiles once; later loads, in this process or the next,
//! come from memory or disk without compiling.

mod common;

use common::*;
use flotilla_plugin_host::*;

#[test]
fn a_second_load_of_a_digest_does_not_compile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = wasm("capacity-scorer");

    let first = host_in(dir.path());
    let p = first.load("scorer", World::PlacementScorer, &bytes).expect("load");
    assert_eq!(p.info().loaded_from, LoadSource::Compiled);
    assert_eq!(first.cache_stats(), CacheStats { compiled: 1, disk_hits: 0, memory_hits: 0 });
    let again = first.load("scorer-2", World::PlacementScorer, &bytes).expect("load");
    assert_eq!(again.info().loaded_from, LoadSource::Memory);
    assert_eq!(first.cache_stats(), CacheStats { compiled: 1, disk_hits: 0, memory_hits: 1 });
    let entry = first.cache_dir().join(format!("{}.cwasm", &p.info().digest["sha256:".len()..]));
    assert!(entry.is_file(), "{} exists", entry.display());
    // Evicted from memory, it comes back from disk; the plugin loaded before still works.
    first.evict(&p.info().digest);
    assert_eq!(
        first.load("scorer", World::PlacementScorer, &bytes).expect("load").info().loaded_from,
        LoadSource::DiskCache
    );
    let prepared = first.prepare(&p, "{}").expect("the evicted plugin still runs");
    drop((prepared, p));
    drop(first);

    // A new engine (a restarted hub or agent) finds it on disk.
    let second = host_in(dir.path());
    let p = second.load("scorer", World::PlacementScorer, &bytes).expect("load");
    assert_eq!(p.info().loaded_from, LoadSource::DiskCache);
    assert_eq!(second.cache_stats(), CacheStats { compiled: 0, disk_hits: 1, memory_hits: 0 });
    let prepared = second.prepare(&p, "{}").expect("config");
    let clusters = prepared.batch(&[cluster("a", &[], &[])]);
    assert!(second.placement_scorer(&prepared, &owner(), &clusters, &Limits::DEFAULT).is_ok());
}

#[test]
fn a_damaged_cache_entry_is_compiled_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = wasm("label-filter");
    let first = host_in(dir.path());
    let p = first.load("f", World::PlacementFilter, &bytes).expect("load");
    let entry = first.cache_dir().join(format!("{}.cwasm", &p.info().digest["sha256:".len()..]));
    drop((p, first));
    // A new file in place of the entry (the host maps entries, and only ever replaces them
    // by rename, never rewrites one in place).
    std::fs::remove_file(&entry).expect("remove");
    std::fs::write(&entry, b"not a compiled component").expect("damage");

    let second = host_in(dir.path());
    let p = second.load("f", World::PlacementFilter, &bytes).expect("recompiled");
    assert_eq!(p.info().loaded_from, LoadSource::Compiled);
    assert_eq!(second.cache_stats().compiled, 1);
    good_filter_works(&second);
}

#[test]
fn the_cache_directory_is_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = host_in(dir.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(host.cache_dir()).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    assert!(host.cache_dir().starts_with(dir.path()));
}
