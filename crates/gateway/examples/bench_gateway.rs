//! A gateway with one app for benchmarks: `bench/gateway.sh` runs it beside nginx and haproxy.
//!
//! `bench_gateway --listen 127.0.0.1:9104 --backend 127.0.0.1:9000 --host bench.localhost
//! [--threads N] [--access-log]` serves until SIGINT or SIGTERM. The host `127.0.0.1` is routed
//! too, so `wrk http://127.0.0.1:9104/` reaches the backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use spread_gateway::{AccessLog, AppRoute, BackendSpec, Gateway, GatewayConfig, NoAccessLog};
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

/// Makes every line and counts them, to measure what the access log costs without disk I/O.
#[derive(Default)]
struct CountingLog(AtomicU64);

impl AccessLog for CountingLog {
    fn record(&self, _app: &str, line: String) {
        self.0.fetch_add(line.len() as u64, Ordering::Relaxed);
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
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(run(args)) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    let log: Arc<dyn AccessLog> = if args.access_log {
        Arc::new(CountingLog::default())
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
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|error| {
            std::io::Error::new(
                error.kind(),
                format!("cannot listen on {}: {error}", args.listen),
            )
        })?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    };
    eprintln!(
        "bench_gateway: {} → {} for host {}",
        args.listen, args.backend, args.host
    );
    gateway.clone().serve(listener, shutdown).await?;
    if let Some(summary) = gateway.summary("bench") {
        eprintln!("bench_gateway: requests by class {:?}", summary.requests);
    }
    Ok(())
}
