//! A gateway with one app for benchmarks: `bench/gateway.sh` runs it beside nginx and haproxy.
//!
//! `bench_gateway --listen 127.0.0.1:9104 --backend 127.0.0.1:9000 --host bench.localhost
//! [--threads N] [--access-log]` serves until SIGINT or SIGTERM. The host `127.0.0.1` is routed
//! too, so `wrk http://127.0.0.1:9104/` reaches the backend.
//!
//! It runs the gateway as `spread up` does: [`Gateway::spawn_on_own_runtime`] with
//! [`DEFAULT_THREADS`] unless `--threads` says otherwise, beside a main runtime, and with
//! `--access-log` every line goes over a bounded channel to a thread (only counted there).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;

use spread_gateway::{
    AccessLog, AppRoute, BackendSpec, DEFAULT_THREADS, Gateway, GatewayConfig, NoAccessLog,
};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: bench_gateway --listen ADDR --backend ADDR --host HOST \
                     [--threads N] [--access-log]";

struct Args {
    listen: SocketAddr,
    backend: SocketAddr,
    host: String,
    threads: Option<usize>,
    access_log: bool,
}

fn parse_args() -> Result<Args, String> {
    let (mut listen, mut backend, mut host, mut threads, mut access_log) =
        (None, None, None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value; {USAGE}"));
        match flag.as_str() {
            "--listen" => listen = Some(parse(&flag, &value()?)?),
            "--backend" => backend = Some(parse(&flag, &value()?)?),
            "--host" => host = Some(value()?),
            "--threads" => threads = Some(parse(&flag, &value()?)?),
            "--access-log" => access_log = true,
            _ => return Err(format!("unknown argument {flag}; {USAGE}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or(format!("--listen is missing; {USAGE}"))?,
        backend: backend.ok_or(format!("--backend is missing; {USAGE}"))?,
        host: host.ok_or(format!("--host is missing; {USAGE}"))?,
        threads,
        access_log,
    })
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} {value:?} is not valid; {USAGE}"))
}

/// Sends every line to a thread over a bounded channel, as `spread up`'s router log does, and
/// counts them there: the access log's cost on the request path, without the disk writes.
struct ChannelLog {
    lines: mpsc::SyncSender<(String, String)>,
}

impl ChannelLog {
    fn start() -> Self {
        let (lines, rx) = mpsc::sync_channel::<(String, String)>(65_536);
        std::thread::spawn(move || {
            let mut bytes = 0usize;
            while let Ok(first) = rx.recv() {
                for (app, line) in std::iter::once(first).chain(rx.try_iter().take(65_536)) {
                    bytes += app.len() + line.len();
                }
                // As `spread up`'s writer: a pause after each batch, so lines come in batches
                // instead of a thread wake-up per request.
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            eprintln!("bench_gateway: {bytes} bytes of access log");
        });
        Self { lines }
    }
}

impl AccessLog for ChannelLog {
    fn record(&self, app: &str, line: String) {
        let _ = self.lines.try_send((app.to_owned(), line));
    }
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(args) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

/// Runs the gateway as `spread up` does: on a runtime of its own beside the process's main
/// runtime, which here only waits for a signal.
fn run(args: Args) -> std::io::Result<()> {
    let log: Arc<dyn AccessLog> = if args.access_log {
        Arc::new(ChannelLog::start())
    } else {
        Arc::new(NoAccessLog)
    };
    let gateway = Gateway::new(GatewayConfig::default(), log);
    gateway.set_routes(vec![AppRoute {
        app: "bench".to_owned(),
        hosts: vec![args.host.clone(), "127.0.0.1".to_owned()],
        backends: vec![BackendSpec {
            id: "bench-1".to_owned(),
            label: "web.1".to_owned(),
            addr: args.backend,
        }],
    }]);
    let listener = std::net::TcpListener::bind(args.listen).map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!("cannot listen on {}: {error}", args.listen),
        )
    })?;
    let main = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let threads = args.threads.unwrap_or(DEFAULT_THREADS);
    let serving = gateway
        .clone()
        .spawn_on_own_runtime(listener, threads, async {
            let _ = stopped.await;
        })?;
    eprintln!(
        "bench_gateway: {} → {} for host {}, {threads} gateway thread(s)",
        args.listen, args.backend, args.host
    );
    main.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        std::io::Result::Ok(())
    })?;
    let _ = stop.send(());
    serving
        .join()
        .map_err(|_| std::io::Error::other("the gateway thread panicked"))??;
    if let Some(summary) = gateway.summary("bench") {
        eprintln!("bench_gateway: requests by class {:?}", summary.requests);
    }
    Ok(())
}
