//! Pure planning: the host operations that make, attach, detach and remove a node's network.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde_json::Value;

use crate::nft::{self, NftFamily, NftTable, Rules};
use crate::{
    Attachment, CONTAINER_IFNAME, ConfigError, InstanceId, Ipv4Cidr, NetConfig, NodeSubnet,
};

/// One operation on the host, as the `Host` trait performs it. The fake records these, so a
/// test can compare what ran with what was planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostOp {
    /// Create the bridge if missing, give it the gateway address and bring it up.
    EnsureBridge {
        name: String,
        gateway: Ipv4Cidr,
    },
    SetIpForward,
    /// Run an nft JSON ruleset (`{"nftables": [...]}`) in one atomic batch.
    ApplyNft {
        ruleset: Value,
    },
    CreateNetns {
        path: PathBuf,
    },
    CreateVeth(Veth),
    /// Delete a link; a missing one is not an error.
    DeleteLink {
        name: String,
    },
    /// Unmount and remove a network namespace file; a missing one is not an error.
    DeleteNetns {
        path: PathBuf,
    },
    /// Delete nftables tables; missing ones are not an error.
    DeleteNftTables {
        tables: Vec<NftTable>,
    },
}

/// A veth pair from the bridge into an instance's network namespace, configured inside:
/// `container_end` with `address`, `lo` up, and a default route via `gateway`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veth {
    pub host_end: String,
    pub bridge: String,
    pub netns: PathBuf,
    pub container_end: String,
    pub address: Ipv4Cidr,
    pub gateway: Ipv4Addr,
}

impl fmt::Display for HostOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostOp::EnsureBridge { name, gateway } => write!(f, "ensure bridge {name} {gateway}"),
            HostOp::SetIpForward => write!(f, "set ip_forward"),
            HostOp::ApplyNft { ruleset } => {
                let count = ruleset["nftables"].as_array().map_or(0, Vec::len);
                write!(f, "apply nft ruleset of {count} commands")
            }
            HostOp::CreateNetns { path } => write!(f, "create netns {}", path.display()),
            HostOp::CreateVeth(v) => write!(
                f,
                "create veth {} on {} to {} in {} with {} via {}",
                v.host_end,
                v.bridge,
                v.container_end,
                v.netns.display(),
                v.address,
                v.gateway
            ),
            HostOp::DeleteLink { name } => write!(f, "delete link {name}"),
            HostOp::DeleteNetns { path } => write!(f, "delete netns {}", path.display()),
            HostOp::DeleteNftTables { tables } => {
                let names: Vec<String> = tables.iter().map(ToString::to_string).collect();
                write!(f, "delete nft tables {}", names.join(", "))
            }
        }
    }
}

/// A validated `NetConfig` and what follows from it; every plan is made here.
#[derive(Clone, Debug)]
pub struct Planner {
    config: NetConfig,
    subnet: NodeSubnet,
    nat: NftTable,
    filter: NftTable,
}

impl Planner {
    pub fn new(config: NetConfig) -> Result<Self, ConfigError> {
        let subnet = config.validate()?;
        let nat = NftTable {
            family: NftFamily::Ip,
            name: config.nat_table.clone(),
        };
        let filter = NftTable {
            family: NftFamily::Inet,
            name: config.filter_table.clone(),
        };
        Ok(Self {
            config,
            subnet,
            nat,
            filter,
        })
    }

    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    pub fn subnet(&self) -> NodeSubnet {
        self.subnet
    }

    /// Spread's nftables tables: the nat table, then the filter table.
    pub fn tables(&self) -> Vec<NftTable> {
        vec![self.nat.clone(), self.filter.clone()]
    }

    pub fn netns_path(&self, instance: &InstanceId) -> PathBuf {
        self.config.netns_dir.join(instance.as_str())
    }

    /// The attachment `instance` has with `address`.
    pub fn attachment(&self, instance: &InstanceId, address: Ipv4Addr) -> Attachment {
        Attachment {
            instance: instance.clone(),
            netns_path: self.netns_path(instance),
            address,
            prefix: self.subnet.cidr().prefix(),
            gateway: self.subnet.gateway(),
            veth_host: instance.veth_host_name(),
        }
    }

    /// The complete nft JSON ruleset for Spread's tables (see [`nft::ruleset`]).
    pub fn ruleset(&self) -> Value {
        nft::ruleset(Rules {
            nat: &self.nat,
            filter: &self.filter,
            bridge: &self.config.bridge,
            subnet: self.subnet,
            protected_ports: &self.config.protected_ports,
        })
    }

    /// The bridge with the gateway address, forwarding on, and the nftables tables.
    pub fn setup(&self) -> Vec<HostOp> {
        vec![
            HostOp::EnsureBridge {
                name: self.config.bridge.clone(),
                gateway: self.subnet.gateway_cidr(),
            },
            HostOp::SetIpForward,
            HostOp::ApplyNft {
                ruleset: self.ruleset(),
            },
        ]
    }

    /// A network namespace for the instance and a veth pair into it from the bridge.
    pub fn attach(&self, attachment: &Attachment) -> Vec<HostOp> {
        vec![
            HostOp::CreateNetns {
                path: attachment.netns_path.clone(),
            },
            HostOp::CreateVeth(Veth {
                host_end: attachment.veth_host.clone(),
                bridge: self.config.bridge.clone(),
                netns: attachment.netns_path.clone(),
                container_end: CONTAINER_IFNAME.to_owned(),
                address: attachment.address_cidr(),
                gateway: attachment.gateway,
            }),
        ]
    }

    /// Removes what `attach` made for `instance`, known or not: the names follow from the id.
    /// The link goes first: a process still inside would keep the namespace, and the link in
    /// it, alive after the unmount.
    pub fn detach(&self, instance: &InstanceId) -> Vec<HostOp> {
        vec![
            HostOp::DeleteLink {
                name: instance.veth_host_name(),
            },
            HostOp::DeleteNetns {
                path: self.netns_path(instance),
            },
        ]
    }

    /// Everything for a node with `attachments`, from nothing.
    pub fn up<'a>(&self, attachments: impl IntoIterator<Item = &'a Attachment>) -> Vec<HostOp> {
        let mut ops = self.setup();
        for attachment in attachments {
            ops.extend(self.attach(attachment));
        }
        ops
    }

    /// Removes everything Spread made: the instances' namespaces and links, the bridge and
    /// the nftables tables.
    pub fn down<'a>(&self, instances: impl IntoIterator<Item = &'a InstanceId>) -> Vec<HostOp> {
        let mut ops: Vec<HostOp> = instances.into_iter().flat_map(|i| self.detach(i)).collect();
        ops.push(HostOp::DeleteLink {
            name: self.config.bridge.clone(),
        });
        ops.push(HostOp::DeleteNftTables {
            tables: self.tables(),
        });
        ops
    }
}

#[cfg(test)]
mod tests;
