//! Unpacked layers cached on disk once per (digest, id shift), each appearing atomically.

use std::collections::HashSet;
use std::fs::{self, Permissions};
use std::io::{self, BufReader};
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::digest::{Digest, HashingReader};
use crate::limits::UnpackOptions;
use crate::refusal::UnpackError;
use crate::store::{BlobStore, StoreError, TEMP_GRACE, touch};
use crate::sys;
use crate::unpack::{Compression, unpack_layer};

const TEMP_PREFIX: &str = ".tmp-";

/// Errors from the layer cache; each names the layer or path involved.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {digest} could not be read from the blob store: {source}")]
    Blob { digest: Digest, source: StoreError },
    #[error("layer {digest} could not be unpacked: {source}")]
    Unpack { digest: Digest, source: UnpackError },
    #[error("layer {digest} is corrupt in the blob store: its content hashes to {actual}")]
    Corrupt { digest: Digest, actual: Digest },
    #[error("layer cache i/o on {path:?} failed: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What [`LayerCache::remove_unused`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveStats {
    pub removed_layers: u64,
    pub removed_temp_dirs: u64,
    pub kept_layers: u64,
}

/// A directory of unpacked layers, `<root>/<hex>-<id shift>`, shared by every instance that
/// uses the layer with the same id shift.
#[derive(Debug, Clone)]
pub struct LayerCache {
    root: PathBuf,
}

impl LayerCache {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, LayerError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io_at(&root))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the layer unpacked with `id_shift` lives (or would live).
    pub fn path(&self, digest: &Digest, id_shift: u32) -> PathBuf {
        self.root.join(format!("{}-{id_shift}", digest.hex()))
    }

    /// Returns the unpacked layer, unpacking the blob first if needed. The layer is unpacked
    /// into a temporary directory, checked against its digest, flushed to disk and renamed into
    /// place, so a crash never leaves a half-unpacked layer visible.
    pub fn ensure(
        &self,
        blobs: &BlobStore,
        digest: &Digest,
        compression: Compression,
        opts: &UnpackOptions,
    ) -> Result<PathBuf, LayerError> {
        let dir = self.path(digest, opts.id_shift);
        if is_dir(&dir) {
            // Used again: `remove_unused` with a grace period must not take it yet.
            touch(&dir);
            return Ok(dir);
        }
        let blob = blobs.open_blob(digest).map_err(|source| LayerError::Blob {
            digest: digest.clone(),
            source,
        })?;
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir_in(&self.root)
            .map_err(io_at(&self.root))?;
        let shift = Some(opts.id_shift);
        lchown(temp.path(), shift, shift).map_err(io_at(temp.path()))?;
        fs::set_permissions(temp.path(), Permissions::from_mode(0o755))
            .map_err(io_at(temp.path()))?;

        // Hash the blob while unpacking it, so on-disk corruption is caught before use.
        let mut reader = HashingReader::new(BufReader::new(blob));
        let stats =
            unpack_layer(&mut reader, compression, temp.path(), opts).map_err(|source| {
                LayerError::Unpack {
                    digest: digest.clone(),
                    source,
                }
            })?;
        let blob_path = blobs.path(digest);
        io::copy(&mut reader, &mut io::sink()).map_err(io_at(&blob_path))?;
        let (actual, _) = reader.finish();
        if &actual != digest {
            return Err(LayerError::Corrupt {
                digest: digest.clone(),
                actual,
            });
        }
        sys::syncfs(temp.path()).map_err(io_at(temp.path()))?;

        let unpacked = temp.keep();
        if let Err(e) = fs::rename(&unpacked, &dir) {
            let _ = fs::remove_dir_all(&unpacked);
            // Another caller unpacked the same layer first; theirs is as good as ours.
            if is_dir(&dir) {
                return Ok(dir);
            }
            return Err(io_at(&dir)(e));
        }
        sync_dir(&self.root)?;
        tracing::info!(%digest, id_shift = opts.id_shift, ?stats, "unpacked layer");
        Ok(dir)
    }

    /// Every unpacked layer with its id shift, sorted.
    pub fn list(&self) -> Result<Vec<(Digest, u32)>, LayerError> {
        let mut layers = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_at(&self.root))? {
            let entry = entry.map_err(io_at(&self.root))?;
            if let Some(layer) = parse_name(&entry.file_name().to_string_lossy()) {
                layers.push(layer);
            }
        }
        layers.sort();
        Ok(layers)
    }

    /// Removes every unpacked layer whose (digest, id shift) is not in `keep` and that was
    /// neither unpacked nor `ensure`d within `grace`, and temporary directories older than
    /// [`TEMP_GRACE`]. A layer is first renamed to a temporary name, so a crash mid-removal
    /// never leaves a partial layer under its real name.
    pub fn remove_unused(
        &self,
        keep: &HashSet<(Digest, u32)>,
        grace: Duration,
    ) -> Result<RemoveStats, LayerError> {
        let mut stats = RemoveStats::default();
        let now = SystemTime::now();
        for entry in fs::read_dir(&self.root).map_err(io_at(&self.root))? {
            let entry = entry.map_err(io_at(&self.root))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(layer) = parse_name(&name) {
                let modified = fs::symlink_metadata(&path)
                    .and_then(|m| m.modified())
                    .map_err(io_at(&path))?;
                let age = now.duration_since(modified).unwrap_or_default();
                if keep.contains(&layer) || age < grace {
                    stats.kept_layers += 1;
                    continue;
                }
                let trash = tempfile::Builder::new()
                    .prefix(TEMP_PREFIX)
                    .tempdir_in(&self.root)
                    .map_err(io_at(&self.root))?
                    .keep();
                fs::rename(&path, trash.join(&name)).map_err(io_at(&path))?;
                sync_dir(&self.root)?;
                fs::remove_dir_all(&trash).map_err(io_at(&trash))?;
                stats.removed_layers += 1;
            } else if name.starts_with(TEMP_PREFIX) {
                let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
                let modified = meta.modified().map_err(io_at(&path))?;
                if now.duration_since(modified).unwrap_or_default() >= TEMP_GRACE {
                    let removed = if meta.is_dir() {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                    removed.map_err(io_at(&path))?;
                    stats.removed_temp_dirs += 1;
                }
            }
        }
        tracing::info!(?stats, "removed unused layers");
        Ok(stats)
    }
}

fn parse_name(name: &str) -> Option<(Digest, u32)> {
    let (hex, shift) = name.split_once('-')?;
    Some((Digest::from_hex(hex).ok()?, shift.parse().ok()?))
}

fn is_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir())
}

fn sync_dir(dir: &Path) -> Result<(), LayerError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}
