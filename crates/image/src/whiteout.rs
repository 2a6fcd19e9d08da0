//! OCI whiteout file names and the overlayfs markers they become in an unpacked layer.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::sys;

/// Prefix of an OCI whiteout: `.wh.<name>` hides `<name>` from lower layers.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// An OCI opaque marker: the directory holding it hides everything below it in lower layers.
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory as opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What an entry's file name means as a whiteout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// `.wh..wh..opq`: the containing directory is opaque.
    Opaque,
    /// `.wh.<name>`: `<name>` is deleted.
    Remove(&'a [u8]),
    /// Any other `.wh..wh.` name: aufs bookkeeping with no meaning for overlayfs.
    Meta,
}

/// Classifies a file name; `None` when it is an ordinary name.
pub fn classify(name: &[u8]) -> Option<Whiteout<'_>> {
    if name == OPAQUE_MARKER {
        Some(Whiteout::Opaque)
    } else if name.starts_with(b".wh..wh.") {
        Some(Whiteout::Meta)
    } else {
        name.strip_prefix(WHITEOUT_PREFIX).map(Whiteout::Remove)
    }
}

/// Creates an overlayfs whiteout (a character device 0:0) at `path`.
pub fn create_whiteout(path: &Path) -> io::Result<()> {
    sys::mknod_char(path, 0, 0)
}

/// Marks the directory `dir` opaque for overlayfs.
pub fn mark_opaque(dir: &Path) -> io::Result<()> {
    sys::lsetxattr(dir, OPAQUE_XATTR, b"y")
}

/// Whether `path` is an overlayfs whiteout (a character device 0:0), without following links.
pub fn is_whiteout(path: &Path) -> io::Result<bool> {
    let meta = std::fs::symlink_metadata(path)?;
    Ok(meta.file_type().is_char_device() && meta.rdev() == 0)
}

/// Whether the directory `dir` carries the overlayfs opaque marker.
pub fn is_opaque(dir: &Path) -> io::Result<bool> {
    Ok(sys::lgetxattr(dir, OPAQUE_XATTR)?.as_deref() == Some(b"y"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_as_overlay_markers() {
        assert_eq!(classify(b".wh..wh..opq"), Some(Whiteout::Opaque));
        assert_eq!(classify(b".wh..wh.plnk"), Some(Whiteout::Meta));
        assert_eq!(classify(b".wh.gone"), Some(Whiteout::Remove(b"gone")));
        assert_eq!(classify(b"plain"), None);
    }
}
