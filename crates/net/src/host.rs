//! The `Host` trait: the operating-system side of node networking, and what it fails with.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{HostOp, Ipv4Cidr, NftTable, Veth};

/// The operations node networking needs from the host. Every removal is idempotent: removing
/// what is not there succeeds, so cleanup can always be repeated.
pub trait Host: Send + Sync {
    /// Creates bridge `name` if it is missing, sets `gateway` as its address and brings it up.
    fn ensure_bridge(
        &self,
        name: &str,
        gateway: Ipv4Cidr,
    ) -> impl Future<Output = Result<(), HostError>> + Send;

    /// Turns IPv4 forwarding on, so masqueraded traffic can leave the node.
    fn set_ip_forward(&self) -> impl Future<Output = Result<(), HostError>> + Send;

    /// Runs an nft JSON ruleset in one atomic batch (`nft -j -f -`).
    fn apply_nft(&self, ruleset: &Value) -> impl Future<Output = Result<(), HostError>> + Send;

    fn delete_nft_tables(
        &self,
        tables: &[NftTable],
    ) -> impl Future<Output = Result<(), HostError>> + Send;

    /// Makes a new network namespace, kept alive by a bind mount on the file `path`.
    fn create_netns(&self, path: &Path) -> impl Future<Output = Result<(), HostError>> + Send;

    fn delete_netns(&self, path: &Path) -> impl Future<Output = Result<(), HostError>> + Send;

    /// Creates the veth pair, its host end a port of the bridge and its other end configured
    /// inside the namespace (see [`Veth`]).
    fn create_veth(&self, veth: &Veth) -> impl Future<Output = Result<(), HostError>> + Send;

    fn delete_link(&self, name: &str) -> impl Future<Output = Result<(), HostError>> + Send;

    /// The names of the files in `dir`, sorted; a missing `dir` has none.
    fn list_netns(&self, dir: &Path)
    -> impl Future<Output = Result<Vec<String>, HostError>> + Send;

    /// The IPv4 address of interface `ifname` inside the namespace at `netns`, if it has one.
    fn netns_address(
        &self,
        netns: &Path,
        ifname: &str,
    ) -> impl Future<Output = Result<Option<Ipv4Cidr>, HostError>> + Send;
}

/// Performs one planned operation on `host`.
pub async fn perform(host: &impl Host, op: &HostOp) -> Result<(), HostError> {
    match op {
        HostOp::EnsureBridge { name, gateway } => host.ensure_bridge(name, *gateway).await,
        HostOp::SetIpForward => host.set_ip_forward().await,
        HostOp::ApplyNft { ruleset } => host.apply_nft(ruleset).await,
        HostOp::CreateNetns { path } => host.create_netns(path).await,
        HostOp::CreateVeth(veth) => host.create_veth(veth).await,
        HostOp::DeleteLink { name } => host.delete_link(name).await,
        HostOp::DeleteNetns { path } => host.delete_netns(path).await,
        HostOp::DeleteNftTables { tables } => host.delete_nft_tables(tables).await,
    }
}

/// A failed host operation; each names the command or file and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("could not run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` printed what could not be read: {detail}")]
    Output { command: String, detail: String },
    #[error(
        "{name} exists but is a {kind} link, not a bridge; remove it or configure another bridge name"
    )]
    NotABridge { name: String, kind: String },
}
