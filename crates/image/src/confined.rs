//! Filesystem checks that keep every write inside the layer root and off symlinks.
//!
//! The destination is private to the unpacker while it runs, so checking each existing path
//! component with `symlink_metadata` before writing is enough: nothing else changes it between
//! the check and the write. Final components are created with `O_CREAT|O_EXCL|O_NOFOLLOW`,
//! `mknod`, `symlink` or `linkat`, none of which follow a symlink.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, lchown};
use std::path::{Path, PathBuf};

use crate::path::LayerPath;
use crate::refusal::{Failure, LinkProblem, Refusal};

/// What stands at a path inside the root, seen without following symlinks.
enum Existing {
    Nothing,
    Dir,
    Other,
}

/// The layer root plus the owner given to directories created implicitly.
pub(crate) struct Confined<'a> {
    pub(crate) root: &'a Path,
    pub(crate) implicit_owner: (u32, u32),
}

impl Confined<'_> {
    /// Makes every parent of `path` a real directory, creating missing ones (0755, owned by the
    /// shifted root), and refuses to go through a symlink or a non-directory.
    pub(crate) fn prepare_parents(&self, path: &LayerPath) -> Result<PathBuf, Failure> {
        let mut current = self.root.to_path_buf();
        let parents = path.parent();
        for (i, component) in parents.components().enumerate() {
            current.push(component);
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    let component = path.prefix(i + 1).to_string();
                    return Err(Refusal::ThroughSymlink { component }.into());
                }
                Ok(_) => {
                    let component = path.prefix(i + 1).to_string();
                    return Err(Refusal::ParentNotDirectory { component }.into());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    DirBuilder::new().mode(0o755).create(&current)?;
                    let (uid, gid) = self.implicit_owner;
                    lchown(&current, Some(uid), Some(gid))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(path.under(self.root))
    }

    /// Clears the way for a new entry at `full`: an existing directory is kept when the new
    /// entry is a directory too; anything else there is removed (`remove_dir_all` does not
    /// follow symlinks). Returns whether a directory was kept.
    pub(crate) fn clear(&self, full: &Path, keep_dir: bool) -> Result<bool, Failure> {
        match existing(full)? {
            Existing::Nothing => Ok(false),
            Existing::Dir if keep_dir => Ok(true),
            Existing::Dir => {
                fs::remove_dir_all(full)?;
                Ok(false)
            }
            Existing::Other => {
                fs::remove_file(full)?;
                Ok(false)
            }
        }
    }

    /// Whether something already exists at `full` (after `prepare_parents`).
    pub(crate) fn exists(&self, full: &Path) -> Result<bool, Failure> {
        Ok(!matches!(existing(full)?, Existing::Nothing))
    }

    /// Checks that a hard link target names an earlier regular file of this layer, reached
    /// without crossing a symlink, and returns its full path.
    pub(crate) fn link_target(&self, target: &LayerPath) -> Result<PathBuf, LinkProblem> {
        let mut current = self.root.to_path_buf();
        let count = target.components().count();
        for (i, component) in target.components().enumerate() {
            current.push(component);
            let meta = match fs::symlink_metadata(&current) {
                Ok(meta) => meta,
                Err(_) => return Err(LinkProblem::Missing),
            };
            let last = i + 1 == count;
            if meta.file_type().is_symlink() {
                return Err(if last {
                    LinkProblem::Symlink
                } else {
                    let component = target.prefix(i + 1).to_string();
                    LinkProblem::ThroughSymlink { component }
                });
            }
            if last && !meta.is_file() {
                return Err(LinkProblem::NotRegularFile);
            }
            if !last && !meta.is_dir() {
                return Err(LinkProblem::Missing);
            }
        }
        if target.is_root() {
            return Err(LinkProblem::NotRegularFile);
        }
        Ok(current)
    }

    /// Whether `path` is still a directory reached without symlinks; used before touching a
    /// directory again after later entries may have replaced one of its parents.
    pub(crate) fn is_plain_dir(&self, path: &LayerPath) -> bool {
        let mut current = self.root.to_path_buf();
        path.components().all(|component| {
            current.push(component);
            fs::symlink_metadata(&current).is_ok_and(|meta| meta.is_dir())
        })
    }
}

fn existing(full: &Path) -> io::Result<Existing> {
    match fs::symlink_metadata(full) {
        Ok(meta) if meta.is_dir() => Ok(Existing::Dir),
        Ok(_) => Ok(Existing::Other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::Nothing),
        Err(e) => Err(e),
    }
}
