//! The bookkeeping of one request, ended when its response is done or dropped: the connection's
//! and backend's in-flight counts, the app's metrics and the access log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::http::uri::PathAndQuery;
use hyper::{Method, Version};

use crate::access_log::LogEntry;
use crate::backend::{Backend, Lease};
use crate::conn::Conn;
use crate::error::Failure;
use crate::routes::Route;

/// The status logged and counted when the client goes away before the response (as nginx).
const CLIENT_CLOSED: u16 = 499;

pub(crate) struct RequestGuard {
    conn: Arc<Conn>,
    route: Option<Arc<Route>>,
    lease: Option<Lease>,
    start: Instant,
    /// The time to response headers, once answered.
    service: Option<Duration>,
    status: u16,
    failure: Option<Failure>,
    /// Response body bytes sent to the client (or tunnelled, for an upgrade).
    pub(crate) bytes: u64,
    /// Time spent opening connections to instances for this request.
    pub(crate) connect: Duration,
    /// What the access log line needs, kept only when the log is enabled.
    log: Option<Box<LogFields>>,
}

pub(crate) struct LogFields {
    pub(crate) method: Method,
    pub(crate) path: Option<PathAndQuery>,
    pub(crate) host: Box<str>,
    pub(crate) request_id: HeaderValue,
    pub(crate) version: Version,
}

impl RequestGuard {
    /// Starts the bookkeeping of a request on `conn` that arrived at `start`.
    pub(crate) fn new(conn: Arc<Conn>, start: Instant) -> Self {
        Self {
            conn,
            route: None,
            lease: None,
            start,
            service: None,
            status: 0,
            failure: None,
            bytes: 0,
            connect: Duration::ZERO,
            log: None,
        }
    }

    /// The request belongs to `route`'s app: count it there and log it.
    pub(crate) fn set_route(&mut self, route: Arc<Route>, log: Option<Box<LogFields>>) {
        route.app.metrics.request_started();
        self.route = Some(route);
        self.log = log;
    }

    /// The route; only called after [`RequestGuard::set_route`].
    pub(crate) fn route(&self) -> &Arc<Route> {
        self.route.as_ref().expect("route is set before it is read")
    }

    pub(crate) fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }

    /// The backend the request went to, once it has one.
    pub(crate) fn backend(&self) -> Option<&Arc<Backend>> {
        self.lease.as_ref().map(Lease::backend)
    }

    pub(crate) fn set_lease(&mut self, lease: Lease) {
        self.lease = Some(lease);
    }

    /// Records the response headers: status and the time they took.
    pub(crate) fn respond(&mut self, status: u16, failure: Option<Failure>) {
        let elapsed = self.start.elapsed();
        self.service = Some(elapsed);
        self.status = status;
        self.failure = failure;
        if let Some(route) = &self.route {
            route.app.metrics.record(status, elapsed);
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.route.is_some() && self.service.is_none() {
            self.respond(CLIENT_CLOSED, Some(Failure::ClientClosed));
        }
        if let Some(route) = &self.route {
            route.app.metrics.request_ended();
            if let Some(fields) = self.log.take() {
                let path = fields.path.as_ref().map_or("/", PathAndQuery::as_str);
                let line = LogEntry {
                    failure: self.failure,
                    method: &fields.method,
                    path,
                    host: &fields.host,
                    request_id: fields.request_id.as_bytes(),
                    fwd: self.conn.peer.ip(),
                    instance: self.lease.as_ref().map(|lease| &*lease.backend().label),
                    connect_ms: self.connect.as_millis() as u64,
                    service_ms: self.service.map_or(0, |d| d.as_millis() as u64),
                    status: self.status,
                    bytes: self.bytes,
                    version: fields.version,
                }
                .line();
                self.conn.gateway.log.record(&route.app.name, line);
            }
        }
        self.lease = None;
        self.conn.request_ended();
    }
}
