//! `NetConfig`: the names and numbers of one node's network, validated once.

use std::path::PathBuf;

use crate::{DEFAULT_CLUSTER, IpamError, Ipv4Cidr, NodeSubnet};

/// The longest Linux interface name (`IFNAMSIZ` minus the terminating zero).
pub const MAX_IFNAME_LEN: usize = 15;

/// Everything a node's network is made from. Names are configurable so tests (and two Spread
/// nodes on one machine) never touch each other's bridge, tables or namespaces.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// The node bridge every instance's veth is a port of.
    pub bridge: String,
    /// The cluster network; node `node` gets its `node`-th /24.
    pub cluster: Ipv4Cidr,
    pub node: u32,
    /// Host TCP ports containers must not reach on any of the host's addresses (the API).
    pub protected_ports: Vec<u16>,
    /// Where instance network namespaces are bind-mounted, one file per instance, like
    /// `ip netns add` does in `/run/netns`. Spread owns everything in it.
    pub netns_dir: PathBuf,
    /// The nftables table (family `ip`) holding the egress masquerade.
    pub nat_table: String,
    /// The nftables table (family `inet`) keeping containers off the protected ports.
    pub filter_table: String,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            bridge: "spread0".into(),
            cluster: DEFAULT_CLUSTER,
            node: 0,
            protected_ports: vec![7070],
            netns_dir: PathBuf::from("/run/spread/netns"),
            nat_table: "spread_nat".into(),
            filter_table: "spread_filter".into(),
        }
    }
}

/// Why a `NetConfig` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "bridge name {name:?} is not a usable interface name: 1 to {MAX_IFNAME_LEN} characters of a-z, A-Z, 0-9, '_', '-' and '.'"
    )]
    BadBridgeName { name: String },
    #[error(
        "nftables table name {name:?} must start with a letter or '_' and hold only letters, digits and '_' (at most 64)"
    )]
    BadTableName { name: String },
    #[error("nat and filter tables are both named {name:?}; they must differ")]
    SameTables { name: String },
    #[error("protected port 0 is not a port")]
    PortZero,
    #[error("netns dir {} must be an absolute path", dir.display())]
    RelativeNetnsDir { dir: PathBuf },
    #[error(transparent)]
    Subnet(#[from] IpamError),
}

impl NetConfig {
    /// Checks every field and returns the node's subnet.
    pub fn validate(&self) -> Result<NodeSubnet, ConfigError> {
        let ifname_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= MAX_IFNAME_LEN
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                && s != "."
                && s != ".."
        };
        if !ifname_ok(&self.bridge) {
            return Err(ConfigError::BadBridgeName {
                name: self.bridge.clone(),
            });
        }
        for name in [&self.nat_table, &self.filter_table] {
            let starts_ok = name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
            let rest_ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !starts_ok || !rest_ok || name.len() > 64 {
                return Err(ConfigError::BadTableName { name: name.clone() });
            }
        }
        if self.nat_table == self.filter_table {
            return Err(ConfigError::SameTables {
                name: self.nat_table.clone(),
            });
        }
        if self.protected_ports.contains(&0) {
            return Err(ConfigError::PortZero);
        }
        if !self.netns_dir.is_absolute() {
            return Err(ConfigError::RelativeNetnsDir {
                dir: self.netns_dir.clone(),
            });
        }
        Ok(NodeSubnet::for_node(self.cluster, self.node)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_valid_and_gives_node_zero_10_77_0_0() {
        let subnet = NetConfig::default().validate().unwrap();
        assert_eq!(subnet.cidr().to_string(), "10.77.0.0/24");
    }

    #[test]
    fn bridge_names_longer_than_an_interface_name_are_refused() {
        let config = NetConfig {
            bridge: "spread-bridge-123".into(),
            ..NetConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::BadBridgeName { .. })
        ));
    }

    #[test]
    fn table_names_nft_would_misread_are_refused() {
        for bad in ["", "1abc", "a-b", "a b", "a\"b"] {
            let config = NetConfig {
                nat_table: bad.into(),
                ..NetConfig::default()
            };
            assert_eq!(
                config.validate(),
                Err(ConfigError::BadTableName { name: bad.into() })
            );
        }
    }

    #[test]
    fn a_relative_netns_dir_and_port_zero_are_refused() {
        let relative = NetConfig {
            netns_dir: "netns".into(),
            ..NetConfig::default()
        };
        assert!(matches!(
            relative.validate(),
            Err(ConfigError::RelativeNetnsDir { .. })
        ));
        let zero = NetConfig {
            protected_ports: vec![7070, 0],
            ..NetConfig::default()
        };
        assert_eq!(zero.validate(), Err(ConfigError::PortZero));
    }

    #[test]
    fn a_config_reads_from_json_with_defaults_for_missing_fields() {
        let config: NetConfig =
            serde_json::from_str(r#"{"node": 4, "cluster": "10.80.0.0/16"}"#).unwrap();
        assert_eq!(config.bridge, "spread0");
        assert_eq!(
            config.validate().unwrap().cidr().to_string(),
            "10.80.4.0/24"
        );
    }
}
