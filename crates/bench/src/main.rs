//! `spread-bench`: Spread's benchmark programs, each run beside its anchor by a script in
//! `bench/`. `state-writes` drives committed writes at Spread or etcd; `instance-start` times
//! instance starts against plain `runc run` and reads the daemon's memory.

mod daemon;
mod instance_start;
mod plain_runc;
mod state_writes;
mod stats;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Spread's benchmarks; see bench/ for the scripts that run them")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Concurrent committed writes against Spread or etcd (bench/state-writes.sh).
    StateWrites(state_writes::StateWrites),
    /// Instance start latency against plain `runc run`, and daemon RSS (bench/instance-start.sh).
    /// Needs root, runc, iproute2, nftables, gcc and docker-registry.
    InstanceStart(instance_start::InstanceStart),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Bench::StateWrites(args) => state_writes::run(args),
        Bench::InstanceStart(args) => instance_start::run(args),
    }
}
