//! The control plane's configuration, validated once by the binary and passed down by value.

use std::net::SocketAddr;
use std::path::PathBuf;

/// The default of [`ServerConfig::max_upload_bytes`]: 512 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 512 << 20;

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
    /// The largest source upload (`spread deploy DIR`, a gzip tarball) the API takes, in bytes.
    pub max_upload_bytes: u64,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf, api_listen: SocketAddr) -> Self {
        Self {
            data_dir,
            api_listen,
            domain: "localhost".to_owned(),
            snapshot_every: 5000,
            new_admin_token: false,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
        }
    }

    /// Where uploaded source waits for its build.
    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join("builds").join("uploads")
    }
}
