//! System calls std lacks: mknod, l{set,get}xattr, utimensat without following links, syncfs.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates a character device `major:minor` with permission bits 0. mknod never follows a
/// symlink in its last component: it fails with EEXIST instead.
pub(crate) fn mknod_char(path: &Path, major: u32, minor: u32) -> io::Result<()> {
    let path = c_path(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call; mknod reads it
    // and touches no other memory of ours.
    check(unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR, dev) })
}

/// Sets an extended attribute on `path` itself, never on a symlink's target.
pub(crate) fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let path = c_path(path)?;
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both strings are NUL-terminated and live across the call; `value` points to
    // `value.len()` readable bytes, which is the length passed.
    check(unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// Reads an extended attribute of `path` itself; `Ok(None)` when it is absent.
pub(crate) fn lgetxattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let path = c_path(path)?;
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; 256];
    // SAFETY: the strings are NUL-terminated and live across the call; `buf` has
    // `buf.len()` writable bytes, which is the size passed, and the kernel writes at most that.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENODATA) => Ok(None),
            _ => Err(err),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

/// Sets the access and modification times of `path` itself (not a symlink's target) to
/// `seconds` since the epoch.
pub(crate) fn set_mtime_nofollow(path: &Path, seconds: i64) -> io::Result<()> {
    let path = c_path(path)?;
    let time = libc::timespec {
        tv_sec: seconds as libc::time_t,
        tv_nsec: 0,
    };
    let times = [time, time];
    // SAFETY: `path` is NUL-terminated and `times` is an array of two timespecs, both living
    // across the call, as utimensat requires.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Flushes the whole filesystem holding `path` to disk.
pub(crate) fn syncfs(path: &Path) -> io::Result<()> {
    let dir = std::fs::File::open(path)?;
    // SAFETY: `dir` is an open file descriptor that stays open for the duration of the call.
    check(unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) })
}
