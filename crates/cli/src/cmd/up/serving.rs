//! The serving side of `spread up`: the gateway's routes kept in step with the state and with
//! the agent's instances, instances drained from the gateway before they stop, and the
//! gateway's access lines written where `spread logs --source router` reads them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Duration;

use spread_agent::machine::{Exit, InstanceState};
use spread_agent::{Agent, InstanceView, Router};
use spread_core::{AppId, DesiredInstance, Observed, State, desired_instances, routes};
use spread_gateway::{AccessLog, AppRoute, BackendSpec, Gateway};
use spread_oci::monitor::{self, LogLimits, Stream};
use spread_raft::RaftNode;

/// Access lines waiting to be written; beyond this many, new ones are dropped (and counted)
/// rather than slowing requests down.
const ACCESS_LOG_BACKLOG: usize = 65_536;

/// Keeps the gateway's routes in step with the state and the agent's instances until the
/// state's applied entries end (the platform stops).
pub(super) async fn sync(
    raft: RaftNode,
    agent: Agent,
    gateway: Arc<Gateway>,
    domain: String,
    logs: Arc<RouterLogs>,
) {
    let mut changes = agent.changes();
    let mut seen = None;
    let mut last_routes: Option<Vec<AppRoute>> = None;
    loop {
        let (table, apps) = raft.read(|state| {
            let observed = observe(&agent, &desired_instances(state));
            let table = route_table(state, &domain, &agent, |id| {
                observed.get(id) == Some(&Observed::Healthy)
            });
            let apps: HashMap<String, AppId> =
                state.apps().map(|a| (a.name.to_string(), a.id)).collect();
            (table, apps)
        });
        logs.know(apps);
        if last_routes.as_ref() != Some(&table) {
            gateway.set_routes(table.clone());
            last_routes = Some(table);
        }
        tokio::select! {
            applied = raft.applied_after(seen) => match applied {
                Some(applied) => seen = Some(applied),
                None => return,
            },
            changed = changes.changed() => if changed.is_err() {
                return;
            },
        }
    }
}

/// What the agent sees of the `wanted` instances, for rollouts and routes.
pub(super) fn observe(agent: &Agent, wanted: &[DesiredInstance]) -> BTreeMap<String, Observed> {
    let apps: BTreeSet<AppId> = wanted.iter().map(|i| i.app_id).collect();
    apps.iter()
        .flat_map(|app| agent.instances(app))
        .map(|instance| (instance.id.clone(), observed_of(&instance)))
        .collect()
}

fn observed_of(instance: &InstanceView) -> Observed {
    match instance.state {
        InstanceState::Running if instance.healthy => Observed::Healthy,
        // Any exit before it is healthy counts, also one already followed by a restart that
        // the controller did not see in between.
        _ if instance.last_exit.is_some() => Observed::Failed {
            reason: exit_reason(instance.last_exit),
        },
        _ => Observed::Starting,
    }
}

/// How a process ended, as a rollout failure tells it: `exited with code 1`.
pub(super) fn exit_reason(exit: Option<Exit>) -> String {
    match exit {
        Some(Exit {
            oom_killed: true, ..
        }) => "was killed for going over its memory limit".to_owned(),
        Some(Exit {
            code: Some(code), ..
        }) => format!("exited with code {code}"),
        Some(Exit {
            signal: Some(signal),
            ..
        }) => format!("was killed by signal {signal}"),
        _ => "could not start (see `spread logs`)".to_owned(),
    }
}

/// The gateway's routes: the core's choice of instances, with the addresses the agent gave them.
fn route_table(
    state: &State,
    domain: &str,
    agent: &Agent,
    healthy: impl Fn(&str) -> bool,
) -> Vec<AppRoute> {
    routes(state, domain, healthy)
        .into_iter()
        .map(|app| AppRoute {
            app: app.app.to_string(),
            hosts: app.hosts,
            backends: app
                .backends
                .into_iter()
                .filter_map(|b| {
                    let addr = agent.endpoint(&b.instance)?;
                    Some(BackendSpec {
                        id: b.instance,
                        label: b.label,
                        addr,
                    })
                })
                .collect(),
        })
        .collect()
}

