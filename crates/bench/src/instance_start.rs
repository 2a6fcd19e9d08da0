//! `spread-bench instance-start`: how long Spread takes from a scale request to an instance
//! that accepts TCP on `$PORT`, side by side with plain `runc run` of an equivalent bundle in
//! the same process, runs alternating; then the daemon's RSS with many instances running.
//! `bench/instance-start.sh` builds the release binaries and runs it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use spread_api::{DeployRequest, FormationPatch};
use spread_client::Client;
use spread_image::{BlobStore, PushOptions, RegistryAuth, push};
use spread_testkit::images::put_app_image;
use spread_testkit::registry::LocalRegistry;
use spread_testkit::runc::static_binary;

use crate::daemon::Daemon;
use crate::plain_runc::{AnchorStart, PlainRunc};
use crate::stats::{Summary, ms};

#[derive(clap::Args)]
pub struct InstanceStart {
    /// The `spread` binary whose `spread up` is measured, e.g. target/release/spread.
    #[arg(long)]
    spread: PathBuf,
    /// Timed starts on each side, after one first (cold) start each.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Instances running when the daemon's memory is read.
    #[arg(long, default_value_t = 20)]
    instances: u32,
    /// The test app's C source, compiled statically with gcc.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../cli/tests/fixtures/app_probe.c"))]
    probe_source: PathBuf,
    /// Keep the daemon's log (its stderr) in this file; `SPREAD_LOG=info` shows its phases.
    #[arg(long)]
    daemon_log: Option<PathBuf>,
}

/// The port the probe listens on (the `PORT` Spread gives web instances).
pub const PORT: u16 = 8080;
/// How often a waiting side asks again: the resolution of every timing here.
const POLL: Duration = Duration::from_millis(1);
/// A bound on every wait, so a broken run fails instead of hanging; never a timing claim.
const PATIENCE: Duration = Duration::from_secs(60);
const APP: &str = "bench";
const TARGET_OVERHEAD_MS: u32 = 20;
const TARGET_RSS_MIB: u32 = 40;

/// Set by Ctrl-C; every wait then fails, so everything is cleaned up on the way out.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

pub fn run(args: InstanceStart) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self")?.uid() != 0 {
        bail!("run as root: the node agent and plain runc need it");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            INTERRUPTED.store(true, Ordering::Relaxed);
        }
    });

    progress("building and pushing the test image");
    let probe = static_binary(&args.probe_source, "spread-bench-app-probe");
    let image = pushed_image(&runtime, &probe)?;
    progress("starting spread up");
    let daemon = Daemon::start(&args.spread, args.daemon_log.as_deref())?;
    let client = daemon.client()?;
    let anchor = PlainRunc::new(probe);
    runtime.block_on(async {
        client.create_app(APP).await?;
        client.scale(APP, &web(0)).await?;
        let request = DeployRequest {
            image: image.reference.clone(),
            processes: BTreeMap::new(),
            registry_user: None,
            registry_password: None,
            insecure_registry: false,
        };
        client.deploy(APP, &request).await?;
        anyhow::Ok(())
    })?;

    progress(&format!("first starts, then {} alternating", args.runs));
    let cold = runtime.block_on(spread_start(&client, &daemon))?;
    let cold_runc = anchor.start_once(PATIENCE)?;
    let mut spread = Vec::with_capacity(args.runs);
    let mut runc = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        check_interrupted()?;
        spread.push(runtime.block_on(spread_start(&client, &daemon))?);
        runc.push(anchor.start_once(PATIENCE)?);
    }
    progress(&format!("scaling to {} instances", args.instances));
    let memory = runtime.block_on(memory_with(&client, &daemon, args.instances))?;

    report(&args, &spread, &runc, &cold, &cold_runc, &memory)
}

fn progress(what: &str) {
    eprintln!("instance-start: {what}");
}

/// A registry on loopback holding the probe as `probe:1` (its entrypoint `/app`), with what
/// must live as long as it is used.
struct PushedImage {
    reference: String,
    _registry: LocalRegistry,
    _store: tempfile::TempDir,
}

fn pushed_image(runtime: &tokio::runtime::Runtime, probe: &Path) -> Result<PushedImage> {
    let binary = std::fs::read(probe).with_context(|| format!("read {}", probe.display()))?;
    let registry = LocalRegistry::start();
    let store_dir = tempfile::tempdir()?;
    let store = BlobStore::open(store_dir.path())?;
    let image = put_app_image(&store, &binary, &["PATH=/"]);
    runtime.block_on(push(
        &store,
        &image.manifest,
        &registry.reference("probe:1"),
        &RegistryAuth::Anonymous,
        &PushOptions { insecure: false },
    ))?;
    Ok(PushedImage {
        reference: format!("127.0.0.1:{}/probe:1", registry.port()),
        _registry: registry,
        _store: store_dir,
    })
}

