//! The builder: what a project is and how to turn it into a minimal image.
//!
//! `detect` reads a project's marker files (through the narrow [`Project`] trait, so it is
//! pure and tested on in-memory projects) and returns a [`BuildPlan`]: the stack, its process
//! commands (from the `Procfile`, or derived) and the `release` command.

mod builder;
mod detect;
mod dir;
mod elf;
mod image;
mod layer;
mod pack;
mod procfile;
mod recipe;
mod roots;

pub use builder::{
    Builder, BuilderConfig, Built, DEFAULT_TIMEOUT, Event, Failure, Job, Sandbox, SandboxBind,
    SandboxStep, StepExit,
};
pub use detect::{
    APP_DIR, BuildPlan, DetectError, MAX_MARKER_BYTES, Project, STATIC_SERVER, Stack, detect,
};
pub use dir::DirProject;
pub use elf::{ElfError, closure, closure_with_app, is_elf};
pub use image::{ImageError, ImageSpec, write_image};
pub use layer::{LAYER_MTIME, Layer, LayerBuilder, LayerError, OCI_LAYER_GZIP};
pub use pack::{DEFAULT_MAX_UPLOAD_BYTES, PackError, PackStats, pack};
pub use procfile::{Procfile, ProcfileError, parse_procfile};
pub use recipe::{CA_BUNDLE, Recipe, recipe};
pub use roots::{BUILD_UID, RootError, Roots, Toolchain, host_mirror};
