//! Image manifests, indexes and configs as registries serve them (OCI and Docker schema 2).

use std::fmt;

use serde::Deserialize;

use crate::digest::Digest;
use crate::unpack::Compression;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/// Every manifest media type pull asks for.
pub(crate) const ACCEPTED_MANIFESTS: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// Registries refuse manifests above 4 MiB; so does Spread.
pub(crate) const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A descriptor whose digest has been checked to be sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub platform: Option<Platform>,
}

/// A parsed manifest: one image, or an index of per-platform images.
#[derive(Debug, Clone)]
pub(crate) enum Manifest {
    Image {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index {
        media_type: String,
        manifests: Vec<Descriptor>,
    },
}

/// An operating system and CPU architecture, as in `linux/amd64` or `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    pub fn linux(architecture: &str) -> Self {
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Linux on this machine's architecture, named as OCI names it (`amd64`, `arm64`, …).
    pub fn host() -> Self {
        Self::linux(match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        })
    }

    /// Whether an index entry for `entry` runs here; a missing variant matches any variant.
    pub fn matches(&self, entry: &Platform) -> bool {
        self.os == entry.os
            && self.architecture == entry.architecture
            && self
                .variant
                .as_ref()
                .is_none_or(|v| entry.variant.as_ref() == Some(v))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireManifest {
    schema_version: u32,
    media_type: Option<String>,
    config: Option<WireDescriptor>,
    layers: Option<Vec<WireDescriptor>>,
    manifests: Option<Vec<WireDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDescriptor {
    media_type: String,
    digest: String,
    size: u64,
    platform: Option<Platform>,
}

impl WireDescriptor {
    fn check(self) -> Result<Descriptor, String> {
        let digest = Digest::parse(&self.digest).map_err(|e| e.to_string())?;
        Ok(Descriptor {
            media_type: self.media_type,
            digest,
            size: self.size,
            platform: self.platform,
        })
    }
}

/// Parses a schema 2 manifest or index; the reason for a refusal is returned as text.
pub(crate) fn parse_manifest(bytes: &[u8]) -> Result<Manifest, String> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(format!("larger than {MAX_MANIFEST_BYTES} bytes"));
    }
    let wire: WireManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
    if wire.schema_version != 2 {
        return Err(format!(
            "schema version {} is not supported",
            wire.schema_version
        ));
    }
    let is_index = match wire.media_type.as_deref() {
        Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(other) => return Err(format!("media type {other:?} is not an image manifest")),
        // The OCI media type field is optional; fall back to the shape.
        None => wire.manifests.is_some(),
    };
    if is_index {
        let manifests = wire.manifests.ok_or("an index without a manifests list")?;
        return Ok(Manifest::Index {
            media_type: wire.media_type.unwrap_or_else(|| OCI_INDEX.into()),
            manifests: manifests
                .into_iter()
                .map(WireDescriptor::check)
                .collect::<Result<_, _>>()?,
        });
    }
    let config = wire
        .config
        .ok_or("an image manifest without a config")?
        .check()?;
    let layers = wire.layers.ok_or("an image manifest without layers")?;
    Ok(Manifest::Image {
        media_type: wire.media_type.unwrap_or_else(|| OCI_MANIFEST.into()),
        config,
        layers: layers
            .into_iter()
            .map(WireDescriptor::check)
            .collect::<Result<_, _>>()?,
    })
}

/// The first image manifest in an index built for `platform`.
pub(crate) fn select_platform<'a>(
    manifests: &'a [Descriptor],
    platform: &Platform,
) -> Option<&'a Descriptor> {
    manifests.iter().find(|m| {
        matches!(m.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST)
            && m.platform.as_ref().is_some_and(|p| platform.matches(p))
    })
}

/// Why a layer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LayerRefusal {
    Zstd,
    Unsupported,
}

/// How a layer of `media_type` is compressed, if Spread can unpack it.
pub(crate) fn layer_compression(media_type: &str) -> Result<Compression, LayerRefusal> {
    match media_type {
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Ok(Compression::Gzip),
        OCI_LAYER_TAR | DOCKER_LAYER_TAR => Ok(Compression::None),
        OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD => Err(LayerRefusal::Zstd),
        _ => Err(LayerRefusal::Unsupported),
    }
}

pub(crate) fn is_image_config(media_type: &str) -> bool {
    matches!(media_type, OCI_CONFIG | DOCKER_CONFIG)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn docker_schema_2_manifests_and_lists_parse_like_oci_ones() {
        let image = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{D}","size":2}},
            "layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","digest":"{D}","size":3}}]}}"#
        );
        let Ok(Manifest::Image { layers, .. }) = parse_manifest(image.as_bytes()) else {
            panic!("not parsed as an image");
        };
        assert_eq!(
            layer_compression(&layers[0].media_type),
            Ok(Compression::Gzip)
        );
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D}","size":1,
              "platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#
        );
        let Ok(Manifest::Index { manifests, .. }) = parse_manifest(list.as_bytes()) else {
            panic!("not parsed as an index");
        };
        assert!(select_platform(&manifests, &Platform::linux("arm64")).is_some());
        let v7 = Platform {
            variant: Some("v7".into()),
            ..Platform::linux("arm64")
        };
        assert!(select_platform(&manifests, &v7).is_none());
    }

    #[test]
    fn old_schemas_other_digests_and_zstd_are_refused() {
        assert!(
            parse_manifest(br#"{"schemaVersion":1}"#)
                .unwrap_err()
                .contains("schema")
        );
        let sha512 = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}",
            "digest":"sha512:ab","size":1}},"layers":[]}}"#
        );
        assert!(
            parse_manifest(sha512.as_bytes())
                .unwrap_err()
                .contains("sha512:ab")
        );
        assert_eq!(layer_compression(OCI_LAYER_ZSTD), Err(LayerRefusal::Zstd));
        assert_eq!(
            layer_compression("text/plain"),
            Err(LayerRefusal::Unsupported)
        );
    }
}
