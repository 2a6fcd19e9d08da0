//! `Client::build`: a project tarball streamed from disk as the request body, with progress,
//! and the build's events read line by line from the answer.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use spread_api::BuildEvent;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

use crate::{Client, ClientError, NdjsonLines, Result};

/// How much of the tarball goes into one chunk of the body.
const CHUNK_BYTES: usize = 128 * 1024;

impl Client {
    /// Uploads `tarball` (a gzip tarball of a project) to be built on the platform and
    /// released as a new release of `app`. `on_progress(sent, total)` is called as the upload
    /// goes, and `on_event` with each event of the build as it arrives. Returns the last
    /// event, `Released` or `Failed`; errors before the build starts (an unknown app, an
    /// upload over the server's limit) are [`ClientError::Api`].
    pub async fn build(
        &self,
        app: &str,
        tarball: &Path,
        mut on_progress: impl FnMut(u64, u64),
        mut on_event: impl FnMut(BuildEvent),
    ) -> Result<BuildEvent> {
        let unreadable = |source| ClientError::File {
            path: tarball.to_owned(),
            source,
        };
        let file = tokio::fs::File::open(tarball).await.map_err(unreadable)?;
        let total = file.metadata().await.map_err(unreadable)?.len();
        let (progress, mut sent) = mpsc::unbounded_channel();
        let chunks = FileChunks {
            file,
            buffer: vec![0; CHUNK_BYTES],
            sent: 0,
            progress,
        };
        let url = self.url(&["v1", "apps", app, "builds"]);
        let sending = self
            .request(Method::POST, url.clone())
            .header(CONTENT_TYPE, "application/gzip")
            .header(CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(chunks))
            .send();
        tokio::pin!(sending);
        on_progress(0, total);
        let response = loop {
            tokio::select! {
                response = &mut sending => break response,
                Some(n) = sent.recv() => on_progress(n, total),
            }
        };
        while let Ok(n) = sent.try_recv() {
            on_progress(n, total);
        }
        let mut response = response.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
            return Err(Self::failure(&url, status, &bytes));
        }
        let unexpected = |detail: String| ClientError::Unexpected {
            url: url.to_string(),
            status,
            detail,
        };
        let parse = |line: &[u8]| {
            serde_json::from_slice::<BuildEvent>(line)
                .map_err(|e| unexpected(format!("a build event is not JSON: {e}")))
        };
        let mut lines = NdjsonLines::default();
        let mut last = None;
        let mut handle = |event: BuildEvent| {
            if matches!(
                event,
                BuildEvent::Released { .. } | BuildEvent::Failed { .. }
            ) {
                last = Some(event.clone());
            }
            on_event(event);
        };
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unreachable(e))? {
            for line in lines.push(&chunk) {
                handle(parse(&line)?);
            }
        }
        if let Some(line) = lines.finish() {
            handle(parse(&line)?);
        }
        last.ok_or_else(|| {
            unexpected(
                "the answer ended before the build did; `spread releases` shows whether it \
                 released"
                    .to_owned(),
            )
        })
    }
}

/// A file as a stream of chunks, counting what has been handed to the connection.
struct FileChunks {
    file: tokio::fs::File,
    buffer: Vec<u8>,
    sent: u64,
    progress: mpsc::UnboundedSender<u64>,
}

impl futures_core::Stream for FileChunks {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let mut buf = ReadBuf::new(&mut this.buffer);
        match Pin::new(&mut this.file).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(None),
            Poll::Ready(Ok(())) => {
                let chunk = Bytes::copy_from_slice(buf.filled());
                this.sent += chunk.len() as u64;
                // The caller may have stopped listening; the upload goes on regardless.
                let _ = this.progress.send(this.sent);
                Poll::Ready(Some(Ok(chunk)))
            }
        }
    }
}
