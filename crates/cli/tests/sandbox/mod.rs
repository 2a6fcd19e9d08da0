//! Fixtures for the monitor tests: the probe, bundles and state dirs in a unique temp dir,
//! and a guard that kills monitors and removes containers and cgroups even when a test fails.

#![allow(dead_code)]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use spread_oci::monitor::{LogLimits, MonitorConfig, monitor_alive, monitor_pid};
use spread_oci::{CgroupVersion, ContainerId, HostLimits, SpecOptions, write_bundle};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_spread");
pub const RUNC: &str = "/usr/sbin/runc";
/// Generous bound on any wait, so a broken test fails rather than hangs; never a timing claim.
const PATIENCE: Duration = Duration::from_secs(60);

/// The probe, compiled once per test binary from tests/fixtures/monitor_probe.c.
pub fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/monitor_probe.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let partial = out.join(format!("spread-monitor-probe.{}", std::process::id()));
        let status = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&partial)
            .arg(&source)
            .status()
            .expect("run gcc (apt-get install gcc libc6-dev)");
        assert!(status.success(), "gcc failed to build {}", source.display());
        // Renamed into place so test binaries running at once never see half a file.
        let probe = out.join("spread-monitor-probe");
        std::fs::rename(&partial, &probe).unwrap();
        probe
    })
}

fn random() -> u64 {
    let mut bytes = [0u8; 8];
    let mut urandom = std::fs::File::open("/dev/urandom").unwrap();
    urandom.read_exact(&mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}

/// Polls `check` until it gives a value, or panics naming `what` after a generous deadline.
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One test's runc root, bundles, state dirs, uid range and cgroup parent, all unique.
pub struct Sandbox {
    dir: TempDir,
    pub runc_root: PathBuf,
    pub uid_start: u32,
    cgroup_parent: String,
    nonce: u64,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("spread-monitor-test.")
            .tempdir()
            .unwrap();
        // The container's root, an unprivileged host uid, must reach its rootfs.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let nonce = random();
        Self {
            runc_root: dir.path().join("runc"),
            uid_start: 100_000 + 65_536 * (nonce % 4000) as u32,
            cgroup_parent: format!("/spread-test-{:012x}", nonce & 0xffff_ffff_ffff),
            nonce,
            dir,
        }
    }

    pub fn id(&self, name: &str) -> ContainerId {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        ContainerId::parse(&format!("{name}-{:06x}-{n}", self.nonce & 0xff_ffff)).unwrap()
    }

    /// A monitor config for a bundle that runs the probe with `args`, limited to
    /// `memory_bytes` if given, with its state dir in the sandbox.
    pub fn config(
        &self,
        id: &ContainerId,
        args: &[&str],
        memory_bytes: Option<u64>,
    ) -> MonitorConfig {
        let cgroups_path = format!("{}/{id}", self.cgroup_parent);
        let mut argv = vec!["/probe".to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let mut opts = SpecOptions::new(argv, id.as_str(), self.uid_start, &cgroups_path);
        opts.memory_bytes = memory_bytes;
        let bundle = self.bundle(id, &opts);
        let state_dir = self.dir.path().join("state").join(id.as_str());
        MonitorConfig::new(
            id.clone(),
            bundle,
            RUNC,
            &self.runc_root,
            state_dir,
            cgroups_path,
        )
    }

    /// Like `config`, with small log files.
    pub fn config_with_log(
        &self,
        id: &ContainerId,
        args: &[&str],
        log: LogLimits,
    ) -> MonitorConfig {
        MonitorConfig {
            log,
            ..self.config(id, args, None)
        }
    }

    /// A bundle whose rootfs holds only the probe, owned by the container's mapped root.
    fn bundle(&self, id: &ContainerId, opts: &SpecOptions) -> PathBuf {
        let bundle = self.dir.path().join("bundles").join(id.as_str());
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        for dir in [
            self.dir.path().join("bundles"),
            bundle.clone(),
            rootfs.clone(),
        ] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::copy(probe(), rootfs.join("probe")).unwrap();
        let owner = Some(self.uid_start);
        std::os::unix::fs::chown(&rootfs, owner, owner).unwrap();
        std::os::unix::fs::chown(rootfs.join("probe"), owner, owner).unwrap();
        let spec = opts.to_spec(&HostLimits::read().unwrap()).unwrap();
        write_bundle(&bundle, &spec).unwrap();
        bundle
    }

    /// `runc --root <ours> ARGS`.
    pub fn runc(&self, args: &[&str]) -> Output {
        Command::new(RUNC)
            .arg("--root")
            .arg(&self.runc_root)
            .args(args)
            .output()
            .unwrap()
    }

    /// The status and pid `runc state` reports, or `None` if runc knows no such container.
    pub fn state(&self, id: &ContainerId) -> Option<(String, u32)> {
        let out = self.runc(&["state", id.as_str()]);
        if !out.status.success() {
            return None;
        }
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let status = state["status"].as_str().unwrap().to_string();
        Some((status, state["pid"].as_u64().unwrap() as u32))
    }

    pub fn kill(&self, id: &ContainerId, signal: &str) {
        let out = self.runc(&["kill", id.as_str(), signal]);
        assert!(out.status.success(), "runc kill {id} {signal}: {out:?}");
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mount = Path::new("/sys/fs/cgroup");
        let relative = self.cgroup_parent.trim_start_matches('/');
        match CgroupVersion::detect_at(mount) {
            CgroupVersion::V2 => vec![mount.join(relative)],
            CgroupVersion::V1 => std::fs::read_dir(mount)
                .map(|entries| entries.flatten().map(|e| e.path().join(relative)).collect())
                .unwrap_or_default(),
        }
    }
}

/// Sends `signal` (a name such as `TERM`) to a process.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {signal} {pid}");
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Monitors first, so none is left watching; then their containers and cgroups.
        let states = self.dir.path().join("state");
        for entry in std::fs::read_dir(states).into_iter().flatten().flatten() {
            if monitor_alive(&entry.path())
                && let Some(pid) = monitor_pid(&entry.path())
            {
                let _ = Command::new("kill")
                    .args(["-s", "KILL", &pid.to_string()])
                    .status();
            }
        }
        for entry in std::fs::read_dir(&self.runc_root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let _ = self.runc(&["delete", "--force", &name]);
        }
        // runc removes a container's cgroups on delete; this catches the rest.
        for parent in self.cgroup_dirs().into_iter().filter(|dir| dir.is_dir()) {
            for child in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                if child.path().is_dir() {
                    let _ = std::fs::remove_dir(child.path());
                }
            }
            let _ = std::fs::remove_dir(&parent);
        }
    }
}
