//! Serving through the gateway, end to end: a Python app built from source by the real builder,
//! run in real containers and reached through `spread up`'s gateway by host name. A load of
//! keep-alive GETs runs while a new release rolls out, the app scales 1→3→1, one of three
//! instances is killed and a rollback runs, and no request may fail. Also: WebSocket, HTTP/2,
//! the 404 and 503 pages, custom domains, a rollout that never becomes healthy, the release
//! command, router logs and metrics, and idle connections that must not stop anyone.
//! Needs root, runc, debootstrap, iproute2, nftables and the builder roots (see build.rs).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Platform;
use serde_json::Value;

/// The builder roots shared by test runs (as in build.rs).
const BUILDER_CACHE: &str = "/var/cache/spread-test/builder";

/// Concurrent keep-alive connections of the load.
const LOAD_WORKERS: usize = 4;

fn platform() -> Platform {
    Platform::with_agent_args(&["--builder-cache", BUILDER_CACHE])
}

/// A copy of the test app in the platform's temp dir, to change and deploy.
fn app_source(p: &Platform, name: &str) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gateway_app");
    let to = p.dir.path().join(format!("src-{name}"));
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

/// Creates `app` and deploys `dir` to it; returns the deploy's output.
fn create_and_deploy(p: &Platform, app: &str, dir: &Path) -> String {
    p.ok(&["apps", "create", app]);
    p.ok(&["deploy", dir.to_str().unwrap(), "-a", app])
}

fn ps(p: &Platform, app: &str) -> Vec<Value> {
    serde_json::from_str(&p.ok(&["ps", "-a", app, "--json"])).unwrap()
}

/// Waits until the app has exactly `n` instances, all running and healthy, and returns them.
fn healthy(p: &Platform, app: &str, n: usize) -> Vec<Value> {
    p.wait_until(&format!("{n} healthy instances of {app}"), || {
        let all = ps(p, app);
        let ready = all.len() == n
            && all
                .iter()
                .all(|i| i["state"] == "running" && i["healthy"] == true);
        ready.then_some(all)
    })
}

/// One HTTP/1.1 answer: status, headers (lowercase names) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `v2` from the test app's `release=v2 …`.
    fn release(&self) -> Option<&str> {
        self.body.strip_prefix("release=")?.split(' ').next()
    }
}

