//! Client connections: HTTP/2 prior knowledge, idle and slow clients, graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use spread_gateway::{DEFAULT_THREADS, Gateway, GatewayConfig, NoAccessLog};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::support::{Client, Instance, TestGateway, bounded, raw, read_to_close, route};

#[tokio::test]
async fn http2_prior_knowledge_is_routed_by_authority() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let gw =
            TestGateway::start(vec![route("shop", &["shop.localhost"], vec![web.spec()])]).await;
        let stream = TcpStream::connect(gw.addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        for path in ["/one", "/two"] {
            let req = Request::get(format!("http://Shop.localhost:9104{path}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = sender.send_request(req).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["x-backend"], "web");
            assert!(response.headers().contains_key("x-request-id"));
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let body = String::from_utf8_lossy(&body);
            assert!(body.starts_with(&format!("GET {path}\n")), "{body}");
            assert!(body.contains("host: Shop.localhost:9104\n"), "{body}");
        }
    })
    .await;
}

#[tokio::test]
async fn idle_and_half_sent_connections_do_not_block_others_and_slow_heads_are_closed() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let config = GatewayConfig {
            header_read_timeout: Duration::from_millis(500),
            ..Default::default()
        };
        let gw = TestGateway::with_config(
            config,
            vec![route("shop", &["shop.localhost"], vec![web.spec()])],
        )
        .await;
        let mut silent = Vec::new();
        let mut partial = Vec::new();
        for _ in 0..500 {
            silent.push(raw(gw.addr, b"").await);
            partial.push(
                raw(
                    gw.addr,
                    b"GET / HTTP/1.1\r\nHost: shop.localhost\r\nX-Slow:",
                )
                .await,
            );
        }
        let reply = gw.client().get("shop.localhost", "/").await;
        assert_eq!(reply.status, StatusCode::OK);
        for stream in &mut partial {
            assert!(
                read_to_close(stream).await.is_empty(),
                "no answer to half a head"
            );
        }
        // A new connection must send its first request head in time too.
        for stream in &mut silent {
            assert!(read_to_close(stream).await.is_empty());
        }
        assert_eq!(
            gw.client().get("shop.localhost", "/").await.status,
            StatusCode::OK
        );
    })
    .await;
}

#[tokio::test]
async fn an_idle_http1_keep_alive_connection_is_closed_after_the_idle_timeout() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let config = GatewayConfig {
            idle_timeout: Duration::from_millis(300),
            // Longer than the idle timeout: an idle connection must not need it to close.
            header_read_timeout: Duration::from_secs(60),
            ..Default::default()
        };
        let gw = TestGateway::with_config(
            config,
            vec![route("shop", &["shop.localhost"], vec![web.spec()])],
        )
        .await;
        let mut stream = raw(gw.addr, b"GET / HTTP/1.1\r\nHost: shop.localhost\r\n\r\n").await;
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&head).contains("web") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the response");
            head.extend_from_slice(&buf[..n]);
        }
        assert!(head.starts_with(b"HTTP/1.1 200"));
        assert!(read_to_close(&mut stream).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let config = GatewayConfig {
            idle_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let gw = TestGateway::with_config(
            config,
            vec![route("shop", &["shop.localhost"], vec![web.spec()])],
        )
        .await;
        let stream = TcpStream::connect(gw.addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        let connection = tokio::spawn(connection);
        let req = Request::get("http://shop.localhost/")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap();
        // The gateway says goodbye; the client's connection ends.
        let _ended = connection.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn shutdown_lets_requests_in_progress_finish() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let mut gw =
            TestGateway::start(vec![route("shop", &["shop.localhost"], vec![web.spec()])]).await;
        let client = gw.client();
        let slow = tokio::spawn({
            let client = client.clone();
            async move { client.get("shop.localhost", "/slow").await }
        });
        web.slow_arrived.notified().await;
        let served = gw.stop();
        // Not accepting any more: a new connection is refused.
        let refused = loop {
            match TcpStream::connect(gw.addr).await {
                Err(_) => break true,
                Ok(_) => tokio::task::yield_now().await,
            }
        };
        assert!(refused);
        assert!(
            !served.is_finished(),
            "serve returned with a request in progress"
        );
        web.release.add_permits(1);
        assert_eq!(slow.await.unwrap().status, StatusCode::OK);
        served.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_http2_request_gets_504_after_the_response_timeout_too() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let config = GatewayConfig {
            response_timeout: Duration::from_millis(200),
            ..Default::default()
        };
        let gw = TestGateway::with_config(
            config,
            vec![route("shop", &["shop.localhost"], vec![web.spec()])],
        )
        .await;
        let stream = TcpStream::connect(gw.addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let slow = Request::get("http://shop.localhost/never")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let quick = Request::get("http://shop.localhost/quick")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let (slow, quick) = tokio::join!(sender.send_request(slow), {
            let mut sender = sender.clone();
            async move { sender.send_request(quick).await }
        });
        assert_eq!(slow.unwrap().status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(quick.unwrap().status(), StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn a_gateway_on_its_own_runtime_serves_until_told_to_stop() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let gateway = Gateway::new(GatewayConfig::default(), Arc::new(NoAccessLog));
        gateway.set_routes(vec![route("shop", &["shop.localhost"], vec![web.spec()])]);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = gateway
            .spawn_on_own_runtime(listener, DEFAULT_THREADS, async {
                let _ = stopped.await;
            })
            .unwrap();
        let reply = Client::new(addr).get("shop.localhost", "/").await;
        assert_eq!((reply.status, reply.backend()), (StatusCode::OK, "web"));
        stop.send(()).unwrap();
        let served = tokio::task::spawn_blocking(move || serving.join())
            .await
            .unwrap();
        assert!(matches!(served, Ok(Ok(()))), "{served:?}");
    })
    .await;
}
