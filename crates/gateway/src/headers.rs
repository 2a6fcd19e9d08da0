//! Header handling: hop-by-hop headers, forwarded headers, upgrade detection and the host a
//! request names.

use hyper::header::{
    self, CONNECTION, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use hyper::{Request, Version};

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The hop-by-hop headers of RFC 9110 §7.6.1 and their common relatives; the bit of each is
/// its index.
fn hop_by_hop(index: usize) -> &'static HeaderName {
    match index {
        0 => &CONNECTION,
        1 => &KEEP_ALIVE,
        2 => &PROXY_CONNECTION,
        3 => &PROXY_AUTHENTICATE,
        4 => &PROXY_AUTHORIZATION,
        5 => &TE,
        6 => &TRAILER,
        7 => &TRANSFER_ENCODING,
        _ => &UPGRADE,
    }
}
const HOP_BY_HOP: usize = 9;
const CONNECTION_BIT: u16 = 1 << 0;
const UPGRADE_BIT: u16 = 1 << 8;

fn hop_bit(name: &HeaderName) -> u16 {
    (0..HOP_BY_HOP)
        .find(|&i| hop_by_hop(i) == name)
        .map_or(0, |i| 1 << i)
}

/// Removes hop-by-hop headers and those `Connection` names. With `keep_upgrade`, `Upgrade`
/// stays and `Connection` becomes exactly `upgrade`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names first: most messages have none or only `Connection`.
    let present = headers.keys().fold(0u16, |bits, name| bits | hop_bit(name));
    if present == 0 {
        return;
    }
    if present & CONNECTION_BIT != 0 {
        // Usually `keep-alive`, `close` or `upgrade`, which name no other header to remove.
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|token| {
                !["keep-alive", "close", "upgrade", ""]
                    .iter()
                    .any(|plain| token.eq_ignore_ascii_case(plain.as_bytes()))
            })
            .filter_map(|token| HeaderName::from_bytes(token).ok())
            .filter(|name| hop_bit(name) == 0)
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for i in 0..HOP_BY_HOP {
        let bit = 1 << i;
        if present & bit == 0 || (keep_upgrade && bit == UPGRADE_BIT) {
            continue;
        }
        headers.remove(hop_by_hop(i));
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Whether an HTTP/1.1 request asks to switch protocols: `Connection: upgrade` and `Upgrade`.
pub(crate) fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(UPGRADE)
        && req.headers().get_all(CONNECTION).iter().any(|value| {
            value
                .as_bytes()
                .split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
        })
}

/// The host a request names: the `Host` header for HTTP/1, the URI authority for HTTP/2, each
/// falling back to the other.
pub(crate) fn request_host<B>(req: &Request<B>) -> Option<&str> {
    let header = || {
        req.headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
    };
    let authority = || req.uri().authority().map(|a| a.as_str());
    if req.version() == Version::HTTP_2 {
        authority().or_else(header)
    } else {
        header().or_else(authority)
    }
}

/// Adds the client's address to `X-Forwarded-For` (after any value already there).
pub(crate) fn append_forwarded_for(headers: &mut HeaderMap, client: &HeaderValue) {
    let mut existing = headers.get_all(&X_FORWARDED_FOR).iter().peekable();
    if existing.peek().is_none() {
        headers.insert(X_FORWARDED_FOR.clone(), client.clone());
        return;
    }
    let mut joined = Vec::with_capacity(64);
    for value in existing {
        joined.extend_from_slice(value.as_bytes());
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(client.as_bytes());
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
}

/// Whether the client prefers an HTML error page.
pub(crate) fn accepts_html(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| {
        v.as_bytes()
            .windows(9)
            .any(|w| w.eq_ignore_ascii_case(b"text/html"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_go() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "basic x"),
            ("content-type", "text/plain"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["content-type"]
        );
    }

    #[test]
    fn upgrades_keep_upgrade_and_connection() {
        let mut h = map(&[
            ("connection", "Upgrade, keep-alive"),
            ("upgrade", "websocket"),
        ]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
    }

    #[test]
    fn forwarded_for_appends() {
        let client = HeaderValue::from_static("10.0.0.9");
        let mut h = map(&[("x-forwarded-for", "1.2.3.4")]);
        append_forwarded_for(&mut h, &client);
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.9");
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, &client);
        assert_eq!(h["x-forwarded-for"], "10.0.0.9");
    }
}
