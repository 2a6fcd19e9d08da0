//! Moving blob bytes between the async registry client and the blocking blob store.

use std::fs::File;
use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::digest::Digest;
use crate::manifest::Descriptor;
use crate::store::{BlobStore, StoreError};

/// Bytes buffered between the download and the store.
const PIPE_BYTES: usize = 256 * 1024;
/// Matches `oci-client`'s upload chunk, so each chunk is one PATCH request.
const PUSH_CHUNK_BYTES: usize = 4 << 20;

/// Why a blob could not be fetched into the store.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// The registry served bytes that hash to `actual`.
    DigestMismatch {
        actual: Digest,
    },
    /// The registry served `actual` bytes (more than the descriptor allows, if `over`).
    SizeMismatch {
        actual: u64,
        over: bool,
    },
    Remote(OciDistributionError),
    Store(StoreError),
}

/// Streams blob `descriptor` from the registry into `store`, which verifies its digest while
/// writing; the size is checked against the descriptor too. Returns the blob's size.
pub(crate) async fn fetch_blob(
    client: &oci_client::Client,
    image: &oci_client::Reference,
    descriptor: &Descriptor,
    store: &BlobStore,
) -> Result<u64, FetchError> {
    let (mut download, pipe) = tokio::io::duplex(PIPE_BYTES);
    let handle = Handle::current();
    let (saver_store, digest, limit) = (store.clone(), descriptor.digest.clone(), descriptor.size);
    let saver = tokio::task::spawn_blocking(move || {
        let mut reader = PipeReader {
            handle,
            pipe,
            limit,
            seen: 0,
            over: false,
        };
        let stored = saver_store.put(&digest, &mut reader);
        (stored, reader.seen, reader.over)
    });
    let wire = OciDescriptor {
        media_type: descriptor.media_type.clone(),
        digest: descriptor.digest.to_string(),
        size: i64::try_from(descriptor.size).unwrap_or(i64::MAX),
        ..OciDescriptor::default()
    };
    let fetched = client.pull_blob(image, &wire, &mut download).await;
    // Dropping our end of the pipe is the end of the blob for the store.
    drop(download);
    let (stored, seen, over) = saver.await.expect("the blob store writer panicked");
    if over {
        return Err(FetchError::SizeMismatch { actual: seen, over });
    }
    // `oci-client` checks the digest too; the store's verdict is the one reported.
    let transfer_failed = match fetched {
        Err(OciDistributionError::DigestError(_)) | Ok(()) => None,
        Err(e) => Some(e),
    };
    match stored {
        Ok(size) if size != descriptor.size => Err(FetchError::SizeMismatch {
            actual: size,
            over: false,
        }),
        Ok(size) => Ok(size),
        Err(StoreError::DigestMismatch { actual, .. }) => match transfer_failed {
            // The content was cut short because the download failed.
            Some(e) => Err(FetchError::Remote(e)),
            None => Err(FetchError::DigestMismatch { actual }),
        },
        Err(e) => Err(FetchError::Store(e)),
    }
}

/// The store's blocking end of the download pipe, refusing bytes beyond the descriptor's size.
struct PipeReader {
    handle: Handle,
    pipe: DuplexStream,
    limit: u64,
    seen: u64,
    over: bool,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.handle.block_on(self.pipe.read(buf))?;
        self.seen += n as u64;
        if self.seen > self.limit {
            self.over = true;
            return Err(io::Error::other(
                "the registry sent more bytes than the blob's size",
            ));
        }
        Ok(n)
    }
}

/// A blob of the store read in chunks on a blocking thread, as the stream `oci-client` uploads.
pub(crate) struct BlobChunks {
    chunks: mpsc::Receiver<Result<Bytes, OciDistributionError>>,
}

impl BlobChunks {
    /// Starts reading `file`; the reading stops if the stream is dropped.
    pub(crate) fn spawn(mut file: File) -> Self {
        let (tx, chunks) = mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            loop {
                let mut buf = vec![0; PUSH_CHUNK_BYTES];
                let item = match read_full(&mut file, &mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(Bytes::from(buf))
                    }
                    Err(e) => Err(OciDistributionError::IoError(e)),
                };
                let failed = item.is_err();
                if tx.blocking_send(item).is_err() || failed {
                    return;
                }
            }
        });
        Self { chunks }
    }
}

impl futures_core::Stream for BlobChunks {
    type Item = Result<Bytes, OciDistributionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.poll_recv(cx)
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
