//! The control plane's configuration, validated once by the binary and passed down by value.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the replicated state lives.
    pub data_dir: PathBuf,
    /// Address of the HTTP API.
    pub api_listen: SocketAddr,
    /// Apps are served at `<app>.<domain>`.
    pub domain: String,
    /// Raft takes a snapshot and compacts its log after this many entries.
    pub snapshot_every: u64,
    /// Create another admin token even though tokens exist (to recover a lost one; whoever can
    /// start the server on this data dir is trusted already).
    pub new_admin_token: bool,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf, api_listen: SocketAddr) -> Self {
        Self {
            data_dir,
            api_listen,
            domain: "localhost".to_owned(),
            snapshot_every: 5000,
            new_admin_token: false,
        }
    }
}
