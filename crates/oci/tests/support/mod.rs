//! Fixtures for the runc tests: the runc sandbox from spread-testkit running this crate's
//! probe, and readers for what the probe prints.

#![allow(dead_code)] // Each test binary uses a different part.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, PipeReader};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use spread_oci::ContainerId;
use spread_oci::testing::BundleFactory;
use spread_testkit::runc::PATIENCE;
use spread_testkit::runc::{RuncSandbox, static_binary};

/// The probe, compiled from tests/fixtures/probe.c.
pub fn probe() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe.c");
    static_binary(&source, "spread-oci-probe")
}

/// A runc sandbox whose bundles run this crate's probe.
pub struct Sandbox(RuncSandbox);

impl Sandbox {
    pub fn new() -> Self {
        Self(RuncSandbox::new("spread-oci-test.", probe()))
    }
}

impl Deref for Sandbox {
    type Target = RuncSandbox;
    fn deref(&self) -> &RuncSandbox {
        &self.0
    }
}

impl BundleFactory for Sandbox {
    fn long_running(&self, id: &ContainerId) -> PathBuf {
        self.bundle(id, &self.options(id, &["sleep"]))
    }
}

/// The lines a container writes to a pipe, read on a thread.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    pub fn new(reader: PipeReader) -> Self {
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self(receive)
    }

    /// Lines up to and including the first equal to `last`.
    pub fn until(&self, last: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            match self.0.recv_timeout(PATIENCE) {
                Ok(line) if line == last => return lines,
                Ok(line) => lines.push(line),
                Err(e) => panic!("no {last:?} line ({e}); got {lines:?}"),
            }
        }
    }

    /// Every line until the writers close the pipe.
    pub fn to_end(&self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            match self.0.recv_timeout(PATIENCE) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(e) => panic!("output did not end ({e}); got {lines:?}"),
            }
        }
    }
}

/// `key=value` lines as a map.
pub fn report(lines: &[String]) -> HashMap<String, String> {
    lines
        .iter()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `Uid:` or `Gid:` line of a host process, as its four ids.
pub fn host_ids(pid: u32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line[field.len()..]
        .split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect()
}
