//! A real `spread up` in a temp dir with its own HOME, and helpers to run CLI commands against it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use spread_testkit::agent::AgentSandbox;

pub const BIN: &str = env!("CARGO_BIN_EXE_spread");

pub struct Platform {
    /// Removes what the node's containers left, after the daemon is gone; dropped before `dir`.
    agent: Option<AgentSandbox>,
    pub dir: tempfile::TempDir,
    pub url: String,
    /// Where the app gateway listens (a port of its own per start).
    pub gateway: std::net::SocketAddr,
    /// The admin token printed by the first start.
    pub token: String,
    child: Option<Child>,
    extra_args: Vec<String>,
}

/// What one start of `spread up` printed before it was ready.
pub struct Started {
    child: Child,
    url: String,
    gateway: std::net::SocketAddr,
    token: Option<String>,
}

impl Platform {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A platform that runs no containers (the API, state and CLI only).
    pub fn start_with(extra_args: &[&str]) -> Self {
        let mut args = vec!["--no-agent".to_owned()];
        args.extend(extra_args.iter().map(|s| s.to_string()));
        Self::launch_in(tempfile::tempdir().unwrap(), args)
    }

    /// A platform whose node agent runs containers, on a network, cgroup parent and uid
    /// range of its own, all removed when it is dropped.
    pub fn with_agent() -> Self {
        Self::with_agent_args(&[])
    }

    /// Like `with_agent`, with more flags for `spread up`.
    pub fn with_agent_args(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = AgentSandbox::new(dir.path());
        let mut args = sandbox.args();
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let mut platform = Self::launch_in(dir, args);
        platform.agent = Some(sandbox);
        platform
    }

    fn launch_in(dir: tempfile::TempDir, extra_args: Vec<String>) -> Self {
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let started = launch(dir.path(), &extra_args, "127.0.0.1:0");
        let token = started
            .token
            .expect("the first start prints an admin token");
        Self {
            agent: None,
            dir,
            url: started.url,
            gateway: started.gateway,
            token,
            child: Some(started.child),
            extra_args,
        }
    }

    /// The agent's sandbox, for tests that look at what containers leave on the host.
    pub fn sandbox(&self) -> &AgentSandbox {
        self.agent.as_ref().expect("started with_agent")
    }

    /// Polls `check` until it gives a value; on giving up, panics with `what` and the daemon's
    /// log as it is then.
    pub fn wait_until<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + spread_testkit::runc::PATIENCE;
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gave up waiting: {what}; daemon log:\n{}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the daemon logged so far.
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `spread ARGS` as the user whose CLI `spread up` logged in.
    pub fn spread(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(self.dir.path());
        isolate_env(&mut cmd, &self.home());
        cmd
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.spread(args);
        assert!(
            out.status.success(),
            "spread {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail and returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.spread(args);
        assert!(
            !out.status.success(),
            "spread {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn client(&self) -> spread_client::Client {
        spread_client::Client::new(&self.url, Some(self.token.clone())).unwrap()
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> Output {
        let child = self.child.take().expect("platform is running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        child.wait_with_output().unwrap()
    }

    /// Starts again on the same data dir and address; returns the token printed, if any.
    pub fn restart(&mut self) -> Option<String> {
        self.restart_with(&[])
    }

    pub fn restart_with(&mut self, more_args: &[&str]) -> Option<String> {
        assert!(self.child.is_none(), "stop or kill the platform first");
        let addr = self.url.trim_start_matches("http://").to_owned();
        let mut args = self.extra_args.clone();
        args.extend(more_args.iter().map(|s| s.to_string()));
        let started = launch(self.dir.path(), &args, &addr);
        assert_eq!(started.url, self.url);
        self.gateway = started.gateway;
        self.child = Some(started.child);
        started.token
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.kill9();
        if let Some(agent) = self.agent.take() {
            agent.clean_up(&self.data_dir());
        }
    }
}

/// The token with its last secret digit changed: right id, wrong secret.
pub fn wrong_secret(token: &str) -> String {
    let (head, last) = token.split_at(token.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

/// The daemon's stderr, appended to `daemon.log` in the test dir.
fn daemon_log(dir: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

fn isolate_env(cmd: &mut Command, home: &Path) {
    cmd.env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("SPREAD_URL")
        .env_remove("SPREAD_TOKEN")
        .env_remove("SPREAD_APP")
        .env("NO_COLOR", "1");
}

fn launch(dir: &Path, extra_args: &[String], addr: &str) -> Started {
    let mut cmd = Command::new(BIN);
    cmd.arg("up")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--api-listen", addr])
        .args(["--http-listen", "127.0.0.1:0"])
        .args(extra_args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(daemon_log(dir));
    isolate_env(&mut cmd, &dir.join("home"));
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    // Read stdout on a thread so the pipe never fills; report the URL and token as they appear.
    std::thread::spawn(move || {
        let mut token_next = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Spread is up: API on ") {
                let url = rest.split(',').next().unwrap().to_owned();
                let _ = tx.send(("url", url));
            } else if let Some(rest) = line.strip_prefix("Gateway on ") {
                let addr = rest.split(':').take(2).collect::<Vec<_>>().join(":");
                let _ = tx.send(("gateway", addr));
            } else if token_next {
                let _ = tx.send(("token", line.trim().to_owned()));
                token_next = false;
            } else if line.starts_with("Admin API token") {
                token_next = true;
            } else if line.starts_with("To log in elsewhere") {
                let _ = tx.send(("done", String::new()));
            }
        }
        let _ = tx.send(("eof", String::new()));
    });
    let (kind, url) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("spread up did not start within 60 s");
    assert_eq!(kind, "url", "spread up exited before it was ready");
    let (kind, gateway) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("spread up printed where its gateway is");
    assert_eq!(kind, "gateway", "the gateway line follows the API line");
    let gateway = gateway.parse().expect("the gateway line has an address");
    // A first start prints the token block right after the URL line; a restart does not.
    let mut token = None;
    if let Ok(("token", value)) = rx.recv_timeout(Duration::from_millis(300)) {
        token = Some(value);
        let _ = rx.recv_timeout(Duration::from_secs(5));
    }
    Started {
        child,
        url,
        gateway,
        token,
    }
}
