//! `DirProject`: a project in a directory on disk, read without following links.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::detect::{MAX_MARKER_BYTES, Project};

/// The project unpacked at `root`. Paths with `..` or a leading `/` are never read.
#[derive(Debug, Clone)]
pub struct DirProject {
    root: PathBuf,
}

impl DirProject {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `root/path` when every component of `path` is a plain name and none of its parents is
    /// a link.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        let relative = Path::new(path);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return None;
        }
        let mut at = self.root.clone();
        for component in relative.components() {
            if let Component::Normal(name) = component {
                if at != self.root && !fs::symlink_metadata(&at).ok()?.is_dir() {
                    return None;
                }
                at.push(name);
            }
        }
        Some(at)
    }

    fn regular_file(&self, path: &str) -> Option<(PathBuf, u64)> {
        let full = self.resolve(path)?;
        let meta = fs::symlink_metadata(&full).ok()?;
        meta.is_file().then_some((full, meta.len()))
    }
}

impl Project for DirProject {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let (full, len) = self.regular_file(path)?;
        if len > MAX_MARKER_BYTES as u64 {
            return None;
        }
        fs::read(full).ok()
    }

    fn head(&self, path: &str, len: usize) -> Option<Vec<u8>> {
        let (full, _) = self.regular_file(path)?;
        let mut head = Vec::with_capacity(len);
        File::open(full)
            .ok()?
            .take(len as u64)
            .read_to_end(&mut head)
            .ok()?;
        Some(head)
    }

    fn is_dir(&self, path: &str) -> bool {
        self.resolve(path)
            .and_then(|full| fs::symlink_metadata(full).ok())
            .is_some_and(|m| m.is_dir())
    }

    fn is_file(&self, path: &str) -> bool {
        self.regular_file(path).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_but_links_and_escapes_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        fs::create_dir_all(root.join("public")).unwrap();
        fs::write(root.join("Procfile"), "web: ./server").unwrap();
        fs::write(root.join("public/index.html"), "hi").unwrap();
        fs::write(dir.path().join("secret"), "outside").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("requirements.txt"))
            .unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        let project = DirProject::new(&root);

        assert_eq!(project.read("Procfile").unwrap(), b"web: ./server");
        assert_eq!(project.head("Procfile", 3).unwrap(), b"web");
        assert!(project.is_dir("public"));
        assert!(project.is_file("public/index.html"));
        for hostile in ["requirements.txt", "up/secret", "../secret", "/etc/passwd"] {
            assert!(project.read(hostile).is_none(), "{hostile}");
            assert!(!project.is_file(hostile), "{hostile}");
        }
        assert!(!project.is_dir("up"));
    }
}
