//! What a runtime operation can fail with; every message names the operation and the container.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::ContainerId;

/// The runtime-spec operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Create,
    Start,
    /// Create and start in one step.
    Run,
    State,
    Kill,
    Delete,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Create => "create",
            Op::Start => "start",
            Op::Run => "run",
            Op::State => "state",
            Op::Kill => "kill",
            Op::Delete => "delete",
        })
    }
}

/// A failed runtime operation.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{op} container {id}: no such container")]
    NotFound { op: Op, id: ContainerId },
    #[error("create container {id}: a container with this id already exists")]
    AlreadyExists { id: ContainerId },
    #[error("{op} container {id}: not possible in its current state: {reason}")]
    InvalidState {
        op: Op,
        id: ContainerId,
        reason: String,
    },
    #[error("{op} container {id}: runtime failed: {stderr}")]
    Failed {
        op: Op,
        id: ContainerId,
        stderr: String,
    },
    #[error("{op} container {id}: could not run {}: {source}", binary.display())]
    Spawn {
        op: Op,
        id: ContainerId,
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{op} container {id}: unexpected runtime output: {detail}")]
    Output {
        op: Op,
        id: ContainerId,
        detail: String,
    },
}

impl RuntimeError {
    pub fn op(&self) -> Op {
        match self {
            RuntimeError::AlreadyExists { .. } => Op::Create,
            RuntimeError::NotFound { op, .. }
            | RuntimeError::InvalidState { op, .. }
            | RuntimeError::Failed { op, .. }
            | RuntimeError::Spawn { op, .. }
            | RuntimeError::Output { op, .. } => *op,
        }
    }

    pub fn id(&self) -> &ContainerId {
        match self {
            RuntimeError::NotFound { id, .. }
            | RuntimeError::AlreadyExists { id }
            | RuntimeError::InvalidState { id, .. }
            | RuntimeError::Failed { id, .. }
            | RuntimeError::Spawn { id, .. }
            | RuntimeError::Output { id, .. } => id,
        }
    }

    /// Sorts a runtime's error message into a typed error, by the phrases runc (1.0 to 1.2),
    /// crun and youki use for the same conditions.
    pub fn classify(op: Op, id: &ContainerId, message: &str) -> Self {
        let id = id.clone();
        let lower = message.to_ascii_lowercase();
        let has = |phrase: &str| lower.contains(phrase);
        let missing = has("container does not exist") || has("no such container");
        if !matches!(op, Op::Create | Op::Run)
            && (missing || (has("container") && has("does not exist")))
        {
            RuntimeError::NotFound { op, id }
        } else if matches!(op, Op::Create | Op::Run) && has("already exists") {
            RuntimeError::AlreadyExists { id }
        } else if has("cannot start")
            || has("not stopped")
            || has("not running")
            || has("already running")
            || has("is paused")
        {
            let reason = message.trim().to_owned();
            RuntimeError::InvalidState { op, id, reason }
        } else {
            let stderr = message.trim().to_owned();
            RuntimeError::Failed { op, id, stderr }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ContainerId {
        ContainerId::parse("web-1").unwrap()
    }

    #[test]
    fn runc_messages_are_sorted_into_typed_errors() {
        let cases = [
            (Op::State, "container does not exist", "NotFound"),
            (
                Op::Create,
                "runc create failed: container with given ID already exists",
                "AlreadyExists",
            ),
            (
                Op::Start,
                "cannot start an already running container",
                "InvalidState",
            ),
            (
                Op::Start,
                "cannot start a container that has stopped",
                "InvalidState",
            ),
            (
                Op::Delete,
                "cannot delete container web-1 that is not stopped: running",
                "InvalidState",
            ),
            (Op::Kill, "container not running", "InvalidState"),
            (Op::Create, "unable to apply cgroup configuration", "Failed"),
            (
                Op::Create,
                "exec: \"/app\": executable file not found in $PATH",
                "Failed",
            ),
            (Op::Start, "container `web-1` does not exist", "NotFound"),
        ];
        for (op, message, want) in cases {
            let got = RuntimeError::classify(op, &id(), message);
            assert!(format!("{got:?}").starts_with(want), "{message} -> {got:?}");
            assert_eq!(got.op(), op);
        }
    }

    #[test]
    fn every_message_names_the_operation_and_the_container() {
        let errors = [
            RuntimeError::NotFound {
                op: Op::Kill,
                id: id(),
            },
            RuntimeError::AlreadyExists { id: id() },
            RuntimeError::classify(Op::Delete, &id(), "not stopped: running"),
            RuntimeError::classify(Op::Start, &id(), "boom"),
        ];
        for err in errors {
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("{} container web-1", err.op())),
                "{text}"
            );
            assert_eq!(err.id(), &id());
        }
    }
}
