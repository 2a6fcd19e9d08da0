//! Errors of registry pull and push; each names the image, blob or registry involved.

use crate::digest::Digest;
use crate::store::StoreError;

/// Failures talking to a registry, shared by pull and push; each names the registry or image.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(
        "could not reach registry {registry} over https: {reason}; if it only serves plain \
         http, allow it with --insecure-registry {registry}"
    )]
    HttpsFailed { registry: String, reason: String },
    #[error("could not reach registry {registry}: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error("registry {registry} refused access to {reference}: check the credentials")]
    Unauthorized { registry: String, reference: String },
    #[error("registry {registry} failed a request for {reference}: {reason}")]
    Failed {
        registry: String,
        reference: String,
        reason: String,
    },
    #[error("could not set up a registry client: {0}")]
    Client(String),
}

/// Why a pull failed; each error names the reference and, where there is one, the blob.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("image {reference} was not found in its registry")]
    NotFound { reference: String },
    #[error("manifest {digest} of {reference} is invalid: {reason}")]
    BadManifest {
        reference: String,
        digest: String,
        reason: String,
    },
    #[error("{reference} has no image for platform {platform}; it has {available}")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("{reference} is not a container image: its config has media type {media_type:?}")]
    NotAnImage {
        reference: String,
        media_type: String,
    },
    #[error("layer {digest} of {reference} is zstd-compressed, which is not supported yet")]
    ZstdNotSupported { reference: String, digest: Digest },
    #[error("layer {digest} of {reference} has media type {media_type:?}, which is not supported")]
    UnsupportedLayer {
        reference: String,
        digest: Digest,
        media_type: String,
    },
    #[error(
        "blob {expected} of {reference} does not match its content: the registry served bytes \
         hashing to {actual}"
    )]
    DigestMismatch {
        reference: String,
        expected: Digest,
        actual: String,
    },
    #[error(
        "blob {digest} of {reference} should be {expected} bytes, but the registry served \
         {}{actual}", if *over { "more than " } else { "" }
    )]
    SizeMismatch {
        reference: String,
        digest: Digest,
        expected: u64,
        actual: u64,
        over: bool,
    },
    #[error("config {digest} of {reference} is invalid: {reason}")]
    BadConfig {
        reference: String,
        digest: Digest,
        reason: String,
    },
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("could not store {reference}: {source}")]
    Store {
        reference: String,
        source: StoreError,
    },
}

/// Why a push failed; each error names the manifest or the reference.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("manifest {digest} in the blob store is invalid: {reason}")]
    BadManifest { digest: Digest, reason: String },
    #[error("cannot push manifest {digest} as {reference}: the reference names another digest")]
    DigestConflict { reference: String, digest: Digest },
    #[error("image {digest} is not complete in the blob store: {source}")]
    Store { digest: Digest, source: StoreError },
    #[error(transparent)]
    Remote(#[from] RemoteError),
}
