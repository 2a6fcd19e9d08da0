//! Packing a project directory into the gzipped tarball `spread deploy` uploads: every file the
//! project's `.gitignore` and `.spreadignore` files do not exclude, never `.git`, in a stable
//! order, with links kept as links (the server refuses any that leave the tree).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

/// The largest upload the server takes by default, compressed.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 512 << 20;

/// What was packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PackStats {
    pub files: u64,
    /// The size of the files' contents, before compression.
    pub content_bytes: u64,
    /// The size of the tarball written.
    pub packed_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error(
        "the packed project is over {}, the upload limit; list large files or directories that the build does not need (build output, data, node_modules) in .spreadignore",
        size(*limit)
    )]
    TooLarge { limit: u64 },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot pack {}: {detail}", path.display())]
    Walk { path: PathBuf, detail: String },
    #[error("cannot write the packed project: {0}")]
    Write(io::Error),
}

/// Writes the tarball of `dir` to `out`, failing once it would exceed `limit` bytes.
pub fn pack(dir: &Path, out: impl Write, limit: u64) -> Result<PackStats, PackError> {
    if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Err(PackError::NotADirectory(dir.to_owned()));
    }
    let counted = Limited {
        inner: out,
        written: 0,
        limit,
    };
    let mut tar = tar::Builder::new(GzEncoder::new(counted, Compression::fast()));
    tar.follow_symlinks(false);
    let mut stats = PackStats::default();
    let walk = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .git_ignore(true)
        .require_git(false)
        .add_custom_ignore_filename(".spreadignore")
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    for entry in walk {
        let entry = entry.map_err(|e| PackError::Walk {
            path: dir.to_owned(),
            detail: e.to_string(),
        })?;
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(dir) else {
            continue;
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let read = |source| PackError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = fs::symlink_metadata(path).map_err(read)?;
        let mut header = tar::Header::new_gnu();
        // Owners mean nothing on the server: the builder owns what it unpacks.
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(
            meta.modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
        );
        let written = if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, relative, io::empty())
        } else if meta.is_symlink() {
            let target = fs::read_link(path).map_err(read)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            tar.append_link(&mut header, relative, target)
        } else if meta.is_file() {
            let executable = meta.permissions().mode() & 0o111 != 0;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if executable { 0o755 } else { 0o644 });
            header.set_size(meta.len());
            stats.files += 1;
            stats.content_bytes += meta.len();
            let file = fs::File::open(path).map_err(read)?;
            tar.append_data(&mut header, relative, file)
        } else {
            // Sockets, fifos and devices are not source code.
            continue;
        };
        written.map_err(|e| write_error(e, limit))?;
    }
    let gz = tar.into_inner().map_err(|e| write_error(e, limit))?;
    let mut counted = gz.finish().map_err(|e| write_error(e, limit))?;
    counted.inner.flush().map_err(PackError::Write)?;
    stats.packed_bytes = counted.written;
    Ok(stats)
}

fn write_error(e: io::Error, limit: u64) -> PackError {
    if e.kind() == io::ErrorKind::FileTooLarge {
        PackError::TooLarge { limit }
    } else {
        PackError::Write(e)
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// Counts what goes through and refuses to go past `limit`.
struct Limited<W> {
    inner: W,
    written: u64,
    limit: u64,
}

impl<W: Write> Write for Limited<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::from(io::ErrorKind::FileTooLarge));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn listing(tarball: &[u8]) -> Vec<(String, char, u32, String)> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let kind = match entry.header().entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                _ => 'f',
            };
            let mode = entry.header().mode().unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut content = String::new();
            if kind == 'l' {
                content = entry.link_name().unwrap().unwrap().display().to_string();
            } else {
                entry.read_to_string(&mut content).unwrap();
            }
            out.push((path, kind, mode, content));
        }
        out
    }

    #[test]
    fn ignored_files_and_git_are_left_out_and_modes_and_links_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, content) in [
            (".gitignore", "*.log\n/build/\n!keep.log\n"),
            (".spreadignore", "data/\n"),
            ("app.py", "print(1)"),
            ("debug.log", "noise"),
            ("keep.log", "kept"),
            ("build/out.bin", "built"),
            ("data/big.csv", "1,2"),
            (".git/HEAD", "ref"),
            ("src/lib/util.py", "x = 1"),
            ("src/lib/.gitignore", "generated.py\n"),
            ("src/lib/generated.py", "gone"),
        ] {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        fs::set_permissions(root.join("app.py"), fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("app.py", root.join("main.py")).unwrap();

        let mut tarball = Vec::new();
        let stats = pack(root, &mut tarball, DEFAULT_MAX_UPLOAD_BYTES).unwrap();
        let paths: Vec<String> = listing(&tarball).iter().map(|e| e.0.clone()).collect();
        assert_eq!(
            paths,
            [
                ".gitignore",
                ".spreadignore",
                "app.py",
                "keep.log",
                "main.py",
                "src",
                "src/lib",
                "src/lib/.gitignore",
                "src/lib/util.py"
            ]
        );
        let entries = listing(&tarball);
        let app = entries.iter().find(|e| e.0 == "app.py").unwrap();
        assert_eq!((app.1, app.2, app.3.as_str()), ('f', 0o755, "print(1)"));
        let link = entries.iter().find(|e| e.0 == "main.py").unwrap();
        assert_eq!((link.1, link.3.as_str()), ('l', "app.py"));
        assert_eq!(stats.files, 6);
        assert_eq!(stats.packed_bytes, tarball.len() as u64);

        // The builder unpacks it with the image unpacker's checks, owned by the build user.
        let out = tempfile::tempdir().unwrap();
        let options = spread_image::UnpackOptions {
            id_shift: nix_uid(),
            ..spread_image::UnpackOptions::default()
        };
        let unpacked = spread_image::unpack_layer(
            tarball.as_slice(),
            spread_image::Compression::Gzip,
            out.path(),
            &options,
        )
        .unwrap();
        assert_eq!(unpacked.files, 6);
        assert_eq!(
            fs::read_to_string(out.path().join("src/lib/util.py")).unwrap(),
            "x = 1"
        );
    }

    /// Our own uid, so unpacking as a normal user works too.
    fn nix_uid() -> u32 {
        use std::os::unix::fs::MetadataExt;
        fs::metadata("/proc/self").unwrap().uid()
    }

    #[test]
    fn a_project_over_the_limit_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        // xorshift: bytes gzip cannot shrink.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        fs::write(dir.path().join("blob.bin"), noise).unwrap();
        let err = pack(dir.path(), io::sink(), 64 << 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("over 64 KiB, the upload limit"), "{err}");
        assert!(err.contains(".spreadignore"), "{err}");

        let err = pack(&dir.path().join("blob.bin"), io::sink(), 1 << 20).unwrap_err();
        assert!(matches!(err, PackError::NotADirectory(_)), "{err}");
    }
}
