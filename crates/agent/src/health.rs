//! Health checks of running instances: a TCP connect to the instance's `$PORT`, or, with a
//! path, `GET path` answered with 2xx or 3xx. Run from the host, over the node network, like
//! the gateway's own connections.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How long one check may take: connect, and for HTTP the answer's status line.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a starting instance is checked, and a healthy one.
pub(crate) const STARTING_EVERY: Duration = Duration::from_millis(100);
pub(crate) const HEALTHY_EVERY: Duration = Duration::from_secs(5);

/// Failed checks in a row after which a healthy instance is taken out of the routes.
pub(crate) const FAILURES_TO_UNHEALTHY: u32 = 3;

/// Whether the instance at `addr` passes its check now.
pub(crate) async fn check(addr: SocketAddr, path: Option<&str>) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let Some(path) = path else {
            return Some(true);
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: spread-health-check\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        // The status line fits in the first few bytes: `HTTP/1.1 200 OK`.
        let mut head = [0u8; 32];
        let mut filled = 0;
        while filled < 12 {
            let n = stream.read(&mut head[filled..]).await.ok()?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        Some(status_ok(&head[..filled]))
    };
    matches!(
        tokio::time::timeout(CHECK_TIMEOUT, attempt).await,
        Ok(Some(true))
    )
}

/// `HTTP/1.x 2xx` or `3xx`.
fn status_ok(head: &[u8]) -> bool {
    let Some(rest) = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))
    else {
        return false;
    };
    matches!(rest, [b'2' | b'3', b'0'..=b'9', b'0'..=b'9', ..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_and_3xx_status_lines_pass() {
        assert!(status_ok(b"HTTP/1.1 200 OK\r\n"));
        assert!(status_ok(b"HTTP/1.0 302 Found"));
        assert!(status_ok(b"HTTP/1.1 204"));
        for bad in [
            &b"HTTP/1.1 404 Not Found"[..],
            b"HTTP/1.1 500",
            b"HTTP/1.1 2",
            b"HTTP/2 200",
            b"",
            b"garbage",
        ] {
            assert!(!status_ok(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[tokio::test]
    async fn a_listening_port_passes_and_a_closed_one_fails() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(check(addr, None).await);
        drop(listener);
        assert!(!check(addr, None).await);
    }

    #[tokio::test]
    async fn an_http_check_reads_the_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for answer in ["HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 503 No\r\n\r\n"] {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let n = stream.read(&mut buf).await.unwrap();
                assert!(buf[..n].starts_with(b"GET /up HTTP/1.1\r\n"));
                stream.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        assert!(check(addr, Some("/up")).await);
        assert!(!check(addr, Some("/up")).await);
        server.await.unwrap();
    }
}
