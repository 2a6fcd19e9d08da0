//! Tests of `NodeNetwork` against `FakeHost`: what it asks of the host, and what it remembers.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::*;
use crate::FakeHost;

fn config() -> NetConfig {
    NetConfig {
        node: 5,
        netns_dir: PathBuf::from("/run/spread-test/netns"),
        ..NetConfig::default()
    }
}

fn id(s: &str) -> InstanceId {
    InstanceId::parse(s).unwrap()
}

async fn network(fake: &FakeHost) -> NodeNetwork<FakeHost> {
    let net = NodeNetwork::new(config(), fake.clone()).unwrap();
    net.setup().await.unwrap();
    net
}

#[tokio::test]
async fn the_host_sees_exactly_the_planned_operations_for_setup_and_two_attaches() {
    let fake = FakeHost::new();
    let mut net = network(&fake).await;
    let a = net.attach(&id("web-1")).await.unwrap();
    let b = net.attach(&id("web-2")).await.unwrap();
    assert_eq!(fake.ops(), net.planner().up([&a, &b]));

    fake.take_ops();
    net.teardown().await.unwrap();
    assert_eq!(fake.ops(), net.planner().down([&a.instance, &b.instance]));
}

#[tokio::test]
async fn instances_get_consecutive_addresses_behind_the_node_gateway() {
    let fake = FakeHost::new();
    let mut net = network(&fake).await;
    let a = net.attach(&id("web-1")).await.unwrap();
    let b = net.attach(&id("web-2")).await.unwrap();
    assert_eq!(a.address, Ipv4Addr::new(10, 77, 5, 2));
    assert_eq!(b.address, Ipv4Addr::new(10, 77, 5, 3));
    assert_eq!(a.gateway, Ipv4Addr::new(10, 77, 5, 1));
    assert_eq!(a.netns_path, PathBuf::from("/run/spread-test/netns/web-1"));
    assert_eq!(
        fake.bridge_address("spread0"),
        Some("10.77.5.1/24".parse().unwrap())
    );
    assert!(fake.ip_forward());
    assert_eq!(fake.tables(), ["inet spread_filter", "ip spread_nat"]);
}

#[tokio::test]
async fn attaching_an_attached_instance_returns_its_attachment_and_changes_nothing() {
    let fake = FakeHost::new();
    let mut net = network(&fake).await;
    let first = net.attach(&id("web-1")).await.unwrap();
    fake.take_ops();
    assert_eq!(net.attach(&id("web-1")).await.unwrap(), first);
    assert_eq!(fake.ops(), []);
}

#[tokio::test]
async fn detaching_removes_the_veth_and_namespace_and_frees_the_address() {
    let fake = FakeHost::new();
    let mut net = network(&fake).await;
    let a = net.attach(&id("web-1")).await.unwrap();
    net.detach(&id("web-1")).await.unwrap();
    assert!(net.attachment(&id("web-1")).is_none());
    assert_eq!(fake.links(), ["spread0"]);
    assert_eq!(fake.netns(), Vec::<PathBuf>::new());
    // Detaching again is fine.
    net.detach(&id("web-1")).await.unwrap();
    // The freed address comes back once the rest of the subnet has been handed out.
    for n in 0..252 {
        net.attach(&id(&format!("other-{n}"))).await.unwrap();
    }
    assert_eq!(net.attach(&id("last")).await.unwrap().address, a.address);
}

#[tokio::test]
async fn a_failed_attach_removes_what_it_made_and_keeps_the_address_free() {
    let fake = FakeHost::new();
    let mut net = network(&fake).await;
    fake.fail_next(|op| matches!(op, HostOp::CreateVeth(_)));
    let err = net.attach(&id("web-1")).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("attach instance web-1: `create veth"),
        "{err}"
    );
    assert_eq!(fake.netns(), Vec::<PathBuf>::new());
    assert_eq!(fake.links(), ["spread0"]);
    assert!(net.attachment(&id("web-1")).is_none());
    let again = net.attach(&id("web-1")).await.unwrap();
    assert_eq!(again.address, Ipv4Addr::new(10, 77, 5, 2));
}

