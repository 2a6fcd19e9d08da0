//! `/v1/apps/{app}/logs`: what the app's instances wrote, as newline-delimited JSON
//! (`spread_api::LogLine` per line); with `follow=true` the answer stays open and new lines
//! are sent as they are written.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use spread_api::LogLine;
use spread_core::ProcessType;
use tokio::sync::mpsc;

use super::convert::with_app;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::logs::{AppLogs, Cursor, Source};

/// How often a follower looks for new lines.
const POLL: Duration = Duration::from_millis(250);
/// Most lines one request may ask for.
const MAX_LINES: usize = 10_000;
const DEFAULT_LINES: usize = 100;

/// The query string as sent; every value is checked in `LogsRequest::parse`, so a bad one is
/// refused with a message that names it.
#[derive(Debug, Deserialize)]
pub(super) struct LogsQuery {
    lines: Option<String>,
    process: Option<String>,
    follow: Option<String>,
    source: Option<String>,
}

#[derive(Debug)]
struct LogsRequest {
    lines: usize,
    process: Option<ProcessType>,
    follow: bool,
    source: Option<Source>,
}

impl LogsRequest {
    fn parse(query: LogsQuery) -> Result<Self, ApiError> {
        let invalid = |field: &str, message: String| ApiError::BadRequest {
            code: "invalid_query",
            message,
            field: Some(field.to_owned()),
        };
        let lines = match query.lines {
            None => DEFAULT_LINES,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LINES).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "lines",
                        format!(
                            "`lines` must be a number from 1 to {MAX_LINES}, e.g. `lines=100`; \
                             got `{text}`"
                        ),
                    )
                })?,
        };
        let process = query
            .process
            .as_deref()
            .map(ProcessType::parse)
            .transpose()?;
        let follow = match query.follow.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(invalid(
                    "follow",
                    format!("`follow` must be `true` or `false`; got `{other}`"),
                ));
            }
        };
        let source = match query.source.as_deref() {
            None => None,
            Some(text) => Some(Source::parse(text).ok_or_else(|| {
                invalid(
                    "source",
                    format!("`source` must be `app`, `spread` or `router`; got `{text}`"),
                )
            })?),
        };
        Ok(Self {
            lines,
            process,
            follow,
            source,
        })
    }
}

pub(super) async fn show(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let request = LogsRequest::parse(query)?;
    let logs = AppLogs {
        instances: state.instances.clone(),
        app: with_app(&state, &app, |a| a.id)?,
        process: request.process,
        source: request.source,
    };
    let reader = logs.clone();
    let (lines, cursor) = blocking(move || reader.tail(request.lines)).await?;
    let body = if request.follow {
        let (tx, rx) = mpsc::channel(16);
        let stopping = state.stopping.subscribe();
        tokio::spawn(follow(logs, cursor, ndjson(&lines), tx, stopping));
        Body::from_stream(Chunks(rx))
    } else {
        Body::from(ndjson(&lines))
    };
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// Sends `first`, then every `POLL` the lines written since, until the client goes away or the
/// server stops.
async fn follow(
    logs: AppLogs,
    mut cursor: Cursor,
    first: Bytes,
    tx: mpsc::Sender<Bytes>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    if !first.is_empty() && tx.send(first).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            () = tx.closed() => return,
            _ = stopping.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(POLL) => {}
        }
        let reader = logs.clone();
        let read = blocking(move || {
            let lines = reader.follow(&mut cursor);
            (lines, cursor)
        })
        .await;
        let Ok((lines, moved)) = read else { return };
        cursor = moved;
        if !lines.is_empty() && tx.send(ndjson(&lines)).await.is_err() {
            return;
        }
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("reading logs failed: {e}")))
}

fn ndjson(lines: &[LogLine]) -> Bytes {
    let mut out = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut out, line).expect("log lines serialize to JSON");
        out.push(b'\n');
    }
    Bytes::from(out)
}

/// The chunks of a followed log as a body stream.
struct Chunks(mpsc::Receiver<Bytes>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(Ok))
    }
}
