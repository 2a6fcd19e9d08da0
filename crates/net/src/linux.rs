//! `LinuxHost`: the `Host` trait carried out over netlink and system calls for what every
//! instance start and stop does, and with `ip`, `nft` and `nsenter` for node setup and recovery.

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::command::run;
use crate::{Host, HostError, Ipv4Cidr, NftTable, Veth, netlink, nft};

const IP: &str = "ip";
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// The host as it is: instance namespaces and links changed in-process, the bridge and firewall
/// by running iproute2 and nftables programs found on `PATH`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinuxHost;

impl LinuxHost {
    pub fn new() -> Self {
        Self
    }

    async fn ip(&self, args: &[&str]) -> Result<String, HostError> {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        run(IP, &args, None).await
    }

    /// `ip args` inside the namespace at `netns`, with `stdin` (for `-batch -`).
    async fn ip_in(
        &self,
        netns: &Path,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, HostError> {
        let mut net = OsStr::new("--net=").to_owned();
        net.push(netns);
        let mut all = vec![net.as_os_str(), OsStr::new(IP)];
        all.extend(args.iter().map(OsStr::new));
        run("nsenter", &all, stdin.map(str::as_bytes)).await
    }
}

impl Host for LinuxHost {
    async fn ensure_bridge(&self, name: &str, gateway: Ipv4Cidr) -> Result<(), HostError> {
        match self
            .ip(&["link", "add", "name", name, "type", "bridge"])
            .await
        {
            Ok(_) => {}
            Err(HostError::Failed { stderr, .. }) if stderr.contains("File exists") => {
                let kind = self.link_kind(name).await?;
                if kind != "bridge" {
                    return Err(HostError::NotABridge {
                        name: name.to_owned(),
                        kind,
                    });
                }
            }
            Err(e) => return Err(e),
        }
        let gateway = gateway.to_string();
        self.ip(&["addr", "replace", &gateway, "dev", name]).await?;
        self.ip(&["link", "set", "dev", name, "up"]).await?;
        Ok(())
    }

    async fn set_ip_forward(&self) -> Result<(), HostError> {
        tokio::fs::write(IP_FORWARD, "1\n")
            .await
            .map_err(|source| HostError::Io {
                action: "turn on forwarding in",
                path: IP_FORWARD.into(),
                source,
            })
    }

    async fn apply_nft(&self, ruleset: &Value) -> Result<(), HostError> {
        let args = ["-j", "-f", "-"].map(OsStr::new);
        let json = ruleset.to_string();
        run("nft", &args, Some(json.as_bytes())).await?;
        Ok(())
    }

    async fn delete_nft_tables(&self, tables: &[NftTable]) -> Result<(), HostError> {
        self.apply_nft(&nft::delete_tables(tables)).await
    }

    async fn create_netns(&self, path: &Path) -> Result<(), HostError> {
        let io_error = |action, path: &Path| {
            let path = path.to_owned();
            move |source| HostError::Io {
                action,
                path,
                source,
            }
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(io_error("create netns dir", dir))?;
        }
        // The mount point, made exclusively so two attaches of one name cannot share it.
        tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .await
            .map_err(io_error("create netns file", path))?;
        if let Err(e) = netlink::create_netns(path).await {
            let _ = tokio::fs::remove_file(path).await;
            return Err(e);
        }
        Ok(())
    }

    async fn delete_netns(&self, path: &Path) -> Result<(), HostError> {
        if !path.exists() {
            return Ok(());
        }
        // A file left by an attach that failed before the bind mount is simply not mounted.
        netlink::unmount_netns(path)?;
        match tokio::fs::remove_file(path).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(HostError::Io {
                action: "remove netns file",
                path: path.to_owned(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    async fn create_veth(&self, veth: &Veth) -> Result<(), HostError> {
        netlink::create_veth(veth).await
    }

    async fn delete_link(&self, name: &str) -> Result<(), HostError> {
        netlink::delete_link(name).await
    }

    async fn list_netns(&self, dir: &Path) -> Result<Vec<String>, HostError> {
        let read = std::fs::read_dir(dir);
        let entries = match read {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.and_then(|entries| entries.collect::<Result<Vec<_>, _>>()),
        };
        let entries = entries.map_err(|source| HostError::Io {
            action: "list netns dir",
            path: dir.to_owned(),
            source,
        })?;
        let mut names: Vec<String> = entries
            .into_iter()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn netns_address(
        &self,
        netns: &Path,
        ifname: &str,
    ) -> Result<Option<Ipv4Cidr>, HostError> {
        let args = ["-j", "-4", "addr", "show", "dev", ifname];
        let out = match self.ip_in(netns, &args, None).await {
            Err(HostError::Failed { stderr, .. }) if stderr.contains("does not exist") => {
                return Ok(None);
            }
            other => other?,
        };
        let links: Vec<Link> = serde_json::from_str(&out).map_err(|e| HostError::Output {
            command: format!("ip -j -4 addr show dev {ifname} in {}", netns.display()),
            detail: e.to_string(),
        })?;
        let found = links
            .iter()
            .flat_map(|l| &l.addr_info)
            .find(|a| a.family == "inet");
        Ok(found.and_then(|a| Ipv4Cidr::new(a.local.parse().ok()?, a.prefixlen).ok()))
    }
}

impl LinuxHost {
    async fn link_kind(&self, name: &str) -> Result<String, HostError> {
        let out = self.ip(&["-j", "-d", "link", "show", "dev", name]).await?;
        let links: Vec<Link> = serde_json::from_str(&out).map_err(|e| HostError::Output {
            command: format!("ip -j -d link show dev {name}"),
            detail: e.to_string(),
        })?;
        let kind = links
            .first()
            .and_then(|l| l.linkinfo.as_ref())
            .map(|i| i.info_kind.clone());
        Ok(kind.unwrap_or_else(|| "plain".to_owned()))
    }
}

/// The parts of `ip -j` output read here.
#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    addr_info: Vec<AddrInfo>,
    linkinfo: Option<LinkInfo>,
}

#[derive(Deserialize)]
struct AddrInfo {
    family: String,
    local: String,
    prefixlen: u8,
}

#[derive(Deserialize)]
struct LinkInfo {
    info_kind: String,
}
