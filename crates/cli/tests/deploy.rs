//! `spread deploy --image` against a real local registry: the image is pulled, verified and
//! released; bad references and commands are refused before anything is released.

mod common;

use common::Platform;
use serde_json::Value;
use spread_image::{BlobStore, PushOptions, RegistryAuth, push};
use spread_testkit::images::{BuiltImage, put_image};
use spread_testkit::registry::LocalRegistry;

/// A registry on loopback holding `shop:1`, a one-layer image whose entrypoint is
/// `/bin/hello --greeting amd64`.
fn registry_with_image() -> (LocalRegistry, BuiltImage, tempfile::TempDir) {
    let registry = LocalRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let image = put_image(&store, "amd64");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let options = PushOptions { insecure: false };
    runtime
        .block_on(push(
            &store,
            &image.manifest,
            &registry.reference("shop:1"),
            &RegistryAuth::Anonymous,
            &options,
        ))
        .unwrap();
    (registry, image, dir)
}

fn releases(p: &Platform) -> Vec<Value> {
    serde_json::from_str(&p.ok(&["releases", "-a", "shop", "--json"])).unwrap()
}

#[test]
fn an_image_from_a_registry_becomes_a_release_with_its_command() {
    let (registry, image, _dir) = registry_with_image();
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    p.ok(&["config", "set", "GREETING=hi", "-a", "shop"]);
    let reference = format!("127.0.0.1:{}/shop:1", registry.port());
    let out = p.ok(&["deploy", "--image", &reference, "-a", "shop"]);
    assert!(
        out.contains("release v2") && out.contains("web: /bin/hello --greeting amd64"),
        "{out}"
    );

    let newest = &releases(&p)[0];
    assert_eq!(newest["description"], format!("Deploy {reference}"));
    assert_eq!(newest["image"]["digest"], image.manifest.to_string());
    assert_eq!(
        newest["processes"]["web"],
        serde_json::json!(["/bin/hello", "--greeting", "amd64"])
    );
    assert_eq!(
        newest["config"]["GREETING"], "hi",
        "a deploy keeps the config"
    );

    // Config changes keep running the deployed image.
    p.ok(&["config", "set", "GREETING=hello", "-a", "shop"]);
    assert_eq!(
        releases(&p)[0]["image"]["digest"],
        image.manifest.to_string()
    );
}

#[test]
fn process_commands_can_be_given_and_shell_syntax_is_refused() {
    let (registry, _image, _dir) = registry_with_image();
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    let reference = format!("127.0.0.1:{}/shop:1", registry.port());
    let out = p.ok(&[
        "deploy",
        "--image",
        &reference,
        "-a",
        "shop",
        "--process",
        "web=/bin/hello --port $PORT",
        "--process",
        "worker=/bin/hello 'work hard'",
    ]);
    assert!(out.contains("worker: /bin/hello work hard"), "{out}");
    let newest = &releases(&p)[0];
    assert_eq!(
        newest["processes"]["web"],
        serde_json::json!(["/bin/hello", "--port", "$PORT"])
    );

    let err = p.fails(&[
        "deploy",
        "--image",
        &reference,
        "-a",
        "shop",
        "--process",
        "web=a | b",
    ]);
    assert!(
        err.contains("shell operator `|`") && err.contains("no shell"),
        "{err}"
    );
    assert_eq!(releases(&p).len(), 1, "a refused deploy makes no release");
}

#[test]
fn unknown_images_and_apps_are_clear_errors_and_release_nothing() {
    let (registry, _image, _dir) = registry_with_image();
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    let missing = format!("127.0.0.1:{}/shop:nope", registry.port());
    let err = p.fails(&["deploy", "--image", &missing, "-a", "shop"]);
    assert!(err.contains("was not found"), "{err}");
    let err = p.fails(&["deploy", "--image", "Not A Reference", "-a", "shop"]);
    assert!(err.contains("invalid image reference"), "{err}");
    let err = p.fails(&["deploy", "--image", &missing, "-a", "ghost"]);
    assert!(err.contains("app `ghost` does not exist"), "{err}");
    let err = p.fails(&["deploy", "-a", "shop"]);
    assert!(err.contains("--image REF"), "{err}");
    assert!(releases(&p).is_empty());
}
