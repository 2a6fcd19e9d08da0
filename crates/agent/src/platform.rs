//! What the platform writes into an instance's log when its state changes, so a crash loop or
//! an OOM kill shows in `spread logs` beside the app's own output (as Heroku's
//! `heroku[web.1]: State changed from up to crashed` does). Pure: statuses in, lines out.

use std::time::Duration;

use crate::machine::{Exit, InstanceSpec, InstanceState, InstanceStatus};

/// The lines for the change from `before` (`None` for an instance just assigned) to `after`,
/// at `now` in the machine's clock.
pub fn status_lines(
    spec: &InstanceSpec,
    before: Option<&InstanceStatus>,
    after: &InstanceStatus,
    now: Duration,
) -> Vec<String> {
    let mut lines = Vec::new();
    let state_before = before.map(|b| b.state);
    if let (Some(from), Some(exit)) = (state_before, after.last_exit)
        && process_ended(from, after.state)
    {
        lines.push(exit_line(exit, spec.memory_bytes));
    }
    if state_before != Some(after.state) {
        lines.push(match state_before {
            None => format!("State changed to {}", after.state.as_str()),
            Some(from) => format!(
                "State changed from {} to {}",
                from.as_str(),
                after.state.as_str()
            ),
        });
        if after.state == InstanceState::Starting {
            lines.push(format!(
                "Starting process with command {} (release v{})",
                command_line(&spec.argv),
                spec.release
            ));
        }
        if let Some(at) = after.restart_at {
            lines.push(format!("Restarting in {}", seconds(at.saturating_sub(now))));
        }
    }
    lines
}

/// Whether going from `from` to `to` means a process ended: a live (or starting) one became
/// crashed, OOM-killed or stopped, or one being stopped for a new spec is starting again. An
/// exit equal to the one before is still a new exit, so the states decide, not `last_exit`.
fn process_ended(from: InstanceState, to: InstanceState) -> bool {
    use InstanceState::*;
    matches!(
        (from, to),
        (Starting | Running | Stopping, Crashed | OomKilled | Stopped) | (Stopping, Starting)
    )
}

/// The line for a start that failed before the process ran.
pub fn start_failed_line(reason: &str) -> String {
    format!("Could not start: {reason}")
}

fn exit_line(exit: Exit, memory_limit: Option<u64>) -> String {
    if exit.oom_killed {
        return match memory_limit {
            Some(limit) => format!(
                "Process killed: out of memory (limit {}); raise it with `spread scale TYPE=N --memory SIZE`",
                mebibytes(limit)
            ),
            None => "Process killed: out of memory".to_owned(),
        };
    }
    match (exit.code, exit.signal) {
        (Some(code), _) => format!("Process exited with status {code}"),
        (None, Some(signal)) => format!("Process killed by signal {signal}"),
        (None, None) => "Process ended before it ran".to_owned(),
    }
}