/// A keep-alive HTTP/1.1 connection to the gateway.
struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(gateway: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(gateway)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    fn get(&mut self, host: &str, path: &str, extra: &str) -> std::io::Result<Answer> {
        self.send(&format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"
        ))
    }

    /// A POST, which the gateway never retries: it succeeds only if the instance that took it
    /// answers, so one stopped under it fails.
    fn post(&mut self, host: &str, path: &str) -> std::io::Result<Answer> {
        self.send(&format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\n\r\nbody"
        ))
    }

    fn send(&mut self, request: &str) -> std::io::Result<Answer> {
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if status != 101 {
            self.reader.read_exact(&mut body)?;
        }
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// One GET on a connection of its own.
fn get(gateway: SocketAddr, host: &str, path: &str) -> Answer {
    Conn::open(gateway)
        .and_then(|mut c| c.get(host, path, ""))
        .unwrap_or_else(|e| panic!("GET http://{host}{path} through {gateway}: {e}"))
}

/// Waits until the app answers through the gateway from `release`.
fn serves(p: &Platform, host: &str, release: &str) -> Answer {
    p.wait_until(&format!("{host} answering from {release}"), || {
        let answer = Conn::open(p.gateway)
            .and_then(|mut c| c.get(host, "/", ""))
            .ok()?;
        (answer.status == 200 && answer.release() == Some(release)).then_some(answer)
    })
}

/// When a request ended, whether it may be retried (a GET), and the release that answered it
/// or why it failed.
type Outcomes = Arc<Mutex<Vec<(Instant, bool, Result<String, String>)>>>;

/// Requests sent without pause by a few keep-alive connections, every outcome kept: GETs of
/// `/`, and on one connection slow POSTs, which are in flight most of the time.
struct Load {
    app: String,
    stop: Arc<AtomicBool>,
    outcomes: Outcomes,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(gateway: SocketAddr, host: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes: Outcomes = Arc::default();
        let workers = (0..LOAD_WORKERS)
            .map(|worker| {
                let (stop, outcomes, host) = (stop.clone(), outcomes.clone(), host.to_owned());
                std::thread::spawn(move || {
                    let mut conn = None;
                    while !stop.load(Ordering::Relaxed) {
                        let answer = match conn.take() {
                            Some(c) => Ok(c),
                            None => Conn::open(gateway),
                        }
                        .and_then(|mut c| {
                            let answer = match worker {
                                0 => c.post(&host, "/slow"),
                                _ => c.get(&host, "/", ""),
                            };
                            answer.map(|a| (c, a))
                        });
                        let outcome = match answer {
                            Ok((c, a)) if a.status == 200 => {
                                if a.header("connection") != Some("close") {
                                    conn = Some(c);
                                }
                                Ok(a.release().unwrap_or("-").to_owned())
                            }
                            Ok((_, a)) => Err(format!(
                                "{} {} {}",
                                if worker == 0 { "POST" } else { "GET" },
                                a.status,
                                a.body.trim()
                            )),
                            Err(e) => {
                                Err(format!("{} {e}", if worker == 0 { "POST" } else { "GET" }))
                            }
                        };
                        let idempotent = worker != 0;
                        outcomes
                            .lock()
                            .unwrap()
                            .push((Instant::now(), idempotent, outcome));
                    }
                })
            })
            .collect();
        Self {
            app: host.split('.').next().unwrap().to_owned(),
            stop,
            outcomes,
            workers,
        }
    }

    /// Runs `phase` under the load and returns how many requests it saw, after checking that
    /// none of them failed.
    fn during(&self, p: &Platform, name: &str, phase: impl FnOnce()) -> usize {
        self.check(p, name, false, phase)
    }

    /// Like `during`, counting only the requests that may be retried (GETs): a POST in flight
    /// on an instance that is killed fails, as it would anywhere.
    fn during_idempotent(&self, p: &Platform, name: &str, phase: impl FnOnce()) -> usize {
        self.check(p, name, true, phase)
    }

    fn check(
        &self,
        p: &Platform,
        name: &str,
        idempotent_only: bool,
        phase: impl FnOnce(),
    ) -> usize {
        let began = Instant::now();
        phase();
        // Requests sent right at the end belong to the phase too.
        std::thread::sleep(Duration::from_millis(300));
        let outcomes = self.outcomes.lock().unwrap();
        let seen: Vec<&Result<String, String>> = outcomes
            .iter()
            .filter(|(at, idempotent, _)| *at >= began && (*idempotent || !idempotent_only))
            .map(|(_, _, o)| o)
            .collect();
        let failed: Vec<&String> = seen.iter().filter_map(|o| o.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{name}: {} of {} requests failed, e.g. {:?}; router log:\n{}",
            failed.len(),
            seen.len(),
            &failed[..failed.len().min(5)],
            p.ok(&["logs", "-a", &self.app, "--source", "router", "-n", "100"])
        );
        assert!(
            seen.len() > 20,
            "{name}: the load kept going ({} requests)",
            seen.len()
        );
        seen.len()
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.join().unwrap();
        }
    }
}

/// The host pids in the instance's cgroup.
fn pids_of(p: &Platform, instance: &str) -> Vec<u32> {
    let relative = format!(
        "{}/{instance}",
        p.sandbox().cgroup_parent.trim_start_matches('/')
    );
    ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
        .iter()
        .find_map(|root| {
            std::fs::read_to_string(Path::new(root).join(&relative).join("cgroup.procs")).ok()
        })
        .map(|text| text.lines().filter_map(|l| l.parse().ok()).collect())
        .unwrap_or_default()
}