fn web(quantity: u32) -> FormationPatch {
    FormationPatch {
        quantities: BTreeMap::from([("web".to_owned(), quantity)]),
        limits: BTreeMap::new(),
    }
}

/// One timed Spread start, with the moments of its phases after the scale request was sent.
struct SpreadStart {
    /// The scale request was answered (committed and applied).
    scaled: Duration,
    /// The instance list showed the instance with its address (network attached).
    addressed: Duration,
    /// The monitor recorded that `runc start` returned (its `started_at`, a wall-clock time
    /// read after the timing, so a few tens of microseconds rougher than the rest).
    container_started: Duration,
    /// The probe accepted a TCP connection from the host: the start latency.
    accepting: Duration,
}

/// Scales web to 1 and times until the instance accepts TCP on its address; then scales to 0
/// and waits until the agent has removed it, so the next start begins from nothing.
async fn spread_start(client: &Client, daemon: &Daemon) -> Result<SpreadStart> {
    let started = Instant::now();
    let started_wall = jiff::Timestamp::now();
    let deadline = started + PATIENCE;
    client.scale(APP, &web(1)).await?;
    let scaled = started.elapsed();
    let (id, address) = loop {
        let instances = client.instances(APP).await?;
        if let Some((id, address)) = instances.into_iter().find_map(|i| Some((i.id, i.address?))) {
            break (id, address);
        }
        wait_more(deadline, "an instance with an address").await?;
    };
    let addressed = started.elapsed();
    let address: Ipv4Addr = address
        .parse()
        .with_context(|| format!("instance address `{address}`"))?;
    let target = SocketAddr::from((address, PORT));
    tokio::task::spawn_blocking(move || connect_until(target, deadline)).await??;
    let accepting = started.elapsed();

    // Not timed: the agent learns of the start by polling the monitor's record.
    let container_started = loop {
        let instances = client.instances(APP).await?;
        if let Some(at) = instances.into_iter().find_map(|i| i.started_at) {
            break Duration::try_from(at.duration_since(started_wall)).unwrap_or_default();
        }
        wait_more(deadline, "the instance's start time").await?;
    };
    client.scale(APP, &web(0)).await?;
    while !client.instances(APP).await?.is_empty() {
        wait_more(deadline, "the instance list to empty").await?;
    }
    // The agent marks an instance's dir `removed` as the last step of removing it (runc
    // delete, unmount, network detach, bundle); instance ids are stable, so the next start
    // would otherwise wait for this removal.
    let removed = daemon
        .data_dir()
        .join("instances")
        .join(&id)
        .join("removed");
    while !removed.exists() {
        wait_more(deadline, "the agent to remove the instance").await?;
    }
    Ok(SpreadStart {
        scaled,
        addressed,
        container_started,
        accepting,
    })
}

async fn wait_more(deadline: Instant, what: &str) -> Result<()> {
    check_interrupted()?;
    if Instant::now() >= deadline {
        bail!("gave up after {PATIENCE:?} waiting for {what}");
    }
    tokio::time::sleep(POLL).await;
    Ok(())
}

/// Tries to connect to `addr` every `POLL` until it accepts. Blocking.
pub fn connect_until(addr: SocketAddr, deadline: Instant) -> Result<()> {
    loop {
        // A closed port answers at once with a reset; the timeout only bounds a lost SYN.
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        check_interrupted()?;
        if Instant::now() >= deadline {
            bail!("nothing accepted a connection on {addr} within {PATIENCE:?}");
        }
        std::thread::sleep(POLL);
    }
}

/// Resident memory, in KiB, of the daemon and of the instances' monitors.
struct Memory {
    /// The daemon's RSS after the timed runs, with no instance running.
    idle_rss: u64,
    instances: u32,
    daemon_rss: u64,
    daemon_peak: u64,
    /// (RSS, PSS) of each `spread monitor` of the daemon's data dir.
    monitors: Vec<(u64, u64)>,
}

