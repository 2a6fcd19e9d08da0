//! Layer entry paths, normalised and checked before anything touches the disk.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a path from a layer cannot name anything inside the layer root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    #[error("escapes the layer root: absolute paths are not allowed")]
    Absolute,
    #[error("escapes the layer root: \"..\" is not allowed")]
    ParentComponent,
}

/// A path inside a layer: relative, with no `.`, `..` or empty components.
/// The empty path is the layer root.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct LayerPath {
    components: Vec<Vec<u8>>,
}

impl LayerPath {
    /// Normalises `./` prefixes, repeated and trailing slashes; refuses absolute paths and `..`.
    pub(crate) fn parse(raw: &[u8]) -> Result<Self, PathProblem> {
        if raw.first() == Some(&b'/') {
            return Err(PathProblem::Absolute);
        }
        let mut components = Vec::new();
        for component in raw.split(|&b| b == b'/') {
            match component {
                b"" | b"." => {}
                b".." => return Err(PathProblem::ParentComponent),
                name => components.push(name.to_vec()),
            }
        }
        Ok(Self { components })
    }

    pub(crate) fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    pub(crate) fn file_name(&self) -> Option<&[u8]> {
        self.components.last().map(Vec::as_slice)
    }

    pub(crate) fn parent(&self) -> Self {
        let mut components = self.components.clone();
        components.pop();
        Self { components }
    }

    /// The path `name` next to this one; `name` must be a plain file name.
    pub(crate) fn sibling(&self, name: &[u8]) -> Result<Self, PathProblem> {
        match name {
            b"" | b"." | b".." => Err(PathProblem::ParentComponent),
            _ if name.contains(&b'/') => Err(PathProblem::ParentComponent),
            _ => {
                let mut sibling = self.parent();
                sibling.components.push(name.to_vec());
                Ok(sibling)
            }
        }
    }

    pub(crate) fn components(&self) -> impl Iterator<Item = &OsStr> {
        self.components.iter().map(|c| OsStr::from_bytes(c))
    }

    /// The first `n` components, for naming a parent in an error.
    pub(crate) fn prefix(&self, n: usize) -> Self {
        Self {
            components: self.components[..n].to_vec(),
        }
    }

    pub(crate) fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        path.extend(self.components());
        path
    }
}

impl fmt::Display for LayerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = self.components.join(&b'/');
        f.write_str(&String::from_utf8_lossy(&joined))
    }
}

impl fmt::Debug for LayerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_prefixes_and_extra_slashes_are_normalised() {
        assert_eq!(
            LayerPath::parse(b"./a//b/./c/").unwrap().to_string(),
            "a/b/c"
        );
        assert!(LayerPath::parse(b"./").unwrap().is_root());
    }

    #[test]
    fn absolute_paths_and_parent_components_are_refused() {
        assert_eq!(LayerPath::parse(b"/etc/passwd"), Err(PathProblem::Absolute));
        assert_eq!(
            LayerPath::parse(b"a/../../b"),
            Err(PathProblem::ParentComponent)
        );
        assert_eq!(LayerPath::parse(b".."), Err(PathProblem::ParentComponent));
    }

    #[test]
    fn siblings_must_be_plain_names() {
        let path = LayerPath::parse(b"a/.wh.b").unwrap();
        assert_eq!(path.sibling(b"b").unwrap().to_string(), "a/b");
        assert!(path.sibling(b"..").is_err());
        assert!(path.sibling(b".").is_err());
        assert!(path.sibling(b"").is_err());
    }
}
