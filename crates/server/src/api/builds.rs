//! `/v1/apps/{app}/builds`: upload a project as a gzip tarball, build it on this node and
//! release the image, answering with the build's events as newline-delimited JSON.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path as FsPath, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use spread_api::BuildEvent;
use spread_core::{
    Actor, AppId, AppName, Command, NameError, ProcessType, ReleaseImage, ReleaseStatus,
    release_task,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

use super::convert::{released, with_app};
use crate::builds::{BuildFailure, BuildRequest, BuiltImage, NodeBuilder};
use crate::error::ApiError;
use crate::extract::Path;
use crate::{AppState, auth};

/// How long a refused upload is read and dropped after the answer.
const LINGER: Duration = Duration::from_secs(2);

/// Uploads are written through a buffer this large, so the disk sees few, large writes.
const WRITE_BUFFER: usize = 256 * 1024;

pub(super) async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut body = Some(body);
    let answer = start(state, actor, &app, &headers, &mut body).await;
    if let Some(unread) = body {
        tokio::spawn(linger(unread));
    }
    answer
}

/// Checks the request, receives the upload and starts its build. Leaves in `body` what it
/// did not read.
async fn start(
    state: AppState,
    actor: Actor,
    app: &str,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let name = AppName::parse(app)?;
    // Before any of the body is read: an unknown app or a declared size over the limit is
    // answered at once, not after a long upload.
    let app_id = with_app(&state, name.as_str(), |a| a.id)?;
    let limit = state.config.max_upload_bytes;
    if let Some(size) = declared_length(headers)
        && size > limit
    {
        return Err(ApiError::UploadTooLarge {
            size: Some(size),
            limit,
        });
    }
    let (id, upload) = receive(&state.config.uploads_dir(), body, limit).await?;
    tracing::info!(app = %name, build = %id, "building uploaded source");
    let (events, answer) = mpsc::unbounded_channel();
    let build = Build {
        request: BuildRequest {
            app: app_id,
            app_name: name.to_string(),
            id,
            source: upload.path.clone(),
        },
        app: name,
        actor,
        upload,
    };
    // The build goes on if the client goes away: it runs in a task of its own, and sends to
    // a closed answer are ignored.
    tokio::spawn(build.run(state, events));
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(Lines(answer)),
    )
        .into_response())
}

/// Reads and drops what is left of a refused upload for a moment after the answer, so the
/// client reads the answer: a connection closed with unread data is reset, and a client
/// still sending then sees the reset instead of the answer (a "lingering close").
async fn linger(mut body: Body) {
    let drain = async { while let Some(Ok(_)) = body.frame().await {} };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// The `Content-Length` the client declared, if it declared one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// An uploaded tarball, removed when dropped: after its build, or when the upload fails.
struct Upload {
    path: PathBuf,
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove an upload");
        }
    }
}

/// Streams `body` into a new file in `dir`, counting bytes; over `limit` the file is removed
/// and the answer is 413. Returns the build's id and the file.
async fn receive(
    dir: &FsPath,
    body: &mut Option<Body>,
    limit: u64,
) -> Result<(String, Upload), ApiError> {
    let Some(incoming) = body.as_mut() else {
        return Err(ApiError::Internal("the upload was read twice".to_owned()));
    };
    let storage = |what: &str, path: &FsPath, e: std::io::Error| {
        ApiError::Storage(format!("cannot {what} {}: {e}", path.display()))
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| storage("create the uploads dir", dir, e))?;
    let (id, file, upload) = loop {
        let id = build_id()?;
        let path = dir.join(format!("{id}.tar.gz"));
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
        {
            Ok(file) => break (id, file, Upload { path }),
            // Twelve random hex digits: a clash is all but impossible, but costs nothing.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(storage("create", &path, e)),
        }
    };
    let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut received = 0u64;
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| ApiError::BadRequest {
            code: "upload_incomplete",
            message: format!("the upload ended before all of it arrived: {e}; try again"),
            field: None,
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len() as u64;
        if received > limit {
            return Err(ApiError::UploadTooLarge { size: None, limit });
        }
        out.write_all(&data)
            .await
            .map_err(|e| storage("write", &upload.path, e))?;
    }
    *body = None;
    out.flush()
        .await
        .map_err(|e| storage("write", &upload.path, e))?;
    if received == 0 {
        return Err(ApiError::BadRequest {
            code: "empty_upload",
            message: "the upload is empty: send the project as a gzip tarball".to_owned(),
            field: None,
        });
    }
    Ok((id, upload))
}

