//! Image references parse with Docker's defaults and refuse bad input with errors naming it.

use proptest::prelude::*;
use spread_image::{ImageReference, Transport};

const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn parts(input: &str) -> (String, String, Option<String>, Option<String>) {
    let r = ImageReference::parse(input).unwrap();
    (
        r.registry().to_owned(),
        r.repository().to_owned(),
        r.tag().map(str::to_owned),
        r.digest().map(|d| d.to_string()),
    )
}

fn owned(
    registry: &str,
    repo: &str,
    tag: Option<&str>,
    digest: Option<&str>,
) -> (String, String, Option<String>, Option<String>) {
    (
        registry.into(),
        repo.into(),
        tag.map(Into::into),
        digest.map(Into::into),
    )
}

#[test]
fn bare_names_default_to_docker_hub_library_and_latest() {
    assert_eq!(
        parts("debian"),
        owned("docker.io", "library/debian", Some("latest"), None)
    );
    assert_eq!(
        parts("debian:12"),
        owned("docker.io", "library/debian", Some("12"), None)
    );
    assert_eq!(
        parts("grafana/loki"),
        owned("docker.io", "grafana/loki", Some("latest"), None)
    );
    assert_eq!(
        parts("index.docker.io/library/debian"),
        owned("docker.io", "library/debian", Some("latest"), None)
    );
    assert_eq!(
        ImageReference::parse("debian").unwrap().to_string(),
        "docker.io/library/debian:latest"
    );
}

#[test]
fn registries_are_recognised_by_a_dot_a_port_or_localhost() {
    assert_eq!(
        parts("ghcr.io/acme/app:v1.2"),
        owned("ghcr.io", "acme/app", Some("v1.2"), None)
    );
    assert_eq!(
        parts("127.0.0.1:5000/app"),
        owned("127.0.0.1:5000", "app", Some("latest"), None)
    );
    assert_eq!(
        parts("localhost/app:1"),
        owned("localhost", "app", Some("1"), None)
    );
    assert_eq!(
        parts("[::1]:5000/a/b:c"),
        owned("[::1]:5000", "a/b", Some("c"), None)
    );
    // Without a slash, `localhost:5000` is a repository with a tag, as in Docker.
    assert_eq!(
        parts("localhost:5000"),
        owned("docker.io", "library/localhost", Some("5000"), None)
    );
}

#[test]
fn digests_pin_the_image_and_drop_the_default_tag() {
    let at = format!("registry.example.com/app@{DIGEST}");
    assert_eq!(
        parts(&at),
        owned("registry.example.com", "app", None, Some(DIGEST))
    );
    let both = format!("registry.example.com/app:1@{DIGEST}");
    assert_eq!(
        parts(&both),
        owned("registry.example.com", "app", Some("1"), Some(DIGEST))
    );
    assert_eq!(ImageReference::parse(&both).unwrap().to_string(), both);
}

#[test]
fn bad_references_are_refused_with_errors_naming_the_input() {
    for bad in [
        "",
        "App",
        "app:",
        "app:-x",
        "app@sha256:abc",
        "app@md5:abc",
        "ex ample/app",
        "a//b",
        "registry.example.com:port/app",
        "-registry.example.com/app",
        "app_-x",
        "app..x",
        "app___x",
        "[::1/app",
        "[zz]:5000/app",
        "@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ] {
        let err = ImageReference::parse(bad).unwrap_err();
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    let long_tag = format!("app:{}", "t".repeat(129));
    assert!(ImageReference::parse(&long_tag).is_err());
}

#[test]
fn only_registries_on_this_machine_get_plain_http_unless_marked_insecure() {
    let transport = |input: &str, insecure| {
        Transport::for_registry(&ImageReference::parse(input).unwrap(), insecure)
    };
    for local in [
        "localhost:5000/app",
        "127.0.0.1/app",
        "127.1.2.3:80/app",
        "[::1]:5000/app",
    ] {
        assert_eq!(transport(local, false), Transport::Http, "{local}");
    }
    for remote in [
        "registry.example.invalid/app:1",
        "debian",
        "10.0.0.5:5000/app",
        "0.0.0.0:5000/app",
    ] {
        assert_eq!(transport(remote, false), Transport::Https, "{remote}");
        assert_eq!(transport(remote, true), Transport::Http, "{remote}");
    }
}

proptest! {
    #[test]
    fn parsing_never_panics_and_what_parses_round_trips(input in "\\PC{0,80}") {
        if let Ok(reference) = ImageReference::parse(&input) {
            let again = ImageReference::parse(&reference.to_string()).unwrap();
            prop_assert_eq!(again, reference);
        }
    }

    #[test]
    fn reference_shaped_text_never_panics(
        input in "[a-z0-9.:/@_\\-\\[\\]]{0,40}(:[A-Za-z0-9._-]{0,10})?(@sha256:[0-9a-f]{0,64})?"
    ) {
        if let Ok(reference) = ImageReference::parse(&input) {
            prop_assert_eq!(ImageReference::parse(&reference.to_string()).unwrap(), reference);
        }
    }
}