#[test]
fn no_request_fails_while_releases_roll_out_scale_crash_and_roll_back() {
    let p = platform();
    let source = app_source(&p, "shop");
    let out = create_and_deploy(&p, "shop", &source);
    assert!(out.contains("Rolling out v1"), "{out}");
    assert!(out.contains("Released v1 of shop"), "{out}");
    let host = "shop.localhost";
    serves(&p, host, "v1");

    let load = Load::start(p.gateway, host);

    // (a) A code change rolls out: the deploy returns once v2 serves.
    load.during(&p, "rollout", || {
        let mut app = std::fs::OpenOptions::new()
            .append(true)
            .open(source.join("app.py"))
            .unwrap();
        writeln!(app, "# a code change").unwrap();
        let out = p.ok(&["deploy", source.to_str().unwrap(), "-a", "shop"]);
        assert!(out.contains("Released v2 of shop"), "{out}");
        assert_eq!(get(p.gateway, host, "/").release(), Some("v2"));
    });
    healthy(&p, "shop", 1);

    // (b) 1 → 3 → 1: instances get traffic once healthy and are drained before they stop.
    load.during(&p, "scale 1 to 3 to 1", || {
        p.ok(&["scale", "web=3", "-a", "shop"]);
        healthy(&p, "shop", 3);
        p.wait_until("traffic reaching all three instances", || {
            let instances: std::collections::BTreeSet<String> = (0..30)
                .map(|_| get(p.gateway, host, "/").body)
                .filter_map(|b| Some(b.split(' ').nth(1)?.to_owned()))
                .collect();
            (instances.len() == 3).then_some(())
        });
        p.ok(&["scale", "web=1", "-a", "shop"]);
        healthy(&p, "shop", 1);
    });

    // (c) One of three killed: its requests are retried on the others.
    p.ok(&["scale", "web=3", "-a", "shop"]);
    healthy(&p, "shop", 3);
    load.during_idempotent(&p, "one instance killed", || {
        let victim = ps(&p, "shop")[1]["id"].as_str().unwrap().to_owned();
        let pids = pids_of(&p, &victim);
        assert_eq!(pids.len(), 1, "{pids:?}");
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pids[0].to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        p.wait_until("the killed instance restarted and healthy", || {
            let all = ps(&p, "shop");
            let it = all.iter().find(|i| i["id"] == victim.as_str())?;
            (it["restarts"] == 1 && it["healthy"] == true).then_some(())
        });
    });

    // (d) A rollback makes v3 with v1's image; it rolls out like any release.
    load.during(&p, "rollback", || {
        let out = p.ok(&["rollback", "-a", "shop"]);
        assert!(out.contains("v3"), "{out}");
        serves(&p, host, "v3");
        let releases: Value =
            serde_json::from_str(&p.ok(&["releases", "-a", "shop", "--json"])).unwrap();
        let v3 = releases
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == 3)
            .unwrap();
        assert_eq!(v3["description"], "Rollback to v1");
        p.wait_until("v3 deployed", || {
            let releases: Value =
                serde_json::from_str(&p.ok(&["releases", "-a", "shop", "--json"])).ok()?;
            let v3 = releases
                .as_array()?
                .iter()
                .find(|r| r["version"] == 3)?
                .clone();
            (v3["status"] == "deployed").then_some(())
        });
    });
    load.stop();
}

