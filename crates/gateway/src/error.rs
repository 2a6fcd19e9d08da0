//! What can go wrong with a proxied request, who is at fault, and whether a retry is safe.

/// A request the gateway could not complete with an instance's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Failure {
    /// The app has no instance that is running and not draining (app's fault, or scaled to zero).
    #[error("no healthy instance")]
    NoHealthyInstance,
    /// The connection to the instance failed before it sent response headers (instance's
    /// fault); safe to retry on another instance when the request has no body and is idempotent.
    #[error("connection to the instance failed")]
    ConnectionFailed,
    /// The instance did not send response headers within the response timeout (instance's
    /// fault); not retried, as it may still be working on the request.
    #[error("instance sent no response in time")]
    ResponseTimeout,
    /// The client's request body failed while it was being forwarded (client's fault).
    #[error("client request body failed")]
    ClientBody,
    /// The client went away before the response headers were ready (client's fault).
    #[error("client closed the request")]
    ClientClosed,
}

impl Failure {
    /// The stable machine-readable code used in access log lines.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Failure::NoHealthyInstance => "no_healthy_instance",
            Failure::ConnectionFailed => "connection_failed",
            Failure::ResponseTimeout => "response_timeout",
            Failure::ClientBody => "client_body",
            Failure::ClientClosed => "client_closed",
        }
    }
}
