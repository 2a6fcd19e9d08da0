//! Pulling an image from a registry into the blob store, verified blob by blob.

use std::io::Read;

use oci_client::secrets::RegistryAuth as OciAuth;

use crate::digest::Digest;
use crate::errors::PullError;
use crate::image_config::{ImageConfigSummary, summarize_config};
use crate::manifest::{
    ACCEPTED_MANIFESTS, Descriptor, LayerRefusal, Manifest, is_image_config, layer_compression,
    parse_manifest, select_platform,
};
use crate::reference::ImageReference;
use crate::registry::{
    Failure, PullOptions, RegistryAuth, Transport, classify, client_for, oci_reference,
};
use crate::store::{BlobStore, StoreError};
use crate::transfer::{FetchError, fetch_blob};
use crate::unpack::Compression;

/// Image configs larger than this are refused: they are read into memory.
const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// An image whose manifest, config and layers are all in the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    pub reference: ImageReference,
    /// The platform's image manifest (not the index a tag may point to).
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    /// Layers bottom to top, with how each blob is compressed.
    pub layers: Vec<(Digest, Compression)>,
    pub config: ImageConfigSummary,
    /// Config and layer blobs this pull downloaded or found already stored; manifests are
    /// always fetched, to resolve the reference.
    pub transferred: TransferStats,
}

/// Blobs moved by one pull or push.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    pub blobs: u64,
    pub bytes: u64,
    /// Blobs skipped because the destination already had them.
    pub reused_blobs: u64,
}

/// Pulls `reference` into `store`: resolves an index to `options.platform`'s manifest, then
/// streams the config and layers into the store, which verifies each digest, skipping blobs
/// it already has. The manifest is stored last, so a stored manifest has all its blobs.
pub async fn pull(
    store: &BlobStore,
    reference: &ImageReference,
    auth: &RegistryAuth,
    options: &PullOptions,
) -> Result<PulledImage, PullError> {
    let (client, transport) = client_for(reference, options.insecure)?;
    let puller = Puller {
        client,
        transport,
        auth: auth.to_oci(),
        reference,
        image: oci_reference(reference),
        store,
    };
    let (mut bytes, mut digest) = puller.manifest(reference).await?;
    let mut manifest = puller.parse(&bytes, &digest)?;
    if let Manifest::Index { manifests, .. } = &manifest {
        let chosen =
            select_platform(manifests, &options.platform).ok_or_else(|| PullError::NoPlatform {
                reference: reference.to_string(),
                platform: options.platform.to_string(),
                available: available_platforms(manifests),
            })?;
        (bytes, digest) = puller
            .manifest(&reference.with_digest(chosen.digest.clone()))
            .await?;
        manifest = puller.parse(&bytes, &digest)?;
    }
    let Manifest::Image { config, layers, .. } = manifest else {
        return Err(puller.bad_manifest(digest.as_str(), "an index nested inside an index".into()));
    };
    if !is_image_config(&config.media_type) {
        return Err(PullError::NotAnImage {
            reference: reference.to_string(),
            media_type: config.media_type,
        });
    }
    let compressions = layers
        .iter()
        .map(|layer| puller.compression(layer))
        .collect::<Result<Vec<_>, _>>()?;

    let mut transferred = TransferStats::default();
    for blob in std::iter::once(&config).chain(&layers) {
        puller.fetch(blob, &mut transferred).await?;
    }
    let summary = puller.summary(&config.digest)?;
    puller
        .store
        .put(&digest, &bytes[..])
        .map_err(|source| puller.store_error(source))?;
    tracing::info!(%reference, manifest = %digest, ?transferred, "pulled image");
    Ok(PulledImage {
        reference: reference.clone(),
        manifest_digest: digest,
        config_digest: config.digest,
        layers: layers
            .into_iter()
            .map(|l| l.digest)
            .zip(compressions)
            .collect(),
        config: summary,
        transferred,
    })
}

struct Puller<'a> {
    client: oci_client::Client,
    transport: Transport,
    auth: OciAuth,
    reference: &'a ImageReference,
    image: oci_client::Reference,
    store: &'a BlobStore,
}

