//! Safe unpacking of one OCI layer tarball into a directory usable as an overlayfs lower dir.

use std::ffi::OsStr;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, fchown, lchown, symlink};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use flate2::read::GzDecoder;
use tar::EntryType;

use crate::confined::Confined;
use crate::limits::{Budget, Budgeted, MAX_HEADER_BYTES, Overrun, UnpackOptions};
use crate::path::LayerPath;
use crate::refusal::{Failure, LinkProblem, Refusal, UnpackError};
use crate::{sys, whiteout};

/// Mtimes are clamped to the end of year 9999 so they fit every clock API.
const MAX_MTIME: u64 = 253_402_300_799;
/// Ids at or above this cannot be shifted: they would leave the 65536-id range mapped per node.
const ID_RANGE: u64 = 65536;

/// How the layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
}

/// What an unpack created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hard_links: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

/// Unpacks a layer into `dest`, an existing directory private to the caller.
///
/// Refuses absolute paths, `..`, writes through symlinks, hard links leaving the layer,
/// device nodes and FIFOs; strips setuid, setgid and sticky bits; shifts ownership by
/// `opts.id_shift`; turns OCI whiteouts into overlayfs markers. On error `dest` may hold part of
/// the layer and should be discarded.
pub fn unpack_layer(
    reader: impl Read,
    compression: Compression,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    match compression {
        Compression::None => unpack_tar(reader, dest, opts),
        Compression::Gzip => unpack_tar(GzDecoder::new(reader), dest, opts),
    }
}

fn unpack_tar(
    reader: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let budget = Budget::new(opts);
    let mut archive = tar::Archive::new(Budgeted {
        inner: reader,
        budget: &budget,
    });
    let mut unpacker = Unpacker {
        budget: &budget,
        previous: None,
        confined: Confined {
            root: dest,
            implicit_owner: (opts.id_shift, opts.id_shift),
        },
        opts,
        stats: UnpackStats::default(),
        dirs: Vec::new(),
    };
    let result = unpacker.run(&mut archive);
    match result {
        Err(e) => Err(match budget.overrun() {
            Some(Overrun::Stream) => UnpackError::StreamTooLarge {
                limit: opts.stream_limit(),
            },
            Some(Overrun::Headers) => UnpackError::HeadersTooLarge {
                after: unpacker.previous,
                limit: MAX_HEADER_BYTES,
            },
            None => e,
        }),
        Ok(()) => {
            tracing::debug!(dest = %dest.display(), stats = ?unpacker.stats, "unpacked layer");
            Ok(unpacker.stats)
        }
    }
}

struct Unpacker<'a> {
    budget: &'a Budget,
    /// The path of the last entry seen, to say where oversized headers were found.
    previous: Option<String>,
    confined: Confined<'a>,
    opts: &'a UnpackOptions,
    stats: UnpackStats,
    /// Directories and their mtimes, set last because later entries change them.
    dirs: Vec<(LayerPath, u64)>,
}

