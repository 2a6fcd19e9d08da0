//! The layer cache unpacks each layer once per id shift, atomically, and drops unused layers.

mod common;

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use common::{Entry, gzip, tarball};
use spread_image::{BlobStore, Compression, LayerCache, LayerError, TEMP_GRACE, UnpackOptions};

struct Fixture {
    _tmp: tempfile::TempDir,
    blobs: BlobStore,
    cache: LayerCache,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(tmp.path().join("oci")).unwrap();
    let cache = LayerCache::open(tmp.path().join("layers")).unwrap();
    Fixture {
        _tmp: tmp,
        blobs,
        cache,
    }
}

fn entries(cache: &LayerCache) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(cache.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn shifted(shift: u32) -> UnpackOptions {
    UnpackOptions {
        id_shift: shift,
        ..UnpackOptions::default()
    }
}

#[test]
fn a_layer_is_unpacked_once_and_then_reused() {
    let f = fixture();
    let layer = gzip(&tarball(&[Entry::file("app/run", "v1").owner(1000, 1000)]));
    let digest = f.blobs.put_bytes(&layer).unwrap();
    let dir = f
        .cache
        .ensure(&f.blobs, &digest, Compression::Gzip, &shifted(0))
        .unwrap();
    assert_eq!(dir, f.cache.root().join(format!("{}-0", digest.hex())));
    assert_eq!(fs::read_to_string(dir.join("app/run")).unwrap(), "v1");

    // The second call must not unpack again: it works without the blob.
    fs::write(dir.join("marker"), "still here").unwrap();
    f.blobs.remove(&digest).unwrap();
    let again = f
        .cache
        .ensure(&f.blobs, &digest, Compression::Gzip, &shifted(0))
        .unwrap();
    assert_eq!(again, dir);
    assert!(dir.join("marker").exists());
    assert_eq!(entries(&f.cache), vec![format!("{}-0", digest.hex())]);
}

#[test]
fn each_id_shift_gets_its_own_copy_with_shifted_owners() {
    let f = fixture();
    let layer = tarball(&[Entry::file("f", "x").owner(5, 6)]);
    let digest = f.blobs.put_bytes(&layer).unwrap();
    let plain = f
        .cache
        .ensure(&f.blobs, &digest, Compression::None, &shifted(0))
        .unwrap();
    let moved = f
        .cache
        .ensure(&f.blobs, &digest, Compression::None, &shifted(200_000))
        .unwrap();
    assert_ne!(plain, moved);
    let meta = fs::metadata(moved.join("f")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (200_005, 200_006));
    let root = fs::metadata(&moved).unwrap();
    assert_eq!(
        (root.uid(), root.gid(), root.mode() & 0o7777),
        (200_000, 200_000, 0o755)
    );
    assert_eq!(fs::metadata(plain.join("f")).unwrap().uid(), 5);
    assert_eq!(
        f.cache.list().unwrap(),
        vec![(digest.clone(), 0), (digest, 200_000)]
    );
}

#[test]
fn a_refused_layer_leaves_nothing_in_the_cache() {
    let f = fixture();
    let layer = tarball(&[Entry::file("ok", "fine"), Entry::file("../escape", "no")]);
    let digest = f.blobs.put_bytes(&layer).unwrap();
    let err = f
        .cache
        .ensure(&f.blobs, &digest, Compression::None, &shifted(0))
        .unwrap_err();
    assert!(matches!(err, LayerError::Unpack { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(digest.as_str()), "{message}");
    assert!(
        message.contains("layer entry \"../escape\" escapes the layer root"),
        "{message}"
    );
    assert!(
        entries(&f.cache).is_empty(),
        "left behind: {:?}",
        entries(&f.cache)
    );
}

#[test]
fn a_blob_corrupted_on_disk_is_detected_while_unpacking() {
    let f = fixture();
    let digest = f
        .blobs
        .put_bytes(&tarball(&[Entry::file("f", "x")]))
        .unwrap();
    // Trailing junk after the end of the archive still unpacks, so only the digest can tell.
    let mut blob = fs::OpenOptions::new()
        .append(true)
        .open(f.blobs.path(&digest))
        .unwrap();
    blob.write_all(b"junk").unwrap();
    let err = f
        .cache
        .ensure(&f.blobs, &digest, Compression::None, &shifted(0))
        .unwrap_err();
    assert!(matches!(err, LayerError::Corrupt { .. }), "{err}");
    assert!(entries(&f.cache).is_empty());
}

#[test]
fn a_missing_blob_is_reported_by_digest() {
    let f = fixture();
    let digest = spread_image::Digest::of(b"never stored");
    let err = f
        .cache
        .ensure(&f.blobs, &digest, Compression::None, &shifted(0))
        .unwrap_err();
    assert!(matches!(err, LayerError::Blob { .. }), "{err}");
    assert!(err.to_string().contains(digest.as_str()));
}

#[test]
fn unused_layers_are_removed_and_used_ones_kept() {
    let f = fixture();
    let used = f
        .blobs
        .put_bytes(&tarball(&[Entry::file("used", "u")]))
        .unwrap();
    let unused = f
        .blobs
        .put_bytes(&tarball(&[Entry::dir("d"), Entry::file("d/unused", "u")]))
        .unwrap();
    for shift in [0, 65536] {
        for digest in [&used, &unused] {
            f.cache
                .ensure(&f.blobs, digest, Compression::None, &shifted(shift))
                .unwrap();
        }
    }
    let crashed = f.cache.root().join(".tmp-crashed");
    fs::create_dir(&crashed).unwrap();
    fs::File::open(&crashed)
        .unwrap()
        .set_modified(SystemTime::now() - TEMP_GRACE - Duration::from_secs(1))
        .unwrap();
    let in_flight = f.cache.root().join(".tmp-in-flight");
    fs::create_dir(&in_flight).unwrap();

    let stats = f
        .cache
        .remove_unused(
            &HashSet::from([(used.clone(), 0), (used.clone(), 65536)]),
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!((stats.removed_layers, stats.kept_layers), (2, 2));
    assert_eq!(stats.removed_temp_dirs, 1);
    assert!(!crashed.exists());
    assert!(
        in_flight.exists(),
        "an unpack still running must keep its directory"
    );
    fs::remove_dir(in_flight).unwrap();
    assert_eq!(
        f.cache.list().unwrap(),
        vec![(used.clone(), 0), (used, 65536)]
    );
    assert_eq!(
        entries(&f.cache).len(),
        2,
        "trash left behind: {:?}",
        entries(&f.cache)
    );
}

#[test]
fn remove_unused_keeps_layers_per_id_shift_and_those_used_within_the_grace() {
    let f = fixture();
    let layer = f
        .blobs
        .put_bytes(&tarball(&[Entry::file("f", "x")]))
        .unwrap();
    for shift in [0, 65536, 131072] {
        f.cache
            .ensure(&f.blobs, &layer, Compression::None, &shifted(shift))
            .unwrap();
    }
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for shift in [0, 65536, 131072] {
        fs::File::open(f.cache.path(&layer, shift))
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
    }
    // Started again for the app of shift 131072: used now.
    f.cache
        .ensure(&f.blobs, &layer, Compression::None, &shifted(131072))
        .unwrap();

    let keep = HashSet::from([(layer.clone(), 0)]);
    let stats = f
        .cache
        .remove_unused(&keep, Duration::from_secs(600))
        .unwrap();
    assert_eq!((stats.removed_layers, stats.kept_layers), (1, 2));
    assert_eq!(
        f.cache.list().unwrap(),
        vec![(layer.clone(), 0), (layer, 131072)]
    );
}