impl Puller<'_> {
    /// Fetches the manifest `at` names, with the digest of its exact bytes.
    async fn manifest(&self, at: &ImageReference) -> Result<(Vec<u8>, Digest), PullError> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&oci_reference(at), &self.auth, ACCEPTED_MANIFESTS)
            .await
            .map_err(|e| self.failure(e))?;
        let digest = Digest::of(&bytes);
        if let Some(expected) = at.digest().filter(|&expected| expected != &digest) {
            return Err(PullError::DigestMismatch {
                reference: self.reference.to_string(),
                expected: expected.clone(),
                actual: digest.to_string(),
            });
        }
        Ok((bytes.to_vec(), digest))
    }

    fn parse(&self, bytes: &[u8], digest: &Digest) -> Result<Manifest, PullError> {
        parse_manifest(bytes).map_err(|reason| self.bad_manifest(digest.as_str(), reason))
    }

    fn compression(&self, layer: &Descriptor) -> Result<Compression, PullError> {
        layer_compression(&layer.media_type).map_err(|refusal| match refusal {
            LayerRefusal::Zstd => PullError::ZstdNotSupported {
                reference: self.reference.to_string(),
                digest: layer.digest.clone(),
            },
            LayerRefusal::Unsupported => PullError::UnsupportedLayer {
                reference: self.reference.to_string(),
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
            },
        })
    }

    async fn fetch(&self, blob: &Descriptor, stats: &mut TransferStats) -> Result<(), PullError> {
        if let Ok(size) = self.store.size(&blob.digest) {
            if size == blob.size {
                stats.reused_blobs += 1;
                return Ok(());
            }
            return Err(self.size_mismatch(blob, size, false));
        }
        let reference = self.reference.to_string();
        let size = fetch_blob(&self.client, &self.image, blob, self.store)
            .await
            .map_err(|e| match e {
                FetchError::DigestMismatch { actual } => PullError::DigestMismatch {
                    reference,
                    expected: blob.digest.clone(),
                    actual: actual.to_string(),
                },
                FetchError::SizeMismatch { actual, over } => self.size_mismatch(blob, actual, over),
                FetchError::Remote(e) => match self.failure(e) {
                    PullError::NotFound { reference } => {
                        PullError::Remote(crate::errors::RemoteError::Failed {
                            registry: self.reference.registry().to_owned(),
                            reason: format!("blob {} is missing from the registry", blob.digest),
                            reference,
                        })
                    }
                    other => other,
                },
                FetchError::Store(e) => self.store_error(e),
            })?;
        stats.blobs += 1;
        stats.bytes += size;
        Ok(())
    }

    fn summary(&self, config: &Digest) -> Result<ImageConfigSummary, PullError> {
        let mut bytes = Vec::new();
        self.store
            .open_blob(config)
            .and_then(|file| {
                file.take(MAX_CONFIG_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|source| StoreError::Io {
                        path: self.store.path(config),
                        source,
                    })
            })
            .map_err(|e| self.store_error(e))?;
        let bad = |reason| PullError::BadConfig {
            reference: self.reference.to_string(),
            digest: config.clone(),
            reason,
        };
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(bad(format!("larger than {MAX_CONFIG_BYTES} bytes")));
        }
        summarize_config(&bytes).map_err(bad)
    }

    fn failure(&self, err: oci_client::errors::OciDistributionError) -> PullError {
        let reference = self.reference.to_string();
        match classify(err, self.reference, self.transport) {
            Failure::NotFound => PullError::NotFound { reference },
            Failure::DigestMismatch { expected, actual } => match Digest::parse(&expected) {
                Ok(expected) => PullError::DigestMismatch {
                    reference,
                    expected,
                    actual,
                },
                Err(e) => self.bad_manifest(&expected, e.to_string()),
            },
            Failure::Remote(e) => PullError::Remote(e),
        }
    }

    fn size_mismatch(&self, blob: &Descriptor, actual: u64, over: bool) -> PullError {
        PullError::SizeMismatch {
            reference: self.reference.to_string(),
            digest: blob.digest.clone(),
            expected: blob.size,
            actual,
            over,
        }
    }

    fn bad_manifest(&self, digest: &str, reason: String) -> PullError {
        PullError::BadManifest {
            reference: self.reference.to_string(),
            digest: digest.to_owned(),
            reason,
        }
    }

    fn store_error(&self, source: StoreError) -> PullError {
        PullError::Store {
            reference: self.reference.to_string(),
            source,
        }
    }
}

fn available_platforms(manifests: &[Descriptor]) -> String {
    let names: Vec<String> = manifests
        .iter()
        .filter_map(|m| m.platform.as_ref().map(|p| p.to_string()))
        .collect();
    if names.is_empty() {
        "no platform-tagged images".into()
    } else {
        names.join(", ")
    }
}
