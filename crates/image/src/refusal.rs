//! Why a layer was refused: the rule each entry broke, and the errors `unpack_layer` returns.

use std::io;

use crate::path::PathProblem;

/// A failed layer unpack. On error the destination may hold part of the layer and should be
/// discarded; nothing is ever written outside it.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {path:?} {rule}")]
    Refused { path: String, rule: Refusal },
    #[error("unpacking layer entry {path:?} failed: {source}")]
    Io { path: String, source: io::Error },
    #[error("layer is not a valid tar stream: {0}")]
    Malformed(io::Error),
    #[error("layer stream is over the limit of {limit} uncompressed bytes")]
    StreamTooLarge { limit: u64 },
    #[error(
        "layer has over {limit} bytes of tar headers (long names or PAX records) {}",
        .after.as_ref().map_or("at its start".to_owned(), |p| format!("after entry {p:?}"))
    )]
    HeadersTooLarge { after: Option<String>, limit: u64 },
}

/// The rule a layer entry broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Path(#[from] PathProblem),
    #[error("would be written through the symlink {component:?}")]
    ThroughSymlink { component: String },
    #[error("has a parent {component:?} that is not a directory")]
    ParentNotDirectory { component: String },
    #[error("would replace the layer root with something other than a directory")]
    ReplacesRoot,
    #[error("is a hard link to {target:?}, which {problem}")]
    HardLink {
        target: String,
        problem: LinkProblem,
    },
    #[error("is a {kind} device: device nodes are not allowed")]
    DeviceNode { kind: &'static str },
    #[error("is a FIFO: named pipes are not allowed")]
    Fifo,
    #[error("has unsupported entry type {kind}")]
    UnsupportedType { kind: String },
    #[error("is {size} bytes, over the limit of {max} bytes per file")]
    FileTooLarge { size: u64, max: u64 },
    #[error("would bring the layer's files over the limit of {max} bytes in total")]
    LayerTooLarge { max: u64 },
    #[error("is over the limit of {max} entries per layer")]
    TooManyEntries { max: u64 },
    #[error("is owned by {which} {id}, but only ids below 65536 can be shifted")]
    IdOutOfRange { which: &'static str, id: u64 },
    #[error("is owned by {which} {id}, which overflows when shifted by {shift}")]
    IdShiftOverflow {
        which: &'static str,
        id: u64,
        shift: u32,
    },
}

/// Why a hard link's target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkProblem {
    #[error("{0}")]
    Path(#[from] PathProblem),
    #[error("is the entry itself")]
    Itself,
    #[error("is a symlink")]
    Symlink,
    #[error("lies behind the symlink {component:?}")]
    ThroughSymlink { component: String },
    #[error("does not exist earlier in the layer")]
    Missing,
    #[error("is not a regular file")]
    NotRegularFile,
}

/// An error inside the unpacking of one entry, before it is tagged with the entry's path.
#[derive(Debug)]
pub(crate) enum Failure {
    Refused(Refusal),
    Io(io::Error),
}

impl From<Refusal> for Failure {
    fn from(rule: Refusal) -> Self {
        Self::Refused(rule)
    }
}

impl From<PathProblem> for Failure {
    fn from(problem: PathProblem) -> Self {
        Self::Refused(problem.into())
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl Failure {
    pub(crate) fn at(self, path: String) -> UnpackError {
        match self {
            Self::Refused(rule) => UnpackError::Refused { path, rule },
            Self::Io(source) => UnpackError::Io { path, source },
        }
    }
}
