//! The container monitor (`spread monitor`) with the real binary and real runc, as root: it
//! logs the container's output, rotates the log, records how the container ended, and keeps
//! the container running and watched when its spawner exits or it is told to terminate.

mod sandbox;

use std::path::Path;
use std::process::Command;

use sandbox::{BIN, Sandbox, signal, wait_until};
use spread_oci::monitor::{
    ExitRecord, LogLimits, LogLine, MonitorConfig, MonitorError, Position, Stream, follow,
    monitor_alive, read_exit, read_logs, read_started, spawn,
};

/// The environment variable that turns `spawner_helper` into a spawner.
const HELPER_CONFIG: &str = "SPREAD_TEST_MONITOR_CONFIG";

async fn start(config: &MonitorConfig) -> u32 {
    spawn(Path::new(BIN), config).await.unwrap().monitor_pid
}

fn exit_of(config: &MonitorConfig) -> ExitRecord {
    wait_until("exit.json", || read_exit(&config.state_dir).unwrap())
}

fn texts(lines: &[LogLine], stream: Stream) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.text.clone())
        .collect()
}

fn wait_for_monitor_exit(config: &MonitorConfig) {
    let gone = || (!monitor_alive(&config.state_dir)).then_some(());
    wait_until("the monitor exits", gone);
}

/// Follows the log until a line equal to `text` arrives.
fn wait_for_line(config: &MonitorConfig, text: &str) {
    let mut position = Position::start();
    wait_until(&format!("log line {text:?}"), || {
        let (lines, next) = follow(&config.state_dir, position).unwrap();
        position = next;
        lines.iter().any(|l| l.text == text).then_some(())
    });
}

#[tokio::test]
async fn stdout_and_stderr_lines_are_logged_in_order_with_a_timestamp_and_their_stream() {
    let sandbox = Sandbox::new();
    let id = sandbox.id("out");
    let args = [
        "out", "first", "err", "warn one", "lines", "3", "err", "warn two", "raw",
    ];
    let config = sandbox.config(&id, &args, None);
    start(&config).await;
    exit_of(&config);

    let raw = std::fs::read_to_string(config.state_dir.join("logs/current.log")).unwrap();
    for line in raw.lines() {
        let (at, rest) = line.split_once(' ').unwrap();
        assert!(
            at.len() == 24 && at.ends_with('Z') && &at[19..20] == ".",
            "{line}"
        );
        assert!(
            rest.starts_with("stdout ") || rest.starts_with("stderr "),
            "{line}"
        );
    }
    let lines = read_logs(&config.state_dir, 100).unwrap();
    assert_eq!(lines.len(), 7, "{raw}");
    let stdout = [
        "first",
        "line 000000",
        "line 000001",
        "line 000002",
        "bad \u{fffd}\u{fffd} end",
    ];
    assert_eq!(texts(&lines, Stream::Stdout), stdout);
    assert_eq!(texts(&lines, Stream::Stderr), ["warn one", "warn two"]);
    assert!(lines.windows(2).all(|w| w[0].at <= w[1].at), "{lines:?}");
    assert_eq!(read_logs(&config.state_dir, 2).unwrap(), lines[5..]);
}

#[tokio::test]
async fn rotation_keeps_at_most_the_configured_files_and_sizes_and_the_newest_lines() {
    let sandbox = Sandbox::new();
    let id = sandbox.id("rotate");
    let limits = LogLimits {
        max_file_bytes: 4096,
        files: 3,
    };
    let args = ["lines", "3000", "long", "3000"];
    let config = sandbox.config_with_log(&id, &args, limits);
    start(&config).await;
    exit_of(&config);

    let logs = config.state_dir.join("logs");
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["current.log", "current.log.1", "current.log.2"]);
    for name in &names {
        let len = std::fs::metadata(logs.join(name)).unwrap().len();
        assert!(len <= 4096, "{name} has {len} bytes");
    }
    let lines = read_logs(&config.state_dir, usize::MAX).unwrap();
    let (numbered, pieces) = lines.split_at(lines.len() - 3);
    let piece_lens: Vec<usize> = pieces.iter().map(|l| l.text.len()).collect();
    assert_eq!(
        piece_lens,
        [1024, 1024, 952],
        "the long line, split at 4096 / 4"
    );
    assert!(pieces.iter().all(|l| l.text.bytes().all(|b| b == b'x')));
    let first: usize = numbered[0].text["line ".len()..].parse().unwrap();
    assert!(first > 0, "the oldest lines are gone");
    let want: Vec<String> = (first..3000).map(|n| format!("line {n:06}")).collect();
    assert_eq!(texts(numbered, Stream::Stdout), want);
}

#[tokio::test]
async fn an_exit_code_is_recorded_without_a_signal_or_an_oom_kill() {
    let sandbox = Sandbox::new();
    let id = sandbox.id("code");
    let config = sandbox.config(&id, &["out", "bye", "exit", "3"], None);
    let spawned = spawn(Path::new(BIN), &config).await.unwrap();
    assert!(spawned.started.pid > 0);
    let exit = exit_of(&config);
    assert_eq!(
        (exit.code, exit.signal, exit.oom_killed),
        (Some(3), None, false)
    );
    assert_eq!(exit.start_error, None);
    assert!(exit.finished_at >= spawned.started.started_at);
    wait_until("the container is deleted", || {
        sandbox.state(&id).is_none().then_some(())
    });
    wait_for_monitor_exit(&config);
    let notes = std::fs::read_to_string(config.state_dir.join("monitor.log"));
    assert!(notes.is_err(), "a clean run notes nothing: {notes:?}");
}

