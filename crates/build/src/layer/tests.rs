//! Layers written from host trees and bytes: the same content gives the same digest whatever
//! its mtimes or creation order, and what `spread_image::unpack_layer` makes of a layer is what
//! was added, with links kept, modes cleaned and exclusions left out.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::time::{Duration, SystemTime};

use flate2::read::GzDecoder;
use spread_image::{Compression as Packing, UnpackOptions, unpack_layer};

use super::*;

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    (dir, store)
}

fn unpack(store: &BlobStore, layer: &Layer) -> tempfile::TempDir {
    let dest = tempfile::tempdir().unwrap();
    let blob = store.open_blob(&layer.digest).unwrap();
    unpack_layer(blob, Packing::Gzip, dest.path(), &UnpackOptions::default()).unwrap();
    dest
}

/// One tar entry as the layer holds it.
#[derive(Debug, PartialEq, Eq)]
struct Listed {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    owner: (u64, u64),
    names: (Option<Vec<u8>>, Option<Vec<u8>>),
    mtime: u64,
}

fn listing(store: &BlobStore, layer: &Layer) -> Vec<Listed> {
    let blob = store.open_blob(&layer.digest).unwrap();
    let mut archive = tar::Archive::new(GzDecoder::new(blob));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let header = entry.header();
            Listed {
                path: entry.path().unwrap().to_string_lossy().into_owned(),
                kind: header.entry_type(),
                mode: header.mode().unwrap(),
                owner: (header.uid().unwrap(), header.gid().unwrap()),
                names: (
                    header.username_bytes().map(<[u8]>::to_vec),
                    header.groupname_bytes().map(<[u8]>::to_vec),
                ),
                mtime: header.mtime().unwrap(),
            }
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A small app tree, its files made in the given order and stamped with `mtime`.
fn make_tree(dir: &Path, reversed: bool, mtime: SystemTime) {
    let mut files = vec![
        ("bin/run", "#!/bin/sh\n", 0o755),
        ("lib/data.txt", "data\n", 0o644),
        ("lib/more/deeper.txt", "deeper\n", 0o600),
        ("README", "read me\n", 0o644),
    ];
    if reversed {
        files.reverse();
    }
    for (path, content, file_mode) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(file_mode)).unwrap();
        fs::File::open(&path).unwrap().set_modified(mtime).unwrap();
    }
    fs::create_dir_all(dir.join("empty")).unwrap();
    symlink("data.txt", dir.join("lib/link")).unwrap();
}

fn tree_layer(store: &BlobStore, dir: &Path) -> Layer {
    let mut builder = LayerBuilder::new();
    builder.add_tree("app", dir, |_| false).unwrap();
    builder.write(store).unwrap()
}

#[test]
fn the_same_tree_gives_the_same_layer_whatever_its_mtimes_and_creation_order() {
    let (_dir, store) = store();
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    make_tree(
        first.path(),
        false,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1),
    );
    make_tree(second.path(), true, SystemTime::now());

    let one = tree_layer(&store, first.path());
    let two = tree_layer(&store, second.path());

    assert_eq!(one, two);
    let (_other_dir, other_store) = self::store();
    assert_eq!(tree_layer(&other_store, first.path()), one);
    fs::write(second.path().join("README"), "changed\n").unwrap();
    assert_ne!(tree_layer(&store, second.path()).digest, one.digest);
}

