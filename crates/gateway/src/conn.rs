//! One client connection: who it is from, whether a request is in progress, and when it has
//! been idle or sending a request head for too long.
//!
//! hyper 1.x alone does not fit the gateway's timeouts: its HTTP/1 `header_read_timeout` also
//! runs while a keep-alive connection waits for its next request (so idle connections would be
//! closed after the header timeout, not the idle one), it does not cover the protocol sniffing
//! of `hyper_util`'s auto builder (a silent connection would stay forever), and HTTP/2 has no
//! idle timeout at all. So each connection's task runs a watchdog over the counters kept here,
//! fed by the request path and by [`Watched`] reads, with one timer per connection that only
//! wakes at deadlines.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::header::HeaderValue;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::clock::millis;
use crate::deadline::ResponseDeadline;
use crate::gateway::Gateway;

pub(crate) struct Conn {
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) peer: SocketAddr,
    /// The client's IP as an `X-Forwarded-For` value, made once per connection.
    pub(crate) forwarded_for: HeaderValue,
    /// Becomes true when the gateway stops; upgraded connections end then.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Requests whose response is not done yet.
    active: AtomicU32,
    /// Clock ms of the first byte read while no request was active; 0 when none.
    head_started: AtomicU64,
    /// Clock ms at which `active` last became 0 (or the accept).
    idle_since: AtomicU64,
    /// Whether any request arrived on the connection.
    served: AtomicBool,
    /// HTTP/2 reads control frames between requests, so reads say nothing about heads there.
    h2: AtomicBool,
    /// The response timeout of the HTTP/1 request waiting for its response head.
    pub(crate) response_deadline: ResponseDeadline,
}

/// What the watchdog should do now.
pub(crate) enum Check {
    /// Nothing is overdue; look again at this instant.
    Wait(Instant),
    /// A request head has taken longer than `header_read_timeout`: drop the connection.
    HeadTimeout,
    /// No request has been in progress for the idle timeout (or the header read timeout on a
    /// new connection), or the gateway is closing and none is: close gracefully.
    Idle,
}

impl Conn {
    pub(crate) fn new(
        gateway: Arc<Gateway>,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let forwarded_for = HeaderValue::try_from(peer.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        let now = gateway.clock.now_ms();
        Self {
            gateway,
            peer,
            forwarded_for,
            shutdown,
            active: AtomicU32::new(0),
            head_started: AtomicU64::new(0),
            idle_since: AtomicU64::new(now),
            served: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            response_deadline: ResponseDeadline::default(),
        }
    }

    pub(crate) fn request_started(&self, h2: bool) {
        self.active.fetch_add(1, Relaxed);
        self.head_started.store(0, Relaxed);
        if !self.served.load(Relaxed) {
            self.served.store(true, Relaxed);
        }
        if h2 && !self.h2.load(Relaxed) {
            self.h2.store(true, Relaxed);
        }
    }

    pub(crate) fn request_ended(&self) {
        if self.active.fetch_sub(1, Relaxed) == 1 {
            self.idle_since.store(self.gateway.clock.now_ms(), Relaxed);
        }
    }

    fn bytes_read(&self) {
        if self.head_started.load(Relaxed) == 0 && self.active.load(Relaxed) == 0 {
            self.head_started
                .store(self.gateway.clock.now_ms(), Relaxed);
        }
    }

    /// The longest the watchdog sleeps between checks. A deadline set after a check (a head
    /// starting, a request ending, a request waiting for its response) is at least this far
    /// from that check, so it is never missed.
    pub(crate) fn check_interval(&self) -> std::time::Duration {
        let config = &self.gateway.config;
        config
            .header_read_timeout
            .min(config.idle_timeout)
            .min(config.response_timeout)
    }

    pub(crate) fn check(&self, closing: bool) -> Check {
        let clock = &self.gateway.clock;
        let config = &self.gateway.config;
        let now = clock.now_ms();
        let step = if closing {
            1000
        } else {
            millis(self.check_interval())
        };
        let wait = |deadline: u64| Check::Wait(clock.instant(deadline.min(now + step)));
        let busy = || self.active.load(Relaxed) > 0;
        if busy() {
            return wait(self.response_deadline.check(now).unwrap_or(u64::MAX));
        }
        if closing {
            return Check::Idle;
        }
        let head = self.head_started.load(Relaxed);
        let (deadline, overdue) = if head != 0 && !self.h2.load(Relaxed) {
            (
                head.saturating_add(millis(config.header_read_timeout)),
                Check::HeadTimeout,
            )
        } else {
            let limit = if self.served.load(Relaxed) {
                config.idle_timeout
            } else {
                config.header_read_timeout
            };
            (
                self.idle_since.load(Relaxed).saturating_add(millis(limit)),
                Check::Idle,
            )
        };
        // A request may have started since `active` was read.
        if now < deadline || busy() {
            wait(deadline)
        } else {
            overdue
        }
    }
}

/// A client's TCP stream that tells its [`Conn`] when a request head starts arriving.
pub(crate) struct Watched {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl Watched {
    pub(crate) fn new(stream: TcpStream, conn: Arc<Conn>) -> Self {
        Self { stream, conn }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.conn.bytes_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
