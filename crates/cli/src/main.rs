//! The `spread` binary: `spread up` runs the platform; every other command is the API client.

mod cmd;
mod credentials;
mod env;
mod output;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "spread",
    version,
    about = "Spread: a self-hosted platform to build, run and serve apps"
)]
struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// The app to act on (default: `app` in ./spread.toml).
    #[arg(short, long, global = true, env = env::APP, value_name = "APP")]
    app: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the platform on this machine (state, API; agent, gateway and builder as they land).
    Up(cmd::up::UpArgs),
    /// Store the API URL and token for the CLI.
    Login(cmd::login::LoginArgs),
    /// Create, list, show and destroy apps.
    #[command(subcommand)]
    Apps(cmd::apps::AppsCommand),
    /// Show an app's config vars, or set and unset them (each change makes a release).
    Config(cmd::config::ConfigArgs),
    /// Build a project directory and release it (`spread deploy [DIR] -a APP`), or release an
    /// image from a registry (`spread deploy --image REF -a APP`).
    Deploy(cmd::deploy::DeployArgs),
    /// Push a release's image to a registry: `spread images push -a APP REF`.
    #[command(subcommand)]
    Images(cmd::images::ImagesCommand),
    /// Show an app's releases, newest first, with their status; the live one serves.
    Releases,
    /// Make a new release from an earlier one (its image, commands and config):
    /// `spread rollback v3 -a APP`; without a version, the deployed release before the live one.
    Rollback(cmd::rollback::RollbackArgs),
    /// Show the domains an app is served at, or add and remove custom ones:
    /// `spread domains add www.example.com -a APP`.
    Domains(cmd::domains::DomainsArgs),
    /// Show or set the check new web instances pass before a release serves:
    /// `spread health set /up --timeout 30s -a APP`.
    Health(cmd::health::HealthArgs),
    /// Show or change how many instances of each process type run, and their limits:
    /// `spread scale web=2 worker=1 --memory 512M --cpu 0.5`.
    Scale(cmd::scale::ScaleArgs),
    /// Show an app's instances: state, uptime, CPU and memory.
    Ps,
    /// Print what an app's instances wrote; `-f` keeps following.
    Logs(cmd::logs::LogsArgs),
    /// Show the platform's version, data dir, Raft role and term, and uptime.
    Status,
    /// Watch one container for the agent (started by the agent, not by hand).
    #[command(hide = true)]
    Monitor(cmd::monitor::MonitorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        // Before any runtime starts: the monitor is a small process of its own.
        Command::Monitor(args) => return cmd::monitor::run(args),
        command => command,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = cmd::Context {
        json: cli.json,
        app: cli.app,
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Up(args) => cmd::up::run(args).await,
            Command::Login(args) => cmd::login::run(&ctx, args).await,
            Command::Apps(command) => cmd::apps::run(&ctx, command).await,
            Command::Config(args) => cmd::config::run(&ctx, args).await,
            Command::Deploy(args) => cmd::deploy::run(&ctx, args).await,
            Command::Images(command) => cmd::images::run(&ctx, command).await,
            Command::Releases => cmd::releases::run(&ctx).await,
            Command::Rollback(args) => cmd::rollback::run(&ctx, args).await,
            Command::Domains(args) => cmd::domains::run(&ctx, args).await,
            Command::Health(args) => cmd::health::run(&ctx, args).await,
            Command::Scale(args) => cmd::scale::run(&ctx, args).await,
            Command::Ps => cmd::ps::run(&ctx).await,
            Command::Logs(args) => cmd::logs::run(&ctx, args).await,
            Command::Status => cmd::status::run(&ctx).await,
            Command::Monitor(_) => unreachable!("the monitor runs before the runtime starts"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
