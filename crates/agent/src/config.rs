//! `AgentConfig`: where the agent keeps instances and which runtime, network and ids it uses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spread_net::NetConfig;
use spread_oci::monitor::LogLimits;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The node's data dir; the agent works in `instances/`, `layers/` and `runc/` under it,
    /// and reads images from `images/`.
    pub data_dir: PathBuf,
    /// The `spread` binary, started as each container's monitor (`spread monitor`).
    pub spread_binary: PathBuf,
    pub runc_binary: PathBuf,
    /// Where the cgroup hierarchies are mounted.
    pub cgroup_mount: PathBuf,
    /// Every instance's cgroup is `<parent>/<instance id>`.
    pub cgroup_parent: String,
    /// The first host id of the first app's id range (see `uids`).
    pub uid_base: u32,
    pub net: NetConfig,
    pub log: LogLimits,
    /// How many stopped instances of an app keep their logs.
    pub kept_logs_per_app: usize,
    /// Image blobs and unpacked layers no release refers to are removed once they have not
    /// been used for this long; it protects a deploy between its pull and its release.
    pub gc_grace: Duration,
    /// Where builder root filesystems are cached (made with debootstrap on first use).
    pub builder_roots: PathBuf,
    /// The Debian mirror builder roots come from.
    pub builder_mirror: String,
    /// How long a build may run before it is stopped.
    pub build_timeout: Duration,
    /// The memory limit of each build step.
    pub build_memory_bytes: u64,
}

impl AgentConfig {
    /// The defaults for a node whose data dir is `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, spread_binary: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            builder_roots: data_dir.join("builds/roots"),
            builder_mirror: spread_build::host_mirror(),
            build_timeout: spread_build::DEFAULT_TIMEOUT,
            build_memory_bytes: 2 << 30,
            data_dir,
            spread_binary: spread_binary.into(),
            runc_binary: PathBuf::from("/usr/sbin/runc"),
            cgroup_mount: PathBuf::from("/sys/fs/cgroup"),
            cgroup_parent: "/spread".to_owned(),
            uid_base: crate::uids::DEFAULT_BASE,
            net: NetConfig::default(),
            log: LogLimits::default(),
            kept_logs_per_app: 10,
            gc_grace: Duration::from_secs(3600),
        }
    }

    pub fn images_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.data_dir.join("layers")
    }

    /// Builds' work dirs, caches and step bundles.
    pub fn builds_dir(&self) -> PathBuf {
        self.data_dir.join("builds")
    }

    pub fn runc_root(&self) -> PathBuf {
        self.data_dir.join("runc")
    }

    pub fn instances_dir(&self) -> PathBuf {
        self.data_dir.join("instances")
    }

    pub fn uid_ranges_file(&self) -> PathBuf {
        self.data_dir.join("uid-ranges.json")
    }

    pub fn instance(&self, id: &str) -> InstanceDir {
        InstanceDir(self.instances_dir().join(id))
    }

    pub fn cgroups_path(&self, id: &str) -> String {
        format!("{}/{id}", self.cgroup_parent.trim_end_matches('/'))
    }
}

/// One instance's directory:
///
/// ```text
/// spec.json         what it runs (kept with the logs after it stopped)
/// removed           present once it stopped for good; only its logs are left
/// bundle/           config.json and the rootfs mount point
/// overlay/          the overlay's upper and work dirs
/// resolv.conf hosts bind-mounted read-only into the container
/// monitor/          the monitor's config, records and logs
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceDir(PathBuf);

impl InstanceDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn spec(&self) -> PathBuf {
        self.0.join("spec.json")
    }
    pub fn removed(&self) -> PathBuf {
        self.0.join("removed")
    }
    pub fn bundle(&self) -> PathBuf {
        self.0.join("bundle")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.0.join("bundle/rootfs")
    }
    pub fn overlay(&self) -> PathBuf {
        self.0.join("overlay")
    }
    pub fn resolv_conf(&self) -> PathBuf {
        self.0.join("resolv.conf")
    }
    pub fn hosts(&self) -> PathBuf {
        self.0.join("hosts")
    }
    pub fn monitor(&self) -> PathBuf {
        self.0.join("monitor")
    }
    /// The platform's own lines about the instance, a log in the monitor's format.
    pub fn events(&self) -> PathBuf {
        self.0.join("events")
    }
}
