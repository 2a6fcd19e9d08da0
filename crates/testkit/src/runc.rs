//! A sandbox for tests that run real runc containers: a static probe program, bundles in a
//! unique temp dir, a unique mapped uid range and cgroup parent, and a guard that removes
//! containers, cgroups and network namespaces on drop, even when the test panics.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use spread_oci::{CgroupVersion, ContainerId, HostLimits, Runc, SpecOptions, write_bundle};
use tempfile::TempDir;

/// Debian's runc.
pub const RUNC: &str = "/usr/sbin/runc";
/// Generous bound on any wait, so a broken test fails rather than hangs; never a timing claim.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Compiles the C program at `source` statically, once per test process and name, into the
/// target's temp dir, and returns the binary.
pub fn static_binary(source: &Path, name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Mutex::default).lock().unwrap();
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let out = std::env::temp_dir();
    let partial = out.join(format!("{name}.{}", std::process::id()));
    let status = Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&partial)
        .arg(source)
        .status()
        .expect("run gcc (apt-get install gcc libc6-dev)");
    assert!(status.success(), "gcc failed to build {}", source.display());
    // Renamed into place so test processes running at once never see half a file.
    let binary = out.join(name);
    std::fs::rename(&partial, &binary).unwrap();
    built.insert(name.to_owned(), binary.clone());
    binary
}

pub fn random() -> u64 {
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

/// One test's runc state dir, bundles, uid range and cgroup parent, all unique and all
/// removed on drop: containers, cgroups, network namespaces, files.
pub struct RuncSandbox {
    dir: TempDir,
    pub runc: Runc,
    pub uid_start: u32,
    cgroup_parent: String,
    netns: Mutex<Vec<String>>,
    nonce: u64,
    probe: PathBuf,
}

impl RuncSandbox {
    /// A sandbox whose bundles run `probe` (a static binary) as `/probe`.
    pub fn new(prefix: &str, probe: PathBuf) -> Self {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        // The container's root, an unprivileged host uid, must reach its rootfs.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let nonce = random();
        Self {
            runc: Runc::new(RUNC, dir.path().join("runc")),
            uid_start: 100_000 + 65_536 * (nonce % 4000) as u32,
            cgroup_parent: format!("/spread-test-{:012x}", nonce & 0xffff_ffff_ffff),
            netns: Mutex::new(Vec::new()),
            nonce,
            probe,
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn id(&self, name: &str) -> ContainerId {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        ContainerId::parse(&format!("{name}-{:06x}-{n}", self.nonce & 0xff_ffff)).unwrap()
    }

    pub fn cgroups_path(&self, id: &ContainerId) -> String {
        format!("{}/{id}", self.cgroup_parent)
    }

    /// Options that run the probe with `args` as container `id`.
    pub fn options(&self, id: &ContainerId, args: &[&str]) -> SpecOptions {
        let mut argv = vec!["/probe".to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        SpecOptions::new(argv, id.as_str(), self.uid_start, self.cgroups_path(id))
    }

    /// A bundle whose rootfs holds only the probe, owned by the container's mapped root.
    pub fn bundle(&self, id: &ContainerId, opts: &SpecOptions) -> PathBuf {
        let bundles = self.path().join("bundles");
        let bundle = bundles.join(id.as_str());
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        for dir in [&bundles, &bundle, &rootfs] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::copy(&self.probe, rootfs.join("probe")).unwrap();
        let owner = Some(self.uid_start);
        std::os::unix::fs::chown(&rootfs, owner, owner).unwrap();
        std::os::unix::fs::chown(rootfs.join("probe"), owner, owner).unwrap();
        let spec = opts.to_spec(&HostLimits::read().unwrap()).unwrap();
        write_bundle(&bundle, &spec).unwrap();
        bundle
    }

    /// `runc --root <ours> ARGS`.
    pub fn run_runc(&self, args: &[&str]) -> Output {
        Command::new(RUNC)
            .arg("--root")
            .arg(&self.runc.root)
            .args(args)
            .output()
            .unwrap()
    }

    /// The status and pid `runc state` reports, or `None` if runc knows no such container.
    pub fn state(&self, id: &ContainerId) -> Option<(String, u32)> {
        let out = self.run_runc(&["state", id.as_str()]);
        if !out.status.success() {
            return None;
        }
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let status = state["status"].as_str().unwrap().to_string();
        Some((status, state["pid"].as_u64().unwrap() as u32))
    }

    /// `runc kill ID SIGNAL`, which must succeed.
    pub fn kill(&self, id: &ContainerId, signal: &str) {
        let out = self.run_runc(&["kill", id.as_str(), signal]);
        assert!(out.status.success(), "runc kill {id} {signal}: {out:?}");
    }

    /// A new network namespace (`ip netns add`), deleted on drop.
    pub fn netns(&self) -> PathBuf {
        let mut made = self.netns.lock().unwrap();
        let name = format!("spread-test-{:x}-{}", self.nonce & 0xffff_ffff, made.len());
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add {name}");
        made.push(name.clone());
        PathBuf::from("/run/netns").join(name)
    }

    /// The directories of container `id`'s cgroups, one per v1 hierarchy or one on v2.
    pub fn cgroup_dirs_of(&self, id: &ContainerId) -> Vec<PathBuf> {
        self.cgroup_dirs()
            .into_iter()
            .map(|dir| dir.join(id.as_str()))
            .collect()
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

impl Drop for RuncSandbox {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(&self.runc.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let _ = self.run_runc(&["delete", "--force", &name]);
        }
        // runc removes a container's cgroups on delete; this catches failed creates.
        for parent in self.cgroup_dirs().into_iter().filter(|dir| dir.is_dir()) {
            for child in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                if child.path().is_dir() {
                    let _ = std::fs::remove_dir(child.path());
                }
            }
            let _ = std::fs::remove_dir(&parent);
        }
        for name in self.netns.lock().unwrap().drain(..) {
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
        }
    }
}
