//! Fixtures for the runc tests: the probe, bundles in unique temp dirs, and cleanup on drop.

#![allow(dead_code)] // Each test binary uses a different part.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, PipeReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

use spread_oci::testing::BundleFactory;
use spread_oci::{CgroupVersion, ContainerId, HostLimits, Runc, SpecOptions, write_bundle};
use tempfile::TempDir;

pub const RUNC: &str = "/usr/sbin/runc";
/// Generous bound on waiting for a container's output, so a broken test fails rather than hangs.
const PATIENCE: Duration = Duration::from_secs(60);

/// The probe, compiled once per test binary from tests/fixtures/probe.c.
pub fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let partial = out.join(format!("spread-oci-probe.{}", std::process::id()));
        let status = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&partial)
            .arg(&source)
            .status()
            .expect("run gcc (apt-get install gcc libc6-dev)");
        assert!(status.success(), "gcc failed to build {}", source.display());
        // Renamed into place so test binaries running at once never see half a file.
        let probe = out.join("spread-oci-probe");
        std::fs::rename(&partial, &probe).unwrap();
        probe
    })
}

pub fn random() -> u64 {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    u64::from_le_bytes(bytes)
}

/// One test's runc state dir, bundles, uid range and cgroup parent, all unique and all
/// removed on drop, even when the test panics: containers, cgroups, netns, files.
pub struct Sandbox {
    dir: TempDir,
    pub runc: Runc,
    pub uid_start: u32,
    cgroup_parent: String,
    netns: Mutex<Vec<String>>,
    nonce: u64,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("spread-oci-test.")
            .tempdir()
            .unwrap();
        // The container's root, an unprivileged host uid, must reach its rootfs.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let nonce = random();
        Self {
            runc: Runc::new(RUNC, dir.path().join("runc")),
            uid_start: 100_000 + 65_536 * (nonce % 4000) as u32,
            cgroup_parent: format!("/spread-test-{:012x}", nonce & 0xffff_ffff_ffff),
            netns: Mutex::new(Vec::new()),
            nonce,
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

    /// Options that run the probe with `args` as the instance `id`.
    pub fn options(&self, id: &ContainerId, args: &[&str]) -> SpecOptions {
        let mut argv = vec!["/probe".to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        SpecOptions::new(argv, id.as_str(), self.uid_start, self.cgroups_path(id))
    }

    /// A bundle whose rootfs holds only the probe, owned by the container's mapped root.
    pub fn bundle(&self, id: &ContainerId, opts: &SpecOptions) -> PathBuf {
        let bundle = self.path().join("bundles").join(id.as_str());
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        for dir in [self.path().join("bundles"), bundle.clone(), rootfs.clone()] {
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

    /// A new network namespace (`ip netns add`), deleted on drop.
    pub fn netns(&self) -> PathBuf {
        let name = format!(
            "spread-test-{:x}-{}",
            self.nonce & 0xffff_ffff,
            self.netns.lock().unwrap().len()
        );
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add {name}");
        self.netns.lock().unwrap().push(name.clone());
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

impl Drop for Sandbox {
    fn drop(&mut self) {
        let root = self.runc.root.clone();
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let _ = Command::new(RUNC)
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force"])
                .arg(entry.file_name())
                .output();
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

impl BundleFactory for Sandbox {
    fn long_running(&self, id: &ContainerId) -> PathBuf {
        self.bundle(id, &self.options(id, &["sleep"]))
    }
}

/// The lines a container writes to a pipe, read on a thread.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    pub fn new(reader: PipeReader) -> Self {
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self(receive)
    }

    /// Lines up to and including the first equal to `last`.
    pub fn until(&self, last: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            match self.0.recv_timeout(PATIENCE) {
                Ok(line) if line == last => return lines,
                Ok(line) => lines.push(line),
                Err(e) => panic!("no {last:?} line ({e}); got {lines:?}"),
            }
        }
    }

    /// Every line until the writers close the pipe.
    pub fn to_end(&self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            match self.0.recv_timeout(PATIENCE) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(e) => panic!("output did not end ({e}); got {lines:?}"),
            }
        }
    }
}

/// `key=value` lines as a map.
pub fn report(lines: &[String]) -> HashMap<String, String> {
    lines
        .iter()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `Uid:` or `Gid:` line of a host process, as its four ids.
pub fn host_ids(pid: u32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line[field.len()..]
        .split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect()
}
