//! `spread monitor --config FILE` (hidden): the per-container monitor the agent starts.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use spread_oci::monitor::{MonitorConfig, StateDir};

#[derive(Args)]
pub struct MonitorArgs {
    /// The monitor config (`monitor.json` in the instance's state dir).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// Runs without an async runtime of ours: the monitor waits for children with `waitpid(-1)`
/// and must stay a small, nearly single-threaded process.
pub fn run(args: MonitorArgs) -> ExitCode {
    let config = match MonitorConfig::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            // Stdio is /dev/null when the agent starts us; the note is where it looks.
            if let Some(dir) = args.config.parent() {
                StateDir::new(dir).note(&format!("error: {e}"));
            }
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = spread_oci::monitor::run(config);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
