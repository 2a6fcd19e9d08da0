//! What a pull refuses: tampered or mis-sized blobs, plain http, unknown tags, zstd, no auth.

use std::fs;

use crate::{ANONYMOUS, on, push_anonymously, store};
use spread_image::{
    ImageReference, PullError, PullOptions, PushError, PushOptions, RegistryAuth, RemoteError,
    Transport, pull, push,
};
use spread_testkit::images::{
    LAYER_GZIP, LAYER_ZSTD, OCI_CONFIG, descriptor, manifest_json, put_image,
    put_image_with_layer_type,
};
use spread_testkit::registry::LocalRegistry;

#[tokio::test]
async fn a_tampered_blob_fails_the_pull_and_is_not_stored() {
    let registry = LocalRegistry::start();
    let (_source_dir, source) = store();
    let image = put_image(&source, "amd64");
    let reference = registry.reference("spread/tampered:1");
    push_anonymously(&source, &image.manifest, &reference).await;
    let data = registry.blob_data_path(&image.layer);
    let mut bytes = fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&data, &bytes).unwrap();

    let (_dir, store) = store();
    let err = pull(&store, &reference, &ANONYMOUS, &on("amd64"))
        .await
        .unwrap_err();
    match &err {
        PullError::DigestMismatch { expected, .. } => assert_eq!(expected, &image.layer),
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains(image.layer.as_str()), "{err}");
    assert!(!store.has(&image.layer));
    assert!(
        !store.has(&image.manifest),
        "no manifest without all its blobs"
    );
    let leftovers = fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(
        leftovers,
        store.list().unwrap().len(),
        "no temporary file is left"
    );
}

