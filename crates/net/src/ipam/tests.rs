//! Tests of node subnets and instance address allocation.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::*;

fn subnet(node: u32) -> NodeSubnet {
    NodeSubnet::for_node(DEFAULT_CLUSTER, node).unwrap()
}

#[test]
fn node_n_gets_the_nth_slash_24_of_the_default_cluster_network() {
    let s = subnet(3);
    assert_eq!(s.cidr().to_string(), "10.77.3.0/24");
    assert_eq!(s.gateway(), Ipv4Addr::new(10, 77, 3, 1));
    assert_eq!(s.gateway_cidr().to_string(), "10.77.3.1/24");
}

#[test]
fn a_node_index_beyond_the_cluster_network_is_refused() {
    let err = NodeSubnet::for_node(DEFAULT_CLUSTER, 256).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node index 256 does not fit in cluster network 10.77.0.0/16, which holds 256 node subnets"
    );
}

#[test]
fn a_cluster_network_with_host_bits_or_smaller_than_a_slash_24_is_refused() {
    let with_host_bits: Ipv4Cidr = "10.77.1.0/16".parse().unwrap();
    assert!(matches!(
        NodeSubnet::for_node(with_host_bits, 0),
        Err(IpamError::NotANetwork { .. })
    ));
    let too_small: Ipv4Cidr = "10.77.1.0/25".parse().unwrap();
    assert!(matches!(
        NodeSubnet::for_node(too_small, 0),
        Err(IpamError::ClusterTooSmall { .. })
    ));
    let single: Ipv4Cidr = "10.77.9.0/24".parse().unwrap();
    assert_eq!(
        NodeSubnet::for_node(single, 0).unwrap().cidr(),
        "10.77.9.0/24".parse().unwrap()
    );
}

#[test]
fn cidrs_that_are_not_an_address_and_a_length_up_to_32_are_refused() {
    for bad in [
        "10.77.0.0",
        "10.77.0.0/33",
        "10.77.0.0/+8",
        "10.77.0/16",
        "/16",
        "10.77.0.0/",
    ] {
        assert_eq!(
            bad.parse::<Ipv4Cidr>(),
            Err(IpamError::BadCidr { input: bad.into() }),
            "{bad}"
        );
    }
    assert_eq!(
        "0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().to_string(),
        "0.0.0.0/0"
    );
}

#[test]
fn the_first_allocation_is_dot_2_and_later_ones_continue_after_the_previous() {
    let s = subnet(0);
    let mut used = BTreeSet::new();
    let first = s.allocate(&used, None).unwrap();
    assert_eq!(first, Ipv4Addr::new(10, 77, 0, 2));
    used.insert(first);
    let second = s.allocate(&used, Some(first)).unwrap();
    assert_eq!(second, Ipv4Addr::new(10, 77, 0, 3));
    // .2 is free again, but the search goes on from the last one handed out.
    used.remove(&first);
    used.insert(second);
    assert_eq!(
        s.allocate(&used, Some(second)).unwrap(),
        Ipv4Addr::new(10, 77, 0, 4)
    );
}

#[test]
fn allocation_wraps_around_after_dot_254() {
    let s = subnet(0);
    let used = BTreeSet::from([Ipv4Addr::new(10, 77, 0, 254)]);
    assert_eq!(
        s.allocate(&used, Some(Ipv4Addr::new(10, 77, 0, 254)))
            .unwrap(),
        Ipv4Addr::new(10, 77, 0, 2)
    );
}

#[test]
fn a_full_subnet_is_an_error_naming_the_subnet() {
    let s = subnet(7);
    let used: BTreeSet<_> = (2..=254).map(|h| Ipv4Addr::new(10, 77, 7, h)).collect();
    let err = s.allocate(&used, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node subnet 10.77.7.0/24 is full: all 253 instance addresses are in use"
    );
}

#[test]
fn cidrs_serialize_as_strings() {
    let cidr: Ipv4Cidr = "10.77.0.0/16".parse().unwrap();
    assert_eq!(serde_json::to_string(&cidr).unwrap(), "\"10.77.0.0/16\"");
    let back: Ipv4Cidr = serde_json::from_str("\"10.77.0.0/16\"").unwrap();
    assert_eq!(back, cidr);
    assert!(serde_json::from_str::<Ipv4Cidr>("\"10.77.0.0\"").is_err());
}

proptest! {
    #[test]
    fn allocation_never_hands_out_a_reserved_or_used_address(
        node in 0u32..256,
        used_hosts in proptest::collection::btree_set(0u8..=255, 0..256),
        after in proptest::option::of(0u8..=255),
    ) {
        let s = subnet(node);
        let base = s.cidr().addr().octets();
        let at = |h: u8| Ipv4Addr::new(base[0], base[1], base[2], h);
        let used: BTreeSet<_> = used_hosts.iter().map(|h| at(*h)).collect();
        match s.allocate(&used, after.map(at)) {
            Ok(addr) => {
                prop_assert!(s.is_instance_address(addr));
                prop_assert!(addr != s.gateway() && addr != at(0) && addr != at(255));
                prop_assert!(!used.contains(&addr));
            }
            Err(IpamError::Full { .. }) => {
                prop_assert!((2..=254).all(|h| used_hosts.contains(&h)));
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn allocating_until_full_never_duplicates(node in 0u32..256, start in 0u8..=255) {
        let s = subnet(node);
        let mut used = BTreeSet::new();
        let mut last = Some(Ipv4Addr::from(u32::from(s.cidr().addr()) | u32::from(start)));
        while let Ok(addr) = s.allocate(&used, last) {
            prop_assert!(used.insert(addr), "{addr} handed out twice");
            last = Some(addr);
        }
        prop_assert_eq!(used.len(), 253);
    }

    #[test]
    fn cidrs_round_trip_through_their_text(a in any::<u32>(), prefix in 0u8..=32) {
        let cidr = Ipv4Cidr::new(Ipv4Addr::from(a), prefix).unwrap();
        prop_assert_eq!(cidr.to_string().parse::<Ipv4Cidr>().unwrap(), cidr);
        prop_assert!(cidr.contains(cidr.addr()));
    }
}
