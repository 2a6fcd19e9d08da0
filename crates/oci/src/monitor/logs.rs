//! Reading a container's log back: the last lines across rotated files, and following it.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::MonitorError;
use super::layout::StateDir;

/// Which of the container's outputs a line came from, `Platform` for what Spread itself says
/// about the instance (started, exited, restarting), or `Router` for the gateway's access line
/// of one request to the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    #[serde(rename = "spread")]
    Platform,
    Router,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Platform => "spread",
            Stream::Router => "router",
        })
    }
}

impl FromStr for Stream {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "stdout" => Ok(Stream::Stdout),
            "stderr" => Ok(Stream::Stderr),
            "spread" => Ok(Stream::Platform),
            "router" => Ok(Stream::Router),
            _ => Err(()),
        }
    }
}

/// One logged line (or one piece of a line too long to log whole).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: Timestamp,
    pub stream: Stream,
    pub text: String,
}

impl LogLine {
    /// Parses `<time> <stream> <text>`; `None` for anything else.
    pub fn parse(line: &str) -> Option<Self> {
        let (at, rest) = line.split_once(' ')?;
        let (stream, text) = rest.split_once(' ')?;
        Some(Self {
            at: at.parse().ok()?,
            stream: stream.parse().ok()?,
            text: text.to_owned(),
        })
    }
}

/// How far a reader has got: a log file (by inode, which a rotation keeps) and a byte offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    inode: Option<u64>,
    offset: u64,
}

impl Position {
    /// Before the oldest line kept.
    pub fn start() -> Self {
        Self::default()
    }
}

/// The last `last_n` lines, oldest first, across `current.log` and its rotated files.
pub fn read_logs(state_dir: &Path, last_n: usize) -> Result<Vec<LogLine>, MonitorError> {
    tail(state_dir, last_n).map(|(lines, _)| lines)
}

/// Like `read_logs`, with the position after the last line, to `follow` from.
pub fn tail(state_dir: &Path, last_n: usize) -> Result<(Vec<LogLine>, Position), MonitorError> {
    let files = open_files(&StateDir::new(state_dir))?;
    let mut position = Position::start();
    let mut lines: Vec<LogLine> = Vec::new();
    for (index, file) in files.iter().enumerate().rev() {
        let (text, consumed) = read_complete_lines(&file.path, &file.file, 0)?;
        if index == files.len() - 1 {
            position = Position {
                inode: Some(file.inode),
                offset: consumed,
            };
        }
        let mut these: Vec<LogLine> = text.lines().filter_map(LogLine::parse).collect();
        let keep = these.len().min(last_n - lines.len());
        these.drain(..these.len() - keep);
        these.append(&mut lines);
        lines = these;
        if lines.len() == last_n {
            break;
        }
    }
    Ok((lines, position))
}

/// The lines written since `from`, and the position after them. Call it again to poll. Lines
/// in files rotated past between polls (all `files` of them) are skipped, not repeated.
pub fn follow(state_dir: &Path, from: Position) -> Result<(Vec<LogLine>, Position), MonitorError> {
    let files = open_files(&StateDir::new(state_dir))?;
    let resume = files
        .iter()
        .position(|f| Some(f.inode) == from.inode)
        .map_or((0, 0), |index| (index, from.offset));
    let mut lines = Vec::new();
    let mut position = from;
    for (index, file) in files.iter().enumerate().skip(resume.0) {
        let offset = if index == resume.0 { resume.1 } else { 0 };
        let (text, consumed) = read_complete_lines(&file.path, &file.file, offset)?;
        lines.extend(text.lines().filter_map(LogLine::parse));
        position = Position {
            inode: Some(file.inode),
            offset: offset + consumed,
        };
    }
    Ok((lines, position))
}

struct LogFile {
    path: std::path::PathBuf,
    file: File,
    inode: u64,
}

/// The log files oldest first. They are opened newest first: a rotation while they are
/// opened shows up as one inode seen twice, and then they are opened again.
fn open_files(dir: &StateDir) -> Result<Vec<LogFile>, MonitorError> {
    'again: loop {
        let mut files: Vec<LogFile> = Vec::new();
        for n in 0.. {
            let path = dir.log_file(n);
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound && n == 0 => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(source) => return Err(MonitorError::Read { path, source }),
            };
            let inode = file
                .metadata()
                .map_err(|source| MonitorError::Read {
                    path: path.clone(),
                    source,
                })?
                .ino();
            if files.iter().any(|f| f.inode == inode) {
                continue 'again;
            }
            files.push(LogFile { path, file, inode });
        }
        files.reverse();
        return Ok(files);
    }
}

/// The text from `offset` to the end of the last complete line, and its length in bytes.
fn read_complete_lines(
    path: &Path,
    mut file: &File,
    offset: u64,
) -> Result<(String, u64), MonitorError> {
    let failed = |source| MonitorError::Read {
        path: path.to_owned(),
        source,
    };
    file.seek(SeekFrom::Start(offset)).map_err(failed)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(failed)?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(complete);
    Ok((
        String::from_utf8_lossy(&bytes).into_owned(),
        complete as u64,
    ))
}

#[cfg(test)]
mod tests;
