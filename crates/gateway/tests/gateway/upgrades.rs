//! Protocol upgrades (WebSocket-style) pass through the gateway as a byte tunnel.

use std::time::Duration;

use hyper::StatusCode;
use spread_gateway::BackendSpec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestGateway, bounded, raw, route, upgrade_echo_instance};

#[tokio::test]
async fn an_upgraded_connection_carries_bytes_both_ways() {
    bounded("test", async {
        let (addr, _instance) = upgrade_echo_instance().await;
        let echo = BackendSpec { id: "echo-1".into(), label: "echo.1".into(), addr };
        let gw = TestGateway::start(vec![route("chat", &["chat.localhost"], vec![echo])]).await;
        let mut stream = raw(
            gw.addr,
            b"GET /ws HTTP/1.1\r\nHost: chat.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await;
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed during the head");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("upgrade: echo"), "{head}");
        assert!(head.contains("x-request-id: "), "{head}");

        for message in [&b"hello"[..], b"through the gateway"] {
            stream.write_all(message).await.unwrap();
            let mut back = vec![0u8; message.len()];
            stream.read_exact(&mut back).await.unwrap();
            assert_eq!(back, message);
        }
        // The tunnel counts as in flight until it closes.
        assert_eq!(gw.gateway.summary("chat").unwrap().in_flight, 1);
        drop(stream);
        while gw.gateway.summary("chat").unwrap().in_flight != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let summary = gw.gateway.summary("chat").unwrap();
        assert_eq!(summary.requests[0], 1, "counted as 1xx");
        let lines = gw.log.all();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].1.contains("status=101"), "{}", lines[0].1);
        assert!(lines[0].1.contains("bytes=24"), "{}", lines[0].1);
    })
    .await;
}

#[tokio::test]
async fn a_refused_upgrade_is_an_ordinary_response() {
    bounded("test", async {
        let (addr, _instance) = upgrade_echo_instance().await;
        let echo = BackendSpec {
            id: "echo-1".into(),
            label: "echo.1".into(),
            addr,
        };
        let gw = TestGateway::start(vec![route("chat", &["chat.localhost"], vec![echo])]).await;
        let reply = gw
            .client()
            .send(
                "GET",
                "chat.localhost",
                "/ws",
                &[("connection", "upgrade"), ("upgrade", "other")],
                bytes::Bytes::new(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.body, "no upgrade");
    })
    .await;
}
