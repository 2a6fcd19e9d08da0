//! Running a host program and turning its failure into a `HostError` that names the command.

use std::ffi::OsStr;
use std::io;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::HostError;

/// Runs `program args`, with `stdin` written to it, and returns its stdout. Messages are
/// asked for in English (`LC_ALL=C`) because some outcomes are told apart by them.
pub(crate) async fn run(
    program: &str,
    args: &[&OsStr],
    stdin: Option<&[u8]>,
) -> Result<String, HostError> {
    let command = describe(program, args);
    let spawn_error = |source: io::Error| HostError::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(stdin.map_or_else(Stdio::null, |_| Stdio::piped()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A program that exits without reading says why on stderr, reported below.
        match pipe.write_all(input).await {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(spawn_error(e)),
            _ => {}
        }
    }
    let output = child.wait_with_output().await.map_err(spawn_error)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        let stderr = if stderr.is_empty() {
            output.status.to_string()
        } else {
            stderr
        };
        return Err(HostError::Failed { command, stderr });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The command as a person would type it, for error messages.
fn describe(program: &str, args: &[&OsStr]) -> String {
    std::iter::once(OsStr::new(program))
        .chain(args.iter().copied())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
