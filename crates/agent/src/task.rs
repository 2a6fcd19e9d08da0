//! One-off tasks: an instance that runs once to its end instead of being kept running, like
//! the release command a deploy runs before its rollout. It is started and logged like any
//! instance (monitor, hardened bundle, node network), so its lines stay in `spread logs`.

use std::time::{Duration, Instant};

use spread_oci::monitor::{self, Position};

use crate::agent::Agent;
use crate::machine::{Exit, InstanceSpec};

/// How often the task's log is read while it runs.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// Time a task gets between SIGTERM and SIGKILL once its time is up.
const TASK_STOP_GRACE: Duration = Duration::from_secs(5);

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEnd {
    Exited(Exit),
    /// Stopped after its time was up.
    TimedOut,
}

impl Agent {
    /// Runs `spec` once, handing each line it prints to `output` as it comes, and frees its
    /// container, root filesystem and network afterwards; its logs are kept like those of a
    /// stopped instance. A task still running after `timeout` is stopped.
    pub async fn run_task(
        &self,
        spec: &InstanceSpec,
        timeout: Duration,
        mut output: impl FnMut(String) + Send,
    ) -> Result<TaskEnd, String> {
        let executor = self.executor();
        let started = executor.start(spec).await;
        let logs = executor.config().instance(&spec.id).monitor();
        let mut position = Position::start();
        let mut forward = |position: &mut Position| {
            if let Ok((lines, next)) = monitor::follow(&logs, *position) {
                *position = next;
                lines.into_iter().for_each(|line| output(line.text));
            }
        };
        let ended = match started {
            Err(reason) => Err(reason),
            Ok(_) => {
                let deadline = Instant::now() + timeout;
                let wait = executor.wait_exit(&spec.id);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        exit = &mut wait => break Ok(TaskEnd::Exited(exit)),
                        () = tokio::time::sleep(FOLLOW_EVERY) => forward(&mut position),
                    }
                    if Instant::now() >= deadline {
                        executor.stop(&spec.id, TASK_STOP_GRACE).await;
                        break Ok(TaskEnd::TimedOut);
                    }
                }
            }
        };
        forward(&mut position);
        if let Err(e) = executor.remove(spec).await {
            tracing::warn!(task = %spec.id, error = %e, "could not remove everything of a task");
        }
        ended
    }
}
