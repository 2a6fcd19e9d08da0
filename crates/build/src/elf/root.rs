//! Paths inside a root filesystem, resolved the way `openat2(RESOLVE_IN_ROOT)` resolves them:
//! symlinks are followed inside the root, an absolute target starts again at the root, and `..`
//! stops there, so nothing outside the root is ever read.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::path::{Component, Path, PathBuf};

use super::ElfError;

/// Symlinks followed in one resolution before giving up, as Linux does (MAXSYMLINKS).
const MAX_LINK_HOPS: usize = 40;

/// A directory standing for `/`, maybe with another one standing for a directory below it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Root<'a> {
    dir: &'a Path,
    /// An absolute in-root directory and the host directory standing for it, like a bind mount.
    mount: Option<(&'a Path, &'a Path)>,
}

/// Where a path inside the root leads.
#[derive(Debug)]
pub(super) struct Resolved {
    /// The entry itself, as an absolute in-root path whose parents are all real directories.
    pub(super) path: PathBuf,
    /// Every symlink followed on the way, in order, as absolute in-root paths.
    pub(super) links: Vec<PathBuf>,
    /// The entry's own metadata (never a symlink's).
    pub(super) meta: Metadata,
}

impl<'a> Root<'a> {
    pub(super) fn new(dir: &'a Path) -> Self {
        Self { dir, mount: None }
    }

    /// `host_dir` stands for the absolute in-root directory `at`, whatever the root holds there.
    pub(super) fn with_mount(self, at: &'a Path, host_dir: &'a Path) -> Self {
        Self {
            mount: Some((at, host_dir)),
            ..self
        }
    }

    pub(super) fn dir(&self) -> &Path {
        self.dir
    }

    /// Where the absolute in-root path `path` is on the host, without resolving anything.
    pub(super) fn host_path(&self, path: &Path) -> PathBuf {
        if let Some((at, host_dir)) = self.mount
            && let Ok(below) = path.strip_prefix(at)
        {
            return host_dir.join(below);
        }
        self.dir.join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Follows `path` (taken as absolute in the root) to the entry it names; `None` when some
    /// component does not exist or is not a directory.
    pub(super) fn resolve(&self, path: &Path) -> Result<Option<Resolved>, ElfError> {
        // Components still to walk, the next one last.
        let mut pending: Vec<OsString> = Vec::new();
        push_components(&mut pending, path);
        let mut current = PathBuf::from("/");
        let mut current_meta = None;
        let mut links = Vec::new();
        while let Some(name) = pending.pop() {
            if name == ".." {
                // The root's parent is the root.
                current.pop();
                current_meta = None;
                continue;
            }
            let candidate = current.join(&name);
            let host = self.host_path(&candidate);
            let meta = match fs::symlink_metadata(&host) {
                Ok(meta) => meta,
                Err(e) if is_absent(&e) => return Ok(None),
                Err(source) => return Err(ElfError::Io { path: host, source }),
            };
            if meta.file_type().is_symlink() {
                if links.len() == MAX_LINK_HOPS {
                    return Err(ElfError::TooManyLinks {
                        path: path.to_owned(),
                        root: self.dir.to_owned(),
                    });
                }
                let target =
                    fs::read_link(&host).map_err(|source| ElfError::Io { path: host, source })?;
                if target.as_os_str().is_empty() {
                    // Linux resolves an empty target to nothing.
                    return Ok(None);
                }
                if target.is_absolute() {
                    current = PathBuf::from("/");
                }
                current_meta = None;
                push_components(&mut pending, &target);
                links.push(candidate);
                continue;
            }
            if !pending.is_empty() && !meta.is_dir() {
                return Ok(None);
            }
            current = candidate;
            current_meta = Some(meta);
        }
        let meta = match current_meta {
            Some(meta) => meta,
            // The path ended at the root or after a `..`: look at where it stands.
            None => {
                let host = self.host_path(&current);
                fs::metadata(&host).map_err(|source| ElfError::Io { path: host, source })?
            }
        };
        Ok(Some(Resolved {
            path: current,
            links,
            meta,
        }))
    }
}

/// Pushes the components of `path` so that the first is popped first; `.` and the root vanish.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let start = pending.len();
    for component in path.components() {
        match component {
            Component::Normal(name) => pending.push(name.to_owned()),
            Component::ParentDir => pending.push("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    pending[start..].reverse();
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}
