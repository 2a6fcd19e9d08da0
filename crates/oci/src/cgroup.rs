//! Which cgroup hierarchy the host uses, and what a container's cgroup recorded and uses.

use std::path::{Path, PathBuf};

/// The cgroup hierarchy runc puts containers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// One hierarchy per controller (also "hybrid", where an empty v2 tree sits beside them).
    V1,
    /// The unified hierarchy.
    V2,
}

/// A cgroup file that could not be read or held no OOM count.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has no oom_kill line (kernel older than 4.13?)", path.display())]
    NoOomKill { path: PathBuf },
}

impl CgroupVersion {
    /// Looks at the standard mount point, `/sys/fs/cgroup`.
    pub fn detect() -> Self {
        Self::detect_at(Path::new("/sys/fs/cgroup"))
    }

    /// Only a unified hierarchy has `cgroup.controllers` at the top of the mount.
    pub fn detect_at(mount: &Path) -> Self {
        if mount.join("cgroup.controllers").exists() {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        }
    }
}

/// How many processes the kernel's OOM killer has killed in the container's cgroup.
///
/// `cgroups_path` is the container's `linux.cgroupsPath`; read this before `delete`, which
/// removes the cgroup.
pub fn oom_kill_count(
    mount: &Path,
    version: CgroupVersion,
    cgroups_path: &str,
) -> Result<u64, CgroupError> {
    let relative = cgroups_path.trim_start_matches('/');
    let path = match version {
        CgroupVersion::V1 => mount
            .join("memory")
            .join(relative)
            .join("memory.oom_control"),
        CgroupVersion::V2 => mount.join(relative).join("memory.events"),
    };
    let text = std::fs::read_to_string(&path).map_err(|source| CgroupError::Read {
        path: path.clone(),
        source,
    })?;
    text.lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|count| count.trim().parse().ok())
        .ok_or(CgroupError::NoOomKill { path })
}

/// What a container's cgroup has used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupUsage {
    /// CPU time used since the cgroup was made, in nanoseconds.
    pub cpu_nanos: u64,
    /// Memory in use, without the page cache the kernel can drop (as `docker stats` counts).
    pub memory_bytes: u64,
}

/// The CPU time and memory the container's cgroup uses now.
pub fn cgroup_usage(
    mount: &Path,
    version: CgroupVersion,
    cgroups_path: &str,
) -> Result<CgroupUsage, CgroupError> {
    let relative = cgroups_path.trim_start_matches('/');
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
    };
    let stat = |text: &str, key: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    let number = |text: String| text.trim().parse::<u64>().unwrap_or(0);
    match version {
        CgroupVersion::V1 => {
            let memory = mount.join("memory").join(relative);
            let used = number(read(memory.join("memory.usage_in_bytes"))?);
            let inactive = stat(&read(memory.join("memory.stat"))?, "total_inactive_file");
            let cpu = number(read(
                mount.join("cpuacct").join(relative).join("cpuacct.usage"),
            )?);
            Ok(CgroupUsage {
                cpu_nanos: cpu,
                memory_bytes: used.saturating_sub(inactive),
            })
        }
        CgroupVersion::V2 => {
            let dir = mount.join(relative);
            let used = number(read(dir.join("memory.current"))?);
            let inactive = stat(&read(dir.join("memory.stat"))?, "inactive_file");
            let cpu_usec = stat(&read(dir.join("cpu.stat"))?, "usage_usec");
            Ok(CgroupUsage {
                cpu_nanos: cpu_usec.saturating_mul(1000),
                memory_bytes: used.saturating_sub(inactive),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_with_cgroup_controllers_is_v2_and_one_without_is_v1() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(CgroupVersion::detect_at(dir.path()), CgroupVersion::V1);
        std::fs::write(dir.path().join("cgroup.controllers"), "memory pids\n").unwrap();
        assert_eq!(CgroupVersion::detect_at(dir.path()), CgroupVersion::V2);
    }

    #[test]
    fn the_oom_kill_count_is_read_from_oom_control_on_v1_and_memory_events_on_v2() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("memory/spread/web-1");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(
            v1.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        let v2 = dir.path().join("spread/web-1");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(
            v2.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        )
        .unwrap();
        let count = |version| oom_kill_count(dir.path(), version, "/spread/web-1").unwrap();
        assert_eq!(count(CgroupVersion::V1), 2);
        assert_eq!(count(CgroupVersion::V2), 1);
    }

    #[test]
    fn usage_is_read_from_cpuacct_and_memory_on_v1_and_the_unified_files_on_v2() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("memory/spread/a/memory.usage_in_bytes", "10000\n");
        write(
            "memory/spread/a/memory.stat",
            "inactive_file 1\ntotal_inactive_file 4000\n",
        );
        write("cpuacct/spread/a/cpuacct.usage", "123456789\n");
        write("spread/a/memory.current", "9000\n");
        write("spread/a/memory.stat", "anon 5000\ninactive_file 1000\n");
        write("spread/a/cpu.stat", "usage_usec 42\nuser_usec 40\n");
        let usage = |version| cgroup_usage(dir.path(), version, "/spread/a").unwrap();
        assert_eq!(
            usage(CgroupVersion::V1),
            CgroupUsage {
                cpu_nanos: 123_456_789,
                memory_bytes: 6000
            }
        );
        assert_eq!(
            usage(CgroupVersion::V2),
            CgroupUsage {
                cpu_nanos: 42_000,
                memory_bytes: 8000
            }
        );
    }

    #[test]
    fn a_missing_cgroup_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = oom_kill_count(dir.path(), CgroupVersion::V2, "/gone").unwrap_err();
        assert!(err.to_string().contains("gone/memory.events"), "{err}");
    }
}
