//! Content-addressed OCI blob store and safe layer unpacking.

mod confined;
mod digest;
mod layers;
mod limits;
mod path;
mod refusal;
mod store;
#[allow(unsafe_code)]
mod sys;
mod unpack;
pub mod whiteout;

pub use digest::{Digest, DigestError, Hasher, HashingReader, HashingWriter};
pub use layers::{LayerCache, LayerError, RemoveStats};
pub use limits::{MAX_HEADER_BYTES, UnpackOptions};
pub use path::PathProblem;
pub use refusal::{LinkProblem, Refusal, UnpackError};
pub use store::{BlobStore, DEFAULT_MAX_BLOB_BYTES, GcStats, StoreError, TEMP_GRACE};
pub use unpack::{Compression, UnpackStats, unpack_layer};
