//! `Runc`: the `Runtime` trait carried out by the `runc` command line (crun and youki speak it too).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde::Deserialize;
use tokio::process::Command;

use crate::{ContainerId, ContainerIo, ContainerState, Op, Runtime, RuntimeError, Signal, Status};

/// Name of the file in the bundle where `create` asks runc to write its log (as containerd does).
pub const CREATE_LOG: &str = "runc-create.log.json";
/// Name of the file in the bundle where `create` asks runc to write the container's host pid.
pub const PID_FILE: &str = "init.pid";

/// The runc binary and its state directory (`runc --root`), both injected.
#[derive(Clone, Debug)]
pub struct Runc {
    pub binary: PathBuf,
    pub root: PathBuf,
}

/// How a foreground container run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunExit {
    /// It exited with this code (128 + the signal number when a signal ended it).
    Exited(i32),
    /// It ran past its deadline and was killed.
    TimedOut,
}

/// What `runc --version` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuncVersion {
    /// The full version, such as `1.1.5+ds1`.
    pub version: String,
    /// Major, minor and patch numbers of `version`.
    pub semver: (u32, u32, u32),
    pub commit: Option<String>,
    /// The runtime-spec version it implements.
    pub spec: Option<String>,
    pub libseccomp: Option<String>,
}

/// Why `runc --version` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("run {} --version: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} --version printed no version line: {output:?}", binary.display())]
    Unrecognised { binary: PathBuf, output: String },
}

impl Runc {
    pub fn new(binary: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            root: root.into(),
        }
    }

    /// Runs `runc --version` and parses it.
    pub async fn version(&self) -> Result<RuncVersion, VersionError> {
        let output = Command::new(&self.binary)
            .arg("--version")
            .output()
            .await
            .map_err(|source| VersionError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        let text = String::from_utf8_lossy(&output.stdout);
        parse_version(&text).ok_or_else(|| VersionError::Unrecognised {
            binary: self.binary.clone(),
            output: text.into_owned(),
        })
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--root")
            .arg(&self.root)
            .args(["--log-format", "json"]);
        command
    }

    /// Runs a runc subcommand whose stdio is ours, turning a failure into a typed error.
    async fn invoke(
        &self,
        op: Op,
        id: &ContainerId,
        args: &[&OsStr],
    ) -> Result<Output, RuntimeError> {
        tracing::debug!(%op, %id, ?args, "runc");
        let output = self
            .command()
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|source| self.spawn_error(op, id, source))?;
        if output.status.success() {
            return Ok(output);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(RuntimeError::classify(op, id, &error_messages(&stderr)))
    }

    /// `runc create` or `runc run --detach`: the container's stdio is `io`, so runc's errors
    /// are read from a log file instead.
    async fn launch(
        &self,
        op: Op,
        subcommand: &[&str],
        id: &ContainerId,
        bundle: &Path,
        io: ContainerIo,
    ) -> Result<(), RuntimeError> {
        let log = empty_log(op, id, bundle)?;
        tracing::debug!(%op, %id, bundle = %bundle.display(), "runc");
        let [stdin, stdout, stderr] = io.into_stdio();
        let mut command = self.command();
        command
            .arg("--log")
            .arg(&log)
            .args(subcommand)
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(bundle.join(PID_FILE))
            .arg(id.as_str())
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr);
        let status = command
            .status()
            .await
            .map_err(|source| self.spawn_error(op, id, source))?;
        // Our copies of the container's stdio must close, or readers would never see EOF.
        drop(command);
        if status.success() {
            return Ok(());
        }
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        let mut message = error_messages(&logged);
        if message.is_empty() {
            message = format!("runc exited with {status} and logged nothing");
        }
        Err(RuntimeError::classify(op, id, &message))
    }

    /// `runc run` in the foreground, for one-off containers such as build steps: the container's
    /// stdio is `io`, and the answer comes once it has exited, with its exit code (128 + the
    /// signal number when a signal ended it). At `deadline` it is killed and the answer is
    /// `TimedOut`. runc removes the container itself once it has exited.
    pub async fn run_to_exit(
        &self,
        id: &ContainerId,
        bundle: &Path,
        io: ContainerIo,
        deadline: tokio::time::Instant,
    ) -> Result<RunExit, RuntimeError> {
        let op = Op::Run;
        let log = empty_log(op, id, bundle)?;
        tracing::debug!(%op, %id, bundle = %bundle.display(), "runc run (foreground)");
        let [stdin, stdout, stderr] = io.into_stdio();
        let mut command = self.command();
        command
            .arg("--log")
            .arg(&log)
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(id.as_str())
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr);
        let mut child = command
            .spawn()
            .map_err(|source| self.spawn_error(op, id, source))?;
        // Our copies of the container's stdio must close, or readers would never see EOF.
        drop(command);
        let waited = tokio::select! {
            status = child.wait() => Some(status),
            () = tokio::time::sleep_until(deadline) => None,
        };
        let status = match waited {
            Some(status) => status,
            None => {
                if let Err(e) = self.kill(id, Signal::KILL).await {
                    tracing::warn!(%id, error = %e, "could not kill a container past its deadline");
                }
                let _ = child.wait().await;
                return Ok(RunExit::TimedOut);
            }
        };
        let status = status.map_err(|source| self.spawn_error(op, id, source))?;
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        let errors = error_messages(&logged);
        if !status.success() && !errors.is_empty() {
            return Err(RuntimeError::classify(op, id, &errors));
        }
        let code = status
            .code()
            .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|s| 128 + s))
            .unwrap_or(255);
        Ok(RunExit::Exited(code))
    }

    fn spawn_error(&self, op: Op, id: &ContainerId, source: std::io::Error) -> RuntimeError {
        RuntimeError::Spawn {
            op,
            id: id.clone(),
            binary: self.binary.clone(),
            source,
        }
    }
}

