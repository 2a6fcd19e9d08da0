//! A tiny upstream/gateway DSL on loopback: instances are small hyper servers, the gateway
//! runs in-process, and clients send requests with a chosen Host.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use spread_gateway::{AccessLog, AppRoute, BackendSpec, Gateway, GatewayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

/// Every test runs under this bound, so none can hang.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TEST_TIMEOUT, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {TEST_TIMEOUT:?}"),
    }
}

type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>
        + Send
        + Sync,
>;

/// A test instance: answers every request with its name in `x-backend` and, as the body, the
/// request's method, path and headers one per line. `/slow` waits for a permit from `release`;
/// `/never` never answers.
pub struct Instance {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    /// Notified each time a request to `/slow` arrives.
    pub slow_arrived: Arc<tokio::sync::Notify>,
    pub release: Arc<Semaphore>,
    /// Connections accepted, and those still open.
    pub conns: Arc<ConnCount>,
    task: JoinHandle<()>,
}

#[derive(Default)]
pub struct ConnCount {
    pub accepted: AtomicUsize,
    pub open: AtomicUsize,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Instance {
    pub async fn start(name: &'static str) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let slow_arrived = Arc::new(tokio::sync::Notify::new());
        let release = Arc::new(Semaphore::new(0));
        let handler: Handler = {
            let (hits, slow_arrived, release) =
                (hits.clone(), slow_arrived.clone(), release.clone());
            Arc::new(move |req| {
                let (hits, slow_arrived, release) =
                    (hits.clone(), slow_arrived.clone(), release.clone());
                Box::pin(async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    match req.uri().path() {
                        "/slow" => {
                            slow_arrived.notify_one();
                            release.acquire().await.unwrap().forget();
                        }
                        "/never" => std::future::pending::<()>().await,
                        _ => {}
                    }
                    let (parts, body) = req.into_parts();
                    let read = body.collect().await.map_or(0, |b| b.to_bytes().len());
                    echo(name, Request::from_parts(parts, read))
                })
            })
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(ConnCount::default());
        let task = tokio::spawn(serve_http1(listener, handler, conns.clone()));
        Self {
            conns,
            name,
            addr,
            hits,
            slow_arrived,
            release,
            task,
        }
    }

    pub fn spec(&self) -> BackendSpec {
        BackendSpec {
            id: format!("{}-id", self.name),
            label: self.name.to_owned(),
            addr: self.addr,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn echo(name: &str, req: Request<usize>) -> Response<Full<Bytes>> {
    let mut body = format!(
        "{} {}\nbody-bytes: {}\n",
        req.method(),
        req.uri(),
        req.body()
    );
    for (key, value) in req.headers() {
        body.push_str(&format!("{key}: {}\n", value.to_str().unwrap_or("?")));
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert("x-backend", HeaderValue::from_str(name).unwrap());
    // Hop-by-hop headers the gateway must not pass to the client.
    response
        .headers_mut()
        .insert("keep-alive", HeaderValue::from_static("timeout=30"));
    response
}

async fn serve_http1(listener: TcpListener, handler: Handler, conns: Arc<ConnCount>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handler = handler.clone();
        conns.accepted.fetch_add(1, Ordering::SeqCst);
        conns.open.fetch_add(1, Ordering::SeqCst);
        let conns = conns.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
            conns.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// An address with nothing listening: connections to it are refused.
pub async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// An instance that reads a request head and resets the connection without answering.
pub async fn resetting_instance() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_zero_linger();
                drop(stream);
            });
        }
    });
    (addr, hits, task)
}

/// An instance that switches to protocol `echo` on request and then echoes every byte.
pub async fn upgrade_echo_instance() -> (SocketAddr, JoinHandle<()>) {
    let handler: Handler = Arc::new(|mut req: Request<Incoming>| {
        Box::pin(async move {
            let wants_echo = req.headers().get("upgrade").is_some_and(|v| v == "echo");
            if !wants_echo {
                let mut response = Response::new(Full::new(Bytes::from_static(b"no upgrade")));
                *response.status_mut() = StatusCode::BAD_REQUEST;
                return response;
            }
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    let (mut read, mut write) = tokio::io::split(TokioIo::new(upgraded));
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                }
            });
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            response
                .headers_mut()
                .insert("connection", HeaderValue::from_static("upgrade"));
            response
                .headers_mut()
                .insert("upgrade", HeaderValue::from_static("echo"));
            response
        })
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (
        addr,
        tokio::spawn(serve_http1(listener, handler, Arc::default())),
    )
}

/// An instance that answers one request per connection and then closes it without saying so
/// (no `Connection: close`), as a server whose keep-alive timeout just passed would.
pub async fn one_shot_instance() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                let _ = stream.write_all(answer).await;
            });
        }
    });
    (addr, accepted, task)
}

/// Waits (bounded by the test's timeout) until `done` holds.
pub async fn eventually(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Access log lines kept in memory.
#[derive(Default)]
pub struct Lines(pub Mutex<Vec<(String, String)>>);

impl AccessLog for Lines {
    fn record(&self, app: &str, line: String) {
        self.0.lock().unwrap().push((app.to_owned(), line));
    }
}

impl Lines {
    pub fn all(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// A gateway serving on a loopback port until dropped or stopped.
pub struct TestGateway {
    pub gateway: Arc<Gateway>,
    pub addr: SocketAddr,
    pub log: Arc<Lines>,
    stop: Option<oneshot::Sender<()>>,
    pub served: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestGateway {
    pub async fn start(routes: Vec<AppRoute>) -> Self {
        Self::with_config(GatewayConfig::default(), routes).await
    }

    pub async fn with_config(config: GatewayConfig, routes: Vec<AppRoute>) -> Self {
        let log = Arc::new(Lines::default());
        let gateway = Gateway::new(config, log.clone());
        gateway.set_routes(routes);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let served = tokio::spawn(gateway.clone().serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            gateway,
            addr,
            log,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Stops accepting; the returned task ends when open connections are done.
    pub fn stop(&mut self) -> JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.served.take().expect("stopped once")
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(served) = &self.served {
            served.abort();
        }
    }
}

pub fn route(app: &str, hosts: &[&str], backends: Vec<BackendSpec>) -> AppRoute {
    AppRoute {
        app: app.to_owned(),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        backends,
    }
}

/// An HTTP/1.1 keep-alive client to the gateway that sets Host itself.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    inner: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn backend(&self) -> &str {
        self.headers
            .get("x-backend")
            .map_or("", |v| v.to_str().unwrap())
    }

    /// The value of a request header as the instance saw it (from the echoed body).
    pub fn seen(&self, header: &str) -> Option<&str> {
        let prefix = format!("{header}: ");
        self.body
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
    }
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        let inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .set_host(false)
            .build_http();
        Self { addr, inner }
    }

    pub async fn get(&self, host: &str, path: &str) -> Reply {
        self.send("GET", host, path, &[], Bytes::new()).await
    }

    pub async fn send(
        &self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("host", host);
        for (key, value) in headers {
            req = req.header(HeaderName::from_bytes(key.as_bytes()).unwrap(), *value);
        }
        let req = req.body(Full::new(body)).unwrap();
        let response = bounded("a request", self.inner.request(req)).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = bounded("a response body", body.collect())
            .await
            .unwrap()
            .to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// Opens a raw connection to `addr` and writes `bytes`.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Reads until the peer closes the connection; returns what was read.
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    out
}
