//! The redb file: its tables, and loading what the node needs from it when it opens.
//!
//! Everything durable lives in one file: the log, the vote, the committed and purged log ids and
//! the latest snapshot, so one transaction can change any of them together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::RaftError;
use crate::log_store::LogStore;
use crate::state_machine::StateMachineStore;
use crate::types::{Entry, LogId, SnapshotMeta, Vote};
use crate::writer::Writer;

/// Log entries by index, each `codec`-encoded.
pub(crate) const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("log");
/// The vote and the log pointers, each `codec`-encoded.
pub(crate) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// The latest snapshot: its `codec`-encoded meta and the `spread_core` snapshot bytes.
pub(crate) const SNAPSHOT: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("snapshot");

pub(crate) const VOTE: &str = "vote";
pub(crate) const COMMITTED: &str = "committed";
pub(crate) const LAST_PURGED: &str = "last_purged";
pub(crate) const SNAPSHOT_META: &str = "meta";
pub(crate) const SNAPSHOT_DATA: &str = "data";

/// A snapshot as stored: openraft's meta and the encoded state.
#[derive(Debug, Clone)]
pub(crate) struct StoredSnapshot {
    pub(crate) meta: SnapshotMeta,
    pub(crate) data: Vec<u8>,
}

/// Everything read from the file when it opens.
pub(crate) struct Loaded {
    pub(crate) vote: Option<Vote>,
    pub(crate) committed: Option<LogId>,
    pub(crate) last_purged: Option<LogId>,
    /// The entries since the last purge; kept in memory so reads never touch the disk.
    pub(crate) entries: BTreeMap<u64, Entry>,
    pub(crate) snapshot: Option<StoredSnapshot>,
}

/// Opens (or creates) the file and reads it whole.
pub(crate) fn open(path: &Path) -> Result<(Database, Loaded), RaftError> {
    let fail = |e: redb::Error| RaftError::Open {
        path: path.to_owned(),
        source: e.into(),
    };
    let db = create(path).map_err(fail)?;
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let raw = read_raw(&txn).map_err(fail)?;
    let snapshot = read_raw_snapshot(&txn).map_err(fail)?;
    drop(txn);

    // `save_committed` stores an `Option`, so a stored `null` means "nothing committed".
    let committed: Option<Option<LogId>> = decode_opt(path, COMMITTED, raw.committed)?;
    let mut entries = BTreeMap::new();
    for (index, bytes) in raw.log {
        entries.insert(index, decode(path, &format!("log entry {index}"), &bytes)?);
    }
    let loaded = Loaded {
        vote: decode_opt(path, VOTE, raw.vote)?,
        committed: committed.flatten(),
        last_purged: decode_opt(path, LAST_PURGED, raw.last_purged)?,
        entries,
        snapshot: decode_snapshot_meta(path, snapshot)?,
    };
    Ok((db, loaded))
}

/// Opens the file and creates the tables, so that reads never meet a missing table.
fn create(path: &Path) -> Result<Database, redb::Error> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    txn.open_table(LOG)?;
    txn.open_table(META)?;
    txn.open_table(SNAPSHOT)?;
    txn.commit()?;
    Ok(db)
}

/// The stored bytes, before decoding.
struct Raw {
    vote: Option<Vec<u8>>,
    committed: Option<Vec<u8>>,
    last_purged: Option<Vec<u8>>,
    log: Vec<(u64, Vec<u8>)>,
}

fn read_raw(txn: &ReadTransaction) -> Result<Raw, redb::Error> {
    let meta = txn.open_table(META)?;
    let get = |key: &str| -> Result<Option<Vec<u8>>, redb::Error> {
        Ok(meta.get(key)?.map(|value| value.value().to_vec()))
    };
    let mut log = Vec::new();
    for row in txn.open_table(LOG)?.iter()? {
        let (index, bytes) = row?;
        log.push((index.value(), bytes.value().to_vec()));
    }
    Ok(Raw {
        vote: get(VOTE)?,
        committed: get(COMMITTED)?,
        last_purged: get(LAST_PURGED)?,
        log,
    })
}

/// The stored snapshot's meta and data bytes, if a snapshot was ever saved.
type RawSnapshot = (Option<Vec<u8>>, Option<Vec<u8>>);

fn read_raw_snapshot(txn: &ReadTransaction) -> Result<RawSnapshot, redb::Error> {
    let table = txn.open_table(SNAPSHOT)?;
    let meta = table
        .get(SNAPSHOT_META)?
        .map(|value| value.value().to_vec());
    let data = table
        .get(SNAPSHOT_DATA)?
        .map(|value| value.value().to_vec());
    Ok((meta, data))
}

/// Reads the latest snapshot, if one was ever saved.
pub(crate) fn read_snapshot(
    txn: &ReadTransaction,
    path: &Path,
) -> Result<Option<StoredSnapshot>, RaftError> {
    let raw = read_raw_snapshot(txn).map_err(|e| RaftError::Open {
        path: path.to_owned(),
        source: e.into(),
    })?;
    decode_snapshot_meta(path, raw)
}

fn decode_snapshot_meta(
    path: &Path,
    raw: RawSnapshot,
) -> Result<Option<StoredSnapshot>, RaftError> {
    match raw {
        (Some(meta), Some(data)) => Ok(Some(StoredSnapshot {
            meta: decode(path, "snapshot meta", &meta)?,
            data,
        })),
        (None, None) => Ok(None),
        _ => Err(RaftError::Corrupt {
            path: path.to_owned(),
            what: "snapshot".to_owned(),
            source: "snapshot meta and data are not both present".into(),
        }),
    }
}

fn decode<T: DeserializeOwned>(path: &Path, what: &str, bytes: &[u8]) -> Result<T, RaftError> {
    codec::decode(bytes).map_err(|e| RaftError::Corrupt {
        path: path.to_owned(),
        what: what.to_owned(),
        source: e.into(),
    })
}

fn decode_opt<T: DeserializeOwned>(
    path: &Path,
    what: &str,
    bytes: Option<Vec<u8>>,
) -> Result<Option<T>, RaftError> {
    bytes.map(|b| decode(path, what, &b)).transpose()
}

/// The two halves openraft runs on, sharing one writer thread.
pub(crate) struct Stores {
    pub(crate) log: LogStore,
    pub(crate) state_machine: StateMachineStore,
    pub(crate) writer: Writer,
}

/// Opens the file, loads it, and starts its writer thread.
pub(crate) fn open_stores(path: &Path) -> Result<Stores, RaftError> {
    let (db, mut loaded) = open(path)?;
    let writer = Writer::spawn(db, path).map_err(|e| RaftError::Open {
        path: path.to_owned(),
        source: e.into(),
    })?;
    let log = LogStore::new(&mut loaded, writer.clone());
    let state_machine = StateMachineStore::new(loaded.snapshot, writer.clone(), path)?;
    Ok(Stores {
        log,
        state_machine,
        writer,
    })
}

/// The file inside a data directory.
pub(crate) fn file_in(data_dir: &Path) -> PathBuf {
    data_dir.join("raft.redb")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_entry_of_an_unknown_format_version_is_an_error_naming_it() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = file_in(dir.path());
        let (db, _) = open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(LOG)
            .unwrap()
            .insert(7, b"\x09{}".as_slice())
            .unwrap();
        txn.commit().unwrap();
        drop(db);

        let err = open(&path).err().unwrap();
        assert!(
            matches!(&err, RaftError::Corrupt { what, .. } if what == "log entry 7"),
            "{err}"
        );
        assert!(err.to_string().contains("raft.redb"), "{err}");
    }
}
