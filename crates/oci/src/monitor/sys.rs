//! The few system calls the monitor needs that std does not offer; the only unsafe code here.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Leaves the spawner's session and process group, so signals sent to its terminal or group
/// (Ctrl-C, a hang-up) never reach the monitor.
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments and touches no memory of ours.
    let rc = unsafe { libc::setsid() };
    if rc >= 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Orphaned descendants, such as the container's process once `runc create` has exited,
/// become our children, so we can wait for them.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes integer arguments only and reads no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

extern "C" fn do_nothing(_signal: libc::c_int) {}

/// Makes SIGTERM, SIGINT and SIGHUP harmless to the monitor.
///
/// A handler that does nothing, not `SIG_IGN` and not a blocked mask: ignored dispositions
/// and the signal mask are inherited through exec, so runc and the container's process would
/// start with them; a handler is reset to the default on exec. `SA_RESTART` resumes the
/// blocking `read` and `waitpid` calls the signal interrupts.
pub fn shrug_off_termination_signals() -> io::Result<()> {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is a valid value (empty mask, no flags) that we fill in;
        // the handler is an `extern "C"` function that lives for the whole program and is
        // async-signal-safe because it does nothing; the old action pointer may be null.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = do_nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Waits for any child to exit; `Ok(None)` when there are no children left.
pub fn wait_any() -> io::Result<Option<(u32, ExitStatus)>> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a live, writable c_int for the whole call.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid > 0 {
            return Ok(Some((pid as u32, ExitStatus::from_raw(status))));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(None),
            _ => return Err(err),
        }
    }
}

/// Points stdout at `/dev/null`, closing the pipe the spawner reads: its end of file tells the
/// spawner that the start is recorded.
pub fn release_stdout() -> io::Result<()> {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    // SAFETY: both descriptors are open; dup2 replaces fd 1 atomically and touches no memory.
    let rc = unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), libc::STDOUT_FILENO) };
    if rc >= 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
