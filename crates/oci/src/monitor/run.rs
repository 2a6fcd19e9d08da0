//! The monitor process: starts the container with pipes for its output, logs that output,
//! waits for the container's process as its subreaper and records how it ended.

use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

use super::capture::capture;
use super::layout::StateDir;
use super::records::{ExitRecord, StartedRecord, write_record};
use super::writer::LogWriter;
use super::{MonitorConfig, SCHEMA, Stream, sys};
use crate::{CgroupError, CgroupVersion, ContainerIo, PID_FILE, Runc, Runtime, oom_kill_count};

/// How long the output may keep flowing after the container's process exited. Every process
/// of the container dies with it (it is its pid namespace's init), so the pipes close at once
/// unless something outside the container holds a copy of their write ends.
const DRAIN_PATIENCE: Duration = Duration::from_secs(10);

/// Runs the monitor to the end of the container and returns the process exit code: 0 when
/// the container ran (however it ended), 1 when it could not be started or watched.
///
/// Blocking and nearly single-threaded: the main thread waits for children, one thread per
/// pipe copies output, and runc is run on a current-thread runtime.
pub fn run(config: MonitorConfig) -> i32 {
    let dir = StateDir::new(&config.state_dir);
    match Monitor::prepare(&config, &dir).and_then(|monitor| monitor.run()) {
        Ok(()) => 0,
        Err(Failure::Start(reason)) => {
            dir.note(&format!("container {} did not start: {reason}", config.id));
            if let Err(e) = write_record(&dir.exit(), &ExitRecord::start_failed(reason)) {
                dir.note(&e.to_string());
            }
            1
        }
        Err(Failure::Monitor(reason)) => {
            dir.note(&format!("monitor of container {}: {reason}", config.id));
            1
        }
    }
}

enum Failure {
    /// Create or start failed: recorded in `exit.json`.
    Start(String),
    /// The monitor itself could not work; noted in `monitor.log` only.
    Monitor(String),
}

struct Monitor<'a> {
    config: &'a MonitorConfig,
    dir: &'a StateDir,
    runc: Runc,
    runtime: tokio::runtime::Runtime,
}

