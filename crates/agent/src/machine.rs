//! The per-node state machine: what should run here, what does, and what to do about the
//! difference. It does no I/O and reads no clock: `now` comes with every event.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::backoff;

/// One instance this node should run. Its `id` names the app, release, process type and index,
/// so a new release means new instances; any other change to it (limits, config) restarts it.
pub type InstanceSpec = spread_core::DesiredInstance;

/// How an instance's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// The kernel killed it for exceeding its memory limit.
    pub oom_killed: bool,
}

/// What users see in `spread ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Starting,
    Running,
    Crashed,
    OomKilled,
    Stopping,
    Stopped,
}

impl InstanceState {
    /// The name users see, as in `spread ps`: `starting`, …, `oom-killed`, `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Starting => "starting",
            InstanceState::Running => "running",
            InstanceState::Crashed => "crashed",
            InstanceState::OomKilled => "oom-killed",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceStatus {
    pub id: String,
    pub state: InstanceState,
    pub restarts: u32,
    pub last_exit: Option<Exit>,
    /// When the process last started, in the machine's clock.
    pub running_since: Option<Duration>,
    /// When a crashed instance is started again, in the machine's clock.
    pub restart_at: Option<Duration>,
    /// It runs and passed its health check: it may get traffic, and a rollout may count it.
    pub healthy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The full set of instances this node should run now.
    Assigned(Vec<InstanceSpec>),
    /// An instance found running when the agent started (it outlived the agent).
    Recovered {
        spec: Box<InstanceSpec>,
        running_since: Duration,
    },
    Started {
        id: String,
    },
    StartFailed {
        id: String,
        reason: String,
    },
    Exited {
        id: String,
        exit: Exit,
    },
    /// Its health check passed (`true`) or kept failing (`false`). Ignored unless it runs.
    Health {
        id: String,
        healthy: bool,
    },
    /// Time passed; restarts whose backoff is over are due.
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Prepare the instance (image, bundle, network) and start its process.
    Start(InstanceSpec),
    /// SIGTERM, then SIGKILL after `grace`.
    Stop {
        id: String,
        grace: Duration,
    },
    /// The instance has stopped and is no longer wanted: free its bundle, network and cgroup.
    Remove {
        id: String,
    },
    Report(InstanceStatus),
}

/// Time an instance gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Phase {
    Starting,
    Running {
        since: Duration,
    },
    /// Waiting out the backoff before the next start.
    Crashed {
        restart_at: Duration,
    },
    /// Asked to stop; `then` says what happens once it has exited.
    Stopping {
        then: AfterStop,
    },
}

#[derive(Debug, Clone)]
enum AfterStop {
    Remove,
    /// Its spec changed: start it again with the new one.
    Restart(Box<InstanceSpec>),
}

#[derive(Debug, Clone)]
struct Instance {
    spec: InstanceSpec,
    phase: Phase,
    restarts: u32,
    consecutive_crashes: u32,
    last_exit: Option<Exit>,
    /// Meaningful only while running: any change of phase clears it.
    healthy: bool,
}

#[derive(Debug, Default)]
pub struct NodeMachine {
    instances: BTreeMap<String, Instance>,
    out: Vec<Action>,
}

