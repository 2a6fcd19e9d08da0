//! `spread deploy --image` against a real local registry: the image is pulled, verified and
//! released; bad references and commands are refused before anything is released. `spread
//! deploy DIR` packs and uploads the project and prints the build's events; `spread images
//! push` sends a release's image back to a registry.

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
        out.contains("v2 serves now") && out.contains("web: /bin/hello --greeting amd64"),
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

/// A project dir with two files to send and one `.spreadignore` keeps back.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), "print('hi')\n").unwrap();
    std::fs::write(dir.path().join(".spreadignore"), "data/\n").unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/big.bin"), vec![0u8; 4096]).unwrap();
    dir
}

#[test]
fn a_source_deploy_is_packed_and_uploaded_and_a_failed_build_says_the_app_runs_on() {
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    let project = project();
    let dir = project.path().to_str().unwrap();
    let out = p.spread(&["deploy", dir, "-a", "shop"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // app.py and .spreadignore; data/ stays behind.
    assert!(
        stderr.contains("Packed 2 files (") && stderr.contains(&format!("from {dir}")),
        "{stderr}"
    );
    // This platform runs no builder: the build fails, and says how to deploy instead.
    assert!(
        stderr.contains("the build failed: this node has no builder")
            && stderr.contains("the previous release, if any, keeps running"),
        "{stderr}"
    );
    assert!(releases(&p).is_empty());
}

#[test]
fn a_source_deploy_with_json_prints_only_its_events() {
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    let project = project();
    let dir = project.path().to_str().unwrap();
    let out = p.spread(&["deploy", dir, "-a", "shop", "--json"]);
    assert!(!out.status.success(), "a failed build fails the command");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let last = events.last().expect("at least the outcome");
    assert_eq!(last["type"], "failed", "{stdout}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Packed"),
        "nothing but errors on stderr"
    );
}

#[test]
fn a_source_deploy_refuses_image_flags_and_unknown_apps() {
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    let project = project();
    let dir = project.path().to_str().unwrap();
    let err = p.fails(&["deploy", dir, "-a", "shop", "--process", "web=./server"]);
    assert!(err.contains("--process is only for --image"), "{err}");
    let err = p.fails(&["deploy", dir, "--image", "127.0.0.1:1/x:1", "-a", "shop"]);
    assert!(err.contains("not both"), "{err}");
    let err = p.fails(&["deploy", dir, "-a", "ghost"]);
    assert!(err.contains("app `ghost` does not exist"), "{err}");
    let missing = project.path().join("missing");
    let err = p.fails(&["deploy", missing.to_str().unwrap(), "-a", "shop"]);
    assert!(err.contains("is not a directory"), "{err}");
    assert!(releases(&p).is_empty());
}

#[test]
fn a_deployed_image_is_pushed_to_another_registry_reference() {
    let (registry, image, _dir) = registry_with_image();
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    let err = p.fails(&["images", "push", "-a", "shop", "127.0.0.1:1/shop:copy"]);
    assert!(err.contains("has never been deployed"), "{err}");

    let source = format!("127.0.0.1:{}/shop:1", registry.port());
    p.ok(&["deploy", "--image", &source, "-a", "shop"]);
    p.ok(&["config", "set", "GREETING=hi", "-a", "shop"]);
    let copy = format!("127.0.0.1:{}/copies/shop:v1", registry.port());
    let out = p.ok(&["images", "push", "-a", "shop", &copy]);
    assert_eq!(
        out.trim(),
        format!("Pushed v2 of shop to {copy} ({})", image.manifest)
    );
    let out = p.ok(&[
        "images",
        "push",
        "-a",
        "shop",
        "--release",
        "v1",
        &copy,
        "--json",
    ]);
    let pushed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pushed["release"], 1);
    assert_eq!(pushed["digest"], image.manifest.to_string());
    let err = p.fails(&["images", "push", "-a", "shop", "--release", "9", &copy]);
    assert!(err.contains("no release v9"), "{err}");
}
