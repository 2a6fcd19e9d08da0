//! Errors of opening and running a node, and of proposing a command.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use spread_core::Rejection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the node could not open, run or stop.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("invalid raft config for {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("cannot create raft data directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot open raft store {path}: {source}")]
    Open { path: PathBuf, source: BoxError },
    #[error("raft store {path} holds an unreadable {what}: {source}")]
    Corrupt {
        path: PathBuf,
        what: String,
        source: BoxError,
    },
    #[error("raft node on {path} did not become leader within {waited:?}: {reason}")]
    NotReady {
        path: PathBuf,
        waited: Duration,
        reason: String,
    },
    #[error("raft node on {path} stopped: {reason}")]
    Stopped { path: PathBuf, reason: String },
}

/// Why a proposed command did not change the state.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    /// The command was committed and applied, and `apply` refused it; nothing changed.
    #[error(transparent)]
    Rejected(Rejection),
    /// This node is not the leader, or is shut down, or its store failed. If the node stopped
    /// while the command was in flight, the command may still have been committed.
    #[error("the replicated log is unavailable: {0}")]
    Unavailable(String),
}
