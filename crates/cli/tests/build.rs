//! Builds from source, end to end: `spread deploy DIR` on the examples in `examples/`, built by
//! the real builder (debootstrap roots, runc build steps, package registries), released, run,
//! and asked over HTTP. Needs root, runc, debootstrap, iproute2, nftables and network access to
//! Debian, PyPI and npm. Builder roots are cached in one well-known folder, keyed by their
//! recipe's hash, so only a fresh machine makes them.

mod common;

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Platform;
use serde_json::Value;

/// The builder roots shared by test runs.
const BUILDER_CACHE: &str = "/var/cache/spread-test/builder";

fn platform(extra: &[&str]) -> Platform {
    let mut args = vec!["--builder-cache", BUILDER_CACHE];
    args.extend(extra);
    Platform::with_agent_args(&args)
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// A copy of the example `name` in the platform's temp dir, to change or build in.
fn copy_of(p: &Platform, name: &str) -> PathBuf {
    let to = p.dir.path().join(format!("src-{name}"));
    let status = Command::new("cp")
        .arg("-r")
        .arg(example(name))
        .arg(&to)
        .status()
        .unwrap();
    assert!(status.success());
    to
}

/// Deploys `dir` to a new app `app`, which must succeed, and returns the build output.
fn deploy(p: &Platform, app: &str, dir: &Path) -> String {
    if !p
        .ok(&["apps", "list", "--json"])
        .contains(&format!("\"{app}\""))
    {
        p.ok(&["apps", "create", app]);
    }
    p.ok(&["deploy", dir.to_str().unwrap(), "-a", app])
}

/// The answer to `GET /` from the app's running instance.
fn answer(p: &Platform, app: &str) -> String {
    p.wait_until("an HTTP answer from the app", || {
        let ps: Value = serde_json::from_str(&p.ok(&["ps", "-a", app, "--json"])).ok()?;
        let instance = ps.as_array()?.iter().find(|i| i["state"] == "running")?;
        let address: Ipv4Addr = instance["address"].as_str()?.parse().ok()?;
        let mut stream =
            std::net::TcpStream::connect_timeout(&(address, 8080).into(), Duration::from_secs(2))
                .ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        use std::io::Write;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).ok()?;
        reply.starts_with("HTTP/1.").then_some(reply)
    })
}

/// Every path in the image of the app's newest release, from its layers in the blob store.
fn image_paths(p: &Platform, app: &str) -> Vec<String> {
    let releases: Value = serde_json::from_str(&p.ok(&["releases", "-a", app, "--json"])).unwrap();
    let digest = releases[0]["image"]["digest"].as_str().unwrap().to_owned();
    let store = spread_image::BlobStore::open(p.data_dir().join("images")).unwrap();
    let digest: spread_image::Digest = digest.parse().unwrap();
    let mut paths = Vec::new();
    for (layer, _) in spread_image::local_layers(&store, &digest).unwrap() {
        let file = store.open_blob(&layer).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            paths.push(entry.path().unwrap().display().to_string());
        }
    }
    paths
}

/// The image holds what the app needs and none of the tools an attacker would want.
fn assert_minimal(paths: &[String]) {
    let has = |p: &str| paths.iter().any(|x| x.trim_end_matches('/') == p);
    for needed in [
        "etc/passwd",
        "etc/group",
        "etc/nsswitch.conf",
        "etc/ssl/certs/ca-certificates.crt",
        "usr/share/zoneinfo/Europe/Berlin",
    ] {
        assert!(has(needed), "{needed} missing from the image");
    }
    for tool in [
        "bin/sh",
        "usr/bin/sh",
        "usr/bin/dash",
        "usr/bin/bash",
        "bin/bash",
        "usr/bin/apt",
        "usr/bin/apt-get",
        "usr/bin/dpkg",
        "usr/bin/gcc",
        "usr/bin/cc",
        "usr/bin/ls",
        "usr/bin/cat",
        "usr/bin/cp",
        "usr/bin/go",
        "usr/bin/pip",
        "usr/bin/pip3",
        "usr/bin/npm",
        "usr/bin/perl",
        "usr/bin/curl",
        "usr/bin/busybox",
    ] {
        assert!(!has(tool), "{tool} is in the image");
    }
}

fn releases(p: &Platform, app: &str) -> usize {
    let releases: Value = serde_json::from_str(&p.ok(&["releases", "-a", app, "--json"])).unwrap();
    releases.as_array().unwrap().len()
}

#[test]
fn the_go_example_builds_into_a_tiny_image_that_answers_http() {
    let p = platform(&[]);
    let output = deploy(&p, "hello-go", &example("go"));
    assert!(output.contains("-----> Go app detected"), "{output}");
    assert!(output.contains("Released v1 of hello-go"), "{output}");
    assert!(answer(&p, "hello-go").contains("Hello from Go on Spread!"));
    let paths = image_paths(&p, "hello-go");
    assert_minimal(&paths);
    assert!(paths.iter().any(|x| x == "app/bin/hello-go"), "{paths:?}");
    assert!(
        !paths.iter().any(|x| x.ends_with(".go")),
        "no Go sources: {paths:?}"
    );
}

