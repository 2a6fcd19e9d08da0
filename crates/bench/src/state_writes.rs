//! `spread-bench state-writes`: N concurrent clients doing committed, fsynced writes against
//! Spread's API (config set, one Raft entry each) or etcd's v3 HTTP/JSON gateway (a put), printing
//! writes per second and latency percentiles. `bench/state-writes.sh` runs both in one go.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

#[derive(Args)]
pub struct StateWrites {
    /// What to drive.
    #[arg(long, value_enum)]
    target: Target,
    /// Base URL, e.g. http://127.0.0.1:7070 (Spread) or http://127.0.0.1:2379 (etcd).
    #[arg(long)]
    url: String,
    /// API token (Spread only).
    #[arg(long, env = "SPREAD_TOKEN", default_value = "")]
    token: String,
    /// Concurrent clients, each writing in a loop.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long to write for, in seconds (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Spread only: how many apps the clients spread their writes over.
    #[arg(long, default_value_t = 64)]
    apps: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Spread,
    Etcd,
}

pub fn run(args: StateWrites) -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(drive(args))
}

async fn drive(args: StateWrites) -> Result<()> {
    // reqwest is built without a default crypto provider (ring only, never aws-lc-rs).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    if args.target == Target::Spread {
        for i in 0..args.apps {
            let r = http
                .post(format!("{}/v1/apps", args.url))
                .bearer_auth(&args.token)
                .json(&serde_json::json!({ "name": format!("bench-{i}") }))
                .send()
                .await
                .context("cannot reach spread")?;
            if !r.status().is_success() && r.status().as_u16() != 409 {
                bail!(
                    "creating app bench-{i} failed: {} {}",
                    r.status(),
                    r.text().await?
                );
            }
        }
    }
    let warmup_end = Instant::now() + Duration::from_secs(1);
    let end = warmup_end + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.clients)
        .map(|client| {
            let http = http.clone();
            let (url, token, target, apps) =
                (args.url.clone(), args.token.clone(), args.target, args.apps);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                loop {
                    let started = Instant::now();
                    if started >= end {
                        break;
                    }
                    n += 1;
                    let request = match target {
                        Target::Spread => http
                            .patch(format!("{url}/v1/apps/bench-{}/config", client % apps))
                            .bearer_auth(&token)
                            .json(&serde_json::json!({ format!("KEY_{client}"): n.to_string() })),
                        Target::Etcd => {
                            http.post(format!("{url}/v3/kv/put"))
                                .json(&serde_json::json!({
                                    "key": base64(format!("bench/{client}").as_bytes()),
                                    "value": base64(n.to_string().as_bytes()),
                                }))
                        }
                    };
                    let response = request.send().await?;
                    if !response.status().is_success() {
                        bail!(
                            "write failed: {} {}",
                            response.status(),
                            response.text().await?
                        );
                    }
                    response.bytes().await?;
                    if started >= warmup_end {
                        latencies.push(started.elapsed());
                    }
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    if latencies.is_empty() {
        bail!("no writes completed");
    }
    let name = match args.target {
        Target::Spread => "spread",
        Target::Etcd => "etcd",
    };
    println!(
        "{name:<8} clients={} writes={} writes/s={:.0} p50_ms={:.2} p99_ms={:.2}",
        args.clients,
        latencies.len(),
        latencies.len() as f64 / args.seconds as f64,
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
    );
    Ok(())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
