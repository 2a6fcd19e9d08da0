//! Test harnesses shared by Spread's tests: a real local OCI registry, tiny images built in a
//! blob store, and a sandbox for real runc containers, and a private node network. A dev-dependency only; nothing here ships.

pub mod images;
pub mod net;
pub mod registry;
pub mod runc;
