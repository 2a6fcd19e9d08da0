//! A real `docker-registry` on 127.0.0.1 with a random port and temp storage, killed on drop.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use spread_image::{Digest, ImageReference};

const BINARY: &str = "/usr/bin/docker-registry";
/// How long a registry may take to answer `/v2/` before the test gives up; not a measurement.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

pub struct LocalRegistry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl LocalRegistry {
    /// A registry anyone may pull from and push to.
    pub fn start() -> Self {
        Self::start_with_auth(None)
    }

    /// A registry that requires HTTP basic auth checked against one htpasswd line.
    pub fn start_with_htpasswd(line: &str) -> Self {
        Self::start_with_auth(Some(line))
    }

    fn start_with_auth(htpasswd: Option<&str>) -> Self {
        // Another process may take the free port between our probe and the registry's bind;
        // then the registry exits and we try another port.
        for _ in 0..5 {
            if let Some(registry) = Self::try_start(htpasswd) {
                return registry;
            }
        }
        panic!("docker-registry did not start after five attempts");
    }

    fn try_start(htpasswd: Option<&str>) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.path().join("storage");
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: spread-test-only\n",
            storage.display()
        );
        if let Some(line) = htpasswd {
            let path = dir.path().join("htpasswd");
            fs::write(&path, format!("{line}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: spread-test\n    path: {}\n",
                path.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {BINARY} (apt-get install docker-registry): {e}")
            });
        let mut registry = Self { child, dir, port };
        registry.wait_until_ready().then_some(registry)
    }

    /// Polls `GET /v2/` until the registry answers; false if it exited first.
    fn wait_until_ready(&mut self) -> bool {
        let deadline = Instant::now() + STARTUP_LIMIT;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if let Some(status) = self.probe() {
                assert!(
                    status.contains(" 200 ") || status.contains(" 401 "),
                    "unexpected answer from the registry: {status}"
                );
                return true;
            }
            sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer in time; log:\n{}",
            self.log()
        );
    }

    fn probe(&self) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let request = format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port);
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        answer.lines().next().map(str::to_owned)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>/<name>`, parsed.
    pub fn reference(&self, name: &str) -> ImageReference {
        ImageReference::parse(&format!("127.0.0.1:{}/{name}", self.port)).unwrap()
    }

    /// Where the registry's filesystem driver keeps the bytes of `digest`.
    pub fn blob_data_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
