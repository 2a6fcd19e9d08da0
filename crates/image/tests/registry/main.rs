//! Pull and push against a real local docker-registry, started per test on 127.0.0.1.

mod refusals;

use std::fs;
use std::io;

use spread_image::{
    BlobStore, Compression, Digest, HashingReader, ImageConfigSummary, ImageReference, Platform,
    PullError, PullOptions, PushOptions, RegistryAuth, TransferStats, UnpackOptions, pull, push,
    unpack_layer,
};
use spread_testkit::images::{put_image, put_index};
use spread_testkit::registry::LocalRegistry;

const ANONYMOUS: RegistryAuth = RegistryAuth::Anonymous;

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("oci")).unwrap();
    (dir, store)
}

fn on(architecture: &str) -> PullOptions {
    PullOptions {
        insecure: false,
        platform: Platform::linux(architecture),
    }
}

async fn push_anonymously(source: &BlobStore, manifest: &Digest, reference: &ImageReference) {
    push(
        source,
        manifest,
        reference,
        &ANONYMOUS,
        &PushOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("push of {reference} failed: {e}"));
}

fn verify_every_blob(store: &BlobStore) {
    for digest in store.list().unwrap() {
        let mut reader = HashingReader::new(store.open_blob(&digest).unwrap());
        io::copy(&mut reader, &mut io::sink()).unwrap();
        assert_eq!(reader.finish().0, digest);
    }
}

#[tokio::test]
async fn a_pushed_image_pulls_back_verified_into_a_fresh_store() {
    let registry = LocalRegistry::start();
    let (_source_dir, source) = store();
    let image = put_image(&source, "amd64");
    let reference = registry.reference("spread/hello:1");
    let report = push(
        &source,
        &image.manifest,
        &reference,
        &ANONYMOUS,
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.manifest_digest, image.manifest);
    assert_eq!(
        (report.uploaded.blobs, report.uploaded.reused_blobs),
        (2, 0)
    );

    let (_dir, store) = store();
    let pulled = pull(&store, &reference, &ANONYMOUS, &on("amd64"))
        .await
        .unwrap();
    assert_eq!(pulled.reference, reference);
    assert_eq!(pulled.manifest_digest, image.manifest);
    assert_eq!(pulled.config_digest, image.config);
    assert_eq!(
        pulled.layers,
        vec![(image.layer.clone(), Compression::Gzip)]
    );
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        pulled.config,
        ImageConfigSummary {
            entrypoint: strings(&["/bin/hello"]),
            cmd: strings(&["--greeting", "amd64"]),
            env: strings(&["PATH=/bin", "ARCH=amd64"]),
            working_dir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            exposed_ports: strings(&["53/udp", "8080/tcp"]),
        }
    );
    let mut expected = vec![image.manifest, image.config, image.layer.clone()];
    expected.sort();
    assert_eq!(store.list().unwrap(), expected);
    verify_every_blob(&store);

    let rootfs = tempfile::tempdir().unwrap();
    let layer = store.open_blob(&image.layer).unwrap();
    unpack_layer(
        layer,
        Compression::Gzip,
        rootfs.path(),
        &UnpackOptions::default(),
    )
    .unwrap();
    let greeting = fs::read_to_string(rootfs.path().join("etc/greeting")).unwrap();
    assert_eq!(greeting, "hello from spread\n");
}

#[tokio::test]
async fn pulling_or_pushing_again_transfers_no_blob_already_there() {
    let registry = LocalRegistry::start();
    let (_source_dir, source) = store();
    let image = put_image(&source, "amd64");
    let reference = registry.reference("spread/again:1");
    push_anonymously(&source, &image.manifest, &reference).await;

    let (_dir, store) = store();
    let first = pull(&store, &reference, &ANONYMOUS, &on("amd64"))
        .await
        .unwrap();
    assert_eq!(first.transferred.blobs, 2);
    let before = store.list().unwrap();
    let second = pull(&store, &reference, &ANONYMOUS, &on("amd64"))
        .await
        .unwrap();
    let nothing_new = TransferStats {
        blobs: 0,
        bytes: 0,
        reused_blobs: 2,
    };
    assert_eq!(second.transferred, nothing_new);
    assert_eq!(store.list().unwrap(), before);

    let again = push(
        &source,
        &image.manifest,
        &reference,
        &ANONYMOUS,
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(again.uploaded, nothing_new);
}

#[tokio::test]
async fn a_manifest_list_resolves_to_the_requested_platform() {
    let registry = LocalRegistry::start();
    let (_source_dir, source) = store();
    let amd64 = put_image(&source, "amd64");
    let arm64 = put_image(&source, "arm64");
    let index = put_index(&source, &[("amd64", &amd64), ("arm64", &arm64)]);
    let reference = registry.reference("spread/multi:1");
    push_anonymously(&source, &index, &reference).await;

    for (arch, image) in [("amd64", &amd64), ("arm64", &arm64)] {
        let (_dir, store) = store();
        let pulled = pull(&store, &reference, &ANONYMOUS, &on(arch))
            .await
            .unwrap();
        assert_eq!(pulled.manifest_digest, image.manifest, "{arch}");
        assert_eq!(pulled.config_digest, image.config, "{arch}");
        assert_eq!(pulled.config.cmd, ["--greeting", arch]);
        assert!(!store.has(&index), "the index itself is not kept");
        verify_every_blob(&store);
    }

    let (_dir, store) = store();
    let err = pull(&store, &reference, &ANONYMOUS, &on("riscv64"))
        .await
        .unwrap_err();
    assert!(matches!(err, PullError::NoPlatform { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("linux/riscv64") && message.contains("linux/arm64"),
        "{message}"
    );
}
