//! The blob store keeps verified content in the OCI layout and collects what nothing references.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Read;
use std::time::{Duration, SystemTime};

use spread_image::{BlobStore, Digest, StoreError, TEMP_GRACE};

fn store() -> (tempfile::TempDir, BlobStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path().join("oci")).unwrap();
    (tmp, store)
}

fn stray_files(store: &BlobStore) -> Vec<String> {
    fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| Digest::from_hex(name).is_err())
        .collect()
}

#[test]
fn opening_creates_an_oci_image_layout() {
    let (_tmp, store) = store();
    let layout = fs::read_to_string(store.root().join("oci-layout")).unwrap();
    assert_eq!(layout, r#"{"imageLayoutVersion":"1.0.0"}"#);
    assert!(store.root().join("index.json").is_file());
    assert!(store.root().join("blobs/sha256").is_dir());
    BlobStore::open(store.root()).unwrap();
}

#[test]
fn a_foreign_layout_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"9.9"}"#,
    )
    .unwrap();
    let err = BlobStore::open(tmp.path()).unwrap_err();
    assert!(matches!(err, StoreError::BadLayout { .. }), "{err}");
    assert!(err.to_string().contains("\"9.9\""), "{err}");
}

#[test]
fn put_stores_verified_content_under_its_digest() {
    let (_tmp, store) = store();
    let content = b"layer bytes".repeat(10_000);
    let digest = Digest::of(&content);
    assert!(!store.has(&digest));
    assert_eq!(
        store.put(&digest, &content[..]).unwrap(),
        content.len() as u64
    );
    assert!(store.has(&digest));
    assert_eq!(
        store.path(&digest),
        store.root().join("blobs/sha256").join(digest.hex())
    );
    assert_eq!(store.size(&digest).unwrap(), content.len() as u64);
    let mut read_back = Vec::new();
    store
        .open_blob(&digest)
        .unwrap()
        .read_to_end(&mut read_back)
        .unwrap();
    assert_eq!(read_back, content);
    // Storing it again is a no-op that reports the size.
    assert_eq!(store.put(&digest, &b""[..]).unwrap(), content.len() as u64);
    assert!(stray_files(&store).is_empty());
}

#[test]
fn put_refuses_content_that_does_not_match_the_digest() {
    let (_tmp, store) = store();
    let claimed = Digest::of(b"what the manifest says");
    let err = store
        .put(&claimed, &b"what the registry sent"[..])
        .unwrap_err();
    match &err {
        StoreError::DigestMismatch { expected, actual } => {
            assert_eq!(expected, &claimed);
            assert_eq!(actual, &Digest::of(b"what the registry sent"));
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
    assert!(err.to_string().contains(claimed.as_str()), "{err}");
    assert!(!store.has(&claimed));
    assert!(
        stray_files(&store).is_empty(),
        "the temporary file was left behind"
    );
}

#[test]
fn put_refuses_blobs_over_the_size_limit_while_streaming() {
    let (_tmp, store) = store();
    let store = store.with_max_blob_bytes(1000);
    let content = vec![1u8; 1001];
    let err = store.put(&Digest::of(&content), &content[..]).unwrap_err();
    assert!(
        matches!(err, StoreError::TooLarge { limit: 1000, .. }),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());
    assert!(stray_files(&store).is_empty());
    assert!(store.put_bytes(&content[..1000]).is_ok());
}

#[test]
fn list_remove_and_missing_blobs_behave() {
    let (_tmp, store) = store();
    let a = store.put_bytes(b"a").unwrap();
    let b = store.put_bytes(b"b").unwrap();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(store.list().unwrap(), expected);
    assert!(store.remove(&a).unwrap());
    assert!(!store.remove(&a).unwrap());
    assert_eq!(store.list().unwrap(), vec![b]);
    let err = store.open_blob(&a).unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(ref d) if *d == a),
        "{err}"
    );
    assert_eq!(err.to_string(), format!("blob {a} is not in the store"));
}

#[test]
fn gc_keeps_only_referenced_blobs_and_old_temp_files_go() {
    let (_tmp, store) = store();
    let kept = store.put_bytes(b"referenced").unwrap();
    let dropped = store.put_bytes(b"unreferenced").unwrap();
    let blobs = store.root().join("blobs/sha256");
    let old_temp = blobs.join(".tmp-crashed");
    File::create(&old_temp)
        .unwrap()
        .set_modified(SystemTime::now() - TEMP_GRACE - Duration::from_secs(1))
        .unwrap();
    let fresh_temp = blobs.join(".tmp-in-flight");
    File::create(&fresh_temp).unwrap();

    let stats = store
        .gc(&HashSet::from([kept.clone()]), Duration::ZERO)
        .unwrap();
    assert_eq!(stats.removed_blobs, 1);
    assert_eq!(stats.removed_bytes, b"unreferenced".len() as u64);
    assert_eq!(stats.removed_temp_files, 1);
    assert_eq!(stats.kept_blobs, 1);
    assert_eq!(store.list().unwrap(), vec![kept]);
    assert!(!store.has(&dropped));
    assert!(!old_temp.exists());
    assert!(
        fresh_temp.exists(),
        "a put still streaming must not lose its file"
    );
}

#[test]
fn gc_spares_unreferenced_blobs_written_or_put_again_within_the_grace() {
    let (_tmp, store) = store();
    let old = store.put_bytes(b"old and unreferenced").unwrap();
    let reused = store.put_bytes(b"old but pulled again").unwrap();
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for digest in [&old, &reused] {
        File::open(store.path(digest))
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
    }
    // A pull that finds the blob present marks it as used now.
    store.put_bytes(b"old but pulled again").unwrap();
    let fresh = store.put_bytes(b"just pulled").unwrap();

    let stats = store.gc(&HashSet::new(), Duration::from_secs(600)).unwrap();
    assert_eq!((stats.removed_blobs, stats.kept_blobs), (1, 2));
    let mut left = vec![reused, fresh];
    left.sort();
    assert_eq!(store.list().unwrap(), left);
    assert!(!store.has(&old));
}
