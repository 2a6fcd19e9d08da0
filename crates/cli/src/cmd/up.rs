//! `spread up`: the single-node platform. Parses flags into the server's config, starts it,
//! shows the first admin token once, and runs until SIGINT or SIGTERM.

mod serving;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use spread_agent::{Agent, AgentConfig, Assignment, TaskEnd};
use spread_core::{AppId, DesiredInstance, Observed, State, desired_instances};
use spread_gateway::{DEFAULT_THREADS, Gateway, GatewayConfig};
use spread_raft::RaftNode;
use spread_server::{
    BuildEvents, BuildFailure, BuildFuture, BuildRequest, BuiltImage, LogSource, NodeBuilder,
    NodeInstances, Server, ServerConfig, TaskFuture,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::credentials::{self, Credentials};
use crate::env;

#[derive(Args)]
pub struct UpArgs {
    /// Where Spread keeps its state [default: /var/lib/spread as root, else $XDG_DATA_HOME/spread]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the HTTP API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    api_listen: SocketAddr,
    /// Address of the HTTP gateway that serves apps.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:80")]
    http_listen: SocketAddr,
    /// Apps are served at <app>.<domain>.
    #[arg(long, value_name = "DOMAIN", default_value = "localhost")]
    domain: String,
    /// Create a new admin token even though tokens exist, e.g. when the first one was lost.
    #[arg(long)]
    new_admin_token: bool,
    /// Take a Raft snapshot and compact the log after this many entries.
    #[arg(long, value_name = "N", default_value_t = 5000, hide = true)]
    snapshot_every: u64,
    /// Run no containers on this node (the API only).
    #[arg(long, hide = true)]
    no_agent: bool,
    /// The node network (bridge, subnet, netns dir, nftables tables) as a TOML file.
    #[arg(long, value_name = "FILE", hide = true)]
    net_config: Option<PathBuf>,
    /// The cgroup every instance's cgroup is made in.
    #[arg(long, value_name = "PATH", default_value = "/spread", hide = true)]
    cgroup_parent: String,
    /// The first host uid of the first app's id range.
    #[arg(long, value_name = "UID", hide = true)]
    uid_base: Option<u32>,
    /// Unused image blobs and layers are removed once unused for this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, hide = true)]
    gc_grace: u64,
    /// Where builder root filesystems are cached [default: <data-dir>/builds/roots].
    #[arg(long, value_name = "DIR", hide = true)]
    builder_cache: Option<PathBuf>,
    /// A build still running after this many seconds is stopped.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    build_timeout: u64,
}

fn default_data_dir() -> Result<PathBuf> {
    if is_root() {
        return Ok(PathBuf::from("/var/lib/spread"));
    }
    let base = match env::var(env::XDG_DATA_HOME) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env::var(env::HOME).context("HOME is not set; pass --data-dir DIR")?)
            .join(".local/share"),
    };
    Ok(base.join("spread"))
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// How long in-flight requests may take to finish once a stop was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub async fn run(args: UpArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env(env::LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    // Listen for signals from the very start, so a stop during startup is a clean stop too.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir).with_context(|| {
        format!(
            "cannot create the data dir {}; pass --data-dir DIR",
            data_dir.display()
        )
    })?;
    let args_agent = AgentArgs {
        no_agent: args.no_agent,
        net_config: args.net_config.clone(),
        cgroup_parent: args.cgroup_parent.clone(),
        uid_base: args.uid_base,
        gc_grace: args.gc_grace,
        builder_cache: args.builder_cache.clone(),
        build_timeout: args.build_timeout,
    };
    let mut config = ServerConfig::new(data_dir.clone(), args.api_listen);
    config.domain = args.domain.clone();
    config.snapshot_every = args.snapshot_every;
    config.new_admin_token = args.new_admin_token;
    let http = std::net::TcpListener::bind(args.http_listen).with_context(|| {
            format!(
                "cannot listen on {} for the app gateway; stop what uses it, or pass \
                 --http-listen ADDR (ports below 1024 need root), e.g. --http-listen 127.0.0.1:8080",
                args.http_listen
            )
        })?;
    let http_addr = http.local_addr()?;

    let mut server = tokio::select! {
        server = Server::open(config) => server?,
        () = stopped(stop_rx.clone()) => {
            println!("Spread stopped before it was up.");
            return Ok(());
        }
    };
    let addr = server.api_addr();
    let agent_config = agent_config(&args_agent, &data_dir, addr.port())?;
    let log_limits = agent_config.as_ref().map(|c| c.log).unwrap_or_default();
    let router_logs = serving::RouterLogs::start(&data_dir, log_limits);
    let gateway = Gateway::new(GatewayConfig::default(), router_logs.clone());
    let agent = match agent_config {
        Some(config) => {
            let agent =
                start_agent(config, server.raft().clone(), stopped(stop_rx.clone())).await?;
            agent.set_router(Arc::new(serving::Drain(gateway.clone())));
            let view = Arc::new(NodeView {
                agent: agent.clone(),
                gateway: gateway.clone(),
                router_logs: router_logs.clone(),
            });
            server.set_instances(view.clone());
            server.set_builder(view);
            tokio::spawn(serving::sync(
                server.raft().clone(),
                agent.clone(),
                gateway.clone(),
                args.domain.clone(),
                router_logs.clone(),
            ));
            Some(agent)
        }
        None => None,
    };
    // The gateway gets a runtime of its own, so requests never wait behind the control plane.
    let serving = gateway
        .clone()
        .spawn_on_own_runtime(http, DEFAULT_THREADS, stopped(stop_rx.clone()))
        .context("cannot start the app gateway")?;
    // A wildcard listen address is reachable on loopback; that is what the local CLI uses.
    let local = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let url = format!("http://{local}");
    println!("Spread is up: API on {url}, data in {}", data_dir.display());
    let port = match http_addr.port() {
        80 => String::new(),
        port => format!(":{port}"),
    };
    println!(
        "Gateway on {http_addr}: apps are served at http://<app>.{}{port}/",
        args.domain
    );
    if let Some(token) = server.admin_token() {
        announce_admin_token(&url, token);
    }
    let deadline = async {
        stopped(stop_rx.clone()).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server.serve(stopped(stop_rx.clone())) => served?,
        () = deadline => println!("Requests still running after {SHUTDOWN_GRACE:?}; stopping anyway."),
    }
    // The gateway stopped accepting with the server; its open requests get the same grace.
    let joined = tokio::task::spawn_blocking(move || serving.join());
    match tokio::time::timeout(SHUTDOWN_GRACE, joined).await {
        Ok(Ok(Ok(Err(e)))) => tracing::warn!(error = %e, "the gateway stopped with an error"),
        Err(_) => println!("App requests still running after {SHUTDOWN_GRACE:?}; stopping anyway."),
        _ => {}
    }
    drop(agent);
    println!("Spread stopped.");
    Ok(())
}

