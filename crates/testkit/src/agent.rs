//! A node agent's sandbox for root tests and benchmarks: a network, cgroup parent and host uid
//! range of its own for one `spread up`, and a cleanup that removes everything its containers
//! left once the daemon is gone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::net::NetSandbox;
use crate::runc::random;

/// The names one node agent uses, unique to it: its network (see `NetSandbox`), a cgroup
/// parent and a host uid range.
pub struct AgentSandbox {
    pub net: NetSandbox,
    pub cgroup_parent: String,
    pub uid_base: u32,
    config_file: PathBuf,
}

impl AgentSandbox {
    /// A sandbox whose network config is written into `dir`.
    pub fn new(dir: &Path) -> Self {
        let net = NetSandbox::new(&[]);
        let config_file = dir.join("net.toml");
        std::fs::write(&config_file, toml::to_string(&net.config).unwrap()).unwrap();
        let nonce = random();
        Self {
            cgroup_parent: format!("/spread-test-{:012x}", nonce & 0xffff_ffff_ffff),
            // Four app ranges per sandbox, far from other sandboxes' (and the default) ranges.
            uid_base: 0x5000_0000 + ((nonce >> 48) as u32 % 8192) * 4 * 65_536,
            net,
            config_file,
        }
    }

    /// The hidden `spread up` flags that put its node agent in this sandbox.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--net-config".to_owned(),
            self.config_file.display().to_string(),
            "--cgroup-parent".to_owned(),
            self.cgroup_parent.clone(),
            "--uid-base".to_owned(),
            self.uid_base.to_string(),
        ]
    }

    /// The cgroup directories under this sandbox's parent, one level deep, in every hierarchy.
    pub fn cgroups(&self) -> Vec<PathBuf> {
        let relative = self.cgroup_parent.trim_start_matches('/');
        let mut parents = vec![Path::new("/sys/fs/cgroup").join(relative)];
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            parents.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path().join(relative)),
            );
        }
        parents
            .into_iter()
            .filter_map(|p| std::fs::read_dir(p).ok())
            .flat_map(|entries| entries.filter_map(Result::ok))
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect()
    }

    /// Mount points under `data_dir`.
    pub fn mounts(&self, data_dir: &Path) -> Vec<String> {
        let data = data_dir.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|point| point.starts_with(&data))
            .map(str::to_owned)
            .collect()
    }

    /// Monitors of containers under `data_dir`, and processes in this sandbox's cgroups
    /// (containers).
    pub fn processes(&self, data_dir: &Path) -> Vec<u32> {
        let data = data_dir.to_string_lossy().into_owned();
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cgroup =
                    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline);
                (cmdline.contains("\0monitor\0") && cmdline.contains(&data))
                    || cgroup.contains(&self.cgroup_parent)
            })
            .collect();
        pids.sort_unstable();
        pids
    }

    /// Kills every process, unmounts every mount and removes every cgroup the node made, then
    /// the network. Call it after the daemon that used `data_dir` is gone.
    pub fn clean_up(self, data_dir: &Path) {
        for pid in self.processes(data_dir) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let runc_root = data_dir.join("runc");
        if let Ok(out) = Command::new("runc")
            .arg("--root")
            .arg(&runc_root)
            .args(["list", "-q"])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["delete", "--force", id])
                    .output();
            }
        }
        for point in self.mounts(data_dir) {
            let _ = Command::new("umount").args(["-l", &point]).output();
        }
        for _ in 0..50 {
            let left = self.cgroups();
            for dir in &left {
                let _ = std::fs::remove_dir(dir);
            }
            if self.cgroups().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let relative = self.cgroup_parent.trim_start_matches('/');
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in entries.filter_map(Result::ok) {
                let _ = std::fs::remove_dir(e.path().join(relative));
            }
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(relative));
        // `self.net` removes the namespaces, the bridge and the tables when dropped here.
    }
}