impl Runtime for Runc {
    async fn create(
        &self,
        id: &ContainerId,
        bundle: &Path,
        io: ContainerIo,
    ) -> Result<(), RuntimeError> {
        self.launch(Op::Create, &["create"], id, bundle, io).await
    }

    async fn run(
        &self,
        id: &ContainerId,
        bundle: &Path,
        io: ContainerIo,
    ) -> Result<(), RuntimeError> {
        self.launch(Op::Run, &["run", "--detach"], id, bundle, io)
            .await
    }

    async fn start(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        self.invoke(Op::Start, id, &["start".as_ref(), id.as_str().as_ref()])
            .await?;
        Ok(())
    }

    async fn state(&self, id: &ContainerId) -> Result<ContainerState, RuntimeError> {
        let output = self
            .invoke(Op::State, id, &["state".as_ref(), id.as_str().as_ref()])
            .await?;
        parse_state(&output.stdout).map_err(|detail| RuntimeError::Output {
            op: Op::State,
            id: id.clone(),
            detail,
        })
    }

    async fn kill(&self, id: &ContainerId, signal: Signal) -> Result<(), RuntimeError> {
        let number = signal.number().to_string();
        self.invoke(
            Op::Kill,
            id,
            &["kill".as_ref(), id.as_str().as_ref(), number.as_ref()],
        )
        .await?;
        Ok(())
    }

    async fn delete(&self, id: &ContainerId, force: bool) -> Result<(), RuntimeError> {
        let mut args: Vec<&OsStr> = vec!["delete".as_ref()];
        if force {
            args.push("--force".as_ref());
        }
        args.push(id.as_str().as_ref());
        self.invoke(Op::Delete, id, &args).await?;
        Ok(())
    }
}

/// The bundle's runc log, emptied, for a command whose stdio is the container's.
fn empty_log(op: Op, id: &ContainerId, bundle: &Path) -> Result<PathBuf, RuntimeError> {
    let log = bundle.join(CREATE_LOG);
    std::fs::write(&log, b"").map_err(|source| RuntimeError::Failed {
        op,
        id: id.clone(),
        stderr: format!("cannot write {}: {source}", log.display()),
    })?;
    Ok(log)
}

/// The error messages in runc's JSON log lines, or the text as it is when it is not JSON.
fn error_messages(log: &str) -> String {
    #[derive(Deserialize)]
    struct Line {
        level: String,
        msg: String,
    }
    let lines: Vec<&str> = log.lines().filter(|line| !line.trim().is_empty()).collect();
    let parsed: Vec<Line> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if parsed.len() < lines.len() {
        return log.trim().to_owned();
    }
    let errors: Vec<String> = parsed
        .into_iter()
        .filter(|line| matches!(line.level.as_str(), "error" | "fatal" | "panic"))
        .map(|line| line.msg)
        .collect();
    errors.join("; ")
}

fn parse_state(stdout: &[u8]) -> Result<ContainerState, String> {
    #[derive(Deserialize)]
    struct Raw {
        id: String,
        pid: i64,
        status: String,
        bundle: PathBuf,
    }
    let raw: Raw = serde_json::from_slice(stdout).map_err(|e| format!("state json: {e}"))?;
    let status = match raw.status.as_str() {
        "creating" | "created" => Status::Created,
        "running" => Status::Running,
        "pausing" | "paused" => Status::Paused,
        "stopped" => Status::Stopped,
        other => return Err(format!("unknown status {other:?}")),
    };
    let id = ContainerId::parse(&raw.id).map_err(|e| e.to_string())?;
    let pid = u32::try_from(raw.pid)
        .ok()
        .filter(|&pid| pid > 0 && status != Status::Stopped);
    Ok(ContainerState {
        id,
        status,
        pid,
        bundle: raw.bundle,
    })
}

fn parse_version(text: &str) -> Option<RuncVersion> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_owned())
    };
    let version = field("runc version ").or_else(|| field("crun version "))?;
    let numbers: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|part| part.parse().ok())
        .collect::<Option<_>>()?;
    let &[major, minor, patch] = numbers.as_slice() else {
        return None;
    };
    Some(RuncVersion {
        semver: (major, minor, patch),
        commit: field("commit:"),
        spec: field("spec:"),
        libseccomp: field("libseccomp:"),
        version,
    })
}

#[cfg(test)]
mod tests;
