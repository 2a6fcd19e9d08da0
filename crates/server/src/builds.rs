//! What the API needs from this node's builder: a narrow view, so the control plane never
//! runs build containers itself.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use spread_core::{AppId, DesiredInstance};

/// One build of uploaded source.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub app: AppId,
    pub app_name: String,
    /// A short unique id of this build, e.g. for names of its work dirs and containers.
    pub id: String,
    /// The uploaded gzip tarball; the builder may remove it once read.
    pub source: PathBuf,
}

/// What a successful build made: an image in this node's blob store, and what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Digest of the image manifest in the blob store.
    pub digest: String,
    /// `KEY=value` entries of the image config.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// Process type to argv, e.g. `web` to `["gunicorn", "app:app"]`.
    pub processes: BTreeMap<String, Vec<String>>,
    /// The Procfile's `release:` command, run once per release before it is rolled out.
    pub release_command: Option<Vec<String>>,
}

/// Why a build failed, for the person who asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFailure {
    pub message: String,
    pub step: Option<String>,
    pub exit_code: Option<i32>,
}

impl BuildFailure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            step: None,
            exit_code: None,
        }
    }
}

/// Where a build sends its `step` and `output` events; a closed receiver (the client went
/// away) does not stop the build.
pub type BuildEvents = tokio::sync::mpsc::UnboundedSender<spread_api::BuildEvent>;

/// A build running on this node.
pub type BuildFuture = Pin<Box<dyn Future<Output = Result<BuiltImage, BuildFailure>> + Send>>;

/// A release command running on this node.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<(), BuildFailure>> + Send>>;

/// This node's builder.
pub trait NodeBuilder: Send + Sync + 'static {
    /// Builds the uploaded source into an image.
    fn build(&self, request: BuildRequest, events: BuildEvents) -> BuildFuture;
    /// Runs a release command (`task`, an instance of process type `release`) once to its
    /// end, sending what it prints as `output` events; fails unless it exits with 0.
    fn run_release(&self, task: DesiredInstance, events: BuildEvents) -> TaskFuture;
}

/// A node without a builder: every build fails and says so.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBuilder;

impl NodeBuilder for NoBuilder {
    fn build(&self, _request: BuildRequest, _events: BuildEvents) -> BuildFuture {
        Box::pin(async {
            Err(BuildFailure::new(
                "this node has no builder; deploy a built image with `spread deploy --image REF`",
            ))
        })
    }

    fn run_release(&self, _task: DesiredInstance, _events: BuildEvents) -> TaskFuture {
        Box::pin(async {
            Err(BuildFailure::new(
                "this node runs no containers, so the release command cannot run",
            ))
        })
    }
}
