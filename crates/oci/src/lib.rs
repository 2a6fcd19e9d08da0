//! OCI runtime boundary: the `Runtime` trait, the runc implementation, a fake, and bundles.

mod cgroup;
mod error;
mod fake;
mod id;
pub mod monitor;
mod runc;
mod runtime;
mod seccomp;
mod signal;
mod spec;
pub mod testing;

pub use cgroup::{CgroupError, CgroupUsage, CgroupVersion, cgroup_usage, oom_kill_count};
pub use error::{Op, RuntimeError};
pub use fake::{Exit, FakeRuntime};
pub use id::{ContainerId, IdError, MAX_ID_LEN};
pub use runc::{CREATE_LOG, PID_FILE, RunExit, Runc, RuncVersion, VersionError};
pub use runtime::{ContainerIo, ContainerState, Runtime, Status};
pub use seccomp::default_seccomp;
pub use signal::{Signal, SignalError};
pub use spec::{Bind, BundleError, HostLimits, SpecError, SpecOptions, write_bundle};
