//! `POST /v1/apps/{app}/builds`: the upload is checked before it is read, streamed to disk
//! under its own limit, built by the node's builder, and released; the answer streams the
//! build's events and ends with `released` or `failed`.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use bytes::Bytes;
use common::builder::{argv, build_events, built, fake_builder};
use common::{FakeNode, api_with, assert_error};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use spread_api::BuildEvent;
use spread_server::{BuildFailure, NoBuilder};
use spread_testkit::images::put_image;

/// A body whose bytes never come: an answer that waited for them would never be given.
struct NeverArrives;

impl futures_core::Stream for NeverArrives {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Pending
    }
}

/// An upload whose body never arrives, answered without waiting for it.
async fn refused_upload(api: &common::Api, app: &str, length: u64) -> (StatusCode, Value) {
    let upload = api.upload(app, Body::from_stream(NeverArrives), Some(length));
    let response = tokio::time::timeout(Duration::from_secs(10), upload)
        .await
        .expect("answered before any of the body arrived");
    error_of(response).await
}

/// A body of `count` chunks of `size` bytes, sent without a declared length.
struct Chunks {
    count: usize,
    size: usize,
}

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.count == 0 {
            return Poll::Ready(None);
        }
        self.count -= 1;
        Poll::Ready(Some(Ok(Bytes::from(vec![7u8; self.size]))))
    }
}

async fn error_of(response: axum::response::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn releases_of(body: &Value) -> &Vec<Value> {
    body.as_array().expect("a list of releases")
}

#[tokio::test]
async fn a_build_for_an_unknown_app_is_404_before_the_upload_is_read() {
    let api = api_with(Arc::new(FakeNode::default()), Arc::new(NoBuilder), |_| {}).await;
    let (status, body) = refused_upload(&api, "ghost", 1000).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "app_not_found");
}

#[tokio::test]
async fn a_declared_size_over_the_limit_is_413_before_the_upload_is_read() {
    let api = api_with(Arc::new(FakeNode::default()), Arc::new(NoBuilder), |_| {}).await;
    api.create_app("shop").await;
    let (status, body) = refused_upload(&api, "shop", 600 << 20).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "upload_too_large");
    let message = body["message"].as_str().unwrap();
    for part in ["600.0 MiB", "512.0 MiB", ".spreadignore"] {
        assert!(message.contains(part), "{message}");
    }
    assert!(api.uploads().is_empty());
}

#[tokio::test]
async fn an_undeclared_upload_over_the_limit_is_413_and_its_file_is_removed() {
    let (builder, dyn_builder) = fake_builder();
    let api = api_with(Arc::new(FakeNode::default()), dyn_builder, |config| {
        config.max_upload_bytes = 64 * 1024;
    })
    .await;
    api.create_app("shop").await;
    let over = Chunks {
        count: 9,
        size: 8 * 1024,
    };
    let (status, body) = error_of(api.upload("shop", Body::from_stream(over), None).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "upload_too_large");
    assert!(
        body["message"].as_str().unwrap().contains("64.0 KiB"),
        "{body}"
    );
    assert!(api.uploads().is_empty(), "{:?}", api.uploads());
    assert!(builder.seen().is_empty(), "nothing was built");

    // Exactly the limit is fine.
    let at_limit = Chunks {
        count: 8,
        size: 8 * 1024,
    };
    let events = build_events(api.upload("shop", Body::from_stream(at_limit), None).await).await;
    assert!(
        matches!(events.last(), Some(BuildEvent::Failed { .. })),
        "{events:?}"
    );
    assert_eq!(builder.seen()[0].source.len(), 64 * 1024);
}

