//! Replicated state: the Raft log and snapshots of `spread_core::State` in one redb file, with
//! `propose` to change the state and `read` to look at it. The only crate that names openraft.
//!
//! Concurrent proposals are gathered into one log entry, and every write to the file goes
//! through one writer thread that commits whatever is queued in one transaction, so they share
//! an fsync. The state lives in memory and is rebuilt on open from the last snapshot plus the log
//! after it.

mod codec;
mod error;
mod log_store;
mod network;
mod node;
mod proposer;
mod state_machine;
mod store;
mod types;
mod writer;

#[cfg(test)]
mod suite_tests;

pub use error::{ProposeError, RaftError};
pub use node::{RaftConfig, RaftNode, RaftStatus};
