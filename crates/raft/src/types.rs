//! The openraft type configuration: what a log entry carries and what applying it returns.

use std::io::Cursor;

use serde::{Deserialize, Serialize};
use spread_core::{Command, Outcome, Rejection};

openraft::declare_raft_types!(
    /// Spread's Raft types: entries carry a batch of `Command`s, nodes are numbered `u64`s with
    /// an address.
    pub(crate) TypeConfig:
        D = Batch,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub(crate) type NodeId = u64;
pub(crate) type Node = openraft::BasicNode;
pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type LogId = openraft::LogId<NodeId>;
pub(crate) type Vote = openraft::Vote<NodeId>;
pub(crate) type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub(crate) type Snapshot = openraft::Snapshot<TypeConfig>;
pub(crate) type StorageError = openraft::StorageError<NodeId>;

/// The commands of one log entry, applied in order. openraft 0.9 fsyncs every entry on its own,
/// so concurrent proposals are gathered into one entry to share an fsync (see `proposer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Batch(pub(crate) Vec<Command>);

/// What applying one log entry returned: one result per command of a batch. Blank and membership
/// entries, which openraft writes itself, answer `Internal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Response {
    Batch(Vec<Result<Outcome, Rejection>>),
    Internal,
}
