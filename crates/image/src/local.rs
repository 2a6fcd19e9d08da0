//! Images already in the blob store: what a node needs to run one it pulled before.

use std::io::Read;

use crate::digest::Digest;
use crate::manifest::{
    Descriptor, MAX_MANIFEST_BYTES, Manifest, layer_compression, parse_manifest,
};
use crate::store::{BlobStore, StoreError};
use crate::unpack::Compression;

/// Why a stored image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LocalImageError {
    #[error("image {manifest} is not in the image store: {source}")]
    Missing {
        manifest: Digest,
        source: StoreError,
    },
    #[error("image {manifest} in the image store is invalid: {reason}")]
    Invalid { manifest: Digest, reason: String },
}

/// The layers of the image manifest `manifest`, bottom first, with their compression. The
/// manifest must be an image manifest (not an index), as `pull` stores it.
pub fn local_layers(
    store: &BlobStore,
    manifest: &Digest,
) -> Result<Vec<(Digest, Compression)>, LocalImageError> {
    let (_, layers) = read_image_manifest(store, manifest)?;
    let invalid = |reason: String| LocalImageError::Invalid {
        manifest: manifest.clone(),
        reason,
    };
    layers
        .into_iter()
        .map(|layer| match layer_compression(&layer.media_type) {
            Ok(compression) => Ok((layer.digest, compression)),
            Err(_) => Err(invalid(format!(
                "layer {} has media type {:?}, which cannot be unpacked",
                layer.digest, layer.media_type
            ))),
        })
        .collect()
}

/// Every blob the image needs: the manifest itself, its config and its layers.
pub fn local_blobs(store: &BlobStore, manifest: &Digest) -> Result<Vec<Digest>, LocalImageError> {
    let (config, layers) = read_image_manifest(store, manifest)?;
    let mut blobs = vec![manifest.clone(), config.digest];
    blobs.extend(layers.into_iter().map(|l| l.digest));
    Ok(blobs)
}

/// The config and layer descriptors of a stored image manifest, checked against its digest.
fn read_image_manifest(
    store: &BlobStore,
    manifest: &Digest,
) -> Result<(Descriptor, Vec<Descriptor>), LocalImageError> {
    let invalid = |reason: String| LocalImageError::Invalid {
        manifest: manifest.clone(),
        reason,
    };
    let missing = |source| LocalImageError::Missing {
        manifest: manifest.clone(),
        source,
    };
    let mut bytes = Vec::new();
    store
        .open_blob(manifest)
        .map_err(missing)?
        .take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(format!("cannot read it: {e}")))?;
    if &Digest::of(&bytes) != manifest {
        return Err(invalid("its content does not match its digest".to_owned()));
    }
    match parse_manifest(&bytes).map_err(invalid)? {
        Manifest::Image { config, layers, .. } => Ok((config, layers)),
        Manifest::Index { .. } => Err(invalid("an index, not an image manifest".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_of_a_stored_manifest_and_clear_errors_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let layer = Digest::of(b"layer");
        let config = Digest::of(b"config");
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":6}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":5}}]}}"#
        );
        let digest = store.put_bytes(manifest.as_bytes()).unwrap();
        let layers = local_layers(&store, &digest).unwrap();
        assert_eq!(layers, vec![(layer.clone(), Compression::Gzip)]);
        let blobs = local_blobs(&store, &digest).unwrap();
        assert_eq!(blobs, vec![digest.clone(), config, layer]);

        let absent = Digest::of(b"absent");
        let err = local_layers(&store, &absent).unwrap_err().to_string();
        assert!(err.contains("not in the image store"), "{err}");

        let not_json = store.put_bytes(b"{}").unwrap();
        let err = local_layers(&store, &not_json).unwrap_err().to_string();
        assert!(err.contains("is invalid"), "{err}");
    }
}
