//! Node agent: turns the instances assigned to this node into running containers.
//!
//! [`machine::NodeMachine`] decides what to do and never touches the runtime: events go in
//! (assignments changed, an instance started or exited, time passed), actions come out (start,
//! stop, remove, report). [`Agent`] runs the loop around it, and [`executor::Executor`] carries
//! the actions out: layers from the image store joined by overlayfs, a network namespace, a
//! hardened runc bundle and a `spread monitor` process per container, which outlives the
//! agent. On start the agent finds running containers through their monitors' records and
//! supervises them again without restarting them.

mod agent;
pub mod backoff;
mod build;
pub mod config;
pub mod executor;
mod health;
pub mod machine;
mod platform;
mod resolv;
mod rootfs;
#[allow(unsafe_code)]
mod sys;
mod task;
pub mod uids;
mod user;

pub use agent::{Agent, Assignment, DRAIN_TIMEOUT, InstanceView, LogDir, Router};
pub use config::{AgentConfig, InstanceDir};
pub use executor::AgentError;
pub use task::TaskEnd;
