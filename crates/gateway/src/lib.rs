//! Spread's HTTP gateway: a reverse proxy in the main process that routes requests by host to
//! app instances, balances by least outstanding requests and keeps per-app metrics.
//!
//! The route table is replaced whole by [`Gateway::set_routes`] and read without a lock on the
//! request path. Clients speak HTTP/1.1 or HTTP/2 (prior knowledge); instances are reached over
//! plain HTTP/1.1.

mod access_log;
mod backend;
mod body;
mod clock;
mod config;
mod conn;
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
