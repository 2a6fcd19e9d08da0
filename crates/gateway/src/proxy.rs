//! The request path: route by host, pick a backend, forward over HTTP/1.1 with forwarded
//! headers, send a request again when that is safe and its connection failed (see [`forward`]),
//! and hand upgraded connections to a tunnel task.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::{Body, Incoming};
use hyper::header::{EXPECT, HOST, HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::backend::{Backend, Lease};
use crate::body::{ProxyBody, UpstreamBody};
use crate::conn::Conn;
use crate::deadline::within_response_timeout;
use crate::error::Failure;
use crate::gateway::Gateway;
use crate::guard::{LogFields, RequestGuard};
use crate::headers::{
    X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID, accepts_html, append_forwarded_for,
    is_upgrade, request_host, strip_hop_by_hop,
};
use crate::host::normalize_host;
use crate::pages::Page;
use crate::request_id::is_valid_request_id;
use crate::routes::Route;
use crate::upstream::{self, SendError, UpstreamConn};

/// What a gateway-made answer needs besides the page itself.
struct Answer {
    html: bool,
    request_id: HeaderValue,
}

impl Answer {
    fn page(
        self,
        page: Page<'_>,
        failure: Option<Failure>,
        mut guard: RequestGuard,
    ) -> Result<Response<ProxyBody>, Infallible> {
        guard.respond(page.status().as_u16(), failure);
        Ok(page.response(self.html, self.request_id, guard))
    }
}

/// Answers one client request: with the instance's response, or with a page of the gateway's
/// own saying what went wrong. Never fails and never panics on what the client sent.
pub(crate) async fn handle(
    conn: Arc<Conn>,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    let version = req.version();
    conn.request_started(version == Version::HTTP_2);
    let mut guard = RequestGuard::new(Arc::clone(&conn), start);
    let gateway = &*conn.gateway;

    let request_id = match req.headers().get(&X_REQUEST_ID) {
        Some(id) if is_valid_request_id(id.as_bytes()) => id.clone(),
        _ => gateway.request_ids.next(),
    };
    let answer = Answer {
        html: accepts_html(req.headers()),
        request_id: request_id.clone(),
    };
    if req.method() == Method::CONNECT {
        return answer.page(Page::ConnectUnsupported, None, guard);
    }

    {
        let Some(host) = request_host(&req).and_then(normalize_host) else {
            return answer.page(Page::NoHost, None, guard);
        };
        let table = gateway.table.load();
        let Some(route) = table.lookup(&host) else {
            return answer.page(Page::UnknownHost { host: &host }, None, guard);
        };
        let log = gateway.log_enabled.then(|| {
            Box::new(LogFields {
                method: req.method().clone(),
                path: req.uri().path_and_query().cloned(),
                host: (*host).into(),
                request_id: request_id.clone(),
                version,
            })
        });
        guard.set_route(Arc::clone(route), log);
    }
    let Some(lease) = guard.route().pick(&gateway.clock, None) else {
        let route = Arc::clone(guard.route());
        let page = Page::NoHealthyInstance {
            app: &route.app.name,
        };
        return answer.page(page, Some(Failure::NoHealthyInstance), guard);
    };

    let upgrade = is_upgrade(&req);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // An empty body can be sent again, so such a request may be retried on another backend.
    let bodiless = body.is_end_stream();
    let body = if bodiless {
        UpstreamBody::Empty
    } else {
        UpstreamBody::Client(body)
    };
    if !parts.headers.contains_key(HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        // HTTP/2 names the host in the authority; the instance reads `Host`.
        parts.headers.insert(HOST, host);
    }
    forwarded_headers(&mut parts.headers, &conn, &request_id, upgrade);
    // Origin-form: the instance gets the path and query only.
    parts.uri = std::mem::take(&mut parts.uri)
        .into_parts()
        .path_and_query
        .map_or_else(|| Uri::from_static("/"), Uri::from);
    parts.version = Version::HTTP_11;
    let retryable = bodiless && is_idempotent(&parts.method);
    let req = Request::from_parts(parts, body);

    let mut lease = lease;
    let mut connect = Duration::ZERO;
    let timeout = gateway.config.response_timeout;
    let h2 = version == Version::HTTP_2;
    let sent = match client_upgrade {
        None => {
            let route = guard.route();
            let forwarded = forward(&conn, route, &mut lease, &mut connect, req, retryable);
            within_response_timeout(&conn, start, h2, forwarded).await
        }
        Some(_) => {
            let forwarded = Box::pin(forward_upgrade(&conn, &lease, req));
            within_response_timeout(&conn, start, h2, forwarded).await
        }
    };
    guard.set_lease(lease);
    guard.connect = connect;
    let failure = match sent {
        Some(Ok((response, upstream))) => {
            return respond(guard, response, upstream, answer, client_upgrade, version);
        }
        Some(Err(failure)) => failure,
        None => Failure::ResponseTimeout,
    };
    let route = Arc::clone(guard.route());
    let app = &route.app.name;
    let page = match failure {
        Failure::ClientBody => Page::ClientBody,
        Failure::ResponseTimeout => Page::ResponseTimeout {
            app,
            after: timeout,
        },
        _ => Page::ConnectionFailed { app },
    };
    answer.page(page, Some(failure), guard)
}

/// Sends a request to the leased backend over a pooled connection and returns the response
/// head with the connection its body comes on.
///
/// Retries, all before any response head: a request that did not leave (refused connection,
/// a pooled connection found closed) goes out again, to a fresh connection or to another
/// backend. One that left is sent again only when it is idempotent, has no body and the route
/// has another backend: once on a fresh connection to the same backend when it failed on a
/// reused one (the instance may have closed an idle connection just then), and once to another
/// backend. A backend whose fresh connection fails is ejected.
async fn forward(
    conn: &Conn,
    route: &Route,
    lease: &mut Lease,
    connect: &mut Duration,
    req: Request<UpstreamBody>,
    retryable: bool,
) -> Result<(Response<Incoming>, Option<Box<UpstreamConn>>), Failure> {
    let gateway = &*conn.gateway;
    let config = &gateway.config;
    // Copying headers costs every request, so only when there is another backend to go to; a
    // pooled connection found closed is caught before sending (see `Pool::checkout`).
    let copy = (retryable && route.backends.len() > 1).then(|| {
        Box::new((
            req.method().clone(),
            req.uri().clone(),
            req.headers().clone(),
        ))
    });
    let mut pending = Some(req);
    let (mut fresh, mut resent, mut retried_same, mut retried_other) = (false, false, false, false);
    loop {
        let backend = lease.backend();
        let pooled = if fresh {
            None
        } else {
            backend.pool.checkout().await
        };
        let mut upstream = match pooled {
            Some(upstream) => upstream,
            // Boxed: connecting is rare, and its future would make every request's bigger.
            None => {
                let connecting = UpstreamConn::connect(backend.addr, config.connect_timeout);
                match Box::pin(timed(connect, connecting)).await {
                    Ok(upstream) => upstream,
                    Err(error) => {
                        connection_failed(gateway, backend, &error);
                        // Nothing was sent: any request may go to another backend.
                        match (!retried_other).then(|| route.pick(&gateway.clock, Some(backend))) {
                            Some(Some(next)) => {
                                (*lease, retried_other, fresh) = (next, true, false);
                                continue;
                            }
                            _ => return Err(Failure::ConnectionFailed),
                        }
                    }
                }
            }
        };
        let req = match (pending.take(), copy.as_deref()) {
            (Some(req), _) => req,
            (None, Some((method, uri, headers))) => {
                let mut req = Request::new(UpstreamBody::Empty);
                *req.method_mut() = method.clone();
                *req.uri_mut() = uri.clone();
                *req.headers_mut() = headers.clone();
                req
            }
            (None, None) => return Err(Failure::ConnectionFailed),
        };
        let reused = upstream.reused;
        let error = match upstream.send(req).await {
            Ok(response) => return Ok((response, Some(upstream))),
            Err(SendError::Unsent(error, req)) => {
                pending = Some(*req);
                if reused && !resent {
                    // A pooled connection closed under us: nothing went out.
                    (resent, fresh) = (true, true);
                    continue;
                }
                error
            }
            Err(SendError::Sent(error)) if error.is_user() => {
                tracing::debug!(%error, "client request body failed");
                return Err(Failure::ClientBody);
            }
            Err(SendError::Sent(error)) => {
                if reused && copy.is_some() && !retried_same {
                    (retried_same, fresh) = (true, true);
                    continue;
                }
                error
            }
        };
        connection_failed(gateway, backend, &error);
        if (pending.is_some() || copy.is_some())
            && !retried_other
            && let Some(next) = route.pick(&gateway.clock, Some(backend))
        {
            (*lease, retried_other, fresh) = (next, true, false);
            continue;
        }
        return Err(Failure::ConnectionFailed);
    }
}

/// Awaits `future`, adding the time it took to `spent`.
async fn timed<T>(spent: &mut Duration, future: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let output = future.await;
    *spent += start.elapsed();
    output
}

/// Sends an upgrade request over a connection of its own, which can switch protocols.
async fn forward_upgrade(
    conn: &Conn,
    lease: &Lease,
    req: Request<UpstreamBody>,
) -> Result<(Response<Incoming>, Option<Box<UpstreamConn>>), Failure> {
    let gateway = &*conn.gateway;
    let backend = lease.backend();
    let mut sender = upstream::connect_for_upgrade(backend.addr, gateway.config.connect_timeout)
        .await
        .map_err(|error| {
            connection_failed(gateway, backend, &error);
            Failure::ConnectionFailed
        })?;
    match sender.send_request(req).await {
        Ok(response) => Ok((response, None)),
        Err(error) if error.is_user() => Err(Failure::ClientBody),
        Err(error) => {
            connection_failed(gateway, backend, &error);
            Err(Failure::ConnectionFailed)
        }
    }
}

/// Passive health: the backend is skipped for a while.
fn connection_failed(gateway: &Gateway, backend: &Backend, error: &dyn std::fmt::Display) {
    tracing::debug!(instance = %backend.label, addr = %backend.addr, %error, "connection to instance failed");
    if backend.eject(&gateway.clock, gateway.config.eject_for) {
        tracing::info!(
            instance = %backend.label,
            addr = %backend.addr,
            %error,
            "connection to instance failed; skipping it for {:?}",
            gateway.config.eject_for
        );
    }
}

/// Passes the instance's response on, or for a switch of protocols, answers 101 and joins the
/// two upgraded connections in a task of their own.
fn respond(
    mut guard: RequestGuard,
    mut response: Response<Incoming>,
    upstream: Option<Box<UpstreamConn>>,
    answer: Answer,
    client_upgrade: Option<OnUpgrade>,
    version: Version,
) -> Result<Response<ProxyBody>, Infallible> {
    let status = response.status();
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    if switching && client_upgrade.is_none() {
        // A client that asked for no upgrade cannot be switched; hyper would refuse anyway.
        let route = Arc::clone(guard.route());
        let page = Page::ConnectionFailed {
            app: &route.app.name,
        };
        return answer.page(page, Some(Failure::ConnectionFailed), guard);
    }
    let instance_upgrade = switching.then(|| hyper::upgrade::on(&mut response));
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers, switching);
    parts
        .headers
        .insert(X_REQUEST_ID.clone(), answer.request_id);
    parts.version = version;
    guard.respond(status.as_u16(), None);
    match (client_upgrade, instance_upgrade) {
        (Some(client), Some(instance)) => {
            let stopped = guard.conn().shutdown.clone();
            tokio::spawn(tunnel(guard, client, instance, stopped));
            Ok(Response::from_parts(parts, ProxyBody::empty()))
        }
        _ => Ok(Response::from_parts(
            parts,
            ProxyBody::upstream(body, upstream, guard),
        )),
    }
}

