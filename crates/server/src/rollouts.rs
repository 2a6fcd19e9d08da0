//! The rollout controller: finishes each rollout once the node has seen its new instances
//! healthy, or one of them fail, or the app's health timeout pass (`spread_core::
//! finished_rollouts` decides; this loop observes and proposes).

use std::sync::Arc;
use std::time::Duration;

use spread_core::{Command, Rejection, desired_instances, finished_rollouts};
use spread_raft::{ProposeError, RaftNode};
use tokio::sync::watch;

use crate::instances::NodeInstances;

/// How often rollouts are looked at when no entry was applied: instance health changes and
/// timeouts are not log entries.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// Runs until the server stops or the replicated log ends.
pub(crate) async fn run(
    raft: RaftNode,
    node: Arc<dyn NodeInstances>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut seen = None;
    loop {
        let due = raft.read(|state| {
            // Most of the time nothing rolls out: then there is nothing to observe.
            if !state.apps().any(|a| a.rolling_release().is_some()) {
                return Vec::new();
            }
            let observed = node.observe(&desired_instances(state));
            finished_rollouts(state, &observed, jiff::Timestamp::now())
        });
        for command in due {
            propose(&raft, command).await;
        }
        tokio::select! {
            applied = raft.applied_after(seen) => match applied {
                Some(applied) => seen = Some(applied),
                None => return,
            },
            () = tokio::time::sleep(LOOK_EVERY) => {}
            Ok(_) = stopping.wait_for(|stop| *stop) => return,
        }
    }
}

/// Proposes a rollout's end; one that another change overtook (a newer deploy) is no news.
async fn propose(raft: &RaftNode, command: Command) {
    match raft.propose(command).await {
        Ok(outcome) => tracing::info!(?outcome, "rollout finished"),
        Err(ProposeError::Rejected(Rejection::NotRollingOut { .. })) => {}
        Err(e) => tracing::warn!(error = %e, "could not record the end of a rollout"),
    }
}
