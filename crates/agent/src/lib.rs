//! Node agent: turns the instances assigned to this node into running containers.
//!
//! [`machine::NodeMachine`] decides what to do and never touches the runtime: events go in
//! (assignments changed, an instance started or exited, time passed), actions come out (start,
//! stop, remove, report). The executor that carries the actions out with `spread-oci`,
//! `spread-image` and the network comes with the runtime milestone.

pub mod backoff;
pub mod machine;
