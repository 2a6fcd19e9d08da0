//! Test harnesses shared by Spread's tests: a real local OCI registry, and tiny images built in
//! a blob store. A dev-dependency only; nothing here ships.

pub mod images;
pub mod registry;