impl Unpacker<'_> {
    fn run<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<(), UnpackError> {
        for entry in archive.entries().map_err(UnpackError::Malformed)? {
            let mut entry = entry.map_err(UnpackError::Malformed)?;
            self.stats.entries += 1;
            self.budget.next_window(entry.size());
            let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            self.previous = Some(shown.clone());
            self.entry(&mut entry)
                .map_err(|failure| failure.at(shown))?;
        }
        for (path, mtime) in self.dirs.iter().rev() {
            // A later entry may have replaced a parent with a symlink; never touch through it.
            if self.confined.is_plain_dir(path) {
                sys::set_mtime_nofollow(&path.under(self.confined.root), clamp(*mtime))
                    .map_err(|e| Failure::from(e).at(path.to_string()))?;
            }
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), Failure> {
        if self.stats.entries > self.opts.max_entries {
            return Err(Refusal::TooManyEntries {
                max: self.opts.max_entries,
            }
            .into());
        }
        let header = entry.header();
        let kind = header.entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let path = LayerPath::parse(&entry.path_bytes())?;
        let owner = (
            self.shift("uid", header.uid()?)?,
            self.shift("gid", header.gid()?)?,
        );
        let mode = header.mode()? & 0o777;
        let mtime = header.mtime()?;
        if let Some(marker) = path.file_name().and_then(whiteout::classify) {
            return self.whiteout(&path, marker);
        }
        if path.is_root() {
            return match kind {
                EntryType::Directory => Ok(()),
                _ => Err(Refusal::ReplacesRoot.into()),
            };
        }
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                self.file(entry, &path, owner, mode, mtime)
            }
            EntryType::Directory => self.dir(&path, owner, mode, mtime),
            EntryType::Symlink => self.symlink(entry, &path, owner, mtime),
            EntryType::Link => self.hard_link(entry, &path),
            EntryType::Char => Err(Refusal::DeviceNode { kind: "character" }.into()),
            EntryType::Block => Err(Refusal::DeviceNode { kind: "block" }.into()),
            EntryType::Fifo => Err(Refusal::Fifo.into()),
            other => Err(Refusal::UnsupportedType {
                kind: format!("{other:?} ({:?})", char::from(other.as_byte())),
            }
            .into()),
        }
    }

    fn shift(&self, which: &'static str, id: u64) -> Result<u32, Refusal> {
        if id >= ID_RANGE {
            return Err(Refusal::IdOutOfRange { which, id });
        }
        let shift = self.opts.id_shift;
        (id as u32)
            .checked_add(shift)
            .ok_or(Refusal::IdShiftOverflow { which, id, shift })
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &LayerPath,
        (uid, gid): (u32, u32),
        mode: u32,
        mtime: u64,
    ) -> Result<(), Failure> {
        let size = entry.size();
        let max = self.opts.max_file_bytes;
        if size > max {
            return Err(Refusal::FileTooLarge { size, max }.into());
        }
        let total = self.stats.bytes.saturating_add(size);
        if total > self.opts.max_total_bytes {
            return Err(Refusal::LayerTooLarge {
                max: self.opts.max_total_bytes,
            }
            .into());
        }
        let full = self.confined.prepare_parents(path)?;
        self.confined.clear(&full, false)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&full)?;
        let copied = io::copy(&mut entry.take(size), &mut file)?;
        if copied != size {
            let msg = format!("the stream ended after {copied} of {size} bytes");
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg).into());
        }
        fchown(&file, Some(uid), Some(gid))?;
        file.set_permissions(Permissions::from_mode(mode))?;
        file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime.min(MAX_MTIME)))?;
        self.stats.files += 1;
        self.stats.bytes = total;
        Ok(())
    }

    fn dir(
        &mut self,
        path: &LayerPath,
        (uid, gid): (u32, u32),
        mode: u32,
        mtime: u64,
    ) -> Result<(), Failure> {
        let full = self.confined.prepare_parents(path)?;
        if !self.confined.clear(&full, true)? {
            DirBuilder::new().mode(0o700).create(&full)?;
        }
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&full)?;
        fchown(&dir, Some(uid), Some(gid))?;
        dir.set_permissions(Permissions::from_mode(mode))?;
        self.dirs.push((path.clone(), mtime));
        self.stats.dirs += 1;
        Ok(())
    }

    fn symlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        path: &LayerPath,
        (uid, gid): (u32, u32),
        mtime: u64,
    ) -> Result<(), Failure> {
        // The target may point anywhere: it is only dangerous if written through, and no write
        // here ever goes through a symlink.
        let target = entry.link_name_bytes().unwrap_or_default();
        if target.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "symlink has no target").into());
        }
        let full = self.confined.prepare_parents(path)?;
        self.confined.clear(&full, false)?;
        symlink(OsStr::from_bytes(&target), &full)?;
        lchown(&full, Some(uid), Some(gid))?;
        sys::set_mtime_nofollow(&full, clamp(mtime))?;
        self.stats.symlinks += 1;
        Ok(())
    }

    fn hard_link<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        path: &LayerPath,
    ) -> Result<(), Failure> {
        let raw = entry.link_name_bytes().unwrap_or_default();
        let refuse = |problem: LinkProblem| Refusal::HardLink {
            target: String::from_utf8_lossy(&raw).into_owned(),
            problem,
        };
        let target = LayerPath::parse(&raw).map_err(|p| refuse(p.into()))?;
        if &target == path {
            return Err(refuse(LinkProblem::Itself).into());
        }
        let source = self.confined.link_target(&target).map_err(refuse)?;
        let full = self.confined.prepare_parents(path)?;
        self.confined.clear(&full, false)?;
        // linkat without AT_SYMLINK_FOLLOW: links the checked regular file itself.
        std::fs::hard_link(&source, &full)?;
        self.stats.hard_links += 1;
        Ok(())
    }

    fn whiteout(
        &mut self,
        path: &LayerPath,
        marker: whiteout::Whiteout<'_>,
    ) -> Result<(), Failure> {
        match marker {
            whiteout::Whiteout::Meta => Ok(()),
            whiteout::Whiteout::Opaque => {
                self.confined.prepare_parents(path)?;
                whiteout::mark_opaque(&path.parent().under(self.confined.root))?;
                self.stats.opaque_dirs += 1;
                Ok(())
            }
            whiteout::Whiteout::Remove(name) => {
                let hidden = path.sibling(name)?;
                let full = self.confined.prepare_parents(&hidden)?;
                // Whiteouts only hide lower layers: an entry of this layer with the same name wins.
                if !self.confined.exists(&full)? {
                    whiteout::create_whiteout(&full)?;
                    let (uid, gid) = self.confined.implicit_owner;
                    lchown(&full, Some(uid), Some(gid))?;
                    self.stats.whiteouts += 1;
                }
                Ok(())
            }
        }
    }
}

fn clamp(mtime: u64) -> i64 {
    mtime.min(MAX_MTIME) as i64
}
