//! The client side: the accept loop, one task per connection serving HTTP/1.1 and HTTP/2 (prior
//! knowledge) with upgrades, each with its idle and header watchdog, and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::body::ProxyBody;
use crate::conn::{Check, Conn, Watched};
use crate::gateway::Gateway;
use crate::proxy;

/// How long a connection told to close (idle, or the gateway stopping) may take to do so
/// cleanly before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Tasks the gateway's runtime runs between looks for I/O events (tokio's default is 61). A
/// proxied request is a few short polls, so looking more often hands ready sockets on sooner,
/// in smaller batches: on `bench/gateway.sh` (2 CPUs) 8 served some 5% more requests than 61,
/// with a lower p99.
const EVENT_INTERVAL: u32 = 8;

/// See [`Gateway::spawn_on_own_runtime`].
pub(crate) fn spawn_on_own_runtime(
    gateway: Arc<Gateway>,
    listener: std::net::TcpListener,
    threads: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
    listener.set_nonblocking(true)?;
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    let runtime = builder
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .thread_name("gateway")
        .build()?;
    std::thread::Builder::new()
        .name("gateway".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                serve(gateway, listener, shutdown).await
            })
        })
}

pub(crate) async fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    // The watchdog in `conn` does the header read timeout; hyper's would also cut idle
    // keep-alive connections short (and warns on every connection unless turned off).
    builder.http1().header_read_timeout(None);
    let builder = Arc::new(builder);
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(sweep_idle_upstreams(Arc::clone(&gateway), stopped.clone()));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let connection = serve_connection(
                    Arc::clone(&gateway),
                    Arc::clone(&builder),
                    stream,
                    peer,
                    stopped.clone(),
                );
                tokio::spawn(connection);
            }
            Err(error) => accept_failed(error).await,
        }
    }
    drop(listener);
    stop.send_replace(true);
    drop(stopped);
    // Every connection and upgraded tunnel holds a receiver until it is done.
    stop.closed().await;
    Ok(())
}

/// Closes idle pooled connections to instances about when they pass the idle timeout, until
/// the gateway stops.
async fn sweep_idle_upstreams(gateway: Arc<Gateway>, mut stopped: watch::Receiver<bool>) {
    let period = (gateway.config.upstream_idle_timeout / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => gateway.sweep_idle_upstreams(),
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// Out of file descriptors or memory, accepting again at once would spin; wait a little.
async fn accept_failed(error: io::Error) {
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted => {}
        _ => {
            tracing::warn!(%error, "accepting a client connection failed; retrying in 100 ms");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn serve_connection(
    gateway: Arc<Gateway>,
    builder: Arc<Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let conn = Arc::new(Conn::new(gateway, peer, stopped.clone()));
    let first_deadline = tokio::time::Instant::now() + conn.check_interval();
    let io = TokioIo::new(Watched::new(stream, Arc::clone(&conn)));
    let connection = builder.serve_connection_with_upgrades(io, ConnService(Arc::clone(&conn)));
    tokio::pin!(connection);
    let watchdog = tokio::time::sleep_until(first_deadline);
    tokio::pin!(watchdog);
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "client connection ended with an error");
                }
                return;
            }
            _ = stopped.wait_for(|stop| *stop), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
                watchdog.as_mut().reset(tokio::time::Instant::now() + CLOSE_GRACE);
            }
            () = watchdog.as_mut() => match conn.check(closing) {
                Check::Wait(at) => watchdog.as_mut().reset(at.into()),
                Check::HeadTimeout => {
                    tracing::debug!(%peer, "client sent no complete request head in time; closing");
                    return;
                }
                Check::Idle if closing => return,
                Check::Idle => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                    watchdog.as_mut().reset(tokio::time::Instant::now() + CLOSE_GRACE);
                }
            },
        }
    }
}

/// The per-connection service: hands each request to the proxy with the connection's context.
struct ConnService(Arc<Conn>);

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        Box::pin(proxy::handle(Arc::clone(&self.0), req))
    }
}
