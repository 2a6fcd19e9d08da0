//! The instance hot path done in the daemon itself: network namespaces by system call, links,
//! addresses and routes over rtnetlink. Every `rtnetlink` type is used here and nowhere else, so
//! an upgrade of that often-breaking crate touches one file.
//!
//! A thread's network namespace is its own: a namespace is made, or entered to open a netlink
//! socket in it, on a short-lived thread of its own, never on a tokio worker.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkMessage};
use rtnetlink::sys::protocols::NETLINK_ROUTE;
use rtnetlink::sys::{Socket, TokioSocket};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::{HostError, Veth};

/// `ENODEV`, `ENOENT` and `ESRCH` as the kernel reports a link, address or route that is not
/// there.
fn is_missing(e: &rtnetlink::Error) -> bool {
    let rtnetlink::Error::NetlinkError(msg) = e else {
        return false;
    };
    let code = msg.code.map_or(0, |c| -c.get());
    matches!(code, libc::ENODEV | libc::ENOENT | libc::ESRCH)
}

fn failed(what: String) -> impl FnOnce(rtnetlink::Error) -> HostError {
    move |e| HostError::Failed {
        command: format!("netlink: {what}"),
        stderr: e.to_string(),
    }
}

fn io_failed(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> HostError {
    let path = path.to_owned();
    move |source| HostError::Io {
        action,
        path,
        source,
    }
}

/// A route netlink connection on `socket`, driven by a task of its own until the handle drops.
fn connect(socket: TokioSocket) -> Handle {
    let (connection, handle, _) = rtnetlink::from_socket(socket);
    tokio::spawn(connection);
    handle
}

/// A connection in the daemon's own network namespace.
fn host_connection() -> Result<Handle, HostError> {
    let socket = Socket::new(NETLINK_ROUTE).map_err(|source| HostError::Spawn {
        command: "netlink socket".to_owned(),
        source,
    })?;
    Ok(tokio_socket(socket))
}

fn tokio_socket(socket: Socket) -> Handle {
    connect(crate::sys::tokio_socket(socket.into_raw_fd()))
}

/// A connection inside the namespace bound at `netns`: the socket is opened by a thread that
/// entered the namespace, and stays in it after the thread is gone.
async fn netns_connection(netns: &Path) -> Result<Handle, HostError> {
    let file = File::open(netns).map_err(io_failed("open netns", netns))?;
    let socket = on_own_thread(move || {
        crate::sys::enter_netns(&file)?;
        Socket::new(NETLINK_ROUTE)
    })
    .await
    .map_err(io_failed("open a netlink socket in netns", netns))?;
    Ok(tokio_socket(socket))
}

/// Runs `f` on a new thread and waits for it without blocking a worker.
async fn on_own_thread<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("spread-netns".to_owned())
        .spawn(move || {
            let _ = tx.send(f());
        })?;
    rx.await
        .map_err(|_| io::Error::other("netns thread ended without an answer"))?
}

/// Makes a new network namespace and bind-mounts it on `path`, an existing empty file.
pub(crate) async fn create_netns(path: &Path) -> Result<(), HostError> {
    let target = path.to_owned();
    on_own_thread(move || {
        crate::sys::unshare_netns()?;
        crate::sys::bind_mount(Path::new("/proc/thread-self/ns/net"), &target)
    })
    .await
    .map_err(io_failed("make and mount netns", path))
}

/// Unmounts the namespace bound at `path`; nothing mounted there is not an error.
pub(crate) fn unmount_netns(path: &Path) -> Result<(), HostError> {
    crate::sys::unmount(path).map_err(io_failed("unmount netns", path))
}

async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, HostError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link.map(|l| l.header.index)),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(failed(format!("find link {name}"))(e)),
    }
}

async fn require_link(handle: &Handle, name: &str, place: &str) -> Result<u32, HostError> {
    link_index(handle, name)
        .await?
        .ok_or_else(|| HostError::Failed {
            command: format!("netlink: find link {name}"),
            stderr: format!("no link named {name} {place}"),
        })
}

async fn set_up(handle: &Handle, index: u32, name: &str) -> Result<(), HostError> {
    handle
        .link()
        .change(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(failed(format!("set {name} up")))
}

/// Creates the veth pair of [`Veth`]: the host end up and a port of the bridge, the other end
/// moved into the namespace with the address, a default route, and loopback up there.
pub(crate) async fn create_veth(v: &Veth) -> Result<(), HostError> {
    let host = host_connection()?;
    let netns_file = File::open(&v.netns).map_err(io_failed("open netns", &v.netns))?;
    let bridge = require_link(&host, &v.bridge, "on the host").await?;
    let peer: LinkMessage = LinkUnspec::new_with_name(&v.container_end)
        .setns_by_fd(netns_file.as_raw_fd())
        .build();
    let pair = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
        .name(v.host_end.clone())
        .controller(bridge)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    host.link()
        .add(pair)
        .execute()
        .await
        .map_err(failed(format!("add veth {}", v.host_end)))?;
    drop(netns_file);

    let inside = netns_connection(&v.netns).await?;
    let lo = require_link(&inside, "lo", "in the netns").await?;
    set_up(&inside, lo, "lo").await?;
    let peer = require_link(&inside, &v.container_end, "in the netns").await?;
    inside
        .address()
        .add(peer, IpAddr::V4(v.address.addr()), v.address.prefix())
        .execute()
        .await
        .map_err(failed(format!("add {} to {}", v.address, v.container_end)))?;
    set_up(&inside, peer, &v.container_end).await?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(v.gateway)
        .output_interface(peer)
        .build();
    inside
        .route()
        .add(route)
        .execute()
        .await
        .map_err(failed(format!("add default route via {}", v.gateway)))
}

/// Deletes link `name` in the daemon's namespace; a missing link is not an error.
pub(crate) async fn delete_link(name: &str) -> Result<(), HostError> {
    let host = host_connection()?;
    let Some(index) = link_index(&host, name).await? else {
        return Ok(());
    };
    match host.link().del(index).execute().await {
        Err(e) if is_missing(&e) => Ok(()),
        other => other.map_err(failed(format!("delete link {name}"))),
    }
}
