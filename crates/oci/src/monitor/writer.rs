//! `LogWriter`: timestamped records appended to `current.log`, rotated by size.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use jiff::Timestamp;

use super::layout::StateDir;
use super::{LogLimits, Stream};

/// Appends `<time> <stream> <text>` lines to `logs/current.log`; when the next line would
/// push it past `max_file_bytes`, `current.log.N` becomes `.N+1` (the oldest is removed) and
/// a new `current.log` is begun.
pub(crate) struct LogWriter {
    dir: StateDir,
    limits: LogLimits,
    file: BufWriter<File>,
    size: u64,
}

impl LogWriter {
    /// Opens `current.log` for appending; a line an earlier monitor left half written is ended
    /// first, so it cannot run into the next one.
    pub fn open(dir: &StateDir, limits: LogLimits) -> io::Result<Self> {
        let mut file = Self::open_current(dir)?;
        let mut size = file.metadata()?.len();
        if size > 0 {
            let mut last = [0u8];
            file.seek(SeekFrom::End(-1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                size += 1;
            }
        }
        Ok(Self {
            dir: dir.clone(),
            limits,
            file: BufWriter::new(file),
            size,
        })
    }

    fn open_current(dir: &StateDir) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(dir.log_file(0))
    }

    /// Buffers one record; `text` is one line (or one piece of a long line) without its newline.
    pub fn write(&mut self, at: Timestamp, stream: Stream, text: &[u8]) -> io::Result<()> {
        let record = format!("{at:.3} {stream} {}\n", String::from_utf8_lossy(text));
        let len = record.len() as u64;
        if self.size > 0 && self.size + len > self.limits.max_file_bytes {
            self.rotate()?;
        }
        self.file.write_all(record.as_bytes())?;
        self.size += len;
        Ok(())
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    /// Flushes and fsyncs, for the end of the container's life.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_all()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let oldest = self.limits.files - 1;
        ignore_missing(std::fs::remove_file(self.dir.log_file(oldest)))?;
        for n in (1..oldest).rev() {
            ignore_missing(std::fs::rename(
                self.dir.log_file(n),
                self.dir.log_file(n + 1),
            ))?;
        }
        if oldest > 0 {
            std::fs::rename(self.dir.log_file(0), self.dir.log_file(1))?;
        }
        self.file = BufWriter::new(Self::open_current(&self.dir)?);
        self.size = 0;
        Ok(())
    }
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Appends `lines` to the log in `state_dir` (made if missing) as `stream`, rotated by
/// `limits` like a monitor's: for writers other than a monitor, such as the platform's own
/// lines about an instance. One writer per state dir at a time.
pub fn append_lines(
    state_dir: &std::path::Path,
    limits: LogLimits,
    stream: Stream,
    lines: &[String],
) -> io::Result<()> {
    let dir = StateDir::new(state_dir);
    std::fs::create_dir_all(dir.logs())?;
    let mut writer = LogWriter::open(&dir, limits)?;
    for line in lines {
        writer.write(Timestamp::now(), stream, line.as_bytes())?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_file_bytes: u64, files: u32) -> LogLimits {
        LogLimits {
            max_file_bytes,
            files,
        }
    }

    fn state_dir() -> (tempfile::TempDir, StateDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        dir.create().unwrap();
        (tmp, dir)
    }

    #[test]
    fn a_record_is_a_utc_timestamp_with_millis_the_stream_and_the_lossy_text() {
        let (_tmp, dir) = state_dir();
        let mut writer = LogWriter::open(&dir, LogLimits::default()).unwrap();
        let at: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        writer.write(at, Stream::Stderr, b"bad \xff byte").unwrap();
        writer.flush().unwrap();
        let text = std::fs::read_to_string(dir.log_file(0)).unwrap();
        assert_eq!(text, "2026-03-01T12:00:00.000Z stderr bad \u{fffd} byte\n");
    }

    #[test]
    fn rotation_keeps_files_files_each_within_the_limit() {
        let (_tmp, dir) = state_dir();
        let mut writer = LogWriter::open(&dir, limits(4096, 3)).unwrap();
        for n in 0..1000 {
            let line = format!("line {n:04}");
            writer
                .write(Timestamp::now(), Stream::Stdout, line.as_bytes())
                .unwrap();
        }
        writer.flush().unwrap();
        for n in 0..3 {
            let len = std::fs::metadata(dir.log_file(n)).unwrap().len();
            assert!(len <= 4096, "current.log.{n} has {len} bytes");
            assert!(
                n == 0 || len > 4000,
                "rotated file {n} was filled: {len} bytes"
            );
        }
        assert!(!dir.log_file(3).exists());
        let current = std::fs::read_to_string(dir.log_file(0)).unwrap();
        assert!(current.ends_with(" stdout line 0999\n"), "{current}");
    }

    #[test]
    fn with_one_file_rotation_starts_the_file_afresh() {
        let (_tmp, dir) = state_dir();
        let mut writer = LogWriter::open(&dir, limits(4096, 1)).unwrap();
        for n in 0..200 {
            let line = format!("line {n:04}");
            writer
                .write(Timestamp::now(), Stream::Stdout, line.as_bytes())
                .unwrap();
        }
        writer.flush().unwrap();
        assert!(!dir.log_file(1).exists());
        let len = std::fs::metadata(dir.log_file(0)).unwrap().len();
        assert!(len <= 4096, "{len}");
    }

    #[test]
    fn reopening_ends_a_half_written_line_and_appends() {
        let (_tmp, dir) = state_dir();
        std::fs::write(dir.log_file(0), "2026-03-01T12:00:00.000Z stdout cut of").unwrap();
        let mut writer = LogWriter::open(&dir, LogLimits::default()).unwrap();
        writer
            .write(Timestamp::now(), Stream::Stdout, b"next")
            .unwrap();
        writer.flush().unwrap();
        let text = std::fs::read_to_string(dir.log_file(0)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[1].ends_with(" stdout next"), "{text}");
    }
}
