//! Body types: what the gateway sends to an instance and to a client. The client's body wraps
//! the instance's stream and ends the request's bookkeeping when it finishes or is dropped.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::guard::RequestGuard;
use crate::upstream::UpstreamConn;

/// A request body sent to an instance: the client's stream, or nothing (which lets a request
/// be sent again on another instance).
pub(crate) enum UpstreamBody {
    Empty,
    Client(Incoming),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Empty => Poll::Ready(None),
            UpstreamBody::Client(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Empty => true,
            UpstreamBody::Client(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Empty => SizeHint::with_exact(0),
            UpstreamBody::Client(body) => body.size_hint(),
        }
    }
}

/// A response body sent to a client.
pub(crate) struct ProxyBody {
    inner: Inner,
    /// The connection the instance's body arrives on; driven from here, and put back in the
    /// backend's pool once the body is read to the end.
    upstream: Option<Box<UpstreamConn>>,
    /// Dropped when the body ends or is dropped: that ends the request's counts and logs it.
    guard: Option<RequestGuard>,
}

enum Inner {
    Upstream(Incoming),
    Full(Option<Bytes>),
}

impl ProxyBody {
    /// An instance's body; `upstream` is the connection it comes on, when the request drives it.
    pub(crate) fn upstream(
        body: Incoming,
        upstream: Option<Box<UpstreamConn>>,
        guard: RequestGuard,
    ) -> Self {
        Self {
            inner: Inner::Upstream(body),
            upstream,
            guard: Some(guard),
        }
    }

    pub(crate) fn full(bytes: Bytes, guard: RequestGuard) -> Self {
        Self {
            inner: Inner::Full(Some(bytes)),
            upstream: None,
            guard: Some(guard),
        }
    }

    /// An empty body whose request's bookkeeping lives elsewhere (an upgraded connection).
    pub(crate) fn empty() -> Self {
        Self {
            inner: Inner::Full(None),
            upstream: None,
            guard: None,
        }
    }

    /// The body is done: a connection whose response was read to the end and that is ready
    /// for another request (not still sending this request's body, say) goes back to its
    /// pool, and the request's bookkeeping ends.
    fn finish(&mut self, cx: Option<&mut Context<'_>>, read_to_end: bool) {
        if let Some(mut upstream) = self.upstream.take()
            && read_to_end
            && let Some(backend) = self.guard.as_ref().and_then(RequestGuard::backend)
        {
            if let Some(cx) = cx {
                // Let the connection see the end of the exchange.
                upstream.drive(cx);
            }
            if upstream.is_ready() {
                backend.pool.checkin(upstream);
            }
        }
        self.guard = None;
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = match &mut this.inner {
            Inner::Upstream(body) => {
                let mut frame = Pin::new(&mut *body).poll_frame(cx);
                if frame.is_pending()
                    && let Some(upstream) = &mut this.upstream
                {
                    // Read from the instance, then look again for what arrived.
                    upstream.drive(cx);
                    frame = Pin::new(body).poll_frame(cx);
                }
                ready!(frame)
            }
            Inner::Full(bytes) => bytes.take().map(|b| Ok(Frame::data(b))),
        };
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(data), Some(guard)) = (frame.data_ref(), &mut this.guard) {
                    guard.bytes += data.len() as u64;
                }
            }
            Some(Err(_)) => this.finish(None, false),
            None => this.finish(Some(cx), true),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Upstream(body) => body.is_end_stream(),
            Inner::Full(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Upstream(body) => body.size_hint(),
            Inner::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // hyper may drop a body it knows is empty without polling it.
        let ended = match &self.inner {
            Inner::Upstream(body) => body.is_end_stream(),
            Inner::Full(_) => true,
        };
        self.finish(None, ended);
    }
}
