//! Properties: whatever the tar stream holds, unpacking never panics and never writes outside dest.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::{Entry, gzip, tarball};
use proptest::prelude::*;
use spread_image::{Compression, UnpackOptions, unpack_layer};
use tar::EntryType;

/// Placeholder in generated link targets for an absolute path into the sandbox.
const ABSOLUTE: &str = "<sandbox>";

/// A sandbox with `dest` nested four levels down, so relative symlinks with a few `..` stay
/// inside the sandbox even when followed: any write through them would be seen.
struct Nest {
    tmp: tempfile::TempDir,
    dest: PathBuf,
}

impl Nest {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("d1/d2/d3/dest");
        fs::create_dir_all(&dest).unwrap();
        Self { tmp, dest }
    }

    fn absolute_target(&self) -> String {
        self.tmp.path().join("d1").to_str().unwrap().to_owned()
    }

    /// Every path in the sandbox outside `dest`, walked without following symlinks.
    fn outside_dest(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.tmp.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.starts_with(&self.dest) {
                    continue;
                }
                if fs::symlink_metadata(&path).unwrap().is_dir() {
                    stack.push(path.clone());
                }
                found.push(path.strip_prefix(self.tmp.path()).unwrap().to_path_buf());
            }
        }
        found.sort();
        found
    }

    fn assert_contained(&self) {
        let expected: Vec<PathBuf> = ["d1", "d1/d2", "d1/d2/d3"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(
            self.outside_dest(),
            expected,
            "something was written outside dest"
        );
        assert_tree_is_tame(&self.dest);
    }
}

/// No devices except overlay whiteouts, no FIFOs, no setuid/setgid/sticky bits.
fn assert_tree_is_tame(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        assert!(
            !kind.is_block_device() && !kind.is_fifo() && !kind.is_socket(),
            "{path:?}"
        );
        assert!(
            !kind.is_char_device() || meta.rdev() == 0,
            "{path:?} is a real device"
        );
        if !kind.is_symlink() {
            assert_eq!(meta.mode() & 0o7000, 0, "{path:?} kept special mode bits");
        }
        if kind.is_dir() {
            assert_tree_is_tame(&path);
        }
    }
}

// Refused shapes are rare, because the first refusal ends the layer and hides what follows.
fn component() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        20 => prop::sample::select(vec!["a", "b", "evil"]),
        2 => prop::sample::select(vec![".wh.a", ".wh..wh..opq", ".", ""]),
        1 => Just(".."),
    ]
}

fn entry_path() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.05),
        prop::collection::vec(component(), 1..4),
    )
        .prop_map(|(absolute, parts)| {
            let joined = parts.join("/");
            if absolute {
                format!("/{joined}")
            } else {
                joined
            }
        })
}

fn link_target() -> impl Strategy<Value = String> {
    prop_oneof![
        entry_path(),
        prop::sample::select(vec!["..", "../..", "../a", "a/b", "evil/a", ABSOLUTE])
            .prop_map(str::to_owned),
    ]
}

fn kind() -> impl Strategy<Value = EntryType> {
    prop_oneof![
        20 => prop::sample::select(vec![
            EntryType::Regular,
            EntryType::Directory,
            EntryType::Symlink,
            EntryType::Symlink,
            EntryType::Link,
        ]),
        1 => prop::sample::select(vec![EntryType::Char, EntryType::Fifo]),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        kind(),
        entry_path(),
        link_target(),
        0u32..0o10000,
        prop_oneof![20 => prop::sample::select(vec![0u64, 1000, 65535]), 1 => Just(65536u64)],
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(kind, path, link, mode, uid, data)| {
            let mut entry = Entry::new(kind, path).mode(mode).owner(uid, uid);
            entry.link = link.into_bytes();
            if kind == EntryType::Regular {
                entry.data = data;
            }
            entry
        })
}

fn small_limits() -> UnpackOptions {
    UnpackOptions {
        id_shift: 100_000,
        max_file_bytes: 1 << 16,
        max_total_bytes: 1 << 20,
        max_entries: 64,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn hostile_entry_sequences_never_write_outside_dest(
        entries in prop::collection::vec(entry(), 1..12),
    ) {
        let nest = Nest::new();
        let absolute = nest.absolute_target();
        let entries: Vec<Entry> = entries
            .into_iter()
            .map(|mut e| {
                if e.link == ABSOLUTE.as_bytes() {
                    e.link = absolute.clone().into_bytes();
                }
                e
            })
            .collect();
        let layer = tarball(&entries);
        let _ = unpack_layer(&layer[..], Compression::None, &nest.dest, &small_limits());
        nest.assert_contained();
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_write_outside_dest(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        gzipped in any::<bool>(),
    ) {
        let nest = Nest::new();
        let (layer, compression) =
            if gzipped { (gzip(&bytes), Compression::Gzip) } else { (bytes, Compression::None) };
        let _ = unpack_layer(&layer[..], compression, &nest.dest, &small_limits());
        nest.assert_contained();
    }

    #[test]
    fn corrupted_tarballs_never_panic_or_write_outside_dest(
        entries in prop::collection::vec(entry(), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let nest = Nest::new();
        let mut layer = tarball(&entries);
        for (at, byte) in flips {
            let i = at.index(layer.len());
            layer[i] = byte;
        }
        let _ = unpack_layer(&layer[..], Compression::None, &nest.dest, &small_limits());
        nest.assert_contained();
    }
}