#[test]
fn the_python_example_builds_runs_and_rebuilds_reusing_its_dependencies() {
    let p = platform(&[]);
    let dir = copy_of(&p, "python");
    let output = deploy(&p, "hello-py", &dir);
    assert!(
        output.contains("Installing dependencies with pip"),
        "{output}"
    );
    assert!(output.contains("Released v1 of hello-py"), "{output}");
    assert!(answer(&p, "hello-py").contains("Hello, world, from Python on Spread!"));
    let paths = image_paths(&p, "hello-py");
    assert_minimal(&paths);
    for needed in [
        "usr/bin/python3.11",
        "app/.venv/bin/gunicorn",
        "app/app.py",
        "app/Procfile",
    ] {
        assert!(paths.iter().any(|x| x == needed), "{needed} missing");
    }
    // MarkupSafe's C speedups come with the dependencies.
    assert!(
        paths
            .iter()
            .any(|x| x.starts_with("app/.venv/lib/python3.11/site-packages/markupsafe/_speedups")),
        "{paths:?}"
    );

    // A code-only change builds only a new app layer.
    let app_py = dir.join("app.py");
    let code = std::fs::read_to_string(&app_py).unwrap();
    std::fs::write(&app_py, code.replace("Hello, ", "Hi again, ")).unwrap();
    let output = deploy(&p, "hello-py", &dir);
    assert!(
        output.contains("Reusing the dependencies installed for this requirements.txt"),
        "{output}"
    );
    assert!(
        !output.contains("Installing dependencies with pip"),
        "{output}"
    );
    assert!(output.contains("Released v2 of hello-py"), "{output}");
    p.wait_until("the new release answers", || {
        answer(&p, "hello-py")
            .contains("Hi again, world")
            .then_some(())
    });
}

#[test]
fn the_node_example_builds_with_npm_ci_and_answers_http() {
    let p = platform(&[]);
    let output = deploy(&p, "hello-node", &example("node"));
    assert!(
        output.contains("Installing dependencies with npm ci"),
        "{output}"
    );
    assert!(answer(&p, "hello-node").contains("Hello from Node on Spread!"));
    let paths = image_paths(&p, "hello-node");
    assert_minimal(&paths);
    assert!(
        paths
            .iter()
            .any(|x| x == "app/node_modules/express/package.json")
    );
}

#[test]
fn a_prebuilt_executable_ships_with_the_libraries_it_links() {
    let p = platform(&[]);
    let dir = copy_of(&p, "binary");
    let status = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(dir.join("server"))
        .arg(dir.join("server.c"))
        .status()
        .unwrap();
    assert!(status.success(), "gcc");
    let output = deploy(&p, "hello-bin", &dir);
    assert!(output.contains("Binary app detected"), "{output}");
    assert!(answer(&p, "hello-bin").contains("Hello from a binary on Spread!"));
    let paths = image_paths(&p, "hello-bin");
    assert_minimal(&paths);
    assert!(paths.iter().any(|x| x.ends_with("/libc.so.6")), "{paths:?}");
}

#[test]
fn a_failed_build_shows_the_tools_error_and_the_previous_release_keeps_running() {
    let p = platform(&[]);
    let dir = copy_of(&p, "python");
    deploy(&p, "broken-py", &dir);
    answer(&p, "broken-py");
    std::fs::write(
        dir.join("requirements.txt"),
        "flask==3.0.3\nno-such-package-spread-test==0.0.1\n",
    )
    .unwrap();
    let out = p.spread(&["deploy", dir.to_str().unwrap(), "-a", "broken-py"]);
    assert!(!out.status.success());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("No matching distribution found for no-such-package-spread-test"),
        "pip's own error is shown: {stdout}"
    );
    assert!(
        stderr.contains("Installing dependencies with pip") && stderr.contains("exit code 1"),
        "{stderr}"
    );
    assert!(stderr.contains("keeps running"), "{stderr}");
    assert_eq!(releases(&p, "broken-py"), 1, "nothing was released");
    assert!(answer(&p, "broken-py").contains("Hello, world"));
}

#[test]
fn unknown_projects_and_links_out_of_the_tree_are_refused_with_what_to_do() {
    let p = platform(&[]);
    p.ok(&["apps", "create", "odd"]);
    let dir = p.dir.path().join("src-odd");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "hello").unwrap();
    let err = p.fails(&["deploy", dir.to_str().unwrap(), "-a", "odd"]);
    assert!(
        err.contains("cannot tell what kind of project this is"),
        "{err}"
    );
    assert!(
        err.contains("web: python3 app.py"),
        "a Procfile example: {err}"
    );

    std::fs::write(dir.join("index.html"), "<h1>hi</h1>").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", dir.join("secrets")).unwrap();
    let err = p.fails(&["deploy", dir.to_str().unwrap(), "-a", "odd"]);
    assert!(
        err.contains("the link secrets points to /etc/shadow"),
        "{err}"
    );
    assert_eq!(releases(&p, "odd"), 0);
}

#[test]
fn a_build_over_its_time_limit_is_stopped_with_a_clear_error() {
    let p = platform(&["--build-timeout", "15"]);
    p.ok(&["apps", "create", "slow"]);
    let dir = p.dir.path().join("src-slow");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"slow","version":"1.0.0","scripts":{"build":"node -e \"setTimeout(() => {}, 600000)\"","start":"node server.js"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("package-lock.json"),
        r#"{"name":"slow","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"slow","version":"1.0.0"}}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("server.js"), "").unwrap();
    let err = p.fails(&["deploy", dir.to_str().unwrap(), "-a", "slow"]);
    assert!(err.contains("Running the build script"), "{err}");
    assert!(err.contains("past its time limit"), "{err}");
    assert_eq!(releases(&p, "slow"), 0);
}

#[test]
fn a_static_site_is_served_from_its_public_directory() {
    let p = platform(&[]);
    let output = deploy(&p, "hello-static", &example("static"));
    assert!(output.contains("Static app detected"), "{output}");
    let reply = answer(&p, "hello-static");
    assert!(
        reply.contains("Hello from a static site on Spread!"),
        "{reply}"
    );
    let paths = image_paths(&p, "hello-static");
    assert_minimal(&paths);
    assert!(
        paths.iter().any(|x| x == "app/public/index.html"),
        "{paths:?}"
    );
}
