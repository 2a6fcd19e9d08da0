//! `SpecOptions` → the hardened `config.json` every instance runs with.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
    get_default_maskedpaths, get_default_readonly_paths,
};

use crate::default_seccomp;

mod bundle;
mod mounts;
mod validate;

pub use bundle::{BundleError, write_bundle};
pub use validate::SpecError;

/// The CFS period the CPU quota is expressed in, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// What varies between instances; everything else in the spec is fixed hardening.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecOptions {
    pub args: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub cwd: PathBuf,
    /// The user and group the process runs as, inside the user namespace.
    pub uid: u32,
    pub gid: u32,
    /// The instance id.
    pub hostname: String,
    /// The host uid (and gid) that container uid 0 maps to; never 0.
    pub uid_map_host_start: u32,
    /// How many ids are mapped, from container id 0.
    pub id_range: u32,
    /// Memory limit; swap is not allowed on top of it.
    pub memory_bytes: Option<u64>,
    /// CPU limit in thousandths of a CPU (at least 10).
    pub cpu_millis: Option<u32>,
    pub pids_limit: i64,
    pub tmp_size_bytes: u64,
    /// An absolute cgroupfs path such as `/spread/web-1`.
    pub cgroups_path: String,
    /// A network namespace to join; without one the container gets a new, empty one.
    pub netns_path: Option<PathBuf>,
    /// Host files bind-mounted read-only at `/etc/resolv.conf` and `/etc/hosts`.
    pub resolv_conf: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    pub readonly_rootfs: bool,
    /// The open-file limit wanted; it is lowered to the host's hard limit.
    pub nofile: u64,
    /// The root filesystem: `rootfs` in the bundle unless an absolute path is given, e.g. a
    /// builder root shared read-only by many builds.
    pub rootfs: Option<PathBuf>,
    /// Host paths bound into the container, after the standard mounts.
    pub binds: Vec<Bind>,
}

/// A host file or directory bound into the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub destination: PathBuf,
    pub readonly: bool,
}

impl SpecOptions {
    /// Options with the defaults: 65536 mapped ids, 1024 pids, a 64 MiB `/tmp`, a read-only
    /// root, 65536 open files, cwd `/`, user 0 (root in the namespace, not on the host) and a
    /// standard `PATH`.
    pub fn new(
        args: Vec<String>,
        hostname: impl Into<String>,
        uid_map_host_start: u32,
        cgroups_path: impl Into<String>,
    ) -> Self {
        Self {
            args,
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cwd: PathBuf::from("/"),
            uid: 0,
            gid: 0,
            hostname: hostname.into(),
            uid_map_host_start,
            id_range: 65_536,
            memory_bytes: None,
            cpu_millis: None,
            pids_limit: 1024,
            tmp_size_bytes: 64 << 20,
            cgroups_path: cgroups_path.into(),
            netns_path: None,
            resolv_conf: None,
            hosts: None,
            readonly_rootfs: true,
            nofile: 65_536,
            rootfs: None,
            binds: Vec::new(),
        }
    }

    /// The runtime spec for these options on a host with `host`'s limits.
    pub fn to_spec(&self, host: &HostLimits) -> Result<Spec, SpecError> {
        self.validate()?;
        Ok(self.build(host)?)
    }

