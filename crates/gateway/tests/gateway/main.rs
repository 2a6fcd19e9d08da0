//! End-to-end tests of the gateway on loopback: real client connections, real instances.

mod balancing;
mod connections;
mod observability;
mod routing;
mod support;
mod upgrades;
mod upstream;