impl<'a> Monitor<'a> {
    /// Detaches from the spawner and claims the state dir, before any container exists.
    fn prepare(config: &'a MonitorConfig, dir: &'a StateDir) -> Result<Self, Failure> {
        let fail = |what: &str, e: &dyn std::fmt::Display| Failure::Monitor(format!("{what}: {e}"));
        // EPERM means we already lead a process group, as when started with `setsid`.
        let _ = sys::setsid();
        sys::shrug_off_termination_signals().map_err(|e| fail("install signal handlers", &e))?;
        sys::become_subreaper().map_err(|e| fail("become a child subreaper", &e))?;
        if super::monitor_alive(dir.path()) {
            let pid = super::monitor_pid(dir.path()).unwrap_or_default();
            return Err(fail(
                "state dir",
                &format!("already watched by monitor {pid}"),
            ));
        }
        dir.create().map_err(|e| fail("state dir", &e))?;
        dir.clear_records().map_err(|e| fail("state dir", &e))?;
        let pid = format!("{}\n", std::process::id());
        super::records::write_atomic(&dir.pid(), pid.as_bytes())
            .map_err(|e| fail("pid file", &e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail("start a runtime for runc", &e))?;
        Ok(Self {
            config,
            dir,
            runc: Runc::new(&config.runc_binary, &config.runc_root),
            runtime,
        })
    }

    fn run(self) -> Result<(), Failure> {
        let fail = |what: &str, e: &dyn std::fmt::Display| Failure::Monitor(format!("{what}: {e}"));
        let log = LogWriter::open(self.dir, self.config.log)
            .map_err(|e| fail(&format!("open {}", self.dir.log_file(0).display()), &e))?;
        let log = Arc::new(Mutex::new(log));
        let (stdout_reader, stdout_writer) = std::io::pipe().map_err(|e| fail("pipe", &e))?;
        let (stderr_reader, stderr_writer) = std::io::pipe().map_err(|e| fail("pipe", &e))?;
        let (done, drained) = mpsc::channel();
        for (reader, stream) in [
            (stdout_reader, Stream::Stdout),
            (stderr_reader, Stream::Stderr),
        ] {
            let (log, notes, done) = (log.clone(), self.dir.clone(), done.clone());
            let max_line = self.config.log.max_line_bytes();
            std::thread::Builder::new()
                .name(stream.to_string())
                .spawn(move || capture(reader, stream, log, max_line, notes, done))
                .map_err(|e| fail("start a log thread", &e))?;
        }
        drop(done);

        // Starting consumes (and so closes) our copies of the write ends: only the container
        // holds them from here on, and the readers see the end when it exits.
        let io = ContainerIo::null()
            .with_stdout(stdout_writer)
            .with_stderr(stderr_writer);
        let (pid, oom_kills_at_start) = self.start(io)?;
        let started = StartedRecord {
            schema: SCHEMA,
            pid,
            started_at: Timestamp::now(),
        };
        let status = write_record(&self.dir.started(), &started)
            .map_err(|e| fail("record the start", &e))
            .and_then(|()| {
                if let Err(e) = sys::release_stdout() {
                    // The spawner still sees the record, only a poll later.
                    self.dir.note(&format!("close stdout: {e}"));
                }
                wait_for(pid).map_err(|e| fail("wait for the container", &e))
            });
        let status = match status {
            Ok(status) => status,
            Err(failure) => {
                // Unrecorded, the container would run unwatched; it is better stopped.
                self.delete();
                return Err(failure);
            }
        };
        let oom_kills_at_exit = self.oom_kills();
        for _ in 0..2 {
            if drained.recv_timeout(DRAIN_PATIENCE).is_err() {
                self.dir
                    .note("the output pipes stayed open after the container exited");
                break;
            }
        }
        if let Err(e) = log.lock().unwrap_or_else(|p| p.into_inner()).sync() {
            self.dir.note(&format!("sync the log: {e}"));
        }
        // Deleted before exit.json is written, so a daemon that sees the record can reuse the id.
        self.delete();
        let exit = ExitRecord {
            schema: SCHEMA,
            code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            oom_killed: oom_kills_at_exit > oom_kills_at_start,
            finished_at: Timestamp::now(),
            start_error: None,
        };
        write_record(&self.dir.exit(), &exit).map_err(|e| fail("record the exit", &e))
    }

    /// Runs the container (create and start in one runtime call); returns its host pid and
    /// the OOM kills its cgroup counted before (zero for a fresh one, the usual case, but a
    /// cgroup of that path may have been left behind).
    fn start(&self, io: ContainerIo) -> Result<(u32, u64), Failure> {
        let id = &self.config.id;
        let bundle = &self.config.bundle;
        let oom_kills = self.oom_kills_if_any();
        if let Err(e) = self.runtime.block_on(self.runc.run(id, bundle, io)) {
            self.delete();
            return Err(Failure::Start(e.to_string()));
        }
        let pid_file = bundle.join(PID_FILE);
        let pid = std::fs::read_to_string(&pid_file)
            .map_err(|e| e.to_string())
            .and_then(|text| text.trim().parse::<u32>().map_err(|e| e.to_string()));
        match pid {
            Ok(pid) => Ok((pid, oom_kills)),
            Err(e) => {
                self.delete();
                Err(Failure::Start(format!("read {}: {e}", pid_file.display())))
            }
        }
    }

    /// The OOM kills of a cgroup left at the container's path; none when there is no cgroup.
    fn oom_kills_if_any(&self) -> u64 {
        let mount = &self.config.cgroup_mount;
        let version = CgroupVersion::detect_at(mount);
        match oom_kill_count(mount, version, &self.config.cgroups_path) {
            Ok(count) => count,
            Err(CgroupError::Read { source, .. }) if source.kind() == ErrorKind::NotFound => 0,
            Err(e) => {
                self.dir.note(&format!("oom kill count: {e}"));
                0
            }
        }
    }

    fn oom_kills(&self) -> u64 {
        let mount = &self.config.cgroup_mount;
        let version = CgroupVersion::detect_at(mount);
        oom_kill_count(mount, version, &self.config.cgroups_path).unwrap_or_else(|e| {
            self.dir.note(&format!("oom kill count: {e}"));
            0
        })
    }

    /// `runc delete --force`, which also kills what is left; an unknown id is fine.
    fn delete(&self) {
        let deleted = self
            .runtime
            .block_on(self.runc.delete(&self.config.id, true));
        if let Err(e) = deleted {
            self.dir.note(&e.to_string());
        }
    }
}

/// Reaps children until `pid` exits, and returns how it ended. Others (orphans of the
/// runtime) are reaped and forgotten. Should `pid` not be our child after all, it is watched
/// through `/proc` until it is gone, and how it ended is unknown (`None`).
fn wait_for(pid: u32) -> std::io::Result<Option<ExitStatus>> {
    while let Some((reaped, status)) = sys::wait_any()? {
        if reaped == pid {
            return Ok(Some(status));
        }
    }
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(None)
}
