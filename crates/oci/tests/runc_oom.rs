//! The memory limit holds: a probe allocating twice its limit is OOM-killed (real runc, as root).
//!
//! A test binary of its own, because it makes the test process a child subreaper so that it
//! can wait for the container's process and see how it died.

mod support;

use spread_oci::{CgroupVersion, ContainerIo, PID_FILE, Runtime, Status, oom_kill_count};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use support::{Lines, Sandbox};

#[allow(unsafe_code)]
mod reaper {
    use std::io;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    /// Orphaned descendants (the container, once `runc create` has exited) become our children.
    pub fn become_subreaper() -> io::Result<()> {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes integer arguments only and reads no memory.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Waits for our child `pid` to end and returns how it ended.
    pub fn wait(pid: i32) -> io::Result<ExitStatus> {
        let mut status = 0;
        // SAFETY: `status` is a live, writable c_int for the whole call.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            Ok(ExitStatus::from_raw(status))
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[tokio::test]
async fn a_probe_allocating_twice_its_memory_limit_is_killed_by_the_oom_killer() {
    reaper::become_subreaper().unwrap();
    let sandbox = Sandbox::new();
    let id = sandbox.id("oom");
    let mut opts = sandbox.options(&id, &["cat", "/proc/self/comm", "alloc", "64"]);
    opts.memory_bytes = Some(32 << 20);
    let bundle = sandbox.bundle(&id, &opts);
    let (reader, writer) = std::io::pipe().unwrap();
    let lines = Lines::new(reader);
    let io = ContainerIo::null()
        .with_stdout(writer.try_clone().unwrap())
        .with_stderr(writer);
    sandbox.runc.create(&id, &bundle, io).await.unwrap();
    let pid: i32 = std::fs::read_to_string(bundle.join(PID_FILE))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    sandbox.runc.start(&id).await.unwrap();

    let output = lines.to_end();
    assert_eq!(
        output.first().map(String::as_str),
        Some("cat /proc/self/comm=probe")
    );
    assert!(
        !output.iter().any(|l| l.starts_with("allocated")),
        "it survived: {output:?}"
    );
    let status = tokio::task::spawn_blocking(move || reaper::wait(pid))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");

    // The cgroup outlives the process until delete; it records why the process died.
    let mount = Path::new("/sys/fs/cgroup");
    let version = CgroupVersion::detect_at(mount);
    let kills = oom_kill_count(mount, version, &opts.cgroups_path).unwrap();
    assert!(kills >= 1, "oom_kill count {kills}");
    if version == CgroupVersion::V1 {
        // The peak usage reached the limit. (memory.failcnt is not used: kernel 6.18 leaves it
        // at 0 on v1 even when the limit is hit.)
        let cgroup = mount
            .join("memory")
            .join(opts.cgroups_path.trim_start_matches('/'));
        let read = |file: &str| -> u64 {
            std::fs::read_to_string(cgroup.join(file))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        assert_eq!(read("memory.limit_in_bytes"), 32 << 20);
        if cgroup.join("memory.memsw.limit_in_bytes").exists() {
            assert_eq!(
                read("memory.memsw.limit_in_bytes"),
                32 << 20,
                "no swap on top"
            );
        }
        assert!(read("memory.max_usage_in_bytes") >= 32 << 20);
    }
    assert_eq!(
        sandbox.runc.state(&id).await.unwrap().status,
        Status::Stopped
    );
    sandbox.runc.delete(&id, false).await.unwrap();
}
