//! The `Runtime` trait: the OCI runtime-spec operations, and the values they take and return.

use std::fmt;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::{ContainerId, RuntimeError, Signal};

/// An OCI runtime, spoken to with the verbs of the runtime spec.
///
/// `create` prepares the container from a bundle and leaves its process waiting; `start`
/// lets it run; `kill` signals it; `delete` removes what `create` made. A container whose
/// process has exited is `Stopped` until it is deleted.
pub trait Runtime: Send + Sync {
    fn create(
        &self,
        id: &ContainerId,
        bundle: &Path,
        io: ContainerIo,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    fn start(&self, id: &ContainerId) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// `create` and `start` in one step; a runtime that can do both in one call overrides this
    /// to save the second. When it fails, no container of this id is left.
    fn run(
        &self,
        id: &ContainerId,
        bundle: &Path,
        io: ContainerIo,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send {
        async move {
            self.create(id, bundle, io).await?;
            if let Err(e) = self.start(id).await {
                let _ = self.delete(id, true).await;
                return Err(e);
            }
            Ok(())
        }
    }

    fn state(
        &self,
        id: &ContainerId,
    ) -> impl Future<Output = Result<ContainerState, RuntimeError>> + Send;

    fn kill(
        &self,
        id: &ContainerId,
        signal: Signal,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Removes a stopped (or never started) container. With `force` a running one is killed
    /// first, and an unknown id is not an error, so cleanup can be repeated.
    fn delete(
        &self,
        id: &ContainerId,
        force: bool,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
}

/// Where a container's process reads and writes: each `None` is `/dev/null`.
///
/// The file descriptors are handed to the container's process as they are (a monitor passes
/// the write ends of its pipes here), so they must not be terminals the host relies on.
#[derive(Debug, Default)]
pub struct ContainerIo {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl ContainerIo {
    /// Stdio all connected to `/dev/null`.
    pub fn null() -> Self {
        Self::default()
    }

    pub fn with_stdin(mut self, fd: impl Into<OwnedFd>) -> Self {
        self.stdin = Some(fd.into());
        self
    }

    pub fn with_stdout(mut self, fd: impl Into<OwnedFd>) -> Self {
        self.stdout = Some(fd.into());
        self
    }

    pub fn with_stderr(mut self, fd: impl Into<OwnedFd>) -> Self {
        self.stderr = Some(fd.into());
        self
    }

    /// The three streams as `Stdio` for a child process, in the order stdin, stdout, stderr.
    pub fn into_stdio(self) -> [Stdio; 3] {
        let to_stdio = |fd: Option<OwnedFd>| fd.map_or_else(Stdio::null, Stdio::from);
        [
            to_stdio(self.stdin),
            to_stdio(self.stdout),
            to_stdio(self.stderr),
        ]
    }
}

/// A container's status as the runtime reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Created and waiting for `start`.
    Created,
    Running,
    /// Its process has exited (or was never there); it awaits `delete`.
    Stopped,
    /// Frozen (also reported while it is being frozen).
    Paused,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        })
    }
}

/// The answer to `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerState {
    pub id: ContainerId,
    pub status: Status,
    /// The host pid of the container's process, while it has one.
    pub pid: Option<u32>,
    pub bundle: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn io_given_a_pipe_hands_its_write_end_to_the_child_process() {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let io = ContainerIo::null().with_stdout(writer);
        let [_, stdout, _] = io.into_stdio();
        let mut child = std::process::Command::new("echo")
            .arg("hello")
            .stdout(stdout)
            .spawn()
            .unwrap();
        child.wait().unwrap();
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello\n");
    }

    #[test]
    fn a_pipe_given_as_stdin_is_readable_by_the_child() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let [stdin, _, _] = ContainerIo::null().with_stdin(reader).into_stdio();
        let child = std::process::Command::new("cat")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        writer.write_all(b"typed").unwrap();
        drop(writer);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.stdout, b"typed");
    }
}
