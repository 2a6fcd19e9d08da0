//! Fixtures for the monitor tests: the runc sandbox from spread-testkit running the monitor
//! probe, monitor configs with state dirs in the sandbox, and a guard that kills monitors
//! before the sandbox removes their containers and cgroups, even when a test fails.

#![allow(dead_code)]

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;

use spread_oci::ContainerId;
use spread_oci::monitor::{LogLimits, MonitorConfig, monitor_alive, monitor_pid};
pub use spread_testkit::runc::wait_until;
use spread_testkit::runc::{RUNC, RuncSandbox, static_binary};

pub const BIN: &str = env!("CARGO_BIN_EXE_spread");

/// The probe, compiled from tests/fixtures/monitor_probe.c.
pub fn probe() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/monitor_probe.c");
    static_binary(&source, "spread-monitor-probe")
}

/// A runc sandbox whose bundles run the monitor probe, with state dirs for monitors.
pub struct Sandbox(RuncSandbox);

impl Deref for Sandbox {
    type Target = RuncSandbox;
    fn deref(&self) -> &RuncSandbox {
        &self.0
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self(RuncSandbox::new("spread-monitor-test.", probe()))
    }

    /// A monitor config for a bundle that runs the probe with `args`, limited to
    /// `memory_bytes` if given, with its state dir in the sandbox.
    pub fn config(
        &self,
        id: &ContainerId,
        args: &[&str],
        memory_bytes: Option<u64>,
    ) -> MonitorConfig {
        let mut opts = self.options(id, args);
        opts.memory_bytes = memory_bytes;
        let bundle = self.bundle(id, &opts);
        let state_dir = self.path().join("state").join(id.as_str());
        MonitorConfig::new(
            id.clone(),
            bundle,
            RUNC,
            &self.runc.root,
            state_dir,
            opts.cgroups_path,
        )
    }

    /// Like `config`, with small log files.
    pub fn config_with_log(
        &self,
        id: &ContainerId,
        args: &[&str],
        log: LogLimits,
    ) -> MonitorConfig {
        MonitorConfig {
            log,
            ..self.config(id, args, None)
        }
    }
}

/// Sends `signal` (a name such as `TERM`) to a process.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {signal} {pid}");
}

impl Drop for Sandbox {
    /// Monitors first, so none is left watching; the sandbox then removes their containers.
    fn drop(&mut self) {
        let states = self.path().join("state");
        for entry in std::fs::read_dir(states).into_iter().flatten().flatten() {
            if monitor_alive(&entry.path())
                && let Some(pid) = monitor_pid(&entry.path())
            {
                let _ = Command::new("kill")
                    .args(["-s", "KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}
