//! Reading the logs of an app's instances from their monitor state dirs: the last lines of
//! every instance merged by time, then the lines written since, as often as asked. Blocking
//! file I/O: call it from `spawn_blocking`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use spread_api::LogLine;
use spread_core::{AppId, ProcessType};
use spread_oci::monitor::{self, Position, Stream};

use crate::instances::{LogSource, NodeInstances};

/// The log sources of one app, maybe of one process type only.
#[derive(Clone)]
pub(crate) struct AppLogs {
    pub instances: Arc<dyn NodeInstances>,
    pub app: AppId,
    pub process: Option<ProcessType>,
    pub source: Option<Source>,
}

/// Who wrote a line: the app (its stdout and stderr), Spread about the app's instances, or
/// the gateway (one access line per request), like Heroku's `--source app` and `--dyno router`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    App,
    Spread,
    Router,
}

impl Source {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "app" => Some(Self::App),
            "spread" => Some(Self::Spread),
            "router" => Some(Self::Router),
            _ => None,
        }
    }

    fn keeps(self, stream: Stream) -> bool {
        match self {
            Self::App => matches!(stream, Stream::Stdout | Stream::Stderr),
            Self::Spread => stream == Stream::Platform,
            Self::Router => stream == Stream::Router,
        }
    }
}

/// How far each source has been read, to read on from there.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    positions: BTreeMap<(String, PathBuf), Position>,
}

impl AppLogs {
    fn sources(&self) -> Vec<LogSource> {
        let mut sources = self.instances.log_sources(&self.app);
        if let Some(process) = &self.process {
            sources.retain(|s| s.process_type == process.as_str());
        }
        sources
    }

    /// The last `n` lines across all sources, oldest first, and where each source ends.
    pub fn tail(&self, n: usize) -> (Vec<LogLine>, Cursor) {
        let mut cursor = Cursor::default();
        let mut lines = Vec::new();
        for source in self.sources() {
            let (these, position) = match monitor::tail(&source.dir, n) {
                Ok(read) => read,
                Err(e) => {
                    // One unreadable instance should not hide the logs of the others.
                    tracing::warn!(instance = %source.instance, error = %e, "cannot read logs");
                    continue;
                }
            };
            lines.extend(self.kept(&source, these));
            cursor.positions.insert(key(&source), position);
        }
        lines.sort_by_key(|l| l.at);
        lines.drain(..lines.len().saturating_sub(n));
        (lines, cursor)
    }

    /// The lines written since `cursor`, oldest first, moving it on. A source not seen before
    /// (a new or newly started instance) is read from its beginning.
    pub fn follow(&self, cursor: &mut Cursor) -> Vec<LogLine> {
        let mut positions = BTreeMap::new();
        let mut lines = Vec::new();
        for source in self.sources() {
            let key = key(&source);
            let from = cursor
                .positions
                .get(&key)
                .copied()
                .unwrap_or_else(Position::start);
            match monitor::follow(&source.dir, from) {
                Ok((these, position)) => {
                    lines.extend(self.kept(&source, these));
                    positions.insert(key, position);
                }
                Err(e) => {
                    tracing::warn!(instance = %source.instance, error = %e, "cannot read logs");
                    positions.insert(key, from);
                }
            }
        }
        // Sources no longer listed are forgotten, so the cursor does not grow without end.
        cursor.positions = positions;
        lines.sort_by_key(|l| l.at);
        lines
    }
}

impl AppLogs {
    /// The lines of `source` the reader asked for. A source holds one kind of line (a
    /// monitor's log the app's, an events dir Spread's, a router dir the gateway's), so
    /// filtering after a tail of `n` loses nothing.
    fn kept<'a>(
        &'a self,
        source: &'a LogSource,
        lines: Vec<monitor::LogLine>,
    ) -> impl Iterator<Item = LogLine> + 'a {
        lines
            .into_iter()
            .filter(|line| self.source.is_none_or(|s| s.keeps(line.stream)))
            .map(|line| convert(source, line))
    }
}

fn key(source: &LogSource) -> (String, PathBuf) {
    (source.instance.clone(), source.dir.clone())
}

fn convert(source: &LogSource, line: monitor::LogLine) -> LogLine {
    LogLine {
        at: line.at,
        instance: source.instance.clone(),
        process_type: source.process_type.clone(),
        stream: line.stream.to_string(),
        text: line.text,
    }
}
