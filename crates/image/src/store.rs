//! Content-addressed blob store in the OCI image layout (`oci-layout`, `blobs/sha256/<hex>`).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::digest::{Digest, Hasher};

/// Default largest blob accepted by [`BlobStore::put`]: 16 GiB.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 16 << 30;

/// Temporary files younger than this are left alone by [`BlobStore::gc`]: they may belong to
/// a `put` that is still streaming.
pub const TEMP_GRACE: Duration = Duration::from_secs(15 * 60);

const TEMP_PREFIX: &str = ".tmp-";
const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_VERSION: &str = "1.0.0";

/// Errors from the blob store; each names the blob or path involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob {expected} does not match its content: the content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest} is larger than the {limit}-byte limit")]
    TooLarge { digest: Digest, limit: u64 },
    #[error("blob {0} is not in the store")]
    NotFound(Digest),
    #[error("{path:?} is not an OCI image layout version {LAYOUT_VERSION}: {reason}")]
    BadLayout { path: PathBuf, reason: String },
    #[error("blob store i/o on {path:?} failed: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What [`BlobStore::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcStats {
    pub removed_blobs: u64,
    pub removed_bytes: u64,
    pub removed_temp_files: u64,
    pub kept_blobs: u64,
}

/// An OCI image layout directory holding blobs by sha256.
///
/// Blobs appear atomically: they are written to a temporary file in the same directory,
/// verified, fsynced and renamed into place, so a blob path always holds verified content.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    blobs: PathBuf,
    max_blob_bytes: u64,
}

impl BlobStore {
    /// Opens the layout at `root`, creating it (with `oci-layout` and an empty `index.json`)
    /// if it does not exist.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(io_at(&blobs))?;
        let layout = root.join(LAYOUT_FILE);
        match fs::read(&layout) {
            Ok(bytes) => check_layout(&layout, &bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let text = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
                write_atomically(&layout, text.as_bytes())?;
            }
            Err(e) => return Err(io_at(&layout)(e)),
        }
        let index = root.join("index.json");
        if !index.exists() {
            write_atomically(&index, br#"{"schemaVersion":2,"manifests":[]}"#)?;
        }
        Ok(Self {
            root,
            blobs,
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
        })
    }

    /// Sets the largest blob `put` accepts.
    pub fn with_max_blob_bytes(mut self, limit: u64) -> Self {
        self.max_blob_bytes = limit;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob lives (or would live).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Streams `reader` into the store as `expected`, verifying the digest and size limit while
    /// writing. Returns the blob's size. If the blob is already present the reader is not read.
    pub fn put(&self, expected: &Digest, reader: impl Read) -> Result<u64, StoreError> {
        if let Ok(size) = self.size(expected) {
            // Used again: a `gc` with a grace period must not take it before it is referenced.
            touch(&self.path(expected));
            return Ok(size);
        }
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&self.blobs)
            .map_err(io_at(&self.blobs))?;
        let temp_path = temp.path().to_owned();
        let hasher =
            copy_limited(reader, temp.as_file_mut(), self.max_blob_bytes).map_err(|e| match e {
                CopyError::TooLarge => StoreError::TooLarge {
                    digest: expected.clone(),
                    limit: self.max_blob_bytes,
                },
                CopyError::Io(source) => io_at(&temp_path)(source),
            })?;
        let size = hasher.bytes();
        let actual = hasher.finish();
        if &actual != expected {
            // Dropping `temp` deletes the temporary file.
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        let file = temp.as_file();
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io_at(&temp_path))?;
        file.sync_all().map_err(io_at(&temp_path))?;
        let path = self.path(expected);
        temp.persist(&path).map_err(|e| io_at(&path)(e.error))?;
        sync_dir(&self.blobs)?;
        tracing::debug!(digest = %expected, size, "stored blob");
        Ok(size)
    }

