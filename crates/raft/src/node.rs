//! `RaftNode`: opens the store, runs openraft on it, and offers `propose`, `read` and `status`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openraft::error::{InitializeError, RaftError as OpenraftError};
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};
use serde::Serialize;
use spread_core::{Command, Outcome, State};

use crate::error::{ProposeError, RaftError};
use crate::network::Network;
use crate::proposer::Proposer;
use crate::state_machine::{SharedApplied, read_applied};
use crate::store;
use crate::types::TypeConfig;
use crate::writer::{Op, Writer};

/// The ID of the only node until clustering arrives.
const NODE_ID: u64 = 1;
/// How long `open` waits for the node to lead and catch up.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Entries kept behind a snapshot, for followers that lag a little; never more than one
/// snapshot interval, so the stored log stays within about two intervals.
const MAX_LOG_KEPT_AFTER_SNAPSHOT: u64 = 1000;

/// Where the node keeps its data and how often it snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    pub data_dir: PathBuf,
    /// Log entries applied between snapshots; the log is purged behind each snapshot.
    pub snapshot_every: u64,
}

impl RaftConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        RaftConfig {
            data_dir: data_dir.into(),
            snapshot_every: 5000,
        }
    }
}

/// What the node reports about itself, from openraft's metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RaftStatus {
    pub node_id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub voters: Vec<u64>,
}

/// A running Raft node. Cloning gives another handle to the same node.
#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

struct Inner {
    raft: Raft<TypeConfig>,
    proposer: Proposer,
    applied: SharedApplied,
    writer: Writer,
    path: PathBuf,
    stopped: AtomicBool,
}