#[tokio::test]
async fn a_blob_missing_from_the_registry_fails_the_pull_naming_it() {
    let registry = LocalRegistry::start();
    let (_source_dir, source) = store();
    let image = put_image(&source, "amd64");
    let reference = registry.reference("spread/missing-blob:1");
    push_anonymously(&source, &image.manifest, &reference).await;
    fs::remove_file(registry.blob_data_path(&image.layer)).unwrap();

    let (_dir, store) = store();
    let err = pull(&store, &reference, &ANONYMOUS, &on("amd64"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PullError::Remote(RemoteError::Failed { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains(image.layer.as_str()), "{err}");
    assert!(!store.has(&image.layer));
}

#[tokio::test]
async fn a_layer_whose_size_disagrees_with_its_descriptor_is_refused() {
    let registry = LocalRegistry::start();
    let (_source_dir, source) = store();
    let image = put_image(&source, "amd64");
    let config_size = source.size(&image.config).unwrap();
    for (tag, claimed) in [
        ("short", image.layer_size - 7),
        ("long", image.layer_size + 7),
    ] {
        let manifest = manifest_json(
            descriptor(OCI_CONFIG, &image.config, config_size),
            vec![descriptor(LAYER_GZIP, &image.layer, claimed)],
        );
        let manifest = source.put_bytes(&manifest).unwrap();
        let reference = registry.reference(&format!("spread/sizes:{tag}"));
        push_anonymously(&source, &manifest, &reference).await;

        let (_dir, store) = store();
        let err = pull(&store, &reference, &ANONYMOUS, &on("amd64"))
            .await
            .unwrap_err();
        match &err {
            PullError::SizeMismatch {
                digest, expected, ..
            } => {
                assert_eq!((digest, *expected), (&image.layer, claimed), "{tag}");
            }
            other => panic!("expected a size mismatch for {tag}, got {other:?}"),
        }
        assert!(err.to_string().contains(image.layer.as_str()), "{err}");
        assert!(!store.has(&manifest), "{tag}");
    }
}

#[tokio::test]
async fn a_registry_not_on_this_machine_is_only_reached_over_https() {
    let remote = ImageReference::parse("registry.example.invalid/app:1").unwrap();
    assert_eq!(Transport::for_registry(&remote, false), Transport::Https);

    // 0.0.0.0 reaches the local registry but is not a loopback address, so plain http needs
    // the user's say-so; the https attempt fails against a plain-http registry.
    let registry = LocalRegistry::start();
    let (_source_dir, source) = store();
    let image = put_image(&source, "amd64");
    push_anonymously(
        &source,
        &image.manifest,
        &registry.reference("spread/remote:1"),
    )
    .await;
    let host = format!("0.0.0.0:{}", registry.port());
    let unmarked = ImageReference::parse(&format!("{host}/spread/remote:1")).unwrap();

    let (_dir, store) = store();
    let err = pull(&store, &unmarked, &ANONYMOUS, &on("amd64"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PullError::Remote(RemoteError::HttpsFailed { registry, .. }) if *registry == host),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("--insecure-registry {host}")),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());

    let insecure = PullOptions {
        insecure: true,
        ..on("amd64")
    };
    let pulled = pull(&store, &unmarked, &ANONYMOUS, &insecure)
        .await
        .unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
}

#[tokio::test]
async fn an_unknown_tag_or_repository_is_a_not_found_error_naming_the_reference() {
    let registry = LocalRegistry::start();
    let (_source_dir, source) = store();
    let image = put_image(&source, "amd64");
    push_anonymously(
        &source,
        &image.manifest,
        &registry.reference("spread/known:1"),
    )
    .await;

    let (_dir, store) = store();
    for name in ["spread/known:missing", "spread/unknown:1"] {
        let reference = registry.reference(name);
        let err = pull(&store, &reference, &ANONYMOUS, &on("amd64"))
            .await
            .unwrap_err();
        assert!(matches!(err, PullError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains(&reference.to_string()), "{err}");
    }
}

#[tokio::test]
async fn a_zstd_layer_is_refused_as_not_supported_yet_before_any_download() {
    let registry = LocalRegistry::start();
    let (_source_dir, source) = store();
    let image = put_image_with_layer_type(&source, "amd64", LAYER_ZSTD);
    let reference = registry.reference("spread/zstd:1");
    push_anonymously(&source, &image.manifest, &reference).await;

    let (_dir, store) = store();
    let err = pull(&store, &reference, &ANONYMOUS, &on("amd64"))
        .await
        .unwrap_err();
    match &err {
        PullError::ZstdNotSupported { digest, .. } => assert_eq!(digest, &image.layer),
        other => panic!("expected zstd to be refused, got {other:?}"),
    }
    assert!(err.to_string().contains("not supported yet"), "{err}");
    assert!(store.list().unwrap().is_empty());
}

#[tokio::test]
async fn basic_auth_credentials_are_required_and_accepted() {
    // bcrypt (cost 4) of "correct horse battery staple", made offline with Python's crypt.
    let registry = LocalRegistry::start_with_htpasswd(
        "spread:$2b$04$oT5Lvm8OLeaVkdytwBPwNe2xBs94gPAaJuKqc42vehBaIEf5QtoUW",
    );
    let user = |password: &str| RegistryAuth::Basic {
        user: "spread".into(),
        password: password.into(),
    };
    let (_source_dir, source) = store();
    let image = put_image(&source, "amd64");
    let reference = registry.reference("spread/private:1");
    let options = PushOptions::default();
    let refused = push(&source, &image.manifest, &reference, &ANONYMOUS, &options).await;
    assert!(
        matches!(
            refused,
            Err(PushError::Remote(RemoteError::Unauthorized { .. }))
        ),
        "{refused:?}"
    );
    let good = user("correct horse battery staple");
    push(&source, &image.manifest, &reference, &good, &options)
        .await
        .unwrap();

    let (_dir, store) = store();
    for auth in [ANONYMOUS, user("wrong")] {
        let err = pull(&store, &reference, &auth, &on("amd64"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PullError::Remote(RemoteError::Unauthorized { .. })),
            "{err:?}"
        );
        assert!(err.to_string().contains(&reference.to_string()), "{err}");
    }
    let pulled = pull(&store, &reference, &good, &on("amd64")).await.unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest);
}
