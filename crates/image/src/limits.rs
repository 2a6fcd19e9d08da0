//! Unpack options, and the byte budget that bounds how much a layer stream can make us read.

use std::cell::Cell;
use std::io::{self, Read};

/// Tar headers, padding, long names and PAX records allowed per entry, on average, on top of
/// file contents when bounding the whole uncompressed stream.
const PER_ENTRY_OVERHEAD: u64 = 8 * 1024;

/// Most bytes of tar headers (long names, PAX records, the header blocks themselves) allowed
/// in front of one entry. The tar reader buffers these in memory, so they need their own bound.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Ownership shift and resource limits for one unpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Added to every uid and gid; entries owned by ids of 65536 or more are refused.
    pub id_shift: u32,
    /// Largest regular file, in bytes.
    pub max_file_bytes: u64,
    /// Largest sum of regular file sizes, in (uncompressed) bytes.
    pub max_total_bytes: u64,
    /// Most tar entries, of any type.
    pub max_entries: u64,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        Self {
            id_shift: 0,
            max_file_bytes: 8 << 30,
            max_total_bytes: 32 << 30,
            max_entries: 1_000_000,
        }
    }
}

impl UnpackOptions {
    /// The most uncompressed tar bytes read before giving up, whatever the entries claim, so a
    /// compression bomb hidden in data no entry accounts for still stops.
    pub fn stream_limit(&self) -> u64 {
        let overhead = self
            .max_entries
            .saturating_add(2)
            .saturating_mul(PER_ENTRY_OVERHEAD);
        self.max_total_bytes.saturating_add(overhead)
    }
}

/// Which bound a stream ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overrun {
    Stream,
    Headers,
}

/// Bytes the tar reader may still pull: in total, and before the next entry is handed to us.
pub(crate) struct Budget {
    stream_left: Cell<u64>,
    window_left: Cell<u64>,
    overrun: Cell<Option<Overrun>>,
}

impl Budget {
    pub(crate) fn new(opts: &UnpackOptions) -> Self {
        Self {
            stream_left: Cell::new(opts.stream_limit()),
            window_left: Cell::new(MAX_HEADER_BYTES),
            overrun: Cell::new(None),
        }
    }

    /// Called as each entry arrives: until the next one, the reader may read this entry's
    /// data with its padding, then at most [`MAX_HEADER_BYTES`] of headers.
    pub(crate) fn next_window(&self, data_bytes: u64) {
        let padded = data_bytes.saturating_add(511) & !511;
        self.window_left
            .set(padded.saturating_add(MAX_HEADER_BYTES));
    }

    pub(crate) fn overrun(&self) -> Option<Overrun> {
        self.overrun.get()
    }
}

/// A reader that fails once either bound of its [`Budget`] is passed.
pub(crate) struct Budgeted<'a, R> {
    pub(crate) inner: R,
    pub(crate) budget: &'a Budget,
}

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let stream_left = self.budget.stream_left.get();
        let window_left = self.budget.window_left.get();
        let allowed = stream_left.min(window_left);
        // Ask for one byte more than allowed, so ending exactly at the bound is not an error.
        let want = (buf.len() as u64).min(allowed.saturating_add(1)) as usize;
        let n = self.inner.read(&mut buf[..want])? as u64;
        if n > allowed {
            let which = if n > stream_left {
                Overrun::Stream
            } else {
                Overrun::Headers
            };
            self.budget.overrun.set(Some(which));
            return Err(io::Error::other("layer stream is over its size limit"));
        }
        self.budget.stream_left.set(stream_left - n);
        self.budget.window_left.set(window_left - n);
        Ok(n as usize)
    }
}
