//! `FakeRuntime`: the runtime's state machine kept in memory, with scripted exits and faults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{ContainerId, ContainerIo, ContainerState, Op, Runtime, RuntimeError, Signal, Status};

/// How a fake container's process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(Signal),
}

/// An in-memory runtime that behaves like runc: the same transitions and the same errors.
///
/// Clones share their containers, so a test keeps one clone to script exits while the code
/// under test owns another.
#[derive(Clone, Debug, Default)]
pub struct FakeRuntime {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    containers: BTreeMap<ContainerId, Container>,
    pids: u32,
    failures: Vec<(Op, String)>,
    exit_on_start: BTreeMap<ContainerId, i32>,
}

#[derive(Debug)]
struct Container {
    bundle: PathBuf,
    status: Status,
    pid: u32,
    /// Held while the process lives, so a reader of its pipes sees EOF when it ends.
    io: Option<ContainerIo>,
    signals: Vec<Signal>,
    ignored: Vec<Signal>,
    exit: Option<Exit>,
}

impl Container {
    fn stop(&mut self, exit: Exit) {
        self.status = Status::Stopped;
        self.exit = Some(exit);
        self.io = None;
    }
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data; keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The container's process exits by itself with `code`, as if its program ended.
    pub fn exit(&self, id: &ContainerId, code: i32) -> Result<(), RuntimeError> {
        let mut inner = self.lock();
        let container = inner.get(Op::Kill, id)?;
        if container.status != Status::Running {
            let reason = format!(
                "only a running container can exit; it is {}",
                container.status
            );
            return Err(RuntimeError::InvalidState {
                op: Op::Kill,
                id: id.clone(),
                reason,
            });
        }
        container.stop(Exit::Code(code));
        Ok(())
    }

    /// When `id` is started, its process exits at once with `code` (a crash on boot).
    pub fn exit_on_start(&self, id: &ContainerId, code: i32) {
        self.lock().exit_on_start.insert(id.clone(), code);
    }

    /// The container's process survives `signal` (it handles it); the signal is still recorded.
    pub fn ignore_signal(&self, id: &ContainerId, signal: Signal) -> Result<(), RuntimeError> {
        self.lock().get(Op::Kill, id)?.ignored.push(signal);
        Ok(())
    }

    /// The next `op`, for any container, fails with `message` as a runtime failure.
    pub fn fail_next(&self, op: Op, message: impl Into<String>) {
        self.lock().failures.push((op, message.into()));
    }

    /// Signals sent to `id` so far, in order.
    pub fn signals(&self, id: &ContainerId) -> Vec<Signal> {
        let inner = self.lock();
        inner
            .containers
            .get(id)
            .map(|c| c.signals.clone())
            .unwrap_or_default()
    }

    /// How `id`'s process ended, once it has.
    pub fn exit_of(&self, id: &ContainerId) -> Option<Exit> {
        self.lock().containers.get(id).and_then(|c| c.exit)
    }

    /// The ids of all containers not yet deleted.
    pub fn ids(&self) -> Vec<ContainerId> {
        self.lock().containers.keys().cloned().collect()
    }
}

impl Inner {
    fn get(&mut self, op: Op, id: &ContainerId) -> Result<&mut Container, RuntimeError> {
        self.containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound { op, id: id.clone() })
    }

    fn injected_failure(&mut self, op: Op, id: &ContainerId) -> Result<(), RuntimeError> {
        match self.failures.iter().position(|(failing, _)| *failing == op) {
            Some(at) => {
                let (_, stderr) = self.failures.remove(at);
                Err(RuntimeError::Failed {
                    op,
                    id: id.clone(),
                    stderr,
                })
            }
            None => Ok(()),
        }
    }
}

fn invalid(op: Op, id: &ContainerId, reason: String) -> RuntimeError {
    RuntimeError::InvalidState {
        op,
        id: id.clone(),
        reason,
    }
}

impl Runtime for FakeRuntime {
    async fn create(
        &self,
        id: &ContainerId,
        bundle: &Path,
        io: ContainerIo,
    ) -> Result<(), RuntimeError> {
        let mut inner = self.lock();
        inner.injected_failure(Op::Create, id)?;
        if inner.containers.contains_key(id) {
            return Err(RuntimeError::AlreadyExists { id: id.clone() });
        }
        let config = bundle.join("config.json");
        if !config.is_file() {
            let stderr = format!("bundle has no {}", config.display());
            return Err(RuntimeError::Failed {
                op: Op::Create,
                id: id.clone(),
                stderr,
            });
        }
        inner.pids += 1;
        let container = Container {
            bundle: bundle.to_owned(),
            status: Status::Created,
            pid: 10_000 + inner.pids,
            io: Some(io),
            signals: Vec::new(),
            ignored: Vec::new(),
            exit: None,
        };
        inner.containers.insert(id.clone(), container);
        Ok(())
    }

    async fn start(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        let mut inner = self.lock();
        inner.injected_failure(Op::Start, id)?;
        let crash = inner.exit_on_start.get(id).copied();
        let container = inner.get(Op::Start, id)?;
        match container.status {
            Status::Created => container.status = Status::Running,
            Status::Running => return Err(invalid(Op::Start, id, "already running".into())),
            other => return Err(invalid(Op::Start, id, format!("it is {other}"))),
        }
        if let Some(code) = crash {
            container.stop(Exit::Code(code));
        }
        Ok(())
    }

    async fn state(&self, id: &ContainerId) -> Result<ContainerState, RuntimeError> {
        let mut inner = self.lock();
        inner.injected_failure(Op::State, id)?;
        let container = inner.get(Op::State, id)?;
        Ok(ContainerState {
            id: id.clone(),
            status: container.status,
            pid: (container.status != Status::Stopped).then_some(container.pid),
            bundle: container.bundle.clone(),
        })
    }

    async fn kill(&self, id: &ContainerId, signal: Signal) -> Result<(), RuntimeError> {
        let mut inner = self.lock();
        inner.injected_failure(Op::Kill, id)?;
        let container = inner.get(Op::Kill, id)?;
        if container.status == Status::Stopped {
            return Err(invalid(Op::Kill, id, "container not running".into()));
        }
        container.signals.push(signal);
        // SIGKILL cannot be handled, so ignoring it is not possible.
        if signal == Signal::KILL || !container.ignored.contains(&signal) {
            container.stop(Exit::Signal(signal));
        }
        Ok(())
    }

    async fn delete(&self, id: &ContainerId, force: bool) -> Result<(), RuntimeError> {
        let mut inner = self.lock();
        inner.injected_failure(Op::Delete, id)?;
        let Some(container) = inner.containers.get(id) else {
            return if force {
                Ok(())
            } else {
                Err(RuntimeError::NotFound {
                    op: Op::Delete,
                    id: id.clone(),
                })
            };
        };
        if !force && matches!(container.status, Status::Running | Status::Paused) {
            let reason = format!("container is {}, not stopped", container.status);
            return Err(invalid(Op::Delete, id, reason));
        }
        inner.containers.remove(id);
        inner.exit_on_start.remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