/// Twelve random hex digits: short enough for release descriptions and container names.
fn build_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no random bytes for a build id: {e}")))?;
    Ok(auth::hex(&bytes))
}

/// One build from its upload to its last event.
struct Build {
    request: BuildRequest,
    app: AppName,
    actor: Actor,
    upload: Upload,
}

impl Build {
    /// Builds, releases what was built, and sends the events to `answer`; the last one says
    /// how it ended.
    async fn run(self, state: AppState, answer: mpsc::UnboundedSender<BuildEvent>) {
        let Self {
            request,
            app,
            actor,
            upload,
        } = self;
        let started = Instant::now();
        let (app_id, id) = (request.app, request.id.clone());
        let stopping = state.stopping.subscribe();
        let last = match build(state.builder.clone(), request, &answer, stopping).await {
            Ok(image) => release(&state, app_id, app.clone(), actor, &id, image, &answer).await,
            Err(failure) => failed(failure),
        };
        drop(upload);
        let outcome = match &last {
            BuildEvent::Released { release } => {
                tracing::info!(%app, build = %id, release = release.version, "build released");
                "released"
            }
            _ => {
                tracing::info!(%app, build = %id, "build failed");
                "failed"
            }
        };
        metrics::counter!("spread_builds_total", "outcome" => outcome).increment(1);
        metrics::histogram!("spread_build_duration_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        let _ = answer.send(last);
    }
}

/// Runs the builder, forwarding its `step` and `output` events. The last event is the
/// server's to send, so a builder cannot end the answer early. A build still running when the
/// server begins to stop is stopped (graceful shutdown would otherwise wait for it).
async fn build(
    builder: Arc<dyn NodeBuilder>,
    request: BuildRequest,
    answer: &mpsc::UnboundedSender<BuildEvent>,
    mut stopping: watch::Receiver<bool>,
) -> Result<BuiltImage, BuildFailure> {
    let (events, mut from_builder) = mpsc::unbounded_channel();
    // A task of its own, so a builder that panics ends in a `failed` event, not in silence.
    let mut running = tokio::spawn(builder.build(request, events));
    let forward = |event: BuildEvent| match event {
        BuildEvent::Step { .. } | BuildEvent::Output { .. } => {
            let _ = answer.send(event);
        }
        other => tracing::debug!(?other, "ignored a final event sent by the builder"),
    };
    let joined = loop {
        tokio::select! {
            Some(event) = from_builder.recv() => forward(event),
            joined = &mut running => break joined,
            Ok(_) = stopping.wait_for(|stop| *stop) => {
                running.abort();
                return Err(BuildFailure::new(
                    "the platform is stopping, so the build was stopped; deploy again once it \
                     is back",
                ));
            }
        }
    };
    while let Ok(event) = from_builder.try_recv() {
        forward(event);
    }
    joined.unwrap_or_else(|e| {
        Err(BuildFailure::new(format!(
            "the build stopped unexpectedly: {e}; this is a bug in spread"
        )))
    })
}

/// Makes a release of the built image, as `POST /deploys` does with a pulled one: runs its
/// release command first, if it has one, then proposes the release and waits for its rollout.
async fn release(
    state: &AppState,
    app_id: AppId,
    app: AppName,
    actor: Actor,
    id: &str,
    image: BuiltImage,
    answer: &mpsc::UnboundedSender<BuildEvent>,
) -> BuildEvent {
    if let Err(reason) = super::deploys::prepare_image(state, app_id, image.digest.clone()).await {
        return failed(BuildFailure::new(format!(
            "the built image cannot run here: {reason}"
        )));
    }
    let processes = match process_types(image.processes) {
        Ok(processes) => processes,
        Err(e) => {
            return failed(BuildFailure::new(format!(
                "the build named an invalid process type: {e}"
            )));
        }
    };
    let release_image = ReleaseImage {
        reference: format!("build {id}"),
        digest: image.digest,
        env: image.env,
        working_dir: image.working_dir,
        user: image.user,
    };
    if let Some(command) = image.release_command {
        let _ = answer.send(BuildEvent::Step {
            name: format!("Running the release command: {}", command.join(" ")),
        });
        let task = state.raft.read(|s| {
            s.app(&app)
                .map(|a| release_task(a, release_image.clone(), command, id))
        });
        let Some(task) = task else {
            return failed(BuildFailure::new(format!(
                "app `{app}` was destroyed during the build"
            )));
        };
        if let Err(failure) = state.builder.run_release(task, answer.clone()).await {
            return failed(failure);
        }
    }
    let command = Command::DeployImage {
        app: app.clone(),
        image: release_image,
        processes,
        by: actor,
        at: jiff::Timestamp::now(),
    };
    let made = state.raft.propose(command).await.map_err(ApiError::from);
    let release = match made.and_then(released) {
        Ok(release) => release,
        Err(e) => {
            return failed(BuildFailure::new(format!(
                "the build succeeded but its release was not made: {e}"
            )));
        }
    };
    let version = release.version;
    let _ = answer.send(BuildEvent::RollingOut { release });
    rolled_out(state, &app, version).await
}

/// Waits until the rollout of `version` ends, and says how: `released`, or `failed` with the
/// reason (the live release keeps serving).
async fn rolled_out(state: &AppState, app: &AppName, version: u64) -> BuildEvent {
    let mut stopping = state.stopping.subscribe();
    let mut seen = None;
    loop {
        let now = state.raft.read(|s| {
            let a = s.app(app)?;
            let release = a.release(version)?;
            Some((release.clone(), a.live_release().map(|r| r.version)))
        });
        let Some((release, live)) = now else {
            return failed(BuildFailure::new(format!(
                "app `{app}` was destroyed during its rollout"
            )));
        };
        let keeps = match live {
            Some(live) => format!("v{live} keeps serving"),
            None => "nothing was serving before, so nothing serves now".to_owned(),
        };
        match &release.status {
            ReleaseStatus::RollingOut => {}
            ReleaseStatus::Deployed => {
                return BuildEvent::Released {
                    release: super::convert::release(&release),
                };
            }
            ReleaseStatus::Failed { reason } => {
                return failed(BuildFailure {
                    message: format!(
                        "v{version} failed to roll out: {reason}; {keeps}. See `spread logs -a {app}`"
                    ),
                    step: Some(spread_api::ROLLOUT_STEP.to_owned()),
                    exit_code: None,
                });
            }
            ReleaseStatus::Superseded => {
                return failed(BuildFailure::new(format!(
                    "v{version} was superseded by a newer release before its rollout finished"
                )));
            }
        }
        tokio::select! {
            applied = state.raft.applied_after(seen) => match applied {
                Some(applied) => seen = Some(applied),
                None => return failed(BuildFailure::new("the platform is stopping")),
            },
            Ok(_) = stopping.wait_for(|stop| *stop) => {
                return failed(BuildFailure::new(format!(
                    "the platform is stopping; v{version} was released and its rollout goes on when it \
                     is back (it fails if its instances are not healthy within the health timeout \
                     of its release)"
                )));
            }
        }
    }
}

fn process_types(
    processes: BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<ProcessType, Vec<String>>, NameError> {
    processes
        .into_iter()
        .map(|(process, argv)| Ok((ProcessType::parse(&process)?, argv)))
        .collect()
}

fn failed(failure: BuildFailure) -> BuildEvent {
    BuildEvent::Failed {
        message: failure.message,
        step: failure.step,
        exit_code: failure.exit_code,
    }
}

/// The events of a build as a body stream, one JSON object per line.
struct Lines(mpsc::UnboundedReceiver<BuildEvent>);

impl futures_core::Stream for Lines {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|event| {
            event.map(|event| {
                let mut line = serde_json::to_vec(&event).expect("build events serialize");
                line.push(b'\n');
                Ok(Bytes::from(line))
            })
        })
    }
}