/// The agent's flags, taken out of `UpArgs` before it is consumed.
struct AgentArgs {
    no_agent: bool,
    net_config: Option<PathBuf>,
    cgroup_parent: String,
    uid_base: Option<u32>,
    gc_grace: u64,
    builder_cache: Option<PathBuf>,
    build_timeout: u64,
}

/// The agent's config, or `None` when this node runs no containers.
fn agent_config(args: &AgentArgs, data_dir: &Path, api_port: u16) -> Result<Option<AgentConfig>> {
    if args.no_agent {
        return Ok(None);
    }
    if !is_root() {
        println!(
            "Not running as root: this node serves the API but runs no apps (containers need root)."
        );
        return Ok(None);
    }
    let binary =
        std::env::current_exe().context("cannot find the spread binary to start monitors with")?;
    let mut config = AgentConfig::new(data_dir, binary);
    if let Some(path) = &args.net_config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the network config {}", path.display()))?;
        config.net = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid network config", path.display()))?;
    }
    if !config.net.protected_ports.contains(&api_port) {
        config.net.protected_ports.push(api_port);
    }
    config.cgroup_parent = args.cgroup_parent.clone();
    if let Some(base) = args.uid_base {
        config.uid_base = base;
    }
    config.gc_grace = Duration::from_secs(args.gc_grace);
    if let Some(dir) = &args.builder_cache {
        config.builder_roots = dir.clone();
    }
    config.build_timeout = Duration::from_secs(args.build_timeout);
    Ok(Some(config))
}

