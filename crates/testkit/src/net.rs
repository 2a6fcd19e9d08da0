//! A uniquely named node network for root tests: bridge, nftables tables, netns dir and a /24
//! of its own, all removed on drop even when the test panics.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use spread_net::{InstanceId, LinuxHost, NetConfig, NodeNetwork, Planner};
use tempfile::TempDir;

use crate::runc::random;

/// One test's bridge, tables, netns dir and /24, all unique, all removed on drop even when
/// the test panics.
pub struct NetSandbox {
    pub config: NetConfig,
    pub suffix: String,
    instances: std::sync::Mutex<Vec<InstanceId>>,
    /// Holds the lock on this test's node index (10.77.N.0/24) until the test ends.
    _claim: File,
    _dir: TempDir,
}

impl NetSandbox {
    pub fn new(protected_ports: &[u16]) -> Self {
        let suffix = format!("{:08x}", random() & 0xffff_ffff);
        let dir = tempfile::Builder::new()
            .prefix("spread-net-test.")
            .tempdir()
            .unwrap();
        let (node, claim) = claim_node();
        let config = NetConfig {
            bridge: format!("spt{suffix}"),
            node,
            protected_ports: protected_ports.to_vec(),
            netns_dir: dir.path().join("netns"),
            nat_table: format!("spread_nat_{suffix}"),
            filter_table: format!("spread_filter_{suffix}"),
            ..NetConfig::default()
        };
        Self {
            config,
            suffix,
            instances: std::sync::Mutex::new(Vec::new()),
            _claim: claim,
            _dir: dir,
        }
    }

    pub fn network(&self) -> NodeNetwork<LinuxHost> {
        NodeNetwork::new(self.config.clone(), LinuxHost::new()).unwrap()
    }

    /// A unique instance id, cleaned up (its veth) on drop.
    pub fn instance(&self, name: &str) -> InstanceId {
        let id = InstanceId::parse(&format!("{name}-{}", self.suffix)).unwrap();
        self.instances.lock().unwrap().push(id.clone());
        id
    }

    pub fn netns_path(&self, id: &InstanceId) -> PathBuf {
        self.config.netns_dir.join(id.as_str())
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Planner::new(self.config.clone())
            .unwrap()
            .subnet()
            .gateway()
    }

    /// The files left in the netns dir.
    pub fn netns_files(&self) -> Vec<String> {
        match std::fs::read_dir(&self.config.netns_dir) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Link names mentioning this test's suffix or one of its veths.
    pub fn own_links(&self) -> Vec<String> {
        let veths: Vec<String> = self
            .instances
            .lock()
            .unwrap()
            .iter()
            .map(InstanceId::veth_host_name)
            .collect();
        let links = output("ip", &["-o", "link", "show"]);
        links
            .lines()
            .filter(|l| l.contains(&self.suffix) || veths.iter().any(|v| l.contains(v.as_str())))
            .map(str::to_owned)
            .collect()
    }

    /// nftables tables mentioning this test's suffix.
    pub fn own_tables(&self) -> Vec<String> {
        output("nft", &["list", "tables"])
            .lines()
            .filter(|l| l.contains(&self.suffix))
            .map(str::to_owned)
            .collect()
    }

    /// Mounts under this test's netns dir.
    pub fn own_mounts(&self) -> Vec<String> {
        let dir = self.config.netns_dir.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&dir))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for NetSandbox {
    fn drop(&mut self) {
        for name in self.netns_files() {
            let path = self.config.netns_dir.join(name);
            let _ = Command::new("umount").arg(&path).output();
            let _ = std::fs::remove_file(&path);
        }
        for id in self.instances.lock().unwrap().iter() {
            let _ = Command::new("ip")
                .args(["link", "del", "dev", &id.veth_host_name()])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", "dev", &self.config.bridge])
            .output();
        let tables = Planner::new(self.config.clone()).unwrap().tables();
        let json = spread_net::nft_delete_tables(&tables).to_string();
        let _ = run_with_stdin("nft", &["-j", "-f", "-"], &json);
    }
}

/// Locks a node index 128..=255 (10.77.128.0/17) that no other test holds and no interface
/// uses. The lock is a `flock`, so it ends with the process even when it is killed.
fn claim_node() -> (u32, File) {
    let dir = std::env::temp_dir().join("spread-net-test-nodes");
    std::fs::create_dir_all(&dir).unwrap();
    let start = random() % 128;
    for i in 0..128 {
        let node = 128 + ((start + i) % 128) as u32;
        let file = File::create(dir.join(node.to_string())).unwrap();
        if file.try_lock().is_err() {
            continue;
        }
        let prefix = format!(" 10.77.{node}.");
        if output("ip", &["-4", "-o", "addr", "show"]).contains(&prefix) {
            continue;
        }
        return (node, file);
    }
    panic!("every test subnet in 10.77.128.0/17 is in use");
}

/// What `program args` prints; panics if it fails.
pub fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run_with_stdin(program: &str, args: &[&str], stdin: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    child.stdin.take().unwrap().write_all(stdin.as_bytes())?;
    child.wait().map(drop)
}