    /// Stores `bytes` and returns their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        self.put(&digest, bytes)?;
        Ok(digest)
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| self.not_found_or_io(digest, &path, e))
    }

    pub fn size(&self, digest: &Digest) -> Result<u64, StoreError> {
        let path = self.path(digest);
        let meta =
            fs::symlink_metadata(&path).map_err(|e| self.not_found_or_io(digest, &path, e))?;
        Ok(meta.len())
    }

    /// Every blob in the store, sorted.
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let mut digests = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_at(&self.blobs))? {
            let entry = entry.map_err(io_at(&self.blobs))?;
            if let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                digests.push(digest);
            }
        }
        digests.sort();
        Ok(digests)
    }

    /// Removes a blob; returns whether it was present.
    pub fn remove(&self, digest: &Digest) -> Result<bool, StoreError> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Removes every blob not in `keep` that was neither written nor `put` again within
    /// `grace`, and temporary files older than [`TEMP_GRACE`].
    ///
    /// `grace` protects blobs that are being referenced concurrently (one just pulled whose
    /// release is not yet recorded): it must be longer than a pull takes until its release.
    pub fn gc(&self, keep: &HashSet<Digest>, grace: Duration) -> Result<GcStats, StoreError> {
        let mut stats = GcStats::default();
        let now = SystemTime::now();
        for entry in fs::read_dir(&self.blobs).map_err(io_at(&self.blobs))? {
            let entry = entry.map_err(io_at(&self.blobs))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_at(&path)(e)),
            };
            if let Ok(digest) = Digest::from_hex(&name) {
                let age = now
                    .duration_since(meta.modified().map_err(io_at(&path))?)
                    .unwrap_or_default();
                if keep.contains(&digest) || age < grace {
                    stats.kept_blobs += 1;
                    continue;
                }
                remove_path(&path)?;
                stats.removed_blobs += 1;
                stats.removed_bytes += meta.len();
            } else if name.starts_with(TEMP_PREFIX) {
                let modified = meta.modified().map_err(io_at(&path))?;
                if now.duration_since(modified).unwrap_or_default() >= TEMP_GRACE {
                    remove_path(&path)?;
                    stats.removed_temp_files += 1;
                }
            }
        }
        tracing::info!(?stats, "blob gc finished");
        Ok(stats)
    }

    fn not_found_or_io(&self, digest: &Digest, path: &Path, e: io::Error) -> StoreError {
        if e.kind() == io::ErrorKind::NotFound {
            StoreError::NotFound(digest.clone())
        } else {
            io_at(path)(e)
        }
    }
}

fn check_layout(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let bad = |reason: String| StoreError::BadLayout {
        path: path.to_owned(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("oci-layout is not JSON: {e}")))?;
    match value.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some(LAYOUT_VERSION) => Ok(()),
        other => Err(bad(format!("imageLayoutVersion is {other:?}"))),
    }
}

enum CopyError {
    TooLarge,
    Io(io::Error),
}

/// Copies `reader` into `file`, hashing as it goes and stopping as soon as `limit` is passed.
fn copy_limited(mut reader: impl Read, file: &mut File, limit: u64) -> Result<Hasher, CopyError> {
    let mut hasher = Hasher::default();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Io(e)),
        };
        if hasher.bytes() + n as u64 > limit {
            return Err(CopyError::TooLarge);
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(CopyError::Io)?;
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(io_at(dir))?;
    temp.write_all(bytes).map_err(io_at(path))?;
    temp.as_file().sync_all().map_err(io_at(path))?;
    temp.persist(path).map_err(|e| io_at(path)(e.error))?;
    sync_dir(dir)
}

fn remove_path(path: &Path) -> Result<(), StoreError> {
    let result = if path.is_dir() && !path.is_symlink() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_at(path)(e)),
        _ => Ok(()),
    }
}

/// Makes a rename or unlink in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

/// Sets `path`'s modification time to now; a failure only costs the grace period's protection,
/// so it is logged, not returned.
pub(crate) fn touch(path: &Path) {
    if let Err(e) = File::open(path).and_then(|f| f.set_modified(SystemTime::now())) {
        tracing::warn!(path = %path.display(), error = %e, "could not mark as used");
    }
}
