//! Test harnesses shared by Spread's tests and benchmarks: a real local OCI registry, tiny
//! images built in a blob store, a sandbox for real runc containers, a private node network and
//! a sandbox for a node agent. Used by tests and `spread-bench` only; nothing here ships.

pub mod agent;
pub mod images;
pub mod net;
pub mod registry;
pub mod runc;
