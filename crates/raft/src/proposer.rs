//! Gathers concurrent proposals into one log entry. openraft 0.9 writes and fsyncs each client
//! write before it looks at the next, so without this every proposal would pay its own fsync.

use std::sync::Arc;

use openraft::Raft;
use openraft::error::{ClientWriteError, RaftError as OpenraftError};
use spread_core::{Command, Outcome, Rejection};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::error::ProposeError;
use crate::types::{Batch, Response, TypeConfig};

/// Most commands in one log entry, so an entry stays a reasonable size to store and replicate.
const MAX_BATCH: usize = 256;
/// Batches handed to openraft at once: one being written while the next waits its turn. More
/// would only queue inside openraft, each paying its own fsync, instead of growing the batch.
const IN_FLIGHT: usize = 2;

type Answer = Result<Result<Outcome, Rejection>, ProposeError>;

struct Pending {
    command: Command,
    answer: oneshot::Sender<Answer>,
}

/// The sending side; the batching task stops when every handle is dropped.
#[derive(Clone)]
pub(crate) struct Proposer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Proposer {
    pub(crate) fn spawn(raft: Raft<TypeConfig>) -> Proposer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Proposer { tx }
    }

    pub(crate) async fn propose(&self, command: Command) -> Result<Outcome, ProposeError> {
        let stopped = || ProposeError::Unavailable("the raft node is shut down".to_owned());
        let (answer, answered) = oneshot::channel();
        self.tx
            .send(Pending { command, answer })
            .map_err(|_| stopped())?;
        match answered.await.map_err(|_| stopped())?? {
            Ok(outcome) => Ok(outcome),
            Err(rejection) => Err(ProposeError::Rejected(rejection)),
        }
    }
}

async fn run(raft: Raft<TypeConfig>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        // Wait for a slot before gathering, so proposals pile up here while openraft is busy.
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let Some(first) = rx.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let (commands, answers): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|p| (p.command, p.answer)).unzip();
            let results = write(&raft, commands).await;
            drop(slot);
            match results {
                Ok(results) => {
                    for (answer, result) in answers.into_iter().zip(results) {
                        let _ = answer.send(Ok(result));
                    }
                }
                Err(e) => {
                    for answer in answers {
                        let _ = answer.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}

/// Proposes one batch and returns one result per command, in order.
async fn write(
    raft: &Raft<TypeConfig>,
    commands: Vec<Command>,
) -> Result<Vec<Result<Outcome, Rejection>>, ProposeError> {
    let count = commands.len();
    match raft.client_write(Batch(commands)).await {
        Ok(written) => match written.data {
            Response::Batch(results) if results.len() == count => Ok(results),
            Response::Batch(results) => Err(ProposeError::Unavailable(format!(
                "a batch of {count} commands returned {} results",
                results.len()
            ))),
            Response::Internal => Err(ProposeError::Unavailable(
                "a batch of commands was applied as an internal entry".to_owned(),
            )),
        },
        Err(OpenraftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
            Err(ProposeError::Unavailable(match forward.leader_id {
                Some(leader) => format!("this node is not the leader; node {leader} is"),
                None => "this node is not the leader, and no leader is known".to_owned(),
            }))
        }
        Err(e) => Err(ProposeError::Unavailable(e.to_string())),
    }
}
