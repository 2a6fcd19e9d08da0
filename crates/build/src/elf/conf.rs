//! The library directories a root's `/etc/ld.so.conf` and `/etc/ld.so.conf.d/*.conf` list:
//! the ones `ldconfig` puts in the loader's cache, read inside the root.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::ElfError;
use super::root::Root;

const LD_SO_CONF: &str = "/etc/ld.so.conf";
const LD_SO_CONF_D: &str = "/etc/ld.so.conf.d/*.conf";
/// Bytes read of one configuration file; real ones are a few lines.
const MAX_CONF_BYTES: u64 = 1 << 20;

/// The absolute directories listed, in order, each once. Missing files list nothing.
pub(super) fn conf_dirs(root: Root<'_>) -> Result<Vec<PathBuf>, ElfError> {
    let mut conf = Conf {
        root,
        read: HashSet::new(),
        dirs: Vec::new(),
    };
    conf.file(Path::new(LD_SO_CONF))?;
    // Debian's ld.so.conf includes these; they are read even when it does not, and no file is
    // read twice.
    conf.include(Path::new(LD_SO_CONF_D))?;
    Ok(conf.dirs)
}

struct Conf<'a> {
    root: Root<'a>,
    /// Files read so far, resolved, so an include loop ends.
    read: HashSet<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Conf<'_> {
    fn file(&mut self, path: &Path) -> Result<(), ElfError> {
        let Some(resolved) = self.root.resolve(path)? else {
            return Ok(());
        };
        if !resolved.meta.is_file() || !self.read.insert(resolved.path.clone()) {
            return Ok(());
        }
        let host = self.root.host_path(&resolved.path);
        let mut text = Vec::new();
        File::open(&host)
            .and_then(|file| file.take(MAX_CONF_BYTES).read_to_end(&mut text))
            .map_err(|source| ElfError::Io { path: host, source })?;
        let here = path.parent().unwrap_or(Path::new("/"));
        for line in text.split(|&b| b == b'\n') {
            let line = line.split(|&b| b == b'#').next().unwrap_or_default();
            let line = line.trim_ascii();
            let mut words = line
                .split(u8::is_ascii_whitespace)
                .filter(|w| !w.is_empty());
            match words.next() {
                None | Some(b"hwcap") => {}
                Some(b"include") => {
                    for pattern in words {
                        // A relative pattern is relative to the including file's directory.
                        self.include(&here.join(OsStr::from_bytes(pattern)))?;
                    }
                }
                Some(_) => {
                    // The old `dir=type` form names the directory before the `=`.
                    let dir = line.split(|&b| b == b'=').next().unwrap_or_default();
                    let dir = PathBuf::from(OsStr::from_bytes(dir.trim_ascii()));
                    if dir.is_absolute() && !self.dirs.contains(&dir) {
                        self.dirs.push(dir);
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the files `pattern` matches, in name order. Only its last component may hold
    /// wildcards (`*` and `?`), as in `ld.so.conf.d/*.conf`.
    fn include(&mut self, pattern: &Path) -> Result<(), ElfError> {
        let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
            return Ok(());
        };
        let Some(resolved) = self.root.resolve(dir)? else {
            return Ok(());
        };
        if !resolved.meta.is_dir() {
            return Ok(());
        }
        let host = self.root.host_path(&resolved.path);
        let io = |source| ElfError::Io {
            path: host.clone(),
            source,
        };
        let mut matched = Vec::new();
        for entry in fs::read_dir(&host).map_err(io)? {
            let file_name = entry.map_err(io)?.file_name();
            if glob_match(name.as_bytes(), file_name.as_bytes()) {
                matched.push(file_name);
            }
        }
        matched.sort();
        for file_name in matched {
            self.file(&resolved.path.join(file_name))?;
        }
        Ok(())
    }
}

/// Whether `name` matches `pattern`, where `*` is any run of bytes and `?` any one byte; as in
/// the shell, a leading `.` must be matched literally.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    if name.starts_with(b".") && !pattern.starts_with(b".") {
        return false;
    }
    let (mut p, mut n) = (0, 0);
    // After a `*`: where the pattern resumes and the name position that `*` has reached.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // Let the last `*` take one more byte and try again from there.
                Some((resume, taken)) => {
                    p = resume;
                    n = taken + 1;
                    star = Some((resume, taken + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_like_the_shell() {
        assert!(glob_match(b"*.conf", b"libc.conf"));
        assert!(!glob_match(b"*.conf", b".hidden.conf"));
        assert!(glob_match(b"x86_64-*.conf", b"x86_64-linux-gnu.conf"));
        assert!(glob_match(b"?.conf", b"a.conf"));
        assert!(!glob_match(b"*.conf", b"libc.conf.bak"));
        assert!(glob_match(b"*a*b", b"xxaxxab"));
        assert!(!glob_match(b"*a*b", b"xxaxxa"));
    }
}
