//! The anchor: plain `runc run --detach` of a bundle equivalent to a Spread instance's (the
//! same hardened `config.json` from `spread-oci`, the probe as its only file, a mapped uid
//! range, a cgroup of its own), timed until the probe accepts TCP inside the container's new
//! network namespace. Containers, bundles and cgroups go when it is dropped.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use spread_testkit::runc::{RUNC, RuncSandbox};

use crate::instance_start::{PORT, connect_until};

pub struct PlainRunc {
    sandbox: RuncSandbox,
}

/// One timed plain start, from just before `runc run` is spawned.
pub struct AnchorStart {
    /// `runc run --detach` returned: the container's process runs.
    pub returned: Duration,
    /// The probe accepted a TCP connection: the start latency.
    pub accepting: Duration,
}

impl PlainRunc {
    /// Bundles that run `probe` (a static binary); their uid range is not the agent's.
    pub fn new(probe: PathBuf) -> Self {
        Self {
            sandbox: RuncSandbox::new("spread-bench-runc.", probe),
        }
    }

    /// Makes a bundle (not timed), then times `runc run --detach` until the probe accepts a
    /// connection on `127.0.0.1:PORT` in the container's network namespace; then deletes the
    /// container and its bundle.
    pub fn start_once(&self, patience: Duration) -> Result<AnchorStart> {
        let id = self.sandbox.id("bench");
        let mut options = self.sandbox.options(&id, &[]);
        options.env.push(format!("PORT={PORT}"));
        let bundle = self.sandbox.bundle(&id, &options);
        let (pid_file, log) = (bundle.join("runc.pid"), bundle.join("runc.log"));

        let started = Instant::now();
        // runc's stdio becomes the container's, so its own errors go to `--log`.
        let status = Command::new(RUNC)
            .arg("--root")
            .arg(&self.sandbox.runc.root)
            .arg("--log")
            .arg(&log)
            .args(["run", "--detach", "--pid-file"])
            .arg(&pid_file)
            .arg(id.as_str())
            .current_dir(&bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("run runc")?;
        let returned = started.elapsed();
        let answered = if status.success() {
            let pid = std::fs::read_to_string(&pid_file)
                .with_context(|| format!("read {}", pid_file.display()))?;
            let netns = File::open(format!("/proc/{}/ns/net", pid.trim()))
                .context("open the container's network namespace")?;
            let deadline = started + patience;
            netns::run_in(&netns, || {
                connect_until(SocketAddr::from((Ipv4Addr::LOCALHOST, PORT)), deadline)
            })
            .and_then(|connected| connected)
            .map(|()| AnchorStart {
                returned,
                accepting: started.elapsed(),
            })
        } else {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            Err(anyhow::anyhow!(
                "runc run {id} failed ({status}): {}",
                log.trim()
            ))
        };
        let deleted = self.sandbox.run_runc(&["delete", "--force", id.as_str()]);
        let _ = std::fs::remove_dir_all(&bundle);
        let start = answered?;
        if !deleted.status.success() {
            bail!(
                "runc delete --force {id}: {}",
                String::from_utf8_lossy(&deleted.stderr).trim()
            );
        }
        Ok(start)
    }
}

/// The one place with unsafe code: entering a network namespace on a thread of its own.
#[allow(unsafe_code)]
mod netns {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    use anyhow::{Result, anyhow};

    /// Runs `f` on a new thread that has entered the network namespace `netns`.
    pub fn run_in<T: Send>(netns: &File, f: impl FnOnce() -> T + Send) -> Result<T> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns changes only this thread's network namespace, and the
                    // thread ends when `f` returns, so no other code runs in the namespace.
                    let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
                    if rc != 0 {
                        return Err(anyhow!(
                            "setns into the container's network namespace: {}",
                            std::io::Error::last_os_error()
                        ));
                    }
                    Ok(f())
                })
                .join()
                .map_err(|_| anyhow!("the thread in the container's network namespace panicked"))?
        })
    }
}