#[test]
fn the_gateway_routes_by_host_and_explains_what_it_cannot_serve() {
    let p = platform();
    let source = app_source(&p, "blog");
    p.ok(&["apps", "create", "empty"]);
    create_and_deploy(&p, "blog", &source);
    let answer = serves(&p, "blog.localhost", "v1");

    // What the gateway adds to every request.
    assert!(
        answer.body.contains("X-Forwarded-For=127.0.0.1"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("X-Forwarded-Proto=http"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("X-Forwarded-Host=blog.localhost"),
        "{}",
        answer.body
    );
    let id = answer
        .header("x-request-id")
        .expect("a request id comes back");
    assert!(
        answer.body.contains(&format!("X-Request-Id={id}")),
        "{}",
        answer.body
    );

    // Unknown host: 404, naming it. An app with nothing running: 503, naming it.
    let unknown = get(p.gateway, "nowhere.localhost", "/");
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("nowhere.localhost"),
        "{}",
        unknown.body
    );
    let empty = get(p.gateway, "empty.localhost", "/");
    assert_eq!(empty.status, 503);
    assert!(empty.body.contains("empty"), "{}", empty.body);

    // A custom domain routes to its app, until it is removed.
    assert_eq!(get(p.gateway, "www.blog.test", "/").status, 404);
    p.ok(&["domains", "add", "www.blog.test", "-a", "blog"]);
    p.wait_until("the custom domain routed", || {
        (get(p.gateway, "www.blog.test", "/").release() == Some("v1")).then_some(())
    });
    p.ok(&["domains", "remove", "www.blog.test", "-a", "blog"]);
    p.wait_until("the custom domain gone", || {
        (get(p.gateway, "www.blog.test", "/").status == 404).then_some(())
    });

    // WebSocket: the upgrade passes through and messages echo both ways.
    let mut conn = Conn::open(p.gateway).unwrap();
    let upgrade = conn
        .get(
            "blog.localhost",
            "/ws",
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        )
        .unwrap();
    assert_eq!(upgrade.status, 101, "{upgrade:?}");
    assert_eq!(
        upgrade.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "the app's handshake arrives intact"
    );
    let message = b"hello through the gateway";
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | message.len() as u8];
    frame.extend(mask);
    frame.extend(message.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    conn.reader.get_mut().write_all(&frame).unwrap();
    let mut head = [0u8; 2];
    conn.reader.read_exact(&mut head).unwrap();
    let mut reply = vec![0u8; usize::from(head[1] & 0x7f)];
    conn.reader.read_exact(&mut reply).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "echo from v1: hello through the gateway"
    );

    // HTTP/2 with prior knowledge, routed by its authority.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body = runtime.block_on(h2_get(p.gateway, "blog.localhost"));
    assert!(body.starts_with("release=v1"), "{body}");

    // Every request of the app left a router line and counts in the metrics and in ps.
    let logs = p.ok(&["logs", "-a", "blog", "--source", "router", "-n", "1000"]);
    assert!(
        logs.contains("spread[router]: at=info method=GET path=\"/\""),
        "{logs}"
    );
    assert!(logs.contains("host=blog.localhost"), "{logs}");
    assert!(logs.contains("status=200"), "{logs}");
    assert!(
        !p.ok(&["logs", "-a", "blog", "--source", "app", "-n", "1000"])
            .contains("at=info"),
        "app lines only"
    );
    let metrics = metrics(&p);
    assert!(
        metrics.contains("spread_gateway_requests_total{app=\"blog\",class=\"2xx\"}"),
        "{metrics}"
    );
    let ps = p.ok(&["ps", "-a", "blog"]);
    assert!(ps.contains("Router: ") && ps.contains("2xx"), "{ps}");
    assert!(ps.contains(" up "), "a healthy instance shows as up: {ps}");

    // The router's lines go with the app.
    let info: Value = serde_json::from_str(&p.ok(&["apps", "info", "blog", "--json"])).unwrap();
    let lines = p
        .data_dir()
        .join("router")
        .join(info["id"].as_str().unwrap());
    assert!(lines.is_dir(), "{}", lines.display());
    p.ok(&["apps", "destroy", "blog", "--confirm", "blog"]);
    p.wait_until("the router's lines of a destroyed app removed", || {
        (!lines.exists()).then_some(())
    });
}

