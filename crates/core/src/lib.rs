//! Spread's pure core: the domain model, the replicated `State`, `Command`s and a deterministic
//! `apply`.
//!
//! Nothing here does I/O, reads a clock or draws a random number: IDs and timestamps are made by
//! the caller before a command is proposed, and travel inside it. `apply` rejects invalid commands
//! with a [`Rejection`] value and never panics, so every replica reaches the same state from the
//! same log.

mod argv;
mod command;
mod limits;
mod model;
mod name;
mod plan;
mod rejection;
mod rollout;
mod snapshot;
mod state;

pub use argv::{CommandLineError, split_command_line};
pub use command::{Actor, Command, Outcome};
pub use limits::Limits;
pub use model::{
    App, AppId, Config, HealthCheck, ProcessFormation, Release, ReleaseImage, ReleaseStatus,
    Timestamp, Token, TokenId,
};
pub use name::{AppName, ConfigKey, DomainName, NameError, ProcessType};
pub use plan::{
    DEFAULT_PORT, DesiredInstance, desired_instances, expand, release_instances, release_task,
};
pub use rejection::Rejection;
pub use rollout::{AppRoutes, Observed, RouteBackend, finished_rollouts, label, port, routes};
pub use snapshot::{SCHEMA_VERSION, SnapshotError, decode_snapshot, encode_snapshot};
pub use state::State;
