//! Spread's HTTP gateway: a reverse proxy in the main process that routes requests by host to
//! app instances, balances by least outstanding requests and keeps per-app metrics.
//!
//! Clients speak HTTP/1.1 or HTTP/2 (prior knowledge), with upgrades (WebSocket) on HTTP/1.1;
//! instances are reached over plain HTTP/1.1. Where things are:
//!
//! - `server`: accept loop, one task per client connection, graceful shutdown; `conn`: the
//!   per-connection watchdog for header-read and idle timeouts, and for the response timeout
//!   of HTTP/1 requests (`deadline`).
//! - `proxy`: the request path (route, pick, forward, retry, upgrade); `headers`, `host`,
//!   `request_id`: what it reads and writes; `pages`: the gateway's own answers.
//! - `routes`: the route table, swapped whole through an `ArcSwap`; `backend`: per-instance
//!   state (in-flight count, ejection, draining); `upstream`: connections to instances and
//!   their pools, driven by the request that uses them.
//! - `body`, `guard`: what ends a request's bookkeeping; `metrics`, `access_log`: what it
//!   records.
//!
//! The request path takes no lock but a backend's pool mutex (held for a push or a pop), reads
//! the route table without one, and keeps its counters in atomics.

mod access_log;
mod backend;
mod body;
mod clock;
mod config;
mod conn;
mod deadline;
mod error;
mod gateway;
mod guard;
mod headers;
mod host;
mod metrics;
mod pages;
mod proxy;
mod request_id;
mod routes;
mod server;
mod upstream;

pub use access_log::{AccessLog, NoAccessLog};
pub use config::GatewayConfig;
pub use gateway::Gateway;
pub use metrics::AppSummary;
pub use routes::{AppRoute, BackendSpec};

/// The threads to give [`Gateway::spawn_on_own_runtime`] by default: one. On the small
/// machines Spread targets the gateway shares the CPUs with the instances it proxies to (and
/// their clients, on a benchmark), and one thread with a current-thread runtime serves more
/// requests per CPU than two that wake each other; one thread serves some 50k small requests a
/// second. Give it more on a machine with CPUs to spare for it.
pub const DEFAULT_THREADS: usize = 1;
