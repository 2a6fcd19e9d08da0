//! The files of an instance's state dir, named in one place.

use std::path::{Path, PathBuf};

use super::MonitorError;

/// `state_dir/`: `monitor.json`, `monitor.pid`, `started.json`, `exit.json`, `monitor.log`
/// (the monitor's own complaints) and `logs/current.log` with its rotated `current.log.N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir(PathBuf);

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn config(&self) -> PathBuf {
        self.0.join("monitor.json")
    }

    pub fn pid(&self) -> PathBuf {
        self.0.join("monitor.pid")
    }

    pub fn started(&self) -> PathBuf {
        self.0.join("started.json")
    }

    pub fn exit(&self) -> PathBuf {
        self.0.join("exit.json")
    }

    /// Where the monitor notes its own failures, since its stdio is `/dev/null`.
    pub fn notes(&self) -> PathBuf {
        self.0.join("monitor.log")
    }

    pub fn logs(&self) -> PathBuf {
        self.0.join("logs")
    }

    /// `logs/current.log` for `n == 0`, else the rotated `logs/current.log.n` (older as n grows).
    pub fn log_file(&self, n: u32) -> PathBuf {
        match n {
            0 => self.logs().join("current.log"),
            n => self.logs().join(format!("current.log.{n}")),
        }
    }

    /// Makes the state dir and its `logs` dir.
    pub fn create(&self) -> Result<(), MonitorError> {
        let logs = self.logs();
        std::fs::create_dir_all(&logs).map_err(|source| MonitorError::Write { path: logs, source })
    }

    /// Removes the pid file and records of an earlier run, keeping the logs.
    pub fn clear_records(&self) -> Result<(), MonitorError> {
        for path in [self.pid(), self.started(), self.exit()] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(MonitorError::Write { path, source }),
            }
        }
        Ok(())
    }

    /// Appends a line to `monitor.log`; failing to note is not worth failing for.
    pub fn note(&self, message: &str) {
        use std::io::Write;
        let line = format!("{:.3} {message}\n", jiff::Timestamp::now());
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.notes())
        {
            let _ = file.write_all(line.as_bytes());
        }
    }

    /// The last line noted, for error messages.
    pub fn last_note(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.notes()).ok()?;
        text.lines().last().map(str::to_owned)
    }
}
