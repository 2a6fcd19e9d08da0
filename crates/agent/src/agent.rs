//! The agent's loop: feeds assignments, container events and time to the `NodeMachine` and
//! hands its actions to the `Executor`, one task per action so a slow start (a big image to
//! unpack) never holds up the others.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use spread_core::{AppId, HealthCheck, ProcessType};
use tokio::sync::{mpsc, watch};

use crate::config::AgentConfig;
use crate::executor::{AgentError, Executor};
use crate::machine::{
    Action, Event, Exit, InstanceSpec, InstanceState, InstanceStatus, NodeMachine,
};
use crate::{health, platform};

/// How often unused image blobs and layers are looked for even when no release changed.
const GC_EVERY: Duration = Duration::from_secs(3600);

/// How often CPU and memory use are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// How long the in-flight requests of an instance that is about to stop may take to finish.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A `web` instance that does nothing else becomes healthy once it has run this long.
const STEADY_AFTER: Duration = Duration::from_secs(1);

/// What this node should run: the planned instances, and the apps that exist (the stopped
/// instances of other apps lose their logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub instances: Vec<InstanceSpec>,
    pub apps: BTreeSet<AppId>,
    /// The image (manifest digest) of every release of every app: what must not be
    /// garbage-collected.
    pub images: BTreeSet<(AppId, String)>,
    /// Each app's health check; apps not named get the default.
    pub health: BTreeMap<AppId, HealthCheck>,
}

/// The node's HTTP gateway as the agent needs it: before a `web` instance is stopped, it is
/// taken out of balancing and its in-flight requests may finish.
pub trait Router: Send + Sync + 'static {
    /// Returns once the instance has no request in flight, or after `timeout`.
    fn drain<'a>(
        &'a self,
        instance: &'a str,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// One instance as `spread ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    pub id: String,
    pub process: String,
    pub index: u32,
    pub release: u64,
    pub state: InstanceState,
    pub restarts: u32,
    pub last_exit: Option<Exit>,
    /// It runs and passed its health check.
    pub healthy: bool,
    /// When its process started, while it runs.
    pub started_at: Option<Timestamp>,
    pub address: Option<Ipv4Addr>,
    /// CPU used over the last sample period, in thousandths of a core.
    pub cpu_millis: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
}

/// Where one instance's logs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDir {
    pub instance: String,
    pub process: String,
    /// A dir with a log in the monitor's format (see `spread_oci::monitor`): the monitor's
    /// state dir with the app's output, or the events dir with the platform's lines.
    pub dir: PathBuf,
}

/// A running agent. Clones are handles to the same one.
#[derive(Clone)]
pub struct Agent {
    shared: Arc<Shared>,
}

struct Shared {
    executor: Arc<Executor>,
    epoch: Instant,
    view: Mutex<BTreeMap<String, Entry>>,
    /// One lock per instance, so its start, stop and removal never overlap.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Told when an instance's leftovers are gone, so garbage collection looks again.
    instance_removed: tokio::sync::Notify,
    /// Each app's health check, from the latest assignment.
    health: Mutex<BTreeMap<AppId, HealthCheck>>,
    /// The gateway to drain instances from before they stop, once one is set.
    router: OnceLock<Arc<dyn Router>>,
    /// Counts reported status changes, so watchers (routes, rollouts) look again.
    changes: watch::Sender<u64>,
}

struct Entry {
    spec: InstanceSpec,
    status: InstanceStatus,
    started_at: Option<Timestamp>,
    cpu_sample: Option<(Instant, u64)>,
    cpu_millis: Option<u64>,
    memory_bytes: Option<u64>,
    /// Counts starts of its process, so a health check of an earlier one stops.
    generation: u64,
}

enum Msg {
    Event(Event),
    /// An instance's leftovers were removed; old logs may be pruned.
    Removed,
}

