//! The image of a build: an OCI image config and manifest over layers already in the blob
//! store, stored as `spread_image::pull` stores pulled images. Nothing in them depends on the
//! time, so the same layers and settings always give the same manifest digest.

use serde::Serialize;
use spread_image::{BlobStore, Digest, Platform, StoreError};

use crate::layer::Layer;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// How the image's process runs, as the image config says it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSpec {
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// The command and its arguments; images have no shell to split a string.
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
    /// A user name or `uid[:gid]`.
    pub user: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("layer {0} is not in the blob store; write the layer before the image")]
    MissingLayer(Digest),
    #[error("layer {digest} is {stored} bytes in the blob store, not {expected}")]
    LayerSize {
        digest: Digest,
        stored: u64,
        expected: u64,
    },
    #[error("cannot store the image: {0}")]
    Store(#[from] StoreError),
}

/// Stores the config and manifest of an image of `layers` (bottom first) for this machine's
/// platform, and returns the manifest's digest.
pub fn write_image(
    store: &BlobStore,
    layers: &[Layer],
    spec: &ImageSpec,
) -> Result<Digest, ImageError> {
    for layer in layers {
        let stored = store.size(&layer.digest).map_err(|e| match e {
            StoreError::NotFound(digest) => ImageError::MissingLayer(digest),
            other => ImageError::Store(other),
        })?;
        if stored != layer.size {
            return Err(ImageError::LayerSize {
                digest: layer.digest.clone(),
                stored,
                expected: layer.size,
            });
        }
    }
    let platform = Platform::host();
    let config = ConfigFile {
        architecture: &platform.architecture,
        os: &platform.os,
        variant: platform.variant.as_deref(),
        config: RunConfig {
            env: &spec.env,
            cmd: &spec.cmd,
            working_dir: spec.working_dir.as_deref(),
            user: spec.user.as_deref(),
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|l| &l.diff_id).collect(),
        },
    };
    let config = serde_json::to_vec(&config).expect("image configs serialize to JSON");
    let config_digest = store.put_bytes(&config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        config: Descriptor {
            media_type: OCI_CONFIG,
            digest: &config_digest,
            size: config.len() as u64,
        },
        layers: layers
            .iter()
            .map(|layer| Descriptor {
                media_type: layer.media_type(),
                digest: &layer.digest,
                size: layer.size,
            })
            .collect(),
    };
    let manifest = serde_json::to_vec(&manifest).expect("image manifests serialize to JSON");
    // Stored last, like `pull` does: a stored manifest always has its blobs.
    Ok(store.put_bytes(&manifest)?)
}

/// The image config; field order is fixed by the struct, so the bytes are too. No `created`
/// and no history: they would carry the time.
#[derive(Serialize)]
struct ConfigFile<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    config: RunConfig<'a>,
    rootfs: RootFs<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    env: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    cmd: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<&'a Digest>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'static str,
    digest: &'a Digest,
    size: u64,
}

#[cfg(test)]
mod tests;
