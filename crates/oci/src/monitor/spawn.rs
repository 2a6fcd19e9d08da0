//! Starting a monitor from the daemon, detached so that it outlives the daemon.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::ChildStdout;

use super::layout::StateDir;
use super::records::{StartedRecord, monitor_alive, monitor_pid, read_exit, read_started};
use super::{MonitorConfig, MonitorError};

/// How long `spawn` waits for the monitor to report; runc create and start normally take well
/// under a second, but a loaded machine can be slow.
const START_PATIENCE: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(10);

/// A monitor that has started its container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spawned {
    pub monitor_pid: u32,
    pub started: StartedRecord,
}

/// Writes `config` into its state dir, starts `spread_binary monitor --config FILE` and waits
/// until the monitor reports that the container runs (`started.json`) or could not start
/// (`exit.json` with `start_error`, returned as `StartFailed`).
///
/// The monitor is detached: its stdin and stderr are `/dev/null`, its stdout a pipe it closes
/// once the start is recorded (so the wait ends then, not at the next poll), its working
/// directory `/`, its
/// environment only `PATH`, and it makes itself a session leader, so the daemon's terminal,
/// process group and exit do not touch it.
/// It is not double-forked: it stays our child and a background task reaps it when it ends
/// (call this inside a tokio runtime). Should we exit first, it is re-parented to init, which
/// reaps it; nothing about it depends on its parent. Whoever restarts reattaches through the
/// records (`read_started`, `read_exit`, `monitor_alive`).
///
/// Records of an earlier run in the state dir are removed first; the logs are kept.
pub async fn spawn(spread_binary: &Path, config: &MonitorConfig) -> Result<Spawned, MonitorError> {
    config.validate()?;
    let dir = StateDir::new(&config.state_dir);
    if monitor_alive(dir.path()) {
        return Err(MonitorError::AlreadyMonitored {
            id: config.id.clone(),
            pid: monitor_pid(dir.path()).unwrap_or_default(),
        });
    }
    dir.create()?;
    dir.clear_records()?;
    let config_path = config.write()?;
    let mut child = tokio::process::Command::new(spread_binary)
        .arg("monitor")
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        // Closed by the monitor once the start is recorded (or when it exits), so the wait
        // below ends then rather than at the next poll.
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .current_dir("/")
        // A long-lived process has no use for the daemon's environment (tokens included).
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .spawn()
        .map_err(|source| MonitorError::Spawn {
            id: config.id.clone(),
            binary: spread_binary.to_owned(),
            source,
        })?;
    let monitor_pid = child.id().unwrap_or_default();
    let mut recorded = child.stdout.take();
    let deadline = Instant::now() + START_PATIENCE;
    let outcome = loop {
        let exited = child.try_wait().ok().flatten();
        match reported(config, &dir) {
            Ok(None) => {}
            Ok(Some(started)) => break Ok(started),
            Err(e) => break Err(e),
        }
        if let Some(status) = exited {
            break Err(MonitorError::MonitorExited {
                id: config.id.clone(),
                status,
                note: dir.last_note(),
            });
        }
        if Instant::now() > deadline {
            break Err(MonitorError::StartTimeout {
                id: config.id.clone(),
                seconds: START_PATIENCE.as_secs(),
            });
        }
        wait_a_moment(&mut recorded).await;
    };
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    outcome.map(|started| Spawned {
        monitor_pid,
        started,
    })
}

/// Waits at most `POLL`, or until the monitor closes its stdout (`recorded`), after which
/// every wait is a plain poll.
async fn wait_a_moment(recorded: &mut Option<ChildStdout>) {
    let Some(pipe) = recorded else {
        return tokio::time::sleep(POLL).await;
    };
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(POLL, pipe.read(&mut buf)).await;
    if let Ok(Ok(0) | Err(_)) = read {
        *recorded = None;
    }
}

/// The start the monitor has reported, `None` while it has reported nothing, and
/// `StartFailed` when it could not start the container.
fn reported(config: &MonitorConfig, dir: &StateDir) -> Result<Option<StartedRecord>, MonitorError> {
    // The exit record is read first: a container that exits at once may have both.
    let exit = read_exit(dir.path())?;
    if let Some(reason) = exit.and_then(|e| e.start_error) {
        return Err(MonitorError::StartFailed {
            id: config.id.clone(),
            reason,
        });
    }
    read_started(dir.path())
}
