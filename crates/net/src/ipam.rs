//! Addresses: the node's /24 inside the cluster network, and instance addresses handed out in it.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The cluster network when none is configured: node N gets `10.77.N.0/24`.
pub const DEFAULT_CLUSTER: Ipv4Cidr = Ipv4Cidr {
    addr: Ipv4Addr::new(10, 77, 0, 0),
    prefix: 16,
};

/// The prefix length of every node subnet.
pub const NODE_PREFIX: u8 = 24;

/// The host part of the gateway address (the bridge's own address).
const GATEWAY_HOST: u8 = 1;
/// The host parts instances get: everything but the network, gateway and broadcast addresses.
const FIRST_INSTANCE_HOST: u8 = 2;
const LAST_INSTANCE_HOST: u8 = 254;

/// An IPv4 address with a prefix length, as in `10.77.3.1/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix: u8,
}

/// Why an address, network or allocation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("address {input:?} is not of the form a.b.c.d/len with len at most 32")]
    BadCidr { input: String },
    #[error("cluster network {cluster} has host bits set; did you mean {}/{}?", cluster.network(), cluster.prefix())]
    NotANetwork { cluster: Ipv4Cidr },
    #[error("cluster network {cluster} is smaller than a /24; node subnets are /24s inside it")]
    ClusterTooSmall { cluster: Ipv4Cidr },
    #[error(
        "node index {node} does not fit in cluster network {cluster}, which holds {count} node subnets"
    )]
    NodeOutOfRange {
        cluster: Ipv4Cidr,
        node: u32,
        count: u32,
    },
    #[error("node subnet {subnet} is full: all {} instance addresses are in use", LAST_INSTANCE_HOST - FIRST_INSTANCE_HOST + 1)]
    Full { subnet: Ipv4Cidr },
}

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, IpamError> {
        if prefix > 32 {
            return Err(IpamError::BadCidr {
                input: format!("{addr}/{prefix}"),
            });
        }
        Ok(Self { addr, prefix })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The address with its host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = IpamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpamError::BadCidr {
            input: s.to_owned(),
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr = addr.parse().map_err(|_| bad())?;
        // Digits only: `u8::from_str` would also take a leading '+'.
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Self::new(addr, prefix.parse().map_err(|_| bad())?).map_err(|_| bad())
    }
}

impl serde::Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One node's /24: its gateway is `.1`, instances get `.2` to `.254`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeSubnet {
    network: Ipv4Addr,
}

impl NodeSubnet {
    /// The `node`-th /24 of `cluster`.
    pub fn for_node(cluster: Ipv4Cidr, node: u32) -> Result<Self, IpamError> {
        if cluster.addr != cluster.network() {
            return Err(IpamError::NotANetwork { cluster });
        }
        if cluster.prefix > NODE_PREFIX {
            return Err(IpamError::ClusterTooSmall { cluster });
        }
        let count = 1u32 << (NODE_PREFIX - cluster.prefix);
        if node >= count {
            return Err(IpamError::NodeOutOfRange {
                cluster,
                node,
                count,
            });
        }
        let network = Ipv4Addr::from(u32::from(cluster.addr) + (node << 8));
        Ok(Self { network })
    }

    /// The subnet as a network, e.g. `10.77.3.0/24`.
    pub fn cidr(&self) -> Ipv4Cidr {
        Ipv4Cidr {
            addr: self.network,
            prefix: NODE_PREFIX,
        }
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.host(GATEWAY_HOST)
    }

    /// The bridge's address with the subnet's prefix, e.g. `10.77.3.1/24`.
    pub fn gateway_cidr(&self) -> Ipv4Cidr {
        self.with_prefix(self.gateway())
    }

    /// `addr` with the subnet's prefix, as an interface address.
    pub fn with_prefix(&self, addr: Ipv4Addr) -> Ipv4Cidr {
        Ipv4Cidr {
            addr,
            prefix: NODE_PREFIX,
        }
    }

    /// Whether `addr` is one an instance may hold: inside the subnet and not the network,
    /// gateway or broadcast address.
    pub fn is_instance_address(&self, addr: Ipv4Addr) -> bool {
        self.cidr().contains(addr)
            && (FIRST_INSTANCE_HOST..=LAST_INSTANCE_HOST).contains(&addr.octets()[3])
    }

    /// The first instance address not in `used`, searching upward from just after `after`
    /// and wrapping around, so a freed address is not handed out again at once.
    pub fn allocate(
        &self,
        used: &BTreeSet<Ipv4Addr>,
        after: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, IpamError> {
        let start = after
            .filter(|a| self.is_instance_address(*a))
            .map_or(FIRST_INSTANCE_HOST, |a| a.octets()[3] + 1);
        let hosts = FIRST_INSTANCE_HOST..=LAST_INSTANCE_HOST;
        hosts
            .clone()
            .filter(|h| *h >= start)
            .chain(hosts.filter(|h| *h < start))
            .map(|h| self.host(h))
            .find(|a| !used.contains(a))
            .ok_or(IpamError::Full {
                subnet: self.cidr(),
            })
    }

    fn host(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | u32::from(host))
    }
}

#[cfg(test)]
mod tests;
