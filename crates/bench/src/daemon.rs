//! A `spread up` whose node agent runs in an `AgentSandbox`: its own temp dir, network, cgroup
//! parent and uid range, all removed when it is dropped, also when the benchmark fails.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use spread_testkit::agent::AgentSandbox;

/// How long `spread up` may take to say it is up before the benchmark gives up.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);

pub struct Daemon {
    child: Option<Child>,
    pub url: String,
    pub token: String,
    /// Removes what the node's containers left, after the daemon is gone.
    sandbox: Option<AgentSandbox>,
    data_dir: PathBuf,
    /// Removed last, after the cleanup (fields drop after `Drop::drop`).
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `binary up` on a fresh data dir and waits for its URL and first admin token.
    /// Its stderr (its log, `SPREAD_LOG` is passed through) goes to `log`, or nowhere.
    pub fn start(binary: &Path, log: Option<&Path>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("spread-bench.")
            .tempdir()
            .context("make a temp dir")?;
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home)?;
        let mut daemon = Self {
            child: None,
            url: String::new(),
            token: String::new(),
            sandbox: Some(AgentSandbox::new(dir.path())),
            data_dir: dir.path().join("data"),
            _dir: dir,
        };
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::File::create(path)
                    .with_context(|| format!("create {}", path.display()))?,
            ),
            None => Stdio::null(),
        };
        let mut child = Command::new(binary)
            .arg("up")
            .arg("--data-dir")
            .arg(&daemon.data_dir)
            .args(["--api-listen", "127.0.0.1:0"])
            .args(["--http-listen", "127.0.0.1:0"])
            .args(daemon.sandbox().args())
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env("NO_COLOR", "1")
            // Its own process group, so a Ctrl-C reaches only the benchmark, which cleans up.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("run {}", binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        daemon.child = Some(child);
        let (url, token) = read_banner(stdout)?;
        daemon.url = url;
        daemon.token = token;
        Ok(daemon)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("started").id()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn sandbox(&self) -> &AgentSandbox {
        self.sandbox.as_ref().expect("present until dropped")
    }

    pub fn client(&self) -> Result<spread_client::Client> {
        Ok(spread_client::Client::new(
            &self.url,
            Some(self.token.clone()),
        )?)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(sandbox) = self.sandbox.take() {
            sandbox.clean_up(&self.data_dir);
        }
    }
}

/// Reads `Spread is up: API on URL, ...` and, on a first start, the token on the line after
/// `Admin API token`, from `spread up`'s stdout; keeps reading on a thread so the pipe never
/// fills.
fn read_banner(stdout: impl std::io::Read + Send + 'static) -> Result<(String, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut token_next = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Spread is up: API on ") {
                let url = rest.split(',').next().unwrap_or_default().to_owned();
                let _ = tx.send(Some(("url", url)));
            } else if token_next {
                let _ = tx.send(Some(("token", line.trim().to_owned())));
                token_next = false;
            } else if line.starts_with("Admin API token") {
                token_next = true;
            }
        }
        let _ = tx.send(None);
    });
    let (mut url, mut token) = (None, None);
    while url.is_none() || token.is_none() {
        match rx.recv_timeout(STARTUP_LIMIT) {
            Ok(Some(("url", value))) => url = Some(value),
            Ok(Some((_, value))) => token = Some(value),
            Ok(None) => bail!("spread up exited before it printed its URL and admin token"),
            Err(_) => {
                bail!("spread up did not print its URL and admin token within {STARTUP_LIMIT:?}")
            }
        }
    }
    Ok((url.unwrap_or_default(), token.unwrap_or_default()))
}