/// Scales web to `n`, waits until all run and accept TCP, and reads the memory figures.
async fn memory_with(client: &Client, daemon: &Daemon, n: u32) -> Result<Memory> {
    let deadline = Instant::now() + PATIENCE;
    let idle_rss = status_kib(daemon.pid(), "VmRSS")?;
    client.scale(APP, &web(n)).await?;
    let addresses = loop {
        let instances = client.instances(APP).await?;
        let running: Vec<String> = instances
            .into_iter()
            .filter(|i| i.state == "running")
            .filter_map(|i| i.address)
            .collect();
        if running.len() == n as usize {
            break running;
        }
        wait_more(deadline, &format!("{n} running instances")).await?;
    };
    for address in addresses {
        let address: Ipv4Addr = address.parse()?;
        let target = SocketAddr::from((address, PORT));
        tokio::task::spawn_blocking(move || connect_until(target, deadline)).await??;
    }
    let pid = daemon.pid();
    let data_dir = daemon.data_dir().to_string_lossy().into_owned();
    let monitors = monitor_pids(&data_dir)
        .into_iter()
        .map(|pid| Ok((status_kib(pid, "VmRSS")?, pss_kib(pid)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Memory {
        idle_rss,
        instances: n,
        daemon_rss: status_kib(pid, "VmRSS")?,
        daemon_peak: status_kib(pid, "VmHWM")?,
        monitors,
    })
}

/// `spread monitor` processes whose command line names `data_dir`.
fn monitor_pids(data_dir: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("\0monitor\0") && cmdline.contains(data_dir)
        })
        .collect()
}

/// A `kB` field of /proc/PID/status.
fn status_kib(pid: u32, field: &str) -> Result<u64> {
    kib_field(&format!("/proc/{pid}/status"), field)
}

/// Proportional set size: shared pages (the `spread` binary's) divided among their users.
fn pss_kib(pid: u32) -> Result<u64> {
    kib_field(&format!("/proc/{pid}/smaps_rollup"), "Pss")
}

fn kib_field(path: &str, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {path}"))?;
    text.lines()
        .find_map(|line| {
            let value = line.strip_prefix(field)?.strip_prefix(':')?;
            value.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .with_context(|| format!("no {field} in {path}"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn report(
    args: &InstanceStart,
    spread: &[SpreadStart],
    runc: &[AnchorStart],
    cold: &SpreadStart,
    cold_runc: &AnchorStart,
    memory: &Memory,
) -> Result<()> {
    let of = |timings: Vec<Duration>| Summary::of(&timings).context("no timed runs (--runs 0)");
    let s = of(spread.iter().map(|s| s.accepting).collect())?;
    let r = of(runc.iter().map(|r| r.accepting).collect())?;
    let median = |pick: fn(&SpreadStart) -> Duration| {
        of(spread.iter().map(pick).collect()).map(|s| ms(s.median, 0))
    };
    let row = |name: &str, s: &Summary| {
        println!(
            "{name:<16}{} ms{} ms{} ms{} ms",
            ms(s.median, 9),
            ms(s.p90, 8),
            ms(s.min, 8),
            ms(s.max, 8)
        );
    };
    println!(
        "instance start (assigned -> accepting TCP on $PORT), {} runs each, warm image, alternating",
        args.runs
    );
    println!(
        "{:<16}{:>12}{:>11}{:>11}{:>11}",
        "", "median", "p90", "min", "max"
    );
    row("spread", &s);
    row("plain runc run", &r);
    let overhead = s.median.as_secs_f64() * 1000.0 - r.median.as_secs_f64() * 1000.0;
    println!(
        "{:<16}{overhead:>9.1} ms (spread median - runc median; target <= {TARGET_OVERHEAD_MS} ms)",
        "overhead"
    );
    println!(
        "spread phases, medians in ms after the scale request was sent: answered {}, \
         address shown {}, runc start returned {}, accepting TCP {}",
        median(|s| s.scaled)?,
        median(|s| s.addressed)?,
        median(|s| s.container_started)?,
        ms(s.median, 0)
    );
    println!(
        "plain runc phases, medians in ms: runc run returned {}, accepting TCP {}",
        ms(of(runc.iter().map(|r| r.returned).collect())?.median, 0),
        ms(r.median, 0)
    );
    println!(
        "first (cold) start: spread {} ms, plain runc run {} ms",
        ms(cold.accepting, 0),
        ms(cold_runc.accepting, 0)
    );
    let (rss, pss): (u64, u64) = memory
        .monitors
        .iter()
        .fold((0, 0), |(r, p), (rss, pss)| (r + rss, p + pss));
    println!(
        "daemon RSS with {} instances: {} (peak {}, {} with none; target <= {TARGET_RSS_MIB} MiB)",
        memory.instances,
        mib(memory.daemon_rss),
        mib(memory.daemon_peak),
        mib(memory.idle_rss)
    );
    let each = rss / (memory.monitors.len() as u64).max(1);
    println!(
        "monitors: {} processes, {} RSS total ({} PSS), {} RSS each",
        memory.monitors.len(),
        mib(rss),
        mib(pss),
        mib(each)
    );
    Ok(())
}