#[tokio::test]
async fn a_full_subnet_is_an_error_naming_the_instance() {
    let fake = FakeHost::new();
    let mut net = network(&fake).await;
    for n in 0..253 {
        net.attach(&id(&format!("i-{n}"))).await.unwrap();
    }
    let err = net.attach(&id("one-more")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "attach instance one-more: node subnet 10.77.5.0/24 is full: all 253 instance addresses are in use"
    );
}

#[tokio::test]
async fn teardown_leaves_no_link_namespace_or_table_behind() {
    let fake = FakeHost::new();
    let mut net = network(&fake).await;
    net.attach(&id("web-1")).await.unwrap();
    net.attach(&id("web-2")).await.unwrap();
    net.teardown().await.unwrap();
    assert_eq!(fake.links(), Vec::<String>::new());
    assert_eq!(fake.netns(), Vec::<PathBuf>::new());
    assert_eq!(fake.tables(), Vec::<String>::new());
    assert_eq!(net.attachments().count(), 0);
}

#[tokio::test]
async fn teardown_also_removes_namespaces_it_did_not_know_about() {
    let fake = FakeHost::new();
    let mut before = network(&fake).await;
    before.attach(&id("web-1")).await.unwrap();
    drop(before);
    let mut after = NodeNetwork::new(config(), fake.clone()).unwrap();
    after.teardown().await.unwrap();
    assert_eq!(fake.netns(), Vec::<PathBuf>::new());
    assert_eq!(fake.links(), Vec::<String>::new());
}

#[tokio::test]
async fn recover_finds_the_attachments_of_a_previous_run_and_allocates_after_them() {
    let fake = FakeHost::new();
    let mut before = network(&fake).await;
    let a = before.attach(&id("web-1")).await.unwrap();
    let b = before.attach(&id("web-2")).await.unwrap();
    drop(before);

    let mut after = NodeNetwork::new(config(), fake.clone()).unwrap();
    let recovery = after.recover().await.unwrap();
    assert_eq!(recovery.attached, [id("web-1"), id("web-2")]);
    assert_eq!(after.attachments().cloned().collect::<Vec<_>>(), [a, b]);
    let c = after.attach(&id("web-3")).await.unwrap();
    assert_eq!(c.address, Ipv4Addr::new(10, 77, 5, 4));
}

#[tokio::test]
async fn recover_removes_a_namespace_whose_attach_never_finished() {
    let fake = FakeHost::new();
    let mut before = network(&fake).await;
    before.attach(&id("web-1")).await.unwrap();
    // A crash between creating the namespace and the veth leaves a namespace with no address.
    let half = config().netns_dir.join("web-2");
    fake.create_netns(&half).await.unwrap();
    drop(before);

    let mut after = NodeNetwork::new(config(), fake.clone()).unwrap();
    let recovery = after.recover().await.unwrap();
    assert_eq!(recovery.attached, [id("web-1")]);
    assert_eq!(recovery.removed, [id("web-2")]);
    assert!(!fake.netns().contains(&half));
    after.attach(&id("web-2")).await.unwrap();
}

#[tokio::test]
async fn recover_leaves_files_not_named_like_instances_alone() {
    let fake = FakeHost::new();
    let stray = config().netns_dir.join("Not.An.Instance");
    fake.create_netns(&stray).await.unwrap();
    let mut net = NodeNetwork::new(config(), fake.clone()).unwrap();
    let recovery = net.recover().await.unwrap();
    assert_eq!(recovery.ignored, ["Not.An.Instance"]);
    assert!(fake.netns().contains(&stray));
}

#[test]
fn an_invalid_config_is_refused_when_the_network_is_made() {
    let config = NetConfig {
        nat_table: "bad name".into(),
        ..config()
    };
    let err = NodeNetwork::new(config, FakeHost::new()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("node network config: nftables table name \"bad name\"")
    );
}
