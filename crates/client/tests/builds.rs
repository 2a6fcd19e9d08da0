//! `Client::build` and `Client::push_image` against a real server on loopback: the tarball is
//! streamed with progress, the events arrive one by one, and refusals before the build are
//! the usual API errors.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use spread_api::{BuildEvent, PushImageRequest};
use spread_client::{Client, ClientError};
use spread_server::{
    BuildEvents, BuildFailure, BuildFuture, BuildRequest, BuiltImage, NodeBuilder, Server,
    ServerConfig, TaskFuture,
};

/// A builder that says a step, prints the size of what it got, and ends as told.
struct Builder {
    fail: bool,
    /// Never ends after its events.
    forever: bool,
    sizes: Mutex<Vec<u64>>,
}

impl NodeBuilder for Builder {
    fn build(&self, request: BuildRequest, events: BuildEvents) -> BuildFuture {
        let size = std::fs::metadata(&request.source).unwrap().len();
        self.sizes.lock().unwrap().push(size);
        let (fail, forever) = (self.fail, self.forever);
        Box::pin(async move {
            let _ = events.send(BuildEvent::Step {
                name: "Unpacking".to_owned(),
            });
            let _ = events.send(BuildEvent::Output {
                line: format!("{size} bytes"),
            });
            if forever {
                std::future::pending::<()>().await;
            }
            if fail {
                return Err(BuildFailure {
                    message: "make failed".to_owned(),
                    step: Some("Unpacking".to_owned()),
                    exit_code: Some(2),
                });
            }
            Ok(BuiltImage {
                digest: format!("sha256:{}", "ab".repeat(32)),
                env: Vec::new(),
                working_dir: None,
                user: None,
                processes: BTreeMap::from([("web".to_owned(), vec!["/app".to_owned()])]),
                release_command: None,
            })
        })
    }

    fn run_release(&self, _task: spread_core::DesiredInstance, _: BuildEvents) -> TaskFuture {
        Box::pin(async { Ok(()) })
    }
}

struct Running {
    client: Client,
    builder: Arc<Builder>,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), spread_server::ServerError>>,
    _dir: tempfile::TempDir,
}

async fn serve(fail: bool, max_upload_bytes: u64) -> Running {
    serve_with(fail, false, max_upload_bytes).await
}

async fn serve_with(fail: bool, forever: bool, max_upload_bytes: u64) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path().join("data"), "127.0.0.1:0".parse().unwrap());
    config.max_upload_bytes = max_upload_bytes;
    let mut server = Server::open(config).await.unwrap();
    let builder = Arc::new(Builder {
        fail,
        forever,
        sizes: Mutex::default(),
    });
    server.set_builder(builder.clone());
    let token = server.admin_token().unwrap().to_owned();
    let url = format!("http://{}", server.api_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    let client = Client::new(&url, Some(token)).unwrap();
    client.create_app("shop").await.unwrap();
    Running {
        client,
        builder,
        stop,
        serving,
        _dir: dir,
    }
}

impl Running {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.serving.await.unwrap().unwrap();
    }
}

fn tarball(dir: &Path, size: usize) -> std::path::PathBuf {
    let path = dir.join("source.tar.gz");
    let mut bytes = b"not really gzip, ".repeat(size / 17 + 1);
    bytes.truncate(size);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test]
async fn a_build_uploads_with_progress_and_ends_with_its_release() {
    let running = serve(false, 64 << 20).await;
    let dir = tempfile::tempdir().unwrap();
    let size = 5 << 20;
    let source = tarball(dir.path(), size);
    let mut progress = Vec::new();
    let mut events = Vec::new();

    let last = running
        .client
        .build(
            "shop",
            &source,
            |sent, total| progress.push((sent, total)),
            |event| events.push(event),
        )
        .await
        .unwrap();

    assert_eq!(running.builder.sizes.lock().unwrap()[..], [size as u64]);
    assert!(progress.len() > 2, "progress as chunks go: {progress:?}");
    assert!(progress.iter().all(|&(_, total)| total == size as u64));
    assert!(
        progress.windows(2).all(|w| w[0].0 <= w[1].0),
        "{progress:?}"
    );
    assert_eq!(progress.last(), Some(&(size as u64, size as u64)));
    assert_eq!(
        events[..2],
        [
            BuildEvent::Step {
                name: "Unpacking".to_owned()
            },
            BuildEvent::Output {
                line: format!("{size} bytes")
            },
        ]
    );
    let BuildEvent::Released { release } = &last else {
        panic!("released: {last:?}");
    };
    assert_eq!(release.version, 1);
    assert_eq!(
        events.last(),
        Some(&last),
        "the last event is also passed on"
    );
    let releases = running.client.releases("shop").await.unwrap();
    assert_eq!(releases.len(), 1);
    running.stop().await;
}

#[tokio::test]
async fn a_failed_build_is_returned_as_its_failed_event() {
    let running = serve(true, 64 << 20).await;
    let dir = tempfile::tempdir().unwrap();
    let source = tarball(dir.path(), 1000);
    let last = running
        .client
        .build("shop", &source, |_, _| {}, |_| {})
        .await
        .unwrap();
    assert_eq!(
        last,
        BuildEvent::Failed {
            message: "make failed".to_owned(),
            step: Some("Unpacking".to_owned()),
            exit_code: Some(2),
        }
    );
    assert!(running.client.releases("shop").await.unwrap().is_empty());
    running.stop().await;
}

#[tokio::test]
async fn refusals_before_the_build_are_api_errors() {
    let running = serve(false, 1 << 20).await;
    let dir = tempfile::tempdir().unwrap();
    // Big enough that the server answers while the client is still sending.
    let big = tarball(dir.path(), 64 << 20);
    let err = running
        .client
        .build("ghost", &big, |_, _| {}, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("app_not_found"), "{err}");

    let err = running
        .client
        .build("shop", &big, |_, _| {}, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("upload_too_large"), "{err}");
    assert!(err.to_string().contains(".spreadignore"), "{err}");
    assert!(running.builder.sizes.lock().unwrap().is_empty());

    let err = running
        .client
        .build(
            "shop",
            &dir.path().join("missing.tar.gz"),
            |_, _| {},
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::File { .. }), "{err}");
    assert!(err.to_string().contains("missing.tar.gz"), "{err}");

    let request = PushImageRequest {
        reference: "127.0.0.1:1/shop:1".to_owned(),
        release: None,
        registry_user: None,
        registry_password: None,
        insecure_registry: false,
    };
    let err = running
        .client
        .push_image("shop", &request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("not_deployed"), "{err}");
    running.stop().await;
}

#[tokio::test]
async fn a_running_build_is_stopped_when_the_server_stops() {
    let running = serve_with(false, true, 64 << 20).await;
    let dir = tempfile::tempdir().unwrap();
    let source = tarball(dir.path(), 1000);
    let (started, has_started) = tokio::sync::oneshot::channel();
    let client = running.client.clone();
    let building = tokio::spawn(async move {
        let mut started = Some(started);
        client
            .build(
                "shop",
                &source,
                |_, _| {},
                |_| {
                    if let Some(started) = started.take() {
                        let _ = started.send(());
                    }
                },
            )
            .await
    });
    has_started.await.unwrap();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), running.stop());
    stopped
        .await
        .expect("the server stops without waiting for the build");
    let last = building.await.unwrap().unwrap();
    let BuildEvent::Failed { message, .. } = last else {
        panic!("failed: {last:?}");
    };
    assert!(message.contains("the platform is stopping"), "{message}");
}