/// `GET /` over HTTP/2 with prior knowledge (h2c), with `host` as the authority.
async fn h2_get(gateway: SocketAddr, host: &str) -> String {
    use http_body_util::BodyExt as _;
    let stream = tokio::net::TcpStream::connect(gateway).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(format!("http://{host}/"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// `GET /metrics` from the API, with the admin token.
fn metrics(p: &Platform) -> String {
    let addr = p.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        p.token
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn a_release_that_never_becomes_healthy_fails_and_the_old_one_keeps_serving() {
    let p = platform();
    let source = app_source(&p, "shop");
    create_and_deploy(&p, "shop", &source);
    serves(&p, "shop.localhost", "v1");
    p.ok(&["health", "set", "--timeout", "5", "-a", "shop"]);

    let load = Load::start(p.gateway, "shop.localhost");
    load.during(&p, "a broken config release", || {
        p.ok(&["config", "set", "MODE=broken", "-a", "shop"]);
        let failed = p.wait_until("v2 failed", || {
            let releases: Value =
                serde_json::from_str(&p.ok(&["releases", "-a", "shop", "--json"])).ok()?;
            let v2 = releases
                .as_array()?
                .iter()
                .find(|r| r["version"] == 2)?
                .clone();
            (v2["status"] == "failed").then_some(v2)
        });
        let reason = failed["failure"].as_str().unwrap();
        assert!(
            reason.contains("web.1 (port 8080) did not become healthy within 5 s"),
            "{reason}"
        );
        healthy(&p, "shop", 1);
        assert_eq!(
            ps(&p, "shop")[0]["release"],
            1,
            "the broken instance is gone"
        );
    });
    load.stop();
    assert_eq!(get(p.gateway, "shop.localhost", "/").release(), Some("v1"));
}

#[test]
fn the_release_command_runs_before_the_rollout_and_its_failure_stops_it() {
    let p = platform();
    let source = app_source(&p, "shop");
    std::fs::write(
        source.join("Procfile"),
        "web: python3 app.py\nrelease: python3 -c \"print('migrated for', __import__('os').environ['SPREAD_RELEASE'])\"\n",
    )
    .unwrap();
    let out = create_and_deploy(&p, "shop", &source);
    assert!(out.contains("Running the release command"), "{out}");
    assert!(out.contains("migrated for v1"), "{out}");
    serves(&p, "shop.localhost", "v1");

    std::fs::write(
        source.join("Procfile"),
        "web: python3 app.py\nrelease: python3 -c \"raise SystemExit(3)\"\n",
    )
    .unwrap();
    let err = p.fails(&["deploy", source.to_str().unwrap(), "-a", "shop"]);
    assert!(err.contains("release command"), "{err}");
    assert!(err.contains("exited with code 3"), "{err}");
    assert_eq!(get(p.gateway, "shop.localhost", "/").release(), Some("v1"));
    let releases: Value =
        serde_json::from_str(&p.ok(&["releases", "-a", "shop", "--json"])).unwrap();
    assert_eq!(
        releases.as_array().unwrap().len(),
        1,
        "nothing was released"
    );
}

#[test]
fn a_thousand_idle_connections_do_not_stop_a_normal_client() {
    let p = platform();
    let source = app_source(&p, "shop");
    create_and_deploy(&p, "shop", &source);
    serves(&p, "shop.localhost", "v1");
    let mut idle = Vec::new();
    for i in 0..1000 {
        let mut stream = TcpStream::connect(p.gateway).unwrap();
        if i % 2 == 0 {
            // A slow client: half a request head, never finished.
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: shop.lo")
                .unwrap();
        }
        idle.push(stream);
    }
    for _ in 0..20 {
        assert_eq!(get(p.gateway, "shop.localhost", "/").status, 200);
    }
    drop(idle);
}
