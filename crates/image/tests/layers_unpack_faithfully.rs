//! Ordinary layers unpack with the right contents, modes, shifted owners and overlay markers.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::{Entry, Sandbox, gzip, tarball};
use spread_image::whiteout::{is_opaque, is_whiteout};
use spread_image::{Compression, UnpackOptions, UnpackStats};

const SHIFT: u32 = 100_000;

fn typical_layer() -> Vec<u8> {
    tarball(&[
        Entry::dir("./"),
        Entry::dir("./etc").mode(0o755).mtime(1_600_000_000),
        Entry::file("./etc/hostname", "spread\n").mode(0o644),
        Entry::dir("app").mode(0o750).owner(1000, 1000),
        Entry::file("app/run", "#!/bin/true\n")
            .mode(0o755)
            .owner(1000, 1000)
            .mtime(1_650_000_000),
        Entry::file("app/secret.key", "k")
            .mode(0o600)
            .owner(1000, 1001),
        Entry::symlink("app/current", "run"),
        Entry::symlink("app/passwd", "/etc/passwd"),
        Entry::hard_link("app/run-again", "app/run"),
        Entry::file("implicit/parents/file", "made without directory entries"),
        Entry::file("usr/bin/sudo", "setuid").mode(0o4755),
        Entry::dir("tmp").mode(0o1777),
        Entry::file("dup", "first"),
        Entry::file("dup", "second"),
    ])
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn owner(path: &Path) -> (u32, u32) {
    let meta = fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.gid())
}

#[test]
fn typical_layer_unpacks_with_contents_modes_and_links() {
    let sandbox = Sandbox::new();
    let stats = sandbox.unpack(&typical_layer()).unwrap();
    let dest = &sandbox.dest;
    assert_eq!(
        stats,
        UnpackStats {
            entries: 14,
            files: 7,
            dirs: 3,
            symlinks: 2,
            hard_links: 1,
            whiteouts: 0,
            opaque_dirs: 0,
            bytes: 7 + 12 + 1 + 30 + 6 + 5 + 6,
        }
    );
    assert_eq!(
        fs::read_to_string(dest.join("etc/hostname")).unwrap(),
        "spread\n"
    );
    assert_eq!(
        fs::read_to_string(dest.join("app/run")).unwrap(),
        "#!/bin/true\n"
    );
    assert_eq!(mode(&dest.join("app")), 0o750);
    assert_eq!(mode(&dest.join("app/run")), 0o755);
    assert_eq!(mode(&dest.join("app/secret.key")), 0o600);
    assert_eq!(
        fs::read_link(dest.join("app/current")).unwrap(),
        Path::new("run")
    );
    assert_eq!(
        fs::read_link(dest.join("app/passwd")).unwrap(),
        Path::new("/etc/passwd")
    );
    let run = fs::metadata(dest.join("app/run")).unwrap();
    let again = fs::metadata(dest.join("app/run-again")).unwrap();
    assert_eq!((run.ino(), run.nlink()), (again.ino(), 2));
    assert_eq!(
        fs::read_to_string(dest.join("implicit/parents/file")).unwrap(),
        "made without directory entries"
    );
    assert_eq!(mode(&dest.join("implicit/parents")), 0o755);
    assert_eq!(fs::read_to_string(dest.join("dup")).unwrap(), "second");
    sandbox.assert_nothing_outside_dest(&[]);
}

#[test]
fn setuid_setgid_and_sticky_bits_are_stripped() {
    let sandbox = Sandbox::new();
    sandbox.unpack(&typical_layer()).unwrap();
    assert_eq!(mode(&sandbox.dest.join("usr/bin/sudo")), 0o755);
    assert_eq!(mode(&sandbox.dest.join("tmp")), 0o777);
    let layer = tarball(&[Entry::file("sgid", "x").mode(0o2711)]);
    sandbox.unpack(&layer).unwrap();
    assert_eq!(mode(&sandbox.dest.join("sgid")), 0o711);
}

