//! Tests of the planned host operations and snapshots of the nftables ruleset.

use std::net::Ipv4Addr;

use super::*;

fn planner(ports: &[u16]) -> Planner {
    Planner::new(NetConfig {
        node: 3,
        protected_ports: ports.to_vec(),
        ..NetConfig::default()
    })
    .unwrap()
}

fn id(s: &str) -> InstanceId {
    InstanceId::parse(s).unwrap()
}

fn listing(ops: &[HostOp]) -> String {
    ops.iter().map(|op| format!("{op}\n")).collect()
}

#[test]
fn the_ruleset_masquerades_egress_and_drops_container_traffic_to_the_api_port() {
    insta::assert_json_snapshot!("ruleset_one_port", planner(&[7070]).ruleset());
}

#[test]
fn several_protected_ports_become_one_sorted_set() {
    insta::assert_json_snapshot!("ruleset_two_ports", planner(&[9090, 7070, 9090]).ruleset());
}

#[test]
fn without_protected_ports_the_filter_table_only_accepts() {
    let ruleset = planner(&[]).ruleset();
    let rules: Vec<&Value> = ruleset["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["add"]["rule"]["table"] == "spread_filter")
        .collect();
    assert!(rules.is_empty(), "{rules:?}");
    assert!(ruleset.to_string().contains(r#""policy":"accept""#));
}

#[test]
fn every_table_is_added_before_it_is_deleted_so_replacing_works_when_absent() {
    let ruleset = planner(&[7070]).ruleset();
    let commands = ruleset["nftables"].as_array().unwrap();
    for (i, command) in commands.iter().enumerate() {
        if let Some(table) = command.get("delete").and_then(|d| d.get("table")) {
            assert_eq!(commands[i - 1]["add"]["table"], *table);
            assert_eq!(commands[i + 1]["add"]["table"], *table);
        }
    }
}

#[test]
fn bringing_up_a_node_with_two_instances_plans_bridge_forwarding_rules_then_each_veth() {
    let p = planner(&[7070]);
    let a = p.attachment(&id("web-1"), Ipv4Addr::new(10, 77, 3, 2));
    let b = p.attachment(&id("web-2"), Ipv4Addr::new(10, 77, 3, 3));
    insta::assert_snapshot!(listing(&p.up([&a, &b])), @r"
    ensure bridge spread0 10.77.3.1/24
    set ip_forward
    apply nft ruleset of 11 commands
    create netns /run/spread/netns/web-1
    create veth spvf9d41a1b33b4 on spread0 to eth0 in /run/spread/netns/web-1 with 10.77.3.2/24 via 10.77.3.1
    create netns /run/spread/netns/web-2
    create veth spvfb88335e6001 on spread0 to eth0 in /run/spread/netns/web-2 with 10.77.3.3/24 via 10.77.3.1
    ");
}

#[test]
fn bringing_down_a_node_deletes_links_before_namespaces_then_the_bridge_and_tables() {
    let p = planner(&[7070]);
    insta::assert_snapshot!(listing(&p.down([&id("web-1")])), @r"
    delete link spvf9d41a1b33b4
    delete netns /run/spread/netns/web-1
    delete link spread0
    delete nft tables ip spread_nat, inet spread_filter
    ");
}

#[test]
fn an_attachment_uses_the_node_gateway_and_the_instance_named_netns() {
    let p = planner(&[7070]);
    let a = p.attachment(&id("web-1"), Ipv4Addr::new(10, 77, 3, 9));
    assert_eq!(a.gateway, Ipv4Addr::new(10, 77, 3, 1));
    assert_eq!(a.address_cidr().to_string(), "10.77.3.9/24");
    assert_eq!(a.netns_path, PathBuf::from("/run/spread/netns/web-1"));
    assert_eq!(a.veth_host, id("web-1").veth_host_name());
}

#[test]
fn deleting_tables_adds_each_first_so_missing_tables_are_no_error() {
    insta::assert_json_snapshot!("delete_tables", nft::delete_tables(&planner(&[]).tables()));
}
