//! Tiny images built in the test: a gzip layer, an OCI config and manifest, and an index.

use std::io::Write;

use flate2::Compression as Level;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use spread_image::{BlobStore, Digest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The digests of an image written into a store.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub manifest: Digest,
    pub manifest_size: u64,
    pub config: Digest,
    pub layer: Digest,
    pub layer_size: u64,
}

/// A gzip-compressed tar with `files`, deterministic byte for byte.
pub fn gzip_layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        tar.append_data(&mut header, path, *data).unwrap();
    }
    let mut gz = GzEncoder::new(Vec::new(), Level::default());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// An OCI image config for `arch` with an entrypoint, cmd, env and the usual runtime fields.
pub fn config_json(arch: &str, diff_id: &Digest) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": ["/bin/hello"],
            "Cmd": ["--greeting", arch],
            "Env": ["PATH=/bin", format!("ARCH={arch}")],
            "WorkingDir": "/srv",
            "User": "1000:1000",
            "ExposedPorts": { "8080/tcp": {}, "53/udp": {} }
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] }
    }))
    .unwrap()
}

/// Writes a one-layer image for `arch` into `store`, with the layer described as `layer_type`.
pub fn put_image_with_layer_type(store: &BlobStore, arch: &str, layer_type: &str) -> BuiltImage {
    let payload = format!("#!/bin/hello\nbuilt for {arch}\n").repeat(64);
    let tar_files: [(&str, &[u8]); 2] = [
        ("bin/hello", payload.as_bytes()),
        ("etc/greeting", b"hello from spread\n"),
    ];
    let layer = gzip_layer(&tar_files);
    let diff_id = Digest::of(&flate2_decode(&layer));
    put_one_layer(store, &layer, layer_type, &config_json(arch, &diff_id))
}

/// Writes `layer`, `config` and a manifest of the two into `store`.
fn put_one_layer(store: &BlobStore, layer: &[u8], layer_type: &str, config: &[u8]) -> BuiltImage {
    let layer_digest = store.put_bytes(layer).unwrap();
    let config_digest = store.put_bytes(config).unwrap();
    let manifest = manifest_json(
        descriptor(OCI_CONFIG, &config_digest, config.len() as u64),
        vec![descriptor(layer_type, &layer_digest, layer.len() as u64)],
    );
    BuiltImage {
        manifest: store.put_bytes(&manifest).unwrap(),
        manifest_size: manifest.len() as u64,
        config: config_digest,
        layer: layer_digest,
        layer_size: layer.len() as u64,
    }
}

/// Writes a one-layer image running the static executable `binary` as `/app` into `store`,
/// for the host's architecture, with `env` (`KEY=value`) as its environment.
pub fn put_app_image(store: &BlobStore, binary: &[u8], env: &[&str]) -> BuiltImage {
    put_layer_image(store, gzip_layer(&[("app", binary)]), env)
}

/// A gzip layer that tries to write `file` on the host through a symlink `escape -> dir`.
pub fn escaping_layer(dir: &str, file: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    link.set_mtime(1_700_000_000);
    tar.append_link(&mut link, "escape", dir).unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_size(6);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    tar.append_data(&mut header, format!("escape/{file}"), &b"pwned\n"[..])
        .unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Level::default());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// Writes a one-layer image of `layer` (gzip) whose entrypoint is `/app` into `store`.
pub fn put_layer_image(store: &BlobStore, layer: Vec<u8>, env: &[&str]) -> BuiltImage {
    let diff_id = Digest::of(&flate2_decode(&layer));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "config": { "Entrypoint": ["/app"], "Env": env },
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] }
    }))
    .unwrap();
    put_one_layer(store, &layer, LAYER_GZIP, &config)
}

pub fn put_image(store: &BlobStore, arch: &str) -> BuiltImage {
    put_image_with_layer_type(store, arch, LAYER_GZIP)
}

/// Writes an OCI index of `images`, each tagged `linux/<arch>`, and returns its digest.
pub fn put_index(store: &BlobStore, images: &[(&str, &BuiltImage)]) -> Digest {
    let manifests: Vec<Value> = images
        .iter()
        .map(|(arch, image)| {
            let mut entry = descriptor(OCI_MANIFEST, &image.manifest, image.manifest_size);
            entry["platform"] = json!({ "os": "linux", "architecture": arch });
            entry
        })
        .collect();
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    store
        .put_bytes(&serde_json::to_vec(&index).unwrap())
        .unwrap()
}

pub fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Value {
    json!({ "mediaType": media_type, "digest": digest.to_string(), "size": size })
}

pub fn manifest_json(config: Value, layers: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": layers,
    }))
    .unwrap()
}

fn flate2_decode(gz: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .unwrap();
    out
}
