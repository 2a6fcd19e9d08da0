//! Connections to an instance, and the idle pool of each backend.
//!
//! A connection is not a task of its own: the request that uses it drives it (while waiting for
//! the response head, then from the response body the client reads), and it waits unpolled in
//! its backend's pool between requests. So a proxied request runs wholly on the client
//! connection's task, with no hand-off to another task and back (which is what a
//! `hyper_util` legacy client does: a task per connection and one more per response to put the
//! connection back), and a backend's pool goes away with the backend.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::UpstreamBody;

type Io = TokioIo<TcpStream>;

/// One HTTP/1.1 connection to an instance.
pub(crate) struct UpstreamConn {
    sender: SendRequest<UpstreamBody>,
    conn: Connection<Io, UpstreamBody>,
    /// The connection future finished: the connection is closed.
    closed: bool,
    /// Whether a request was sent on it before; a failure then may be a race with the
    /// instance closing an idle connection rather than the instance failing.
    pub(crate) reused: bool,
    idle_since: Instant,
}

/// Why a request to an instance failed before its response head arrived.
pub(crate) enum SendError {
    /// The request was not sent: it may go out again on another connection.
    Unsent(hyper::Error, Box<Request<UpstreamBody>>),
    /// The request may have been (partly) sent.
    Sent(hyper::Error),
}

impl UpstreamConn {
    /// Connects to `addr` with TCP_NODELAY, giving up after `timeout`. Boxed, because
    /// requests move connections around and hyper's connection state is large.
    pub(crate) async fn connect(
        addr: std::net::SocketAddr,
        timeout: Duration,
    ) -> io::Result<Box<Self>> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(stream) => stream?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to {addr} took longer than {timeout:?}"),
                ));
            }
        };
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        Ok(Box::new(Self {
            sender,
            conn,
            closed: false,
            reused: false,
            idle_since: Instant::now(),
        }))
    }

    /// Polls the connection: reads and writes whatever is due. Returns false once it is closed.
    pub(crate) fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.closed && Pin::new(&mut self.conn).poll(cx).is_ready() {
            self.closed = true;
        }
        !self.closed
    }

    /// Whether the connection is open and waiting for a request.
    pub(crate) fn is_ready(&self) -> bool {
        !self.closed && self.sender.is_ready()
    }

    /// Whether an idle connection can take a request now: open and ready after one poll.
    fn usable(&mut self, cx: &mut Context<'_>) -> bool {
        self.drive(cx) && matches!(self.sender.poll_ready(cx), Poll::Ready(Ok(())))
    }

    /// Sends `req` and drives the connection until the response head arrives. Not an async
    /// fn, so the future does not keep a second copy of the request.
    pub(crate) fn send(
        &mut self,
        req: Request<UpstreamBody>,
    ) -> impl Future<Output = Result<Response<Incoming>, SendError>> + '_ {
        let response = self.sender.try_send_request(req);
        async move {
            tokio::pin!(response);
            let result = poll_fn(|cx| {
                if let Poll::Ready(result) = response.as_mut().poll(cx) {
                    return Poll::Ready(result);
                }
                // Once closed, the connection has answered the request with an error.
                self.drive(cx);
                response.as_mut().poll(cx)
            })
            .await;
            self.reused = true;
            result.map_err(|mut error| match error.take_message() {
                Some(req) => SendError::Unsent(error.into_error(), Box::new(req)),
                None => SendError::Sent(error.into_error()),
            })
        }
    }
}

/// The idle connections of one backend, newest last. Boxed, so taking one out and putting it
/// back moves a pointer rather than hyper's connection state.
#[derive(Default)]
pub(crate) struct Pool {
    #[expect(
        clippy::vec_box,
        reason = "connections move in and out of the pool per request"
    )]
    idle: Mutex<Vec<Box<UpstreamConn>>>,
}

impl Pool {
    /// The most recently used idle connection that is still open, if there is one.
    /// Connections found closed are dropped; [`Pool::sweep`] drops those idle too long.
    pub(crate) async fn checkout(&self) -> Option<Box<UpstreamConn>> {
        loop {
            let mut conn = self.lock().pop()?;
            if poll_fn(|cx| Poll::Ready(conn.usable(cx))).await {
                return Some(conn);
            }
        }
    }

    /// Keeps a connection whose last response was read to the end.
    pub(crate) fn checkin(&self, mut conn: Box<UpstreamConn>) {
        if conn.closed {
            return;
        }
        conn.idle_since = Instant::now();
        self.lock().push(conn);
    }

    /// Drops connections idle longer than `max_idle`.
    pub(crate) fn sweep(&self, max_idle: Duration) {
        let expired: Vec<Box<UpstreamConn>> = {
            let mut idle = self.lock();
            let keep_from = idle
                .iter()
                .position(|c| c.idle_since.elapsed() <= max_idle)
                .unwrap_or(idle.len());
            idle.drain(..keep_from).collect()
        };
        // Closing sockets happens outside the lock.
        drop(expired);
    }

    #[expect(clippy::vec_box, reason = "see `Pool::idle`")]
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Box<UpstreamConn>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Opens a connection that can switch protocols, driven by a task of its own (an upgraded
/// connection outlives the request), for one request.
pub(crate) async fn connect_for_upgrade(
    addr: std::net::SocketAddr,
    timeout: Duration,
) -> io::Result<SendRequest<UpstreamBody>> {
    let UpstreamConn { sender, conn, .. } = *UpstreamConn::connect(addr, timeout).await?;
    tokio::spawn(async move {
        if let Err(error) = conn.with_upgrades().await {
            tracing::debug!(%error, "connection to instance for an upgrade ended with an error");
        }
    });
    Ok(sender)
}
