//! The records a monitor leaves for the daemon (`started.json`, `exit.json`, `monitor.pid`),
//! written atomically, and how the daemon reads them after a restart.

use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::layout::StateDir;
use super::{MonitorError, SCHEMA};

/// Written once the container's process runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedRecord {
    pub schema: u32,
    /// The host pid of the container's process.
    pub pid: u32,
    pub started_at: Timestamp,
}

/// Written when the container's process has exited (or never started) and runc has
/// deleted the container, so the id can be used again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    pub schema: u32,
    /// The exit code, when the process exited by itself.
    pub code: Option<i32>,
    /// The signal that killed the process.
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed a process of the container while it ran.
    pub oom_killed: bool,
    pub finished_at: Timestamp,
    /// Why create or start failed; then there was no process and code and signal are `None`.
    pub start_error: Option<String>,
}

impl ExitRecord {
    pub fn start_failed(reason: String) -> Self {
        Self {
            schema: SCHEMA,
            code: None,
            signal: None,
            oom_killed: false,
            finished_at: Timestamp::now(),
            start_error: Some(reason),
        }
    }
}

/// The started record, or `None` when the container has not (yet) started.
pub fn read_started(state_dir: &Path) -> Result<Option<StartedRecord>, MonitorError> {
    let path = StateDir::new(state_dir).started();
    let record: Option<StartedRecord> = read_json(&path)?;
    record
        .map(|r| check_schema(&path, r.schema).map(|()| r))
        .transpose()
}

/// The exit record, or `None` while the container runs (or its monitor died first).
pub fn read_exit(state_dir: &Path) -> Result<Option<ExitRecord>, MonitorError> {
    let path = StateDir::new(state_dir).exit();
    let record: Option<ExitRecord> = read_json(&path)?;
    record
        .map(|r| check_schema(&path, r.schema).map(|()| r))
        .transpose()
}

/// The pid in `monitor.pid`, if the file is there and holds one.
pub fn monitor_pid(state_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(StateDir::new(state_dir).pid()).ok()?;
    text.trim().parse().ok()
}

/// Whether the monitor of this state dir runs: `monitor.pid` names a live process whose
/// command line is `... monitor --config <state_dir>/monitor.json`. The config path is unique
/// to the instance, so a reused pid or another instance's monitor does not count; an exited
/// monitor not yet reaped (a zombie) has an empty command line and does not count either.
pub fn monitor_alive(state_dir: &Path) -> bool {
    let Some(pid) = monitor_pid(state_dir) else {
        return false;
    };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let Ok(dir) = std::path::absolute(state_dir) else {
        return false;
    };
    let config = StateDir::new(dir).config();
    let wanted: &[&[u8]] = &[
        b"monitor",
        b"--config",
        config.as_os_str().as_encoded_bytes(),
    ];
    args.windows(3).any(|window| window == wanted)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, MonitorError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MonitorError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| MonitorError::Parse {
            path: path.to_owned(),
            source,
        })
}

fn check_schema(path: &Path, found: u32) -> Result<(), MonitorError> {
    if found == SCHEMA {
        Ok(())
    } else {
        Err(MonitorError::Schema {
            path: path.to_owned(),
            found,
        })
    }
}

/// Writes `path` so that readers see the old file or the whole new one: a temp file beside
/// it, fsynced, renamed over it, and the directory fsynced so the rename survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MonitorError> {
    let failed = |source| MonitorError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".tmp.{}", std::process::id()));
    let tmp: PathBuf = dir.join(name);
    let mut file = std::fs::File::create(&tmp).map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(failed)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(failed)
}

/// `write_atomic` of a record as JSON.
pub(crate) fn write_record<T: Serialize>(path: &Path, record: &T) -> Result<(), MonitorError> {
    let mut json = serde_json::to_vec_pretty(record).expect("records always serialise");
    json.push(b'\n');
    write_atomic(path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_missing_ones_are_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_started(dir.path()).unwrap(), None);
        assert_eq!(read_exit(dir.path()).unwrap(), None);
        let started = StartedRecord {
            schema: SCHEMA,
            pid: 42,
            started_at: Timestamp::now(),
        };
        write_record(&StateDir::new(dir.path()).started(), &started).unwrap();
        assert_eq!(read_started(dir.path()).unwrap(), Some(started));
        let exit = ExitRecord::start_failed("no /app".into());
        write_record(&StateDir::new(dir.path()).exit(), &exit).unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), Some(exit));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 2, "no temp files remain: {leftovers:?}");
    }

    #[test]
    fn a_corrupt_or_future_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = StateDir::new(dir.path()).exit();
        std::fs::write(&path, "{").unwrap();
        let err = read_exit(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with("parse ") && err.contains("exit.json"),
            "{err}"
        );
        let mut future = serde_json::to_value(ExitRecord::start_failed("x".into())).unwrap();
        future["schema"] = 2.into();
        std::fs::write(&path, future.to_string()).unwrap();
        let err = read_exit(dir.path()).unwrap_err().to_string();
        assert!(err.contains("exit.json has schema 2"), "{err}");
    }

    #[test]
    fn a_pid_file_naming_a_process_that_is_not_this_monitor_is_not_alive() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!monitor_alive(dir.path()), "no pid file");
        let own_pid = std::process::id().to_string();
        std::fs::write(StateDir::new(dir.path()).pid(), own_pid).unwrap();
        assert!(!monitor_alive(dir.path()), "the test runner is no monitor");
        std::fs::write(StateDir::new(dir.path()).pid(), "999999999").unwrap();
        assert!(!monitor_alive(dir.path()), "no such process");
    }

    #[test]
    fn a_live_process_started_as_this_state_dirs_monitor_is_alive() {
        use std::os::unix::process::CommandExt;

        let dir = tempfile::tempdir().unwrap();
        let config = StateDir::new(dir.path()).config();
        // Its own process group, so the kill below also ends the `sleep` the shell started.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 60; true", "monitor", "--config"])
            .arg(&config)
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::fs::write(StateDir::new(dir.path()).pid(), child.id().to_string()).unwrap();
        // Until the child has exec'd, its command line is still the test runner's.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !monitor_alive(dir.path()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let alive = monitor_alive(dir.path());
        let other = tempfile::tempdir().unwrap();
        std::fs::write(StateDir::new(other.path()).pid(), child.id().to_string()).unwrap();
        let alive_for_other = monitor_alive(other.path());
        let group = format!("-{}", child.id());
        std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .unwrap();
        child.wait().unwrap();
        assert!(alive);
        assert!(!alive_for_other, "another instance's monitor");
        assert!(!monitor_alive(dir.path()), "after it exited");
    }
}
