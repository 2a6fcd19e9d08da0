//! The answers the gateway makes itself: each says what happened and what to do, as a small
//! HTML page for browsers and plain text for everything else.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::body::ProxyBody;
use crate::guard::RequestGuard;
use crate::headers::X_REQUEST_ID;

/// Why the gateway answers a request itself.
pub(crate) enum Page<'a> {
    NoHost,
    UnknownHost { host: &'a str },
    NoHealthyInstance { app: &'a str },
    ConnectionFailed { app: &'a str },
    ResponseTimeout { app: &'a str, after: Duration },
    ClientBody,
    ConnectUnsupported,
}

impl Page<'_> {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Page::NoHost | Page::ClientBody => StatusCode::BAD_REQUEST,
            Page::UnknownHost { .. } => StatusCode::NOT_FOUND,
            Page::NoHealthyInstance { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Page::ConnectionFailed { .. } => StatusCode::BAD_GATEWAY,
            Page::ResponseTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Page::ConnectUnsupported => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn message(&self) -> String {
        match self {
            Page::NoHost => "The request names no host. Send a Host header (HTTP/1.1) or an \
                             :authority (HTTP/2) with the app's domain."
                .to_owned(),
            Page::UnknownHost { host } => format!(
                "No app is served at {host}. Check the address, or add the domain to an app: \
                 spread domains add {host} -a APP"
            ),
            Page::NoHealthyInstance { app } => format!(
                "App {app} has no healthy instance right now. It may be starting, crashing or \
                 scaled to zero: see spread ps -a {app} and spread logs -a {app}."
            ),
            Page::ConnectionFailed { app } => format!(
                "App {app} did not answer: the connection to its instance failed. It may be \
                 restarting or crashing: see spread ps -a {app} and spread logs -a {app}."
            ),
            Page::ResponseTimeout { app, after } => format!(
                "App {app} did not start answering within {} s. See spread logs -a {app} for \
                 what it was doing, or make the request faster.",
                after.as_secs_f64()
            ),
            Page::ClientBody => "The request body could not be read to the end. Send the \
                                 request again."
                .to_owned(),
            Page::ConnectUnsupported => {
                "The gateway does not support CONNECT. Send plain HTTP requests.".to_owned()
            }
        }
    }

    /// The response, as HTML when `html`, with the request id; `guard` ends with its body.
    pub(crate) fn response(
        &self,
        html: bool,
        request_id: HeaderValue,
        guard: RequestGuard,
    ) -> Response<ProxyBody> {
        let status = self.status();
        let message = self.message();
        let (body, content_type) = if html {
            let reason = status.canonical_reason().unwrap_or("Error");
            let mut page = String::with_capacity(256 + message.len());
            let _ = write!(
                page,
                "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{code} {reason}</title></head>\n\
                 <body><h1>{reason}</h1>\n<p>{message}</p>\n</body></html>\n",
                code = status.as_u16(),
                message = escape_html(&message),
            );
            (page, "text/html; charset=utf-8")
        } else {
            (message + "\n", "text/plain; charset=utf-8")
        };
        let mut response = Response::new(ProxyBody::full(Bytes::from(body), guard));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(X_REQUEST_ID.clone(), request_id);
        response
    }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_html;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