/// `/app/server --port 8080`, each argument quoted when it holds a space or a quote.
fn command_line(argv: &[String]) -> String {
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '\t', '\'', '"']) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a.clone()
            }
        })
        .collect();
    format!("`{}`", quoted.join(" "))
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn mebibytes(bytes: u64) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    if mib.fract() == 0.0 {
        format!("{mib:.0} MiB")
    } else {
        format!("{mib:.1} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::InstanceState::*;

    fn spec() -> InstanceSpec {
        InstanceSpec {
            id: "shop-web-1-0123456789ab".into(),
            app: spread_core::AppName::parse("shop").unwrap(),
            app_id: spread_core::AppId(uuid::Uuid::nil()),
            release: 3,
            process: spread_core::ProcessType::parse("web").unwrap(),
            index: 1,
            image_digest: "sha256:00".into(),
            argv: vec!["/app/server".into(), "--greeting".into(), "hi there".into()],
            env: Vec::new(),
            working_dir: None,
            user: None,
            memory_bytes: Some(64 << 20),
            cpu_millis: None,
        }
    }

    fn status(state: InstanceState) -> InstanceStatus {
        InstanceStatus {
            id: spec().id,
            state,
            restarts: 0,
            last_exit: None,
            running_since: None,
            restart_at: None,
            healthy: false,
        }
    }

    fn exit(code: Option<i32>, signal: Option<i32>, oom_killed: bool) -> Option<Exit> {
        Some(Exit {
            code,
            signal,
            oom_killed,
        })
    }

    #[test]
    fn a_new_instance_says_it_starts_and_with_which_command() {
        let lines = status_lines(&spec(), None, &status(Starting), Duration::ZERO);
        assert_eq!(
            lines,
            [
                "State changed to starting",
                "Starting process with command `/app/server --greeting 'hi there'` (release v3)",
            ]
        );
    }

    #[test]
    fn a_crash_gives_the_exit_status_the_new_state_and_when_it_restarts() {
        let before = status(Running);
        let after = InstanceStatus {
            last_exit: exit(Some(1), None, false),
            restart_at: Some(Duration::from_millis(10_400)),
            healthy: false,
            ..status(Crashed)
        };
        let lines = status_lines(&spec(), Some(&before), &after, Duration::from_secs(10));
        assert_eq!(
            lines,
            [
                "Process exited with status 1",
                "State changed from running to crashed",
                "Restarting in 0.4 s",
            ]
        );
    }

    #[test]
    fn an_oom_kill_names_the_limit_and_how_to_raise_it() {
        let after = InstanceStatus {
            last_exit: exit(None, Some(9), true),
            restart_at: Some(Duration::from_millis(100)),
            healthy: false,
            ..status(OomKilled)
        };
        let lines = status_lines(&spec(), Some(&status(Running)), &after, Duration::ZERO);
        assert_eq!(
            lines[0],
            "Process killed: out of memory (limit 64 MiB); raise it with `spread scale TYPE=N --memory SIZE`"
        );
        assert_eq!(lines[1], "State changed from running to oom-killed");
    }

    #[test]
    fn a_signal_without_oom_and_a_stop_are_told_apart() {
        let after = InstanceStatus {
            last_exit: exit(None, Some(15), false),
            ..status(Stopped)
        };
        let lines = status_lines(&spec(), Some(&status(Stopping)), &after, Duration::ZERO);
        assert_eq!(
            lines,
            [
                "Process killed by signal 15",
                "State changed from stopping to stopped"
            ]
        );
    }

    #[test]
    fn every_crash_of_a_loop_gets_its_exit_line_even_with_the_same_status() {
        let exited = exit(Some(3), None, false);
        let running = InstanceStatus {
            last_exit: exited,
            restarts: 1,
            ..status(Running)
        };
        let crashed = InstanceStatus {
            last_exit: exited,
            restarts: 1,
            restart_at: Some(Duration::from_millis(200)),
            healthy: false,
            ..status(Crashed)
        };
        let lines = status_lines(&spec(), Some(&running), &crashed, Duration::ZERO);
        assert_eq!(lines[0], "Process exited with status 3");
    }

    #[test]
    fn a_report_that_changes_nothing_writes_nothing() {
        let running = InstanceStatus {
            last_exit: exit(Some(0), None, false),
            ..status(Running)
        };
        assert!(status_lines(&spec(), Some(&running), &running, Duration::ZERO).is_empty());
    }

    #[test]
    fn a_restart_after_the_backoff_shows_the_command_again() {
        let crashed = InstanceStatus {
            last_exit: exit(Some(1), None, false),
            restart_at: Some(Duration::from_secs(1)),
            healthy: false,
            ..status(Crashed)
        };
        let starting = InstanceStatus {
            last_exit: crashed.last_exit,
            restarts: 1,
            ..status(Starting)
        };
        let lines = status_lines(&spec(), Some(&crashed), &starting, Duration::from_secs(1));
        assert_eq!(lines[0], "State changed from crashed to starting");
        assert!(lines[1].starts_with("Starting process with command"));
    }
}
