//! Node networking on the real host, as root: bridges, namespaces, veths and nftables made with
//! unique names by each test and removed after it, pass or fail.

mod support;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};

use spread_net::{CONTAINER_IFNAME, Host, LinuxHost};
use support::{Sandbox, eventually, ip_json_in, output, ping, random, tcp_connect};

#[tokio::test]
async fn two_attached_instances_have_an_address_and_a_route_and_reach_each_other_and_the_gateway() {
    let sandbox = Sandbox::new(&[]);
    let mut net = sandbox.network();
    net.setup().await.unwrap();
    let a = net.attach(&sandbox.instance("a")).await.unwrap();
    let b = net.attach(&sandbox.instance("b")).await.unwrap();

    for x in [&a, &b] {
        let addrs = ip_json_in(
            &x.netns_path,
            &["-j", "-4", "addr", "show", "dev", CONTAINER_IFNAME],
        );
        assert_eq!(
            addrs[0]["addr_info"][0]["local"],
            x.address.to_string(),
            "{addrs}"
        );
        assert_eq!(addrs[0]["addr_info"][0]["prefixlen"], 24, "{addrs}");
        let routes = ip_json_in(&x.netns_path, &["-j", "route", "show", "default"]);
        assert_eq!(
            routes[0]["gateway"],
            sandbox.gateway().to_string(),
            "{routes}"
        );
        assert_eq!(routes[0]["dev"], CONTAINER_IFNAME, "{routes}");
        let lo = ip_json_in(&x.netns_path, &["-j", "link", "show", "dev", "lo"]);
        assert!(
            lo[0]["flags"].as_array().unwrap().contains(&"UP".into()),
            "{lo}"
        );
    }
    assert_ne!(a.address, b.address);
    assert!(
        ping(&a.netns_path, b.address),
        "a cannot ping b at {}",
        b.address
    );
    assert!(
        ping(&b.netns_path, a.address),
        "b cannot ping a at {}",
        a.address
    );
    assert!(ping(&a.netns_path, a.gateway), "a cannot ping the gateway");
    assert!(ping(&b.netns_path, b.gateway), "b cannot ping the gateway");
    // The probe can also fail: nobody holds .254 yet.
    let nobody = Ipv4Addr::from(u32::from(a.gateway) | 0xfe);
    assert!(!ping(&a.netns_path, nobody), "{nobody} answered");
}

#[tokio::test]
async fn a_container_cannot_reach_a_protected_host_port_but_reaches_an_unprotected_one() {
    let protected = 20_000 + (random() % 5_000) as u16;
    let open = protected + 5_000;
    let sandbox = Sandbox::new(&[protected]);
    let mut net = sandbox.network();
    net.setup().await.unwrap();
    // Setting up twice replaces the rules rather than adding a second copy.
    net.setup().await.unwrap();
    let a = net.attach(&sandbox.instance("a")).await.unwrap();

    let nat = output(
        "nft",
        &["-j", "list", "table", "ip", &sandbox.config.nat_table],
    );
    assert!(nat.contains("masquerade"), "{nat}");
    assert!(
        nat.contains(&format!("\"addr\": \"10.77.{}.0\"", sandbox.config.node)),
        "{nat}"
    );
    let filter = output(
        "nft",
        &["list", "table", "inet", &sandbox.config.filter_table],
    );
    assert_eq!(filter.matches(" drop").count(), 2, "{filter}");

    let gateway = sandbox.gateway();
    let _api = TcpListener::bind((gateway, protected)).unwrap();
    let _app = TcpListener::bind((gateway, open)).unwrap();
    // The host itself still reaches the protected port: only container traffic is dropped.
    std::net::TcpStream::connect((gateway, protected)).unwrap();

    tcp_connect(&a.netns_path, gateway, open).unwrap();
    let err = tcp_connect(&a.netns_path, gateway, protected).unwrap_err();
    // Dropped, not refused: the listener is there but the packets never reach it.
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
}