impl RaftNode {
    /// Opens (or creates) the store under `data_dir`, starts the node, and on first start makes
    /// it a one-voter cluster. Returns once it leads and has applied everything committed.
    pub async fn open(config: RaftConfig) -> Result<RaftNode, RaftError> {
        let RaftConfig {
            data_dir,
            snapshot_every,
        } = config;
        std::fs::create_dir_all(&data_dir).map_err(|source| RaftError::CreateDir {
            path: data_dir.clone(),
            source,
        })?;
        let path = store::file_in(&data_dir);
        let raft_config = openraft_config(snapshot_every).map_err(|reason| RaftError::Config {
            path: path.clone(),
            reason,
        })?;

        let open_path = path.clone();
        let stores = tokio::task::spawn_blocking(move || store::open_stores(&open_path))
            .await
            .map_err(|e| RaftError::Open {
                path: path.clone(),
                source: e.into(),
            })??;
        let applied = stores.state_machine.applied();
        let writer = stores.writer.clone();
        let raft = match Raft::new(
            NODE_ID,
            raft_config,
            Network,
            stores.log,
            stores.state_machine,
        )
        .await
        {
            Ok(raft) => raft,
            Err(e) => {
                let _ = writer.close().await;
                return Err(RaftError::Stopped {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        let node = RaftNode {
            inner: Arc::new(Inner {
                proposer: Proposer::spawn(raft.clone()),
                raft,
                applied,
                writer,
                path,
                stopped: AtomicBool::new(false),
            }),
        };
        if let Err(e) = node.start().await {
            let _ = node.shutdown().await;
            return Err(e);
        }
        Ok(node)
    }

    async fn start(&self) -> Result<(), RaftError> {
        let raft = &self.inner.raft;
        let stopped = |e: &dyn std::fmt::Display| RaftError::Stopped {
            path: self.inner.path.clone(),
            reason: e.to_string(),
        };
        if !raft.is_initialized().await.map_err(|e| stopped(&e))? {
            let members = BTreeMap::from([(NODE_ID, BasicNode::default())]);
            match raft.initialize(members).await {
                Ok(()) | Err(OpenraftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(stopped(&e)),
            }
        } else if self.status().voters == [NODE_ID] {
            // The only voter need not wait out an election timeout to find nobody else leads.
            raft.trigger().elect().await.map_err(|e| stopped(&e))?;
        }
        raft.wait(Some(READY_TIMEOUT))
            .metrics(
                |m| {
                    m.state == ServerState::Leader
                        && m.current_leader == Some(NODE_ID)
                        && m.last_applied.map(|id| id.index) >= m.last_log_index
                },
                "leader with every log entry applied",
            )
            .await
            .map_err(|e| RaftError::NotReady {
                path: self.inner.path.clone(),
                waited: READY_TIMEOUT,
                reason: e.to_string(),
            })?;
        Ok(())
    }

    /// Proposes a command; returns once it is committed (fsynced) and applied. Concurrent
    /// proposals share a log entry, and so an fsync.
    pub async fn propose(&self, command: Command) -> Result<Outcome, ProposeError> {
        self.inner.proposer.propose(command).await
    }

    /// Runs `f` against the latest applied state. Applying waits while `f` runs, so keep it short.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&read_applied(&self.inner.applied).state)
    }

    /// Waits until an entry after `seen` has been applied and returns the last applied
    /// index, or `None` once the node has shut down. Readers that keep a view of the state
    /// call it in a loop, reading the state after each return.
    pub async fn applied_after(&self, seen: Option<u64>) -> Option<u64> {
        let mut metrics = self.inner.raft.metrics();
        loop {
            let applied = {
                let m = metrics.borrow_and_update();
                if m.running_state.is_err() || self.inner.stopped.load(Ordering::Acquire) {
                    return None;
                }
                m.last_applied.map(|id| id.index)
            };
            if let Some(index) = applied
                && Some(index) > seen
            {
                return Some(index);
            }
            metrics.changed().await.ok()?;
        }
    }

    pub fn status(&self) -> RaftStatus {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let role = match metrics.state {
            _ if metrics.running_state.is_err() => "shutdown",
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        RaftStatus {
            node_id: metrics.id,
            role: role.to_owned(),
            term: metrics.current_term,
            leader: metrics.current_leader,
            last_log_index: metrics.last_log_index,
            last_applied: metrics.last_applied.map(|id| id.index),
            snapshot_index: metrics.snapshot.map(|id| id.index),
            voters: metrics.membership_config.membership().voter_ids().collect(),
        }
    }

    /// Stops the node and closes the store, so the directory can be opened again.
    /// Calling it again does nothing.
    pub async fn shutdown(&self) -> Result<(), RaftError> {
        if self.inner.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let stopped = |reason: String| RaftError::Stopped {
            path: self.inner.path.clone(),
            reason,
        };
        self.inner
            .raft
            .shutdown()
            .await
            .map_err(|e| stopped(e.to_string()))?;
        self.inner
            .writer
            .close()
            .await
            .map_err(|e| stopped(e.to_string()))
    }

    /// The number of log entries in the store file, to check that compaction bounds it.
    #[doc(hidden)]
    pub async fn stored_log_len(&self) -> Result<u64, RaftError> {
        self.inner
            .writer
            .call(|done| Op::CountLog { done })
            .await
            .map_err(|e| RaftError::Open {
                path: self.inner.path.clone(),
                source: e.into(),
            })
    }
}

impl Drop for Inner {
    /// A node dropped without `shutdown` would keep its Raft task and store open until the
    /// runtime ends; stop them in the background instead.
    fn drop(&mut self) {
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (raft, writer) = (self.raft.clone(), self.writer.clone());
            runtime.spawn(async move {
                let _ = raft.shutdown().await;
                let _ = writer.close().await;
            });
        }
    }
}

fn openraft_config(snapshot_every: u64) -> Result<Arc<openraft::Config>, String> {
    if snapshot_every == 0 {
        return Err("snapshot_every must be at least 1".to_owned());
    }
    let config = openraft::Config {
        cluster_name: "spread".to_owned(),
        heartbeat_interval: 100,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
        max_in_snapshot_log_to_keep: snapshot_every.min(MAX_LOG_KEPT_AFTER_SNAPSHOT),
        ..openraft::Config::default()
    };
    config.validate().map(Arc::new).map_err(|e| e.to_string())
}
