//! The access log: one Heroku-router-style line per request of a known app, handed to an
//! [`AccessLog`] sink.

use std::fmt::Write as _;
use std::net::IpAddr;

use hyper::{Method, Version};

use crate::error::Failure;

/// Where access log lines go. Called once per request of a known app, after its response is
/// done (or the client went away); must not block.
pub trait AccessLog: Send + Sync + 'static {
    /// Records one line for `app`. The line has no newline and no control characters.
    fn record(&self, app: &str, line: String);

    /// Whether lines are wanted at all; `false` spares the gateway making them.
    fn enabled(&self) -> bool {
        true
    }
}

/// An [`AccessLog`] that keeps nothing, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAccessLog;

impl AccessLog for NoAccessLog {
    fn record(&self, _app: &str, _line: String) {}

    fn enabled(&self) -> bool {
        false
    }
}

/// Everything one access log line says.
pub(crate) struct LogEntry<'a> {
    pub failure: Option<Failure>,
    pub method: &'a Method,
    pub path: &'a str,
    pub host: &'a str,
    pub request_id: &'a [u8],
    pub fwd: IpAddr,
    pub instance: Option<&'a str>,
    /// Time spent opening a connection to the instance (0 on a pooled one).
    pub connect_ms: u64,
    /// Time from the request to the response head.
    pub service_ms: u64,
    pub status: u16,
    pub bytes: u64,
    pub version: Version,
}

impl LogEntry<'_> {
    pub(crate) fn line(&self) -> String {
        let mut out = String::with_capacity(160 + self.path.len());
        match self.failure {
            None => out.push_str("at=info"),
            Some(failure) => {
                let _ = write!(out, "at=error code={} desc=\"{failure}\"", failure.code());
            }
        }
        out.push_str(" method=");
        write_value(&mut out, self.method.as_str().as_bytes());
        out.push_str(" path=");
        write_quoted(&mut out, self.path.as_bytes());
        out.push_str(" host=");
        write_value(&mut out, self.host.as_bytes());
        out.push_str(" request_id=");
        write_value(&mut out, self.request_id);
        let _ = write!(out, " fwd=\"{}\"", self.fwd);
        if let Some(instance) = self.instance {
            out.push_str(" instance=");
            write_value(&mut out, instance.as_bytes());
            let _ = write!(out, " connect={}ms", self.connect_ms);
        }
        let protocol = match self.version {
            Version::HTTP_2 => "http/2",
            Version::HTTP_10 => "http/1.0",
            _ => "http/1.1",
        };
        let _ = write!(
            out,
            " service={}ms status={} bytes={} protocol={protocol}",
            self.service_ms, self.status, self.bytes
        );
        out
    }
}

/// Writes a value bare when it is made of plain characters, quoted otherwise.
fn write_value(out: &mut String, value: &[u8]) {
    let plain = !value.is_empty()
        && value.iter().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        });
    if plain {
        // Plain bytes are ASCII.
        out.extend(value.iter().map(|&b| char::from(b)));
    } else {
        write_quoted(out, value);
    }
}

/// Writes a value in double quotes; quotes and backslashes are escaped, and every byte that is
/// not visible ASCII or a space becomes `\xNN`, so no line break or control character gets in.
fn write_quoted(out: &mut String, value: &[u8]) {
    out.push('"');
    for &b in value {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b' '..=b'~' => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry<'a>(path: &'a str, request_id: &'a [u8]) -> LogEntry<'a> {
        LogEntry {
            failure: None,
            method: &Method::GET,
            path,
            host: "shop.localhost",
            request_id,
            fwd: IpAddr::from([127, 0, 0, 1]),
            instance: Some("web.1"),
            connect_ms: 0,
            service_ms: 3,
            status: 200,
            bytes: 123,
            version: Version::HTTP_11,
        }
    }

    #[test]
    fn a_proxied_request_reads_like_a_router_line() {
        assert_eq!(
            entry("/x?y", b"ab12").line(),
            "at=info method=GET path=\"/x?y\" host=shop.localhost request_id=ab12 \
             fwd=\"127.0.0.1\" instance=web.1 connect=0ms service=3ms status=200 bytes=123 \
             protocol=http/1.1"
        );
    }

    #[test]
    fn a_gateway_error_names_its_code() {
        let mut e = entry("/", b"id");
        e.failure = Some(Failure::NoHealthyInstance);
        e.instance = None;
        e.status = 503;
        assert!(e.line().starts_with(
            "at=error code=no_healthy_instance desc=\"no healthy instance\" method=GET path=\"/\""
        ));
    }

    #[test]
    fn quotes_and_odd_request_ids_are_escaped() {
        let line = entry("/a\"b\\c\n", b"x\"y").line();
        assert!(line.contains(r#"path="/a\"b\\c\x0a""#), "{line}");
        assert!(line.contains(r#"request_id="x\"y""#), "{line}");
    }

    proptest! {
        #[test]
        fn no_control_character_reaches_a_line(path in "\\PC*", id in proptest::collection::vec(any::<u8>(), 0..40)) {
            let line = entry(&path, &id).line();
            prop_assert!(!line.chars().any(|c| c.is_control()));
        }
    }
}
