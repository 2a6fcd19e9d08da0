//! Reading a container's stdout or stderr pipe into the log, one thread per stream.

use std::io::{ErrorKind, PipeReader, Read};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use super::Stream;
use super::layout::StateDir;
use super::writer::LogWriter;

/// Cuts a byte stream into lines, and lines longer than `max` bytes into pieces of at most
/// `max` bytes, cut before a UTF-8 character rather than through it where possible.
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        Self {
            pending: Vec::new(),
            max: max.max(4),
        }
    }

    /// Feeds `data`, calling `emit` for every complete line or full piece; the rest waits.
    pub fn push(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8])) {
        while let Some(end) = data.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&data[..end]);
            self.emit_full_pieces(emit);
            emit(&self.pending);
            self.pending.clear();
            data = &data[end + 1..];
        }
        self.pending.extend_from_slice(data);
        self.emit_full_pieces(emit);
    }

    /// Emits a last line that had no newline.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }

    fn emit_full_pieces(&mut self, emit: &mut impl FnMut(&[u8])) {
        while self.pending.len() > self.max {
            let cut = char_boundary_at_or_before(&self.pending, self.max);
            emit(&self.pending[..cut]);
            self.pending.drain(..cut);
        }
    }
}

/// The last index at or up to 3 bytes before `at` where no UTF-8 continuation byte starts.
fn char_boundary_at_or_before(bytes: &[u8], at: usize) -> usize {
    (at.saturating_sub(3)..=at)
        .rev()
        .find(|&i| i > 0 && bytes[i] & 0xC0 != 0x80)
        .unwrap_or(at)
}

/// Copies `pipe` into the log until every writer has closed it, then says so on `done`.
/// Each read is stamped with the time it arrived and flushed as one write.
pub(crate) fn capture(
    mut pipe: PipeReader,
    stream: Stream,
    log: Arc<Mutex<LogWriter>>,
    max_line: usize,
    notes: StateDir,
    done: Sender<Stream>,
) {
    let mut splitter = LineSplitter::new(max_line);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => write_chunk(&log, &notes, stream, &mut splitter, Some(&buf[..n])),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                notes.note(&format!("read {stream} pipe: {e}"));
                break;
            }
        }
    }
    write_chunk(&log, &notes, stream, &mut splitter, None);
    let _ = done.send(stream);
}

/// Logs the lines `data` completes (or, at the end, the unfinished one), all stamped now.
fn write_chunk(
    log: &Mutex<LogWriter>,
    notes: &StateDir,
    stream: Stream,
    splitter: &mut LineSplitter,
    data: Option<&[u8]>,
) {
    let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Stamped under the lock, so the file's order is the order of its timestamps even when
    // stdout and stderr arrive at once.
    let at = Timestamp::now();
    let mut failed = None;
    let mut emit = |line: &[u8]| {
        if let Err(e) = log.write(at, stream, line) {
            failed.get_or_insert(e);
        }
    };
    match data {
        Some(data) => splitter.push(data, &mut emit),
        None => splitter.finish(&mut emit),
    }
    let flushed = log.flush();
    if let Some(e) = failed.or(flushed.err()) {
        notes.note(&format!("write {stream} log: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        let mut emit = |line: &[u8]| lines.push(line.to_vec());
        for chunk in chunks {
            splitter.push(chunk, &mut emit);
        }
        splitter.finish(&mut emit);
        lines
    }

    #[test]
    fn lines_are_joined_across_reads_and_a_last_line_without_newline_is_kept() {
        let lines = split(100, &[b"one\ntw", b"o\n\nthr", b"ee"]);
        assert_eq!(lines, [&b"one"[..], b"two", b"", b"three"]);
    }

    #[test]
    fn a_long_line_is_split_into_pieces_of_at_most_max_bytes() {
        let long = vec![b'x'; 25];
        let lines = split(10, &[&long, b"\nnext\n"]);
        let lens: Vec<usize> = lines.iter().map(Vec::len).collect();
        assert_eq!(lens, [10, 10, 5, 4]);
    }

    #[test]
    fn a_split_never_cuts_through_a_utf8_character() {
        let text = "aaaaaaaaé€€€".repeat(3);
        let lines = split(10, &[text.as_bytes()]);
        assert!(lines.len() > 1);
        for line in &lines {
            assert!(line.len() <= 10);
            assert!(std::str::from_utf8(line).is_ok(), "{line:?}");
        }
        assert_eq!(lines.concat(), text.as_bytes());
    }

    #[test]
    fn invalid_utf8_is_still_split_at_max() {
        let lines = split(8, &[&[0x80; 20]]);
        let lens: Vec<usize> = lines.iter().map(Vec::len).collect();
        assert_eq!(lens, [8, 8, 4]);
    }
}
