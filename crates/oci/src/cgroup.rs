//! Which cgroup hierarchy the host uses, and what a container's memory cgroup recorded.

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
    fn a_missing_cgroup_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = oom_kill_count(dir.path(), CgroupVersion::V2, "/gone").unwrap_err();
        assert!(err.to_string().contains("gone/memory.events"), "{err}");
    }
}
