//! `POST /v1/apps/{app}/images/push`: which release's image is pushed, the refusals, and a push
//! to a real registry on loopback that pulls back with the same digest.

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::builder::{FakeBuilder, built, fake_builder};
use common::{Api, FakeNode, api_with, assert_error};
use serde_json::{Value, json};
use spread_api::{BuildEvent, PushedImage};
use spread_image::{BlobStore, Platform, PullOptions, RegistryAuth, pull};
use spread_testkit::images::{BuiltImage, put_image};
use spread_testkit::registry::LocalRegistry;

/// A server with app `shop`, and the builder that deploys it.
async fn shop() -> (Api, Arc<FakeBuilder>) {
    let (builder, dyn_builder) = fake_builder();
    let api = api_with(Arc::new(FakeNode::default()), dyn_builder, |_| {}).await;
    api.create_app("shop").await;
    (api, builder)
}

/// Builds and releases an image for `arch`; returns it.
async fn deploy(api: &Api, builder: &FakeBuilder, arch: &str) -> BuiltImage {
    let image = put_image(&api.images(), arch);
    builder.ends(Ok(built(&image)));
    let events = api.build("shop", b"source".to_vec()).await;
    assert!(
        matches!(events.last(), Some(BuildEvent::Released { .. })),
        "{events:?}"
    );
    image
}

async fn push(api: &Api, app: &str, request: Value) -> (StatusCode, Value) {
    api.call(
        Method::POST,
        &format!("/v1/apps/{app}/images/push"),
        Some(request),
    )
    .await
}

#[tokio::test]
async fn pushing_for_an_unknown_app_or_release_is_404() {
    let (api, builder) = shop().await;
    deploy(&api, &builder, "amd64").await;
    let (status, body) = push(&api, "ghost", json!({ "reference": "127.0.0.1:1/x:1" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "app_not_found");

    let (status, body) = push(
        &api,
        "shop",
        json!({ "reference": "127.0.0.1:1/x:1", "release": 7 }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "release_not_found");
    assert!(
        body["message"].as_str().unwrap().contains("no release v7"),
        "{body}"
    );
}

#[tokio::test]
async fn an_app_never_deployed_has_no_image_to_push() {
    let (api, _builder) = shop().await;
    // A config change makes a release, but without an image.
    api.set_config(json!({ "GREETING": "hi" })).await;
    let (status, body) = push(&api, "shop", json!({ "reference": "127.0.0.1:1/x:1" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "not_deployed");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("has never been deployed"),
        "{body}"
    );

    let (status, body) = push(
        &api,
        "shop",
        json!({ "reference": "127.0.0.1:1/x:1", "release": 1 }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "release_has_no_image");
}

#[tokio::test]
async fn an_invalid_reference_is_refused_and_names_its_field() {
    let (api, builder) = shop().await;
    deploy(&api, &builder, "amd64").await;
    let (status, body) = push(&api, "shop", json!({ "reference": "Not A Reference" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_image");
    assert_eq!(body["field"], "reference");
}

#[tokio::test]
async fn an_unreachable_registry_is_a_502_that_names_it() {
    let (api, builder) = shop().await;
    deploy(&api, &builder, "amd64").await;
    // A loopback port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reference = format!("127.0.0.1:{port}/shop:v1");
    let (status, body) = push(&api, "shop", json!({ "reference": reference })).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_error(&body, "image_push_failed");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}")),
        "{body}"
    );
}

#[tokio::test]
async fn a_release_image_pushed_to_a_registry_pulls_back_with_its_digest() {
    let registry = LocalRegistry::start();
    let (api, builder) = shop().await;
    let first = deploy(&api, &builder, "amd64").await;
    let second = deploy(&api, &builder, "arm64").await;

    // Without a release: the newest with an image.
    let reference = registry.reference("shop:latest-build");
    let (status, body) = push(&api, "shop", json!({ "reference": reference.to_string() })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pushed: PushedImage = serde_json::from_value(body).unwrap();
    assert_eq!(
        pushed,
        PushedImage {
            reference: reference.to_string(),
            digest: second.manifest.to_string(),
            release: 2,
        }
    );

    let older = registry.reference("shop:v1");
    let (status, body) = push(
        &api,
        "shop",
        json!({ "reference": older.to_string(), "release": 1 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["digest"], first.manifest.to_string());
    assert_eq!(body["release"], 1);

    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let options = PullOptions {
        insecure: false,
        platform: Platform::linux("amd64"),
    };
    let pulled = pull(&store, &older, &RegistryAuth::Anonymous, &options)
        .await
        .unwrap();
    assert_eq!(pulled.manifest_digest, first.manifest);
}