#[tokio::test]
async fn a_build_streams_its_steps_and_ends_with_the_release_it_made() {
    let (builder, dyn_builder) = fake_builder();
    let api = api_with(Arc::new(FakeNode::default()), dyn_builder, |_| {}).await;
    api.create_app("shop").await;
    api.set_config(json!({ "GREETING": "hi" })).await;
    let image = put_image(&api.images(), "amd64");
    let step = BuildEvent::Step {
        name: "Installing dependencies with pip".to_owned(),
    };
    let output = BuildEvent::Output {
        line: "Successfully installed flask".to_owned(),
    };
    builder.sends(vec![step.clone(), output.clone()]);
    builder.ends(Ok(built(&image)));
    // Over the 1 MiB limit of JSON bodies: uploads have a limit of their own.
    let source: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();

    let events = api.build("shop", source.clone()).await;

    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[..2], [step, output]);
    let BuildEvent::RollingOut { release: rolling } = &events[2] else {
        panic!("the release rolls out first: {events:?}");
    };
    let BuildEvent::Released { release } = &events[3] else {
        panic!("the last event is the release: {events:?}");
    };
    assert_eq!(rolling.version, 2);
    assert_eq!(release.version, 2);
    let seen = builder.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].request.app_name, "shop");
    assert_eq!(seen[0].source, source, "the upload arrives whole");
    let id = &seen[0].request.id;
    let stored = release.image.as_ref().expect("the release has the image");
    assert_eq!(stored.digest, image.manifest.to_string());
    assert_eq!(stored.reference, format!("build {id}"));
    assert!(
        api.uploads().is_empty(),
        "the upload is removed after the build"
    );

    let (status, body) = api.call(Method::GET, "/v1/apps/shop/releases", None).await;
    assert_eq!(status, StatusCode::OK);
    let newest = releases_of(&body).last().unwrap();
    assert_eq!(newest["version"], 2);
    assert_eq!(newest["description"], format!("Deploy build {id}"));
    assert_eq!(newest["image"]["digest"], image.manifest.to_string());
    assert_eq!(
        newest["processes"],
        json!({
            "web": argv(&["/bin/hello", "--greeting", "amd64"]),
            "worker": argv(&["/bin/hello", "--work"]),
        })
    );
    assert_eq!(
        newest["config"]["GREETING"], "hi",
        "a build keeps the config"
    );
}

