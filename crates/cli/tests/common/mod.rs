//! A real `spread up` in a temp dir with its own HOME, and helpers to run CLI commands against it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_spread");

pub struct Platform {
    pub dir: tempfile::TempDir,
    pub url: String,
    /// The admin token printed by the first start.
    pub token: String,
    child: Option<Child>,
    extra_args: Vec<String>,
}

/// What one start of `spread up` printed before it was ready.
pub struct Started {
    child: Child,
    url: String,
    token: Option<String>,
}

impl Platform {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let started = launch(dir.path(), &extra_args, "127.0.0.1:0");
        let token = started
            .token
            .expect("the first start prints an admin token");
        Self {
            dir,
            url: started.url,
            token,
            child: Some(started.child),
            extra_args,
        }
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
        self.child = Some(started.child);
        started.token
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The token with its last secret digit changed: right id, wrong secret.
pub fn wrong_secret(token: &str) -> String {
    let (head, last) = token.split_at(token.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
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
        .args(extra_args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
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
    // A first start prints the token block right after the URL line; a restart does not.
    let mut token = None;
    if let Ok(("token", value)) = rx.recv_timeout(Duration::from_millis(300)) {
        token = Some(value);
        let _ = rx.recv_timeout(Duration::from_secs(5));
    }
    Started { child, url, token }
}
