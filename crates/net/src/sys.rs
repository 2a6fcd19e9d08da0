//! The system calls node networking makes itself: unshare and enter a network namespace, bind
//! mount and unmount it, and adopt a netlink socket into tokio.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rtnetlink::sys::TokioSocket;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Moves the calling thread into a new network namespace.
pub fn unshare_netns() -> io::Result<()> {
    // SAFETY: unshare takes a flag word; a new network namespace affects this thread only.
    check(unsafe { libc::unshare(libc::CLONE_NEWNET) })
}

/// Moves the calling thread into the network namespace `file` refers to.
pub fn enter_netns(file: &File) -> io::Result<()> {
    // SAFETY: the descriptor is open for the duration of the call.
    check(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) })
}

/// `mount --bind SOURCE TARGET`.
pub fn bind_mount(source: &Path, target: &Path) -> io::Result<()> {
    let (source, target) = (c_path(source)?, c_path(target)?);
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call; a bind
    // mount reads neither the file system type nor the data argument.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    })
}

/// Detaches whatever is mounted at `target`; nothing mounted there is not an error.
pub fn unmount(target: &Path) -> io::Result<()> {
    let target = c_path(target)?;
    // SAFETY: `target` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
    match check(rc) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => Ok(()),
        other => other,
    }
}

/// Hands an open, non-blocking netlink socket to tokio. Must run inside the runtime.
pub fn tokio_socket(fd: RawFd) -> TokioSocket {
    // SAFETY: `fd` is a netlink socket this process owns and gives up here; TokioSocket closes
    // it when dropped.
    unsafe { TokioSocket::from_raw_fd(fd) }
}