#[test]
fn ownership_is_shifted_by_the_id_shift() {
    let sandbox = Sandbox::new();
    let opts = UnpackOptions {
        id_shift: SHIFT,
        ..UnpackOptions::default()
    };
    sandbox
        .unpack_with(&typical_layer(), Compression::None, &opts)
        .unwrap();
    let dest = &sandbox.dest;
    assert_eq!(owner(&dest.join("etc/hostname")), (SHIFT, SHIFT));
    assert_eq!(owner(&dest.join("app")), (SHIFT + 1000, SHIFT + 1000));
    assert_eq!(
        owner(&dest.join("app/secret.key")),
        (SHIFT + 1000, SHIFT + 1001)
    );
    assert_eq!(owner(&dest.join("app/current")), (SHIFT, SHIFT));
    assert_eq!(owner(&dest.join("implicit")), (SHIFT, SHIFT));
    assert_eq!(owner(&dest.join("implicit/parents")), (SHIFT, SHIFT));
}

#[test]
fn mtimes_of_files_links_and_directories_are_kept() {
    let sandbox = Sandbox::new();
    sandbox.unpack(&typical_layer()).unwrap();
    let mtime = |p: &str| fs::symlink_metadata(sandbox.dest.join(p)).unwrap().mtime();
    assert_eq!(mtime("app/run"), 1_650_000_000);
    // Set after its file was written, so the write does not bump it.
    assert_eq!(mtime("etc"), 1_600_000_000);
    assert_eq!(mtime("app/current"), 1_700_000_000);
}

#[test]
fn gzip_layer_unpacks_like_the_plain_one() {
    let plain = Sandbox::new();
    let zipped = Sandbox::new();
    let a = plain.unpack(&typical_layer()).unwrap();
    let opts = UnpackOptions::default();
    let b = zipped
        .unpack_with(&gzip(&typical_layer()), Compression::Gzip, &opts)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        fs::read_to_string(zipped.dest.join("app/run")).unwrap(),
        "#!/bin/true\n"
    );
}

#[test]
fn whiteouts_and_opaque_markers_become_overlay_markers() {
    let sandbox = Sandbox::new();
    let layer = tarball(&[
        Entry::dir("etc"),
        Entry::file("etc/.wh.removed.conf", ""),
        Entry::dir("var/cache"),
        Entry::file("var/cache/.wh..wh..opq", ""),
        Entry::file("var/cache/fresh", "new"),
        Entry::file("kept", "this layer's own file"),
        Entry::file(".wh.kept", ""),
        Entry::file(".wh..wh.plnk", ""),
    ]);
    let stats = sandbox.unpack(&layer).unwrap();
    assert_eq!((stats.whiteouts, stats.opaque_dirs), (1, 1));
    let whiteout = sandbox.dest.join("etc/removed.conf");
    let meta = fs::symlink_metadata(&whiteout).unwrap();
    assert!(meta.file_type().is_char_device());
    assert_eq!(meta.rdev(), 0);
    assert!(is_whiteout(&whiteout).unwrap());
    assert!(!sandbox.dest.join("etc/.wh.removed.conf").exists());
    assert!(is_opaque(&sandbox.dest.join("var/cache")).unwrap());
    assert!(!is_opaque(&sandbox.dest.join("var")).unwrap());
    assert!(!sandbox.dest.join("var/cache/.wh..wh..opq").exists());
    assert_eq!(
        fs::read_to_string(sandbox.dest.join("var/cache/fresh")).unwrap(),
        "new"
    );
    // A whiteout only hides lower layers: the same layer's file stays.
    assert_eq!(
        fs::read_to_string(sandbox.dest.join("kept")).unwrap(),
        "this layer's own file"
    );
    assert!(!sandbox.dest.join(".wh..wh.plnk").exists());
    assert!(!sandbox.dest.join("plnk").exists());
}

#[test]
fn later_entries_replace_earlier_ones_of_another_kind() {
    let sandbox = Sandbox::new();
    let layer = tarball(&[
        Entry::dir("x"),
        Entry::file("x/inner", "gone with its directory"),
        Entry::file("x", "now a file"),
        Entry::file("y", "now a directory"),
        Entry::dir("y"),
        Entry::symlink("z", "/"),
        Entry::dir("z"),
        Entry::file("z/inside", "inside the real directory"),
    ]);
    sandbox.unpack(&layer).unwrap();
    assert_eq!(
        fs::read_to_string(sandbox.dest.join("x")).unwrap(),
        "now a file"
    );
    assert!(
        fs::symlink_metadata(sandbox.dest.join("y"))
            .unwrap()
            .is_dir()
    );
    assert!(
        fs::symlink_metadata(sandbox.dest.join("z"))
            .unwrap()
            .is_dir()
    );
    assert!(sandbox.dest.join("z/inside").is_file());
    sandbox.assert_nothing_outside_dest(&[]);
}