#[tokio::test]
async fn the_release_command_runs_before_the_release_with_its_environment() {
    let (builder, dyn_builder) = fake_builder();
    let api = api_with(Arc::new(FakeNode::default()), dyn_builder, |_| {}).await;
    api.create_app("shop").await;
    api.set_config(json!({ "DATABASE_URL": "postgres://db/shop" }))
        .await;
    let image = put_image(&api.images(), "amd64");
    let mut with_release = built(&image);
    with_release.release_command = Some(argv(&["/bin/migrate", "$DATABASE_URL"]));
    builder.ends(Ok(with_release));

    let events = api.build("shop", b"source".to_vec()).await;

    let tasks = builder.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].argv, argv(&["/bin/migrate", "postgres://db/shop"]));
    assert_eq!(tasks[0].process.as_str(), "release");
    assert_eq!(
        tasks[0].release, 2,
        "it gets the environment of the release to be"
    );
    assert!(
        matches!(&events[0], BuildEvent::Step { name } if name.contains("/bin/migrate $DATABASE_URL")),
        "{events:?}"
    );
    assert!(matches!(&events[1], BuildEvent::Output { line } if line.contains("release task")));
    assert!(
        matches!(events.last(), Some(BuildEvent::Released { release }) if release.version == 2),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_failed_release_command_releases_nothing() {
    let (builder, dyn_builder) = fake_builder();
    let api = api_with(Arc::new(FakeNode::default()), dyn_builder, |_| {}).await;
    api.create_app("shop").await;
    let image = put_image(&api.images(), "amd64");
    let mut with_release = built(&image);
    with_release.release_command = Some(argv(&["/bin/migrate"]));
    builder.ends(Ok(with_release));
    builder.release_fails(BuildFailure {
        message: "the release command exited with code 3; nothing was released".to_owned(),
        step: Some("release command".to_owned()),
        exit_code: Some(3),
    });

    let events = api.build("shop", b"source".to_vec()).await;

    assert!(
        matches!(events.last(), Some(BuildEvent::Failed { exit_code: Some(3), step: Some(step), .. }) if step == "release command"),
        "{events:?}"
    );
    let (_, body) = api.call(Method::GET, "/v1/apps/shop/releases", None).await;
    assert_eq!(body, json!([]), "nothing was released");
}

#[tokio::test]
async fn a_rollout_that_fails_ends_the_build_with_its_reason() {
    let (builder, dyn_builder) = fake_builder();
    let node = Arc::new(FakeNode::default());
    let api = api_with(node.clone(), dyn_builder, |_| {}).await;
    api.create_app("shop").await;
    let image = put_image(&api.images(), "amd64");
    builder.ends(Ok(built(&image)));
    node.fail_instances("exited with code 1");

    let events = api.build("shop", b"source".to_vec()).await;

    let Some(BuildEvent::Failed { message, .. }) = events.last() else {
        panic!("the build fails: {events:?}");
    };
    assert!(
        message.contains("v1 failed to roll out: web.1 exited with code 1"),
        "{message}"
    );
    assert!(message.contains("nothing was serving before"), "{message}");
    let (_, body) = api.call(Method::GET, "/v1/apps/shop/releases", None).await;
    assert_eq!(body[0]["status"], "failed", "{body}");
}

#[tokio::test]
async fn a_failed_build_ends_with_its_step_and_exit_code_and_releases_nothing() {
    let (builder, dyn_builder) = fake_builder();
    let api = api_with(Arc::new(FakeNode::default()), dyn_builder, |_| {}).await;
    api.create_app("shop").await;
    builder.sends(vec![BuildEvent::Step {
        name: "Installing dependencies with pip".to_owned(),
    }]);
    builder.ends(Err(BuildFailure {
        message: "pip install failed".to_owned(),
        step: Some("Installing dependencies with pip".to_owned()),
        exit_code: Some(1),
    }));

    let events = api.build("shop", b"not really a tarball".to_vec()).await;

    assert_eq!(
        events.last(),
        Some(&BuildEvent::Failed {
            message: "pip install failed".to_owned(),
            step: Some("Installing dependencies with pip".to_owned()),
            exit_code: Some(1),
        })
    );
    assert_eq!(events.len(), 2);
    let (_, body) = api.call(Method::GET, "/v1/apps/shop/releases", None).await;
    assert_eq!(body, json!([]));
    assert!(api.uploads().is_empty());
}

#[tokio::test]
async fn a_node_without_a_builder_says_so_in_a_failed_event() {
    let api = api_with(Arc::new(FakeNode::default()), Arc::new(NoBuilder), |_| {}).await;
    api.create_app("shop").await;
    let events = api.build("shop", b"source".to_vec()).await;
    let [BuildEvent::Failed { message, .. }] = &events[..] else {
        panic!("one failed event: {events:?}");
    };
    assert!(message.contains("no builder"), "{message}");
    assert!(api.uploads().is_empty());
}

#[tokio::test]
async fn a_built_image_the_node_refuses_fails_and_releases_nothing() {
    let node = Arc::new(FakeNode::default());
    let (builder, dyn_builder) = fake_builder();
    let api = api_with(node.clone(), dyn_builder, |_| {}).await;
    api.create_app("shop").await;
    let image = put_image(&api.images(), "amd64");
    builder.ends(Ok(built(&image)));
    node.refuse_images("a layer writes through a symlink");

    let events = api.build("shop", b"source".to_vec()).await;

    let [BuildEvent::Failed { message, .. }] = &events[..] else {
        panic!("one failed event: {events:?}");
    };
    assert!(
        message.contains("a layer writes through a symlink"),
        "{message}"
    );
    let (_, body) = api.call(Method::GET, "/v1/apps/shop/releases", None).await;
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn a_release_refused_by_the_state_is_a_failed_event() {
    let (builder, dyn_builder) = fake_builder();
    let api = api_with(Arc::new(FakeNode::default()), dyn_builder, |_| {}).await;
    api.create_app("shop").await;
    let image = put_image(&api.images(), "amd64");
    let mut nothing_to_run = built(&image);
    nothing_to_run.processes.clear();
    builder.ends(Ok(nothing_to_run));

    let events = api.build("shop", b"source".to_vec()).await;

    let [BuildEvent::Failed { message, .. }] = &events[..] else {
        panic!("one failed event: {events:?}");
    };
    assert!(message.contains("release was not made"), "{message}");
    let (_, body) = api.call(Method::GET, "/v1/apps/shop/releases", None).await;
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn a_build_goes_on_and_releases_after_the_client_goes_away() {
    let (builder, dyn_builder) = fake_builder();
    let api = api_with(Arc::new(FakeNode::default()), dyn_builder, |_| {}).await;
    api.create_app("shop").await;
    let image = put_image(&api.images(), "amd64");
    builder.ends(Ok(built(&image)));
    let finish = builder.hold();

    let response = api.upload("shop", Body::from("source"), Some(6)).await;
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    finish.send(()).unwrap();

    let released = async {
        loop {
            let (_, body) = api.call(Method::GET, "/v1/apps/shop/releases", None).await;
            if !releases_of(&body).is_empty() {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let body = tokio::time::timeout(Duration::from_secs(10), released)
        .await
        .expect("the build released although nobody was listening");
    assert_eq!(body[0]["image"]["digest"], image.manifest.to_string());
}

#[tokio::test]
async fn an_empty_upload_is_refused() {
    let api = api_with(Arc::new(FakeNode::default()), Arc::new(NoBuilder), |_| {}).await;
    api.create_app("shop").await;
    let (status, body) = error_of(api.upload("shop", Body::empty(), Some(0)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "empty_upload");
    assert!(api.uploads().is_empty());
}