/// Copies bytes both ways between the client and the instance until either closes or the
/// gateway stops; the request counts as in flight until then.
async fn tunnel(
    mut guard: RequestGuard,
    client: OnUpgrade,
    instance: OnUpgrade,
    mut stopped: watch::Receiver<bool>,
) {
    let (instance, client) = match (instance.await, client.await) {
        (Ok(instance), Ok(client)) => (instance, client),
        (Err(error), _) | (_, Err(error)) => {
            tracing::debug!(%error, "upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut instance = TokioIo::new(instance);
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut instance) => match copied {
            Ok((_, to_client)) => guard.bytes = to_client,
            Err(error) => tracing::debug!(%error, "upgraded connection ended with an error"),
        },
        _ = stopped.wait_for(|stop| *stop) => {}
    }
}

/// Adds `X-Forwarded-*`, `X-Request-Id` and `Host`, and removes hop-by-hop headers and
/// `Expect` (the client side already answered it).
fn forwarded_headers(
    headers: &mut HeaderMap,
    conn: &Conn,
    request_id: &HeaderValue,
    upgrade: bool,
) {
    strip_hop_by_hop(headers, upgrade);
    headers.remove(EXPECT);
    append_forwarded_for(headers, &conn.forwarded_for);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    if let Some(host) = headers.get(HOST).cloned() {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
    headers.insert(X_REQUEST_ID.clone(), request_id.clone());
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}
