//! The Raft log: an in-memory view that readers see at once, made durable by the writer thread.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader};

use crate::store::Loaded;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::writer::{Op, Writer};

/// What the log holds, as openraft must see it: entries appended but not yet fsynced included.
struct LogView {
    /// Entries since the last purge; bounded by snapshotting, which lets openraft purge.
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

#[derive(Clone)]
struct SharedView(Arc<Mutex<LogView>>);

impl SharedView {
    fn lock(&self) -> MutexGuard<'_, LogView> {
        // Only map operations and clones run under the lock, so it cannot be poisoned in
        // practice; recovering keeps one impossible panic from cascading into every reader.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn entries<RB: RangeBounds<u64>>(&self, range: RB) -> Vec<Entry> {
        self.lock()
            .entries
            .range(range)
            .map(|(_, entry)| entry.clone())
            .collect()
    }
}

/// The log store openraft's core writes through.
pub(crate) struct LogStore {
    view: SharedView,
    writer: Writer,
}

/// A cheap handle that replication tasks read entries through.
#[derive(Clone)]
pub(crate) struct LogReader {
    view: SharedView,
}

impl LogStore {
    pub(crate) fn new(loaded: &mut Loaded, writer: Writer) -> Self {
        let view = LogView {
            entries: std::mem::take(&mut loaded.entries),
            last_purged: loaded.last_purged,
            vote: loaded.vote,
            committed: loaded.committed,
        };
        LogStore {
            view: SharedView(Arc::new(Mutex::new(view))),
            writer,
        }
    }
}

fn write_error(subject: ErrorSubject<u64>, e: io::Error) -> StorageError {
    StorageError::from_io_error(subject, ErrorVerb::Write, e)
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self.view.entries(range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self.view.entries(range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let view = self.view.lock();
        let last_log_id = view
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(view.last_purged);
        Ok(LogState {
            last_purged_log_id: view.last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader {
            view: self.view.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote = *vote;
        self.writer
            .call(|done| Op::SaveVote { vote, done })
            .await
            .map_err(|e| write_error(ErrorSubject::Vote, e))?;
        self.view.lock().vote = Some(vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.view.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.view.lock().committed = committed;
        self.writer
            .send(Op::SaveCommitted(committed))
            .map_err(|e| write_error(ErrorSubject::Store, e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.view.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        flushed: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        {
            let mut view = self.view.lock();
            for entry in &entries {
                view.entries.insert(entry.log_id.index, entry.clone());
            }
        }
        // The callback runs on the writer thread once the batch holding these entries is fsynced.
        self.writer
            .send(Op::Append { entries, flushed })
            .map_err(|e| write_error(ErrorSubject::Logs, e))
    }

    async fn truncate(&mut self, since: LogId) -> Result<(), StorageError> {
        self.view.lock().entries.split_off(&since.index);
        self.writer
            .send(Op::Truncate { since: since.index })
            .map_err(|e| write_error(ErrorSubject::Logs, e))
    }

    async fn purge(&mut self, upto: LogId) -> Result<(), StorageError> {
        {
            let mut view = self.view.lock();
            let mut kept = view.entries.split_off(&upto.index);
            kept.remove(&upto.index);
            view.entries = kept;
            view.last_purged = Some(upto);
        }
        self.writer
            .send(Op::Purge { upto })
            .map_err(|e| write_error(ErrorSubject::Logs, e))
    }
}