impl NodeMachine {
    pub fn handle(&mut self, event: Event, now: Duration) {
        match event {
            Event::Assigned(specs) => self.assign(specs),
            Event::Recovered {
                spec,
                running_since,
            } => {
                let id = spec.id.clone();
                self.instances.insert(
                    id.clone(),
                    Instance::new(
                        *spec,
                        Phase::Running {
                            since: running_since,
                        },
                    ),
                );
                self.report(&id);
            }
            Event::Started { id } => {
                if let Some(i) = self.instances.get_mut(&id)
                    && matches!(i.phase, Phase::Starting)
                {
                    i.phase = Phase::Running { since: now };
                    i.healthy = false;
                    self.report(&id);
                }
            }
            Event::StartFailed { id, reason: _ } => {
                self.exited(
                    &id,
                    Exit {
                        code: None,
                        signal: None,
                        oom_killed: false,
                    },
                    now,
                );
            }
            Event::Exited { id, exit } => self.exited(&id, exit, now),
            Event::Health { id, healthy } => {
                if let Some(i) = self.instances.get_mut(&id)
                    && matches!(i.phase, Phase::Running { .. })
                    && i.healthy != healthy
                {
                    i.healthy = healthy;
                    self.report(&id);
                }
            }
            Event::Tick => self.restart_due(now),
        }
    }

    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    /// When the next `Tick` has work to do, if ever: the driver sleeps until then.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.instances
            .values()
            .filter_map(|i| match i.phase {
                Phase::Crashed { restart_at } => Some(restart_at),
                _ => None,
            })
            .min()
    }

    pub fn statuses(&self) -> Vec<InstanceStatus> {
        self.instances.values().map(Instance::status).collect()
    }

    fn assign(&mut self, specs: Vec<InstanceSpec>) {
        let mut wanted: BTreeMap<String, InstanceSpec> =
            specs.into_iter().map(|s| (s.id.clone(), s)).collect();
        let ids: Vec<String> = self.instances.keys().cloned().collect();
        for id in ids {
            let instance = self.instances.get_mut(&id).expect("id was just listed");
            match wanted.remove(&id) {
                Some(spec) if spec == instance.spec => {
                    // Wanted as it is. If it was being stopped to go away, it stays.
                    if let Phase::Stopping { then } = &mut instance.phase {
                        *then = AfterStop::Restart(Box::new(spec));
                    }
                }
                Some(spec) => match instance.phase {
                    Phase::Stopping { ref mut then } => *then = AfterStop::Restart(Box::new(spec)),
                    Phase::Crashed { .. } => {
                        instance.spec = spec.clone();
                        instance.phase = Phase::Starting;
                        self.out.push(Action::Start(spec));
                    }
                    Phase::Starting | Phase::Running { .. } => {
                        instance.phase = Phase::Stopping {
                            then: AfterStop::Restart(Box::new(spec)),
                        };
                        self.out.push(Action::Stop {
                            id: id.clone(),
                            grace: STOP_GRACE,
                        });
                    }
                },
                None => match instance.phase {
                    Phase::Stopping { ref mut then } => *then = AfterStop::Remove,
                    Phase::Crashed { .. } => {
                        // Its process is gone already: it stops here, and says so.
                        let status = InstanceStatus {
                            state: InstanceState::Stopped,
                            ..instance.status()
                        };
                        self.instances.remove(&id);
                        self.out.push(Action::Remove { id: id.clone() });
                        self.out.push(Action::Report(status));
                    }
                    Phase::Starting | Phase::Running { .. } => {
                        instance.phase = Phase::Stopping {
                            then: AfterStop::Remove,
                        };
                        self.out.push(Action::Stop {
                            id: id.clone(),
                            grace: STOP_GRACE,
                        });
                    }
                },
            }
            self.report(&id);
        }
        for (id, spec) in wanted {
            self.instances
                .insert(id.clone(), Instance::new(spec.clone(), Phase::Starting));
            self.out.push(Action::Start(spec));
            self.report(&id);
        }
    }

    fn exited(&mut self, id: &str, exit: Exit, now: Duration) {
        let Some(instance) = self.instances.get_mut(id) else {
            return;
        };
        instance.last_exit = Some(exit);
        match std::mem::replace(&mut instance.phase, Phase::Starting) {
            Phase::Stopping {
                then: AfterStop::Remove,
            } => {
                let status = InstanceStatus {
                    state: InstanceState::Stopped,
                    ..instance.status()
                };
                self.instances.remove(id);
                self.out.push(Action::Remove { id: id.to_owned() });
                self.out.push(Action::Report(status));
                return;
            }
            Phase::Stopping {
                then: AfterStop::Restart(spec),
            } => {
                instance.spec = (*spec).clone();
                instance.consecutive_crashes = 0;
                self.out.push(Action::Start(*spec));
            }
            Phase::Running { since } => {
                let healthy_for = now.saturating_sub(since);
                instance.consecutive_crashes = if healthy_for >= backoff::RESET_AFTER {
                    1
                } else {
                    instance.consecutive_crashes + 1
                };
                let restart_at = now + backoff::delay(instance.consecutive_crashes);
                instance.phase = Phase::Crashed { restart_at };
            }
            Phase::Starting | Phase::Crashed { .. } => {
                instance.consecutive_crashes += 1;
                let restart_at = now + backoff::delay(instance.consecutive_crashes);
                instance.phase = Phase::Crashed { restart_at };
            }
        }
        self.report(id);
    }

    fn restart_due(&mut self, now: Duration) {
        let due: Vec<String> = self
            .instances
            .iter()
            .filter(|(_, i)| matches!(i.phase, Phase::Crashed { restart_at } if restart_at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let instance = self.instances.get_mut(&id).expect("id was just listed");
            instance.phase = Phase::Starting;
            instance.restarts += 1;
            self.out.push(Action::Start(instance.spec.clone()));
            self.report(&id);
        }
    }

    fn report(&mut self, id: &str) {
        if let Some(instance) = self.instances.get_mut(id) {
            if !matches!(instance.phase, Phase::Running { .. }) {
                instance.healthy = false;
            }
            self.out.push(Action::Report(instance.status()));
        }
    }
}

impl Instance {
    fn new(spec: InstanceSpec, phase: Phase) -> Self {
        Self {
            spec,
            phase,
            restarts: 0,
            consecutive_crashes: 0,
            last_exit: None,
            healthy: false,
        }
    }

    fn status(&self) -> InstanceStatus {
        let state = match &self.phase {
            Phase::Starting => InstanceState::Starting,
            Phase::Running { .. } => InstanceState::Running,
            Phase::Crashed { .. } if self.last_exit.is_some_and(|e| e.oom_killed) => {
                InstanceState::OomKilled
            }
            Phase::Crashed { .. } => InstanceState::Crashed,
            Phase::Stopping { .. } => InstanceState::Stopping,
        };
        let (running_since, restart_at) = match self.phase {
            Phase::Running { since } => (Some(since), None),
            Phase::Crashed { restart_at } => (None, Some(restart_at)),
            _ => (None, None),
        };
        InstanceStatus {
            id: self.spec.id.clone(),
            state,
            restarts: self.restarts,
            last_exit: self.last_exit,
            running_since,
            restart_at,
            healthy: self.healthy && matches!(self.phase, Phase::Running { .. }),
        }
    }
}

#[cfg(test)]
mod tests;
