//! The per-container monitor (a shim, like containerd's): a process of its own that starts
//! the container, holds its stdout and stderr, writes them to size-rotated log files, and
//! records how the container ended, so the daemon can restart without touching it.
//!
//! Daemon side: `spawn`, then `read_started`, `read_exit`, `monitor_alive`, `read_logs` and
//! `follow` over the instance's state dir. Monitor side: `run`, behind `spread monitor`.

mod capture;
mod config;
mod error;
mod layout;
mod logs;
mod records;
mod run;
mod spawn;
#[allow(unsafe_code)]
mod sys;
mod writer;

pub use config::{LogLimits, MonitorConfig, SCHEMA};
pub use error::MonitorError;
pub use layout::StateDir;
pub use logs::{LogLine, Position, Stream, follow, read_logs, tail};
pub use records::{
    ExitRecord, StartedRecord, monitor_alive, monitor_pid, read_exit, read_started, write_atomic,
};
pub use run::run;
pub use spawn::{Spawned, spawn};
pub use writer::append_lines;
