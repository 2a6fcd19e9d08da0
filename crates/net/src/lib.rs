//! Node networking: the bridge, a network namespace and veth pair per instance, addresses and nftables rules.
//!
//! The pure parts (`ipam`, `nft`, `plan`) decide; `NodeNetwork` carries their plans out
//! through the `Host` trait, implemented by `LinuxHost` (netlink and system calls on the instance hot path, iproute2 and nftables for
//! the rest) and
//! by `FakeHost` for tests.

mod attachment;
mod command;
mod config;
mod fake;
mod host;
mod ipam;
mod linux;
mod netlink;
mod nft;
mod node;
mod plan;
#[allow(unsafe_code)]
mod sys;

pub use attachment::{
    Attachment, CONTAINER_IFNAME, InstanceId, InstanceIdError, MAX_INSTANCE_ID_LEN, VETH_PREFIX,
};
pub use config::{ConfigError, MAX_IFNAME_LEN, NetConfig};
pub use fake::FakeHost;
pub use host::{Host, HostError, perform};
pub use ipam::{DEFAULT_CLUSTER, IpamError, Ipv4Cidr, NODE_PREFIX, NodeSubnet};
pub use linux::LinuxHost;
pub use nft::{NftFamily, NftTable, delete_tables as nft_delete_tables};
pub use node::{NetError, NodeNetwork, Recovery};
pub use plan::{HostOp, Planner, Veth};
