//! An instance's root filesystem: its image's unpacked layers, read-only, joined by overlayfs
//! with a private upper dir (runc makes its mount points there before the root is made
//! read-only).

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use crate::sys;

/// The most of an overlay's options the kernel reads: one page.
const MAX_OPTIONS: usize = 4095;

/// Why an overlay root could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(
        "the image has too many layers ({layers}) for one overlay mount; flatten it to fewer layers"
    )]
    TooManyLayers { layers: usize },
    #[error("path {} cannot be used in an overlay mount (it holds ':' or ',')", path.display())]
    BadPath { path: PathBuf },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The overlay mount options for `layers` (bottom first) under `upper` and `work`.
pub fn overlay_options(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
) -> Result<String, RootfsError> {
    for path in layers.iter().map(PathBuf::as_path).chain([upper, work]) {
        let text = path.to_string_lossy();
        if text.contains([':', ',']) {
            return Err(RootfsError::BadPath {
                path: path.to_owned(),
            });
        }
    }
    // overlayfs lists the lower dirs top first.
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if options.len() > MAX_OPTIONS {
        return Err(RootfsError::TooManyLayers {
            layers: layers.len(),
        });
    }
    Ok(options)
}

/// Mounts `layers` (bottom first, at least one) at `target`, with `upper` and `work` owned
/// by `root_id` (the host id of the container's root), unless something is mounted there
/// already: a root prepared by an earlier start is used again.
pub fn mount(
    layers: &[PathBuf],
    overlay_dir: &Path,
    target: &Path,
    root_id: u32,
) -> Result<(), RootfsError> {
    if is_mounted(target) {
        return Ok(());
    }
    let upper = overlay_dir.join("upper");
    let work = overlay_dir.join("work");
    for dir in [&upper, &work, &target.to_path_buf()] {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    }
    lchown(&upper, Some(root_id), Some(root_id)).map_err(io_err("chown", &upper))?;
    fs::set_permissions(&upper, fs::Permissions::from_mode(0o755))
        .map_err(io_err("chmod", &upper))?;
    let options = overlay_options(layers, &upper, &work)?;
    sys::mount_overlay(target, &options).map_err(io_err("mount an overlay at", target))
}

/// Unmounts the root at `target` if it is mounted.
pub fn unmount(target: &Path) -> Result<(), RootfsError> {
    sys::unmount(target).map_err(io_err("unmount", target))
}

/// Whether something is mounted exactly at `target`, per `/proc/self/mountinfo`.
pub fn is_mounted(target: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = escape_mount_path(&target.to_string_lossy());
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|point| point == wanted)
}

/// Mount points in mountinfo have space, tab, newline and backslash written as octal escapes.
fn escape_mount_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_the_lower_dirs_top_first() {
        let layers = [PathBuf::from("/l/base"), PathBuf::from("/l/app")];
        let options = overlay_options(&layers, Path::new("/i/up"), Path::new("/i/work")).unwrap();
        assert_eq!(
            options,
            "lowerdir=/l/app:/l/base,upperdir=/i/up,workdir=/i/work"
        );
    }

    #[test]
    fn paths_that_would_split_the_options_and_too_many_layers_are_refused() {
        let bad = [PathBuf::from("/l/a:b")];
        let err = overlay_options(&bad, Path::new("/u"), Path::new("/w")).unwrap_err();
        assert!(matches!(err, RootfsError::BadPath { .. }), "{err}");
        let many: Vec<PathBuf> = (0..200)
            .map(|i| PathBuf::from(format!("/var/lib/spread/layers/{i:064}-1073741824")))
            .collect();
        let err = overlay_options(&many, Path::new("/u"), Path::new("/w")).unwrap_err();
        assert!(err.to_string().contains("too many layers (200)"), "{err}");
    }

    #[test]
    fn mount_points_are_matched_with_mountinfo_escapes() {
        assert_eq!(escape_mount_path("/a b\\c"), "/a\\040b\\134c");
        assert!(is_mounted(Path::new("/proc")));
        assert!(!is_mounted(Path::new("/proc/self")));
    }
}