impl Agent {
    /// Recovers what earlier runs left, then runs what `assignments` asks for until
    /// `shutdown` resolves. Containers keep running when the agent stops; the next agent
    /// supervises them again.
    pub async fn start(
        config: AgentConfig,
        assignments: watch::Receiver<Assignment>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(Agent, tokio::task::JoinHandle<()>), AgentError> {
        let (executor, running) = Executor::open(config).await?;
        let shared = Arc::new(Shared {
            executor: Arc::new(executor),
            epoch: Instant::now(),
            view: Mutex::default(),
            locks: Mutex::default(),
            instance_removed: tokio::sync::Notify::new(),
            health: Mutex::new(assignments.borrow().health.clone()),
            router: OnceLock::new(),
            changes: watch::channel(0).0,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let mut machine = NodeMachine::default();
        let now = shared.now();
        let wall = Timestamp::now();
        for found in running {
            let age = wall.duration_since(found.started.started_at).unsigned_abs();
            let running_since = now.saturating_sub(age);
            let mut entry = Entry::new(found.spec.clone(), Some(found.started.started_at));
            // It never stopped running; only the agent was away.
            entry.status.state = InstanceState::Running;
            shared
                .view
                .lock()
                .unwrap()
                .insert(found.spec.id.clone(), entry);
            shared.executor.note(
                &found.spec.id,
                &[format!(
                    "Still running (pid {}) after the agent restarted; supervised again",
                    found.started.pid
                )],
            );
            watch_exit(&shared, &tx, found.spec.id.clone());
            watch_health(&shared, &tx, found.spec.clone(), 0);
            machine.handle(
                Event::Recovered {
                    spec: Box::new(found.spec),
                    running_since,
                },
                now,
            );
        }
        let agent = Agent {
            shared: shared.clone(),
        };
        tokio::spawn(collect_garbage(shared.clone(), assignments.clone()));
        let task = tokio::spawn(run(shared, machine, assignments, tx, rx, shutdown));
        Ok((agent, task))
    }

    /// The app's instances on this node, in id order.
    pub fn instances(&self, app: &AppId) -> Vec<InstanceView> {
        let view = self.shared.view.lock().unwrap();
        view.values()
            .filter(|e| &e.spec.app_id == app)
            .map(|e| InstanceView {
                id: e.spec.id.clone(),
                process: e.spec.process.to_string(),
                index: e.spec.index,
                release: e.spec.release,
                state: e.status.state,
                restarts: e.status.restarts,
                last_exit: e.status.last_exit,
                healthy: e.status.healthy,
                started_at: e
                    .started_at
                    .filter(|_| e.status.state == InstanceState::Running),
                address: self.shared.executor.address(&e.spec.id),
                cpu_millis: e.cpu_millis,
                memory_bytes: e.memory_bytes,
                memory_limit_bytes: e.spec.memory_bytes,
            })
            .collect()
    }

    /// Where the logs of the app's instances are: running ones and recently stopped ones.
    pub fn log_dirs(&self, app: &AppId) -> Vec<LogDir> {
        self.shared
            .executor
            .known_instances()
            .into_iter()
            .filter(|(spec, _)| &spec.app_id == app)
            .flat_map(|(spec, dir)| {
                [dir.monitor(), dir.events()].map(|dir| LogDir {
                    instance: spec.id.clone(),
                    process: spec.process.to_string(),
                    dir,
                })
            })
            .collect()
    }

    pub(crate) fn executor(&self) -> Arc<Executor> {
        self.shared.executor.clone()
    }

    /// Unpacks the image's layers for the app, or says why the image cannot run. Blocking.
    pub fn prepare_image(&self, app: &AppId, image: &str) -> Result<(), String> {
        self.shared.executor.prepare_image(*app, image)
    }

    pub fn config(&self) -> &AgentConfig {
        self.shared.executor.config()
    }

    /// Drains `web` instances from this gateway before they stop. Set once; later calls are
    /// ignored.
    pub fn set_router(&self, router: Arc<dyn Router>) {
        let _ = self.shared.router.set(router);
    }

    /// Changes whenever an instance's status does (state, health): a cue to look again.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Where the instance takes connections: its address and `$PORT`, while it has an address.
    pub fn endpoint(&self, id: &str) -> Option<SocketAddr> {
        Self::endpoint_of(&self.shared, id)
    }

    fn endpoint_of(shared: &Shared, id: &str) -> Option<SocketAddr> {
        let port = {
            let view = shared.view.lock().unwrap();
            spread_core::port(&view.get(id)?.spec)
        };
        let address = shared.executor.address(id)?;
        Some(SocketAddr::from((address, port)))
    }
}

impl Shared {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap()
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    /// Forgets the lock of an instance nobody is waiting for.
    fn drop_lock(&self, id: &str) {
        let mut locks = self.locks.lock().unwrap();
        if locks.get(id).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(id);
        }
    }

    fn sample(&self) {
        let ids: Vec<String> = {
            let view = self.view.lock().unwrap();
            view.iter()
                .filter(|(_, e)| e.status.state == InstanceState::Running)
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in ids {
            let usage = self.executor.usage(&id);
            let at = Instant::now();
            let mut view = self.view.lock().unwrap();
            let Some(entry) = view.get_mut(&id) else {
                continue;
            };
            let Some(usage) = usage else {
                continue;
            };
            entry.memory_bytes = Some(usage.memory_bytes);
            if let Some((then, nanos)) = entry.cpu_sample {
                let wall = at.duration_since(then).as_nanos().max(1);
                let used = u128::from(usage.cpu_nanos.saturating_sub(nanos));
                entry.cpu_millis = u64::try_from(used * 1000 / wall).ok();
            }
            entry.cpu_sample = Some((at, usage.cpu_nanos));
        }
    }
}

impl Entry {
    fn new(spec: InstanceSpec, started_at: Option<Timestamp>) -> Self {
        let status = InstanceStatus {
            id: spec.id.clone(),
            state: InstanceState::Starting,
            restarts: 0,
            last_exit: None,
            running_since: None,
            restart_at: None,
            healthy: false,
        };
        Self {
            spec,
            status,
            started_at,
            cpu_sample: None,
            cpu_millis: None,
            memory_bytes: None,
            generation: 0,
        }
    }
}

async fn run(
    shared: Arc<Shared>,
    mut machine: NodeMachine,
    mut assignments: watch::Receiver<Assignment>,
    tx: mpsc::UnboundedSender<Msg>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    let mut samples = tokio::time::interval(SAMPLE_EVERY);
    let mut specs: BTreeMap<String, InstanceSpec> = shared
        .view
        .lock()
        .unwrap()
        .iter()
        .map(|(id, e)| (id.clone(), e.spec.clone()))
        .collect();
    let mut apps = BTreeSet::new();
    // The assignment as it is now counts as a change.
    assignments.mark_changed();
    loop {
        let deadline = machine.next_deadline().map(|d| shared.epoch + d);
        let due = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            changed = assignments.changed() => {
                if changed.is_err() {
                    break;
                }
                let assignment = assignments.borrow_and_update().clone();
                *shared.health.lock().unwrap() = assignment.health;
                apps = assignment.apps;
                prune(&shared, &apps, &specs);
                machine.handle(Event::Assigned(assignment.instances), shared.now());
            }
            Some(msg) = rx.recv() => match msg {
                Msg::Event(event) => machine.handle(event, shared.now()),
                Msg::Removed => {
                    prune(&shared, &apps, &specs);
                    shared.instance_removed.notify_one();
                }
            },
            () = due => machine.handle(Event::Tick, shared.now()),
            _ = samples.tick() => shared.sample(),
        }
        for action in machine.take_actions() {
            dispatch(&shared, &tx, &mut specs, action);
        }
    }
    tracing::info!("agent stopped; containers keep running");
}

/// Collects unused image blobs and layers whenever the set of release images changes, an
/// instance was removed (its layers may have been all that kept them), and every `GC_EVERY`
/// (what a failed deploy pulled is referenced by nothing); one run at a time.
async fn collect_garbage(shared: Arc<Shared>, mut assignments: watch::Receiver<Assignment>) {
    let mut every = tokio::time::interval(GC_EVERY);
    let mut collected: Option<BTreeSet<(AppId, String)>> = None;
    loop {
        tokio::select! {
            changed = assignments.changed() => if changed.is_err() {
                return;
            },
            _ = every.tick() => collected = None,
            () = shared.instance_removed.notified() => collected = None,
        }
        let images = assignments.borrow_and_update().images.clone();
        if collected.as_ref() == Some(&images) {
            continue;
        }
        let (gc, these) = (shared.clone(), images.clone());
        let ran = tokio::task::spawn_blocking(move || gc.executor.collect_garbage(&these)).await;
        if let Err(e) = ran {
            tracing::warn!(error = %e, "garbage collection failed");
        }
        collected = Some(images);
    }
}

fn prune(shared: &Arc<Shared>, apps: &BTreeSet<AppId>, specs: &BTreeMap<String, InstanceSpec>) {
    let busy: BTreeSet<String> = specs.keys().cloned().collect();
    shared.executor.prune(apps, &busy);
}

fn dispatch(
    shared: &Arc<Shared>,
    tx: &mpsc::UnboundedSender<Msg>,
    specs: &mut BTreeMap<String, InstanceSpec>,
    action: Action,
) {
    match action {
        Action::Start(spec) => {
            specs.insert(spec.id.clone(), spec.clone());
            let generation = {
                let mut view = shared.view.lock().unwrap();
                match view.get_mut(&spec.id) {
                    Some(entry) => {
                        entry.spec = spec.clone();
                        entry.generation += 1;
                        entry.generation
                    }
                    None => 0,
                }
            };
            let (shared, tx) = (shared.clone(), tx.clone());
            tokio::spawn(async move {
                let id = spec.id.clone();
                let lock = shared.lock_for(&id);
                let guard = lock.lock().await;
                let started = shared.executor.start(&spec).await;
                drop(guard);
                match started {
                    Ok(started) => {
                        tracing::info!(instance = %id, pid = started.pid, "started");
                        if let Some(e) = shared.view.lock().unwrap().get_mut(&id) {
                            e.started_at = Some(started.started_at);
                            e.cpu_sample = None;
                            e.cpu_millis = None;
                            e.memory_bytes = None;
                        }
                        let _ = tx.send(Msg::Event(Event::Started { id: id.clone() }));
                        watch_exit(&shared, &tx, id);
                        watch_health(&shared, &tx, spec, generation);
                    }
                    Err(reason) => {
                        tracing::warn!(instance = %id, %reason, "could not start");
                        shared
                            .executor
                            .note(&id, &[platform::start_failed_line(&reason)]);
                        let _ = tx.send(Msg::Event(Event::StartFailed { id, reason }));
                    }
                }
            });
        }
        Action::Stop { id, grace } => {
            let shared = shared.clone();
            let serves = specs
                .get(&id)
                .is_some_and(|s| s.process == ProcessType::web());
            tokio::spawn(async move {
                let lock = shared.lock_for(&id);
                let _guard = lock.lock().await;
                if serves && let Some(router) = shared.router.get() {
                    router.drain(&id, DRAIN_TIMEOUT).await;
                }
                shared.executor.stop(&id, grace).await;
            });
        }
        Action::Remove { id } => {
            let Some(spec) = specs.remove(&id) else {
                return;
            };
            let (shared, tx) = (shared.clone(), tx.clone());
            tokio::spawn(async move {
                let lock = shared.lock_for(&id);
                let guard = lock.lock().await;
                if let Err(e) = shared.executor.remove(&spec).await {
                    tracing::warn!(instance = %id, error = %e, "could not remove everything");
                }
                drop(guard);
                drop(lock);
                shared.drop_lock(&id);
                let _ = tx.send(Msg::Removed);
            });
        }
        Action::Report(status) => {
            let mut view = shared.view.lock().unwrap();
            if let Some(spec) = specs.get(&status.id) {
                let before = view.get(&status.id).map(|e| &e.status);
                let lines = platform::status_lines(spec, before, &status, shared.now());
                shared.executor.note(&status.id, &lines);
            }
            shared.changes.send_modify(|n| *n += 1);
            if status.state == InstanceState::Stopped {
                view.remove(&status.id);
            } else if let Some(entry) = view.get_mut(&status.id) {
                entry.status = status;
            } else if let Some(spec) = specs.get(&status.id) {
                let mut entry = Entry::new(spec.clone(), None);
                entry.status = status;
                view.insert(entry.spec.id.clone(), entry);
            }
        }
    }
}

/// Checks the health of one run of an instance's process (`generation`) until it ends, and
/// tells the loop when the result differs from what the instance's status says: a `web`
/// instance by its app's check, any other once it has run for `STEADY_AFTER`.
fn watch_health(
    shared: &Arc<Shared>,
    tx: &mpsc::UnboundedSender<Msg>,
    spec: InstanceSpec,
    generation: u64,
) {
    let (shared, tx) = (shared.clone(), tx.clone());
    tokio::spawn(async move {
        let id = spec.id.clone();
        let serves = spec.process == ProcessType::web();
        let began = Instant::now();
        let mut failures = 0;
        loop {
            // The instance's status as the loop last reported it; `None` ends the check.
            let healthy_now = {
                let view = shared.view.lock().unwrap();
                match view.get(&id) {
                    Some(e)
                        if e.generation == generation
                            && matches!(
                                e.status.state,
                                InstanceState::Starting | InstanceState::Running
                            ) =>
                    {
                        Some((e.status.state == InstanceState::Running, e.status.healthy))
                    }
                    _ => None,
                }
            };
            let Some((running, healthy)) = healthy_now else {
                return;
            };
            let passed = if !serves {
                began.elapsed() >= STEADY_AFTER
            } else if let Some(endpoint) = Agent::endpoint_of(&shared, &id) {
                let path = shared
                    .health
                    .lock()
                    .unwrap()
                    .get(&spec.app_id)
                    .and_then(|h| h.path.clone());
                health::check(endpoint, path.as_deref()).await
            } else {
                false
            };
            failures = if passed { 0 } else { failures + 1 };
            let tell = match (passed, healthy) {
                (true, false) if running => Some(true),
                (false, true) if failures >= health::FAILURES_TO_UNHEALTHY => Some(false),
                _ => None,
            };
            if let Some(healthy) = tell {
                let id = id.clone();
                let _ = tx.send(Msg::Event(Event::Health { id, healthy }));
            }
            let every = match healthy || tell == Some(true) {
                true if failures == 0 => health::HEALTHY_EVERY,
                _ => health::STARTING_EVERY,
            };
            tokio::time::sleep(every).await;
        }
    });
}

/// Reports the instance's exit to the loop once its process has ended.
fn watch_exit(shared: &Arc<Shared>, tx: &mpsc::UnboundedSender<Msg>, id: String) {
    let (shared, tx) = (shared.clone(), tx.clone());
    tokio::spawn(async move {
        let exit = shared.executor.wait_exit(&id).await;
        tracing::info!(instance = %id, ?exit, "exited");
        let _ = tx.send(Msg::Event(Event::Exited { id, exit }));
    });
}