/// Starts the agent and keeps its assignment in step with the replicated state.
async fn start_agent(
    config: AgentConfig,
    raft: RaftNode,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<Agent> {
    let assignment = |state: &State| Assignment {
        instances: desired_instances(state),
        apps: state.apps().map(|app| app.id).collect(),
        images: state
            .apps()
            .flat_map(|app| {
                app.releases
                    .iter()
                    .filter_map(|r| Some((app.id, r.image.as_ref()?.digest.clone())))
            })
            .collect(),
        health: state
            .apps()
            .map(|app| (app.id, app.health.clone()))
            .collect(),
    };
    let (tx, rx) = watch::channel(raft.read(assignment));
    let (agent, _task) = Agent::start(config, rx, stop)
        .await
        .context("cannot start the node agent")?;
    tokio::spawn(async move {
        let mut seen = None;
        while let Some(applied) = raft.applied_after(seen).await {
            seen = Some(applied);
            let next = raft.read(assignment);
            tx.send_if_modified(|current| {
                let changed = *current != next;
                if changed {
                    *current = next;
                }
                changed
            });
        }
    });
    Ok(agent)
}

/// The agent's instances and the gateway as the API sees them.
struct NodeView {
    agent: Agent,
    gateway: Arc<Gateway>,
    router_logs: Arc<serving::RouterLogs>,
}

impl NodeInstances for NodeView {
    fn instances(&self, app: &AppId) -> Vec<spread_api::Instance> {
        self.agent
            .instances(app)
            .into_iter()
            .map(|i| spread_api::Instance {
                id: i.id,
                process_type: i.process,
                index: i.index,
                release: i.release,
                state: i.state.as_str().to_owned(),
                restarts: i.restarts,
                started_at: i.started_at,
                last_exit: i.last_exit.map(|e| spread_api::InstanceExit {
                    code: e.code,
                    signal: e.signal,
                    oom_killed: e.oom_killed,
                }),
                address: i.address.map(|a| a.to_string()),
                healthy: i.healthy,
                cpu_millis: i.cpu_millis,
                memory_bytes: i.memory_bytes,
                memory_limit_bytes: i.memory_limit_bytes,
            })
            .collect()
    }

    fn log_sources(&self, app: &AppId) -> Vec<LogSource> {
        let mut sources: Vec<LogSource> = self
            .agent
            .log_dirs(app)
            .into_iter()
            .map(|d| LogSource {
                instance: d.instance,
                process_type: d.process,
                dir: d.dir,
            })
            .collect();
        sources.push(LogSource {
            instance: "router".to_owned(),
            process_type: "router".to_owned(),
            dir: self.router_logs.dir_of(app),
        });
        sources
    }

    fn prepare_image(&self, app: &AppId, manifest: &str) -> Result<(), String> {
        self.agent.prepare_image(app, manifest)
    }

    fn observe(&self, wanted: &[DesiredInstance]) -> BTreeMap<String, Observed> {
        serving::observe(&self.agent, wanted)
    }

    fn metrics(&self) -> String {
        self.gateway.render_metrics()
    }

    fn router(&self, app: &str) -> Option<spread_api::RouterSummary> {
        let summary = self.gateway.summary(app)?;
        Some(spread_api::RouterSummary {
            requests: summary.requests,
            in_flight: summary.in_flight,
            p50_ms: summary.p50_ms,
            p99_ms: summary.p99_ms,
        })
    }
}

impl NodeBuilder for NodeView {
    fn run_release(&self, task: DesiredInstance, events: BuildEvents) -> TaskFuture {
        let agent = self.agent.clone();
        Box::pin(async move {
            let timeout = agent.config().build_timeout;
            let output = move |line| {
                let _ = events.send(spread_api::BuildEvent::Output { line });
            };
            let failure = |message: String, exit_code| BuildFailure {
                message,
                step: Some("release command".to_owned()),
                exit_code,
            };
            match agent.run_task(&task, timeout, output).await {
                Ok(TaskEnd::Exited(exit)) if exit.code == Some(0) => Ok(()),
                Ok(TaskEnd::Exited(exit)) => Err(failure(
                    format!(
                        "the release command {}; nothing was released",
                        serving::exit_reason(Some(exit))
                    ),
                    exit.code,
                )),
                Ok(TaskEnd::TimedOut) => Err(failure(
                    format!(
                        "the release command was still running after {} s, so it was stopped; \
                         nothing was released",
                        timeout.as_secs()
                    ),
                    None,
                )),
                Err(reason) => Err(failure(
                    format!("the release command could not start: {reason}"),
                    None,
                )),
            }
        })
    }

    fn build(&self, request: BuildRequest, events: BuildEvents) -> BuildFuture {
        let agent = self.agent.clone();
        Box::pin(async move {
            let send = move |event| {
                let event = match event {
                    spread_build::Event::Step(name) => spread_api::BuildEvent::Step { name },
                    spread_build::Event::Output(line) => spread_api::BuildEvent::Output { line },
                };
                let _ = events.send(event);
            };
            let built = agent
                .build(request.app, request.id, request.source, send)
                .await
                .map_err(|f| BuildFailure {
                    message: f.message,
                    step: f.step,
                    exit_code: f.exit_code,
                })?;
            Ok(BuiltImage {
                digest: built.digest.to_string(),
                env: built.spec.env,
                working_dir: built.spec.working_dir,
                user: built.spec.user,
                processes: built.processes,
                release_command: built.release,
            })
        })
    }
}

/// Resolves once a stop was asked for.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

fn announce_admin_token(url: &str, token: &str) {
    println!();
    println!("Admin API token (shown only this once, keep it safe):");
    println!("  {token}");
    match credentials::save(&Credentials {
        url: url.to_owned(),
        token: token.to_owned(),
    }) {
        Ok(path) => println!(
            "The CLI of this user is logged in already ({}).",
            path.display()
        ),
        Err(e) => println!("Could not log this user's CLI in: {e:#}"),
    }
    println!("To log in elsewhere:");
    println!("  spread login {url} --token {token}");
    println!();
}

async fn shutdown_signal() {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops spread");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
