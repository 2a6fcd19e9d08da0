//! Shared test helpers: a raw tar builder that writes any path, and a sandbox around `dest`.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression as Level;
use flate2::write::GzEncoder;
use spread_image::{Compression, UnpackError, UnpackOptions, UnpackStats, unpack_layer};
use tar::{EntryType, Header};

/// One tar entry described field by field; paths and link names go into the raw header bytes,
/// so absolute paths and `..` (which `tar::Builder` refuses) can be written.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: EntryType,
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub data: Vec<u8>,
}

impl Entry {
    pub fn new(kind: EntryType, path: impl AsRef<[u8]>) -> Self {
        Self {
            path: path.as_ref().to_vec(),
            kind,
            link: Vec::new(),
            mode: if kind == EntryType::Directory {
                0o755
            } else {
                0o644
            },
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            data: Vec::new(),
        }
    }

    pub fn file(path: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Self {
        Self {
            data: data.as_ref().to_vec(),
            ..Self::new(EntryType::Regular, path)
        }
    }

    pub fn dir(path: impl AsRef<[u8]>) -> Self {
        Self::new(EntryType::Directory, path)
    }

    pub fn symlink(path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        Self {
            link: target.as_ref().to_vec(),
            ..Self::new(EntryType::Symlink, path)
        }
    }

    pub fn hard_link(path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        Self {
            link: target.as_ref().to_vec(),
            ..Self::new(EntryType::Link, path)
        }
    }

    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }
}

/// Builds an uncompressed tarball from entries.
pub fn tarball(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        builder.append(&header(entry), &entry.data[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn header(entry: &Entry) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry.kind);
    let old = header.as_old_mut();
    old.name[..entry.path.len()].copy_from_slice(&entry.path);
    old.linkname[..entry.link.len()].copy_from_slice(&entry.link);
    header.set_size(entry.data.len() as u64);
    header.set_mode(entry.mode);
    header.set_uid(entry.uid);
    header.set_gid(entry.gid);
    header.set_mtime(entry.mtime);
    header.set_cksum();
    header
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Level::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A fresh temporary directory holding `dest`, so writes outside `dest` can be detected.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub dest: PathBuf,
}

impl Sandbox {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("dest");
        fs::create_dir(&dest).unwrap();
        Self { tmp, dest }
    }

    /// A path next to `dest`, where an attack would like to write.
    pub fn outside(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn unpack(&self, tar: &[u8]) -> Result<UnpackStats, UnpackError> {
        self.unpack_with(tar, Compression::None, &UnpackOptions::default())
    }

    pub fn unpack_with(
        &self,
        layer: &[u8],
        compression: Compression,
        opts: &UnpackOptions,
    ) -> Result<UnpackStats, UnpackError> {
        unpack_layer(layer, compression, &self.dest, opts)
    }

    /// Asserts the sandbox holds nothing but `dest` and the named files the test put there.
    pub fn assert_nothing_outside_dest(&self, expected_extras: &[&str]) {
        let names: BTreeSet<String> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut expected: BTreeSet<String> =
            expected_extras.iter().map(|s| s.to_string()).collect();
        expected.insert("dest".into());
        assert_eq!(names, expected, "something was written next to dest");
    }
}

/// The rule an unpack error reports, panicking with the message if it is not a refusal.
pub fn refusal(
    result: Result<UnpackStats, UnpackError>,
) -> (String, spread_image::Refusal, String) {
    match result {
        Err(err @ UnpackError::Refused { .. }) => {
            let message = err.to_string();
            let UnpackError::Refused { path, rule } = err else {
                unreachable!()
            };
            (path, rule, message)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// `path` relative to the filesystem root, for building paths that reach it through `/`.
pub fn without_root(path: &Path) -> String {
    path.to_str().unwrap().trim_start_matches('/').to_owned()
}

/// One PAX extended-header record, `"<len> <key>=<value>\n"`, where `<len>` counts itself.
pub fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}
