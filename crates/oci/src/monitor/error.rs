//! What starting, running or reading a monitor can fail with; each message names the path or id.

use std::path::PathBuf;

use crate::ContainerId;

/// A monitor failure.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("monitor config for container {id}: {reason}")]
    InvalidConfig { id: ContainerId, reason: String },
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} has schema {found}, this build reads {}", path.display(), super::SCHEMA)]
    Schema { path: PathBuf, found: u32 },
    #[error("start the monitor of container {id} with {}: {source}", binary.display())]
    Spawn {
        id: ContainerId,
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {id} already has a live monitor (pid {pid})")]
    AlreadyMonitored { id: ContainerId, pid: u32 },
    #[error("container {id} did not start: {reason}")]
    StartFailed { id: ContainerId, reason: String },
    #[error("the monitor of container {id} exited with {status} before starting it{}",
        note.as_ref().map(|n| format!(" (it noted: {n})")).unwrap_or_default())]
    MonitorExited {
        id: ContainerId,
        status: std::process::ExitStatus,
        note: Option<String>,
    },
    #[error("the monitor of container {id} reported no start within {seconds} s")]
    StartTimeout { id: ContainerId, seconds: u64 },
}
