//! The state machine: `spread_core::State` in memory, rebuilt on open from the stored snapshot
//! plus a replay of the log; snapshots are made durable through the writer thread.

use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use spread_core::{State, decode_snapshot, encode_snapshot};

use crate::error::RaftError;
use crate::store::StoredSnapshot;
use crate::types::{
    Batch, Entry, LogId, Response, Snapshot, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig,
};
use crate::writer::{Op, Writer};

/// The state and the log position it reflects; always changed together under one lock.
#[derive(Debug, Clone, Default)]
pub(crate) struct Applied {
    pub(crate) state: State,
    pub(crate) last_applied: Option<LogId>,
    pub(crate) membership: StoredMembership,
}

/// Shared with `RaftNode::read`; apply holds the write lock only while applying one batch.
pub(crate) type SharedApplied = Arc<RwLock<Applied>>;

pub(crate) struct StateMachineStore {
    applied: SharedApplied,
    writer: Writer,
}

impl StateMachineStore {
    /// Starts from the stored snapshot, or from an empty state if there is none.
    pub(crate) fn new(
        snapshot: Option<StoredSnapshot>,
        writer: Writer,
        path: &Path,
    ) -> Result<Self, RaftError> {
        let applied = match snapshot {
            None => Applied::default(),
            Some(StoredSnapshot { meta, data }) => Applied {
                state: decode_snapshot(&data).map_err(|e| RaftError::Corrupt {
                    path: path.to_owned(),
                    what: "snapshot state".to_owned(),
                    source: e.into(),
                })?,
                last_applied: meta.last_log_id,
                membership: meta.last_membership,
            },
        };
        Ok(StateMachineStore {
            applied: Arc::new(RwLock::new(applied)),
            writer,
        })
    }

    pub(crate) fn applied(&self) -> SharedApplied {
        self.applied.clone()
    }
}

/// Builds a snapshot from a copy taken when openraft asked, while applying goes on.
pub(crate) struct SnapshotBuilder {
    copy: Applied,
    writer: Writer,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let data = encode_snapshot(&self.copy.state);
        let meta = SnapshotMeta {
            last_log_id: self.copy.last_applied,
            last_membership: self.copy.membership.clone(),
            snapshot_id: snapshot_id(self.copy.last_applied),
        };
        // Durable before returning: openraft purges the log up to this snapshot next.
        let (stored_meta, stored_data) = (meta.clone(), data.clone());
        self.writer
            .call(|done| Op::SaveSnapshot {
                meta: stored_meta,
                data: stored_data,
                done,
            })
            .await
            .map_err(|e| {
                StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
            })?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// Unique per build, so a follower never mistakes two snapshots for one.
fn snapshot_id(last_applied: Option<LogId>) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    match last_applied {
        Some(log_id) => format!("{}-{}-{millis}", log_id.leader_id.term, log_id.index),
        None => format!("empty-{millis}"),
    }
}

const NOT_POISONED: &str = "the state lock is poisoned only if apply panicked, and it never does";

pub(crate) fn read_applied(applied: &SharedApplied) -> RwLockReadGuard<'_, Applied> {
    applied.read().expect(NOT_POISONED)
}

fn write_applied(applied: &SharedApplied) -> RwLockWriteGuard<'_, Applied> {
    applied.write().expect(NOT_POISONED)
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = read_applied(&self.applied);
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = write_applied(&self.applied);
        let entries = entries.into_iter();
        let mut responses = Vec::with_capacity(entries.size_hint().0);
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            responses.push(match entry.payload {
                EntryPayload::Normal(Batch(commands)) => Response::Batch(
                    commands
                        .into_iter()
                        .map(|command| applied.state.apply(command))
                        .collect(),
                ),
                EntryPayload::Membership(membership) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Response::Internal
                }
                EntryPayload::Blank => Response::Internal,
            });
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            copy: read_applied(&self.applied).clone(),
            writer: self.writer.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let state = decode_snapshot(&data).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        let stored_meta = meta.clone();
        self.writer
            .call(|done| Op::SaveSnapshot {
                meta: stored_meta,
                data,
                done,
            })
            .await
            .map_err(|e| {
                StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
            })?;
        let mut applied = write_applied(&self.applied);
        *applied = Applied {
            state,
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let stored = self
            .writer
            .call(|done| Op::LoadSnapshot { done })
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?;
        Ok(stored.map(|StoredSnapshot { meta, data }| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