#[tokio::test]
async fn a_container_killed_with_sigkill_is_recorded_with_signal_9() {
    let sandbox = Sandbox::new();
    let id = sandbox.id("killed");
    let config = sandbox.config(&id, &["sleep"], None);
    start(&config).await;
    wait_for_line(&config, "sleeping");
    sandbox.kill(&id, "KILL");
    let exit = exit_of(&config);
    assert_eq!(
        (exit.code, exit.signal, exit.oom_killed),
        (None, Some(9), false)
    );
}

#[tokio::test]
async fn an_oom_kill_is_recorded_as_such() {
    let sandbox = Sandbox::new();
    let id = sandbox.id("oom");
    let config = sandbox.config(&id, &["alloc", "64", "sleep"], Some(32 << 20));
    start(&config).await;
    let exit = exit_of(&config);
    assert_eq!((exit.signal, exit.oom_killed), (Some(9), true), "{exit:?}");
    let lines = read_logs(&config.state_dir, 10).unwrap();
    assert!(!lines.iter().any(|l| l.text == "allocated"), "{lines:?}");
}

/// Not a test of its own: `the_monitor_outlives_the_process_that_spawned_it` runs this test
/// binary again with only this test, as a spawner process that exits once the monitor runs.
#[test]
#[ignore = "a helper process for another test"]
fn spawner_helper() {
    let Ok(config) = std::env::var(HELPER_CONFIG) else {
        return;
    };
    let config = MonitorConfig::load(Path::new(&config)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let spawned = runtime.block_on(spawn(Path::new(BIN), &config)).unwrap();
    println!("monitor_pid={}", spawned.monitor_pid);
}

#[tokio::test]
async fn the_monitor_outlives_the_process_that_spawned_it() {
    let sandbox = Sandbox::new();
    let id = sandbox.id("orphan");
    let config = sandbox.config(&id, &["sleep"], None);
    let config_file = config.write().unwrap();
    let helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "spawner_helper", "--ignored", "--nocapture"])
        .env(HELPER_CONFIG, &config_file)
        .output()
        .unwrap();
    assert!(helper.status.success(), "{helper:?}");
    let stdout = String::from_utf8_lossy(&helper.stdout);
    let monitor_pid: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("monitor_pid="))
        .unwrap_or_else(|| panic!("no monitor pid in {stdout}"))
        .parse()
        .unwrap();

    // The spawner is gone; the monitor leads a session of its own and still watches.
    assert!(monitor_alive(&config.state_dir));
    let stat = std::fs::read_to_string(format!("/proc/{monitor_pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_eq!(fields[3], monitor_pid.to_string(), "session id: {stat}");
    let started = read_started(&config.state_dir).unwrap().unwrap();
    assert_eq!(sandbox.state(&id), Some(("running".into(), started.pid)));
    sandbox.kill(&id, "USR1");
    wait_for_line(&config, "usr1 1");

    sandbox.kill(&id, "KILL");
    assert_eq!(exit_of(&config).signal, Some(9));
    wait_for_monitor_exit(&config);
}

#[tokio::test]
async fn sigterm_sigint_and_sighup_to_the_monitor_leave_the_container_running_and_watched() {
    let sandbox = Sandbox::new();
    let id = sandbox.id("term");
    let config = sandbox.config(&id, &["sleep"], None);
    let monitor = start(&config).await;
    wait_for_line(&config, "sleeping");
    for name in ["TERM", "INT", "HUP"] {
        signal(monitor, name);
    }
    sandbox.kill(&id, "USR1");
    wait_for_line(&config, "usr1 1");
    assert!(monitor_alive(&config.state_dir));
    let started = read_started(&config.state_dir).unwrap().unwrap();
    assert_eq!(sandbox.state(&id), Some(("running".into(), started.pid)));
    assert_eq!(read_exit(&config.state_dir).unwrap(), None);

    let again = spawn(Path::new(BIN), &config).await.unwrap_err();
    assert!(
        matches!(again, MonitorError::AlreadyMonitored { .. }),
        "{again}"
    );
    sandbox.kill(&id, "KILL");
    assert_eq!(exit_of(&config).signal, Some(9));
}

#[tokio::test]
async fn a_program_missing_from_the_bundle_is_recorded_as_a_start_error() {
    let sandbox = Sandbox::new();
    let id = sandbox.id("missing");
    let config = sandbox.config(&id, &[], None);
    let spec_path = config.bundle.join("config.json");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    std::fs::write(
        &spec_path,
        spec.replace("\"/probe\"", "\"/no-such-program\""),
    )
    .unwrap();

    let err = spawn(Path::new(BIN), &config).await.unwrap_err();
    assert!(matches!(err, MonitorError::StartFailed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(id.as_str()) && text.contains("/no-such-program"),
        "{text}"
    );
    let exit = read_exit(&config.state_dir).unwrap().unwrap();
    assert!(exit.start_error.unwrap().contains("/no-such-program"));
    assert_eq!(read_started(&config.state_dir).unwrap(), None);
    assert_eq!(sandbox.state(&id), None, "no container is left");
    wait_for_monitor_exit(&config);
}
