//! Pushing an image (or a multi-platform index) from the blob store to a registry.

use std::io::Read;

use oci_client::errors::OciDistributionError;
use reqwest::header::HeaderValue;

use crate::digest::Digest;
use crate::errors::{PushError, RemoteError};
use crate::manifest::{Descriptor, MAX_MANIFEST_BYTES, Manifest, parse_manifest};
use crate::pull::TransferStats;
use crate::reference::ImageReference;
use crate::registry::{
    Failure, PushOptions, RegistryAuth, Transport, classify, client_for, oci_reference,
};
use crate::store::{BlobStore, StoreError};
use crate::transfer::BlobChunks;

/// What a push sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    pub manifest_digest: Digest,
    /// Config and layer blobs uploaded, and those the registry already had.
    pub uploaded: TransferStats,
}

/// Pushes the image whose manifest (or index) is `manifest` in `store` to `reference`: blobs
/// the registry lacks first, then each platform's manifest, then `manifest` under the
/// reference's tag (or digest).
pub async fn push(
    store: &BlobStore,
    manifest: &Digest,
    reference: &ImageReference,
    auth: &RegistryAuth,
    options: &PushOptions,
) -> Result<PushReport, PushError> {
    if reference.digest().is_some_and(|d| d != manifest) {
        return Err(PushError::DigestConflict {
            reference: reference.to_string(),
            digest: manifest.clone(),
        });
    }
    let (client, transport) = client_for(reference, options.insecure)?;
    let target = match reference.tag() {
        Some(tag) => oci_client::Reference::with_tag(
            reference.registry().into(),
            reference.repository().into(),
            tag.into(),
        ),
        None => oci_reference(reference),
    };
    // Blob checks and uploads do not register credentials themselves.
    client
        .store_auth_if_needed(target.resolve_registry(), &auth.to_oci())
        .await;
    let pusher = Pusher {
        client,
        transport,
        reference,
        store,
    };
    let mut uploaded = TransferStats::default();
    let (bytes, parsed) = pusher.read_manifest(manifest)?;
    match &parsed {
        Manifest::Image { .. } => pusher.push_blobs(manifest, &parsed, &mut uploaded).await?,
        Manifest::Index { manifests, .. } => {
            for child in manifests {
                let (child_bytes, child_manifest) = pusher.read_manifest(&child.digest)?;
                pusher
                    .push_blobs(&child.digest, &child_manifest, &mut uploaded)
                    .await?;
                let at = oci_reference(&reference.with_digest(child.digest.clone()));
                pusher
                    .push_manifest(&at, child_bytes, &child_manifest)
                    .await?;
            }
        }
    }
    pusher.push_manifest(&target, bytes, &parsed).await?;
    tracing::info!(%reference, manifest = %manifest, ?uploaded, "pushed image");
    Ok(PushReport {
        manifest_digest: manifest.clone(),
        uploaded,
    })
}

struct Pusher<'a> {
    client: oci_client::Client,
    transport: Transport,
    reference: &'a ImageReference,
    store: &'a BlobStore,
}

impl Pusher<'_> {
    fn read_manifest(&self, digest: &Digest) -> Result<(Vec<u8>, Manifest), PushError> {
        let store_error = |source| PushError::Store {
            digest: digest.clone(),
            source,
        };
        let mut bytes = Vec::new();
        self.store
            .open_blob(digest)
            .map_err(store_error)?
            .take(MAX_MANIFEST_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| {
                store_error(StoreError::Io {
                    path: self.store.path(digest),
                    source,
                })
            })?;
        let manifest = parse_manifest(&bytes).map_err(|reason| PushError::BadManifest {
            digest: digest.clone(),
            reason,
        })?;
        Ok((bytes, manifest))
    }

    /// Uploads the config and layers of image manifest `digest` that the registry lacks.
    async fn push_blobs(
        &self,
        digest: &Digest,
        manifest: &Manifest,
        stats: &mut TransferStats,
    ) -> Result<(), PushError> {
        let Manifest::Image { config, layers, .. } = manifest else {
            return Err(PushError::BadManifest {
                digest: digest.clone(),
                reason: "an index nested inside an index".into(),
            });
        };
        let image = oci_reference(self.reference);
        for blob in std::iter::once(config).chain(layers) {
            self.push_blob(&image, digest, blob, stats).await?;
        }
        Ok(())
    }

    async fn push_blob(
        &self,
        image: &oci_client::Reference,
        manifest: &Digest,
        blob: &Descriptor,
        stats: &mut TransferStats,
    ) -> Result<(), PushError> {
        let digest = blob.digest.to_string();
        let exists = self.client.blob_exists(image, &digest).await;
        if exists.map_err(|e| self.failure(e))? {
            stats.reused_blobs += 1;
            return Ok(());
        }
        let store_error = |source| PushError::Store {
            digest: manifest.clone(),
            source,
        };
        let file = self.store.open_blob(&blob.digest).map_err(store_error)?;
        let size = self.store.size(&blob.digest).map_err(store_error)?;
        self.client
            .push_blob_stream(image, BlobChunks::spawn(file), &digest, Some(size))
            .await
            .map_err(|e| self.failure(e))?;
        stats.blobs += 1;
        stats.bytes += size;
        Ok(())
    }

    async fn push_manifest(
        &self,
        at: &oci_client::Reference,
        bytes: Vec<u8>,
        manifest: &Manifest,
    ) -> Result<(), PushError> {
        let media_type = match manifest {
            Manifest::Image { media_type, .. } | Manifest::Index { media_type, .. } => media_type,
        };
        let content_type = HeaderValue::from_str(media_type).map_err(|_| {
            self.failure(OciDistributionError::UnsupportedMediaTypeError(
                media_type.clone(),
            ))
        })?;
        self.client
            .push_manifest_raw(at, bytes, content_type)
            .await
            .map_err(|e| self.failure(e))?;
        Ok(())
    }

    fn failure(&self, err: OciDistributionError) -> PushError {
        let registry = self.reference.registry().to_owned();
        let reference = self.reference.to_string();
        match classify(err, self.reference, self.transport) {
            Failure::Remote(e) => PushError::Remote(e),
            Failure::NotFound => PushError::Remote(RemoteError::Failed {
                registry,
                reference,
                reason: "the registry answered not found".into(),
            }),
            Failure::DigestMismatch { expected, actual } => {
                PushError::Remote(RemoteError::Failed {
                    registry,
                    reference,
                    reason: format!("digest mismatch: expected {expected}, got {actual}"),
                })
            }
        }
    }
}
