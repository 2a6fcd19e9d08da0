//! `spread up`: the single-node platform. Parses flags into the server's config, starts it,
//! shows the first admin token once, and runs until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use spread_server::{Server, ServerConfig};
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
    /// Address of the HTTP gateway that serves apps (from the serving milestone on).
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
    let mut config = ServerConfig::new(data_dir.clone(), args.api_listen);
    config.domain = args.domain;
    config.snapshot_every = args.snapshot_every;
    config.new_admin_token = args.new_admin_token;

    // The gateway that will listen here arrives with the serving milestone; the flag is accepted
    // now so that scripts written today keep working.
    tracing::debug!(http_listen = %args.http_listen, "no gateway in this build yet");

    let server = tokio::select! {
        server = Server::open(config) => server?,
        () = stopped(stop_rx.clone()) => {
            println!("Spread stopped before it was up.");
            return Ok(());
        }
    };
    let addr = server.api_addr();
    // A wildcard listen address is reachable on loopback; that is what the local CLI uses.
    let local = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let url = format!("http://{local}");
    println!("Spread is up: API on {url}, data in {}", data_dir.display());
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
    println!("Spread stopped.");
    Ok(())
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
