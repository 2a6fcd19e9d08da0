//! A fake builder that sends the events a test scripts and ends as it says, and the helpers to
//! upload source to it through the API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use spread_api::BuildEvent;
use spread_core::DesiredInstance;
use spread_server::{
    BuildEvents, BuildFailure, BuildFuture, BuildRequest, BuiltImage, NodeBuilder, TaskFuture,
};
use tower::ServiceExt;

use super::Api;

/// What one build was asked: the request and the bytes of the upload it found.
#[derive(Debug, Clone)]
pub struct Seen {
    pub request: BuildRequest,
    pub source: Vec<u8>,
}

#[derive(Default)]
struct Script {
    events: Vec<BuildEvent>,
    outcome: Option<Result<BuiltImage, BuildFailure>>,
    /// The build ends only once this is sent to (or dropped).
    hold: Option<tokio::sync::oneshot::Receiver<()>>,
}

#[derive(Default)]
pub struct FakeBuilder {
    script: Mutex<Script>,
    seen: Mutex<Vec<Seen>>,
    /// How the next release command ends (default: exit 0), after printing one line.
    release_outcome: Mutex<Option<BuildFailure>>,
    tasks: Mutex<Vec<DesiredInstance>>,
}

impl FakeBuilder {
    /// The next build sends `events`.
    pub fn sends(&self, events: Vec<BuildEvent>) {
        self.script.lock().unwrap().events = events;
    }

    /// The next build ends with `outcome`.
    pub fn ends(&self, outcome: Result<BuiltImage, BuildFailure>) {
        self.script.lock().unwrap().outcome = Some(outcome);
    }

    /// The next build sends its events, then waits for the returned sender before it ends.
    pub fn hold(&self) -> tokio::sync::oneshot::Sender<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.script.lock().unwrap().hold = Some(rx);
        tx
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The next release command fails with `failure`.
    pub fn release_fails(&self, failure: BuildFailure) {
        *self.release_outcome.lock().unwrap() = Some(failure);
    }

    /// The release commands run so far.
    pub fn tasks(&self) -> Vec<DesiredInstance> {
        self.tasks.lock().unwrap().clone()
    }
}

impl NodeBuilder for FakeBuilder {
    fn build(&self, request: BuildRequest, events: BuildEvents) -> BuildFuture {
        let source = std::fs::read(&request.source).expect("the upload is there during the build");
        self.seen.lock().unwrap().push(Seen { request, source });
        let script = std::mem::take(&mut *self.script.lock().unwrap());
        Box::pin(async move {
            for event in script.events {
                let _ = events.send(event);
            }
            if let Some(hold) = script.hold {
                let _ = hold.await;
            }
            script
                .outcome
                .unwrap_or_else(|| Err(BuildFailure::new("the test scripted no outcome")))
        })
    }

    fn run_release(&self, task: DesiredInstance, events: BuildEvents) -> TaskFuture {
        let line = format!("release task {} ran {:?}", task.id, task.argv);
        self.tasks.lock().unwrap().push(task);
        let outcome = self.release_outcome.lock().unwrap().take();
        Box::pin(async move {
            let _ = events.send(BuildEvent::Output { line });
            outcome.map_or(Ok(()), Err)
        })
    }
}

/// What the builder returns for `image`: its digest, the env and user of its config, a `web`
/// and a `worker` process.
pub fn built(image: &spread_testkit::images::BuiltImage) -> BuiltImage {
    BuiltImage {
        digest: image.manifest.to_string(),
        env: vec!["PATH=/bin".to_owned(), "ARCH=amd64".to_owned()],
        working_dir: Some("/srv".to_owned()),
        user: Some("1000:1000".to_owned()),
        processes: BTreeMap::from([
            (
                "web".to_owned(),
                argv(&["/bin/hello", "--greeting", "amd64"]),
            ),
            ("worker".to_owned(), argv(&["/bin/hello", "--work"])),
        ]),
        release_command: None,
    }
}

pub fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// A builder for a server, and the same builder for the test to script.
pub fn fake_builder() -> (Arc<FakeBuilder>, Arc<dyn NodeBuilder>) {
    let builder = Arc::new(FakeBuilder::default());
    (builder.clone(), builder)
}

impl Api {
    /// `POST /v1/apps/{app}/builds` with `body`, declaring `length` if given; the answer's
    /// body is unread.
    pub async fn upload(&self, app: &str, body: Body, length: Option<u64>) -> Response {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(format!("/v1/apps/{app}/builds"))
            .header(header::CONTENT_TYPE, "application/gzip")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(length) = length {
            req = req.header(header::CONTENT_LENGTH, length);
        }
        self.router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap()
    }

    /// Uploads `source` to `app` and reads the whole answer as build events.
    pub async fn build(&self, app: &str, source: Vec<u8>) -> Vec<BuildEvent> {
        let length = source.len() as u64;
        let response = self.upload(app, Body::from(source), Some(length)).await;
        build_events(response).await
    }
}

/// The events of a build answer, checked to be `200 application/x-ndjson`.
pub async fn build_events(response: Response) -> Vec<BuildEvent> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-ndjson"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
