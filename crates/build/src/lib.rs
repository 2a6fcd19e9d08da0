//! The builder: what a project is and how to turn it into a minimal image.
//!
//! `detect` reads a project's marker files (through the narrow [`Project`] trait, so it is
//! pure and tested on in-memory projects) and returns a [`BuildPlan`]: the stack, its process
//! commands (from the `Procfile`, or derived) and the `release` command.

mod detect;
mod dir;
mod pack;
mod procfile;

pub use detect::{
    APP_DIR, BuildPlan, DetectError, MAX_MARKER_BYTES, Project, STATIC_SERVER, Stack, detect,
};
pub use dir::DirProject;
pub use pack::{DEFAULT_MAX_UPLOAD_BYTES, PackError, PackStats, pack};
pub use procfile::{Procfile, ProcfileError, parse_procfile};
