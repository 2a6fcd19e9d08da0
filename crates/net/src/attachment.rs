//! Instance ids, the names derived from them, and `Attachment`: an instance's place on the bridge.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::Ipv4Cidr;

/// The longest instance id accepted.
pub const MAX_INSTANCE_ID_LEN: usize = 64;

/// The interface name an instance sees inside its network namespace.
pub const CONTAINER_IFNAME: &str = "eth0";

/// The prefix of every host-side veth name Spread makes.
pub const VETH_PREFIX: &str = "spv";

/// An instance id: 1 to 64 characters of `a-z`, `0-9`, `_` and `-`. It names the instance's
/// network namespace file, so nothing a file system could misread gets in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct InstanceId(String);

/// Why a string is not a valid instance id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceIdError {
    #[error("instance id is empty")]
    Empty,
    #[error("instance id {id:?} is {len} characters long, the limit is {MAX_INSTANCE_ID_LEN}")]
    TooLong { id: String, len: usize },
    #[error("instance id {id:?} contains {ch:?}; only a-z, 0-9, '_' and '-' are allowed")]
    BadChar { id: String, ch: char },
}

impl InstanceId {
    pub fn parse(id: &str) -> Result<Self, InstanceIdError> {
        if id.is_empty() {
            return Err(InstanceIdError::Empty);
        }
        let len = id.chars().count();
        if len > MAX_INSTANCE_ID_LEN {
            return Err(InstanceIdError::TooLong {
                id: id.to_owned(),
                len,
            });
        }
        if let Some(ch) = id
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
        {
            return Err(InstanceIdError::BadChar {
                id: id.to_owned(),
                ch,
            });
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host end of this instance's veth pair: `spv` and 12 hex digits of a hash of the
    /// id, 15 characters, the most a Linux interface name holds. The hash (64-bit FNV-1a, then
    /// murmur3's finalizer so ids differing in one character differ everywhere) must never
    /// change: `detach` and `teardown` find the links of a previous run by their names.
    pub fn veth_host_name(&self) -> String {
        let mut h = self.0.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        format!("{VETH_PREFIX}{:012x}", h & 0xffff_ffff_ffff)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for InstanceId {
    type Err = InstanceIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Where an instance sits on the node network: what the runtime needs (`netns_path`) and
/// what the gateway needs (`address`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    pub instance: InstanceId,
    /// The network namespace to give the container (`linux.namespaces` in its config.json).
    pub netns_path: PathBuf,
    pub address: Ipv4Addr,
    /// The prefix length of `address` (the node subnet's).
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// The host end of the veth pair, a port of the bridge.
    pub veth_host: String,
}

impl Attachment {
    /// The address as configured on the container's `eth0`, e.g. `10.77.3.2/24`.
    pub fn address_cidr(&self) -> Ipv4Cidr {
        Ipv4Cidr::new(self.address, self.prefix).expect("a node subnet prefix is at most 32")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_in_an_interface_name_and_differ_between_instances() {
        let a = InstanceId::parse("web-1").unwrap().veth_host_name();
        let b = InstanceId::parse("web-2").unwrap().veth_host_name();
        assert_eq!(a.len(), 15);
        assert!(a.starts_with(VETH_PREFIX));
        assert_ne!(a, b);
    }

    #[test]
    fn veth_names_are_stable_across_releases() {
        // recover() relies on this: a changed hash would orphan the links of running instances.
        let id = InstanceId::parse("web-1").unwrap();
        insta::assert_snapshot!(id.veth_host_name(), @"spvf9d41a1b33b4");
    }

    #[test]
    fn instance_ids_that_a_file_name_could_misread_are_refused() {
        assert_eq!(InstanceId::parse(""), Err(InstanceIdError::Empty));
        for bad in ["..", "a/b", "Web", "a b", "a.b"] {
            assert!(
                matches!(InstanceId::parse(bad), Err(InstanceIdError::BadChar { .. })),
                "{bad}"
            );
        }
        let long = "a".repeat(65);
        assert_eq!(
            InstanceId::parse(&long).unwrap_err().to_string(),
            format!("instance id {long:?} is 65 characters long, the limit is 64")
        );
    }
}
