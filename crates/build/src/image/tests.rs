//! Images written over stored layers: spread-image reads them as it reads pulled ones, the
//! config carries the spec and no time, and the same input always gives the same digest.

use serde_json::Value;
use spread_image::{Compression, local_blobs, local_layers};

use super::*;
use crate::layer::LayerBuilder;

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    (dir, store)
}

fn layer(store: &BlobStore, path: &str, content: &str) -> Layer {
    let mut builder = LayerBuilder::new();
    builder.add_bytes(path, content, 0o644).unwrap();
    builder.write(store).unwrap()
}

fn json(store: &BlobStore, digest: &Digest) -> Value {
    serde_json::from_reader(store.open_blob(digest).unwrap()).unwrap()
}

fn spec() -> ImageSpec {
    ImageSpec {
        env: vec!["PATH=/usr/bin:/bin".into(), "PORT=8080".into()],
        cmd: vec!["python3".into(), "-m".into(), "app".into()],
        working_dir: Some("/app".into()),
        user: Some("1000:1000".into()),
    }
}

#[test]
fn a_written_image_reads_back_like_a_pulled_one() {
    let (_dir, store) = store();
    let runtime = layer(&store, "usr/bin/python3", "python");
    let app = layer(&store, "app/main.py", "print('hi')");

    let manifest = write_image(&store, &[runtime.clone(), app.clone()], &spec()).unwrap();

    assert_eq!(
        local_layers(&store, &manifest).unwrap(),
        [
            (runtime.digest.clone(), Compression::Gzip),
            (app.digest.clone(), Compression::Gzip)
        ]
    );
    let blobs = local_blobs(&store, &manifest).unwrap();
    assert_eq!(blobs.len(), 4);
    assert_eq!(blobs[0], manifest);
    assert_eq!(blobs[2..], [runtime.digest.clone(), app.digest.clone()]);
    let config_digest = &blobs[1];

    let written = json(&store, &manifest);
    assert_eq!(written["schemaVersion"], 2);
    assert_eq!(written["mediaType"], OCI_MANIFEST);
    assert_eq!(written["config"]["mediaType"], OCI_CONFIG);
    assert_eq!(
        written["config"]["size"],
        store.size(config_digest).unwrap()
    );
    assert_eq!(written["layers"][1]["size"], app.size);

    let config = json(&store, config_digest);
    assert_eq!(
        config["architecture"],
        Platform::host().architecture.as_str()
    );
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["Env"], serde_json::json!(spec().env));
    assert_eq!(config["config"]["Cmd"], serde_json::json!(spec().cmd));
    assert_eq!(config["config"]["WorkingDir"], "/app");
    assert_eq!(config["config"]["User"], "1000:1000");
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([runtime.diff_id, app.diff_id])
    );
    assert!(config.get("created").is_none() && config.get("history").is_none());
}

#[test]
fn the_same_layers_and_spec_give_the_same_digest() {
    let (_dir, store) = store();
    let (_other_dir, other_store) = self::store();
    let one = layer(&store, "app/main.py", "print('hi')");
    let again = layer(&other_store, "app/main.py", "print('hi')");

    let first = write_image(&store, std::slice::from_ref(&one), &spec()).unwrap();
    let second = write_image(&store, std::slice::from_ref(&one), &spec()).unwrap();
    let elsewhere = write_image(&other_store, &[again], &spec()).unwrap();
    let other_cmd = ImageSpec {
        cmd: vec!["python3".into(), "other.py".into()],
        ..spec()
    };
    let changed = write_image(&store, &[one], &other_cmd).unwrap();

    assert_eq!(first, second);
    assert_eq!(first, elsewhere);
    assert_ne!(first, changed);
}

#[test]
fn an_empty_spec_leaves_the_run_settings_out() {
    let (_dir, store) = store();
    let one = layer(&store, "app/main.py", "print('hi')");

    let manifest = write_image(&store, &[one], &ImageSpec::default()).unwrap();

    let config_digest = &local_blobs(&store, &manifest).unwrap()[1];
    assert_eq!(json(&store, config_digest)["config"], serde_json::json!({}));
}

#[test]
fn a_layer_missing_from_the_store_is_refused() {
    let (_dir, store) = store();
    let (_other_dir, other_store) = self::store();
    let elsewhere = layer(&other_store, "app/main.py", "print('hi')");

    let err = write_image(&store, std::slice::from_ref(&elsewhere), &spec()).unwrap_err();

    assert!(
        matches!(&err, ImageError::MissingLayer(d) if d == &elsewhere.digest),
        "{err}"
    );
    assert!(err.to_string().contains(elsewhere.digest.as_str()));
}