/// How long a drain waits for the route table to drop the instance first.
const ROUTES_CATCH_UP: Duration = Duration::from_secs(2);

/// Drains instances from the gateway before the agent stops them.
pub(super) struct Drain(pub Arc<Gateway>);

impl Router for Drain {
    fn drain<'a>(
        &'a self,
        instance: &'a str,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            // The agent and the route sync both react to the same applied entry. Draining an
            // instance the table still routes to, before the new instances are in it, would
            // leave the app without a backend (503): first wait for the table to let it go.
            let until = tokio::time::Instant::now() + ROUTES_CATCH_UP;
            while self.0.is_routed(instance) && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            self.0.drain(instance, timeout).await;
        })
    }
}

/// The gateway's access lines, written per app (by ID, since names are reused) to
/// `DATA_DIR/router/<app id>/` in the monitor's log format, by a thread of their own.
pub(super) struct RouterLogs {
    dir: PathBuf,
    lines: std_mpsc::SyncSender<(String, String)>,
    /// App names to IDs, as of the latest state seen.
    ids: Arc<Mutex<HashMap<String, AppId>>>,
}

impl RouterLogs {
    pub(super) fn start(data_dir: &Path, limits: LogLimits) -> Arc<Self> {
        let dir = data_dir.join("router");
        let (lines, rx) = std_mpsc::sync_channel(ACCESS_LOG_BACKLOG);
        let ids = Arc::new(Mutex::new(HashMap::new()));
        let (writer_dir, writer_ids) = (dir.clone(), ids.clone());
        std::thread::Builder::new()
            .name("router-log".to_owned())
            .spawn(move || write_lines(&writer_dir, limits, &writer_ids, &rx))
            .expect("a thread can be started");
        Arc::new(Self { dir, lines, ids })
    }

    /// Where the access lines of `app` are.
    pub(super) fn dir_of(&self, app: &AppId) -> PathBuf {
        self.dir.join(app.to_string())
    }

    /// Learns the apps there are (name to ID), and removes the lines of any other app, also
    /// of those destroyed while the platform was down.
    fn know(&self, apps: HashMap<String, AppId>) {
        let mut ids = self.ids.lock().unwrap();
        if *ids == apps {
            return;
        }
        let keep: HashSet<String> = apps.values().map(ToString::to_string).collect();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        *ids = apps;
    }
}

impl AccessLog for RouterLogs {
    fn record(&self, app: &str, line: String) {
        if self.lines.try_send((app.to_owned(), line)).is_err() {
            metrics::counter!("spread_gateway_access_lines_dropped_total").increment(1);
        }
    }
}

/// How long the writer waits after a batch: lines arrive in bigger batches, and the gateway
/// does not pay a thread wake-up per request (measured: a quarter of its throughput).
const WRITE_EVERY: Duration = Duration::from_millis(20);

/// Writes access lines as they come, a batch per app at a time.
fn write_lines(
    dir: &Path,
    limits: LogLimits,
    ids: &Mutex<HashMap<String, AppId>>,
    rx: &std_mpsc::Receiver<(String, String)>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (app, line) in std::iter::once(first).chain(rx.try_iter().take(ACCESS_LOG_BACKLOG)) {
            batch.entry(app).or_default().push(line);
        }
        for (app, lines) in batch {
            let Some(id) = ids.lock().unwrap().get(&app).copied() else {
                continue;
            };
            let path = dir.join(id.to_string());
            if let Err(e) = monitor::append_lines(&path, limits, Stream::Router, &lines) {
                tracing::warn!(%app, error = %e, "could not write router log lines");
            }
        }
        std::thread::sleep(WRITE_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_read_as_rollout_failures() {
        let exit = |code, signal, oom_killed| Exit {
            code,
            signal,
            oom_killed,
        };
        assert_eq!(
            exit_reason(Some(exit(Some(3), None, false))),
            "exited with code 3"
        );
        assert_eq!(
            exit_reason(Some(exit(None, Some(9), false))),
            "was killed by signal 9"
        );
        assert_eq!(
            exit_reason(Some(exit(None, Some(9), true))),
            "was killed for going over its memory limit"
        );
        assert!(exit_reason(None).contains("could not start"));
    }
}