#[test]
fn the_layer_is_stored_under_its_digest_and_lists_its_tar_as_diff_id() {
    let (_dir, store) = store();
    let mut builder = LayerBuilder::new();
    builder.add_bytes("etc/hostname", "app\n", 0o644).unwrap();

    let layer = builder.write(&store).unwrap();

    assert_eq!(store.size(&layer.digest).unwrap(), layer.size);
    let mut tar = Vec::new();
    GzDecoder::new(store.open_blob(&layer.digest).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(layer.diff_id, Digest::of(&tar));
    assert_eq!(
        layer.media_type(),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let leftovers: Vec<_> = fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn what_unpacks_is_what_was_added() {
    let (_dir, store) = store();
    let src = tempfile::tempdir().unwrap();
    let s = |path: &str| src.path().join(path);
    make_tree(src.path(), false, SystemTime::now());
    fs::write(s("bin/suid"), "suid").unwrap();
    fs::set_permissions(s("bin/suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(s("lib/data.txt"), s("lib/hard")).unwrap();
    symlink("/usr/bin/python3", s("bin/python")).unwrap();
    let long_name = format!("{}.txt", "n".repeat(146));
    fs::write(s(&format!("lib/{long_name}")), "long").unwrap();
    let long_target = format!("../lib/{long_name}");
    symlink(&long_target, s("bin/long")).unwrap();
    fs::create_dir_all(s("cache/sub")).unwrap();
    fs::write(s("cache/sub/big"), "excluded").unwrap();
    let _socket = UnixListener::bind(s("app.sock")).unwrap();

    let mut builder = LayerBuilder::new();
    builder
        .add_tree("app", src.path(), |relative| relative == Path::new("cache"))
        .unwrap();
    builder
        .add_bytes("etc/passwd", "root:x:0:0::/:/bin/false\n", 0o644)
        .unwrap();
    builder.add_symlink("lib", "usr/lib").unwrap();
    builder.add_dir("tmp", 0o1777).unwrap();
    builder.add_path("usr/bin/true", "/usr/bin/true").unwrap();
    let layer = builder.write(&store).unwrap();
    let out = unpack(&store, &layer);
    let o = |path: &str| out.path().join(path);

    assert_eq!(fs::read_to_string(o("app/bin/run")).unwrap(), "#!/bin/sh\n");
    assert_eq!(mode(&o("app/bin/run")), 0o755);
    assert_eq!(mode(&o("app/lib/more/deeper.txt")), 0o600);
    assert_eq!(mode(&o("app/bin/suid")), 0o755, "setuid is stripped");
    assert_eq!(
        fs::read_link(o("app/lib/link")).unwrap(),
        Path::new("data.txt")
    );
    assert_eq!(
        fs::read_link(o("app/bin/python")).unwrap(),
        Path::new("/usr/bin/python3")
    );
    assert_eq!(
        fs::read_link(o("app/bin/long")).unwrap(),
        Path::new(&long_target)
    );
    assert_eq!(
        fs::read_to_string(o(&format!("app/lib/{long_name}"))).unwrap(),
        "long"
    );
    assert!(format!("app/lib/{long_name}").len() > 150);
    assert!(o("app/empty").is_dir());
    assert_eq!(fs::read_dir(o("app/empty")).unwrap().count(), 0);
    assert_eq!(fs::read_to_string(o("app/lib/hard")).unwrap(), "data\n");
    assert_eq!(
        fs::metadata(o("app/lib/hard")).unwrap().nlink(),
        1,
        "hard links are copies"
    );
    assert!(!o("app/cache").exists(), "excluded subtrees are left out");
    assert!(!o("app/app.sock").exists(), "sockets are skipped");
    assert_eq!(fs::read_link(o("lib")).unwrap(), Path::new("usr/lib"));
    assert_eq!(mode(&o("etc")), 0o755, "implicit parents are 0755");
    assert_eq!(mode(&o("tmp")), 0o777);
    assert_eq!(
        fs::read(o("usr/bin/true")).unwrap(),
        fs::read("/usr/bin/true").unwrap()
    );
    assert_eq!(mode(&o("usr/bin/true")), 0o755);

    let listed = listing(&store, &layer);
    let paths: Vec<&str> = listed.iter().map(|l| l.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_by(|a, b| Path::new(a).cmp(Path::new(b)));
    assert_eq!(paths, sorted, "sorted, each directory before its contents");
    assert_eq!(paths[..3], ["app", "app/README", "app/bin"]);
    for entry in &listed {
        assert_eq!(entry.owner, (0, 0), "{entry:?}");
        assert_eq!(
            entry.names,
            (Some(Vec::new()), Some(Vec::new())),
            "{entry:?}"
        );
        assert_eq!(entry.mtime, LAYER_MTIME, "{entry:?}");
        assert_ne!(entry.kind, tar::EntryType::Link, "{entry:?}");
    }
}

#[test]
fn bad_image_paths_are_refused() {
    let mut builder = LayerBuilder::new();
    for bad in [
        "",
        "/usr/bin",
        "../etc",
        "usr/../../etc",
        "a//b",
        "a/./b",
        "a/",
        ".",
    ] {
        let err = builder.add_bytes(bad, "x", 0o644).unwrap_err();
        assert!(matches!(err, LayerError::BadPath { .. }), "{bad:?}: {err}");
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    assert!(builder.add_tree("..", "/usr/bin", |_| false).is_err());
    assert!(builder.add_path("/etc/passwd", "/etc/passwd").is_err());
    assert!(builder.is_empty());
}

#[test]
fn adding_a_path_again_replaces_it_unless_that_breaks_the_tree() {
    let (_dir, store) = store();
    let mut builder = LayerBuilder::new();
    builder.add_bytes("etc/motd", "first", 0o644).unwrap();
    builder.add_bytes("etc/motd", "second", 0o600).unwrap();
    builder.add_symlink("lib", "usr/lib").unwrap();
    builder.add_bytes("dir/file", "x", 0o644).unwrap();

    let below_link = builder.add_bytes("lib/libc.so.6", "x", 0o644).unwrap_err();
    let over_dir = builder.add_bytes("dir", "x", 0o644).unwrap_err();
    builder.add_dir("dir", 0o700).unwrap();

    assert!(
        matches!(below_link, LayerError::ParentNotDirectory { .. }),
        "{below_link}"
    );
    assert!(
        matches!(over_dir, LayerError::ReplacesDirectory { .. }),
        "{over_dir}"
    );
    assert_eq!(builder.len(), 5);
    let out = unpack(&store, &builder.write(&store).unwrap());
    assert_eq!(
        fs::read_to_string(out.path().join("etc/motd")).unwrap(),
        "second"
    );
    assert_eq!(mode(&out.path().join("etc/motd")), 0o600);
    assert_eq!(mode(&out.path().join("dir")), 0o700);
}

#[test]
fn an_empty_layer_is_a_valid_tarball() {
    let (_dir, store) = store();
    let layer = LayerBuilder::new().write(&store).unwrap();
    assert!(listing(&store, &layer).is_empty());
    assert!(store.has(&layer.digest));
}
