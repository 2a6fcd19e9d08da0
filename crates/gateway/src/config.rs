//! The gateway's timeouts and its passive health setting.

use std::time::Duration;

/// Timeouts of the gateway. [`Default`] gives the values used in production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// TCP connect to an instance (3 s).
    pub connect_timeout: Duration,
    /// A client must send a whole request head within this, counted from its first byte, or from
    /// the accept for a new connection (10 s).
    pub header_read_timeout: Duration,
    /// A client connection with no request in progress is closed after this (60 s).
    pub idle_timeout: Duration,
    /// An instance must send response headers within this, else the client gets 504 (60 s).
    pub response_timeout: Duration,
    /// Pooled idle connections to instances are closed after this (30 s; checked every
    /// quarter of it, at most every 5 s).
    pub upstream_idle_timeout: Duration,
    /// A backend whose connection failed is skipped for this long (10 s).
    pub eject_for: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            response_timeout: Duration::from_secs(60),
            upstream_idle_timeout: Duration::from_secs(30),
            eject_for: Duration::from_secs(10),
        }
    }
}