#[tokio::test]
async fn detach_and_teardown_leave_no_namespace_link_mount_or_table_behind() {
    let sandbox = Sandbox::new(&[7070]);
    let mut net = sandbox.network();
    net.setup().await.unwrap();
    let a = net.attach(&sandbox.instance("a")).await.unwrap();
    let b = net.attach(&sandbox.instance("b")).await.unwrap();
    assert_eq!(sandbox.own_links().len(), 3, "{:?}", sandbox.own_links());
    assert_eq!(sandbox.own_tables().len(), 2, "{:?}", sandbox.own_tables());

    net.detach(&a.instance).await.unwrap();
    net.detach(&a.instance).await.unwrap();
    let links = sandbox.own_links();
    assert!(!links.iter().any(|l| l.contains(&a.veth_host)), "{links:?}");
    assert_eq!(sandbox.netns_files(), [b.instance.to_string()]);
    assert!(net.attachment(&a.instance).is_none());

    net.teardown().await.unwrap();
    assert_eq!(sandbox.own_links(), Vec::<String>::new());
    assert_eq!(sandbox.own_tables(), Vec::<String>::new());
    assert_eq!(sandbox.netns_files(), Vec::<String>::new());
    assert_eq!(sandbox.own_mounts(), Vec::<String>::new());
    // Tearing down what is gone is fine.
    net.teardown().await.unwrap();
}

#[tokio::test]
async fn recover_after_a_restart_finds_the_existing_attachments_and_they_still_work() {
    let sandbox = Sandbox::new(&[]);
    let mut before = sandbox.network();
    before.setup().await.unwrap();
    let a = before.attach(&sandbox.instance("a")).await.unwrap();
    let b = before.attach(&sandbox.instance("b")).await.unwrap();
    drop(before);

    let mut after = sandbox.network();
    let recovery = after.recover().await.unwrap();
    assert_eq!(recovery.attached, [a.instance.clone(), b.instance.clone()]);
    assert_eq!(recovery.removed, []);
    assert_eq!(after.attachment(&a.instance), Some(&a));
    assert_eq!(after.attachment(&b.instance), Some(&b));

    let c = after.attach(&sandbox.instance("c")).await.unwrap();
    assert!(c.address != a.address && c.address != b.address);
    assert!(
        ping(&c.netns_path, a.address),
        "c cannot ping a at {}",
        a.address
    );
}

#[tokio::test]
async fn recover_removes_a_namespace_left_half_made_by_a_crash() {
    let sandbox = Sandbox::new(&[]);
    let mut net = sandbox.network();
    net.setup().await.unwrap();
    let half = sandbox.instance("half");
    LinuxHost::new()
        .create_netns(&sandbox.netns_path(&half))
        .await
        .unwrap();

    let recovery = net.recover().await.unwrap();
    assert_eq!(recovery.removed, std::slice::from_ref(&half));
    assert_eq!(sandbox.netns_files(), Vec::<String>::new());
    assert_eq!(sandbox.own_mounts(), Vec::<String>::new());
    net.attach(&half).await.unwrap();
}

#[tokio::test]
async fn a_failed_attach_on_the_real_host_leaves_nothing_behind_and_names_the_command() {
    let sandbox = Sandbox::new(&[]);
    let mut net = sandbox.network();
    // No setup: there is no bridge to join.
    let a = sandbox.instance("a");
    let err = net.attach(&a).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("attach instance {a}: `netlink: find link")),
        "{err}"
    );
    assert!(err.contains(&sandbox.config.bridge), "{err}");
    assert_eq!(sandbox.netns_files(), Vec::<String>::new());
    assert_eq!(sandbox.own_links(), Vec::<String>::new());
    assert_eq!(sandbox.own_mounts(), Vec::<String>::new());
}

#[tokio::test]
async fn the_real_host_reports_the_address_inside_a_namespace_and_none_without_eth0() {
    let sandbox = Sandbox::new(&[]);
    let mut net = sandbox.network();
    net.setup().await.unwrap();
    let a = net.attach(&sandbox.instance("a")).await.unwrap();
    let host = LinuxHost::new();
    let inside = host
        .netns_address(&a.netns_path, CONTAINER_IFNAME)
        .await
        .unwrap();
    assert_eq!(inside, Some(a.address_cidr()));
    assert_eq!(
        host.netns_address(&a.netns_path, "eth9").await.unwrap(),
        None
    );
    assert!(eventually(|| ping(&a.netns_path, a.gateway)));
    assert_ne!(a.gateway, Ipv4Addr::UNSPECIFIED);
}
