//! The store's only writer: one thread owns the redb file, applies requests in order, and commits
//! everything queued when it wakes in one write transaction, so queued writes share one fsync.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use openraft::storage::LogFlushed;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use tokio::sync::oneshot;

use crate::codec;
use crate::store::{self, StoredSnapshot};
use crate::types::{Entry, LogId, SnapshotMeta, TypeConfig, Vote};

/// Where the answer to a request goes once its transaction has committed.
pub(crate) type Reply<T> = oneshot::Sender<io::Result<T>>;

/// One request to the writer. Requests are handled in the order they were sent.
pub(crate) enum Op {
    Append {
        entries: Vec<Entry>,
        flushed: LogFlushed<TypeConfig>,
    },
    SaveVote {
        vote: Vote,
        done: Reply<()>,
    },
    /// Needs no fsync: losing it only means re-applying a few entries after a restart.
    SaveCommitted(Option<LogId>),
    Truncate {
        since: u64,
    },
    Purge {
        upto: LogId,
    },
    SaveSnapshot {
        meta: SnapshotMeta,
        data: Vec<u8>,
        done: Reply<()>,
    },
    LoadSnapshot {
        done: Reply<Option<StoredSnapshot>>,
    },
    CountLog {
        done: Reply<u64>,
    },
    /// Flushes, closes the file and stops the thread; later requests fail.
    Close {
        done: Reply<()>,
    },
}

impl Op {
    /// Whether the request may only be answered after an fsync.
    fn needs_fsync(&self) -> bool {
        matches!(
            self,
            Op::Append { .. } | Op::SaveVote { .. } | Op::SaveSnapshot { .. } | Op::Close { .. }
        )
    }
}

/// A handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Op>,
    path: PathBuf,
}

impl Writer {
    pub(crate) fn spawn(db: Database, path: &Path) -> io::Result<Writer> {
        let (tx, rx) = mpsc::channel();
        let thread_path = path.to_owned();
        thread::Builder::new()
            .name("raft-writer".to_owned())
            .spawn(move || run(db, &thread_path, &rx))?;
        Ok(Writer {
            tx,
            path: path.to_owned(),
        })
    }

    /// Queues a request without waiting for it.
    pub(crate) fn send(&self, op: Op) -> io::Result<()> {
        self.tx.send(op).map_err(|_| self.closed())
    }

    /// Queues a request and waits for its answer.
    pub(crate) async fn call<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> io::Result<T> {
        let (done, answer) = oneshot::channel();
        self.send(op(done))?;
        answer.await.map_err(|_| self.closed())?
    }

    /// Flushes and closes the file; closing a closed writer does nothing.
    pub(crate) async fn close(&self) -> io::Result<()> {
        let (done, answer) = oneshot::channel();
        if self.tx.send(Op::Close { done }).is_err() {
            return Ok(());
        }
        answer.await.map_err(|_| self.closed())?
    }

    fn closed(&self) -> io::Error {
        io::Error::other(format!("raft store {} is closed", self.path.display()))
    }
}

fn run(db: Database, path: &Path, rx: &mpsc::Receiver<Op>) {
    // After a failed write the file may lack a batch that later batches depend on (a hole in the
    // log), so once anything fails every later request fails too.
    let mut failure: Option<String> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        if failure.is_none()
            && let Err(e) = write(&db, &batch)
        {
            tracing::error!(path = %path.display(), error = %e, "raft store write failed");
            failure = Some(format!("cannot write raft store {}: {e}", path.display()));
        }
        let mut close_replies = Vec::new();
        for op in batch {
            let error = || failure.as_ref().map(|msg| io::Error::other(msg.clone()));
            match op {
                Op::Append { flushed, .. } => flushed.log_io_completed(error().map_or(Ok(()), Err)),
                Op::SaveVote { done, .. } | Op::SaveSnapshot { done, .. } => {
                    let _ = done.send(error().map_or(Ok(()), Err));
                }
                Op::LoadSnapshot { done } => {
                    let _ = done.send(error().map_or_else(|| read(&db, path, load_snapshot), Err));
                }
                Op::CountLog { done } => {
                    let _ = done.send(error().map_or_else(|| read(&db, path, count_log), Err));
                }
                Op::Close { done } => close_replies.push((done, error())),
                Op::SaveCommitted(_) | Op::Truncate { .. } | Op::Purge { .. } => {}
            }
        }
        if !close_replies.is_empty() {
            // Close the file before answering, so the caller may reopen it at once.
            drop(db);
            for (done, error) in close_replies {
                let _ = done.send(error.map_or(Ok(()), Err));
            }
            return;
        }
    }
}

/// Writes a batch in one transaction; it is fsynced only if some request in it needs that.
fn write(db: &Database, batch: &[Op]) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    if !batch.iter().any(Op::needs_fsync) {
        txn.set_durability(Durability::None)?;
    }
    {
        let mut log = txn.open_table(store::LOG)?;
        let mut meta = txn.open_table(store::META)?;
        let mut snapshot = txn.open_table(store::SNAPSHOT)?;
        for op in batch {
            match op {
                Op::Append { entries, .. } => {
                    for entry in entries {
                        log.insert(entry.log_id.index, codec::encode(entry).as_slice())?;
                    }
                }
                Op::SaveVote { vote, .. } => {
                    meta.insert(store::VOTE, codec::encode(vote).as_slice())?;
                }
                Op::SaveCommitted(committed) => {
                    meta.insert(store::COMMITTED, codec::encode(committed).as_slice())?;
                }
                Op::Truncate { since } => log.retain_in(*since.., |_, _| false)?,
                Op::Purge { upto } => {
                    meta.insert(store::LAST_PURGED, codec::encode(upto).as_slice())?;
                    log.retain_in(..=upto.index, |_, _| false)?;
                }
                Op::SaveSnapshot {
                    meta: snapshot_meta,
                    data,
                    ..
                } => {
                    // Never replace a snapshot with an older one (a slow build finishing after a
                    // newer install): the log behind the newer one may already be purged.
                    let stored: Option<SnapshotMeta> = snapshot
                        .get(store::SNAPSHOT_META)?
                        .and_then(|v| codec::decode(v.value()).ok());
                    if stored.is_some_and(|s| s.last_log_id >= snapshot_meta.last_log_id) {
                        continue;
                    }
                    snapshot.insert(
                        store::SNAPSHOT_META,
                        codec::encode(snapshot_meta).as_slice(),
                    )?;
                    snapshot.insert(store::SNAPSHOT_DATA, data.as_slice())?;
                }
                Op::LoadSnapshot { .. } | Op::CountLog { .. } | Op::Close { .. } => {}
            }
        }
    }
    txn.commit()?;
    Ok(())
}

fn read<T>(
    db: &Database,
    path: &Path,
    f: impl FnOnce(&redb::ReadTransaction, &Path) -> io::Result<T>,
) -> io::Result<T> {
    let txn = db.begin_read().map_err(|e| read_error(path, e.into()))?;
    f(&txn, path)
}

fn load_snapshot(txn: &redb::ReadTransaction, path: &Path) -> io::Result<Option<StoredSnapshot>> {
    store::read_snapshot(txn, path).map_err(io::Error::other)
}

fn count_log(txn: &redb::ReadTransaction, path: &Path) -> io::Result<u64> {
    let log = txn
        .open_table(store::LOG)
        .map_err(|e| read_error(path, e.into()))?;
    log.len().map_err(|e| read_error(path, e.into()))
}

fn read_error(path: &Path, e: redb::Error) -> io::Error {
    io::Error::other(format!("cannot read raft store {}: {e}", path.display()))
}