    fn build(&self, host: &HostLimits) -> Result<Spec, OciSpecError> {
        let no_caps = HashSet::new;
        let capabilities = LinuxCapabilitiesBuilder::default()
            .bounding(no_caps())
            .effective(no_caps())
            .inheritable(no_caps())
            .permitted(no_caps())
            .ambient(no_caps())
            .build()?;
        let nofile = self.nofile.min(host.nofile_hard);
        let process = ProcessBuilder::default()
            .terminal(false)
            .user(UserBuilder::default().uid(self.uid).gid(self.gid).build()?)
            .args(self.args.clone())
            .env(self.env.clone())
            .cwd(self.cwd.clone())
            .capabilities(capabilities)
            .rlimits(vec![
                PosixRlimitBuilder::default()
                    .typ(PosixRlimitType::RlimitNofile)
                    .soft(nofile)
                    .hard(nofile)
                    .build()?,
            ])
            .no_new_privileges(true)
            .build()?;
        let root = RootBuilder::default()
            .path(
                self.rootfs
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("rootfs")),
            )
            .readonly(self.readonly_rootfs)
            .build()?;
        SpecBuilder::default()
            .version("1.0.2-dev")
            .root(root)
            .mounts(mounts::mounts(self)?)
            .process(process)
            .hostname(self.hostname.clone())
            .linux(self.linux()?)
            .build()
    }

    fn linux(&self) -> Result<oci_spec::runtime::Linux, OciSpecError> {
        let mapping = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(self.uid_map_host_start)
            .size(self.id_range)
            .build()?;
        let mut masked = get_default_maskedpaths();
        // Running average power limits leak what other tenants compute (PLATYPUS).
        masked.push("/sys/devices/virtual/powercap".into());
        LinuxBuilder::default()
            .uid_mappings(vec![mapping])
            .gid_mappings(vec![mapping])
            .resources(self.resources()?)
            .cgroups_path(PathBuf::from(&self.cgroups_path))
            .namespaces(self.namespaces()?)
            .seccomp(default_seccomp())
            .masked_paths(masked)
            .readonly_paths(get_default_readonly_paths())
            .build()
    }

    fn resources(&self) -> Result<oci_spec::runtime::LinuxResources, OciSpecError> {
        let deny_all_devices = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()?;
        let mut resources = LinuxResourcesBuilder::default()
            .devices(vec![deny_all_devices])
            .pids(LinuxPidsBuilder::default().limit(self.pids_limit).build()?);
        if let Some(bytes) = self.memory_bytes {
            // Validation keeps the value within i64. Swap equal to the limit means no swap.
            let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
            resources = resources.memory(
                LinuxMemoryBuilder::default()
                    .limit(bytes)
                    .swap(bytes)
                    .build()?,
            );
        }
        if let Some(millis) = self.cpu_millis {
            let quota = i64::from(millis) * (CPU_PERIOD_US as i64) / 1000;
            resources = resources.cpu(
                LinuxCpuBuilder::default()
                    .quota(quota)
                    .period(CPU_PERIOD_US)
                    .build()?,
            );
        }
        resources.build()
    }

    fn namespaces(&self) -> Result<Vec<LinuxNamespace>, OciSpecError> {
        use LinuxNamespaceType::*;
        let mut namespaces = Vec::new();
        for typ in [Pid, Ipc, Uts, Mount, User, Network, Cgroup] {
            let mut namespace = LinuxNamespaceBuilder::default().typ(typ);
            if let (Network, Some(path)) = (typ, &self.netns_path) {
                namespace = namespace.path(path.clone());
            }
            namespaces.push(namespace.build()?);
        }
        Ok(namespaces)
    }
}

/// The host limits a spec must stay within: the runtime cannot raise a hard rlimit without
/// CAP_SYS_RESOURCE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostLimits {
    pub nofile_hard: u64,
}

impl HostLimits {
    /// Reads this process's limits, which runc inherits, from `/proc/self/limits`.
    pub fn read() -> Result<Self, SpecError> {
        Self::read_from(Path::new("/proc/self/limits"))
    }

    pub fn read_from(path: &Path) -> Result<Self, SpecError> {
        let unreadable = |reason: String| SpecError::HostLimits {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
        let line = text
            .lines()
            .find_map(|line| line.strip_prefix("Max open files"))
            .ok_or_else(|| unreadable("no \"Max open files\" line".into()))?;
        let hard = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| unreadable(format!("no hard limit in {line:?}")))?;
        let nofile_hard = match hard {
            "unlimited" => u64::MAX,
            number => number
                .parse()
                .map_err(|_| unreadable(format!("hard limit {number:?}")))?,
        };
        Ok(Self { nofile_hard })
    }
}

#[cfg(test)]
mod tests;
