//! Content-addressed OCI blob store, safe layer unpacking, and registry pull and push.

mod confined;
mod digest;
mod errors;
mod image_config;
mod layers;
mod limits;
mod local;
mod manifest;
mod path;
mod pull;
mod push;
mod reference;
mod refusal;
mod registry;
mod store;
#[allow(unsafe_code)]
mod sys;
mod transfer;
mod unpack;
pub mod whiteout;

pub use digest::{Digest, DigestError, Hasher, HashingReader, HashingWriter};
pub use errors::{PullError, PushError, RemoteError};
pub use image_config::ImageConfigSummary;
pub use layers::{LayerCache, LayerError, RemoveStats};
pub use limits::{MAX_HEADER_BYTES, UnpackOptions};
pub use local::{LocalImageError, local_blobs, local_layers};
pub use manifest::Platform;
pub use path::PathProblem;
pub use pull::{PulledImage, TransferStats, pull};
pub use push::{PushReport, push};
pub use reference::{DEFAULT_REGISTRY, DEFAULT_TAG, ImageReference, ReferenceError};
pub use refusal::{LinkProblem, Refusal, UnpackError};
pub use registry::{PullOptions, PushOptions, RegistryAuth, Transport};
pub use store::{BlobStore, DEFAULT_MAX_BLOB_BYTES, GcStats, StoreError, TEMP_GRACE};
pub use unpack::{Compression, UnpackStats, unpack_layer};
